// query/memory_source.h
//
// MemorySeriesSource: a SeriesSource over series held in memory, for tests and the
// conformance runner. Thread-safe: Add and the SeriesSource calls may interleave.
#ifndef VIGIL_QUERY_MEMORY_SOURCE_H_
#define VIGIL_QUERY_MEMORY_SOURCE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "query/series_source.h"

namespace vigil::query {

class MemorySeriesSource : public SeriesSource {
 public:
  // Adds samples to the series with `labels` (created if new). Samples with a
  // timestamp already present replace the old value.
  void Add(const Labels& labels, const std::vector<Sample>& samples);
  void Clear();
  // Number of Select calls so far (lets tests count how often data is read).
  int64_t select_calls() const;

  absl::StatusOr<SelectResult> Select(const SelectHints& hints,
                                      const std::vector<LabelMatcher>& matchers) override;
  absl::StatusOr<std::vector<std::string>> LabelNames(const std::vector<LabelMatcher>& matchers,
                                                      int64_t mint, int64_t maxt) override;
  absl::StatusOr<std::vector<std::string>> LabelValues(absl::string_view name,
                                                       const std::vector<LabelMatcher>& matchers,
                                                       int64_t mint, int64_t maxt) override;

 private:
  // The series matching `matchers` with samples in [mint, maxt], trimmed to it.
  std::vector<Series> Matching(const std::vector<LabelMatcher>& matchers, int64_t mint,
                               int64_t maxt) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  // Keyed by labels, so iteration is in label order.
  // Invariant: each series' samples are sorted by time, timestamps unique.
  std::map<Labels, std::vector<Sample>> series_ ABSL_GUARDED_BY(mu_);
  int64_t select_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vigil::query

#endif  // VIGIL_QUERY_MEMORY_SOURCE_H_
