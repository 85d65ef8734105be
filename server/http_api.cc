// server/http_api.cc
//
// Handlers follow Prometheus 2.42's web/api/v1/api.go and storage/remote/
// write_handler.go: parameter names, defaults, error wording and status codes.
#include "server/http_api.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"
#include "httplib.h"
#include "common/status_macros.h"
#include "query/parser.h"
#include "server/api_params.h"
#include "server/json_format.h"
#include "server/status_mapping.h"

namespace vigil::server {
namespace {

constexpr char kTextPlain[] = "text/plain; charset=utf-8";
constexpr int64_t kMaxPointsPerSeries = 11000;

absl::Status InvalidParam(absl::string_view name, const absl::Status& s) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid parameter \"", name, "\": ", s.message()));
}

// The parameter `name` as a time in ms, or `def` when absent or empty.
absl::StatusOr<int64_t> TimeParam(const HttpApi::Call& c, const char* name, int64_t def) {
  const std::string v = c.Param(name);
  if (v.empty()) return def;
  absl::StatusOr<int64_t> t = ParseApiTime(v);
  if (!t.ok()) return InvalidParam(name, t.status());
  return t;
}

absl::StatusOr<absl::Duration> TimeoutParam(const HttpApi::Call& c, absl::Duration def) {
  const std::string v = c.Param("timeout");
  if (v.empty()) return def;
  absl::StatusOr<absl::Duration> d = ParseApiDuration(v);
  if (!d.ok()) return InvalidParam("timeout", d.status());
  return d;
}

}  // namespace

std::string HttpApi::Call::Param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? "" : it->second;
}

HttpApi::HttpApi(ApiBackend deps, HttpApiOptions opts)
    : deps_(std::move(deps)), opts_(std::move(opts)) {
  CHECK(deps_.append && deps_.source && deps_.engine && deps_.metrics && deps_.ready);
  write_requests_invalid_ = deps_.metrics->GetCounter(
      "vigil_remote_write_invalid_requests_total",
      "Remote-write requests refused as bad data (400), by the decoder or storage.");
}

HttpApi::Reply HttpApi::Error(const absl::Status& s) {
  const HttpError e = ToHttpError(s);
  return Reply{e.http_status, ErrorJson(e.error_type, s.message())};
}

HttpApi::Reply HttpApi::Success(const std::string& data_json,
                                const std::vector<std::string>& warnings) {
  return Reply{200, SuccessJson(data_json, warnings)};
}

std::function<void(const httplib::Request&, httplib::Response&)> HttpApi::Instrument(
    const std::string& name, Handler h) {
  metrics::Histogram* latency = deps_.metrics->GetHistogram(
      "vigil_http_request_duration_seconds", "Latency of HTTP requests by handler.",
      metrics::DefaultLatencyBuckets(), {{"handler", name}});
  return [this, name, h, latency](const httplib::Request& req, httplib::Response& res) {
    const absl::Time start = RealClock::Get()->Now();
    Call call{req, {}};
    // Go's FormValue: form body values take precedence over the URL's.
    if (req.method == "POST" &&
        absl::StartsWith(req.get_header_value("Content-Type"),
                         "application/x-www-form-urlencoded")) {
      ParseQueryString(req.body, &call.params);
    }
    const size_t q = req.target.find('?');
    if (q != std::string::npos) {
      ParseQueryString(absl::string_view(req.target).substr(q + 1), &call.params);
    }
    Reply reply = (this->*h)(call);
    res.status = reply.status;
    if (reply.status != 204) res.set_content(std::move(reply.body), reply.content_type.c_str());
    latency->Observe(absl::ToDoubleSeconds(RealClock::Get()->Now() - start));
    deps_.metrics
        ->GetCounter("vigil_http_requests_total", "HTTP requests by handler and status code.",
                     {{"handler", name}, {"code", absl::StrCat(reply.status)}})
        ->Inc();
  };
}

void HttpApi::Register(httplib::Server* server) {
  server->set_payload_max_length(opts_.max_request_bytes);
  // httplib answers oversized bodies (413) and unknown paths (404) itself; give
  // those a body that says why.
  server->set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg;
    if (res.status == 413) {
      msg = absl::StrCat("request body exceeds the limit of ", opts_.max_request_bytes, " bytes");
    } else if (res.status == 404) {
      msg = absl::StrCat("404 page not found: ", req.path);
    } else {
      msg = absl::StrCat("could not read the request (HTTP ", res.status, ")");
      const std::string encoding = req.get_header_value("Content-Encoding");
      if (!encoding.empty() && encoding != "snappy") {
        absl::StrAppend(&msg, ": unsupported Content-Encoding \"", encoding, "\"");
      }
    }
    res.set_content(msg + "\n", kTextPlain);
  });
  struct Route {
    const char* pattern;
    const char* name;
    Handler handler;
    bool post;
  };
  const Route routes[] = {
      {"/api/v1/write", "write", &HttpApi::Write, true},
      {"/api/v1/query", "query", &HttpApi::Query, true},
      {"/api/v1/query_range", "query_range", &HttpApi::QueryRange, true},
      {"/api/v1/series", "series", &HttpApi::SeriesList, true},
      {"/api/v1/labels", "labels", &HttpApi::LabelNames, true},
      {R"(/api/v1/label/([^/]+)/values)", "label_values", &HttpApi::LabelValues, false},
      {"/api/v1/metadata", "metadata", &HttpApi::Metadata, false},
      {"/api/v1/status/buildinfo", "buildinfo", &HttpApi::BuildInfo, false},
      {"/api/v1/query_exemplars", "query_exemplars", &HttpApi::QueryExemplars, true},
      {"/-/healthy", "healthy", &HttpApi::Healthy, false},
      {"/-/ready", "ready", &HttpApi::Ready, false},
      {"/metrics", "metrics", &HttpApi::Metrics, false},
  };
  for (const Route& r : routes) {
    auto handler = Instrument(r.name, r.handler);
    // Remote-write is POST only, as in Prometheus.
    if (std::string(r.name) != "write") server->Get(r.pattern, handler);
    if (r.post) server->Post(r.pattern, handler);
  }
}

HttpApi::Reply HttpApi::Write(const Call& c) {
  // Errors here are plain text, as Prometheus' write handler sends them.
  auto bad = [this](absl::string_view msg) {
    write_requests_invalid_->Inc();
    return Reply{400, absl::StrCat(msg, "\n"), kTextPlain};
  };
  if (c.req.body.size() > opts_.max_request_bytes) {
    return Reply{413,
                 absl::StrCat("request body exceeds the limit of ", opts_.max_request_bytes,
                              " bytes\n"),
                 kTextPlain};
  }
  const std::string encoding = c.req.get_header_value("Content-Encoding");
  if (!encoding.empty() && encoding != "snappy") {
    return bad(absl::StrCat("unsupported Content-Encoding \"", encoding, "\": expected snappy"));
  }
  absl::StatusOr<ingest::DecodedWrite> decoded =
      ingest::DecodeRemoteWrite(c.req.body, opts_.decode);
  if (!decoded.ok()) return bad(decoded.status().message());
  absl::StatusOr<storage::AppendResult> result = deps_.append(decoded->series());
  if (!result.ok()) {
    if (result.status().code() == absl::StatusCode::kInvalidArgument) {
      return bad(result.status().message());
    }
    LOG(WARNING) << "remote write failed: " << result.status();
    return Reply{ToHttpError(result.status()).http_status,
                 absl::StrCat(result.status().message(), "\n"), kTextPlain};
  }
  if (result->rejected > 0) {
    // The rest of the request was applied; 400 tells the sender not to retry.
    return bad(absl::StrCat(result->rejected, " of ", decoded->num_samples(),
                            " samples rejected: ", absl::StrJoin(result->errors, "; ")));
  }
  return Reply{204, "", ""};
}

absl::StatusOr<query::SeriesSource*> HttpApi::Source(const Call& c) const {
  const std::string v = c.Param("partial_response");
  if (v.empty()) return deps_.source;
  bool partial = false;
  if (!absl::SimpleAtob(v, &partial)) {
    return InvalidParam("partial_response",
                        absl::InvalidArgumentError(absl::StrCat("not a boolean: \"", v, "\"")));
  }
  query::SeriesSource* s = deps_.source_for ? deps_.source_for(partial) : nullptr;
  return s != nullptr ? s : deps_.source;
}

HttpApi::Reply HttpApi::Query(const Call& c) {
  absl::StatusOr<int64_t> t = TimeParam(c, "time", opts_.clock->NowMillis());
  if (!t.ok()) return Error(t.status());
  absl::StatusOr<absl::Duration> timeout = TimeoutParam(c, opts_.default_query_timeout);
  if (!timeout.ok()) return Error(timeout.status());
  absl::StatusOr<query::SeriesSource*> source = Source(c);
  if (!source.ok()) return Error(source.status());
  absl::StatusOr<query::QueryResult> r =
      deps_.engine->InstantQuery(*source, c.Param("query"), *t, *timeout);
  if (!r.ok()) return Error(r.status());
  return Success(QueryDataJson(*r), r->warnings);
}

HttpApi::Reply HttpApi::QueryRange(const Call& c) {
  absl::StatusOr<int64_t> start = ParseApiTime(c.Param("start"));
  if (!start.ok()) return Error(InvalidParam("start", start.status()));
  absl::StatusOr<int64_t> end = ParseApiTime(c.Param("end"));
  if (!end.ok()) return Error(InvalidParam("end", end.status()));
  if (*end < *start) {
    return Error(InvalidParam(
        "end", absl::InvalidArgumentError("end timestamp must not be before start time")));
  }
  absl::StatusOr<absl::Duration> step = ParseApiDuration(c.Param("step"));
  if (!step.ok()) return Error(InvalidParam("step", step.status()));
  const int64_t step_ms = absl::ToInt64Milliseconds(*step);
  if (step_ms <= 0) {
    return Error(InvalidParam("step", absl::InvalidArgumentError(
                                          "zero or negative query resolution step widths are "
                                          "not accepted. Try a positive integer")));
  }
  if ((*end - *start) / step_ms > kMaxPointsPerSeries) {
    return Error(absl::InvalidArgumentError(
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
        "query resolution (?step=XX)"));
  }
  absl::StatusOr<absl::Duration> timeout = TimeoutParam(c, opts_.default_query_timeout);
  if (!timeout.ok()) return Error(timeout.status());
  absl::StatusOr<query::SeriesSource*> source = Source(c);
  if (!source.ok()) return Error(source.status());
  absl::StatusOr<query::QueryResult> r = deps_.engine->RangeQuery(
      *source, c.Param("query"), *start, *end, step_ms, *timeout);
  if (!r.ok()) return Error(r.status());
  return Success(QueryDataJson(*r), r->warnings);
}

absl::StatusOr<HttpApi::MatchQuery> HttpApi::ParseMatchQuery(const Call& c,
                                                             bool required) {
  MatchQuery q;
  ASSIGN_OR_RETURN(q.start, TimeParam(c, "start", kMinTimeMs));
  ASSIGN_OR_RETURN(q.end, TimeParam(c, "end", kMaxTimeMs));
  auto range = c.params.equal_range("match[]");
  for (auto it = range.first; it != range.second; ++it) {
    absl::StatusOr<std::vector<LabelMatcher>> m = query::ParseMetricSelector(it->second);
    if (!m.ok()) return absl::InvalidArgumentError(m.status().message());
    q.sets.push_back(*std::move(m));
  }
  if (q.sets.empty()) {
    if (required) return absl::InvalidArgumentError("no match[] parameter provided");
    q.sets.emplace_back();  // no matchers: every series
  }
  return q;
}

HttpApi::Reply HttpApi::StringUnion(const Call& c, const StringsFn& fn) {
  absl::StatusOr<MatchQuery> q = ParseMatchQuery(c, false);
  if (!q.ok()) return Error(q.status());
  std::set<std::string> all;
  for (const std::vector<LabelMatcher>& matchers : q->sets) {
    absl::StatusOr<std::vector<std::string>> r = fn(matchers, q->start, q->end);
    if (!r.ok()) return Error(r.status());
    all.insert(r->begin(), r->end());
  }
  return Success(StringListJson({all.begin(), all.end()}));
}

HttpApi::Reply HttpApi::SeriesList(const Call& c) {
  absl::StatusOr<MatchQuery> q = ParseMatchQuery(c, true);
  if (!q.ok()) return Error(q.status());
  std::set<Labels> found;
  std::vector<std::string> warnings;
  for (const std::vector<LabelMatcher>& matchers : q->sets) {
    absl::StatusOr<query::SelectResult> r =
        deps_.source->Select(query::SelectHints{q->start, q->end}, matchers);
    if (!r.ok()) return Error(r.status());
    for (Series& s : r->series) found.insert(std::move(s.labels));
    warnings.insert(warnings.end(), r->warnings.begin(), r->warnings.end());
  }
  std::string data = "[";
  for (const Labels& l : found) {
    if (data.size() > 1) data.push_back(',');
    AppendLabelsJson(&data, l);
  }
  data.push_back(']');
  return Success(data, warnings);
}

HttpApi::Reply HttpApi::LabelNames(const Call& c) {
  return StringUnion(c, [this](const std::vector<LabelMatcher>& m, int64_t mint, int64_t maxt) {
    return deps_.source->LabelNames(m, mint, maxt);
  });
}

HttpApi::Reply HttpApi::LabelValues(const Call& c) {
  const std::string name = c.req.matches.size() > 1 ? std::string(c.req.matches[1]) : "";
  if (!IsValidLabelName(name)) {
    return Error(absl::InvalidArgumentError(absl::StrCat("invalid label name: \"", name, "\"")));
  }
  return StringUnion(c, [&](const std::vector<LabelMatcher>& m, int64_t mint, int64_t maxt) {
    return deps_.source->LabelValues(name, m, mint, maxt);
  });
}

HttpApi::Reply HttpApi::Metadata(const Call&) { return Success("{}"); }

HttpApi::Reply HttpApi::BuildInfo(const Call&) {
  std::string data = "{\"version\":";
  AppendJsonString(&data, opts_.version);
  data += ",\"revision\":\"\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\","
          "\"goVersion\":\"\"}";
  return Success(data);
}

HttpApi::Reply HttpApi::QueryExemplars(const Call&) { return Success("[]"); }

HttpApi::Reply HttpApi::Healthy(const Call&) {
  return Reply{200, "Vigil is Healthy.\n", kTextPlain};
}

HttpApi::Reply HttpApi::Ready(const Call&) {
  if (!deps_.ready()) return Reply{503, "Service Unavailable\n", kTextPlain};
  return Reply{200, "Vigil is Ready.\n", kTextPlain};
}

HttpApi::Reply HttpApi::Metrics(const Call&) {
  return Reply{200, deps_.metrics->Expose(), "text/plain; version=0.0.4; charset=utf-8"};
}

}  // namespace vigil::server
