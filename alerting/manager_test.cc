#include "alerting/manager.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::alerting {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::vigil::testing::StatusIs;

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);
const absl::Duration kInterval = absl::Seconds(15);

// Answers queries from a table; can take (fake) time to answer.
class FakeQuerier : public RuleQuerier {
 public:
  explicit FakeQuerier(FakeClock* clock) : clock_(clock) {}
  absl::StatusOr<std::vector<Series>> Query(absl::string_view expr, absl::Time ts) override {
    ++calls_;
    clock_->Advance(latency_);
    auto it = results_.find(std::string(expr));
    if (it == results_.end()) return absl::UnavailableError(absl::StrCat("no data for ", expr));
    return it->second;
  }
  void Set(const std::string& expr, std::vector<Series> v) { results_[expr] = std::move(v); }
  void Remove(const std::string& expr) { results_.erase(expr); }
  void set_latency(absl::Duration d) { latency_ = d; }
  int calls() const { return calls_; }

 private:
  FakeClock* clock_;
  std::map<std::string, std::vector<Series>> results_;
  absl::Duration latency_ = absl::ZeroDuration();
  int calls_ = 0;
};

class FakeAppender : public SampleAppender {
 public:
  absl::Status Append(const std::vector<Series>& series) override {
    for (const Series& s : series) written.push_back(s);
    return absl::OkStatus();
  }
  std::vector<Series> written;
};

class FakeSink : public AlertSink {
 public:
  void Send(absl::string_view expr, const std::vector<Alert>& alerts) override {
    for (const Alert& a : alerts) sent.emplace_back(std::string(expr), a);
  }
  std::vector<std::pair<std::string, Alert>> sent;
};

Series S(Labels l, double v) { return {std::move(l), {{0, v}}}; }

RuleSet TestRules() {
  RuleGroup g;
  g.name = "node";
  g.file = "rules.yml";
  g.interval = kInterval;
  Rule rec;
  rec.record = "job:up:sum";
  rec.expr = "sum by (job) (up)";
  rec.labels = {{"source", "rule"}};
  Rule alert;
  alert.alert = "InstanceDown";
  alert.expr = "up == 0";
  alert.for_duration = absl::Minutes(5);
  alert.labels = {{"severity", "page"}};
  alert.annotations = {{"summary", "{{ $labels.instance }} of {{ $externalLabels.cluster }} down"}};
  g.rules = {rec, alert};
  return RuleSet{{g}};
}

const std::string kKey = "rules.yml;node";

struct Node {
  explicit Node(FakeClock* clock) : querier(clock) {
    RuleManagerOptions opts;
    opts.external_labels = {{"cluster", "eu1"}};
    manager = std::make_unique<RuleManager>(clock, &querier, &appender, &sink, opts);
    manager->SetRules(TestRules());
  }
  FakeQuerier querier;
  FakeAppender appender;
  FakeSink sink;
  std::unique_ptr<RuleManager> manager;
};

TEST(RuleManagerTest, RecordingRuleWritesResultsWithLabelsAndStaleMarkers) {
  FakeClock clock(kStart);
  Node n(&clock);
  n.querier.Set("sum by (job) (up)", {S(Labels{{"job", "a"}}, 3), S(Labels{{"job", "b"}}, 2)});
  n.querier.Set("up == 0", {});
  absl::Time ts = kStart + absl::Minutes(1);
  GroupRunResult r = n.manager->EvaluateGroup(n.manager->scheduler().rules().groups[0], ts);
  EXPECT_THAT(r.errors, IsEmpty());
  ASSERT_THAT(n.appender.written, SizeIs(2));
  EXPECT_EQ(n.appender.written[0].labels,
            (Labels{{"__name__", "job:up:sum"}, {"job", "a"}, {"source", "rule"}}));
  EXPECT_EQ(n.appender.written[0].samples[0].t, absl::ToUnixMillis(ts));
  EXPECT_EQ(n.appender.written[0].samples[0].v, 3);

  n.appender.written.clear();
  n.querier.Set("sum by (job) (up)", {S(Labels{{"job", "a"}}, 4)});
  n.manager->EvaluateGroup(n.manager->scheduler().rules().groups[0], ts + kInterval);
  ASSERT_THAT(n.appender.written, SizeIs(2));
  EXPECT_EQ(n.appender.written[1].labels.Get("job"), "b");
  EXPECT_TRUE(IsStaleNaN(n.appender.written[1].samples[0].v)) << "vanished series get a stale marker";
}

TEST(RuleManagerTest, RecordingRuleErrors) {
  FakeClock clock(kStart);
  Node n(&clock);
  // Two series that differ only in __name__ collide after the rename.
  n.querier.Set("sum by (job) (up)", {S(Labels{{"__name__", "x"}, {"job", "a"}}, 1),
                                      S(Labels{{"__name__", "y"}, {"job", "a"}}, 1)});
  n.querier.Set("up == 0", {});
  GroupRunResult r = n.manager->EvaluateGroup(n.manager->scheduler().rules().groups[0], kStart);
  ASSERT_THAT(r.errors, SizeIs(1));
  EXPECT_EQ(r.errors[0].first, 0);
  EXPECT_THAT(r.errors[0].second, StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("same labelset after applying rule labels")));

  RuleSet rules = TestRules();
  rules.groups[0].limit = 1;
  n.manager->SetRules(rules);
  n.querier.Set("sum by (job) (up)", {S(Labels{{"job", "a"}}, 1), S(Labels{{"job", "b"}}, 1)});
  r = n.manager->EvaluateGroup(n.manager->scheduler().rules().groups[0], kStart);
  ASSERT_THAT(r.errors, SizeIs(1));
  EXPECT_THAT(r.errors[0].second, StatusIs(absl::StatusCode::kResourceExhausted,
                                           HasSubstr("exceeded limit 1 with 2 series")));
}

// Runs the node's scheduler until `until`, returning every result.
std::vector<GroupRunResult> RunUntil(FakeClock* clock, Node& n, absl::Time until) {
  std::vector<GroupRunResult> all;
  while (n.manager->scheduler().NextDue() <= until) {
    clock->Set(std::max(clock->Now(), n.manager->scheduler().NextDue()));
    for (GroupRunResult& r : n.manager->RunDue()) all.push_back(std::move(r));
  }
  return all;
}

int CountCommits(const std::vector<GroupRunResult>& results) {
  int n = 0;
  for (const GroupRunResult& r : results) n += r.commits.size();
  return n;
}

TEST(RuleManagerTest, CommitsOnlyOnTransitionsAndNotifiesEveryResendDelay) {
  FakeClock clock(kStart);
  Node n(&clock);
  n.querier.Set("sum by (job) (up)", {});
  Labels down{{"__name__", "up"}, {"instance", "h1"}, {"job", "node"}};
  n.querier.Set("up == 0", {S(down, 0)});
  std::vector<GroupRunResult> results = RunUntil(&clock, n, kStart + absl::Minutes(10));
  ASSERT_GE(results.size(), 39);
  EXPECT_EQ(CountCommits(results), 2) << "pending, then firing";
  const RuleState* st = n.manager->state(kKey, 1);
  ASSERT_NE(st, nullptr);
  ASSERT_THAT(st->alerts, SizeIs(1));
  const Alert& a = st->alerts.begin()->second;
  EXPECT_EQ(a.state, AlertState::kFiring);
  EXPECT_EQ(a.fired_at - a.active_at, absl::Minutes(5));
  EXPECT_EQ(a.annotations[0].second, "h1 of eu1 down");

  // Firing for ~5 minutes with a 1m resend delay: sent at fire time, then every
  // evaluation strictly more than 1m after the last send (75s at a 15s interval).
  ASSERT_GE(n.sink.sent.size(), 4);
  ASSERT_LE(n.sink.sent.size(), 6);
  for (const auto& [expr, sent] : n.sink.sent) {
    EXPECT_EQ(expr, "up == 0");
    EXPECT_EQ(sent.fired_at, a.fired_at);
    EXPECT_EQ(sent.valid_until, sent.last_sent_at + 4 * absl::Minutes(1));
  }

  // ALERTS and ALERTS_FOR_STATE were written every evaluation.
  // When the alert fired, ALERTS{alertstate="pending"} got a stale marker.
  int alerts_samples = 0, stale_pending = 0;
  for (const Series& s : n.appender.written) {
    if (s.labels.MetricName() != "ALERTS") continue;
    if (IsStaleNaN(s.samples[0].v)) {
      stale_pending += s.labels.Get("alertstate") == "pending";
    } else {
      ++alerts_samples;
    }
  }
  EXPECT_EQ(alerts_samples, results.size());
  EXPECT_EQ(stale_pending, 1);

  // Resolution: one commit, sent at once as resolved, then stale markers.
  n.querier.Set("up == 0", {});
  n.sink.sent.clear();
  n.appender.written.clear();
  results = RunUntil(&clock, n, clock.Now() + kInterval);
  EXPECT_EQ(CountCommits(results), 1);
  ASSERT_THAT(n.sink.sent, SizeIs(1));
  EXPECT_EQ(n.sink.sent[0].second.state, AlertState::kInactive);
  ASSERT_THAT(n.appender.written, SizeIs(2));
  EXPECT_TRUE(IsStaleNaN(n.appender.written[0].samples[0].v));
}

TEST(RuleManagerTest, FailoverInTheMiddleOfForFiresAtActiveAtPlusFor) {
  FakeClock clock(kStart);
  Node leader(&clock), follower(&clock);
  Labels down{{"__name__", "up"}, {"instance", "h1"}, {"job", "node"}};
  for (Node* n : {&leader, &follower}) {
    n->querier.Set("sum by (job) (up)", {});
    n->querier.Set("up == 0", {S(down, 0)});
  }
  // The leader evaluates for 4 minutes; its commits reach the follower through "Raft".
  leader.manager->ResumeAsLeader();
  absl::Time first = leader.manager->scheduler().NextDue();
  for (const GroupRunResult& r : RunUntil(&clock, leader, first + absl::Minutes(4))) {
    for (const StateCommit& c : r.commits) {
      ASSERT_OK(follower.manager->ApplyCommittedState(c.bytes));
      ASSERT_OK(leader.manager->ApplyCommittedState(c.bytes));  // Own proposals come back.
    }
  }
  ASSERT_EQ(follower.manager->state(kKey, 1)->alerts.begin()->second.state, AlertState::kPending);

  // The leader dies; the follower's scheduler is on the same grid and takes over.
  follower.manager->ResumeAsLeader();
  std::vector<GroupRunResult> after = RunUntil(&clock, follower, first + absl::Minutes(7));
  const Alert& a = follower.manager->state(kKey, 1)->alerts.begin()->second;
  EXPECT_EQ(a.state, AlertState::kFiring);
  EXPECT_EQ(a.active_at, first);
  EXPECT_EQ(a.fired_at, first + absl::Minutes(5)) << "about 1 minute after the failover, not 5";
  EXPECT_EQ(CountCommits(after), 1);
  ASSERT_FALSE(follower.sink.sent.empty());
  EXPECT_EQ(follower.sink.sent[0].second.fired_at, first + absl::Minutes(5));
  EXPECT_THAT(leader.sink.sent, IsEmpty()) << "the old leader never fired";
  EXPECT_EQ(follower.manager->scheduler().metrics(kKey)->iterations_missed, 0);
}

TEST(RuleManagerTest, LeaderKeepsItsNewerStateAndStepDownRevertsToCommitted) {
  FakeClock clock(kStart);
  Node n(&clock);
  n.manager->ResumeAsLeader();
  n.querier.Set("sum by (job) (up)", {});
  n.querier.Set("up == 0", {S(Labels{{"instance", "h1"}}, 0)});
  std::vector<GroupRunResult> results = RunUntil(&clock, n, clock.Now() + absl::Minutes(6));
  std::vector<std::string> commits;
  for (const auto& r : results) {
    for (const auto& c : r.commits) commits.push_back(c.bytes);
  }
  ASSERT_THAT(commits, SizeIs(2));
  ASSERT_OK(n.manager->ApplyCommittedState(commits[0]));  // The stale "pending" commit.
  EXPECT_EQ(n.manager->state(kKey, 1)->alerts.begin()->second.state, AlertState::kFiring);

  // Deposed before "firing" was committed: back to the committed "pending".
  n.manager->StepDown();
  EXPECT_FALSE(n.manager->leading());
  EXPECT_EQ(n.manager->state(kKey, 1)->alerts.begin()->second.state, AlertState::kPending);
  // As a follower it takes every committed state, in log order.
  ASSERT_OK(n.manager->ApplyCommittedState(commits[1]));
  EXPECT_EQ(n.manager->state(kKey, 1)->alerts.begin()->second.state, AlertState::kFiring);
}

TEST(RuleManagerTest, NewLeaderStartsFromTheCommittedState) {
  FakeClock clock(kStart);
  Node n(&clock);
  n.querier.Set("sum by (job) (up)", {});
  n.querier.Set("up == 0", {S(Labels{{"instance", "h1"}}, 0)});
  n.manager->ResumeAsLeader();
  RunUntil(&clock, n, clock.Now() + absl::Minutes(1));  // Nothing gets committed.
  ASSERT_THAT(n.manager->state(kKey, 1)->alerts, SizeIs(1));
  n.manager->StepDown();
  EXPECT_THAT(n.manager->state(kKey, 1)->alerts, IsEmpty());
  n.manager->ResumeAsLeader();
  EXPECT_THAT(n.manager->state(kKey, 1)->alerts, IsEmpty());
}

TEST(RuleManagerTest, ApplyCommittedStateErrors) {
  FakeClock clock(kStart);
  Node n(&clock);
  EXPECT_THAT(n.manager->ApplyCommittedState("\xff\xff"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(n.manager->ApplyCommittedState(SerializeRuleState({"other;g", 0, "X", kStart, {}})),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(n.manager->ApplyCommittedState(SerializeRuleState({kKey, 1, "Renamed", kStart, {}})),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(RuleManagerTest, SetRulesKeepsStateOfUnchangedRules) {
  FakeClock clock(kStart);
  Node n(&clock);
  n.querier.Set("sum by (job) (up)", {});
  n.querier.Set("up == 0", {S(Labels{{"instance", "h1"}}, 0)});
  RunUntil(&clock, n, clock.Now() + absl::Minutes(1));
  ASSERT_THAT(n.manager->state(kKey, 1)->alerts, SizeIs(1));
  n.manager->SetRules(TestRules());
  ASSERT_NE(n.manager->state(kKey, 1), nullptr);
  EXPECT_THAT(n.manager->state(kKey, 1)->alerts, SizeIs(1));

  RuleSet renamed = TestRules();
  renamed.groups[0].rules[1].alert = "HostDown";
  n.manager->SetRules(renamed);
  EXPECT_EQ(n.manager->state(kKey, 1), nullptr);
}

TEST(RuleManagerTest, QueryErrorFailsOnlyThatRuleAndIsCounted) {
  FakeClock clock(kStart);
  Node n(&clock);
  n.querier.Set("up == 0", {S(Labels{{"instance", "h1"}}, 0)});  // The recording rule has no data.
  std::vector<GroupRunResult> results = RunUntil(&clock, n, n.manager->scheduler().NextDue());
  ASSERT_THAT(results, SizeIs(1));
  ASSERT_THAT(results[0].errors, SizeIs(1));
  EXPECT_EQ(results[0].errors[0].first, 0);
  EXPECT_THAT(results[0].errors[0].second, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(results[0].commits, SizeIs(1)) << "the alerting rule still ran";
  EXPECT_EQ(n.manager->scheduler().metrics(kKey)->evaluation_failures, 1);
}

TEST(RuleManagerTest, SlowEvaluationsAreMeasuredAndMissedSlotsCounted) {
  FakeClock clock(kStart);
  Node n(&clock);
  n.querier.Set("sum by (job) (up)", {});
  n.querier.Set("up == 0", {});
  n.querier.set_latency(kInterval + absl::Seconds(10));  // Two queries: 50s per evaluation.
  clock.Set(n.manager->scheduler().NextDue());
  std::vector<GroupRunResult> r = n.manager->RunDue();
  ASSERT_THAT(r, SizeIs(1));
  EXPECT_EQ(r[0].took, absl::Seconds(50));
  EXPECT_EQ(n.manager->scheduler().metrics(kKey)->last_duration, absl::Seconds(50));
  r = n.manager->RunDue();
  ASSERT_THAT(r, SizeIs(1));
  EXPECT_EQ(r[0].missed, 2) << "50s late at a 15s interval";
  EXPECT_EQ(n.manager->scheduler().metrics(kKey)->iterations_missed, 2);
}

TEST(RuleRunnerTest, EvaluatesOnItsOwnThreadUntilStopped) {
  RealClock* clock = RealClock::Get();
  FakeClock unused;
  FakeQuerier querier(&unused);
  querier.Set("up == 0", {});
  RuleManager manager(clock, &querier, nullptr, nullptr, {});
  RuleSet rules = TestRules();
  rules.groups[0].rules.pop_back();
  rules.groups[0].rules[0].expr = "up == 0";
  rules.groups[0].interval = absl::Milliseconds(20);

  absl::Mutex mu;
  int results = 0;
  {
    RuleRunner runner(&manager, [&](const GroupRunResult&) {
      absl::MutexLock l(&mu);
      ++results;
    });
    runner.Post([&rules](RuleManager* m) { m->SetRules(rules); });
    absl::MutexLock l(&mu);
    auto three = [&results]() { return results >= 3; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&three), absl::Seconds(60)));
  }
  int after_stop = 0;
  {
    absl::MutexLock l(&mu);
    after_stop = results;
  }
  EXPECT_GE(after_stop, 3);
  EXPECT_EQ(querier.calls(), after_stop) << "no evaluation after the runner stopped";
}

}  // namespace
}  // namespace vigil::alerting
