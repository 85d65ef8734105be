#include "server/metrics.h"

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::metrics {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, SameNameAndLabelsGiveSameObject) {
  Registry r;
  Counter* a = r.GetCounter("x_total", "help", {{"k", "v"}});
  EXPECT_EQ(a, r.GetCounter("x_total", "help", {{"k", "v"}}));
  EXPECT_NE(a, r.GetCounter("x_total", "help", {{"k", "w"}}));
}

TEST(MetricsTest, ExposesCountersGaugesAndHistograms) {
  Registry r;
  r.GetCounter("req_total", "Requests.", {{"handler", "q"}, {"code", "200"}})->Inc(3);
  r.GetGauge("temp", "A \"gauge\" with\nnewline \\ help.")->Set(-1.5);
  Histogram* h = r.GetHistogram("lat_seconds", "Latency.", {0.1, 1}, {{"handler", "w\"x"}});
  h->Observe(0.05);
  h->Observe(0.1);  // le is inclusive
  h->Observe(5);
  const std::string text = r.Expose();
  EXPECT_EQ(text,
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{handler=\"w\\\"x\",le=\"0.1\"} 2\n"
            "lat_seconds_bucket{handler=\"w\\\"x\",le=\"1\"} 2\n"
            "lat_seconds_bucket{handler=\"w\\\"x\",le=\"+Inf\"} 3\n"
            "lat_seconds_sum{handler=\"w\\\"x\"} 5.15\n"
            "lat_seconds_count{handler=\"w\\\"x\"} 3\n"
            "# HELP req_total Requests.\n"
            "# TYPE req_total counter\n"
            "req_total{handler=\"q\",code=\"200\"} 3\n"
            "# HELP temp A \"gauge\" with\\nnewline \\\\ help.\n"
            "# TYPE temp gauge\n"
            "temp -1.5\n");
}

TEST(MetricsTest, FormatsSpecialValues) {
  EXPECT_EQ(FormatSampleValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatSampleValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatSampleValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatSampleValue(1e21), "1e+21");
  EXPECT_EQ(FormatSampleValue(42), "42");
}

TEST(MetricsTest, CollectHooksRunBeforeExposition) {
  Registry r;
  Gauge* g = r.GetGauge("refreshed", "h");
  int calls = 0;
  r.AddCollectHook([&] { g->Set(++calls); });
  EXPECT_THAT(r.Expose(), HasSubstr("refreshed 1\n"));
  EXPECT_THAT(r.Expose(), HasSubstr("refreshed 2\n"));
}

TEST(MetricsTest, ConcurrentIncrementsAreNotLost) {
  Registry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r] {
      for (int i = 0; i < 10000; ++i) {
        r.GetCounter("c_total", "h", {{"k", "v"}})->Inc();
        r.GetHistogram("h_seconds", "h", DefaultLatencyBuckets())->Observe(0.001);
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::string text = r.Expose();
  EXPECT_THAT(text, HasSubstr("c_total{k=\"v\"} 40000\n"));
  EXPECT_THAT(text, HasSubstr("h_seconds_count 40000\n"));
}

TEST(MetricsDeathTest, TypeMismatchIsABug) {
  Registry r;
  r.GetCounter("m", "h");
  EXPECT_DEATH(r.GetGauge("m", "h"), "another type");
}

}  // namespace
}  // namespace vigil::metrics
