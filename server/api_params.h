// server/api_params.h
//
// Parsing of the Prometheus HTTP API's parameters, with Prometheus' rules and
// error wording (web/api/v1/api.go parseTime / parseDuration). Pure functions.
#ifndef VIGIL_SERVER_API_PARAMS_H_
#define VIGIL_SERVER_API_PARAMS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vigil::server {

// The widest range the API accepts (Prometheus' minTime/maxTime), in ms.
inline constexpr int64_t kMinTimeMs = (INT64_MIN / 1000 + 62135596801LL) * 1000;
inline constexpr int64_t kMaxTimeMs = (INT64_MAX / 1000 - 62135596801LL) * 1000 + 999;

// Unix seconds with an optional fraction ("1435781451.781", rounded to the
// millisecond) or RFC 3339 ("2015-07-01T20:10:51.781Z"), to ms since the epoch.
// kInvalidArgument: `cannot parse "x" to a valid timestamp`.
absl::StatusOr<int64_t> ParseApiTime(absl::string_view s);

// Seconds as a float ("15", "0.5") or a Prometheus duration ("1m30s", "15d").
// kInvalidArgument: `cannot parse "x" to a valid duration`.
absl::StatusOr<absl::Duration> ParseApiDuration(absl::string_view s);

// A Prometheus duration only: "15d", "12h", "1h30m", "500ms", "0" (for flags).
absl::StatusOr<absl::Duration> ParsePromDuration(absl::string_view s);

// Request parameters by name, in the order they came.
using ParamMap = std::multimap<std::string, std::string>;

// Adds the pairs of a URL query string or form body ("a=1&b=x%3Dy") to `out`,
// as Go's url.ParseQuery does: pairs split on '&', name and value at the first
// '=', both percent-decoded with '+' as space; pairs with bad escapes dropped.
void ParseQueryString(absl::string_view query, ParamMap* out);

}  // namespace vigil::server

#endif  // VIGIL_SERVER_API_PARAMS_H_
