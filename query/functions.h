// query/functions.h
//
// The PromQL 2.42 function implementations (promql/functions.go), split into
// per-step functions over instant vectors and functions over the samples of a
// range window. Pure functions; the evaluator (functions.cc) drives them.
#ifndef VIGIL_QUERY_FUNCTIONS_H_
#define VIGIL_QUERY_FUNCTIONS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "query/ast.h"
#include "query/evaluator.h"
#include "query/value.h"

namespace vigil::query {

// What a range function sees at one step.
struct RangeWindow {
  absl::Span<const Sample> samples;  // non-stale, time-ordered, at least one
  int64_t range_start = 0;             // ms, inclusive (ref - range)
  int64_t range_end = 0;               // ms (ref)
  int64_t range_ms = 0;
  int64_t ts = 0;                      // the step time
  std::vector<double> scalars;         // the function's scalar arguments, in order
};

// nullopt: no output for this series at this step.
using RangeFn = absl::StatusOr<std::optional<double>> (*)(const RangeWindow& w);

// The range function called `name` (rate, *_over_time, ...); nullptr if none.
RangeFn LookupRangeFunction(absl::string_view name);

// The per-sample function (SampleFn, evaluator.h) called `name`, e.g. abs, round,
// clamp, hour; nullptr if `name` is not one. Their outputs drop the metric name.
const SampleFn* LookupSampleFunction(absl::string_view name);

// One step of a function over instant vectors and scalars. `strs` holds the
// string arguments (by argument position; empty for non-strings).
absl::StatusOr<Vector> CallInstantFunction(const Expr& call, std::vector<StepArg>& args,
                                           const std::vector<std::string>& strs, int64_t ts);

// label_replace() / label_join() on one step's vector (consumed).
absl::StatusOr<Vector> LabelReplace(Vector& in, const std::vector<std::string>& strs);
absl::StatusOr<Vector> LabelJoin(Vector& in, const std::vector<std::string>& strs);

// histogram_quantile(q, buckets) over classic `le` buckets.
Vector HistogramQuantile(double q, Vector& in);

// The labels absent()/absent_over_time() give their output, from the
// equality matchers of a selector argument.
Labels AbsentLabels(const Expr& arg);

}  // namespace vigil::query

#endif  // VIGIL_QUERY_FUNCTIONS_H_
