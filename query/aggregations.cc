// Aggregation operators (sum, avg, topk, quantile, ...), promql/engine.go aggregation().
#include "common/status_macros.h"
#include "query/evaluator.h"

namespace vigil::query {

absl::StatusOr<Value> Evaluator::EvalAggregate(const Expr& e) {
  return absl::UnimplementedError("aggregations are not implemented yet");
}

}  // namespace vigil::query
