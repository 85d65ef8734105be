// query/value.h
//
// Values flowing through evaluation: a Vector is the instant result at one step,
// a Matrix holds series of points (per-step results, or raw samples for a range
// vector). Plain value types.
#ifndef VIGIL_QUERY_VALUE_H_
#define VIGIL_QUERY_VALUE_H_

#include <string>
#include <vector>

#include "common/sample.h"
#include "query/engine.h"

namespace vigil::query {

struct VSample {
  Labels labels;
  double v = 0;
  // The sample's own timestamp where it matters (timestamp()); else the step time.
  int64_t t = 0;
};
using Vector = std::vector<VSample>;
using Matrix = std::vector<Series>;

// The result of evaluating one node over the evaluator's steps. kScalar and
// kVector hold one point per step (a scalar is one series without labels);
// kMatrix holds raw samples (only at the top of an instant query).
struct Value {
  ValueType type = ValueType::kVector;
  Matrix matrix;
  std::string str;
};

// Labels without __name__, as arithmetic and most functions return them.
Labels DropMetricName(const Labels& l);

}  // namespace vigil::query

#endif  // VIGIL_QUERY_VALUE_H_
