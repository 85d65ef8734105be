// query/engine.h
//
// Engine: evaluates PromQL (Prometheus 2.42 semantics) over a SeriesSource.
// Thread-safe: one Engine serves concurrent queries.
#ifndef VIGIL_QUERY_ENGINE_H_
#define VIGIL_QUERY_ENGINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/sample.h"
#include "query/series_source.h"

namespace vigil::query {

struct EngineOptions {
  absl::Duration lookback_delta = absl::Minutes(5);
  absl::Duration timeout = absl::Minutes(2);
  // Most samples a query may hold in memory at once (Prometheus --query.max-samples).
  int64_t max_samples = 50'000'000;
  // Most points a range query may return per series.
  int64_t max_points_per_series = 11'000;
  // Step of subqueries written without one (`x[1h:]`), as Prometheus'
  // global evaluation_interval.
  absl::Duration default_evaluation_interval = absl::Minutes(1);
  // Reads time for the timeout; RealClock::Get() when null. Not owned.
  const Clock* clock = nullptr;
};

enum class ValueType { kScalar, kString, kVector, kMatrix };

struct QueryResult {
  ValueType type = ValueType::kVector;
  // kScalar / kString: the value at `t`.
  int64_t t = 0;
  double scalar = 0;
  std::string str;
  // kVector: one sample per series (at the evaluation time); kMatrix: the points of
  // each series. Sorted by labels unless the expression orders them (sort(), topk).
  std::vector<Series> series;
  std::vector<std::string> warnings;
};

class Engine {
 public:
  explicit Engine(EngineOptions opts = {});

  // Errors: kInvalidArgument for parse errors ("1:5: parse error: unexpected ...",
  // Prometheus' wording, position included) and bad parameters (-> HTTP 400
  // bad_data); kDeadlineExceeded past the timeout (-> 503 timeout);
  // kResourceExhausted past max_samples (-> 422 execution); kFailedPrecondition
  // for evaluation errors such as many-to-many matching (-> 422 execution);
  // the source's own error codes pass through.
  absl::StatusOr<QueryResult> InstantQuery(SeriesSource* source, absl::string_view expr,
                                           int64_t t_ms, absl::Duration timeout = {});
  // Always kMatrix (a scalar expression becomes one series without labels).
  absl::StatusOr<QueryResult> RangeQuery(SeriesSource* source, absl::string_view expr,
                                         int64_t start_ms, int64_t end_ms, int64_t step_ms,
                                         absl::Duration timeout = {});

  const EngineOptions& options() const { return opts_; }

 private:
  EngineOptions opts_;
};

}  // namespace vigil::query

#endif  // VIGIL_QUERY_ENGINE_H_
