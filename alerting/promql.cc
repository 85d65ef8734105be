#include "alerting/promql.h"

#include "common/status_macros.h"
#include "query/parser.h"

namespace vigil::alerting {

ExprValidator PromQLExprValidator() {
  return [](absl::string_view expr) -> absl::Status {
    return query::ParseExpr(expr).status();
  };
}

absl::StatusOr<std::vector<Series>> EngineRuleQuerier::Query(absl::string_view expr,
                                                             absl::Time ts) {
  int64_t t = absl::ToUnixMillis(ts);
  ASSIGN_OR_RETURN(query::QueryResult r, engine_->InstantQuery(source_, expr, t));
  switch (r.type) {
    case query::ValueType::kVector:
      return std::move(r.series);
    case query::ValueType::kScalar:
      return std::vector<Series>{Series{Labels(), {{t, r.scalar}}}};
    default:
      return absl::InvalidArgumentError(
          "rule expression must evaluate to an instant vector or a scalar");
  }
}

}  // namespace vigil::alerting
