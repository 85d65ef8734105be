// query/aggregations.h
//
// Helpers shared by the aggregation operators and the functions. Pure functions.
#ifndef VIGIL_QUERY_AGGREGATIONS_H_
#define VIGIL_QUERY_AGGREGATIONS_H_

#include <string>
#include <vector>

namespace vigil::query {

// The q-quantile of `values` with linear interpolation, as Prometheus' quantile().
double Quantile(double q, std::vector<double> values);

// Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, no exponent.
std::string FormatGoFloat(double v);

}  // namespace vigil::query

#endif  // VIGIL_QUERY_AGGREGATIONS_H_
