// tools/text_format.h
//
// Parsers for the two small text notations the command-line tools read:
//   - one line of the Prometheus text exposition format,
//       `http_requests_total{method="post",code="200"} 1027 1395066363000`
//     (timestamp optional, in milliseconds), and
//   - a plain PromQL series selector, `name{a="b",c=~"d.*"}` (no ranges,
//     offsets or functions).
// Both share the label-set grammar: label names as Prometheus spells them,
// values in double quotes (selectors also accept single quotes and backticks)
// with the escapes `\\`, `\"`, `\n`, `\t` and `\'`.
// Stateless functions; thread-safe.
#ifndef VIGIL_TOOLS_TEXT_FORMAT_H_
#define VIGIL_TOOLS_TEXT_FORMAT_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/labels.h"
#include "common/matcher.h"

namespace vigil::tools {

struct ExpositionSample {
  Labels labels;  // includes __name__
  double value = 0;
  std::optional<int64_t> timestamp_ms;  // absent: the caller picks "now"
};

// Parses one exposition line. Returns nullopt for blank lines and `#` comments
// (HELP, TYPE, ...). kInvalidArgument naming the column and what was expected
// for anything else that is not a valid sample line, including invalid label
// names, duplicate label names and a missing metric name.
absl::StatusOr<std::optional<ExpositionSample>> ParseExpositionLine(absl::string_view line);

// Parses a series selector into matchers: `name` becomes __name__="name".
// At least one matcher must not match the empty string, as in PromQL.
// kInvalidArgument for syntax errors and regexes that do not compile.
absl::StatusOr<std::vector<LabelMatcher>> ParseSelector(absl::string_view selector);

// Parses a float as the exposition format spells it: decimal or exponent
// notation, `NaN`, `+Inf`, `-Inf`, `Inf` (case-insensitive).
absl::StatusOr<double> ParseValue(absl::string_view text);

// Parses a time given on the command line, in milliseconds since the epoch:
// an integer (ms), RFC 3339 (`2026-01-02T03:04:05Z`), `now`, or `now` plus or
// minus a duration (`now-1h`, `-90s` means the same as `now-90s`).
absl::StatusOr<int64_t> ParseTimeArg(absl::string_view text, int64_t now_ms);

}  // namespace vigil::tools

#endif  // VIGIL_TOOLS_TEXT_FORMAT_H_
