// query/parser.h
//
// Parse: PromQL text -> type-checked syntax tree, with Prometheus 2.42's grammar,
// operator precedence and error messages ("1:5: parse error: unexpected ...").
// Pure function, thread-safe.
#ifndef VIGIL_QUERY_PARSER_H_
#define VIGIL_QUERY_PARSER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "query/ast.h"

namespace vigil::query {

// kInvalidArgument with a positioned message on a syntax or type error.
absl::StatusOr<std::unique_ptr<Expr>> ParseExpr(absl::string_view input);

// Parses a selector like `foo{bar="baz"}` into its matchers (the metric name as
// a __name__ matcher), as the HTTP API's match[] parameters need.
absl::StatusOr<std::vector<LabelMatcher>> ParseMetricSelector(absl::string_view input);

// Parses a duration like "1h30m" into milliseconds; kInvalidArgument otherwise.
absl::StatusOr<int64_t> ParseDurationMs(absl::string_view s);

}  // namespace vigil::query

#endif  // VIGIL_QUERY_PARSER_H_
