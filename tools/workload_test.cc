#include "tools/workload.h"

#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::tools {
namespace {

using SampleKey = std::pair<std::string, int64_t>;  // canonical labels, time

std::map<SampleKey, uint64_t> Generate(const WorkloadOptions& opts, int shards) {
  std::map<SampleKey, uint64_t> all;
  for (int s = 0; s < shards; ++s) {
    ShardGenerator gen(opts, s, shards);
    Batch b;
    while (gen.Next(b)) {
      for (const Series& series : b.series) {
        for (const Sample& sample : series.samples) {
          all[{series.labels.Canonical(), sample.t}] = DoubleBits(sample.v);
        }
      }
    }
  }
  return all;
}

WorkloadOptions SmallOptions() {
  WorkloadOptions o;
  o.series = 3 * SeriesPerHost() + 5;
  o.rounds = 7;
  o.start_ms = 1700000000000;
  o.samples_per_request = 50;
  return o;
}

TEST(WorkloadTest, SameDataHoweverSharded) {
  for (ValueMode mode : {ValueMode::kRealistic, ValueMode::kRandom}) {
    WorkloadOptions o = SmallOptions();
    o.mode = mode;
    auto one = Generate(o, 1);
    EXPECT_EQ(one.size(), static_cast<size_t>(o.series * o.rounds));
    EXPECT_EQ(Generate(o, 3), one);
    EXPECT_EQ(Generate(o, 7), one);
  }
}

TEST(WorkloadTest, BatchesAreBoundedAndEachSeriesArrivesInOrder) {
  WorkloadOptions o = SmallOptions();
  o.samples_per_request = 1000;  // larger than a shard's series: batches span rounds
  for (int shards : {1, 4}) {
    int64_t total = 0;
    for (int s = 0; s < shards; ++s) {
      ShardGenerator gen(o, s, shards);
      std::map<std::string, int64_t> last_t;
      Batch b;
      int64_t shard_samples = 0;
      while (gen.Next(b)) {
        EXPECT_LE(b.samples, o.samples_per_request);
        std::set<std::string> in_batch;
        for (const Series& series : b.series) {
          ASSERT_OK(ValidateLabels(series.labels.labels(), LabelLimits(), /*require_sorted=*/true));
          EXPECT_TRUE(in_batch.insert(series.labels.Canonical()).second) << "series twice in a batch";
          for (const Sample& sample : series.samples) {
            auto [it, fresh] = last_t.try_emplace(series.labels.Canonical(), sample.t);
            if (!fresh) {
              EXPECT_EQ(sample.t, it->second + o.interval_ms) << series.labels.ToString();
              it->second = sample.t;
            }
            ++shard_samples;
          }
        }
      }
      EXPECT_EQ(shard_samples, gen.TotalSamples());
      total += shard_samples;
    }
    EXPECT_EQ(total, o.series * o.rounds);
  }
}

TEST(WorkloadTest, CountersNeverDecreaseAndSeriesAreDistinct) {
  WorkloadOptions o = SmallOptions();
  o.rounds = 50;
  ShardGenerator gen(o, 0, 1);
  std::map<std::string, double> last;
  std::set<std::string> names;
  Batch b;
  while (gen.Next(b)) {
    for (const Series& series : b.series) {
      std::string key = series.labels.ToString();
      names.insert(key);
      bool counter = absl::EndsWith(series.labels.MetricName(), "_total");
      for (const Sample& s : series.samples) {
        if (counter && last.count(key)) EXPECT_GE(s.v, last[key]) << key;
        last[key] = s.v;
      }
    }
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(o.series));
}

TEST(WorkloadTest, HistogramBucketsAreCumulative) {
  WorkloadOptions o = SmallOptions();
  o.rounds = 30;
  std::map<std::pair<std::string, int64_t>, std::map<double, double>> hist;  // (host, t): le -> v
  ShardGenerator gen(o, 0, 1);
  Batch b;
  while (gen.Next(b)) {
    for (const Series& series : b.series) {
      if (series.labels.MetricName() != "node_request_duration_seconds_bucket") continue;
      double le = std::stod(std::string(series.labels.Get("le")));
      for (const Sample& s : series.samples) {
        hist[{std::string(series.labels.Get("instance")), s.t}][le] = s.v;
      }
    }
  }
  ASSERT_EQ(hist.size(), static_cast<size_t>(3 * o.rounds));  // the 4th host has no buckets
  std::map<std::pair<std::string, double>, double> last;  // (host, le) -> value
  for (const auto& [host_t, buckets] : hist) {
    double prev = 0;
    for (const auto& [le, v] : buckets) {
      EXPECT_GE(v, prev) << host_t.first << " le=" << le;
      prev = v;
      double& before = last[{host_t.first, le}];
      EXPECT_GE(v, before) << host_t.first << " le=" << le;
      before = v;
    }
  }
}

TEST(WorkloadTest, OpenMetricsHasEverySample) {
  WorkloadOptions o = SmallOptions();
  o.series = 2;
  o.rounds = 3;
  std::ostringstream out;
  WriteOpenMetrics(o, out);
  std::vector<std::string> lines = absl::StrSplit(out.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines.back(), "# EOF");
  auto all = Generate(o, 1);
  // First series, first sample: the value printed is the value generated.
  Labels l0 = SeriesLabels(0);
  double v0;
  memcpy(&v0, &all.at({l0.Canonical(), o.start_ms}), sizeof v0);
  EXPECT_THAT(lines[0], ::testing::StartsWith(std::string(l0.MetricName()) + "{"));
  EXPECT_THAT(lines[0], ::testing::EndsWith(absl::StrFormat(" %.17g 1700000000.000", v0)));
  EXPECT_THAT(lines[1], ::testing::EndsWith(" 1700000015.000"));
}

}  // namespace
}  // namespace vigil::tools
