#include "alerting/promql.h"

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "query/memory_source.h"

namespace vigil::alerting {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::vigil::testing::StatusIs;

std::string TestdataPath(absl::string_view name) {
  return std::string(ALERTING_TESTDATA_DIR) + "/" + std::string(name);
}

TEST(PromQLExprValidatorTest, ChecksRuleFilesWithTheRealParser) {
  ASSERT_OK(LoadRuleFiles({TestdataPath("rules.yml")}, PromQLExprValidator()).status());
  auto bad = LoadRuleFiles({TestdataPath("bad_rules.yml")}, PromQLExprValidator());
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument,
                            HasSubstr("bad_rules.yml:13: group \"dup\", rule 3, \"C\": could not "
                                      "parse expression: ")));
  EXPECT_THAT(PromQLExprValidator()("sum(rate(x[5m])) by (job)"), vigil::testing::IsOk());
  EXPECT_THAT(PromQLExprValidator()("sum(rate(x[5m]) by (job)"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Writes rule output back into the source, as ingest does in vigild.
class Appender : public SampleAppender {
 public:
  explicit Appender(query::MemorySeriesSource* source) : source_(source) {}
  absl::Status Append(const std::vector<Series>& series) override {
    for (const Series& s : series) {
      source_->Add(s.labels, s.samples);
      written.push_back(s);
    }
    return absl::OkStatus();
  }
  std::vector<Series> written;

 private:
  query::MemorySeriesSource* source_;
};

class Sink : public AlertSink {
 public:
  void Send(absl::string_view expr, const std::vector<Alert>& alerts) override {
    for (const Alert& a : alerts) sent.push_back(a);
  }
  std::vector<Alert> sent;
};

TEST(EngineRuleQuerierTest, SampleRulesFireOverTheEngine) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  query::MemorySeriesSource source;
  std::vector<Sample> down, busy, idle;
  for (int s = 0; s <= 20 * 60; s += 15) {
    int64_t t = absl::ToUnixMillis(start) + s * 1000;
    down.push_back({t, 0});
    busy.push_back({t, 0.97 * s});  // 0.97 CPU-seconds per second.
    idle.push_back({t, 0.03 * s});
  }
  source.Add(Labels{{"__name__", "up"}, {"instance", "h1:9100"}, {"job", "node"}}, down);
  source.Add(Labels{{"__name__", "node_cpu_seconds_total"}, {"instance", "h1:9100"},
                    {"mode", "user"}},
             busy);
  source.Add(Labels{{"__name__", "node_cpu_seconds_total"}, {"instance", "h1:9100"},
                    {"mode", "idle"}},
             idle);
  query::Engine engine;
  EngineRuleQuerier querier(&engine, &source);

  ASSERT_OK_AND_ASSIGN(RuleSet rules, LoadRuleFiles({TestdataPath("rules.yml")}, PromQLExprValidator()));
  FakeClock clock(start + absl::Minutes(5));
  Appender appender(&source);
  Sink sink;
  RuleManager manager(&clock, &querier, &appender, &sink, {});
  manager.SetRules(rules);
  const RuleGroup& node = manager.scheduler().rules().groups[0];

  absl::Time first = absl::InfiniteFuture();
  while (manager.scheduler().NextDue() <= start + absl::Minutes(17)) {
    clock.Set(manager.scheduler().NextDue());
    for (const GroupRunResult& r : manager.RunDue()) {
      if (r.group_key == node.Key()) first = std::min(first, r.eval_ts);
      for (const auto& [index, status] : r.errors) ADD_FAILURE() << index << ": " << status;
    }
  }
  const RuleState* st = manager.state(node.Key(), 1);
  ASSERT_NE(st, nullptr);
  ASSERT_THAT(st->alerts, SizeIs(1));
  const Alert& a = st->alerts.begin()->second;
  EXPECT_EQ(a.state, AlertState::kFiring);
  EXPECT_EQ(a.active_at, first);
  EXPECT_EQ(a.fired_at, first + absl::Minutes(5));
  EXPECT_EQ(a.labels, (Labels{{"alertname", "InstanceDown"}, {"instance", "h1:9100"},
                              {"instance_short", "h1"}, {"job", "node"}, {"severity", "page"}}));
  EXPECT_EQ(a.annotations[1], (std::pair<std::string, std::string>{"summary", "Instance h1:9100 down"}));

  // The recording rule fed HighCPU within the same group.
  const RuleState* cpu = manager.state(node.Key(), 2);
  ASSERT_NE(cpu, nullptr);
  ASSERT_THAT(cpu->alerts, SizeIs(1));
  const Alert& c = cpu->alerts.begin()->second;
  EXPECT_EQ(c.state, AlertState::kFiring);
  EXPECT_EQ(c.fired_at, first + absl::Minutes(10));
  EXPECT_EQ(c.labels.Get("severity"), "page");
  EXPECT_EQ(c.annotations[0].second, "CPU at 97% on h1:9100");
  bool recorded = false;
  for (const Series& s : appender.written) {
    recorded |= s.labels.MetricName() == "instance:node_cpu:rate5m" && s.labels.Get("team") == "infra";
  }
  EXPECT_TRUE(recorded);
  EXPECT_FALSE(sink.sent.empty());
}

}  // namespace
}  // namespace vigil::alerting
