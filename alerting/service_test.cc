#include "alerting/service.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "alerting/promql.h"
#include "alerting/testing/service_helpers.h"
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
  uint64_t LeaderTerm() override { return 1; }
  void Propose(std::string bytes, std::function<void(absl::Status)> done) override {
    absl::StatusOr<std::string> key = AlertingPayloadKey(bytes);
    ASSERT_OK(key.status());
    keys.push_back(*key);
    if (apply_to != nullptr) {
      ASSERT_OK(apply_to->OnCommitted(bytes));
    }
    done(absl::OkStatus());
  }
  void ProposeFenced(uint64_t term, std::string bytes,
                     std::function<void(absl::Status)> done) override {
    EXPECT_EQ(term, 1u);
    Propose(std::move(bytes), std::move(done));
  }
  std::vector<std::string> keys;
  AlertingService* apply_to = nullptr;
};

// "Commits" synchronously: applies the payload on every member in order. One
// term for the whole group (the services learn of it through OnLeadershipChange);
// a fenced write of another term is refused, as the control plane refuses it.
class FakeReplicator : public Replicator {
 public:
  void AddMember(AlertingService* s) {
    absl::MutexLock l(&mu_);
    members_.push_back(s);
  }
  void set_term(uint64_t term) {
    absl::MutexLock l(&mu_);
    term_ = term;
  }
  uint64_t term() {
    absl::MutexLock l(&mu_);
    return term_;
  }
  uint64_t LeaderTerm() override { return term(); }
  void Propose(std::string bytes, std::function<void(absl::Status)> done) override {
    {
      absl::MutexLock l(&mu_);
      ++proposals_;
      for (AlertingService* m : members_) EXPECT_OK(m->OnCommitted(bytes));
      log_.push_back(std::move(bytes));
    }
    done(absl::OkStatus());
  }
  void ProposeFenced(uint64_t term, std::string bytes,
                     std::function<void(absl::Status)> done) override {
    bool refused;
    {
      absl::MutexLock l(&mu_);
      refused = term != term_;
      if (refused) {
        ++proposals_;
        ++refused_;
      }
    }
    if (refused) return done(absl::FailedPreconditionError("fenced write of an old term"));
    Propose(std::move(bytes), std::move(done));
  }
  // Applies everything committed so far on `s` (a restarted node's replay).
  void Replay(AlertingService* s) {
    absl::MutexLock l(&mu_);
    for (const std::string& bytes : log_) EXPECT_OK(s->OnCommitted(bytes));
  }
  int proposals() {
    absl::MutexLock l(&mu_);
    return proposals_;
  }
  int refused() {
    absl::MutexLock l(&mu_);
    return refused_;
  }

 private:
  absl::Mutex mu_;
  std::vector<AlertingService*> members_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
  uint64_t term_ ABSL_GUARDED_BY(mu_) = 1;
  int proposals_ ABSL_GUARDED_BY(mu_) = 0;
  int refused_ ABSL_GUARDED_BY(mu_) = 0;
};


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

  // A new term led by `leader`; both nodes learn of it at once.
  void Elect(AlertingService* leader) {
    AlertingService* other = leader == &a_ ? &b_ : &a_;
    const uint64_t term = replicator_.term() + 1;
    replicator_.set_term(term);
    other->OnLeadershipChange(0);
    leader->OnLeadershipChange(term);
  }
  // Ticks only `s` for up to `limit`, in 1 s steps, while `pred` is false.
  template <typename Pred>
  void TickOnlyWhile(AlertingService& s, absl::Duration limit, Pred pred) {
    for (const absl::Time end = clock_.Now() + limit; clock_.Now() < end && pred();) {
      s.Tick();
      clock_.Advance(absl::Seconds(1));
    }
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

  static std::vector<nlohmann::json> Alerts(AlertingService& s) { return AlertsOf(s); }
  static std::string StateOf(AlertingService& s) { return FirstAlertState(s); }
  std::vector<nlohmann::json> FiringPosts() {
    std::vector<nlohmann::json> out;
    for (RecordingAlertmanager* am : {&am_a_, &am_b_}) {
      for (const nlohmann::json& a : am->posted()) {
        if (ParseApiTime(a["endsAt"]) > clock_.Now()) out.push_back(a);
      }
    }
    return out;
  }

  FakeClock clock_;
  query::Engine engine_;
  query::MemorySeriesSource source_;
  EngineRuleQuerier querier_;
  FakeReplicator replicator_;
  RecordingAlertmanager am_a_, am_b_;
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
  const absl::Time active_at = ParseApiTime(Alerts(a_)[0]["activeAt"]);
  // The follower holds the committed state.
  EXPECT_EQ(StateOf(b_), "pending");
  EXPECT_EQ(ParseApiTime(Alerts(b_)[0]["activeAt"]), active_at);
  EXPECT_THAT(FiringPosts(), IsEmpty());  // Pending alerts are not sent.

  ASSERT_TRUE(AdvanceUntil(absl::Minutes(3), [&] { return StateOf(a_) == "firing"; }));
  // Observed at the first 1 s step at or after the slot activeAt + for.
  EXPECT_GE(clock_.Now(), active_at + absl::Minutes(2));
  EXPECT_LT(clock_.Now(), active_at + absl::Minutes(2) + absl::Seconds(1));
  EXPECT_EQ(StateOf(b_), "firing");
  std::vector<nlohmann::json> posts = FiringPosts();
  ASSERT_THAT(posts, SizeIs(1));
  EXPECT_EQ(absl::ToUnixMillis(ParseApiTime(posts[0]["startsAt"])),
            absl::ToUnixMillis(active_at + absl::Minutes(2)));
  EXPECT_EQ(posts[0]["labels"]["alertname"], "InstanceDown");
  EXPECT_EQ(posts[0]["labels"]["cluster"], "c1");
  EXPECT_THAT(am_b_.posted(), IsEmpty());  // Only the leader notifies.
}

TEST_F(AlertingServiceTest, FailoverDuringForFiresOnTimeOncePerEpisode) {
  Elect(&a_);
  ASSERT_OK(a_.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(1), [&] { return StateOf(a_) == "pending"; }));
  const absl::Time active_at = ParseApiTime(Alerts(a_)[0]["activeAt"]);
  Advance(absl::Minutes(1));  // Half of `for`.
  ASSERT_EQ(StateOf(b_), "pending");

  Elect(&b_);
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(3), [&] { return StateOf(b_) == "firing"; }));
  // Observed at the first 1 s step at or after the slot activeAt + for.
  EXPECT_GE(clock_.Now(), active_at + absl::Minutes(2));
  EXPECT_LT(clock_.Now(), active_at + absl::Minutes(2) + absl::Seconds(1));
  EXPECT_EQ(ParseApiTime(Alerts(b_)[0]["activeAt"]), active_at);

  Advance(absl::Minutes(3));
  std::vector<nlohmann::json> posts = FiringPosts();
  ASSERT_THAT(posts, SizeIs(1));
  EXPECT_EQ(absl::ToUnixMillis(ParseApiTime(posts[0]["startsAt"])),
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

// A leader that lost its term without noticing yet evaluates on: its fenced
// state write is refused, it drops what it evaluated (back to the committed
// state) without notifying it, never proposes that state again and does not
// resume in the lost term; the new leader carries the committed episode on.
TEST_F(AlertingServiceTest, StateOfALostTermIsRefusedAndNotRetried) {
  Elect(&a_);
  const uint64_t lost_term = replicator_.term();
  ASSERT_OK(a_.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(1), [&] { return StateOf(a_) == "pending"; }));
  const absl::Time active_at = ParseApiTime(Alerts(a_)[0]["activeAt"]);

  // b_ leads a new term; a_ has not heard and evaluates the pending -> firing step.
  replicator_.set_term(lost_term + 1);
  b_.OnLeadershipChange(lost_term + 1);
  const int proposals = replicator_.proposals();
  TickOnlyWhile(a_, absl::Minutes(3), [&] { return a_.leading(); });
  ASSERT_FALSE(a_.leading());
  EXPECT_EQ(replicator_.refused(), 1);
  EXPECT_EQ(replicator_.proposals(), proposals + 1);
  EXPECT_EQ(StateOf(a_), "pending");  // Its firing state was never committed,
  EXPECT_EQ(StateOf(b_), "pending");
  EXPECT_THAT(am_a_.posted(), IsEmpty());  // nor notified.

  // A lagging view of the lost term does not revive it; nothing more is proposed.
  a_.OnLeadershipChange(lost_term);
  TickOnlyWhile(a_, absl::Minutes(2), [] { return true; });
  EXPECT_FALSE(a_.leading());
  EXPECT_EQ(replicator_.proposals(), proposals + 1);

  ASSERT_TRUE(AdvanceUntil(absl::Minutes(1), [&] { return StateOf(b_) == "firing"; }));
  EXPECT_EQ(ParseApiTime(Alerts(b_)[0]["activeAt"]), active_at);
  EXPECT_EQ(StateOf(a_), "firing");  // Committed by b_.
  EXPECT_EQ(replicator_.refused(), 1);
  Advance(absl::Seconds(3));
  EXPECT_THAT(am_a_.posted(), IsEmpty());
  ASSERT_THAT(am_b_.posted(), SizeIs(1));  // One firing notification for the episode.
  EXPECT_GE(ParseApiTime(am_b_.posted()[0]["startsAt"]), active_at + absl::Minutes(2));
}

// A leadership regained in a later term goes on committing in that term.
TEST_F(AlertingServiceTest, LeadingAgainInALaterTermKeepsCommitting) {
  Elect(&a_);
  ASSERT_OK(a_.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(1), [&] { return StateOf(a_) == "pending"; }));
  const uint64_t term = replicator_.term();
  replicator_.set_term(term + 2);  // Lost and won back in between.
  a_.OnLeadershipChange(term + 2);
  EXPECT_TRUE(a_.leading());
  ASSERT_TRUE(AdvanceUntil(absl::Minutes(3), [&] { return StateOf(b_) == "firing"; }));
  EXPECT_EQ(replicator_.refused(), 0);
}

TEST_F(AlertingServiceTest, PayloadKeysNameTheRuleSetAndEachRule) {
  KeyRecorder recorder;
  AlertingService c(Opts(), &clock_, &querier_, nullptr, &recorder, &am_a_);
  recorder.apply_to = &c;
  c.OnLeadershipChange(1);
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

RuleSet ParseOrDie(const std::string& yaml) {
  absl::StatusOr<RuleSet> set = ParseRuleFiles({{"node.yml", yaml}}, PromQLExprValidator());
  CHECK(set.ok()) << set.status();
  return *std::move(set);
}

TEST(SeedRuleSetTest, FilesSeedOnceAndDoNotReplaceAnAppliedSet) {
  const RuleSet files = ParseOrDie(kRules);
  std::optional<RuleSet> seeded = SeedRuleSet(files, RuleSet{});
  ASSERT_TRUE(seeded.has_value());
  EXPECT_EQ(seeded->groups, files.groups);
  EXPECT_THAT(seeded->seeded, ::testing::ElementsAre(RuleSetContentHash(files)));
  EXPECT_FALSE(SeedRuleSet(files, *seeded).has_value());  // Another node, same files.

  // Applied through the API since (the history is carried over): it stays.
  RuleSet applied = ParseOrDie(absl::StrReplaceAll(kRules, {{"for: 2m", "for: 7m"}}));
  applied.seeded = seeded->seeded;
  EXPECT_FALSE(SeedRuleSet(files, applied).has_value());

  // Files whose content changed apply once; older files do not flip them back.
  const RuleSet changed = ParseOrDie(absl::StrReplaceAll(kRules, {{"severity: page", "s: t"}}));
  std::optional<RuleSet> reseeded = SeedRuleSet(changed, applied);
  ASSERT_TRUE(reseeded.has_value());
  EXPECT_EQ(reseeded->groups, changed.groups);
  EXPECT_THAT(reseeded->seeded, SizeIs(2));
  EXPECT_FALSE(SeedRuleSet(files, *reseeded).has_value());
  EXPECT_FALSE(SeedRuleSet(changed, *reseeded).has_value());
}

TEST(SeedRuleSetTest, HistoryIsBoundedAndSurvivesEncoding) {
  RuleSet committed;
  for (int i = 0; i < 20; ++i) {
    RuleSet files = ParseOrDie(absl::StrReplaceAll(kRules, {{"2m", absl::StrCat(i + 1, "m")}}));
    std::optional<RuleSet> next = SeedRuleSet(files, committed);
    ASSERT_TRUE(next.has_value()) << i;
    ASSERT_OK_AND_ASSIGN(committed, DeserializeRuleSet(SerializeRuleSet(*next)));
    EXPECT_EQ(committed.seeded.back(), RuleSetContentHash(files));
  }
  EXPECT_THAT(committed.seeded, SizeIs(kMaxSeededHashes));
}

// --rule_files across restarts: seeded into an empty cluster; a set applied
// through the API afterwards survives a node restarting with the same files;
// edited files replace it.
TEST_F(AlertingServiceTest, RuleFilesSeedButDoNotReplaceAnAppliedSet) {
  AlertingServiceOptions o = Opts();
  o.rule_files = {std::string(ALERTING_TESTDATA_DIR) + "/rules.yml"};
  FakeReplicator log;
  auto start = [&](const AlertingServiceOptions& opts) {
    auto s = std::make_unique<AlertingService>(opts, &clock_, &querier_, nullptr, &log, &am_a_);
    log.Replay(s.get());
    log.AddMember(s.get());
    EXPECT_OK(s->Start());
    s->Stop();
    return s;
  };
  auto group_names = [](AlertingService& s) {
    const nlohmann::json rules = nlohmann::json::parse(s.RulesJSON());
    std::vector<std::string> names;
    for (const auto& g : rules["groups"]) names.push_back(g["name"]);
    return names;
  };
  std::unique_ptr<AlertingService> first = start(o);
  EXPECT_THAT(group_names(*first), ::testing::ElementsAre("node", "storage"));
  ASSERT_OK(first->ApplyRuleContents({{"api.yml", kRules}}, [](absl::Status) {}));
  EXPECT_THAT(group_names(*first), ::testing::ElementsAre("node"));

  std::unique_ptr<AlertingService> restarted = start(o);
  EXPECT_THAT(group_names(*restarted), ::testing::ElementsAre("node"));
  EXPECT_EQ(nlohmann::json::parse(restarted->RulesJSON())["groups"][0]["file"], "api.yml");

  const std::string edited = ::testing::TempDir() + "/edited_rules.yml";
  {
    std::ofstream out(edited);
    out << absl::StrReplaceAll(kRules, {{"name: node", "name: edited"}});
  }
  o.rule_files = {edited};
  std::unique_ptr<AlertingService> reconfigured = start(o);
  EXPECT_THAT(group_names(*reconfigured), ::testing::ElementsAre("edited"));
  EXPECT_THAT(group_names(*first), ::testing::ElementsAre("edited"));
  std::remove(edited.c_str());
}

// A querier whose queries wait until released: a query held by a slow replica.
class BlockingQuerier : public RuleQuerier {
 public:
  absl::StatusOr<std::vector<Series>> Query(absl::string_view, absl::Time) override {
    absl::MutexLock l(&mu_);
    ++entered_;
    mu_.Await(absl::Condition(&released_));
    return std::vector<Series>{};
  }
  void WaitEntered() {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(+[](int* n) { return *n > 0; }, &entered_));
  }
  void Release() {
    absl::MutexLock l(&mu_);
    released_ = true;
  }

 private:
  absl::Mutex mu_;
  int entered_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

// The leader evaluates under its lock; /api/v1/alerts, /api/v1/rules and
// /metrics meanwhile serve the state as of the evaluation's start instead of
// waiting for its queries.
TEST_F(AlertingServiceTest, ReadsDoNotWaitForARunningEvaluation) {
  BlockingQuerier querier;
  FakeReplicator log;
  AlertingService s(Opts(), &clock_, &querier, nullptr, &log, &am_a_);
  log.AddMember(&s);
  metrics::Registry registry;
  s.ExportMetrics(&registry);
  s.OnLeadershipChange(log.term());
  ASSERT_OK(s.ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  const std::string rules = s.RulesJSON();
  const std::string alerts = s.AlertsJSON();
  clock_.Advance(absl::Minutes(1));  // The group is due.
  std::thread tick([&] { s.Tick(); });
  querier.WaitEntered();
  // Reads from another thread, so that a regression fails instead of hanging.
  absl::Notification read;
  std::string rules_during, alerts_during;
  std::thread reader([&] {
    rules_during = s.RulesJSON();
    alerts_during = s.AlertsJSON();
    registry.Expose();
    read.Notify();
  });
  EXPECT_TRUE(read.WaitForNotificationWithTimeout(absl::Seconds(60)));
  querier.Release();
  tick.join();
  reader.join();
  EXPECT_EQ(rules_during, rules);
  EXPECT_EQ(alerts_during, alerts);
  // Once the evaluation ended, reads see it.
  EXPECT_NE(s.RulesJSON(), rules);
  EXPECT_THAT(nlohmann::json::parse(s.RulesJSON())["groups"][0]["rules"][0]["health"], "ok");
}

}  // namespace
}  // namespace vigil::alerting
