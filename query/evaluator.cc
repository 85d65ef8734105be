#include "query/evaluator.h"

#include <algorithm>
#include <iterator>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace vigil::query {

Labels DropMetricName(const Labels& l) {
  if (!l.Has(kMetricNameLabel)) return l;
  Labels out = l;
  out.Remove(kMetricNameLabel);
  return out;
}

int64_t CountPoints(const Matrix& m) {
  int64_t n = 0;
  for (const Series& s : m) n += static_cast<int64_t>(s.samples.size());
  return n;
}

absl::Status CheckUniqueLabels(const Matrix& m) {
  std::vector<const Labels*> ls;
  for (const Series& s : m) ls.push_back(&s.labels);
  std::sort(ls.begin(), ls.end(), [](const Labels* a, const Labels* b) { return *a < *b; });
  for (size_t i = 1; i < ls.size(); ++i) {
    if (*ls[i] == *ls[i - 1]) {
      return absl::FailedPreconditionError("vector cannot contain metrics with the same labelset");
    }
  }
  return absl::OkStatus();
}

absl::Status MergeEqualLabels(Matrix* m) {
  absl::flat_hash_map<std::string, size_t> first;
  bool merged = false;
  for (size_t i = 0; i < m->size(); ++i) {
    auto [it, inserted] = first.try_emplace((*m)[i].labels.Canonical(), i);
    if (inserted) continue;
    std::vector<Sample>& into = (*m)[it->second].samples;
    std::vector<Sample>& from = (*m)[i].samples;
    std::vector<Sample> all;
    std::merge(into.begin(), into.end(), from.begin(), from.end(), std::back_inserter(all),
               [](const Sample& a, const Sample& b) { return a.t < b.t; });
    for (size_t k = 1; k < all.size(); ++k) {
      if (all[k].t == all[k - 1].t) {
        return absl::FailedPreconditionError(
            "vector cannot contain metrics with the same labelset");
      }
    }
    into = std::move(all);
    from.clear();
    merged = true;
  }
  if (merged) {
    m->erase(std::remove_if(m->begin(), m->end(), [](const Series& s) { return s.samples.empty(); }),
             m->end());
  }
  return absl::OkStatus();
}

const Expr& Unwrap(const Expr& e) {
  const Expr* p = &e;
  while (p->kind == ExprKind::kParen) p = p->args[0].get();
  return *p;
}

double Evaluator::ScalarAt(const Value& v, int64_t step) {
  if (v.matrix.empty()) return NAN;
  const std::vector<Sample>& pts = v.matrix[0].samples;
  return step < static_cast<int64_t>(pts.size()) ? pts[step].v : NAN;
}

absl::Status Evaluator::CheckDeadline() {
  if (state_->clock != nullptr && state_->clock->Now() > state_->deadline) {
    return absl::DeadlineExceededError("query timed out in query execution");
  }
  return absl::OkStatus();
}

absl::Status Evaluator::AddSamples(int64_t n) {
  state_->current_samples += n;
  if (state_->max_samples > 0 && state_->current_samples > state_->max_samples) {
    return absl::ResourceExhaustedError(
        "query processing would load too many samples into memory in query execution");
  }
  return absl::OkStatus();
}

int64_t Evaluator::RefTime(AtKind kind, int64_t at_ms, int64_t ts) const {
  switch (kind) {
    case AtKind::kNone: return ts;
    case AtKind::kTimestamp: return at_ms;
    case AtKind::kStart: return state_->query_start_ms;
    case AtKind::kEnd: return state_->query_end_ms;
  }
  return ts;
}

absl::StatusOr<Matrix> Evaluator::Select(const Expr& sel, int64_t mint, int64_t maxt) {
  RETURN_IF_ERROR(CheckDeadline());
  SelectHints hints{mint, maxt};
  ASSIGN_OR_RETURN(SelectResult r, state_->source->Select(hints, sel.matchers));
  for (std::string& w : r.warnings) state_->warnings.push_back(std::move(w));
  int64_t n = CountPoints(r.series);
  RETURN_IF_ERROR(AddSamples(n));
  ReleaseSamples(n);  // Held only while this node is evaluated.
  RETURN_IF_ERROR(CheckDeadline());
  return std::move(r.series);
}

absl::StatusOr<Value> Evaluator::Eval(const Expr& e) {
  RETURN_IF_ERROR(CheckDeadline());
  switch (e.kind) {
    case ExprKind::kNumber: {
      Value v;
      v.type = ValueType::kScalar;
      Series s;
      for (int64_t ts = start_; ts <= end_; ts += interval_) s.samples.push_back({ts, e.number});
      RETURN_IF_ERROR(AddSamples(static_cast<int64_t>(s.samples.size())));
      v.matrix.push_back(std::move(s));
      return v;
    }
    case ExprKind::kString: {
      Value v;
      v.type = ValueType::kString;
      v.str = e.str;
      return v;
    }
    case ExprKind::kParen:
      return Eval(*e.args[0]);
    case ExprKind::kVectorSelector:
      return EvalVectorSelector(e, /*sample_time=*/false);
    case ExprKind::kMatrixSelector:
    case ExprKind::kSubquery:
      return EvalRangeTop(e);
    case ExprKind::kUnary:
      return EvalUnary(e);
    case ExprKind::kBinary:
      return EvalBinary(e);
    case ExprKind::kCall:
      return EvalCall(e);
    case ExprKind::kAggregate:
      return EvalAggregate(e);
  }
  return absl::InternalError("unknown expression kind");
}

absl::StatusOr<Value> Evaluator::EvalVectorSelector(const Expr& e, bool sample_time) {
  int64_t first = RefTime(e.at_kind, e.at_ms, start_) - e.offset_ms;
  int64_t last = RefTime(e.at_kind, e.at_ms, end_) - e.offset_ms;
  ASSIGN_OR_RETURN(Matrix raw, Select(e, first - state_->lookback_ms, last));
  Value out;
  out.type = ValueType::kVector;
  for (Series& s : raw) {
    RETURN_IF_ERROR(CheckDeadline());
    Series o;
    size_t j = 0;
    const std::vector<Sample>& in = s.samples;
    for (int64_t ts = start_; ts <= end_; ts += interval_) {
      int64_t ref = RefTime(e.at_kind, e.at_ms, ts) - e.offset_ms;
      // ref never decreases from step to step, so j only moves forward.
      while (j < in.size() && in[j].t <= ref) ++j;
      if (j == 0) continue;
      const Sample& smp = in[j - 1];
      if (smp.t < ref - state_->lookback_ms || IsStaleNaN(smp.v)) continue;
      o.samples.push_back({ts, sample_time ? smp.t / 1000.0 : smp.v});
      // Count as we go: one series over very many steps must not outgrow the limit.
      if (o.samples.size() % kSampleBatch == 0) RETURN_IF_ERROR(AddSamples(kSampleBatch));
    }
    if (o.samples.empty()) continue;
    RETURN_IF_ERROR(AddSamples(static_cast<int64_t>(o.samples.size() % kSampleBatch)));
    o.labels = sample_time ? DropMetricName(s.labels) : std::move(s.labels);
    out.matrix.push_back(std::move(o));
  }
  return out;
}

absl::Span<const Sample> Evaluator::Window(const RangeArg& arg, const Series& s,
                                           int64_t ts) const {
  int64_t ref = RefTime(arg.at_kind, arg.at_ms, ts) - arg.offset_ms;
  auto by_time = [](const Sample& a, int64_t t) { return a.t < t; };
  auto from = std::lower_bound(s.samples.begin(), s.samples.end(), ref - arg.range_ms, by_time);
  auto to = std::upper_bound(from, s.samples.end(), ref,
                             [](int64_t t, const Sample& a) { return t < a.t; });
  return absl::Span<const Sample>(s.samples.data() + (from - s.samples.begin()), to - from);
}

absl::StatusOr<RangeArg> Evaluator::EvalRangeArg(const Expr& expr) {
  const Expr& e = Unwrap(expr);
  RangeArg arg;
  arg.range_ms = e.range_ms;
  if (e.kind == ExprKind::kMatrixSelector) {
    const Expr& vs = *e.args[0];
    arg.offset_ms = vs.offset_ms;
    arg.at_kind = vs.at_kind;
    arg.at_ms = vs.at_ms;
    int64_t first = RefTime(vs.at_kind, vs.at_ms, start_) - vs.offset_ms;
    int64_t last = RefTime(vs.at_kind, vs.at_ms, end_) - vs.offset_ms;
    ASSIGN_OR_RETURN(arg.series, Select(vs, first - e.range_ms, last));
    // Range vectors skip stale markers; dropping them once lets windows be slices.
    for (Series& s : arg.series) {
      s.samples.erase(std::remove_if(s.samples.begin(), s.samples.end(),
                                     [](const Sample& p) { return IsStaleNaN(p.v); }),
                      s.samples.end());
    }
    return arg;
  }
  if (e.kind != ExprKind::kSubquery) {
    return absl::InternalError("expected a range vector expression");
  }
  arg.offset_ms = e.offset_ms;
  arg.at_kind = e.at_kind;
  arg.at_ms = e.at_ms;
  int64_t step = e.step_ms > 0 ? e.step_ms : state_->default_step_ms;
  int64_t base_start = RefTime(e.at_kind, e.at_ms, start_);
  int64_t base_end = RefTime(e.at_kind, e.at_ms, end_);
  int64_t lo = base_start - e.offset_ms - e.range_ms;
  // The first step-aligned time at or after lo (Go's truncating division).
  int64_t sub_start = step * (lo / step);
  if (sub_start < lo) sub_start += step;
  int64_t sub_end = base_end - e.offset_ms;
  if (sub_start > sub_end) return arg;
  // Every step of the inner evaluation holds at least a point per scalar: refuse
  // step counts that could never fit rather than allocate for them.
  if ((sub_end - sub_start) / step + 1 > state_->max_samples) {
    return absl::ResourceExhaustedError(
        "query processing would load too many samples into memory in query execution");
  }
  Evaluator inner(state_, sub_start, sub_end, step);
  ASSIGN_OR_RETURN(Value v, inner.Eval(*e.args[0]));
  arg.series = std::move(v.matrix);
  return arg;
}

absl::StatusOr<Value> Evaluator::EvalRangeTop(const Expr& e) {
  ASSIGN_OR_RETURN(RangeArg arg, EvalRangeArg(e));
  Value out;
  out.type = ValueType::kMatrix;
  for (Series& s : arg.series) {
    absl::Span<const Sample> window = Window(arg, s, start_);
    if (window.empty()) continue;
    RETURN_IF_ERROR(AddSamples(static_cast<int64_t>(window.size())));
    out.matrix.push_back(Series{std::move(s.labels), {window.begin(), window.end()}});
  }
  return out;
}

absl::StatusOr<Value> Evaluator::EvalUnary(const Expr& e) {
  ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
  if (e.op != Tok::kSub) return v;
  for (Series& s : v.matrix) {
    for (Sample& p : s.samples) p.v = -p.v;
    if (v.type == ValueType::kVector) s.labels = DropMetricName(s.labels);
  }
  if (v.type == ValueType::kVector) RETURN_IF_ERROR(CheckUniqueLabels(v.matrix));
  return v;
}

absl::StatusOr<Matrix> Evaluator::RangeEval(const std::vector<const Value*>& args,
                                            const StepFn& fn) {
  std::vector<std::vector<size_t>> cursors(args.size());
  for (size_t a = 0; a < args.size(); ++a) cursors[a].assign(args[a]->matrix.size(), 0);
  Matrix out;
  absl::flat_hash_map<uint64_t, std::vector<size_t>> index;
  std::vector<StepArg> step_args(args.size());
  for (int64_t ts = start_; ts <= end_; ts += interval_) {
    RETURN_IF_ERROR(CheckDeadline());
    for (size_t a = 0; a < args.size(); ++a) {
      const Value& v = *args[a];
      StepArg& sa = step_args[a];
      sa.vec.clear();
      sa.scalar = 0;
      for (size_t i = 0; i < v.matrix.size(); ++i) {
        const std::vector<Sample>& pts = v.matrix[i].samples;
        size_t& c = cursors[a][i];
        while (c < pts.size() && pts[c].t < ts) ++c;
        if (c >= pts.size() || pts[c].t != ts) continue;
        if (v.type == ValueType::kScalar) {
          sa.scalar = pts[c].v;
        } else {
          sa.vec.push_back(VSample{v.matrix[i].labels, pts[c].v, ts});
        }
      }
    }
    ASSIGN_OR_RETURN(Vector result, fn(step_args, ts));
    RETURN_IF_ERROR(AddSamples(static_cast<int64_t>(result.size())));
    for (VSample& s : result) {
      std::vector<size_t>& slots = index[s.labels.Hash()];
      Series* target = nullptr;
      for (size_t k : slots) {
        if (out[k].labels == s.labels) target = &out[k];
      }
      if (target == nullptr) {
        slots.push_back(out.size());
        out.push_back(Series{std::move(s.labels), {}});
        target = &out.back();
      } else if (!target->samples.empty() && target->samples.back().t == ts) {
        return absl::FailedPreconditionError(
            "vector cannot contain metrics with the same labelset");
      }
      target->samples.push_back({ts, s.v});
    }
  }
  // The arguments are consumed: their points no longer count as held.
  for (const Value* v : args) ReleaseSamples(CountPoints(v->matrix));
  return out;
}

}  // namespace vigil::query
