// common/testing/status_matchers.h
//
// gMock matchers for absl::Status / absl::StatusOr<T>, which Debian's Abseil lacks.
//   EXPECT_THAT(s, IsOk());
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("label")));
//   ASSERT_OK_AND_ASSIGN(auto v, MakeThing());
#ifndef VIGIL_COMMON_TESTING_STATUS_MATCHERS_H_
#define VIGIL_COMMON_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::vigil::testing::GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = ::vigil::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has code " + absl::StatusCodeToString(code)) {
  const absl::Status& s = ::vigil::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()),
                                       result_listener);
}

}  // namespace vigil::testing

#define VIGIL_TESTING_CONCAT_INNER_(a, b) a##b
#define VIGIL_TESTING_CONCAT_(a, b) VIGIL_TESTING_CONCAT_INNER_(a, b)

#define ASSERT_OK(expr) ASSERT_THAT((expr), ::vigil::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::vigil::testing::IsOk())

#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                         \
  auto VIGIL_TESTING_CONCAT_(vigil_statusor_, __LINE__) = (rexpr);               \
  ASSERT_TRUE(VIGIL_TESTING_CONCAT_(vigil_statusor_, __LINE__).ok())             \
      << VIGIL_TESTING_CONCAT_(vigil_statusor_, __LINE__).status();              \
  lhs = std::move(VIGIL_TESTING_CONCAT_(vigil_statusor_, __LINE__)).value()

#endif  // VIGIL_COMMON_TESTING_STATUS_MATCHERS_H_
