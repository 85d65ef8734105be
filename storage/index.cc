#include "storage/index.h"

#include <algorithm>
#include <iterator>

namespace vigil::storage {

namespace {

void AddSorted(std::vector<SeriesId>* p, SeriesId id) {
  if (!p->empty() && p->back() >= id) {
    if (p->back() == id) return;
    // Ids normally arrive in increasing order; keep the list sorted regardless.
    p->insert(std::lower_bound(p->begin(), p->end(), id), id);
    return;
  }
  p->push_back(id);
}

}  // namespace

std::vector<SeriesId> Intersect(const std::vector<SeriesId>& a, const std::vector<SeriesId>& b) {
  std::vector<SeriesId> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::vector<SeriesId> Subtract(const std::vector<SeriesId>& a, const std::vector<SeriesId>& b) {
  std::vector<SeriesId> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

void PostingsIndex::Add(SeriesId id, absl::string_view name, absl::string_view value) {
  AddSorted(&postings_[name][value], id);
}

void PostingsIndex::AddSeries(SeriesId id) { AddSorted(&all_, id); }

void PostingsIndex::RemoveSeries(const absl::flat_hash_set<SeriesId>& ids) {
  if (ids.empty()) return;
  auto drop = [&](Postings* p) {
    p->erase(std::remove_if(p->begin(), p->end(), [&](SeriesId id) { return ids.contains(id); }),
             p->end());
  };
  drop(&all_);
  for (auto name_it = postings_.begin(); name_it != postings_.end();) {
    ValueMap& values = name_it->second;
    for (auto it = values.begin(); it != values.end();) {
      drop(&it->second);
      if (it->second.empty()) {
        values.erase(it++);
      } else {
        ++it;
      }
    }
    if (values.empty()) {
      postings_.erase(name_it++);
    } else {
      ++name_it;
    }
  }
}

PostingsIndex::Postings PostingsIndex::UnionWhere(
    absl::string_view name, const std::function<bool(absl::string_view)>& pred) const {
  Postings out;
  auto it = postings_.find(name);
  if (it == postings_.end()) return out;
  int lists = 0;
  for (const auto& [value, ids] : it->second) {
    if (!pred(value)) continue;
    out.insert(out.end(), ids.begin(), ids.end());
    lists++;
  }
  if (lists > 1) {
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }
  return out;
}

PostingsIndex::Postings PostingsIndex::Matching(const LabelMatcher& m) const {
  auto name_it = postings_.find(m.name());
  if (name_it == postings_.end()) return {};
  const ValueMap& values = name_it->second;
  auto lookup = [&](const std::vector<std::string>& wanted) {
    Postings out;
    for (const std::string& v : wanted) {
      auto it = values.find(v);
      if (it != values.end()) out.insert(out.end(), it->second.begin(), it->second.end());
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  if (m.type() == MatchType::kEqual) return lookup({m.value()});
  if (m.type() == MatchType::kRegexMatch && !m.set_matches().empty()) {
    return lookup(m.set_matches());
  }
  return UnionWhere(m.name(), [&](absl::string_view v) { return m.Matches(v); });
}

std::vector<SeriesId> PostingsIndex::Evaluate(const std::vector<LabelMatcher>& matchers) const {
  std::vector<Postings> positive;
  std::vector<const LabelMatcher*> negative;
  for (const LabelMatcher& m : matchers) {
    if (m.MatchesEmpty()) {
      negative.push_back(&m);
    } else {
      positive.push_back(Matching(m));
    }
  }
  Postings result;
  if (positive.empty()) {
    result = all_;
  } else {
    std::sort(positive.begin(), positive.end(),
              [](const Postings& a, const Postings& b) { return a.size() < b.size(); });
    result = std::move(positive[0]);
    for (size_t i = 1; i < positive.size() && !result.empty(); i++) {
      result = Intersect(result, positive[i]);
    }
  }
  // A matcher that matches "" keeps series without the label and drops those
  // whose value it rejects.
  for (const LabelMatcher* m : negative) {
    if (result.empty()) break;
    result = Subtract(result, UnionWhere(m->name(), [&](absl::string_view v) {
                        return !m->Matches(v);
                      }));
  }
  return result;
}

absl::StatusOr<std::vector<SeriesId>> PostingsIndex::Select(
    const std::vector<LabelMatcher>& matchers) const {
  bool any_non_empty = false;
  for (const LabelMatcher& m : matchers) any_non_empty |= !m.MatchesEmpty();
  if (!any_non_empty) {
    return absl::InvalidArgumentError("vector selector must contain at least one non-empty matcher");
  }
  return Evaluate(matchers);
}

std::vector<SeriesId> PostingsIndex::SelectOrAll(const std::vector<LabelMatcher>& matchers) const {
  return Evaluate(matchers);
}

std::vector<std::string> PostingsIndex::LabelNames() const {
  std::vector<std::string> out;
  out.reserve(postings_.size());
  for (const auto& [name, values] : postings_) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> PostingsIndex::LabelValues(absl::string_view name) const {
  std::vector<std::string> out;
  auto it = postings_.find(name);
  if (it == postings_.end()) return out;
  for (const auto& [value, ids] : it->second) out.push_back(value);
  std::sort(out.begin(), out.end());
  return out;
}

size_t PostingsIndex::MemoryUsage() const {
  size_t n = all_.capacity() * sizeof(SeriesId);
  for (const auto& [name, values] : postings_) {
    n += sizeof(name) + name.capacity() + values.capacity() * (sizeof(std::string) + sizeof(Postings));
    for (const auto& [value, ids] : values) n += value.capacity() + ids.capacity() * sizeof(SeriesId);
  }
  return n;
}

}  // namespace vigil::storage
