// server/http_api.h
//
// HttpApi: the Prometheus-compatible HTTP API of one node, mounted on a
// cpp-httplib server: remote-write ingest, PromQL queries, series/label
// metadata, health, readiness and the node's own /metrics. Responses use
// Prometheus' envelopes, status codes and number formatting.
//
// Thread-safe: httplib calls the handlers from its worker threads concurrently.
#ifndef VIGIL_SERVER_HTTP_API_H_
#define VIGIL_SERVER_HTTP_API_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "ingest/remote_write.h"
#include "server/api_backend.h"
#include "server/api_params.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace vigil::server {

struct HttpApiOptions {
  // Largest request body (compressed, for remote-write) accepted; larger -> 413.
  size_t max_request_bytes = 32 << 20;
  ingest::DecodeOptions decode;
  // Used when a query has no `timeout` parameter.
  absl::Duration default_query_timeout = absl::Minutes(2);
  std::string version = "0.1.0";
  // "Now" for queries without a time. Latencies are always measured in real time.
  Clock* clock = RealClock::Get();
};

class HttpApi {
 public:
  HttpApi(ApiBackend deps, HttpApiOptions opts);
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // One request: httplib's view of it and its parameters, parsed as Go does
  // (httplib splits a value at every '=', which breaks `match[]=up{job="x"}`).
  struct Call {
    const httplib::Request& req;
    ParamMap params;  // URL query, then form body for form POSTs
    // The first value of `name`, or "" when absent.
    std::string Param(const std::string& name) const;
  };

  // Registers every route on `server` (and its payload limit and error handler).
  // `this` must outlive the server's use of the routes.
  void Register(httplib::Server* server);

 private:
  struct Reply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
  };
  using Handler = Reply (HttpApi::*)(const Call&);

  // Wraps `h` with request counting and timing under label `name`.
  std::function<void(const httplib::Request&, httplib::Response&)> Instrument(
      const std::string& name, Handler h);

  Reply Write(const Call& c);
  Reply Query(const Call& c);
  Reply QueryRange(const Call& c);
  Reply SeriesList(const Call& c);
  Reply LabelNames(const Call& c);
  Reply LabelValues(const Call& c);
  Reply Metadata(const Call& c);
  Reply BuildInfo(const Call& c);
  Reply QueryExemplars(const Call& c);
  Reply Healthy(const Call& c);
  Reply Ready(const Call& c);
  Reply Metrics(const Call& c);

  static Reply Error(const absl::Status& s);
  static Reply Success(const std::string& data_json,
                       const std::vector<std::string>& warnings = {});
  // The start, end and match[] parameters shared by series and label lookups.
  struct MatchQuery {
    int64_t start = 0;
    int64_t end = 0;
    std::vector<std::vector<LabelMatcher>> sets;  // at least one (maybe empty) set
  };
  // kInvalidArgument for bad times or selectors, or no match[] when `required`.
  static absl::StatusOr<MatchQuery> ParseMatchQuery(const Call& c, bool required);
  using StringsFn = std::function<absl::StatusOr<std::vector<std::string>>(
      const std::vector<LabelMatcher>&, int64_t, int64_t)>;
  // The sorted union of `fn` over the request's matcher sets.
  Reply StringUnion(const Call& c, const StringsFn& fn);
  // The request's source: deps_.source, or deps_.source_for(partial_response)
  // when the request sets it. kInvalidArgument for a value that is no boolean.
  absl::StatusOr<query::SeriesSource*> Source(const Call& c) const;

  // Constant after construction.
  const ApiBackend deps_;
  const HttpApiOptions opts_;
  metrics::Counter* write_requests_invalid_;
};

}  // namespace vigil::server

#endif  // VIGIL_SERVER_HTTP_API_H_
