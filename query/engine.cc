#include "query/engine.h"

#include <algorithm>


#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "query/evaluator.h"
#include "query/parser.h"
#include "query/release_memory.h"

namespace vigil::query {
namespace {

// Whether the result order is the expression's own (sort(), topk) rather than by labels.
bool KeepsOrder(const Expr& expr) {
  const Expr& e = Unwrap(expr);
  if (e.kind == ExprKind::kCall) return e.func->name == "sort" || e.func->name == "sort_desc";
  if (e.kind == ExprKind::kAggregate) return e.agg_op == Tok::kTopk || e.agg_op == Tok::kBottomk;
  return false;
}

// 11000 -> "11,000", as Prometheus prints the limit.
std::string WithThousandsSeparators(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

void SortByLabels(std::vector<Series>* series) {
  std::sort(series->begin(), series->end(),
            [](const Series& a, const Series& b) { return a.labels < b.labels; });
}

}  // namespace

Engine::Engine(EngineOptions opts) : opts_(std::move(opts)) {}

namespace {

struct Prepared {
  std::unique_ptr<Expr> expr;
  EvalState state;
};

absl::StatusOr<Prepared> Prepare(const EngineOptions& opts, SeriesSource* source,
                                 absl::string_view query, int64_t start, int64_t end,
                                 absl::Duration timeout) {
  Prepared p;
  ASSIGN_OR_RETURN(p.expr, ParseExpr(query));
  p.state.source = source;
  p.state.clock = opts.clock != nullptr ? opts.clock : RealClock::Get();
  absl::Duration limit = opts.timeout;
  if (timeout > absl::ZeroDuration() && timeout < limit) limit = timeout;
  p.state.deadline = p.state.clock->Now() + limit;
  p.state.lookback_ms = absl::ToInt64Milliseconds(opts.lookback_delta);
  p.state.default_step_ms = std::max<int64_t>(
      1, absl::ToInt64Milliseconds(opts.default_evaluation_interval));
  p.state.max_samples = opts.max_samples;
  p.state.query_start_ms = start;
  p.state.query_end_ms = end;
  return p;
}

// Resident memory may grow by this much before freed memory is handed back
// to the operating system (see release_memory.h).
constexpr int64_t kReleaseSlackBytes = 64 << 20;

absl::StatusOr<QueryResult> EvalInstant(const EngineOptions& opts, SeriesSource* source,
                                        absl::string_view expr, int64_t t_ms,
                                        absl::Duration timeout) {
  ASSIGN_OR_RETURN(Prepared p, Prepare(opts, source, expr, t_ms, t_ms, timeout));
  Evaluator ev(&p.state, t_ms, t_ms, 1);
  ASSIGN_OR_RETURN(Value v, ev.Eval(*p.expr));
  QueryResult r;
  r.type = v.type;
  r.t = t_ms;
  r.warnings = std::move(p.state.warnings);
  switch (v.type) {
    case ValueType::kString:
      r.str = std::move(v.str);
      break;
    case ValueType::kScalar:
      r.scalar = v.matrix.empty() || v.matrix[0].samples.empty() ? 0 : v.matrix[0].samples[0].v;
      break;
    case ValueType::kVector:
      r.series = std::move(v.matrix);
      if (!KeepsOrder(*p.expr)) SortByLabels(&r.series);
      break;
    case ValueType::kMatrix:
      r.series = std::move(v.matrix);
      SortByLabels(&r.series);
      break;
  }
  return r;
}

absl::StatusOr<QueryResult> EvalRange(const EngineOptions& opts, SeriesSource* source,
                                      absl::string_view expr, int64_t start_ms, int64_t end_ms,
                                      int64_t step_ms, absl::Duration timeout) {
  if (step_ms <= 0) {
    return absl::InvalidArgumentError(
        "zero or negative query resolution step widths are not accepted. Try a positive integer");
  }
  if (end_ms < start_ms) {
    return absl::InvalidArgumentError("end timestamp must not be before start time");
  }
  if ((end_ms - start_ms) / step_ms + 1 > opts.max_points_per_series) {
    return absl::InvalidArgumentError(absl::StrCat(
        "exceeded maximum resolution of ", WithThousandsSeparators(opts.max_points_per_series),
        " points per timeseries. Try decreasing the query resolution (?step=XX)"));
  }
  ASSIGN_OR_RETURN(Prepared p, Prepare(opts, source, expr, start_ms, end_ms, timeout));
  ValueType t = p.expr->type();
  if (t != ValueType::kScalar && t != ValueType::kVector) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid expression type \"", ValueTypeName(t),
                     "\" for range query, must be Scalar or instant Vector"));
  }
  Evaluator ev(&p.state, start_ms, end_ms, step_ms);
  ASSIGN_OR_RETURN(Value v, ev.Eval(*p.expr));
  QueryResult r;
  r.type = ValueType::kMatrix;
  r.t = end_ms;
  r.warnings = std::move(p.state.warnings);
  r.series = std::move(v.matrix);
  SortByLabels(&r.series);
  return r;
}

}  // namespace

absl::StatusOr<QueryResult> Engine::InstantQuery(SeriesSource* source, absl::string_view expr,
                                                 int64_t t_ms, absl::Duration timeout) {
  absl::StatusOr<QueryResult> r = EvalInstant(opts_, source, expr, t_ms, timeout);
  ReleaseFreedMemory(kReleaseSlackBytes);  // the query's temporaries are freed by now
  return r;
}

absl::StatusOr<QueryResult> Engine::RangeQuery(SeriesSource* source, absl::string_view expr,
                                               int64_t start_ms, int64_t end_ms, int64_t step_ms,
                                               absl::Duration timeout) {
  absl::StatusOr<QueryResult> r = EvalRange(opts_, source, expr, start_ms, end_ms, step_ms, timeout);
  ReleaseFreedMemory(kReleaseSlackBytes);
  return r;
}

}  // namespace vigil::query
