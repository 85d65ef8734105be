#include "query/engine.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "query/memory_source.h"

namespace vigil::query {
namespace {

using ::testing::HasSubstr;
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
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("exceeded maximum resolution of 100 points per timeseries")));
  Engine default_engine;
  EXPECT_THAT(default_engine.RangeQuery(&src, "m", 0, 100'000'000, 1'000),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("of 11,000 points")));
  EXPECT_THAT(engine.RangeQuery(&src, "m[5m]", 0, 10, 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
}


// Delegates to a MemorySeriesSource, recording each Select's hints; can advance a
// FakeClock on every Select (a source that is "slow" without sleeping) or fail.
class InstrumentedSource : public SeriesSource {
 public:
  MemorySeriesSource mem;
  FakeClock* clock = nullptr;
  absl::Duration per_select = absl::ZeroDuration();
  absl::Status fail = absl::OkStatus();
  std::vector<SelectHints> hints;

  absl::StatusOr<SelectResult> Select(const SelectHints& h,
                                      const std::vector<LabelMatcher>& ms) override {
    hints.push_back(h);
    if (clock != nullptr) clock->Advance(per_select);
    if (!fail.ok()) return fail;
    return mem.Select(h, ms);
  }
  absl::StatusOr<std::vector<std::string>> LabelNames(const std::vector<LabelMatcher>& ms,
                                                      int64_t mint, int64_t maxt) override {
    return mem.LabelNames(ms, mint, maxt);
  }
  absl::StatusOr<std::vector<std::string>> LabelValues(absl::string_view name,
                                                       const std::vector<LabelMatcher>& ms,
                                                       int64_t mint, int64_t maxt) override {
    return mem.LabelValues(name, ms, mint, maxt);
  }
};

TEST(MemorySeriesSourceTest, LaterSamplesReplaceAndSelectTrims) {
  MemorySeriesSource src;
  Labels l{{"__name__", "m"}};
  src.Add(l, {{10, 1}, {20, 2}, {30, 3}});
  src.Add(l, {{20, 5}, {5, 0}});
  ASSERT_OK_AND_ASSIGN(SelectResult r,
                       src.Select({10, 20}, {LabelMatcher::Equal("__name__", "m")}));
  ASSERT_EQ(r.series.size(), 1u);
  ASSERT_EQ(r.series[0].samples.size(), 2u);
  EXPECT_EQ(r.series[0].samples[0].v, 1);
  EXPECT_EQ(r.series[0].samples[1].v, 5);
  ASSERT_OK_AND_ASSIGN(r, src.Select({31, 40}, {LabelMatcher::Equal("__name__", "m")}));
  EXPECT_TRUE(r.series.empty());
  EXPECT_THAT(src.Select({0, 40}, {LabelMatcher::Equal("job", "")}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, src.LabelNames({}, 0, 40));
  EXPECT_EQ(names, std::vector<std::string>{"__name__"});
}

TEST(EngineLimitsTest, MaxSamplesIsResourceExhausted) {
  MemorySeriesSource src;
  for (int j = 0; j < 10; ++j) AddLinear(&src, absl::StrCat("j", j), 100, 1'000, 1);
  Engine engine(EngineOptions{.max_samples = 500});
  EXPECT_THAT(engine.InstantQuery(&src, "sum_over_time(m[1m])", 99'000),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("query processing would load too many samples into memory in "
                                 "query execution")));
  // The same query over less data fits.
  EXPECT_TRUE(engine.InstantQuery(&src, "sum_over_time(m[10s])", 99'000).ok());
  // One series over many steps counts per point, as do subqueries' inner steps.
  EXPECT_THAT(engine.RangeQuery(&src, "m{job=\"j1\"}", 0, 99'000, 100),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(engine.InstantQuery(&src, "max_over_time(m{job=\"j1\"}[1h:1ms])", 99'000),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(engine.RangeQuery(&src, "m{job=\"j1\"}", 0, 99'000, 1'000).ok());
}

TEST(EngineLimitsTest, TimeoutUsesInjectedClock) {
  InstrumentedSource src;
  AddLinear(&src.mem, "a", 10, 10'000, 1);
  FakeClock clock;
  src.clock = &clock;
  src.per_select = absl::Seconds(20);
  Engine engine(EngineOptions{.timeout = absl::Seconds(30), .clock = &clock});
  // One select (20s of "work") fits in 30s; three do not.
  EXPECT_TRUE(engine.InstantQuery(&src, "m", 50'000).ok());
  EXPECT_THAT(engine.InstantQuery(&src, "m + m + m", 50'000),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("query timed out")));
  // A per-query timeout shorter than the engine's applies.
  EXPECT_THAT(engine.InstantQuery(&src, "m", 50'000, absl::Seconds(10)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(EngineLimitsTest, SourceErrorsPassThrough) {
  InstrumentedSource src;
  src.fail = absl::UnavailableError("shard down");
  Engine engine;
  EXPECT_THAT(engine.InstantQuery(&src, "m", 0),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shard down")));
}

TEST(EngineTest, SelectHintsCoverRangeAndOffset) {
  InstrumentedSource src;
  Engine engine;
  ASSERT_TRUE(engine.InstantQuery(&src, "rate(m[5m] offset 1m)", 1'000'000).ok());
  ASSERT_EQ(src.hints.size(), 1u);
  EXPECT_EQ(src.hints[0].maxt, 1'000'000 - 60'000);
  EXPECT_EQ(src.hints[0].mint, 1'000'000 - 60'000 - 300'000);
  src.hints.clear();
  ASSERT_TRUE(engine.RangeQuery(&src, "m", 600'000, 1'200'000, 60'000).ok());
  ASSERT_EQ(src.hints.size(), 1u);  // one read for all steps
  EXPECT_EQ(src.hints[0].mint, 300'000);
  EXPECT_EQ(src.hints[0].maxt, 1'200'000);
}

TEST(EngineTest, VectorMatchingErrors) {
  MemorySeriesSource src;
  src.Add(Labels{{"__name__", "a"}, {"x", "1"}, {"y", "1"}}, {{0, 1}});
  src.Add(Labels{{"__name__", "a"}, {"x", "1"}, {"y", "2"}}, {{0, 2}});
  src.Add(Labels{{"__name__", "b"}, {"x", "1"}, {"y", "1"}}, {{0, 3}});
  src.Add(Labels{{"__name__", "b"}, {"x", "1"}, {"y", "2"}}, {{0, 4}});
  Engine engine;
  EXPECT_THAT(engine.InstantQuery(&src, "a + on(x) b", 0),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("many-to-many matching not allowed")));
  EXPECT_THAT(engine.InstantQuery(&src, "a + on(x) group_left b", 0),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("found duplicate series for the match group {x=\"1\"} on the "
                                 "right hand-side")));
  ASSERT_OK_AND_ASSIGN(QueryResult r, engine.InstantQuery(&src, "a + b", 0));
  ASSERT_EQ(r.series.size(), 2u);
  EXPECT_EQ(r.series[0].labels, (Labels{{"x", "1"}, {"y", "1"}}));
  EXPECT_EQ(r.series[0].samples[0].v, 4);
  // Comparison filters and keeps the name; bool keeps all and drops it.
  ASSERT_OK_AND_ASSIGN(r, engine.InstantQuery(&src, "a > 1", 0));
  ASSERT_EQ(r.series.size(), 1u);
  EXPECT_EQ(r.series[0].labels.MetricName(), "a");
  ASSERT_OK_AND_ASSIGN(r, engine.InstantQuery(&src, "a > bool 1", 0));
  ASSERT_EQ(r.series.size(), 2u);
  EXPECT_FALSE(r.series[0].labels.Has("__name__"));
}

TEST(EngineTest, ResultOrderAndTypes) {
  MemorySeriesSource src;
  src.Add(Labels{{"__name__", "m"}, {"i", "a"}}, {{0, 3}});
  src.Add(Labels{{"__name__", "m"}, {"i", "b"}}, {{0, 1}});
  src.Add(Labels{{"__name__", "m"}, {"i", "c"}}, {{0, 2}});
  Engine engine;
  ASSERT_OK_AND_ASSIGN(QueryResult r, engine.InstantQuery(&src, "sort(m)", 0));
  ASSERT_EQ(r.series.size(), 3u);
  EXPECT_EQ(r.series[0].labels.Get("i"), "b");
  EXPECT_EQ(r.series[2].labels.Get("i"), "a");
  ASSERT_OK_AND_ASSIGN(r, engine.InstantQuery(&src, "m * 2", 0));
  EXPECT_EQ(r.series[0].labels.Get("i"), "a");  // by labels otherwise
  ASSERT_OK_AND_ASSIGN(r, engine.InstantQuery(&src, R"("hello")", 5'000));
  EXPECT_EQ(r.type, ValueType::kString);
  EXPECT_EQ(r.str, "hello");
  ASSERT_OK_AND_ASSIGN(r, engine.RangeQuery(&src, "time()", 0, 120'000, 60'000));
  EXPECT_EQ(r.type, ValueType::kMatrix);
  ASSERT_EQ(r.series.size(), 1u);
  EXPECT_TRUE(r.series[0].labels.empty());
  ASSERT_EQ(r.series[0].samples.size(), 3u);
  EXPECT_EQ(r.series[0].samples[2].v, 120);
}

// Every step of a range query equals an instant query at that time.
TEST(EngineTest, RangeQueryMatchesInstantQueries) {
  MemorySeriesSource src;
  for (int j = 0; j < 3; ++j) {
    std::vector<Sample> samples;
    for (int i = 0; i < 60; ++i) {
      if ((i + j) % 7 == 0) continue;  // gaps
      double v = i * (j + 1) - (i > 30 ? 25 : 0);  // with a counter reset
      samples.push_back({i * 15'000, v});
    }
    src.Add(Labels{{"__name__", "m"}, {"j", absl::StrCat(j)}}, samples);
  }
  const char* exprs[] = {
      "m", "rate(m[1m])", "sum by (j) (increase(m[2m]))", "m offset 1m", "-m",
      "max_over_time(m[5m:30s])", "topk(1, m)", "m > 20", "deriv(m[3m])",
      "absent(nope)", "histogram_quantile(0.5, m)", "m @ 300", "changes(m[5m]) + 1",
      "count(m) by (j) or vector(1)", "scalar(sum(m)) * m"};
  Engine engine;
  for (const char* expr : exprs) {
    SCOPED_TRACE(expr);
    ASSERT_OK_AND_ASSIGN(QueryResult range, engine.RangeQuery(&src, expr, 0, 900'000, 45'000));
    for (int64_t t = 0; t <= 900'000; t += 45'000) {
      ASSERT_OK_AND_ASSIGN(QueryResult inst, engine.InstantQuery(&src, expr, t));
      std::vector<std::pair<std::string, double>> want, got;
      for (const Series& s : inst.series) want.push_back({s.labels.ToString(), s.samples[0].v});
      for (const Series& s : range.series) {
        for (const Sample& p : s.samples) {
          if (p.t == t) got.push_back({s.labels.ToString(), p.v});
        }
      }
      std::sort(want.begin(), want.end());
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got.size(), want.size()) << "at " << t;
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].first, want[i].first) << "at " << t;
        if (!(std::isnan(got[i].second) && std::isnan(want[i].second))) {
          EXPECT_DOUBLE_EQ(got[i].second, want[i].second) << "at " << t;
        }
      }
    }
  }
}

}  // namespace
}  // namespace vigil::query
