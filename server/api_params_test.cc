#include "server/api_params.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::server {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::StatusIs;

TEST(ApiParamsTest, ParsesTimes) {
  const struct {
    const char* in;
    int64_t want_ms;
  } cases[] = {
      {"1435781451.781", 1435781451781},
      {"1435781451", 1435781451000},
      {"1.5", 1500},
      {"0.0004", 0},
      {"-1.5", -1500},
      {"1e3", 1000000},
      {"2015-07-01T20:10:51.781Z", 1435781451781},
      {"2015-07-01T22:10:51+02:00", 1435781451000},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    ASSERT_OK_AND_ASSIGN(int64_t ms, ParseApiTime(c.in));
    EXPECT_EQ(ms, c.want_ms);
  }
  for (const char* bad : {"", "abc", " 1", "2015-07-01", "NaN", "Inf"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(ParseApiTime(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                            HasSubstr("to a valid timestamp")));
  }
}

TEST(ApiParamsTest, ParsesDurations) {
  const struct {
    const char* in;
    absl::Duration want;
  } cases[] = {
      {"15", absl::Seconds(15)},       {"0.5", absl::Milliseconds(500)},
      {"15s", absl::Seconds(15)},      {"1m30s", absl::Seconds(90)},
      {"15d", absl::Hours(24 * 15)},   {"12h", absl::Hours(12)},
      {"30m", absl::Minutes(30)},      {"500ms", absl::Milliseconds(500)},
      {"1y", absl::Hours(24 * 365)},   {"2w", absl::Hours(24 * 14)},
      {"1h1m1s1ms", absl::Milliseconds(3661001)},
      {"0", absl::ZeroDuration()},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    ASSERT_OK_AND_ASSIGN(absl::Duration d, ParseApiDuration(c.in));
    EXPECT_EQ(d, c.want);
  }
  for (const char* bad : {"", "1x", "m", "1s1m", "1h1h", "-5m", "1.5h"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(ParsePromDuration(bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                                 HasSubstr("to a valid duration")));
  }
  EXPECT_THAT(ParseApiDuration("1e300"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("overflows")));
}

TEST(ApiParamsTest, ParsesQueryStringsLikeGo) {
  ParamMap p;
  ParseQueryString("match[]=up{job=\"a\"}&match[]=x%3Dy&q=a+b%20c&empty&bad=%zz&t=1", &p);
  auto range = p.equal_range("match[]");
  std::vector<std::string> matches;
  for (auto it = range.first; it != range.second; ++it) matches.push_back(it->second);
  EXPECT_THAT(matches, ::testing::ElementsAre("up{job=\"a\"}", "x=y"));
  EXPECT_EQ(p.find("q")->second, "a b c");
  EXPECT_EQ(p.count("empty"), 1u);
  EXPECT_EQ(p.count("bad"), 0u);
  EXPECT_EQ(p.find("t")->second, "1");
}

}  // namespace
}  // namespace vigil::server
