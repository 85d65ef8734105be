#include "storage/chunk.h"

#include <cmath>
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

// Delta-of-delta buckets: (prefix, prefix length, payload bits). A zero is the
// single bit 0; past the last bucket comes 1111 and 64 bits.
struct DodBucket {
  uint64_t prefix;
  int prefix_bits;
  int value_bits;
};
using DodBuckets = DodBucket[3];
constexpr DodBuckets kDodBuckets = {{0b10, 2, 14}, {0b110, 3, 17}, {0b1110, 4, 20}};
// Decimal values move by small integers, so their buckets are narrower.
constexpr DodBuckets kValueDodBuckets = {{0b10, 2, 7}, {0b110, 3, 13}, {0b1110, 4, 20}};

// Appends the `nbits` low bits of `value` to a bit stream whose last byte has
// `*free_bits` unused low bits.
void AppendBits(std::string* buf, uint8_t* free_bits, uint64_t value, int nbits) {
  value &= Mask(nbits);
  if (*free_bits > 0) {  // fill the last byte first
    const int n = nbits < *free_bits ? nbits : *free_bits;
    const uint64_t bits = value >> (nbits - n);
    buf->back() = static_cast<char>(static_cast<uint8_t>(buf->back()) | (bits << (*free_bits - n)));
    *free_bits -= n;
    nbits -= n;
  }
  while (nbits >= 8) {
    nbits -= 8;
    buf->push_back(static_cast<char>(value >> nbits));
  }
  if (nbits > 0) {
    buf->push_back(static_cast<char>((value << (8 - nbits)) & 0xff));
    *free_bits = static_cast<uint8_t>(8 - nbits);
  }
}

void AppendVarint(std::string* buf, uint8_t* free_bits, int64_t v) {
  uint64_t u = ZigZag(v);
  while (u >= 0x80) {
    AppendBits(buf, free_bits, (u & 0x7f) | 0x80, 8);
    u >>= 7;
  }
  AppendBits(buf, free_bits, u, 8);
}

void AppendDod(std::string* buf, uint8_t* free_bits, int64_t dod, const DodBuckets& buckets) {
  if (dod == 0) {
    AppendBits(buf, free_bits, 0, 1);
    return;
  }
  for (const DodBucket& b : buckets) {
    if (FitsSigned(dod, b.value_bits)) {
      AppendBits(buf, free_bits, b.prefix, b.prefix_bits);
      AppendBits(buf, free_bits, static_cast<uint64_t>(dod), b.value_bits);
      return;
    }
  }
  AppendBits(buf, free_bits, 0b1111, 4);
  AppendBits(buf, free_bits, static_cast<uint64_t>(dod), 64);
}

// Reads bits from the front of a bit stream.
class BitReader {
 public:
  BitReader(absl::string_view data, size_t bit_pos) : data_(data), pos_(bit_pos) {}

  bool Read(int nbits, uint64_t* out) {
    if (pos_ + nbits > data_.size() * 8) return false;
    uint64_t v = 0;
    while (nbits > 0) {
      const size_t byte = pos_ >> 3;
      const int avail = 8 - static_cast<int>(pos_ & 7);
      const int n = nbits < avail ? nbits : avail;
      const uint64_t b = static_cast<uint8_t>(data_[byte]);
      v = (v << n) | ((b >> (avail - n)) & Mask(n));
      pos_ += n;
      nbits -= n;
    }
    *out = v;
    return true;
  }
  size_t pos() const { return pos_; }
  bool ReadBit(bool* out) {
    uint64_t b;
    if (!Read(1, &b)) return false;
    *out = b != 0;
    return true;
  }
  bool ReadVarint(int64_t* out) {
    uint64_t u = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      uint64_t byte;
      if (!Read(8, &byte)) return false;
      u |= (byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *out = UnZigZag(u);
        return true;
      }
    }
    return false;
  }
  bool ReadDod(const DodBuckets& buckets, int64_t* dod) {
    bool bit;
    if (!ReadBit(&bit)) return false;
    if (!bit) {
      *dod = 0;
      return true;
    }
    int bucket = 0;
    while (bucket < 3) {
      if (!ReadBit(&bit)) return false;
      if (!bit) break;
      bucket++;
    }
    const int nbits = bucket < 3 ? buckets[bucket].value_bits : 64;
    uint64_t raw;
    if (!Read(nbits, &raw)) return false;
    if (nbits < 64 && (raw >> (nbits - 1)) & 1) raw |= ~Mask(nbits);  // sign-extend
    *dod = static_cast<int64_t>(raw);
    return true;
  }

 private:
  absl::string_view data_;
  size_t pos_;
};

// Delta-of-delta state of one integer sequence (timestamps, or decimal values).
struct DodState {
  int64_t prev = 0;
  uint64_t delta = 0;

  void Write(std::string* buf, uint8_t* free_bits, int index, int64_t v, const DodBuckets& b) {
    const uint64_t d = static_cast<uint64_t>(v) - static_cast<uint64_t>(prev);
    if (index == 0) {
      AppendVarint(buf, free_bits, v);
    } else if (index == 1) {
      AppendVarint(buf, free_bits, static_cast<int64_t>(d));
    } else {
      AppendDod(buf, free_bits, static_cast<int64_t>(d - delta), b);
    }
    delta = d;
    prev = v;
  }
  bool Read(BitReader* r, int index, const DodBuckets& b, int64_t* v) {
    int64_t x;
    if (index == 0) {
      if (!r->ReadVarint(&x)) return false;
      prev = x;
      *v = x;
      return true;
    }
    if (index == 1) {
      if (!r->ReadVarint(&x)) return false;
      delta = static_cast<uint64_t>(x);
    } else {
      if (!r->ReadDod(b, &x)) return false;
      delta += static_cast<uint64_t>(x);
    }
    prev = static_cast<int64_t>(static_cast<uint64_t>(prev) + delta);
    *v = prev;
    return true;
  }
};

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
  AppendBits(&buf_, &free_bits_, value, nbits);
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
  DodState ts{t_, t_delta_};
  ts.Write(&buf_, &free_bits_, num_, t, kDodBuckets);
  t_delta_ = ts.delta;
  if (num_ == 0) {
    WriteBits(bits, 64);
    first_t_ = t;
  } else {
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

bool ChunkIterator::ReadValue(void* reader) {
  BitReader& r = *static_cast<BitReader*>(reader);
  bool bit;
  if (!r.ReadBit(&bit)) return false;
  if (!bit) return true;  // same value
  if (!r.ReadBit(&bit)) return false;
  if (bit) {
    uint64_t lead, sig;
    if (!r.Read(5, &lead) || !r.Read(6, &sig)) return false;
    if (sig == 0) sig = 64;
    if (lead + sig > 64) return false;
    leading_ = static_cast<uint8_t>(lead);
    trailing_ = static_cast<uint8_t>(64 - lead - sig);
  }
  uint64_t x;
  if (!r.Read(64 - leading_ - trailing_, &x)) return false;
  v_bits_ ^= x << trailing_;
  return true;
}

bool ChunkIterator::Next() {
  if (!status_.ok() || read_ >= total_) return false;
  BitReader r(data_, bit_pos_);
  DodState ts{t_, t_delta_};
  if (!ts.Read(&r, read_, kDodBuckets, &t_)) return Fail();
  t_delta_ = ts.delta;
  if (read_ == 0) {
    if (!r.Read(64, &v_bits_)) return Fail();
  } else if (!ReadValue(&r)) {
    return Fail();
  }
  bit_pos_ = r.pos();
  read_++;
  return true;
}

absl::Status DecodeChunk(absl::string_view data, std::vector<Sample>* out) {
  ChunkIterator it(data);
  while (it.Next()) out->push_back(Sample{it.t(), it.v()});
  return it.status();
}

}  // namespace vigil::storage

namespace vigil::storage {

namespace {

constexpr int kMaxDecimalScale = 9;
constexpr double kPow10[kMaxDecimalScale + 1] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
constexpr double kMaxExactInt = 9007199254740992.0;  // 2^53

// m / 10^scale, computed the one way both encoder and decoder use.
inline double FromDecimal(int64_t m, int scale) {
  return scale == 0 ? static_cast<double>(m) : static_cast<double>(m) / kPow10[scale];
}

// Finds the smallest scale at which every value is exactly m / 10^scale for an
// integer |m| < 2^53, filling `mantissas`. False if there is none (NaN, Inf,
// -0.0, or too many digits).
bool ToDecimals(const std::vector<Sample>& samples, int* scale, std::vector<int64_t>* mantissas) {
  for (int k = 0; k <= kMaxDecimalScale; k++) {
    mantissas->clear();
    bool ok = true;
    for (const Sample& s : samples) {
      const double scaled = s.v * kPow10[k];
      if (!(std::fabs(scaled) < kMaxExactInt)) {  // also false for NaN
        ok = false;
        break;
      }
      const int64_t m = std::llround(scaled);
      if (DoubleBits(FromDecimal(m, k)) != DoubleBits(s.v)) {
        ok = false;
        break;
      }
      mantissas->push_back(m);
    }
    if (ok) {
      *scale = k;
      return true;
    }
  }
  return false;
}

// Decimal chunk: kDecimal, count:u16be, scale:u8, then per sample the timestamp
// as in the XOR chunk and the mantissa as a delta-of-delta sequence.
std::string EncodeDecimal(const std::vector<Sample>& samples, int scale,
                          const std::vector<int64_t>& mantissas) {
  std::string out;
  out.push_back(static_cast<char>(ChunkEncoding::kDecimal));
  out.push_back(static_cast<char>(samples.size() >> 8));
  out.push_back(static_cast<char>(samples.size() & 0xff));
  out.push_back(static_cast<char>(scale));
  uint8_t free_bits = 0;
  DodState ts, vs;
  for (size_t i = 0; i < samples.size(); i++) {
    ts.Write(&out, &free_bits, static_cast<int>(i), samples[i].t, kDodBuckets);
    vs.Write(&out, &free_bits, static_cast<int>(i), mantissas[i], kValueDodBuckets);
  }
  return out;
}

absl::Status DecodeDecimal(absl::string_view data, std::vector<Sample>* out) {
  if (data.size() < 4) return absl::DataLossError("decimal chunk shorter than its header");
  const int n = (static_cast<uint8_t>(data[1]) << 8) | static_cast<uint8_t>(data[2]);
  const int scale = static_cast<uint8_t>(data[3]);
  if (scale > kMaxDecimalScale) return absl::DataLossError("decimal chunk: bad scale");
  BitReader r(data, 32);
  DodState ts, vs;
  for (int i = 0; i < n; i++) {
    int64_t t, m;
    if (!ts.Read(&r, i, kDodBuckets, &t) || !vs.Read(&r, i, kValueDodBuckets, &m)) {
      return absl::DataLossError(
          absl::StrCat("decimal chunk truncated or corrupt at sample ", i, " of ", n));
    }
    out->push_back(Sample{t, FromDecimal(m, scale)});
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeSealedChunk(absl::string_view xor_chunk) {
  std::vector<Sample> samples;
  int scale;
  std::vector<int64_t> mantissas;
  if (DecodeChunk(xor_chunk, &samples).ok() && ToDecimals(samples, &scale, &mantissas)) {
    std::string dec = EncodeDecimal(samples, scale, mantissas);
    if (dec.size() < xor_chunk.size() + 1) return dec;
  }
  std::string out;
  out.reserve(xor_chunk.size() + 1);
  out.push_back(static_cast<char>(ChunkEncoding::kXor));
  out.append(xor_chunk.data(), xor_chunk.size());
  return out;
}

absl::Status DecodeSealedChunk(absl::string_view stored, std::vector<Sample>* out) {
  if (stored.empty()) return absl::DataLossError("empty stored chunk");
  switch (static_cast<ChunkEncoding>(stored[0])) {
    case ChunkEncoding::kXor:
      return DecodeChunk(stored.substr(1), out);
    case ChunkEncoding::kDecimal:
      return DecodeDecimal(stored, out);
  }
  return absl::DataLossError(absl::StrCat("unknown chunk encoding ", static_cast<int>(stored[0])));
}

}  // namespace vigil::storage
