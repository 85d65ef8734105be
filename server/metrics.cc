// server/metrics.cc
#include "server/metrics.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/labels.h"
#include "glog/logging.h"

namespace vigil::metrics {
namespace {

std::string EscapeLabelValue(absl::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// `{a="x",b="y"}` with `extra` (e.g. le) appended; "" without labels.
std::string FormatLabels(const LabelPairs& labels, absl::string_view extra_name = {},
                         absl::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (const auto& [n, v] : labels) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", n, "=\"", EscapeLabelValue(v), "\"");
  }
  if (!extra_name.empty()) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", extra_name, "=\"", extra_value, "\"");
  }
  out += "}";
  return out;
}

}  // namespace

std::string FormatSampleValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  CHECK(ec == std::errc());
  return std::string(buf, end);
}

void Counter::Inc(double v) {
  DCHECK_GE(v, 0);
  value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
  for (size_t i = 1; i < bounds_.size(); ++i) CHECK_LT(bounds_[i - 1], bounds_[i]);
}

void Histogram::Observe(double v) {
  // First bucket whose upper bound is >= v (buckets are "le").
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  absl::MutexLock l(&mu_);
  ++counts_[i];
  sum_ += v;
}

Histogram::Snapshot Histogram::Get() const {
  Snapshot s;
  s.bounds = bounds_;
  absl::MutexLock l(&mu_);
  uint64_t running = 0;
  for (uint64_t c : counts_) {
    running += c;
    s.cumulative_counts.push_back(running);
  }
  s.count = running;
  s.sum = sum_;
  return s;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Registry::Family* Registry::GetFamily(absl::string_view name, absl::string_view help, Type type,
                                      const LabelPairs& labels) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    CHECK(IsValidMetricName(name)) << name;
    for (const auto& l : labels) CHECK(IsValidLabelName(l.first)) << name << " " << l.first;
    it = families_.emplace(std::string(name), Family{type, std::string(help), {}, {}, {}}).first;
  }
  CHECK(it->second.type == type) << "metric " << name << " registered with another type";
  return &it->second;
}

Counter* Registry::GetCounter(absl::string_view name, absl::string_view help,
                              const LabelPairs& labels) {
  absl::MutexLock l(&mu_);
  auto& slot = GetFamily(name, help, Type::kCounter, labels)->counters[labels];
  if (slot == nullptr) slot = std::make_unique<Counter>();
  return slot.get();
}

Gauge* Registry::GetGauge(absl::string_view name, absl::string_view help,
                          const LabelPairs& labels) {
  absl::MutexLock l(&mu_);
  auto& slot = GetFamily(name, help, Type::kGauge, labels)->gauges[labels];
  if (slot == nullptr) slot = std::make_unique<Gauge>();
  return slot.get();
}

Histogram* Registry::GetHistogram(absl::string_view name, absl::string_view help,
                                  const std::vector<double>& bounds, const LabelPairs& labels) {
  absl::MutexLock l(&mu_);
  auto& slot = GetFamily(name, help, Type::kHistogram, labels)->histograms[labels];
  if (slot == nullptr) slot = std::make_unique<Histogram>(bounds);
  return slot.get();
}

void Registry::AddCollectHook(std::function<void()> hook) {
  absl::MutexLock l(&hooks_mu_);
  hooks_.push_back(std::move(hook));
}

std::string Registry::Expose() {
  {
    absl::MutexLock l(&hooks_mu_);
    for (const auto& hook : hooks_) hook();
  }
  std::string out;
  absl::MutexLock l(&mu_);
  for (const auto& [name, f] : families_) {
    static constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};
    absl::StrAppend(&out, "# HELP ", name, " ", EscapeHelp(f.help), "\n# TYPE ", name, " ",
                    kTypeNames[static_cast<int>(f.type)], "\n");
    for (const auto& [labels, c] : f.counters) {
      absl::StrAppend(&out, name, FormatLabels(labels), " ", FormatSampleValue(c->Value()), "\n");
    }
    for (const auto& [labels, g] : f.gauges) {
      absl::StrAppend(&out, name, FormatLabels(labels), " ", FormatSampleValue(g->Value()), "\n");
    }
    for (const auto& [labels, h] : f.histograms) {
      const Histogram::Snapshot s = h->Get();
      for (size_t i = 0; i <= s.bounds.size(); ++i) {
        const std::string le = i < s.bounds.size() ? FormatSampleValue(s.bounds[i]) : "+Inf";
        absl::StrAppend(&out, name, "_bucket", FormatLabels(labels, "le", le), " ",
                        s.cumulative_counts[i], "\n");
      }
      absl::StrAppend(&out, name, "_sum", FormatLabels(labels), " ", FormatSampleValue(s.sum),
                      "\n", name, "_count", FormatLabels(labels), " ", s.count, "\n");
    }
  }
  return out;
}

}  // namespace vigil::metrics
