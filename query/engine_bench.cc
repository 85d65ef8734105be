// Engine benchmarks over an in-memory source: dashboard-shaped queries.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "glog/logging.h"
#include "query/engine.h"
#include "query/memory_source.h"

namespace vigil::query {
namespace {

constexpr int64_t kScrapeMs = 15'000;
constexpr int64_t kHourMs = 3'600'000;

// `n` counter series over 2h at 15s, 10 jobs; plus histogram buckets for 100 series.
MemorySeriesSource* BuildSource(int n) {
  auto* src = new MemorySeriesSource;
  for (int i = 0; i < n; ++i) {
    Labels l{{"__name__", "x"}, {"job", absl::StrCat("job", i % 10)},
             {"instance", absl::StrCat("host-", i)}};
    std::vector<Sample> samples;
    for (int64_t t = 0; t <= 2 * kHourMs; t += kScrapeMs) samples.push_back({t, t / 1000.0 * (i % 7 + 1)});
    src->Add(l, samples);
  }
  const char* les[] = {"0.1", "0.5", "1", "5", "+Inf"};
  for (int i = 0; i < 100; ++i) {
    for (int b = 0; b < 5; ++b) {
      Labels l{{"__name__", "lat_bucket"}, {"job", absl::StrCat("job", i % 10)},
               {"instance", absl::StrCat("host-", i)}, {"le", les[b]}};
      std::vector<Sample> samples;
      for (int64_t t = 0; t <= 2 * kHourMs; t += kScrapeMs) samples.push_back({t, t / 1000.0 * (b + 1)});
      src->Add(l, samples);
    }
  }
  return src;
}

}  // namespace

MemorySeriesSource* Source() {
  static MemorySeriesSource* src = BuildSource(10'000);
  return src;
}

namespace {

void RunRange(benchmark::State& state, const char* expr) {
  Engine engine;
  for (auto _ : state) {
    auto r = engine.RangeQuery(Source(), expr, kHourMs, 2 * kHourMs, 15'000);
    CHECK(r.ok()) << r.status();
    benchmark::DoNotOptimize(r->series.size());
  }
}

void BM_SumRate(benchmark::State& s) { RunRange(s, "sum by (job) (rate(x[5m]))"); }
void BM_Topk(benchmark::State& s) { RunRange(s, "topk(5, rate(x[5m]))"); }
void BM_HistogramQuantile(benchmark::State& s) {
  RunRange(s, "histogram_quantile(0.9, sum by (le, job) (rate(lat_bucket[5m])))");
}
void BM_VectorMatching(benchmark::State& s) {
  RunRange(s, "sum by (job) (rate(x[5m]) / on(instance, job) group_left rate(x[10m]))");
}
void BM_RegexSelector(benchmark::State& s) {
  Engine engine;
  for (auto _ : s) {
    auto r = engine.InstantQuery(Source(), R"(count(x{instance=~"host-1.*"}))", 2 * kHourMs);
    CHECK(r.ok()) << r.status();
  }
}
BENCHMARK(BM_SumRate)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Topk)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HistogramQuantile)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_VectorMatching)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RegexSelector)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vigil::query

int main(int argc, char** argv) {
  vigil::query::Source();  // built before timing starts
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
