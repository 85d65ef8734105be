#include "query/engine.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "query/memory_source.h"

namespace vigil::query {
namespace {

using ::vigil::testing::StatusIs;

// `name{job}` with samples v(i) at i*step_ms for i in [0, n).
void AddLinear(MemorySeriesSource* src, const std::string& job, int n, int64_t step_ms,
               double per_step) {
  std::vector<Sample> samples;
  for (int i = 0; i < n; ++i) samples.push_back({i * step_ms, i * per_step});
  src->Add(Labels{{"__name__", "m"}, {"job", job}}, samples);
}

TEST(EngineTest, InstantVectorSelectorWithLookback) {
  MemorySeriesSource src;
  AddLinear(&src, "a", 10, 10'000, 1);  // 0..9 at 0s..90s
  Engine engine;
  ASSERT_OK_AND_ASSIGN(QueryResult r, engine.InstantQuery(&src, R"(m{job="a"})", 95'000));
  ASSERT_EQ(r.series.size(), 1u);
  EXPECT_EQ(r.series[0].samples[0].v, 9);
  EXPECT_EQ(r.series[0].samples[0].t, 95'000);
  // 5m after the last sample it is still there; a millisecond later it is gone.
  ASSERT_OK_AND_ASSIGN(r, engine.InstantQuery(&src, "m", 390'000));
  EXPECT_EQ(r.series.size(), 1u);
  ASSERT_OK_AND_ASSIGN(r, engine.InstantQuery(&src, "m", 390'001));
  EXPECT_TRUE(r.series.empty());
}

TEST(EngineTest, StaleMarkerEndsSeries) {
  MemorySeriesSource src;
  src.Add(Labels{{"__name__", "m"}}, {{0, 1}, {10'000, StaleNaN()}, {20'000, 2}});
  Engine engine;
  ASSERT_OK_AND_ASSIGN(QueryResult r, engine.InstantQuery(&src, "m", 15'000));
  EXPECT_TRUE(r.series.empty());
  ASSERT_OK_AND_ASSIGN(r, engine.InstantQuery(&src, "m[30s]", 20'000));
  ASSERT_EQ(r.series.size(), 1u);
  EXPECT_EQ(r.series[0].samples.size(), 2u);  // the stale marker is not a point
}

TEST(EngineTest, OffsetAndNumberLiteral) {
  MemorySeriesSource src;
  AddLinear(&src, "a", 10, 10'000, 1);
  Engine engine;
  ASSERT_OK_AND_ASSIGN(QueryResult r, engine.InstantQuery(&src, "m offset 30s", 60'000));
  ASSERT_EQ(r.series.size(), 1u);
  EXPECT_EQ(r.series[0].samples[0].v, 3);
  ASSERT_OK_AND_ASSIGN(r, engine.InstantQuery(&src, "-2.5", 0));
  EXPECT_EQ(r.type, ValueType::kScalar);
  EXPECT_EQ(r.scalar, -2.5);
}

TEST(EngineTest, RangeQueryStepsAndLimits) {
  MemorySeriesSource src;
  AddLinear(&src, "a", 10, 10'000, 1);
  Engine engine(EngineOptions{.max_points_per_series = 100});
  ASSERT_OK_AND_ASSIGN(QueryResult r, engine.RangeQuery(&src, "m", 0, 60'000, 20'000));
  EXPECT_EQ(r.type, ValueType::kMatrix);
  ASSERT_EQ(r.series.size(), 1u);
  ASSERT_EQ(r.series[0].samples.size(), 4u);
  EXPECT_EQ(r.series[0].samples[3].v, 6);
  EXPECT_THAT(engine.RangeQuery(&src, "m", 0, 1'000'000, 1'000),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(engine.RangeQuery(&src, "m[5m]", 0, 10, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vigil::query
