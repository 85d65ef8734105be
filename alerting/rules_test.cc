#include "alerting/rules.h"

#include "absl/strings/match.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::alerting {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::vigil::testing::StatusIs;

// Stands in for the PromQL parser: rejects expressions ending in a binary operator.
absl::Status FakeValidate(absl::string_view expr) {
  if (absl::EndsWith(expr, "==")) {
    return absl::InvalidArgumentError("1:5: parse error: unexpected end of input");
  }
  return absl::OkStatus();
}

std::string TestdataPath(absl::string_view name) {
  return std::string(ALERTING_TESTDATA_DIR) + "/" + std::string(name);
}

TEST(RulesTest, LoadsSampleFile) {
  ASSERT_OK_AND_ASSIGN(RuleSet set, LoadRuleFiles({TestdataPath("rules.yml")}, FakeValidate));
  ASSERT_EQ(set.groups.size(), 2);
  const RuleGroup& node = set.groups[0];
  EXPECT_EQ(node.name, "node");
  EXPECT_EQ(node.file, TestdataPath("rules.yml"));
  EXPECT_EQ(node.Key(), TestdataPath("rules.yml") + ";node");
  EXPECT_EQ(node.interval, absl::Seconds(30));
  EXPECT_EQ(node.limit, 100);
  ASSERT_EQ(node.rules.size(), 3);

  const Rule& rec = node.rules[0];
  EXPECT_FALSE(rec.is_alerting());
  EXPECT_EQ(rec.record, "instance:node_cpu:rate5m");
  EXPECT_EQ(rec.labels, (StringPairs{{"team", "infra"}}));
  EXPECT_EQ(rec.line, 7);

  const Rule& down = node.rules[1];
  EXPECT_TRUE(down.is_alerting());
  EXPECT_EQ(down.name(), "InstanceDown");
  EXPECT_EQ(down.expr, "up == 0");
  EXPECT_EQ(down.for_duration, absl::Minutes(5));
  EXPECT_EQ(down.keep_firing_for, absl::Minutes(2));
  EXPECT_EQ(down.labels, (StringPairs{{"instance_short", "{{ $labels.instance | stripPort }}"},
                                      {"severity", "page"}}));
  EXPECT_EQ(down.annotations.size(), 2);
  EXPECT_EQ(down.annotations[1].first, "summary");

  const RuleGroup& storage = set.groups[1];
  EXPECT_EQ(storage.interval, absl::ZeroDuration());
  EXPECT_EQ(storage.limit, 0);
  EXPECT_EQ(storage.rules[0].for_duration, absl::ZeroDuration());
}

TEST(RulesTest, ReportsEveryProblemWithLineNumbers) {
  auto set = LoadRuleFiles({TestdataPath("bad_rules.yml")}, FakeValidate);
  ASSERT_THAT(set, StatusIs(absl::StatusCode::kInvalidArgument));
  std::string msg(set.status().message());
  std::string f = TestdataPath("bad_rules.yml");
  EXPECT_THAT(msg, HasSubstr(f + ":6: groupname: \"dup\" is repeated in the same file"));
  EXPECT_THAT(msg, HasSubstr(f + ":9: group \"dup\", rule 1, \"B\": only one of 'record' and "
                                 "'alert' must be set"));
  EXPECT_THAT(msg, HasSubstr("rule 2, \"\": one of 'record' or 'alert' must be set"));
  EXPECT_THAT(msg, HasSubstr(f + ":13: group \"dup\", rule 3, \"C\": could not parse expression: "
                                 "1:5: parse error: unexpected end of input"));
  EXPECT_THAT(msg, HasSubstr(f + ":14: not a valid duration string: \"5x\""));
  EXPECT_THAT(msg, HasSubstr("invalid label name: bad-name"));
  EXPECT_THAT(msg, HasSubstr(f + ":18: group \"dup\", rule 3, \"C\": annotation summary: template: "
                                 "__alert_C:1: function \"humanise\" not defined"));
  EXPECT_THAT(msg, HasSubstr("invalid recording rule name: not a metric"));
  EXPECT_THAT(msg, HasSubstr("invalid field 'annotations' in recording rule"));
}

TEST(RulesTest, RejectsBadFiles) {
  const std::pair<std::string, std::string> cases[] = {
      {"groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up\n      oops: [\n",
       "x.yml:6: yaml:"},
      {"groups:\n  - name: a\n    rulez: []\n", "x.yml:3: field rulez not found in type rulefmt.RuleGroup"},
      {"groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up\n        fro: 5m\n",
       "x.yml:6: field fro not found in type rulefmt.RuleNode"},
      {"groups:\n  - rules: []\n", "x.yml:2: Groupname must not be empty"},
      {"groups:\n  - name: a\n    interval: 1x\n", "x.yml:3: not a valid duration string"},
      {"groups:\n  - name: a\n    limit: many\n", "x.yml:3: cannot unmarshal !!str `many` into int"},
      {"groups:\n  - name: a\n    rules:\n      - alert: X\n", "field 'expr' must be set in rule"},
      {"groups:\n  - name: a\n    rules:\n      - record: r\n        expr: up\n        for: 1m\n",
       "invalid field 'for' in recording rule"},
      {"groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up\n        labels:\n"
       "          __name__: x\n",
       "invalid label name: __name__"},
      {"groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up\n        labels:\n"
       "          a: '{{ if }}'\n",
       "label a: template: __alert_X:1: missing value for command"},
      {"- just a list\n", "x.yml:1: a rule file must be a map"},
  };
  for (const auto& [content, want] : cases) {
    SCOPED_TRACE(content);
    EXPECT_THAT(ParseRuleFile("x.yml", content, FakeValidate),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(want)));
  }
}

TEST(RulesTest, EmptyFileHasNoGroups) {
  ASSERT_OK_AND_ASSIGN(auto groups, ParseRuleFile("e.yml", "", FakeValidate));
  EXPECT_TRUE(groups.empty());
  ASSERT_OK_AND_ASSIGN(groups, ParseRuleFile("e.yml", "groups: []\n", FakeValidate));
  EXPECT_TRUE(groups.empty());
}

TEST(RulesTest, SameGroupNameInTwoFilesIsAllowed) {
  std::string content = "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up\n";
  ASSERT_OK_AND_ASSIGN(RuleSet set, ParseRuleFiles({{"1.yml", content}, {"2.yml", content}}, nullptr));
  ASSERT_EQ(set.groups.size(), 2);
  EXPECT_NE(set.groups[0].Key(), set.groups[1].Key());
}

TEST(RulesTest, ProblemsInOneFileRejectTheWholeSet) {
  std::string good = "groups:\n  - name: a\n    rules:\n      - alert: X\n        expr: up\n";
  std::string bad = "groups:\n  - name: b\n    rules:\n      - alert: Y\n        expr: up ==\n";
  auto set = ParseRuleFiles({{"good.yml", good}, {"bad.yml", bad}}, FakeValidate);
  EXPECT_THAT(set, StatusIs(absl::StatusCode::kInvalidArgument,
                            AllOf(HasSubstr("bad.yml:5:"), Not(HasSubstr("good.yml")))));
}

TEST(RulesTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadRuleFiles({TestdataPath("nope.yml")}, nullptr),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(RulesTest, SerializationRoundTripsAndIsDeterministic) {
  ASSERT_OK_AND_ASSIGN(RuleSet set, LoadRuleFiles({TestdataPath("rules.yml")}, FakeValidate));
  std::string bytes = SerializeRuleSet(set);
  ASSERT_OK_AND_ASSIGN(RuleSet back, DeserializeRuleSet(bytes));
  EXPECT_EQ(back, set);
  EXPECT_EQ(SerializeRuleSet(back), bytes);
  ASSERT_OK_AND_ASSIGN(RuleSet again, LoadRuleFiles({TestdataPath("rules.yml")}, FakeValidate));
  EXPECT_EQ(SerializeRuleSet(again), bytes);
  EXPECT_THAT(DeserializeRuleSet("\xff\xff\xff"), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace vigil::alerting
