// query/evaluator.h
//
// Evaluator: evaluates one syntax tree over a range of steps [start, end] every
// `interval` ms, the way Prometheus' promql/engine.go evaluator does: every node
// yields a Matrix with a point per step, and per-step operations (functions,
// operators, aggregations) run through RangeEval. One Evaluator per query; not
// thread-safe.
#ifndef VIGIL_QUERY_EVALUATOR_H_
#define VIGIL_QUERY_EVALUATOR_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/clock.h"
#include "query/ast.h"
#include "query/series_source.h"
#include "query/value.h"

namespace vigil::query {

// Shared by an evaluator and the evaluators of its subqueries.
struct EvalState {
  SeriesSource* source = nullptr;
  const Clock* clock = nullptr;
  absl::Time deadline = absl::InfiniteFuture();
  int64_t lookback_ms = 300'000;
  int64_t default_step_ms = 60'000;
  int64_t max_samples = 0;
  int64_t current_samples = 0;
  int64_t query_start_ms = 0;  // for @ start()
  int64_t query_end_ms = 0;    // for @ end()
  std::vector<std::string> warnings;
  int64_t deadline_checks = 0;
};

// One argument of a per-step operation: a vector or a scalar.
struct StepArg {
  Vector vec;
  double scalar = 0;
};
// A function applied to each sample on its own: the sample's value, its step time
// and the call's scalar arguments give the new value, or nullopt to drop it.
using SampleFn = std::function<std::optional<double>(double v, int64_t ts,
                                                     const std::vector<double>& scalars)>;
using StepFn = std::function<absl::StatusOr<Vector>(std::vector<StepArg>& args, int64_t ts)>;

// A range-vector argument: series of raw samples and how to window them.
struct RangeArg {
  Matrix series;  // stale markers removed
  int64_t range_ms = 0;
  int64_t offset_ms = 0;
  AtKind at_kind = AtKind::kNone;
  int64_t at_ms = 0;
};

class Evaluator {
 public:
  Evaluator(EvalState* state, int64_t start, int64_t end, int64_t interval)
      : state_(state), start_(start), end_(end), interval_(interval) {}

  absl::StatusOr<Value> Eval(const Expr& e);

  // Evaluates `args` (scalar / vector typed) and calls `fn` at every step with
  // their values; collects the outputs into series. kFailedPrecondition if a step
  // yields two samples with equal labels.
  absl::StatusOr<Matrix> RangeEval(const std::vector<const Value*>& args, const StepFn& fn);

  // The samples of `s` (one of arg.series) in [ts - range, ts] after offset / @.
  absl::Span<const Sample> Window(const RangeArg& arg, const Series& s, int64_t ts) const;

  // The value of scalar `v` at step index `step`; NaN if it has none.
  static double ScalarAt(const Value& v, int64_t step);

  absl::Status CheckDeadline();
  // Counts `n` more samples held; kResourceExhausted past max_samples.
  absl::Status AddSamples(int64_t n);
  void ReleaseSamples(int64_t n) { state_->current_samples -= n; }

  int64_t start() const { return start_; }
  int64_t end() const { return end_; }
  int64_t interval() const { return interval_; }
  EvalState* state() const { return state_; }

 private:
  // `sample_time`: each point's value is its sample's timestamp in seconds and
  // the metric name is dropped (timestamp() of a selector).
  absl::StatusOr<Value> EvalVectorSelector(const Expr& e, bool sample_time);
  absl::StatusOr<RangeArg> EvalRangeArg(const Expr& e);
  absl::StatusOr<Value> EvalRangeTop(const Expr& e);
  absl::StatusOr<Value> EvalUnary(const Expr& e);
  absl::StatusOr<Value> EvalBinary(const Expr& e);
  absl::StatusOr<Value> VectorScalar(Tok op, bool return_bool, Value& vec, const Value& scalar,
                                     bool swap);
  absl::StatusOr<Value> VectorVector(const Expr& e, const Value& lhs, const Value& rhs);
  absl::StatusOr<Value> EvalAggregate(const Expr& e);
  absl::StatusOr<Value> EvalCall(const Expr& e);
  absl::StatusOr<Value> EvalRangeFunction(const Expr& e, int matrix_arg);
  absl::StatusOr<Value> EvalSampleFunction(const Expr& e, const SampleFn& fn);
  absl::StatusOr<Matrix> Select(const Expr& sel, int64_t mint, int64_t maxt);
  int64_t RefTime(AtKind kind, int64_t at_ms, int64_t ts) const;

  // Points produced for one series are counted against max_samples in batches.
  static constexpr int64_t kSampleBatch = 4096;

  EvalState* state_;
  int64_t start_, end_, interval_;
};

// Total points in `m`.
int64_t CountPoints(const Matrix& m);

// kFailedPrecondition if two series of `m` have equal labels.
absl::Status CheckUniqueLabels(const Matrix& m);

// Merges series that ended up with equal labels (after dropping the metric
// name, say) as Prometheus' per-step evaluation does; kFailedPrecondition if two
// of them have a point at the same time.
absl::Status MergeEqualLabels(Matrix* m);

// Removes parentheses around `e`.
const Expr& Unwrap(const Expr& e);

}  // namespace vigil::query

#endif  // VIGIL_QUERY_EVALUATOR_H_
