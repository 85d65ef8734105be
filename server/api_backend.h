// server/api_backend.h
//
// ApiBackend: what the node's APIs (HTTP and gRPC) serve from. On a single node
// it is the local TSDB and engine; in a cluster, a replicating writer and a
// fanned-out SeriesSource plug in here without the API code changing.
#ifndef VIGIL_SERVER_API_BACKEND_H_
#define VIGIL_SERVER_API_BACKEND_H_

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "query/engine.h"
#include "query/series_source.h"
#include "server/metrics.h"
#include "storage/tsdb.h"

namespace vigil::server {

// Where writes go. Same contract as storage::TSDB::Append.
using AppendFn = std::function<absl::StatusOr<storage::AppendResult>(
    const std::vector<storage::SeriesAppend>&)>;

struct ApiBackend {
  AppendFn append;
  query::SeriesSource* source = nullptr;
  // Optional (a cluster): the source of a request with partial_response=true or
  // false (Thanos' parameter); null or a null result: `source`.
  std::function<query::SeriesSource*(bool partial_response)> source_for;
  query::Engine* engine = nullptr;
  metrics::Registry* metrics = nullptr;
  // False until the node serves (storage recovered and, in a cluster, the control
  // plane started): /-/ready answers 503 meanwhile.
  std::function<bool()> ready;
};

}  // namespace vigil::server

#endif  // VIGIL_SERVER_API_BACKEND_H_
