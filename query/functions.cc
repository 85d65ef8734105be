// PromQL functions (promql/functions.go).
#include "common/status_macros.h"
#include "query/evaluator.h"

namespace vigil::query {

absl::StatusOr<Value> Evaluator::EvalCall(const Expr& e) {
  return absl::UnimplementedError("functions are not implemented yet");
}

}  // namespace vigil::query
