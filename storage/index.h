// storage/index.h
//
// PostingsIndex: the in-memory inverted index, label pair -> sorted ids of the
// series that carry it. The TSDB keeps the persistent copy in RocksDB
// ('P' keys, storage/FORMAT.md) and rebuilds this one from it on Open.
// Answers matchers with Prometheus semantics: a series lacking a label matches
// it as "", regexes are fully anchored, `=~"a|b"` becomes two lookups.
// Not synchronized: the TSDB guards it with its mutex.
#ifndef VIGIL_STORAGE_INDEX_H_
#define VIGIL_STORAGE_INDEX_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/matcher.h"

namespace vigil::storage {

using SeriesId = uint32_t;

class PostingsIndex {
 public:
  // Adds series `id` under (name, value). Ids must be added in increasing order
  // per pair, except that re-adding the newest id is a no-op.
  void Add(SeriesId id, absl::string_view name, absl::string_view value);
  // Registers `id` as a series (for matchers that match series without a label).
  void AddSeries(SeriesId id);
  // Removes every id in `ids` from every posting list.
  void RemoveSeries(const absl::flat_hash_set<SeriesId>& ids);

  // Sorted ids of the series that match every matcher. kInvalidArgument if every
  // matcher matches the empty string (that would select everything).
  absl::StatusOr<std::vector<SeriesId>> Select(const std::vector<LabelMatcher>& matchers) const;
  // Like Select, but no matchers selects every series.
  std::vector<SeriesId> SelectOrAll(const std::vector<LabelMatcher>& matchers) const;

  // Sorted label names / values of `name` over all series.
  std::vector<std::string> LabelNames() const;
  std::vector<std::string> LabelValues(absl::string_view name) const;

  size_t num_series() const { return all_.size(); }
  size_t MemoryUsage() const;

 private:
  using Postings = std::vector<SeriesId>;
  using ValueMap = absl::flat_hash_map<std::string, Postings>;

  // Sorted union of the postings of `name`'s values for which `pred` holds.
  Postings UnionWhere(absl::string_view name, const std::function<bool(absl::string_view)>& pred) const;
  // Series that carry a value of m.name() matching m (for a matcher not matching "").
  Postings Matching(const LabelMatcher& m) const;
  std::vector<SeriesId> Evaluate(const std::vector<LabelMatcher>& matchers) const;

  absl::flat_hash_map<std::string, ValueMap> postings_;
  Postings all_;  // every series, sorted
};

// Sorted intersection / difference of sorted id lists.
std::vector<SeriesId> Intersect(const std::vector<SeriesId>& a, const std::vector<SeriesId>& b);
std::vector<SeriesId> Subtract(const std::vector<SeriesId>& a, const std::vector<SeriesId>& b);

}  // namespace vigil::storage

#endif  // VIGIL_STORAGE_INDEX_H_
