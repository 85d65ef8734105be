#include "storage/keys.h"

#include <cstring>

namespace vigil::storage {

void PutVarint(std::string* out, uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

bool GetVarint(absl::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0, i = 0; shift < 70 && i < static_cast<int>(in->size()); shift += 7, i++) {
    const uint64_t byte = static_cast<uint8_t>((*in)[i]);
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      in->remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

void PutFixed64LE(std::string* out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>(v >> (8 * i));
  out->append(b, 8);
}

bool GetFixed64LE(absl::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  uint64_t r = 0;
  for (int i = 0; i < 8; i++) r |= static_cast<uint64_t>(static_cast<uint8_t>((*in)[i])) << (8 * i);
  *v = r;
  in->remove_prefix(8);
  return true;
}

void PutBigEndian32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

void PutOrderedInt64(std::string* out, int64_t v) {
  const uint64_t u = static_cast<uint64_t>(v) ^ (1ULL << 63);
  char b[8];
  for (int i = 0; i < 8; i++) b[i] = static_cast<char>(u >> (56 - 8 * i));
  out->append(b, 8);
}

uint32_t GetBigEndian32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

int64_t GetOrderedInt64(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | u[i];
  return static_cast<int64_t>(v ^ (1ULL << 63));
}

std::string ChunkPrefix(int64_t partition) {
  std::string k(1, kChunkPrefix);
  PutOrderedInt64(&k, partition);
  return k;
}

std::string ChunkPrefix(int64_t partition, uint32_t shard) {
  std::string k = ChunkPrefix(partition);
  PutBigEndian32(&k, shard);
  return k;
}

std::string ChunkPrefix(int64_t partition, uint32_t shard, uint32_t series) {
  std::string k = ChunkPrefix(partition, shard);
  PutBigEndian32(&k, series);
  return k;
}

std::string ChunkKey(int64_t partition, uint32_t shard, uint32_t series, int64_t mint) {
  std::string k = ChunkPrefix(partition, shard, series);
  PutOrderedInt64(&k, mint);
  return k;
}

bool ParseChunkKey(absl::string_view key, ChunkKeyParts* out) {
  if (key.size() != kChunkKeySize || key[0] != kChunkPrefix) return false;
  out->partition = GetOrderedInt64(key.data() + 1);
  out->shard = GetBigEndian32(key.data() + 9);
  out->series = GetBigEndian32(key.data() + 13);
  out->mint = GetOrderedInt64(key.data() + 17);
  return true;
}

std::string SeriesKey(uint32_t series) {
  std::string k(1, kSeriesPrefix);
  PutBigEndian32(&k, series);
  return k;
}

std::string MarkKey(uint32_t series) {
  std::string k(1, kMarkPrefix);
  PutBigEndian32(&k, series);
  return k;
}

std::string PostingKey(absl::string_view name, absl::string_view value, uint32_t series) {
  std::string k(1, kPostingPrefix);
  k.append(name.data(), name.size());
  k.push_back('\xff');
  k.append(value.data(), value.size());
  k.push_back('\xff');
  PutBigEndian32(&k, series);
  return k;
}

}  // namespace vigil::storage
