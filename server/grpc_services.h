// server/grpc_services.h
//
// The vigil.v1 gRPC services of one node (proto/vigil/v1/vigil.proto): Ingest,
// Query and Admin, over the same ApiBackend as the HTTP API, so both give the
// same answers. Errors convert through ToGrpcStatus.
//
// Thread-safe: gRPC calls the methods from its threads concurrently.
#ifndef VIGIL_SERVER_GRPC_SERVICES_H_
#define VIGIL_SERVER_GRPC_SERVICES_H_

#include <functional>

#include "absl/time/time.h"
#include "common/clock.h"
#include "proto/vigil/v1/vigil.grpc.pb.h"
#include "server/api_backend.h"

namespace vigil::server {

class IngestService final : public vigil::v1::Ingest::Service {
 public:
  explicit IngestService(ApiBackend backend) : backend_(std::move(backend)) {}
  // INVALID_ARGUMENT (nothing applied) for invalid labels; samples refused one by
  // one are counted in the response while the rest are stored.
  grpc::Status Write(grpc::ServerContext* ctx, const vigil::v1::WriteRequest* req,
                     vigil::v1::WriteResponse* resp) override;

 private:
  const ApiBackend backend_;
};

class QueryService final : public vigil::v1::Query::Service {
 public:
  QueryService(ApiBackend backend, absl::Duration default_timeout, Clock* clock)
      : backend_(std::move(backend)), default_timeout_(default_timeout), clock_(clock) {}
  grpc::Status Select(grpc::ServerContext* ctx, const vigil::v1::SelectRequest* req,
                      vigil::v1::SelectResponse* resp) override;
  grpc::Status InstantQuery(grpc::ServerContext* ctx, const vigil::v1::InstantQueryRequest* req,
                            vigil::v1::QueryResponse* resp) override;
  grpc::Status RangeQuery(grpc::ServerContext* ctx, const vigil::v1::RangeQueryRequest* req,
                          vigil::v1::QueryResponse* resp) override;

 private:
  // The request's timeout_ms (or the default), capped by the client's deadline.
  absl::Duration Timeout(grpc::ServerContext* ctx, int64_t timeout_ms) const;

  const ApiBackend backend_;
  const absl::Duration default_timeout_;
  Clock* const clock_;
};

class AdminService final : public vigil::v1::Admin::Service {
 public:
  using StatusFn = std::function<vigil::v1::StatusResponse()>;
  explicit AdminService(StatusFn status) : status_(std::move(status)) {}
  grpc::Status Status(grpc::ServerContext* ctx, const vigil::v1::StatusRequest* req,
                      vigil::v1::StatusResponse* resp) override;

 private:
  const StatusFn status_;
};

}  // namespace vigil::server

#endif  // VIGIL_SERVER_GRPC_SERVICES_H_
