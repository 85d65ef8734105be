// server/grpc_services.cc
#include "server/grpc_services.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_deadline.h"
#include "common/matcher.h"
#include "server/status_mapping.h"

namespace vigil::server {
namespace {

// The request's source: with partial_response set, ApiBackend::source_for of
// it (as the HTTP API's parameter), else (or if that has none) the default.
template <typename Request>
query::SeriesSource* SourceOf(const ApiBackend& backend, const Request& req) {
  if (!req.has_partial_response() || !backend.source_for) return backend.source;
  query::SeriesSource* s = backend.source_for(req.partial_response());
  return s != nullptr ? s : backend.source;
}

void ToProto(const Series& s, vigil::v1::TimeSeries* out) {
  for (const Label& l : s.labels) {
    vigil::v1::Label* pl = out->add_labels();
    pl->set_name(l.name);
    pl->set_value(l.value);
  }
  for (const Sample& sample : s.samples) {
    vigil::v1::Sample* ps = out->add_samples();
    ps->set_timestamp_ms(sample.t);
    ps->set_value(sample.v);
  }
}

void ToProto(const query::QueryResult& r, vigil::v1::QueryResponse* out) {
  switch (r.type) {
    case query::ValueType::kScalar:
      out->set_result_type(vigil::v1::QueryResponse::SCALAR);
      out->mutable_scalar()->set_timestamp_ms(r.t);
      out->mutable_scalar()->set_value(r.scalar);
      break;
    case query::ValueType::kString:
      out->set_result_type(vigil::v1::QueryResponse::STRING);
      out->mutable_scalar()->set_timestamp_ms(r.t);
      out->set_string_value(r.str);
      break;
    case query::ValueType::kVector:
    case query::ValueType::kMatrix:
      out->set_result_type(r.type == query::ValueType::kVector ? vigil::v1::QueryResponse::VECTOR
                                                               : vigil::v1::QueryResponse::MATRIX);
      for (const Series& s : r.series) ToProto(s, out->add_series());
      break;
  }
  for (const std::string& w : r.warnings) out->add_warnings(w);
}

absl::StatusOr<std::vector<LabelMatcher>> FromProto(
    const google::protobuf::RepeatedPtrField<vigil::v1::LabelMatcher>& matchers) {
  std::vector<LabelMatcher> out;
  for (const vigil::v1::LabelMatcher& m : matchers) {
    MatchType type;
    switch (m.type()) {
      case vigil::v1::EQUAL: type = MatchType::kEqual; break;
      case vigil::v1::NOT_EQUAL: type = MatchType::kNotEqual; break;
      case vigil::v1::REGEX_MATCH: type = MatchType::kRegexMatch; break;
      case vigil::v1::REGEX_NO_MATCH: type = MatchType::kRegexNoMatch; break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("unknown match type ", m.type()));
    }
    absl::StatusOr<LabelMatcher> lm = LabelMatcher::Create(type, m.name(), m.value());
    if (!lm.ok()) return lm.status();
    out.push_back(*std::move(lm));
  }
  return out;
}

}  // namespace

grpc::Status IngestService::Write(grpc::ServerContext*, const vigil::v1::WriteRequest* req,
                                  vigil::v1::WriteResponse* resp) {
  std::vector<storage::SeriesAppend> batch(req->series_size());
  for (int i = 0; i < req->series_size(); ++i) {
    const vigil::v1::TimeSeries& ts = req->series(i);
    storage::SeriesAppend& s = batch[i];
    s.labels.reserve(ts.labels_size());
    for (const vigil::v1::Label& l : ts.labels()) s.labels.push_back({l.name(), l.value()});
    s.samples.reserve(ts.samples_size());
    for (const vigil::v1::Sample& p : ts.samples()) {
      s.samples.push_back({p.timestamp_ms(), p.value()});
    }
  }
  absl::StatusOr<storage::AppendResult> r = backend_.append(batch);
  if (!r.ok()) return ToGrpcStatus(r.status());
  resp->set_samples_appended(r->appended);
  resp->set_samples_duplicate(r->duplicates);
  resp->set_samples_rejected(r->rejected);
  for (const std::string& e : r->errors) resp->add_errors(e);
  return grpc::Status::OK;
}

absl::Duration QueryService::Timeout(grpc::ServerContext* ctx, int64_t timeout_ms) const {
  absl::Duration t = timeout_ms > 0 ? absl::Milliseconds(timeout_ms) : default_timeout_;
  // On gRPC's monotonic clock: a wall-clock step must not shorten the query.
  const absl::Duration left = GrpcTimeLeft(*ctx);
  if (left != absl::InfiniteDuration()) t = std::min(t, std::max(absl::ZeroDuration(), left));
  return t;
}

grpc::Status QueryService::Select(grpc::ServerContext*, const vigil::v1::SelectRequest* req,
                                  vigil::v1::SelectResponse* resp) {
  absl::StatusOr<std::vector<LabelMatcher>> matchers = FromProto(req->matchers());
  if (!matchers.ok()) return ToGrpcStatus(matchers.status());
  absl::StatusOr<query::SelectResult> r =
      SourceOf(backend_, *req)->Select(query::SelectHints{req->start_ms(), req->end_ms()},
                                       *matchers);
  if (!r.ok()) return ToGrpcStatus(r.status());
  for (const Series& s : r->series) ToProto(s, resp->add_series());
  for (const std::string& w : r->warnings) resp->add_warnings(w);
  return grpc::Status::OK;
}

grpc::Status QueryService::InstantQuery(grpc::ServerContext* ctx,
                                        const vigil::v1::InstantQueryRequest* req,
                                        vigil::v1::QueryResponse* resp) {
  absl::StatusOr<query::QueryResult> r = backend_.engine->InstantQuery(
      SourceOf(backend_, *req), req->expr(), req->time_ms(), Timeout(ctx, req->timeout_ms()));
  if (!r.ok()) return ToGrpcStatus(r.status());
  ToProto(*r, resp);
  return grpc::Status::OK;
}

grpc::Status QueryService::RangeQuery(grpc::ServerContext* ctx,
                                      const vigil::v1::RangeQueryRequest* req,
                                      vigil::v1::QueryResponse* resp) {
  if (req->step_ms() <= 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "step_ms must be positive");
  }
  if (req->end_ms() < req->start_ms()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "end_ms must not be before start_ms");
  }
  absl::StatusOr<query::QueryResult> r =
      backend_.engine->RangeQuery(SourceOf(backend_, *req), req->expr(), req->start_ms(),
                                  req->end_ms(), req->step_ms(), Timeout(ctx, req->timeout_ms()));
  if (!r.ok()) return ToGrpcStatus(r.status());
  ToProto(*r, resp);
  return grpc::Status::OK;
}

grpc::Status AdminService::Status(grpc::ServerContext*, const vigil::v1::StatusRequest*,
                                  vigil::v1::StatusResponse* resp) {
  *resp = status_();
  return grpc::Status::OK;
}

}  // namespace vigil::server
