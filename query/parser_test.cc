#include "query/parser.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::query {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::StatusIs;

TEST(ParserTest, VectorSelectorWithMatchers) {
  auto e = ParseExpr(R"(foo{a="b", c!="d", e=~"f.*", g!~"h",})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->kind, ExprKind::kVectorSelector);
  ASSERT_EQ((*e)->matchers.size(), 5u);
  EXPECT_EQ((*e)->matchers[4].name(), "__name__");
  EXPECT_EQ((*e)->matchers[2].type(), MatchType::kRegexMatch);
}

TEST(ParserTest, RangeOffsetAndAt) {
  auto e = ParseExpr("foo[1h30m] offset -5m @ 100.5");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->kind, ExprKind::kMatrixSelector);
  EXPECT_EQ((*e)->range_ms, 5'400'000);
  EXPECT_EQ((*e)->args[0]->offset_ms, -300'000);
  EXPECT_EQ((*e)->args[0]->at_ms, 100'500);
}

TEST(ParserTest, NumberForms) {
  struct Case {
    const char* in;
    double want;
  } cases[] = {{"0x1F", 31}, {"1e3", 1000}, {"-Inf", -INFINITY}, {".5", 0.5}, {"2.", 2}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    auto e = ParseExpr(c.in);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ((*e)->number, c.want);
  }
}

TEST(ParserTest, Errors) {
  EXPECT_THAT(ParseExpr("foo{"), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("1:5: parse error: unexpected end of input")));
  EXPECT_THAT(ParseExpr(R"({a=""})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("vector selector must contain at least one non-empty matcher")));
}

}  // namespace
}  // namespace vigil::query
