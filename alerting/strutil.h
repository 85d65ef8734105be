// alerting/strutil.h
//
// Small Prometheus-compatible string helpers shared by rule loading, templates and
// the notifier: Prometheus durations ("1h30m", model.ParseDuration), Go's
// url.QueryEscape and Prometheus' table link for generatorURL. Pure functions.
#ifndef VIGIL_ALERTING_STRUTIL_H_
#define VIGIL_ALERTING_STRUTIL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vigil::alerting {

// Prometheus' model.ParseDuration: `[0-9]+(y|w|d|h|m|s|ms)` units in that order,
// each at most once, or "0". kInvalidArgument `not a valid duration string: "x"`.
absl::StatusOr<absl::Duration> ParsePromDuration(absl::string_view s);

// Prometheus' model.Duration.String(): "1h30m", "5m", "0s", "1d", "100ms".
std::string FormatPromDuration(absl::Duration d);

// Go's url.QueryEscape: space becomes '+', [A-Za-z0-9-_.~] stay, the rest %XX.
std::string QueryEscape(absl::string_view s);

// Prometheus' strutil.TableLinkForExpression: "/graph?g0.expr=<escaped>&g0.tab=1".
std::string TableLinkForExpression(absl::string_view expr);
// Prometheus' strutil.GraphLinkForExpression: "/graph?g0.expr=<escaped>&g0.tab=0".
std::string GraphLinkForExpression(absl::string_view expr);

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_STRUTIL_H_
