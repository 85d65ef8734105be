// common/labels.h
//
// Labels: a series' identity, a set of (name, value) pairs kept sorted by name
// (the canonical form). `__name__` holds the metric name, as in Prometheus.
// Value type; not synchronized.
#ifndef VIGIL_COMMON_LABELS_H_
#define VIGIL_COMMON_LABELS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vigil {

inline constexpr absl::string_view kMetricNameLabel = "__name__";

struct Label {
  std::string name;
  std::string value;

  friend bool operator==(const Label& a, const Label& b) {
    return a.name == b.name && a.value == b.value;
  }
  friend bool operator<(const Label& a, const Label& b) {
    return a.name < b.name || (a.name == b.name && a.value < b.value);
  }
};

class Labels {
 public:
  Labels() = default;
  // Sorts by name and drops empty values (absent). Does not validate: call
  // ValidateLabels() on untrusted input first.
  explicit Labels(std::vector<Label> labels);
  Labels(std::initializer_list<std::pair<absl::string_view, absl::string_view>> l);

  const std::vector<Label>& labels() const { return labels_; }
  size_t size() const { return labels_.size(); }
  bool empty() const { return labels_.empty(); }
  std::vector<Label>::const_iterator begin() const { return labels_.begin(); }
  std::vector<Label>::const_iterator end() const { return labels_.end(); }

  // The value of `name`, or "" when absent (Prometheus: empty value = absent).
  absl::string_view Get(absl::string_view name) const;
  bool Has(absl::string_view name) const;
  absl::string_view MetricName() const { return Get(kMetricNameLabel); }

  // Sets or replaces `name`; an empty value removes the label.
  void Set(absl::string_view name, absl::string_view value);
  void Remove(absl::string_view name);

  // Prometheus notation: `up{instance="a", job="b"}`; values escaped as Go %q.
  std::string ToString() const;
  // 64-bit xxhash of the canonical encoding; stable across processes and versions
  // (it places series on shards, so changing it moves data).
  uint64_t Hash() const;
  // Canonical byte encoding: for each label, name '\xff' value '\xff'.
  std::string Canonical() const;

  friend bool operator==(const Labels& a, const Labels& b) { return a.labels_ == b.labels_; }
  friend bool operator!=(const Labels& a, const Labels& b) { return !(a == b); }
  friend bool operator<(const Labels& a, const Labels& b) { return a.labels_ < b.labels_; }

 private:
  std::vector<Label> labels_;  // Invariant: sorted by name, names unique (after Validate).
};

struct LabelLimits {
  size_t max_label_name_length = 1024;
  size_t max_label_value_length = 4096;
  size_t max_labels_per_series = 64;
};

// Prometheus' rules: a metric name is present and matches [a-zA-Z_:][a-zA-Z0-9_:]*,
// label names match [a-zA-Z_][a-zA-Z0-9_]*, names are unique, values are UTF-8
// (an empty value means absent and is allowed),
// lengths and count within `limits`. Input must be sorted by name (`sorted` is
// checked so that callers decoding wire formats can report unsorted input).
// kInvalidArgument naming the offending label.
absl::Status ValidateLabels(const std::vector<Label>& labels, const LabelLimits& limits,
                            bool require_sorted = false);
bool IsValidMetricName(absl::string_view name);
bool IsValidLabelName(absl::string_view name);

}  // namespace vigil

#endif  // VIGIL_COMMON_LABELS_H_
