// server/json_format.h
//
// JSON exactly as Prometheus' HTTP API writes it (web/api/v1, util/jsonutil):
// envelopes, label sets, sample values as strings formatted like Go's
// strconv.FormatFloat(v, 'f' or 'e', -1, 64), timestamps as seconds with up to
// millisecond precision. Pure functions, thread-safe.
#ifndef VIGIL_SERVER_JSON_FORMAT_H_
#define VIGIL_SERVER_JSON_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/labels.h"
#include "query/engine.h"

namespace vigil::server {

// A sample value without quotes: 'f' notation with the fewest digits that round
// trip, 'e' notation when |v| < 1e-6 or |v| >= 1e21 ("1e+21", "1.5e-07"); "+Inf",
// "-Inf", "NaN".
std::string FormatPromValue(double v);

// Milliseconds as seconds: 1435781451781 -> "1435781451.781", 1000 -> "1",
// 1500 -> "1.500" (Prometheus writes the fraction as three digits).
std::string FormatPromTimestamp(int64_t ms);

// Appends `s` as a JSON string literal, escaping like Go's encoding/json
// (including <, >, & and U+2028/U+2029; invalid UTF-8 becomes U+FFFD).
void AppendJsonString(std::string* out, absl::string_view s);

// {"name":"value",...} in label order.
void AppendLabelsJson(std::string* out, const Labels& labels);

// ["a","b",...]
std::string StringListJson(const std::vector<std::string>& values);

// The `data` of a query response: {"resultType":"vector","result":[...]}.
std::string QueryDataJson(const query::QueryResult& result);

// {"status":"success","data":<data_json>[,"warnings":[...]]}
std::string SuccessJson(absl::string_view data_json, const std::vector<std::string>& warnings = {});

// {"status":"error","errorType":"<type>","error":"<message>"}
std::string ErrorJson(absl::string_view error_type, absl::string_view message);

}  // namespace vigil::server

#endif  // VIGIL_SERVER_JSON_FORMAT_H_
