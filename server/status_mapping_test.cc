#include "server/status_mapping.h"

#include "gtest/gtest.h"

namespace vigil::server {
namespace {

// Prometheus' web/api/v1 codes: bad_data 400, execution 422, timeout 503,
// canceled 499, unavailable 503, not_found 404, internal 500.
TEST(StatusMappingTest, HttpAndGrpc) {
  const struct {
    absl::Status status;
    int http;
    const char* type;
    grpc::StatusCode grpc;
  } cases[] = {
      {absl::InvalidArgumentError("x"), 400, "bad_data", grpc::INVALID_ARGUMENT},
      {absl::FailedPreconditionError("x"), 422, "execution", grpc::FAILED_PRECONDITION},
      {absl::ResourceExhaustedError("x"), 422, "execution", grpc::RESOURCE_EXHAUSTED},
      {absl::DeadlineExceededError("x"), 503, "timeout", grpc::DEADLINE_EXCEEDED},
      {absl::CancelledError("x"), 499, "canceled", grpc::CANCELLED},
      {absl::UnavailableError("x"), 503, "unavailable", grpc::UNAVAILABLE},
      {absl::NotFoundError("x"), 404, "not_found", grpc::NOT_FOUND},
      {absl::InternalError("x"), 500, "internal", grpc::INTERNAL},
      {absl::DataLossError("x"), 500, "internal", grpc::DATA_LOSS},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.status.ToString());
    const HttpError e = ToHttpError(c.status);
    EXPECT_EQ(e.http_status, c.http);
    EXPECT_EQ(e.error_type, c.type);
    const grpc::Status g = ToGrpcStatus(c.status);
    EXPECT_EQ(g.error_code(), c.grpc);
    EXPECT_EQ(g.error_message(), "x");
  }
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace vigil::server
