// alerting/promql.h
//
// Adapters from alerting to the PromQL engine (query/), kept out of the alerting
// core so that rules and the state machine do not depend on the engine:
//  - PromQLExprValidator(): rule-file expression checks with query::ParseExpr.
//  - EngineRuleQuerier: a RuleQuerier that runs instant queries on a query::Engine
//    over a SeriesSource (a node's TSDB, the cluster's fan-out source, or a
//    MemorySeriesSource in tests).
#ifndef VIGIL_ALERTING_PROMQL_H_
#define VIGIL_ALERTING_PROMQL_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "alerting/manager.h"
#include "alerting/rules.h"
#include "query/engine.h"
#include "query/series_source.h"

namespace vigil::alerting {

// Parses with query::ParseExpr; the error is the parser's ("1:5: parse error: ...").
ExprValidator PromQLExprValidator();

// Thread-compatible; the engine and source must outlive it.
class EngineRuleQuerier : public RuleQuerier {
 public:
  EngineRuleQuerier(query::Engine* engine, query::SeriesSource* source)
      : engine_(engine), source_(source) {}
  // A vector comes back as is; a scalar as one series without labels (Prometheus'
  // EngineQueryFunc); strings and matrices are kInvalidArgument.
  absl::StatusOr<std::vector<Series>> Query(absl::string_view expr, absl::Time ts) override;

 private:
  query::Engine* const engine_;
  query::SeriesSource* const source_;
};

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_PROMQL_H_
