// server/status_mapping.cc
#include "server/status_mapping.h"

#include "glog/logging.h"

namespace vigil::server {

HttpError ToHttpError(const absl::Status& s) {
  DCHECK(!s.ok());
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return {400, "bad_data"};
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kResourceExhausted:
      return {422, "execution"};
    case absl::StatusCode::kDeadlineExceeded:
      return {503, "timeout"};
    case absl::StatusCode::kCancelled:
      return {499, "canceled"};
    case absl::StatusCode::kUnavailable:
      return {503, "unavailable"};
    case absl::StatusCode::kNotFound:
      return {404, "not_found"};
    default:
      return {500, "internal"};
  }
}

}  // namespace vigil::server
