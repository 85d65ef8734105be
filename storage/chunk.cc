#include "storage/chunk.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace vigil::storage {

namespace {

inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}
inline uint64_t Mask(int nbits) { return nbits >= 64 ? ~0ULL : (1ULL << nbits) - 1; }

// True if `v` fits in `nbits` as a two's-complement integer.
inline bool FitsSigned(int64_t v, int nbits) {
  const int64_t lim = int64_t{1} << (nbits - 1);
  return v >= -lim && v < lim;
}

inline double FromBits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// Delta-of-delta buckets: (prefix, prefix length, payload bits).
struct DodBucket {
  uint64_t prefix;
  int prefix_bits;
  int value_bits;
};
constexpr DodBucket kDodBuckets[] = {{0b10, 2, 14}, {0b110, 3, 17}, {0b1110, 4, 20}};

}  // namespace

void ChunkEncoder::Reset() {
  buf_.assign(2, '\0');
  free_bits_ = 0;
  leading_ = 0xff;
  trailing_ = 0;
  num_ = 0;
  first_t_ = 0;
  t_ = 0;
  t_delta_ = 0;
  v_bits_ = 0;
}

double ChunkEncoder::last_v() const { return FromBits(v_bits_); }

void ChunkEncoder::WriteBits(uint64_t value, int nbits) {
  while (nbits > 0) {
    if (free_bits_ == 0) {
      buf_.push_back('\0');
      free_bits_ = 8;
    }
    const int n = nbits < free_bits_ ? nbits : free_bits_;
    const uint64_t bits = (value >> (nbits - n)) & Mask(n);
    buf_.back() = static_cast<char>(static_cast<uint8_t>(buf_.back()) | (bits << (free_bits_ - n)));
    free_bits_ -= n;
    nbits -= n;
  }
}

void ChunkEncoder::WriteVarint(int64_t v) {
  uint64_t u = ZigZag(v);
  while (u >= 0x80) {
    WriteBits((u & 0x7f) | 0x80, 8);
    u >>= 7;
  }
  WriteBits(u, 8);
}

void ChunkEncoder::AppendValue(uint64_t bits) {
  const uint64_t x = bits ^ v_bits_;
  if (x == 0) {
    WriteBits(0, 1);
    return;
  }
  WriteBits(1, 1);
  int lead = __builtin_clzll(x);
  const int trail = __builtin_ctzll(x);
  if (lead > 31) lead = 31;
  if (leading_ != 0xff && lead >= leading_ && trail >= trailing_) {
    WriteBits(0, 1);
    WriteBits(x >> trailing_, 64 - leading_ - trailing_);
    return;
  }
  const int sig = 64 - lead - trail;
  WriteBits(1, 1);
  WriteBits(lead, 5);
  WriteBits(sig & 63, 6);  // 64 significant bits are written as 0
  WriteBits(x >> trail, sig);
  leading_ = lead;
  trailing_ = trail;
}

void ChunkEncoder::Append(int64_t t, double v) {
  CHECK_LT(num_, kMaxChunkSamples) << "chunk full";
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  if (num_ == 0) {
    WriteVarint(t);
    WriteBits(bits, 64);
    first_t_ = t;
  } else if (num_ == 1) {
    t_delta_ = static_cast<uint64_t>(t) - static_cast<uint64_t>(t_);
    WriteVarint(static_cast<int64_t>(t_delta_));
    AppendValue(bits);
  } else {
    const uint64_t delta = static_cast<uint64_t>(t) - static_cast<uint64_t>(t_);
    const int64_t dod = static_cast<int64_t>(delta - t_delta_);
    if (dod == 0) {
      WriteBits(0, 1);
    } else {
      bool written = false;
      for (const DodBucket& b : kDodBuckets) {
        if (FitsSigned(dod, b.value_bits)) {
          WriteBits(b.prefix, b.prefix_bits);
          WriteBits(static_cast<uint64_t>(dod), b.value_bits);
          written = true;
          break;
        }
      }
      if (!written) {
        WriteBits(0b1111, 4);
        WriteBits(static_cast<uint64_t>(dod), 64);
      }
    }
    t_delta_ = delta;
    AppendValue(bits);
  }
  t_ = t;
  v_bits_ = bits;
  num_++;
  buf_[0] = static_cast<char>(num_ >> 8);
  buf_[1] = static_cast<char>(num_ & 0xff);
}

int ChunkNumSamples(absl::string_view data) {
  if (data.size() < 2) return 0;
  return (static_cast<uint8_t>(data[0]) << 8) | static_cast<uint8_t>(data[1]);
}

ChunkIterator::ChunkIterator(absl::string_view data) : data_(data) {
  if (data.size() < 2) {
    status_ = absl::DataLossError("chunk shorter than its header");
    return;
  }
  total_ = ChunkNumSamples(data);
}

double ChunkIterator::v() const { return FromBits(v_bits_); }

bool ChunkIterator::Fail() {
  status_ = absl::DataLossError(
      absl::StrCat("chunk truncated or corrupt at sample ", read_, " of ", total_));
  return false;
}

bool ChunkIterator::ReadBits(int nbits, uint64_t* out) {
  if (bit_pos_ + nbits > data_.size() * 8) return false;
  uint64_t v = 0;
  while (nbits > 0) {
    const size_t byte = bit_pos_ >> 3;
    const int offset = bit_pos_ & 7;
    const int avail = 8 - offset;
    const int n = nbits < avail ? nbits : avail;
    const uint64_t b = static_cast<uint8_t>(data_[byte]);
    v = (v << n) | ((b >> (avail - n)) & Mask(n));
    bit_pos_ += n;
    nbits -= n;
  }
  *out = v;
  return true;
}

bool ChunkIterator::ReadBit(bool* out) {
  uint64_t b;
  if (!ReadBits(1, &b)) return false;
  *out = b != 0;
  return true;
}

bool ChunkIterator::ReadVarint(int64_t* out) {
  uint64_t u = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    uint64_t byte;
    if (!ReadBits(8, &byte)) return false;
    u |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *out = UnZigZag(u);
      return true;
    }
  }
  return false;
}

bool ChunkIterator::ReadValue() {
  bool bit;
  if (!ReadBit(&bit)) return false;
  if (!bit) return true;  // same value
  if (!ReadBit(&bit)) return false;
  if (bit) {
    uint64_t lead, sig;
    if (!ReadBits(5, &lead) || !ReadBits(6, &sig)) return false;
    if (sig == 0) sig = 64;
    if (lead + sig > 64) return false;
    leading_ = static_cast<uint8_t>(lead);
    trailing_ = static_cast<uint8_t>(64 - lead - sig);
  }
  const int sig = 64 - leading_ - trailing_;
  uint64_t x;
  if (!ReadBits(sig, &x)) return false;
  v_bits_ ^= x << trailing_;
  return true;
}

bool ChunkIterator::Next() {
  if (!status_.ok() || read_ >= total_) return false;
  if (read_ == 0) {
    if (!ReadVarint(&t_) || !ReadBits(64, &v_bits_)) return Fail();
  } else if (read_ == 1) {
    int64_t d;
    if (!ReadVarint(&d)) return Fail();
    t_delta_ = static_cast<uint64_t>(d);
    t_ = static_cast<int64_t>(static_cast<uint64_t>(t_) + t_delta_);
    if (!ReadValue()) return Fail();
  } else {
    int64_t dod = 0;
    bool bit;
    if (!ReadBit(&bit)) return Fail();
    if (bit) {
      int bucket = 0;
      while (bucket < 3) {
        if (!ReadBit(&bit)) return Fail();
        if (!bit) break;
        bucket++;
      }
      const int nbits = bucket < 3 ? kDodBuckets[bucket].value_bits : 64;
      uint64_t raw;
      if (!ReadBits(nbits, &raw)) return Fail();
      if (nbits < 64 && (raw >> (nbits - 1)) & 1) raw |= ~Mask(nbits);  // sign-extend
      dod = static_cast<int64_t>(raw);
    }
    t_delta_ += static_cast<uint64_t>(dod);
    t_ = static_cast<int64_t>(static_cast<uint64_t>(t_) + t_delta_);
    if (!ReadValue()) return Fail();
  }
  read_++;
  return true;
}

absl::Status DecodeChunk(absl::string_view data, std::vector<Sample>* out) {
  ChunkIterator it(data);
  while (it.Next()) out->push_back(Sample{it.t(), it.v()});
  return it.status();
}

}  // namespace vigil::storage
