// alerting/api.h
//
// The "data" objects of Prometheus' GET /api/v1/alerts and GET /api/v1/rules
// (web/api/v1 in Prometheus 2.42), built from a RuleManager. The server wraps
// them in {"status":"success","data":...}. Followers hold the committed alert
// state, so every node can answer; rule health and evaluation times are those of
// this node ("unknown" and zero where it did not evaluate).
// Read-only on the manager; call from the thread that owns it.
#ifndef VIGIL_ALERTING_API_H_
#define VIGIL_ALERTING_API_H_

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "alerting/manager.h"
#include "nlohmann/json.hpp"

namespace vigil::alerting {

// {"alerts":[{labels, annotations, state, activeAt, keepFiringSince?, value}]}:
// the pending and firing alerts of every alerting rule.
nlohmann::json AlertsAPIData(const RuleManager& manager);

// {"groups":[{name, file, rules:[...], interval, limit, evaluationTime,
// lastEvaluation}]}. `type` filters rules: "" all, "alert", "record".
nlohmann::json RulesAPIData(const RuleManager& manager, absl::string_view type = "");

// Go's time.Time JSON (RFC 3339 with nanoseconds, trailing zeros trimmed, UTC);
// absl::InfinitePast() is Go's zero time "0001-01-01T00:00:00Z".
std::string GoTimeJSON(absl::Time t);
// Go's strconv.FormatFloat(v, 'e', -1, 64): "1e+00", "9.7e-01", "NaN", "+Inf".
std::string FormatFloatE(double v);

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_API_H_
