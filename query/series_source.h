// query/series_source.h
//
// SeriesSource: what the PromQL engine reads. A single node adapts its TSDB to it
// (server/); the cluster plugs in a source that fans out to shard replicas and
// merges them, without the engine knowing. Implementations must be thread-safe:
// the engine and HTTP handlers may call them concurrently.
#ifndef VIGIL_QUERY_SERIES_SOURCE_H_
#define VIGIL_QUERY_SERIES_SOURCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/matcher.h"
#include "common/sample.h"

namespace vigil::query {

struct SelectHints {
  int64_t mint = 0;  // inclusive, ms
  int64_t maxt = 0;  // inclusive, ms
};

struct SelectResult {
  // Series matching every matcher with at least one sample in [mint, maxt], each
  // with exactly its samples in that range (time-ordered, unique timestamps, stale
  // markers included). Sorted by labels, no two with equal labels.
  std::vector<Series> series;
  // Non-fatal problems (e.g. a shard answered by fewer replicas than a quorum
  // under partial_response); surfaced as the API's "warnings".
  std::vector<std::string> warnings;
};

class SeriesSource {
 public:
  virtual ~SeriesSource() = default;

  // kInvalidArgument for matchers that select everything (all match ""), as
  // Prometheus refuses `{foo=~".*"}`; kUnavailable when data cannot be reached;
  // kResourceExhausted past a configured limit.
  virtual absl::StatusOr<SelectResult> Select(const SelectHints& hints,
                                              const std::vector<LabelMatcher>& matchers) = 0;

  // Sorted, unique label names of the series matching `matchers` (all series if
  // empty) in [mint, maxt].
  virtual absl::StatusOr<std::vector<std::string>> LabelNames(
      const std::vector<LabelMatcher>& matchers, int64_t mint, int64_t maxt) = 0;

  // Sorted, unique values of label `name` in the matching series.
  virtual absl::StatusOr<std::vector<std::string>> LabelValues(
      absl::string_view name, const std::vector<LabelMatcher>& matchers, int64_t mint,
      int64_t maxt) = 0;
};

}  // namespace vigil::query

#endif  // VIGIL_QUERY_SERIES_SOURCE_H_
