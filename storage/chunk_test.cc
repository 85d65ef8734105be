#include "storage/chunk.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "common/sample.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace vigil::storage {
namespace {

// Encodes `in`, decodes it, and checks every timestamp and value bit-exactly.
void ExpectRoundTrip(const std::vector<Sample>& in) {
  ChunkEncoder enc;
  for (const Sample& s : in) enc.Append(s.t, s.v);
  ASSERT_EQ(enc.num_samples(), static_cast<int>(in.size()));
  ASSERT_EQ(ChunkNumSamples(enc.data()), static_cast<int>(in.size()));
  std::vector<Sample> out;
  ASSERT_OK(DecodeChunk(enc.data(), &out));
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); i++) {
    SCOPED_TRACE(i);
    EXPECT_EQ(out[i].t, in[i].t);
    EXPECT_EQ(DoubleBits(out[i].v), DoubleBits(in[i].v));
  }
  if (!in.empty()) {
    EXPECT_EQ(enc.first_t(), in.front().t);
    EXPECT_EQ(enc.last_t(), in.back().t);
    EXPECT_EQ(DoubleBits(enc.last_v()), DoubleBits(in.back().v));
  }
}

double NaNWithPayload(uint64_t payload) {
  uint64_t bits = 0x7ff8000000000000ULL | payload;
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

TEST(ChunkTest, EmptyChunkDecodesToNothing) { ExpectRoundTrip({}); }

TEST(ChunkTest, OneSample) {
  ExpectRoundTrip({{1700000000000, 42.5}});
  ExpectRoundTrip({{-5, -0.0}});
}

TEST(ChunkTest, RegularScrapes) {
  std::vector<Sample> in;
  double counter = 1000;
  for (int i = 0; i < 120; i++) {
    counter += i % 7;
    in.push_back({1700000000000 + i * 15000, counter});
  }
  ExpectRoundTrip(in);
  ChunkEncoder enc;
  for (const Sample& s : in) enc.Append(s.t, s.v);
  // Regular timestamps and slow counters compress to a few bytes per sample.
  EXPECT_LT(enc.data().size(), 120u * 3);
}

TEST(ChunkTest, SpecialValues) {
  const double inf = std::numeric_limits<double>::infinity();
  ExpectRoundTrip({{1, std::nan("")},
                   {2, inf},
                   {3, -inf},
                   {4, StaleNaN()},
                   {5, NaNWithPayload(1)},
                   {6, StaleNaN()},
                   {7, 0.0},
                   {8, -0.0},
                   {9, std::numeric_limits<double>::denorm_min()},
                   {10, std::numeric_limits<double>::max()},
                   {11, std::numeric_limits<double>::lowest()}});
}

TEST(ChunkTest, StaleMarkerStaysDistinctFromOtherNaNs) {
  ChunkEncoder enc;
  enc.Append(1, std::nan(""));
  enc.Append(2, StaleNaN());
  enc.Append(3, std::nan(""));
  std::vector<Sample> out;
  ASSERT_OK(DecodeChunk(enc.data(), &out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FALSE(IsStaleNaN(out[0].v));
  EXPECT_TRUE(IsStaleNaN(out[1].v));
  EXPECT_FALSE(IsStaleNaN(out[2].v));
  EXPECT_TRUE(std::isnan(out[0].v));
}

TEST(ChunkTest, HugeAndNegativeTimestampDeltas) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  const int64_t min = std::numeric_limits<int64_t>::min();
  ExpectRoundTrip({{0, 1}, {max, 2}, {min, 3}, {0, 4}, {-1, 5}, {max, 6}});
  ExpectRoundTrip({{1000, 1}, {500, 2}, {-100000000000, 3}, {100000000000, 4}, {100000000001, 5}});
  // Each delta-of-delta bucket boundary.
  std::vector<Sample> in;
  int64_t t = 0;
  for (int64_t d : {1LL, 8192LL, -8192LL, 8193LL, 65536LL, -65537LL, 524288LL, -524289LL,
                    1LL << 40, -(1LL << 40), 0LL, 0LL}) {
    t += d;
    in.push_back({t, static_cast<double>(t)});
  }
  ExpectRoundTrip(in);
}

TEST(ChunkTest, RandomValuesAndTimestamps) {
  const uint32_t seed = 20261122;  // fixed so a failure replays
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 50; round++) {
    std::vector<Sample> in;
    const int n = 1 + static_cast<int>(rng() % 300);
    int64_t t = static_cast<int64_t>(rng());
    for (int i = 0; i < n; i++) {
      switch (rng() % 4) {
        case 0: t += static_cast<int64_t>(rng() % 100000); break;
        case 1: t += 15000; break;
        case 2: t = static_cast<int64_t>(rng()); break;
        default: break;
      }
      uint64_t bits = rng();
      double v;
      std::memcpy(&v, &bits, sizeof v);
      if (rng() % 3 == 0) v = static_cast<double>(rng() % 1000);
      in.push_back({t, v});
    }
    ExpectRoundTrip(in);
  }
}

TEST(ChunkTest, MaxSamples) {
  std::vector<Sample> in;
  for (int i = 0; i < kMaxChunkSamples; i++) in.push_back({i * 1000LL, i * 0.5});
  ExpectRoundTrip(in);
}

TEST(ChunkTest, ResetReusesEncoder) {
  ChunkEncoder enc;
  enc.Append(1, 1);
  enc.Append(2, 2);
  enc.Reset();
  EXPECT_TRUE(enc.empty());
  enc.Append(10, 3);
  std::vector<Sample> out;
  ASSERT_OK(DecodeChunk(enc.data(), &out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].t, 10);
  EXPECT_EQ(out[0].v, 3);
}

TEST(ChunkTest, TruncatedChunkIsDataLoss) {
  ChunkEncoder enc;
  for (int i = 0; i < 50; i++) enc.Append(i * 1000, i * 1.5);
  std::string data(enc.data());
  for (size_t len : {size_t{0}, size_t{1}, size_t{5}, data.size() / 2, data.size() - 1}) {
    SCOPED_TRACE(len);
    std::vector<Sample> out;
    EXPECT_THAT(DecodeChunk(absl::string_view(data).substr(0, len), &out),
                testing::StatusIs(absl::StatusCode::kDataLoss));
  }
}

}  // namespace
}  // namespace vigil::storage

namespace vigil::storage {
namespace {

// Seals `in` and checks the stored form decodes to the same bits; returns its size.
size_t ExpectSealedRoundTrip(const std::vector<Sample>& in, ChunkEncoding want) {
  ChunkEncoder enc;
  for (const Sample& s : in) enc.Append(s.t, s.v);
  const std::string stored = EncodeSealedChunk(enc.data());
  EXPECT_EQ(static_cast<ChunkEncoding>(stored[0]), want);
  std::vector<Sample> out;
  EXPECT_OK(DecodeSealedChunk(stored, &out));
  EXPECT_EQ(out.size(), in.size());
  for (size_t i = 0; i < std::min(in.size(), out.size()); i++) {
    SCOPED_TRACE(i);
    EXPECT_EQ(out[i].t, in[i].t);
    EXPECT_EQ(DoubleBits(out[i].v), DoubleBits(in[i].v)) << in[i].v << " vs " << out[i].v;
  }
  return stored.size();
}

TEST(SealedChunkTest, DecimalValuesShrink) {
  std::vector<Sample> in;
  double cpu = 12345.67;
  for (int i = 0; i < 120; i++) {
    cpu = std::round((cpu + 14.5 + (i * 37 % 100) / 100.0) * 100) / 100;
    in.push_back({1700000000000 + i * 15000, cpu});
  }
  ChunkEncoder enc;
  for (const Sample& s : in) enc.Append(s.t, s.v);
  const size_t stored = ExpectSealedRoundTrip(in, ChunkEncoding::kDecimal);
  EXPECT_LT(stored * 3, enc.data().size());
}

TEST(SealedChunkTest, IntegersNegativesAndOneSample) {
  ExpectSealedRoundTrip({{5, 42}}, ChunkEncoding::kDecimal);
  ExpectSealedRoundTrip({{1, -3}, {2, -2.5}, {3, 1e12}, {4, 0}, {5, -1e12}, {-100, 0.001}},
                        ChunkEncoding::kDecimal);
}

TEST(SealedChunkTest, FallsBackToXorForOtherValues) {
  const double inf = std::numeric_limits<double>::infinity();
  for (double odd : {std::nan(""), StaleNaN(), inf, -inf, -0.0, 0.1 + 0.2, 1e300, 1.0 / 3}) {
    SCOPED_TRACE(odd);
    ExpectSealedRoundTrip({{1, 1.5}, {2, odd}, {3, 2}}, ChunkEncoding::kXor);
  }
}

TEST(SealedChunkTest, RandomDecimalsRoundTrip) {
  std::mt19937_64 rng(7);  // fixed seed: replayable
  for (int round = 0; round < 200; round++) {
    const int scale = static_cast<int>(rng() % 10);
    const double p = std::pow(10.0, scale);
    std::vector<Sample> in;
    int64_t t = static_cast<int64_t>(rng() % 1000000);
    int64_t m = static_cast<int64_t>(rng() % 2000000) - 1000000;
    for (int i = 0; i < 1 + static_cast<int>(rng() % 150); i++) {
      t += static_cast<int64_t>(rng() % 30000);
      m += static_cast<int64_t>(rng() % 2001) - 1000;
      in.push_back({t, scale == 0 ? static_cast<double>(m) : static_cast<double>(m) / p});
    }
    ChunkEncoder enc;
    for (const Sample& s : in) enc.Append(s.t, s.v);
    std::vector<Sample> out;
    ASSERT_OK(DecodeSealedChunk(EncodeSealedChunk(enc.data()), &out));
    ASSERT_EQ(out.size(), in.size());
    for (size_t i = 0; i < in.size(); i++) {
      ASSERT_EQ(out[i].t, in[i].t);
      ASSERT_EQ(DoubleBits(out[i].v), DoubleBits(in[i].v)) << "round " << round << " i " << i;
    }
  }
}

TEST(SealedChunkTest, CorruptStoredChunkIsDataLoss) {
  std::vector<Sample> out;
  EXPECT_THAT(DecodeSealedChunk("", &out), testing::StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeSealedChunk("\x07xyz", &out), testing::StatusIs(absl::StatusCode::kDataLoss));
  ChunkEncoder enc;
  for (int i = 0; i < 50; i++) enc.Append(i * 1000, i * 3);
  const std::string stored = EncodeSealedChunk(enc.data());
  EXPECT_THAT(DecodeSealedChunk(absl::string_view(stored).substr(0, stored.size() - 2), &out),
              testing::StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace vigil::storage
