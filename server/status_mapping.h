// server/status_mapping.h
//
// The one place where absl::Status codes become HTTP statuses with Prometheus'
// errorType strings, and gRPC statuses. Every handler converts through here.
#ifndef VIGIL_SERVER_STATUS_MAPPING_H_
#define VIGIL_SERVER_STATUS_MAPPING_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/grpc_status.h"
#include "grpcpp/support/status.h"

namespace vigil::server {

struct HttpError {
  int http_status;
  // Prometheus' errorType: bad_data, execution, timeout, canceled, unavailable,
  // not_found, internal.
  absl::string_view error_type;
};

// kInvalidArgument/kOutOfRange -> 400 bad_data; kFailedPrecondition and
// kResourceExhausted -> 422 execution (evaluation errors, query limits);
// kDeadlineExceeded -> 503 timeout; kCancelled -> 499 canceled; kUnavailable ->
// 503 unavailable; kNotFound -> 404 not_found; anything else -> 500 internal.
// `s` must not be OK.
HttpError ToHttpError(const absl::Status& s);

// Same code, same message (common/grpc_status.h, shared with the cluster's services).
using ::vigil::ToGrpcStatus;

}  // namespace vigil::server

#endif  // VIGIL_SERVER_STATUS_MAPPING_H_
