// storage/keys.h
//
// RocksDB key layout and small encoding helpers of the TSDB (storage/FORMAT.md).
// All keys live in one column family, distinguished by their first byte, so a
// memtable flush persists chunks, seal marks and index entries atomically.
#ifndef VIGIL_STORAGE_KEYS_H_
#define VIGIL_STORAGE_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace vigil::storage {

inline constexpr char kChunkPrefix = 'C';    // C partition shard series mint -> chunk
inline constexpr char kSeriesPrefix = 'S';   // S series -> canonical labels
inline constexpr char kPostingPrefix = 'P';  // P name 0xff value 0xff series -> ""
inline constexpr char kMarkPrefix = 'M';     // M series -> seal mark
inline constexpr char kMinPartitionKey[] = "R";  // R -> first partition kept by retention

void PutVarint(std::string* out, uint64_t v);
// Reads a varint from the front of *in, advancing it. False if malformed.
bool GetVarint(absl::string_view* in, uint64_t* v);
void PutFixed64LE(std::string* out, uint64_t v);
bool GetFixed64LE(absl::string_view* in, uint64_t* v);
inline uint64_t ZigZagEncode(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t ZigZagDecode(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// Big-endian encodings that sort like the numbers (signed: sign bit flipped).
void PutBigEndian32(std::string* out, uint32_t v);
void PutOrderedInt64(std::string* out, int64_t v);
uint32_t GetBigEndian32(const char* p);
int64_t GetOrderedInt64(const char* p);

std::string ChunkKey(int64_t partition, uint32_t shard, uint32_t series, int64_t mint);
// Prefix of every chunk key of (partition[, shard[, series]]).
std::string ChunkPrefix(int64_t partition);
std::string ChunkPrefix(int64_t partition, uint32_t shard);
std::string ChunkPrefix(int64_t partition, uint32_t shard, uint32_t series);
inline constexpr size_t kChunkKeySize = 1 + 8 + 4 + 4 + 8;
struct ChunkKeyParts {
  int64_t partition;
  uint32_t shard;
  uint32_t series;
  int64_t mint;
};
bool ParseChunkKey(absl::string_view key, ChunkKeyParts* out);

std::string SeriesKey(uint32_t series);
std::string MarkKey(uint32_t series);
std::string PostingKey(absl::string_view name, absl::string_view value, uint32_t series);

// Splits a Labels::Canonical() encoding ("name\xffvalue\xff...") and calls
// fn(name, value) per label. False if malformed.
template <typename Fn>
bool ForEachCanonicalLabel(absl::string_view c, Fn fn) {
  while (!c.empty()) {
    size_t a = c.find('\xff');
    if (a == absl::string_view::npos) return false;
    size_t b = c.find('\xff', a + 1);
    if (b == absl::string_view::npos) return false;
    fn(c.substr(0, a), c.substr(a + 1, b - a - 1));
    c.remove_prefix(b + 1);
  }
  return true;
}

}  // namespace vigil::storage

#endif  // VIGIL_STORAGE_KEYS_H_
