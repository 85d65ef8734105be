// common/grpc_deadline.h
//
// gRPC deadlines on the monotonic clock. A deadline built from the wall clock
// (absl::Now() + d, or system_clock::now() + d) moves when the process' wall
// clock steps; gRPC keeps its timers on GPR_CLOCK_MONOTONIC, and these talk to it
// in that clock. Use GrpcDeadline for ClientContext::set_deadline and
// Server::Shutdown, GrpcTimeLeft for a server call's remaining time (never
// ctx->deadline() - absl::Now()).
#ifndef VIGIL_COMMON_GRPC_DEADLINE_H_
#define VIGIL_COMMON_GRPC_DEADLINE_H_

#include "absl/time/time.h"
#include "grpc/support/time.h"
#include "grpcpp/server_context.h"

namespace vigil {

// `timeout` from now on GPR_CLOCK_MONOTONIC; absl::InfiniteDuration(): no deadline.
// A negative timeout is a deadline already passed.
gpr_timespec GrpcDeadline(absl::Duration timeout);

// How long until `ctx`'s deadline (negative once it passed); InfiniteDuration
// for a call without one.
absl::Duration GrpcTimeLeft(const grpc::ServerContextBase& ctx);

}  // namespace vigil

#endif  // VIGIL_COMMON_GRPC_DEADLINE_H_
