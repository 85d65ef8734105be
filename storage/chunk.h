// storage/chunk.h
//
// Gorilla/XOR chunk: up to 65535 samples of one series, timestamps as
// delta-of-delta and values as XOR against the previous value (Facebook's
// Gorilla paper, the encoding of Prometheus' XOR chunk). Every value round-trips
// bit-exactly, so the stale-marker NaN stays distinct from other NaNs. See
// storage/FORMAT.md for the bit layout. Value types; not synchronized.
#ifndef VIGIL_STORAGE_CHUNK_H_
#define VIGIL_STORAGE_CHUNK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/sample.h"

namespace vigil::storage {

inline constexpr int kMaxChunkSamples = 65535;

// Appends samples to a chunk under construction. Samples are normally appended
// in time order (that is what compresses well), but any order round-trips.
class ChunkEncoder {
 public:
  ChunkEncoder() { Reset(); }

  // CHECK-fails past kMaxChunkSamples.
  void Append(int64_t t, double v);
  // Empties the chunk, keeping the buffer's capacity.
  void Reset();

  int num_samples() const { return num_; }
  bool empty() const { return num_ == 0; }
  // Timestamp and value of the first and last appended samples (undefined if empty).
  int64_t first_t() const { return first_t_; }
  int64_t last_t() const { return t_; }
  double last_v() const;
  // The encoded chunk, valid until the next Append or Reset.
  absl::string_view data() const { return buf_; }
  size_t MemoryUsage() const { return sizeof(*this) + buf_.capacity(); }

 private:
  void WriteBits(uint64_t value, int nbits);
  void AppendValue(uint64_t bits);

  std::string buf_;     // 2-byte sample count, then the bit stream.
  uint8_t free_bits_;   // unused low bits of the last byte of buf_
  uint8_t leading_;     // XOR window of the previous value; 0xff = none yet
  uint8_t trailing_;
  uint16_t num_;
  int64_t first_t_;
  int64_t t_;
  uint64_t t_delta_;
  uint64_t v_bits_;
};

// Decodes a chunk. Usage: `for (ChunkIterator it(data); it.Next();) use(it.t(), it.v());`
// then check status() for corruption.
class ChunkIterator {
 public:
  explicit ChunkIterator(absl::string_view data);

  bool Next();
  int64_t t() const { return t_; }
  double v() const;
  uint64_t v_bits() const { return v_bits_; }
  // kDataLoss if the chunk ended early or is malformed.
  const absl::Status& status() const { return status_; }

 private:
  bool ReadValue(void* reader);  // a BitReader (chunk.cc)
  bool Fail();

  absl::string_view data_;
  size_t bit_pos_ = 16;
  int total_ = 0;
  int read_ = 0;
  int64_t t_ = 0;
  uint64_t t_delta_ = 0;
  uint64_t v_bits_ = 0;
  uint8_t leading_ = 0;
  uint8_t trailing_ = 0;
  absl::Status status_;
};

// Number of samples in an encoded chunk (0 if it is too short to tell).
int ChunkNumSamples(absl::string_view data);

// Appends every sample of `data` to `out`. kDataLoss if corrupt.
absl::Status DecodeChunk(absl::string_view data, std::vector<Sample>* out);

// How a sealed chunk is stored: one encoding byte, then the encoded samples.
enum class ChunkEncoding : uint8_t {
  kXor = 1,      // the XOR chunk above
  kDecimal = 2,  // values that are integers over a power of ten (FORMAT.md)
};

// The stored form of the samples of `xor_chunk` (time-ordered), in whichever
// encoding is smaller. Decimal values (12.34, counters) usually shrink a lot.
std::string EncodeSealedChunk(absl::string_view xor_chunk);
// Appends the samples of a stored chunk to `out`. kDataLoss if corrupt.
absl::Status DecodeSealedChunk(absl::string_view stored, std::vector<Sample>* out);

}  // namespace vigil::storage

#endif  // VIGIL_STORAGE_CHUNK_H_
