// label_replace(), label_join() and histogram_quantile() (promql/functions.go,
// promql/quantile.go in Prometheus 2.42).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "query/functions.h"
#include "re2/re2.h"

namespace vigil::query {
namespace {

bool IsNameChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Go's regexp.Expand: $1, ${1}, $name, ${name}; `$$` is a literal '$'.
std::string ExpandTemplate(absl::string_view tmpl, const RE2& re,
                           const std::vector<re2::StringPiece>& groups) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    char c = tmpl[i];
    if (c != '$') {
      out.push_back(c);
      ++i;
      continue;
    }
    ++i;
    if (i < tmpl.size() && tmpl[i] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    bool brace = i < tmpl.size() && tmpl[i] == '{';
    size_t j = brace ? i + 1 : i;
    size_t k = j;
    while (k < tmpl.size() && IsNameChar(tmpl[k])) ++k;
    if (k == j || (brace && (k >= tmpl.size() || tmpl[k] != '}'))) {
      out.push_back('$');  // Malformed: the '$' stays literal.
      continue;
    }
    std::string name(tmpl.substr(j, k - j));
    i = brace ? k + 1 : k;
    int idx = -1;
    if (std::all_of(name.begin(), name.end(), [](char d) { return absl::ascii_isdigit(d); })) {
      idx = name.size() > 9 ? -1 : std::atoi(name.c_str());
    } else {
      auto it = re.NamedCapturingGroups().find(name);
      if (it != re.NamedCapturingGroups().end()) idx = it->second;
    }
    if (idx >= 0 && idx < static_cast<int>(groups.size()) && groups[idx].data() != nullptr) {
      out.append(groups[idx].data(), groups[idx].size());
    }
  }
  return out;
}

struct Bucket {
  double upper;
  double count;
};

double BucketQuantile(double q, std::vector<Bucket> b) {
  if (std::isnan(q)) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  std::stable_sort(b.begin(), b.end(),
                   [](const Bucket& x, const Bucket& y) { return x.upper < y.upper; });
  if (!std::isinf(b.back().upper) || b.back().upper < 0) return NAN;
  // Coalesce buckets with equal bounds, then force counts to be monotonic.
  std::vector<Bucket> c;
  for (const Bucket& x : b) {
    if (!c.empty() && c.back().upper == x.upper) {
      c.back().count += x.count;
    } else {
      c.push_back(x);
    }
  }
  double max = -INFINITY;
  for (Bucket& x : c) {
    if (x.count > max) {
      max = x.count;
    } else if (x.count < max) {
      x.count = max;
    }
  }
  if (c.size() < 2) return NAN;
  double observations = c.back().count;
  if (observations == 0) return NAN;
  double rank = q * observations;
  size_t i = 0;
  while (i < c.size() - 1 && !(c[i].count >= rank)) ++i;
  if (i == c.size() - 1) return c[c.size() - 2].upper;
  if (i == 0 && c[0].upper <= 0) return c[0].upper;
  double start = 0, end = c[i].upper, count = c[i].count;
  if (i > 0) {
    start = c[i - 1].upper;
    count -= c[i - 1].count;
    rank -= c[i - 1].count;
  }
  return start + (end - start) * (rank / count);
}

}  // namespace

absl::StatusOr<Vector> LabelReplace(Vector& in, const std::vector<std::string>& strs) {
  const std::string &dst = strs[1], &repl = strs[2], &src = strs[3], &regex = strs[4];
  RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_dot_nl(true);
  RE2 re(absl::StrCat("^(?:", regex, ")$"), opts);
  if (!re.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("invalid regular expression in label_replace(): ", regex));
  }
  if (!IsValidLabelName(dst)) {
    return absl::FailedPreconditionError(
        absl::StrCat("invalid destination label name in label_replace(): ", dst));
  }
  std::vector<re2::StringPiece> groups(re.NumberOfCapturingGroups() + 1);
  for (VSample& s : in) {
    std::string value(s.labels.Get(src));
    if (!re.Match(value, 0, value.size(), RE2::UNANCHORED, groups.data(),
                  static_cast<int>(groups.size()))) {
      continue;
    }
    s.labels.Set(dst, ExpandTemplate(repl, re, groups));
  }
  return std::move(in);
}

absl::StatusOr<Vector> LabelJoin(Vector& in, const std::vector<std::string>& strs) {
  const std::string &dst = strs[1], &sep = strs[2];
  if (!IsValidLabelName(dst)) {
    return absl::FailedPreconditionError(
        absl::StrCat("invalid destination label name in label_join(): ", dst));
  }
  for (size_t i = 3; i < strs.size(); ++i) {
    if (!IsValidLabelName(strs[i])) {
      return absl::FailedPreconditionError(
          absl::StrCat("invalid source label name in label_join(): ", strs[i]));
    }
  }
  for (VSample& s : in) {
    std::vector<absl::string_view> parts;
    for (size_t i = 3; i < strs.size(); ++i) parts.push_back(s.labels.Get(strs[i]));
    s.labels.Set(dst, absl::StrJoin(parts, sep));
  }
  return std::move(in);
}

Vector HistogramQuantile(double q, Vector& in) {
  struct Group {
    Labels labels;
    std::vector<Bucket> buckets;
  };
  std::vector<std::unique_ptr<Group>> order;
  absl::flat_hash_map<std::string, Group*> groups;
  for (VSample& s : in) {
    std::string le(s.labels.Get("le"));
    char* end = nullptr;
    double upper = std::strtod(le.c_str(), &end);
    if (le.empty() || end != le.c_str() + le.size()) continue;
    Labels key = s.labels;
    key.Remove("le");
    std::string k = key.Canonical();
    auto it = groups.find(k);
    if (it == groups.end()) {
      auto g = std::make_unique<Group>();
      g->labels = DropMetricName(key);
      it = groups.emplace(k, g.get()).first;
      order.push_back(std::move(g));
    }
    it->second->buckets.push_back({upper, s.v});
  }
  Vector out;
  for (auto& g : order) out.push_back(VSample{std::move(g->labels), BucketQuantile(q, g->buckets), 0});
  return out;
}

}  // namespace vigil::query
