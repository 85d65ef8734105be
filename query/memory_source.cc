#include "query/memory_source.h"

#include <set>

namespace vigil::query {

void MemorySeriesSource::Add(const Labels& labels, const std::vector<Sample>& samples) {
  absl::MutexLock l(&mu_);
  std::map<int64_t, double>& s = series_[labels];
  for (const Sample& smp : samples) s[smp.t] = smp.v;
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
    for (auto it = samples.lower_bound(mint); it != samples.end() && it->first <= maxt; ++it) {
      s.samples.push_back({it->first, it->second});
    }
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
