#include "common/matcher.h"

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace vigil {
namespace {

using ::vigil::testing::StatusIs;

TEST(LabelMatcherTest, Semantics) {
  struct Case {
    MatchType type;
    const char* pattern;
    const char* value;
    bool want;
  };
  const Case cases[] = {
      {MatchType::kEqual, "a", "a", true},
      {MatchType::kEqual, "a", "b", false},
      {MatchType::kEqual, "", "", true},
      {MatchType::kNotEqual, "a", "b", true},
      {MatchType::kNotEqual, "", "", false},
      {MatchType::kRegexMatch, "a.*", "abc", true},
      {MatchType::kRegexMatch, "b", "abc", false},  // fully anchored
      {MatchType::kRegexMatch, ".*", "", true},
      {MatchType::kRegexMatch, "a|b", "b", true},
      {MatchType::kRegexMatch, "a.b", "a\nb", true},  // (?s)
      {MatchType::kRegexNoMatch, "a.*", "abc", false},
      {MatchType::kRegexNoMatch, "a", "", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.pattern) + " vs " + c.value);
    auto m = LabelMatcher::Create(c.type, "l", c.pattern);
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->Matches(c.value), c.want);
  }
}

TEST(LabelMatcherTest, AbsentLabelMatchesEmpty) {
  Labels l({{"__name__", "up"}});
  EXPECT_TRUE(LabelMatcher::Equal("job", "").Matches(l));
  EXPECT_FALSE(LabelMatcher::Equal("job", "x").Matches(l));
}

TEST(LabelMatcherTest, BadRegexIsInvalidArgument) {
  EXPECT_THAT(LabelMatcher::Create(MatchType::kRegexMatch, "l", "a("),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(LabelMatcherTest, SetMatches) {
  auto m = LabelMatcher::Create(MatchType::kRegexMatch, "l", "foo|bar");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->set_matches(), (std::vector<std::string>{"foo", "bar"}));
  auto r = LabelMatcher::Create(MatchType::kRegexMatch, "l", "foo.*");
  EXPECT_TRUE(r->set_matches().empty());
  EXPECT_EQ(r->ToString(), "l=~\"foo.*\"");
}

}  // namespace
}  // namespace vigil
