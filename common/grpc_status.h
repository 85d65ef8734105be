// common/grpc_status.h
//
// absl::Status <-> grpc::Status. The codes are the same numbers in both
// (absl::StatusCode mirrors grpc::StatusCode value for value) and the message
// is kept; payloads and grpc error details are dropped. Every gRPC service
// handler and client of Vigil converts through these two functions.
#ifndef VIGIL_COMMON_GRPC_STATUS_H_
#define VIGIL_COMMON_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace vigil {

// Same code, same message; OK stays OK.
grpc::Status ToGrpcStatus(const absl::Status& s);
// Same code, same message; OK stays OK.
absl::Status FromGrpcStatus(const grpc::Status& s);

}  // namespace vigil

#endif  // VIGIL_COMMON_GRPC_STATUS_H_
