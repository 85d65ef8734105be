#include "alerting/service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "alerting/promql.h"
#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "glog/logging.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "query/engine.h"
#include "query/memory_source.h"
#include "server/metrics.h"
#include "httplib.h"
#include <thread>

namespace vigil::alerting {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kRules[] = R"(groups:
  - name: node
    interval: 30s
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 2m
        labels:
          severity: page
)";

// Records the payloads, keyed like a register-backed control plane would.
class KeyRecorder : public Replicator {
 public:
  bool IsLeader() override { return true; }
  void Propose(std::string bytes, std::function<void(absl::Status)> done) override {
    absl::StatusOr<std::string> key = AlertingPayloadKey(bytes);
    ASSERT_OK(key.status());
    keys.push_back(*key);
    if (apply_to != nullptr) ASSERT_OK(apply_to->OnCommitted(bytes));
    done(absl::OkStatus());
  }
  std::vector<std::string> keys;
  AlertingService* apply_to = nullptr;
};

// "Commits" synchronously: applies the payload on every member in order.
class FakeReplicator : public Replicator {
 public:
  void AddMember(AlertingService* s) { members_.push_back(s); }
  void SetLeader(AlertingService* s) { leader_ = s; }
  bool IsLeader() override { return true; }
  void Propose(std::string bytes, std::function<void(absl::Status)> done) override {
    ++proposals_;
    for (AlertingService* m : members_) EXPECT_OK(m->OnCommitted(bytes));
    done(absl::OkStatus());
  }
  int proposals() const { return proposals_; }

 private:
  std::vector<AlertingService*> members_;
  AlertingService* leader_ = nullptr;
  int proposals_ = 0;
};

// Records every alert posted to the Alertmanager.
class FakeAlertmanager : public AlertmanagerClient {
 public:
  absl::Status Post(const std::string& url, const std::string& json) override {
    absl::MutexLock l(&mu_);
    for (const nlohmann::json& a : nlohmann::json::parse(json)) posted_.push_back(a);
    return absl::OkStatus();
  }
  std::vector<nlohmann::json> posted() {
    absl::MutexLock l(&mu_);
    return posted_;
  }

 private:
  absl::Mutex mu_;
  std::vector<nlohmann::json> posted_;
};

absl::Time ParseTime(const std::string& s) {
  absl::Time t;
  std::string err;
  CHECK(absl::ParseTime(absl::RFC3339_full, s, &t, &err)) << s << ": " << err;
  return t;
}

class AlertingServiceTest : public ::testing::Test {
 protected:
  static constexpr int64_t kStartMs = 1700000000'000 - 600'000;  // 10 minutes before the clock.

  AlertingServiceTest()
      : clock_(absl::FromUnixSeconds(1700000000)),
        querier_(&engine_, &source_),
        a_(Opts(), &clock_, &querier_, nullptr, &replicator_, &am_a_),
        b_(Opts(), &clock_, &querier_, nullptr, &replicator_, &am_b_) {
    replicator_.AddMember(&a_);
    replicator_.AddMember(&b_);
    // up{instance="x"} == 0 every 15 s for an hour around the test.
    std::vector<Sample> samples;
    for (int64_t t = kStartMs; t < kStartMs + 3'600'000; t += 15'000) samples.push_back({t, 0});
    source_.Add(Labels{{"__name__", "up"}, {"instance", "x"}}, samples);
  }

  static AlertingServiceOptions Opts() {
    AlertingServiceOptions o;
    o.alertmanager_urls = {"http://am:9093"};
    o.external_labels = {{"cluster", "c1"}};
    o.resend_delay = absl::Minutes(10);
    return o;
  }

  void Elect(AlertingService* leader) {
    AlertingService* other = leader == &a_ ? &b_ : &a_;
    other->OnLeadershipChange(false);
    leader->OnLeadershipChange(true);
  }

  // Advances the clock in 1 s steps, ticking both nodes, until `pred` holds or
  // `limit` passed. Returns whether `pred` held.
  template <typename Pred>
  bool AdvanceUntil(absl::Duration limit, Pred pred) {
    const absl::Time end = clock_.Now() + limit;
    while (clock_.Now() < end) {
      a_.Tick();
      b_.Tick();
      if (pred()) return true;
      clock_.Advance(absl::Seconds(1));
    }
    return false;
  }
  void Advance(absl::Duration d) {
    AdvanceUntil(d, [] { return false; });
  }

  static std::vector<nlohmann::json> Alerts(AlertingService& s) {
    return nlohmann::json::parse(s.AlertsJSON())["alerts"].get<std::vector<nlohmann::json>>();
  }
  static std::string StateOf(AlertingService& s) {
    std::vector<nlohmann::json> alerts = Alerts(s);
    return alerts.empty() ? "inactive" : alerts[0]["state"].get<std::string>();
  }
  std::vector<nlohmann::json> FiringPosts() {
    std::vector<nlohmann::json> out;
    for (FakeAlertmanager* am : {&am_a_, &am_b_}) {
      for (const nlohmann::json& a : am->posted()) {
        if (ParseTime(a["endsAt"]) > clock_.Now()) out.push_back(a);
      }
    }
    return out;
  }

  FakeClock clock_;
  query::Engine engine_;
  query::MemorySeriesSource source_;
  EngineRuleQuerier querier_;
  FakeReplicator replicator_;
  FakeAlertmanager am_a_, am_b_;
  AlertingService a_, b_;
};

TEST_F(AlertingServiceTest, AppliedRulesAreListedOnEveryNode) {
  Elect(&a_);
  absl::Status committed = absl::UnknownError("not called");
  ASSERT_OK(a_.ApplyRuleContents({{"node.yml", kRules}},
                                 [&](absl::Status s) { committed = s; }));
  EXPECT_OK(committed);
  for (AlertingService* s : {&a_, &b_}) {
    nlohmann::json rules = nlohmann::json::parse(s->RulesJSON());
    ASSERT_THAT(rules["groups"], SizeIs(1));
    EXPECT_EQ(rules["groups"][0]["name"], "node");
    EXPECT_EQ(rules["groups"][0]["rules"][0]["name"], "InstanceDown");
  }
}

TEST_F(AlertingServiceTest, BadRulesAreRejectedAndRulesInForceStay) {
  Elect(&a_);
  ASSERT_OK(a_.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  const int proposals = replicator_.proposals();
  const std::string before = b_.RulesJSON();
  absl::Status s = a_.ApplyRuleContents(
      {{"bad.yml", "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: 'up =='\n"}},
      [](absl::Status) { ADD_FAILURE() << "proposed"; });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad.yml:5:")));
  EXPECT_EQ(replicator_.proposals(), proposals);
  EXPECT_EQ(b_.RulesJSON(), before);
  EXPECT_THAT(a_.ApplyRuleFiles({"/nonexistent/rules.yml"}), Not(IsOk()));
  EXPECT_EQ(replicator_.proposals(), proposals);
}

TEST_F(AlertingServiceTest, UnknownPayloadIsRejected) {
  EXPECT_THAT(a_.OnCommitted(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a_.OnCommitted("Xabc"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a_.OnCommitted("Rnot a proto \xff"), Not(IsOk()));
}

TEST_F(AlertingServiceTest, PendingThenFiringWithStateCommittedToFollower) {
  Elect(&a_);
  ASSERT_OK(a_.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(1), [&] { return StateOf(a_) == "pending"; }));
  const absl::Time active_at = ParseTime(Alerts(a_)[0]["activeAt"]);
  // The follower holds the committed state.
  EXPECT_EQ(StateOf(b_), "pending");
  EXPECT_EQ(ParseTime(Alerts(b_)[0]["activeAt"]), active_at);
  EXPECT_THAT(FiringPosts(), IsEmpty());  // Pending alerts are not sent.

  ASSERT_TRUE(AdvanceUntil(absl::Minutes(3), [&] { return StateOf(a_) == "firing"; }));
  // Observed at the first 1 s step at or after the slot activeAt + for.
  EXPECT_GE(clock_.Now(), active_at + absl::Minutes(2));
  EXPECT_LT(clock_.Now(), active_at + absl::Minutes(2) + absl::Seconds(1));
  EXPECT_EQ(StateOf(b_), "firing");
  std::vector<nlohmann::json> posts = FiringPosts();
  ASSERT_THAT(posts, SizeIs(1));
  EXPECT_EQ(absl::ToUnixMillis(ParseTime(posts[0]["startsAt"])),
            absl::ToUnixMillis(active_at + absl::Minutes(2)));
  EXPECT_EQ(posts[0]["labels"]["alertname"], "InstanceDown");
  EXPECT_EQ(posts[0]["labels"]["cluster"], "c1");
  EXPECT_THAT(am_b_.posted(), IsEmpty());  // Only the leader notifies.
}

TEST_F(AlertingServiceTest, FailoverDuringForFiresOnTimeOncePerEpisode) {
  Elect(&a_);
  ASSERT_OK(a_.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(1), [&] { return StateOf(a_) == "pending"; }));
  const absl::Time active_at = ParseTime(Alerts(a_)[0]["activeAt"]);
  Advance(absl::Minutes(1));  // Half of `for`.
  ASSERT_EQ(StateOf(b_), "pending");

  Elect(&b_);
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(3), [&] { return StateOf(b_) == "firing"; }));
  // Observed at the first 1 s step at or after the slot activeAt + for.
  EXPECT_GE(clock_.Now(), active_at + absl::Minutes(2));
  EXPECT_LT(clock_.Now(), active_at + absl::Minutes(2) + absl::Seconds(1));
  EXPECT_EQ(ParseTime(Alerts(b_)[0]["activeAt"]), active_at);

  Advance(absl::Minutes(3));
  std::vector<nlohmann::json> posts = FiringPosts();
  ASSERT_THAT(posts, SizeIs(1));
  EXPECT_EQ(absl::ToUnixMillis(ParseTime(posts[0]["startsAt"])),
            absl::ToUnixMillis(active_at + absl::Minutes(2)));
  EXPECT_THAT(am_a_.posted(), IsEmpty());
}

TEST_F(AlertingServiceTest, FailoverAfterFiringKeepsTheEpisode) {
  Elect(&a_);
  ASSERT_OK(a_.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(4), [&] { return StateOf(a_) == "firing"; }));
  Advance(absl::Seconds(5));
  ASSERT_THAT(am_a_.posted(), SizeIs(1));
  const std::string starts_at = am_a_.posted()[0]["startsAt"];
  Elect(&b_);
  Advance(absl::Minutes(3));
  EXPECT_EQ(StateOf(b_), "firing");
  // The committed state carries the old leader's lastSentAt: the new leader does
  // not send the alert again before the resend delay (10 minutes here).
  EXPECT_THAT(am_b_.posted(), IsEmpty());
  // Then it resends the same episode (same startsAt), as Prometheus does.
  Advance(absl::Minutes(8));
  std::vector<nlohmann::json> posted = am_b_.posted();
  ASSERT_THAT(posted, SizeIs(1));
  EXPECT_EQ(posted[0]["startsAt"], starts_at);
  EXPECT_THAT(am_a_.posted(), SizeIs(1));
}

TEST_F(AlertingServiceTest, FailoverAfterResolvingDoesNotResendTheResolution) {
  Elect(&a_);
  ASSERT_OK(a_.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(4), [&] { return StateOf(a_) == "firing"; }));
  // The condition clears: up{instance="x"} is 1 from now on.
  std::vector<Sample> ones;
  const int64_t now_ms = absl::ToUnixMillis(clock_.Now());
  for (int64_t t = kStartMs; t < kStartMs + 3'600'000; t += 15'000) {
    if (t > now_ms) ones.push_back({t, 1});  // Replaces the 0 at that timestamp.
  }
  source_.Add(Labels{{"__name__", "up"}, {"instance", "x"}}, ones);
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(2), [&] { return StateOf(a_) == "inactive"; }));
  Advance(absl::Seconds(2));
  ASSERT_THAT(am_a_.posted(), SizeIs(2));  // Firing, then resolved.
  Elect(&b_);
  Advance(absl::Minutes(3));
  EXPECT_THAT(am_b_.posted(), IsEmpty());
}

TEST_F(AlertingServiceTest, PayloadKeysNameTheRuleSetAndEachRule) {
  KeyRecorder recorder;
  AlertingService c(Opts(), &clock_, &querier_, nullptr, &recorder, &am_a_);
  recorder.apply_to = &c;
  c.OnLeadershipChange(true);
  ASSERT_OK(c.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  ASSERT_THAT(recorder.keys, ::testing::ElementsAre("alerting/rules"));
  for (int i = 0; i < 60 && recorder.keys.size() < 2; ++i) {
    c.Tick();
    clock_.Advance(absl::Seconds(1));
  }
  ASSERT_THAT(recorder.keys, SizeIs(2));
  EXPECT_EQ(recorder.keys[1], "alerting/state/node.yml;node/0");
  EXPECT_THAT(AlertingPayloadKey("S\xff\xff"), Not(IsOk()));
  EXPECT_THAT(AlertingPayloadKey("Q"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AlertingPayloadKey(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(AlertingServiceTest, HttpRoutesServePrometheusEnvelopes) {
  Elect(&a_);
  httplib::Server server;
  a_.RegisterRoutes(&server);
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { server.listen_after_bind(); });
  struct StopOnExit {  // Also when an assertion returns early.
    httplib::Server* server;
    std::thread* thread;
    ~StopOnExit() {
      while (!server->is_running()) std::this_thread::yield();
      server->stop();
      thread->join();
    }
  } stop_on_exit{&server, &t};
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);

  httplib::Result bad = client.Post("/api/v1/admin/rules", "groups: [", "application/yaml");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(nlohmann::json::parse(bad->body)["status"], "error");

  httplib::Result ok = client.Post("/api/v1/admin/rules", kRules, "application/yaml");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;

  httplib::Result rules = client.Get("/api/v1/rules");
  ASSERT_TRUE(rules);
  nlohmann::json j = nlohmann::json::parse(rules->body);
  EXPECT_EQ(j["status"], "success");
  EXPECT_EQ(j["data"]["groups"][0]["rules"][0]["name"], "InstanceDown");
  EXPECT_EQ(nlohmann::json::parse(b_.RulesJSON())["groups"][0]["name"], "node");

  httplib::Result alerts = client.Get("/api/v1/alerts");
  ASSERT_TRUE(alerts);
  EXPECT_EQ(nlohmann::json::parse(alerts->body)["data"]["alerts"], nlohmann::json::array());
}

TEST_F(AlertingServiceTest, MetricsAreExported) {
  Elect(&a_);
  metrics::Registry registry;
  a_.ExportMetrics(&registry);
  ASSERT_OK(a_.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(4), [&] { return StateOf(a_) == "firing"; }));
  Advance(absl::Seconds(2));
  const std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("vigil_rule_group_iterations_missed_total{rule_group=\"node.yml;node\"} 0"));
  EXPECT_THAT(text, HasSubstr("vigil_rule_group_last_duration_seconds{rule_group=\"node.yml;node\"}"));
  EXPECT_THAT(text, HasSubstr("vigil_notifications_sent_total{alertmanager=\"http://am:9093\"} 1"));
  EXPECT_THAT(text, HasSubstr("vigil_notifications_queue_length 0"));
}

TEST_F(AlertingServiceTest, StartLoadsRuleFilesAndStops) {
  AlertingServiceOptions o = Opts();
  o.rule_files = {std::string(ALERTING_TESTDATA_DIR) + "/rules.yml"};
  FakeReplicator replicator;
  AlertingService c(o, &clock_, &querier_, nullptr, &replicator, &am_a_);
  replicator.AddMember(&c);
  ASSERT_OK(c.Start());
  EXPECT_THAT(nlohmann::json::parse(c.RulesJSON())["groups"], Not(IsEmpty()));
  c.Stop();
  c.Stop();

  o.rule_files = {std::string(ALERTING_TESTDATA_DIR) + "/bad_rules.yml"};
  AlertingService d(o, &clock_, &querier_, nullptr, &replicator, &am_a_);
  EXPECT_THAT(d.Start(), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vigil::alerting
