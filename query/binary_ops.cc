// Binary operators: arithmetic, comparisons and set operators between scalars
// and vectors, with Prometheus' vector matching (promql/engine.go VectorBinop).
#include <cmath>
#include <optional>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "query/evaluator.h"

namespace vigil::query {
namespace {

bool IsComparisonOp(Tok op) {
  return op == Tok::kEql || op == Tok::kNeq || op == Tok::kLss || op == Tok::kLte ||
         op == Tok::kGtr || op == Tok::kGte;
}

// Arithmetic drops the metric name; comparisons (without bool) and, in 2.42,
// atan2 keep it.
bool DropsName(Tok op) {
  return op == Tok::kAdd || op == Tok::kSub || op == Tok::kMul || op == Tok::kDiv ||
         op == Tok::kPow || op == Tok::kMod;
}

// The value of `l op r` and whether a comparison holds (always true for arithmetic).
std::pair<double, bool> ElemBinop(Tok op, double l, double r) {
  switch (op) {
    case Tok::kAdd: return {l + r, true};
    case Tok::kSub: return {l - r, true};
    case Tok::kMul: return {l * r, true};
    case Tok::kDiv: return {l / r, true};
    case Tok::kPow: return {std::pow(l, r), true};
    case Tok::kMod: return {std::fmod(l, r), true};
    case Tok::kAtan2: return {std::atan2(l, r), true};
    case Tok::kEql: return {l, l == r};
    case Tok::kNeq: return {l, l != r};
    case Tok::kGtr: return {l, l > r};
    case Tok::kLss: return {l, l < r};
    case Tok::kGte: return {l, l >= r};
    case Tok::kLte: return {l, l <= r};
    default: return {NAN, false};
  }
}

// The matching key of `l`: the `on` labels, or all but the `ignoring` ones and __name__.
std::string Signature(const Labels& l, const VectorMatching& m) {
  std::string sig;
  for (const Label& lb : l) {
    bool listed = std::find(m.labels.begin(), m.labels.end(), lb.name) != m.labels.end();
    if (m.on ? !listed : (listed || lb.name == kMetricNameLabel)) continue;
    absl::StrAppend(&sig, lb.name, "\xff", lb.value, "\xff");
  }
  return sig;
}

Labels MatchedLabels(const Labels& l, const VectorMatching& m) {
  Labels out;
  for (const Label& lb : l) {
    bool listed = std::find(m.labels.begin(), m.labels.end(), lb.name) != m.labels.end();
    if (m.on ? listed : (!listed && lb.name != kMetricNameLabel)) out.Set(lb.name, lb.value);
  }
  return out;
}

Labels ResultMetric(const Labels& many, const Labels& one, Tok op, const VectorMatching& m) {
  Labels out = many;
  if (DropsName(op)) out.Remove(kMetricNameLabel);
  if (m.card == Cardinality::kOneToOne) {
    if (m.on) {
      Labels kept;
      for (const Label& lb : out) {
        if (std::find(m.labels.begin(), m.labels.end(), lb.name) != m.labels.end()) {
          kept.Set(lb.name, lb.value);
        }
      }
      out = std::move(kept);
    } else {
      for (const std::string& n : m.labels) out.Remove(n);
    }
  }
  for (const std::string& n : m.include) out.Set(n, one.Get(n));
  return out;
}

absl::StatusOr<Vector> VectorBinop(Tok op, const VectorMatching& m, bool return_bool, Vector& lhs,
                                   Vector& rhs) {
  bool swapped = m.card == Cardinality::kOneToMany;
  Vector& many = swapped ? rhs : lhs;
  Vector& one = swapped ? lhs : rhs;
  absl::flat_hash_map<std::string, const VSample*> one_sigs;
  for (const VSample& s : one) {
    auto [it, inserted] = one_sigs.emplace(Signature(s.labels, m), &s);
    if (!inserted) {
      return absl::FailedPreconditionError(absl::StrCat(
          "found duplicate series for the match group ", MatchedLabels(s.labels, m).ToString(),
          " on the ", swapped ? "left" : "right", " hand-side of the operation: [",
          s.labels.ToString(), ", ", it->second->labels.ToString(),
          "];many-to-many matching not allowed: matching labels must be unique on one side"));
    }
  }
  absl::flat_hash_map<std::string, absl::flat_hash_set<uint64_t>> matched;
  Vector out;
  for (const VSample& s : many) {
    std::string sig = Signature(s.labels, m);
    auto it = one_sigs.find(sig);
    if (it == one_sigs.end()) continue;
    const VSample& o = *it->second;
    double vl = s.v, vr = o.v;
    if (swapped) std::swap(vl, vr);
    auto [value, keep] = ElemBinop(op, vl, vr);
    if (return_bool) {
      value = keep ? 1 : 0;
    } else if (!keep) {
      continue;
    }
    Labels metric = ResultMetric(s.labels, o.labels, op, m);
    if (return_bool) metric.Remove(kMetricNameLabel);
    auto [mit, first] = matched.try_emplace(sig);
    if (m.card == Cardinality::kOneToOne) {
      if (!first) {
        return absl::FailedPreconditionError(
            "multiple matches for labels: many-to-one matching must be explicit "
            "(group_left/group_right)");
      }
    } else if (!mit->second.insert(metric.Hash()).second) {
      return absl::FailedPreconditionError(
          "multiple matches for labels: grouping labels must ensure unique matches");
    }
    out.push_back(VSample{std::move(metric), value, 0});
  }
  return out;
}

Vector SetBinop(Tok op, const VectorMatching& m, Vector& lhs, Vector& rhs) {
  Vector out;
  if (op == Tok::kOr) {
    absl::flat_hash_set<std::string> left;
    for (VSample& s : lhs) {
      left.insert(Signature(s.labels, m));
      out.push_back(std::move(s));
    }
    for (VSample& s : rhs) {
      if (!left.contains(Signature(s.labels, m))) out.push_back(std::move(s));
    }
    return out;
  }
  absl::flat_hash_set<std::string> right;
  for (const VSample& s : rhs) right.insert(Signature(s.labels, m));
  bool want = op == Tok::kAnd;
  for (VSample& s : lhs) {
    if (right.contains(Signature(s.labels, m)) == want) out.push_back(std::move(s));
  }
  return out;
}

// `vec op scalar` (or `scalar op vec` when swapped) for one sample; nullopt if
// a comparison filters it out.
std::optional<double> VectorScalarElem(Tok op, double vec, double scalar, bool swap,
                                       bool return_bool) {
  double l = swap ? scalar : vec, r = swap ? vec : scalar;
  auto [value, keep] = ElemBinop(op, l, r);
  if (IsComparisonOp(op)) value = vec;  // a comparison keeps the vector's value
  if (return_bool) return keep ? 1.0 : 0.0;
  if (!keep) return std::nullopt;
  return value;
}

}  // namespace

// Series by series: a series' output labels are the same at every step.
absl::StatusOr<Value> Evaluator::VectorScalar(Tok op, bool return_bool, Value& vec,
                                              const Value& scalar, bool swap) {
  Value out;
  out.type = ValueType::kVector;
  bool drop_name = DropsName(op) || return_bool;
  for (Series& s : vec.matrix) {
    Series o{drop_name ? DropMetricName(s.labels) : std::move(s.labels), {}};
    for (const Sample& p : s.samples) {
      double sv = ScalarAt(scalar, (p.t - start_) / interval_);
      std::optional<double> v = VectorScalarElem(op, p.v, sv, swap, return_bool);
      if (v.has_value()) o.samples.push_back({p.t, *v});
    }
    if (!o.samples.empty()) out.matrix.push_back(std::move(o));
  }
  ReleaseSamples(CountPoints(vec.matrix) + CountPoints(scalar.matrix));
  RETURN_IF_ERROR(AddSamples(CountPoints(out.matrix)));
  RETURN_IF_ERROR(MergeEqualLabels(&out.matrix));
  return out;
}

absl::StatusOr<Value> Evaluator::EvalBinary(const Expr& e) {
  ASSIGN_OR_RETURN(Value lhs, Eval(*e.args[0]));
  ASSIGN_OR_RETURN(Value rhs, Eval(*e.args[1]));
  bool ls = lhs.type == ValueType::kScalar, rs = rhs.type == ValueType::kScalar;
  Value out;
  out.type = ls && rs ? ValueType::kScalar : ValueType::kVector;
  Tok op = e.op;
  bool rb = e.return_bool;
  StepFn fn;
  if (ls && rs) {
    fn = [op](std::vector<StepArg>& a, int64_t) -> absl::StatusOr<Vector> {
      auto [v, keep] = ElemBinop(op, a[0].scalar, a[1].scalar);
      if (IsComparisonOp(op)) v = keep ? 1 : 0;
      return Vector{VSample{Labels(), v, 0}};
    };
  } else if (ls || rs) {
    return VectorScalar(op, rb, ls ? rhs : lhs, ls ? lhs : rhs, ls);
  } else {
    const VectorMatching& m = *e.matching;
    fn = [op, &m, rb](std::vector<StepArg>& a, int64_t) -> absl::StatusOr<Vector> {
      if (op == Tok::kAnd || op == Tok::kOr || op == Tok::kUnless) {
        return SetBinop(op, m, a[0].vec, a[1].vec);
      }
      return VectorBinop(op, m, rb, a[0].vec, a[1].vec);
    };
  }
  ASSIGN_OR_RETURN(out.matrix, RangeEval({&lhs, &rhs}, fn));
  return out;
}

}  // namespace vigil::query
