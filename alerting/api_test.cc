#include "alerting/api.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::alerting {
namespace {

TEST(APIFormatTest, GoTimeAndFloatFormats) {
  EXPECT_EQ(GoTimeJSON(absl::InfinitePast()), "0001-01-01T00:00:00Z");
  EXPECT_EQ(GoTimeJSON(absl::FromUnixSeconds(1'700'000'000)), "2023-11-14T22:13:20Z");
  EXPECT_EQ(GoTimeJSON(absl::FromUnixNanos(1'700'000'000'120'000'000)),
            "2023-11-14T22:13:20.12Z");
  EXPECT_EQ(FormatFloatE(1), "1e+00");
  EXPECT_EQ(FormatFloatE(0.97), "9.7e-01");
  EXPECT_EQ(FormatFloatE(1234567), "1.234567e+06");
  EXPECT_EQ(FormatFloatE(0), "0e+00");
  EXPECT_EQ(FormatFloatE(std::nan("")), "NaN");
  EXPECT_EQ(FormatFloatE(-INFINITY), "-Inf");
}

class Querier : public RuleQuerier {
 public:
  absl::StatusOr<std::vector<Series>> Query(absl::string_view expr, absl::Time) override {
    if (expr == "broken") return absl::UnavailableError("no data");
    if (expr == "sum(up)") return std::vector<Series>{{Labels(), {{0, 2}}}};
    return result;
  }
  std::vector<Series> result;
};

TEST(APITest, AlertsAndRulesLikePrometheus) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  FakeClock clock(start);
  Querier q;
  q.result = {{Labels{{"instance", "h1"}}, {{0, 0}}}, {Labels{{"instance", "h2"}}, {{0, 0}}}};
  RuleManager m(&clock, &q, nullptr, nullptr, {});
  RuleGroup g;
  g.name = "node";
  g.file = "rules.yml";
  g.interval = absl::Seconds(30);
  Rule rec;
  rec.record = "up:sum";
  rec.expr = "sum(up)";
  Rule down;
  down.alert = "InstanceDown";
  down.expr = "up == 0";
  down.for_duration = absl::Minutes(1);
  down.labels = {{"severity", "page"}};
  down.annotations = {{"summary", "{{ $labels.instance }} down"}};
  Rule broken;
  broken.alert = "Broken";
  broken.expr = "broken";
  g.rules = {rec, down, broken};
  m.SetRules(RuleSet{{g}});

  EXPECT_EQ(AlertsAPIData(m), nlohmann::json::parse(R"({"alerts":[]})"));
  absl::Time ts = m.scheduler().NextDue();
  clock.Set(ts);
  m.RunDue();
  clock.Set(ts + absl::Minutes(1));
  m.RunDue();
  q.result.pop_back();  // h2 resolves at the next evaluation.

  nlohmann::json alerts = AlertsAPIData(m)["alerts"];
  ASSERT_EQ(alerts.size(), 2);
  EXPECT_EQ(alerts[0], nlohmann::json::parse(absl::StrCat(
                           R"({"labels":{"alertname":"InstanceDown","instance":"h1","severity":"page"},)",
                           R"("annotations":{"summary":"h1 down"},"state":"firing",)",
                           R"("activeAt":")", GoTimeJSON(ts), R"(","value":"0e+00"})")));

  clock.Set(ts + absl::Seconds(90));
  m.RunDue();
  alerts = AlertsAPIData(m)["alerts"];
  ASSERT_EQ(alerts.size(), 1) << "resolved alerts are not listed";

  nlohmann::json groups = RulesAPIData(m)["groups"];
  ASSERT_EQ(groups.size(), 1);
  const nlohmann::json& gj = groups[0];
  EXPECT_EQ(gj["name"], "node");
  EXPECT_EQ(gj["file"], "rules.yml");
  EXPECT_EQ(gj["interval"], 30.0);
  EXPECT_EQ(gj["limit"], 0);
  EXPECT_EQ(gj["lastEvaluation"], GoTimeJSON(ts + absl::Seconds(90)));
  ASSERT_EQ(gj["rules"].size(), 3);
  const nlohmann::json& rj = gj["rules"][0];
  EXPECT_EQ(rj["type"], "recording");
  EXPECT_EQ(rj["name"], "up:sum");
  EXPECT_EQ(rj["query"], "sum(up)");
  EXPECT_EQ(rj["health"], "ok");
  EXPECT_FALSE(rj.contains("labels"));
  const nlohmann::json& aj = gj["rules"][1];
  EXPECT_EQ(aj["type"], "alerting");
  EXPECT_EQ(aj["state"], "firing");
  EXPECT_EQ(aj["duration"], 60.0);
  EXPECT_EQ(aj["keepFiringFor"], 0.0);
  EXPECT_EQ(aj["labels"]["severity"], "page");
  EXPECT_EQ(aj["alerts"].size(), 1);
  const nlohmann::json& bj = gj["rules"][2];
  EXPECT_EQ(bj["health"], "err");
  EXPECT_EQ(bj["lastError"], "no data");
  EXPECT_EQ(bj["state"], "inactive");

  EXPECT_EQ(RulesAPIData(m, "record")["groups"][0]["rules"].size(), 1);
  EXPECT_EQ(RulesAPIData(m, "alert")["groups"][0]["rules"].size(), 2);
}

TEST(APITest, FollowerWithCommittedStateListsAlertsWithUnknownHealth) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  FakeClock clock(start);
  Querier q;
  RuleManager follower(&clock, &q, nullptr, nullptr, {});
  RuleGroup g;
  g.name = "g";
  g.file = "f";
  Rule r;
  r.alert = "A";
  r.expr = "x";
  g.rules = {r};
  follower.SetRules(RuleSet{{g}});
  RuleStateRecord rec{"f;g", 0, "A", start, {}};
  Alert a;
  a.labels = Labels{{"alertname", "A"}};
  a.state = AlertState::kPending;
  a.active_at = start;
  rec.state.alerts[a.labels] = a;
  ASSERT_TRUE(follower.ApplyCommittedState(SerializeRuleState(rec)).ok());
  nlohmann::json alerts = AlertsAPIData(follower)["alerts"];
  ASSERT_EQ(alerts.size(), 1);
  EXPECT_EQ(alerts[0]["state"], "pending");
  nlohmann::json rule = RulesAPIData(follower)["groups"][0]["rules"][0];
  EXPECT_EQ(rule["health"], "unknown");
  EXPECT_EQ(rule["lastEvaluation"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(rule["state"], "pending");
}

}  // namespace
}  // namespace vigil::alerting
