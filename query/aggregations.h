// query/aggregations.h
//
// The per-step aggregation of PromQL's aggregation operators, and helpers that
// functions share with it. Pure functions.
#ifndef VIGIL_QUERY_AGGREGATIONS_H_
#define VIGIL_QUERY_AGGREGATIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "query/lexer.h"
#include "query/value.h"

namespace vigil::query {

// Aggregates `in` (consumed) with `op` (a Tok::kSum..kQuantile) grouped by or
// without `grouping`. `param` is topk/bottomk's k or quantile's q; `str_param`
// count_values' label. Output in first-seen group order (topk: by value).
absl::StatusOr<Vector> Aggregate(Tok op, std::vector<std::string> grouping, bool without,
                                 double param, const std::string& str_param, Vector& in);

// The q-quantile of `values` with linear interpolation, as Prometheus' quantile().
double Quantile(double q, std::vector<double> values);

// Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, no exponent.
std::string FormatGoFloat(double v);

}  // namespace vigil::query

#endif  // VIGIL_QUERY_AGGREGATIONS_H_
