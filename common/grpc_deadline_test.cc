#include "common/grpc_deadline.h"

#include "grpcpp/client_context.h"
#include "gtest/gtest.h"

namespace vigil {
namespace {

absl::Duration FromNow(gpr_timespec t) {
  const gpr_timespec left = gpr_time_sub(t, gpr_now(GPR_CLOCK_MONOTONIC));
  return absl::Seconds(left.tv_sec) + absl::Nanoseconds(left.tv_nsec);
}

TEST(GrpcDeadlineTest, IsOnTheMonotonicClock) {
  const gpr_timespec d = GrpcDeadline(absl::Seconds(5));
  EXPECT_EQ(d.clock_type, GPR_CLOCK_MONOTONIC);
  EXPECT_GT(FromNow(d), absl::Seconds(4));
  EXPECT_LE(FromNow(d), absl::Seconds(5));
  EXPECT_LT(FromNow(GrpcDeadline(absl::Seconds(-1))), absl::ZeroDuration());
}

TEST(GrpcDeadlineTest, InfiniteIsNoDeadline) {
  const gpr_timespec d = GrpcDeadline(absl::InfiniteDuration());
  EXPECT_EQ(gpr_time_cmp(d, gpr_inf_future(GPR_CLOCK_MONOTONIC)), 0);
}

TEST(GrpcDeadlineTest, ClientContextKeepsIt) {
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadline(absl::Seconds(30)));
  const absl::Duration left =
      absl::FromChrono(ctx.deadline()) - absl::FromChrono(std::chrono::system_clock::now());
  // ClientContext reports it on the wall clock: converted, so within a margin.
  EXPECT_GT(left, absl::Seconds(29));
  EXPECT_LT(left, absl::Seconds(31));
}

}  // namespace
}  // namespace vigil
