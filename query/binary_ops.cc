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

// The series of one operand present at a step: (index into its matrix, value).
using Present = std::vector<std::pair<int, double>>;

// Fills `present` with the series of `m` that have a point at `ts`.
void PresentAt(const Matrix& m, int64_t ts, std::vector<size_t>* cursors, Present* present) {
  present->clear();
  for (size_t i = 0; i < m.size(); ++i) {
    const std::vector<Sample>& pts = m[i].samples;
    size_t& c = (*cursors)[i];
    while (c < pts.size() && pts[c].t < ts) ++c;
    if (c < pts.size() && pts[c].t == ts) present->push_back({static_cast<int>(i), pts[c].v});
  }
}

// Output series by labels; each found once per (input pair) through a cache.
class BinopOutput {
 public:
  explicit BinopOutput(Matrix* out) : out_(out) {}
  // The index of the output series for key `pair`, whose labels `make()` computes
  // on first use.
  template <typename Make>
  size_t For(uint64_t pair, Make make) {
    auto it = by_pair_.find(pair);
    if (it == by_pair_.end()) {
      Labels l = make();
      auto [lit, inserted] = by_labels_.try_emplace(l.Canonical(), out_->size());
      if (inserted) out_->push_back(Series{std::move(l), {}});
      it = by_pair_.emplace(pair, lit->second).first;
    }
    return it->second;
  }

 private:
  Matrix* out_;
  absl::flat_hash_map<uint64_t, size_t> by_pair_;
  absl::flat_hash_map<std::string, size_t> by_labels_;
};

uint64_t PairKey(int a, int b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

absl::Status AppendPoint(Series& s, int64_t ts, double v) {
  // Two outputs with the same labels at one step.
  if (!s.samples.empty() && s.samples.back().t == ts) {
    return absl::FailedPreconditionError("vector cannot contain metrics with the same labelset");
  }
  s.samples.push_back({ts, v});
  return absl::OkStatus();
}

// One step of `and` / `or` / `unless`; `one_of_sig` holds the right side's
// signatures present at this step.
absl::Status SetStep(Tok op, const Matrix& lhs, const Matrix& rhs, const std::vector<int>& lsig,
                     const std::vector<int>& rsig, const Present& l_at, const Present& r_at,
                     int64_t ts, std::vector<int>* one_of_sig, BinopOutput* output,
                     Matrix* out) {
  if (op != Tok::kOr) {
    for (const auto& [i, v] : l_at) {
      if (((*one_of_sig)[lsig[i]] >= 0) != (op == Tok::kAnd)) continue;
      int idx = i;
      size_t o = output->For(PairKey(0, idx), [&] { return lhs[idx].labels; });
      RETURN_IF_ERROR(AppendPoint((*out)[o], ts, v));
    }
    return absl::OkStatus();
  }
  absl::flat_hash_set<int> left;
  for (const auto& [i, v] : l_at) {
    left.insert(lsig[i]);
    int idx = i;
    size_t o = output->For(PairKey(0, idx), [&] { return lhs[idx].labels; });
    RETURN_IF_ERROR(AppendPoint((*out)[o], ts, v));
  }
  for (const auto& [i, v] : r_at) {
    if (left.contains(rsig[i])) continue;
    int idx = i;
    size_t o = output->For(PairKey(1, idx), [&] { return rhs[idx].labels; });
    RETURN_IF_ERROR(AppendPoint((*out)[o], ts, v));
  }
  return absl::OkStatus();
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

// Vector-to-vector operators, step by step. Signatures are interned to small
// integers and result labels computed once per series pair, not once per sample.
absl::StatusOr<Value> Evaluator::VectorVector(const Expr& e, const Value& lhs, const Value& rhs) {
  const VectorMatching& m = *e.matching;
  Tok op = e.op;
  bool set_op = op == Tok::kAnd || op == Tok::kOr || op == Tok::kUnless;
  bool swapped = m.card == Cardinality::kOneToMany;  // never for set operators
  const Matrix& many = swapped ? rhs.matrix : lhs.matrix;
  const Matrix& one = swapped ? lhs.matrix : rhs.matrix;
  absl::flat_hash_map<std::string, int> sig_ids;
  auto intern = [&](const Series& s) {
    return sig_ids.try_emplace(Signature(s.labels, m), static_cast<int>(sig_ids.size()))
        .first->second;
  };
  std::vector<int> many_sig, one_sig;
  for (const Series& s : many) many_sig.push_back(intern(s));
  for (const Series& s : one) one_sig.push_back(intern(s));
  // Per signature, for the current step: the one-side series (-1: none) and,
  // for one-to-one matching, the step it was last matched at.
  std::vector<int> one_of_sig(sig_ids.size(), -1);
  std::vector<int64_t> matched_at(sig_ids.size(), -1);
  std::vector<double> one_value(one.size());
  // Per many-side series, the last (one-side series, output series) it produced.
  std::vector<std::pair<int, size_t>> last_pair(many.size(), {-1, 0});
  Value out;
  out.type = ValueType::kVector;
  BinopOutput output(&out.matrix);
  std::vector<size_t> many_cur(many.size(), 0), one_cur(one.size(), 0);
  Present many_at, one_at;
  int64_t step = 0;
  for (int64_t ts = start_; ts <= end_; ts += interval_, ++step) {
    RETURN_IF_ERROR(CheckDeadline());
    PresentAt(many, ts, &many_cur, &many_at);
    PresentAt(one, ts, &one_cur, &one_at);
    for (const auto& [i, v] : one_at) {
      int& slot = one_of_sig[one_sig[i]];
      if (slot >= 0 && !set_op) {
        return absl::FailedPreconditionError(absl::StrCat(
            "found duplicate series for the match group ",
            MatchedLabels(one[i].labels, m).ToString(), " on the ", swapped ? "left" : "right",
            " hand-side of the operation: [", one[i].labels.ToString(), ", ",
            one[slot].labels.ToString(),
            "];many-to-many matching not allowed: matching labels must be unique on one side"));
      }
      slot = i;
      one_value[i] = v;
    }
    if (set_op) {
      RETURN_IF_ERROR(SetStep(op, many, one, many_sig, one_sig, many_at, one_at, ts,
                              &one_of_sig, &output, &out.matrix));
      for (const auto& [i, v] : one_at) one_of_sig[one_sig[i]] = -1;
      continue;
    }
    for (const auto& [i, v] : many_at) {
      int j = one_of_sig[many_sig[i]];
      if (j < 0) continue;
      double vl = v, vr = one_value[j];
      if (swapped) std::swap(vl, vr);
      auto [value, keep] = ElemBinop(op, vl, vr);
      if (e.return_bool) {
        value = keep ? 1 : 0;
      } else if (!keep) {
        continue;
      }
      if (m.card == Cardinality::kOneToOne) {
        if (matched_at[many_sig[i]] == step) {
          return absl::FailedPreconditionError(
              "multiple matches for labels: many-to-one matching must be explicit "
              "(group_left/group_right)");
        }
        matched_at[many_sig[i]] = step;
      }
      if (last_pair[i].first != j) {
        int mi = i;
        size_t o = output.For(PairKey(mi, j), [&] {
          Labels l = ResultMetric(many[mi].labels, one[j].labels, op, m);
          if (e.return_bool) l.Remove(kMetricNameLabel);
          return l;
        });
        last_pair[i] = {j, o};
      }
      std::vector<Sample>& pts = out.matrix[last_pair[i].second].samples;
      if (!pts.empty() && pts.back().t == ts) {
        return absl::FailedPreconditionError(
            m.card == Cardinality::kOneToOne
                ? "vector cannot contain metrics with the same labelset"
                : "multiple matches for labels: grouping labels must ensure unique matches");
      }
      pts.push_back({ts, value});
    }
    for (const auto& [i, v] : one_at) one_of_sig[one_sig[i]] = -1;
  }
  ReleaseSamples(CountPoints(lhs.matrix) + CountPoints(rhs.matrix));
  RETURN_IF_ERROR(AddSamples(CountPoints(out.matrix)));
  return out;
}

absl::StatusOr<Value> Evaluator::EvalBinary(const Expr& e) {
  ASSIGN_OR_RETURN(Value lhs, Eval(*e.args[0]));
  ASSIGN_OR_RETURN(Value rhs, Eval(*e.args[1]));
  bool ls = lhs.type == ValueType::kScalar, rs = rhs.type == ValueType::kScalar;
  if (ls != rs) return VectorScalar(e.op, e.return_bool, ls ? rhs : lhs, ls ? lhs : rhs, ls);
  if (!ls) return VectorVector(e, lhs, rhs);
  Tok op = e.op;
  auto fn = [op](std::vector<StepArg>& a, int64_t) -> absl::StatusOr<Vector> {
    auto [v, keep] = ElemBinop(op, a[0].scalar, a[1].scalar);
    if (IsComparisonOp(op)) v = keep ? 1 : 0;
    return Vector{VSample{Labels(), v, 0}};
  };
  Value out;
  out.type = ValueType::kScalar;
  ASSIGN_OR_RETURN(out.matrix, RangeEval({&lhs, &rhs}, fn));
  return out;
}

}  // namespace vigil::query
