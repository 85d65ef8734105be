#include "query/memory_source.h"

#include <algorithm>
#include <set>

namespace vigil::query {

void MemorySeriesSource::Add(const Labels& labels, const std::vector<Sample>& samples) {
  absl::MutexLock l(&mu_);
  std::vector<Sample>& s = series_[labels];
  // New samples win over old ones at the same time: put them first, then keep the
  // first of each run of equal timestamps after a stable sort.
  std::vector<Sample> merged(samples.rbegin(), samples.rend());
  merged.insert(merged.end(), s.begin(), s.end());
  auto by_time = [](const Sample& a, const Sample& b) { return a.t < b.t; };
  std::stable_sort(merged.begin(), merged.end(), by_time);
  merged.erase(std::unique(merged.begin(), merged.end(),
                           [](const Sample& a, const Sample& b) { return a.t == b.t; }),
               merged.end());
  s = std::move(merged);
}

void MemorySeriesSource::Clear() {
  absl::MutexLock l(&mu_);
  series_.clear();
}

int64_t MemorySeriesSource::select_calls() const {
  absl::ReaderMutexLock l(&mu_);
  return select_calls_;
}

std::vector<Series> MemorySeriesSource::Matching(const std::vector<LabelMatcher>& matchers,
                                                 int64_t mint, int64_t maxt) const {
  std::vector<Series> out;
  for (const auto& [labels, samples] : series_) {
    if (!MatchesAll(matchers, labels)) continue;
    Series s;
    auto by_time = [](const Sample& a, int64_t t) { return a.t < t; };
    auto from = std::lower_bound(samples.begin(), samples.end(), mint, by_time);
    auto to = std::upper_bound(from, samples.end(), maxt,
                               [](int64_t t, const Sample& a) { return t < a.t; });
    s.samples.assign(from, to);
    if (s.samples.empty()) continue;
    s.labels = labels;
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<SelectResult> MemorySeriesSource::Select(
    const SelectHints& hints, const std::vector<LabelMatcher>& matchers) {
  bool all_empty = true;
  for (const LabelMatcher& m : matchers) all_empty &= m.MatchesEmpty();
  if (all_empty) {
    return absl::InvalidArgumentError("no matchers selecting a non-empty set of series");
  }
  absl::MutexLock l(&mu_);
  ++select_calls_;
  SelectResult r;
  r.series = Matching(matchers, hints.mint, hints.maxt);
  return r;
}

absl::StatusOr<std::vector<std::string>> MemorySeriesSource::LabelNames(
    const std::vector<LabelMatcher>& matchers, int64_t mint, int64_t maxt) {
  absl::ReaderMutexLock l(&mu_);
  std::set<std::string> names;
  for (const Series& s : Matching(matchers, mint, maxt)) {
    for (const Label& lb : s.labels) names.insert(lb.name);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

absl::StatusOr<std::vector<std::string>> MemorySeriesSource::LabelValues(
    absl::string_view name, const std::vector<LabelMatcher>& matchers, int64_t mint,
    int64_t maxt) {
  absl::ReaderMutexLock l(&mu_);
  std::set<std::string> values;
  for (const Series& s : Matching(matchers, mint, maxt)) {
    absl::string_view v = s.labels.Get(name);
    if (!v.empty()) values.insert(std::string(v));
  }
  return std::vector<std::string>(values.begin(), values.end());
}

}  // namespace vigil::query
