#include "tools/text_format.h"

#include <cmath>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::tools {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::StatusIs;

TEST(ParseExpositionLineTest, SampleWithLabelsAndTimestamp) {
  ASSERT_OK_AND_ASSIGN(auto s, ParseExpositionLine(
                                   R"(http_requests_total{method="post",code="200"} 1027 1395066363000)"));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->labels, (Labels{{"__name__", "http_requests_total"}, {"code", "200"}, {"method", "post"}}));
  EXPECT_EQ(s->value, 1027);
  EXPECT_EQ(s->timestamp_ms, 1395066363000);
}

TEST(ParseExpositionLineTest, TimestampIsOptional) {
  ASSERT_OK_AND_ASSIGN(auto s, ParseExpositionLine("up 1"));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->labels, (Labels{{"__name__", "up"}}));
  EXPECT_FALSE(s->timestamp_ms.has_value());
}

TEST(ParseExpositionLineTest, EscapesSpacesAndTrailingComma) {
  ASSERT_OK_AND_ASSIGN(auto s, ParseExpositionLine(R"(  msg { text = "a \"q\" \\ \n" , } -1.5e3  )"));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->labels.Get("text"), "a \"q\" \\ \n");
  EXPECT_EQ(s->value, -1500);
}

TEST(ParseExpositionLineTest, NameInsideBraces) {
  ASSERT_OK_AND_ASSIGN(auto s, ParseExpositionLine(R"({__name__="up",job="x"} 0)"));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->labels.MetricName(), "up");
}

TEST(ParseExpositionLineTest, SpecialValues) {
  ASSERT_OK_AND_ASSIGN(auto nan, ParseExpositionLine("a NaN"));
  EXPECT_TRUE(std::isnan(nan->value));
  ASSERT_OK_AND_ASSIGN(auto inf, ParseExpositionLine("a +Inf"));
  EXPECT_EQ(inf->value, HUGE_VAL);
  ASSERT_OK_AND_ASSIGN(auto ninf, ParseExpositionLine("a -Inf 5"));
  EXPECT_EQ(ninf->value, -HUGE_VAL);
  EXPECT_EQ(ninf->timestamp_ms, 5);
}

TEST(ParseExpositionLineTest, SkipsCommentsAndBlankLines) {
  for (const char* line : {"", "   ", "# HELP up Whether up.", "# TYPE up gauge", "#"}) {
    SCOPED_TRACE(line);
    ASSERT_OK_AND_ASSIGN(auto s, ParseExpositionLine(line));
    EXPECT_FALSE(s.has_value());
  }
}

TEST(ParseExpositionLineTest, RejectsMalformedLines) {
  struct Case {
    const char* line;
    const char* error;
  } cases[] = {
      {"up", "expected a value"},
      {"up{job=\"a\"}", "expected a value"},
      {"up abc", "invalid value"},
      {"up 1 12.5", "invalid timestamp"},
      {"up 1 2 3", "unexpected text"},
      {"9up 1", "expected a name"},
      {"up{job=a} 1", "expected a quoted value"},
      {"up{job=\"a} 1", "unterminated string"},
      {"up{job=\"a\" 1", "expected ',' or '}'"},
      {"up{a=\"1\",a=\"2\"} 1", "duplicate label name \"a\""},
      {"up{__name__=\"x\"} 1", "duplicate label name \"__name__\""},
      {"up{a:b=\"1\"} 1", "invalid label name \"a:b\""},
      {"{job=\"a\"} 1", "missing metric name"},
      {"up{job=\"\\q\"} 1", "unknown escape"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    EXPECT_THAT(ParseExpositionLine(c.line),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error)));
  }
}

TEST(ParseSelectorTest, NameAndMatchers) {
  ASSERT_OK_AND_ASSIGN(auto m, ParseSelector(R"(up{a="b", c=~'d.*', e!=`f\`, g!~"h"})"));
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].ToString(), R"(__name__="up")");
  EXPECT_EQ(m[1].type(), MatchType::kEqual);
  EXPECT_EQ(m[2].type(), MatchType::kRegexMatch);
  EXPECT_EQ(m[2].value(), "d.*");
  EXPECT_EQ(m[3].type(), MatchType::kNotEqual);
  EXPECT_EQ(m[3].value(), "f\\");
  EXPECT_EQ(m[4].type(), MatchType::kRegexNoMatch);
}

TEST(ParseSelectorTest, BareNameAndBracesOnly) {
  ASSERT_OK_AND_ASSIGN(auto bare, ParseSelector("node_load1"));
  ASSERT_EQ(bare.size(), 1u);
  EXPECT_TRUE(bare[0].Matches(Labels{{"__name__", "node_load1"}}));
  ASSERT_OK_AND_ASSIGN(auto braces, ParseSelector(R"({job="x"})"));
  ASSERT_EQ(braces.size(), 1u);
  EXPECT_EQ(braces[0].name(), "job");
}

TEST(ParseSelectorTest, RejectsBadSelectors) {
  struct Case {
    const char* selector;
    const char* error;
  } cases[] = {
      {"", "expected a name"},
      {"{}", "at least one matcher"},
      {R"({a=~".*"})", "at least one matcher"},
      {R"(up{a=="b"})", "expected a quoted value"},
      {R"(up{a~"b"})", "expected one of"},
      {R"(up{a=~"("})", "column"},
      {R"(up[5m])", "unexpected text"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.selector);
    EXPECT_THAT(ParseSelector(c.selector),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error)));
  }
}

TEST(ParseTimeArgTest, Forms) {
  const int64_t now = 1700000000000;
  struct Case {
    const char* text;
    int64_t want;
  } cases[] = {
      {"now", now},
      {"1234", 1234},
      {"now-1h", now - 3600000},
      {"-90s", now - 90000},
      {"now+1m", now + 60000},
      {"2023-11-14T22:13:20Z", 1700000000000},
      {"2023-11-14T22:13:20.5+00:00", 1700000000500},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    ASSERT_OK_AND_ASSIGN(int64_t got, ParseTimeArg(c.text, now));
    EXPECT_EQ(got, c.want);
  }
  for (const char* bad : {"", "yesterday", "now-", "now*2", "1h"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(ParseTimeArg(bad, now), StatusIs(absl::StatusCode::kInvalidArgument));
  }
}

}  // namespace
}  // namespace vigil::tools
