// server/metrics.h
//
// A small Prometheus-style metrics registry: counters, gauges and histograms,
// each a family of children keyed by label values, rendered in the Prometheus
// text exposition format (version 0.0.4) for /metrics.
//
// Thread-safe. Metric objects live as long as their Registry and never move, so
// callers look a child up once and keep the pointer on hot paths:
//
//   metrics::Counter* appended = registry->GetCounter(
//       "vigil_samples_appended_total", "Samples stored.");
//   appended->Inc(n);
#ifndef VIGIL_SERVER_METRICS_H_
#define VIGIL_SERVER_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace vigil::metrics {

// Label name/value pairs of one child, in the order given at registration.
using LabelPairs = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  // `v` must be >= 0; counters only go up.
  void Inc(double v = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds`: the upper bounds of the buckets, strictly increasing; +Inf is implicit.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative_counts;  // one per bound, then +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Get() const;

 private:
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> counts_ ABSL_GUARDED_BY(mu_);  // per bucket, non-cumulative
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

// Buckets for request durations in seconds (client_golang's DefBuckets).
std::vector<double> DefaultLatencyBuckets();

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Returns the child of family `name` with `labels`, creating both as needed.
  // The same (name, labels) always yields the same object. CHECK-fails if `name`
  // is already registered with another type or is not a valid metric name, or a
  // label name is invalid: these are programming errors.
  Counter* GetCounter(absl::string_view name, absl::string_view help,
                      const LabelPairs& labels = {});
  Gauge* GetGauge(absl::string_view name, absl::string_view help, const LabelPairs& labels = {});
  // `bounds` is used when the child is created; later calls may pass the same.
  Histogram* GetHistogram(absl::string_view name, absl::string_view help,
                          const std::vector<double>& bounds, const LabelPairs& labels = {});

  // Registers a callback run at the start of every Expose(), to refresh gauges
  // computed on demand (RSS, storage stats). It must not call Expose().
  void AddCollectHook(std::function<void()> hook);

  // The text exposition of every family, sorted by name, children in label order.
  std::string Expose();

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::map<LabelPairs, std::unique_ptr<Counter>> counters;
    std::map<LabelPairs, std::unique_ptr<Gauge>> gauges;
    std::map<LabelPairs, std::unique_ptr<Histogram>> histograms;
  };
  Family* GetFamily(absl::string_view name, absl::string_view help, Type type,
                    const LabelPairs& labels) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex hooks_mu_;
  std::vector<std::function<void()>> hooks_ ABSL_GUARDED_BY(hooks_mu_);
  absl::Mutex mu_;
  std::map<std::string, Family, std::less<>> families_ ABSL_GUARDED_BY(mu_);
};

// A sample value as the text format writes it: shortest round-trip decimal,
// "+Inf", "-Inf", "NaN".
std::string FormatSampleValue(double v);

}  // namespace vigil::metrics

#endif  // VIGIL_SERVER_METRICS_H_
