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

namespace {

// A vector-to-vector operation across steps. Signatures are interned to small
// integers and result labels computed once per series pair, not once per
// sample, as Prometheus caches them.
class VectorMatch {
 public:
  VectorMatch(const Expr& e, const Matrix& many, const Matrix& one, Matrix* out)
      : e_(e), m_(*e.matching), many_(many), one_(one), out_(out), output_(out) {
    absl::flat_hash_map<std::string, int> ids;
    auto intern = [&](const Series& s) {
      return ids.try_emplace(Signature(s.labels, m_), static_cast<int>(ids.size())).first->second;
    };
    for (const Series& s : many) many_sig_.push_back(intern(s));
    for (const Series& s : one) one_sig_.push_back(intern(s));
    one_of_sig_.assign(ids.size(), -1);
    matched_at_.assign(ids.size(), -1);
    one_value_.resize(one.size());
    last_pair_.assign(many.size(), {-1, 0});
  }

  // Runs one step, given the series of each side present at `ts`.
  absl::Status Step(int64_t ts, int64_t step, const Present& many_at, const Present& one_at) {
    absl::Status s = IndexOneSide(one_at);
    if (s.ok()) {
      bool set_op = e_.op == Tok::kAnd || e_.op == Tok::kOr || e_.op == Tok::kUnless;
      s = set_op ? SetStep(e_.op, many_, one_, many_sig_, one_sig_, many_at, one_at, ts,
                           &one_of_sig_, &output_, out_)
                 : Arithmetic(ts, step, many_at);
    }
    for (const auto& [i, v] : one_at) one_of_sig_[one_sig_[i]] = -1;
    return s;
  }

 private:
  bool swapped() const { return m_.card == Cardinality::kOneToMany; }

  // Notes which one-side series holds each signature at this step.
  absl::Status IndexOneSide(const Present& one_at) {
    bool set_op = m_.card == Cardinality::kManyToMany;
    for (const auto& [i, v] : one_at) {
      int& slot = one_of_sig_[one_sig_[i]];
      if (slot >= 0 && !set_op) {
        return absl::FailedPreconditionError(absl::StrCat(
            "found duplicate series for the match group ",
            MatchedLabels(one_[i].labels, m_).ToString(), " on the ",
            swapped() ? "left" : "right", " hand-side of the operation: [",
            one_[i].labels.ToString(), ", ", one_[slot].labels.ToString(),
            "];many-to-many matching not allowed: matching labels must be unique on one side"));
      }
      slot = i;
      one_value_[i] = v;
    }
    return absl::OkStatus();
  }

  // Arithmetic and comparisons: each many-side sample against its match.
  absl::Status Arithmetic(int64_t ts, int64_t step, const Present& many_at) {
    for (const auto& [i, v] : many_at) {
      int sig = many_sig_[i];
      int j = one_of_sig_[sig];
      if (j < 0) continue;
      double vl = v, vr = one_value_[j];
      if (swapped()) std::swap(vl, vr);
      auto [value, keep] = ElemBinop(e_.op, vl, vr);
      if (e_.return_bool) {
        value = keep ? 1 : 0;
      } else if (!keep) {
        continue;
      }
      if (m_.card == Cardinality::kOneToOne) {
        if (matched_at_[sig] == step) {
          return absl::FailedPreconditionError(
              "multiple matches for labels: many-to-one matching must be explicit "
              "(group_left/group_right)");
        }
        matched_at_[sig] = step;
      }
      std::vector<Sample>& pts = (*out_)[OutputFor(i, j)].samples;
      if (!pts.empty() && pts.back().t == ts) {
        return absl::FailedPreconditionError(
            m_.card == Cardinality::kOneToOne
                ? "vector cannot contain metrics with the same labelset"
                : "multiple matches for labels: grouping labels must ensure unique matches");
      }
      pts.push_back({ts, value});
    }
    return absl::OkStatus();
  }

  // The output series of many-side series i matched with one-side series j.
  size_t OutputFor(int i, int j) {
    if (last_pair_[i].first != j) {
      size_t o = output_.For(PairKey(i, j), [&] {
        Labels l = ResultMetric(many_[i].labels, one_[j].labels, e_.op, m_);
        if (e_.return_bool) l.Remove(kMetricNameLabel);
        return l;
      });
      last_pair_[i] = {j, o};
    }
    return last_pair_[i].second;
  }

  const Expr& e_;
  const VectorMatching& m_;
  const Matrix& many_;
  const Matrix& one_;
  Matrix* out_;
  BinopOutput output_;
  std::vector<int> many_sig_, one_sig_;
  // Per signature: the one-side series present at this step (-1: none), and for
  // one-to-one matching the step it was last matched at.
  std::vector<int> one_of_sig_;
  std::vector<int64_t> matched_at_;
  std::vector<double> one_value_;
  // Per many-side series: the last (one-side series, output series) it produced.
  std::vector<std::pair<int, size_t>> last_pair_;
};

}  // namespace

absl::StatusOr<Value> Evaluator::VectorVector(const Expr& e, const Value& lhs, const Value& rhs) {
  bool swapped = e.matching->card == Cardinality::kOneToMany;  // never for set operators
  const Matrix& many = swapped ? rhs.matrix : lhs.matrix;
  const Matrix& one = swapped ? lhs.matrix : rhs.matrix;
  Value out;
  out.type = ValueType::kVector;
  VectorMatch match(e, many, one, &out.matrix);
  std::vector<size_t> many_cur(many.size(), 0), one_cur(one.size(), 0);
  Present many_at, one_at;
  int64_t step = 0;
  for (int64_t ts = start_; ts <= end_; ts += interval_, ++step) {
    RETURN_IF_ERROR(CheckDeadline());
    PresentAt(many, ts, &many_cur, &many_at);
    PresentAt(one, ts, &one_cur, &one_at);
    RETURN_IF_ERROR(match.Step(ts, step, many_at, one_at));
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
