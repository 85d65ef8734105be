#include "alerting/strutil.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::alerting {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::StatusIs;

TEST(PromDurationTest, ParsesPrometheusDurations) {
  const std::pair<std::string, absl::Duration> cases[] = {
      {"0", absl::ZeroDuration()},
      {"5m", absl::Minutes(5)},
      {"1h30m", absl::Minutes(90)},
      {"100ms", absl::Milliseconds(100)},
      {"1m5s", absl::Seconds(65)},
      {"1d", absl::Hours(24)},
      {"1w", absl::Hours(24 * 7)},
      {"1y", absl::Hours(24 * 365)},
      {"2h10s20ms", absl::Hours(2) + absl::Seconds(10) + absl::Milliseconds(20)},
  };
  for (const auto& [in, want] : cases) {
    SCOPED_TRACE(in);
    ASSERT_OK_AND_ASSIGN(absl::Duration d, ParsePromDuration(in));
    EXPECT_EQ(d, want);
  }
}

TEST(PromDurationTest, RejectsMalformed) {
  for (const char* in : {"", "5", "m", "5x", "1m1h", "1s1s", "-5m", "1.5h", " 5m"}) {
    SCOPED_TRACE(in);
    EXPECT_THAT(ParsePromDuration(in),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a valid duration")));
  }
}

TEST(PromDurationTest, FormatsLikeModelDuration) {
  EXPECT_EQ(FormatPromDuration(absl::ZeroDuration()), "0s");
  EXPECT_EQ(FormatPromDuration(absl::Minutes(90)), "1h30m");
  EXPECT_EQ(FormatPromDuration(absl::Hours(24)), "1d");
  EXPECT_EQ(FormatPromDuration(absl::Milliseconds(1500)), "1s500ms");
}

TEST(QueryEscapeTest, MatchesGoURLQueryEscape) {
  EXPECT_EQ(QueryEscape("up == 0"), "up+%3D%3D+0");
  EXPECT_EQ(QueryEscape("rate(x{a=\"b\"}[5m])"), "rate%28x%7Ba%3D%22b%22%7D%5B5m%5D%29");
  EXPECT_EQ(TableLinkForExpression("up"), "/graph?g0.expr=up&g0.tab=1");
}

}  // namespace
}  // namespace vigil::alerting
