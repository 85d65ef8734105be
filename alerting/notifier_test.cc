#include "alerting/notifier.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "glog/logging.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace vigil::alerting {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::vigil::testing::StatusIs;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

Alert FiringAlert(absl::string_view instance) {
  Alert a;
  a.labels = Labels{{"alertname", "InstanceDown"}, {"instance", instance}};
  a.annotations = {{"summary", absl::StrCat(instance, " down")}};
  a.state = AlertState::kFiring;
  a.active_at = kT0;
  a.fired_at = kT0 + absl::Minutes(5);
  a.last_sent_at = kT0 + absl::Minutes(6);
  a.valid_until = kT0 + absl::Minutes(10);
  return a;
}

// Records POSTs; answers from a script (OK once the script runs out).
class FakeClient : public AlertmanagerClient {
 public:
  absl::Status Post(const std::string& url, const std::string& json) override {
    absl::MutexLock l(&mu_);
    posts.emplace_back(url, json);
    auto& script = scripts_[url];
    if (script.empty()) return absl::OkStatus();
    absl::Status s = script.front();
    script.pop_front();
    return s;
  }
  void Script(const std::string& url, std::vector<absl::Status> answers) {
    absl::MutexLock l(&mu_);
    for (auto& a : answers) scripts_[url].push_back(std::move(a));
  }
  int PostsTo(const std::string& url) {
    absl::MutexLock l(&mu_);
    int n = 0;
    for (const auto& [u, j] : posts) n += u == url;
    return n;
  }
  std::vector<std::pair<std::string, std::string>> posts;

 private:
  absl::Mutex mu_;
  std::map<std::string, std::deque<absl::Status>> scripts_;
};

TEST(NotifierTest, ConvertsAlertsLikePrometheus) {
  Alert a = FiringAlert("h1");
  NotifierAlert n = ToNotifierAlert(a, "up == 0", "http://vigil:9090");
  EXPECT_EQ(n.labels, a.labels);
  EXPECT_EQ(n.starts_at, a.fired_at);
  EXPECT_EQ(n.ends_at, a.valid_until) << "firing: endsAt is validUntil";
  EXPECT_EQ(n.generator_url, "http://vigil:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
  a.state = AlertState::kInactive;
  a.resolved_at = kT0 + absl::Minutes(8);
  EXPECT_EQ(ToNotifierAlert(a, "up == 0", "").ends_at, a.resolved_at) << "resolved: endsAt is resolvedAt";
}

TEST(NotifierTest, EncodesAlertmanagerV2JSON) {
  NotifierAlert n = ToNotifierAlert(FiringAlert("h1"), "up", "http://v");
  n.starts_at += absl::Milliseconds(7);
  EXPECT_EQ(EncodeAlertsJSON({n}),
            "[{\"annotations\":{\"summary\":\"h1 down\"},\"endsAt\":\"2023-11-14T22:23:20.000Z\","
            "\"generatorURL\":\"http://v/graph?g0.expr=up&g0.tab=1\","
            "\"labels\":{\"alertname\":\"InstanceDown\",\"instance\":\"h1\"},"
            "\"startsAt\":\"2023-11-14T22:18:20.007Z\"}]");
  n.starts_at = absl::InfinitePast();
  EXPECT_THAT(EncodeAlertsJSON({n}), ::testing::Not(HasSubstr("startsAt")));
  EXPECT_EQ(EncodeAlertsJSON({}), "[]");
}

NotifierOptions TwoAlertmanagers() {
  NotifierOptions o;
  o.alertmanager_urls = {"http://am1:9093", "http://am2:9093/"};
  o.external_labels = {{"cluster", "eu1"}, {"instance", "never-overrides"}};
  o.external_url = "http://vigil:9090";
  return o;
}

nlohmann::json Body(const std::string& json) { return nlohmann::json::parse(json); }

TEST(NotifierTest, AddsMissingExternalLabelsAndPostsToEveryAlertmanager) {
  FakeClock clock(kT0);
  FakeClient client;
  Notifier n(&clock, &client, TwoAlertmanagers());
  n.Send("up == 0", {FiringAlert("h1")});
  EXPECT_EQ(n.NextPump(), kT0);
  n.Pump();
  ASSERT_THAT(client.posts, SizeIs(2));
  EXPECT_EQ(client.posts[0].first, "http://am1:9093/api/v2/alerts");
  EXPECT_EQ(client.posts[1].first, "http://am2:9093/api/v2/alerts");
  nlohmann::json body = Body(client.posts[0].second);
  ASSERT_EQ(body.size(), 1);
  EXPECT_EQ(body[0]["labels"]["cluster"], "eu1");
  EXPECT_EQ(body[0]["labels"]["instance"], "h1");
  EXPECT_EQ(body[0]["generatorURL"], "http://vigil:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
  EXPECT_EQ(n.metrics().sent.at("http://am1:9093"), 1);
  EXPECT_EQ(n.NextPump(), absl::InfiniteFuture());
}

TEST(NotifierTest, SendsInBatchesOfAtMost64) {
  FakeClock clock(kT0);
  FakeClient client;
  NotifierOptions o = TwoAlertmanagers();
  o.alertmanager_urls.pop_back();
  Notifier n(&clock, &client, o);
  std::vector<Alert> alerts;
  for (int i = 0; i < 100; ++i) alerts.push_back(FiringAlert(absl::StrCat("h", i)));
  n.Send("up == 0", alerts);
  EXPECT_EQ(n.metrics().queue_length, 100);
  n.Pump();
  n.Pump();
  n.Pump();
  ASSERT_THAT(client.posts, SizeIs(2));
  EXPECT_EQ(Body(client.posts[0].second).size(), 64);
  EXPECT_EQ(Body(client.posts[1].second).size(), 36);
  EXPECT_EQ(Body(client.posts[1].second)[35]["labels"]["instance"], "h99");
  EXPECT_EQ(n.metrics().queue_length, 0);
}

TEST(NotifierTest, FullQueueDropsTheOldestAndCountsThem) {
  FakeClock clock(kT0);
  FakeClient client;
  NotifierOptions o = TwoAlertmanagers();
  o.queue_capacity = 5;
  Notifier n(&clock, &client, o);
  for (int i = 0; i < 8; ++i) n.Send("up", {FiringAlert(absl::StrCat("h", i))});
  NotifierMetrics m = n.metrics();
  EXPECT_EQ(m.dropped, 3);
  EXPECT_EQ(m.queue_length, 5);
  n.Pump();
  nlohmann::json body = Body(client.posts[0].second);
  ASSERT_EQ(body.size(), 5);
  EXPECT_EQ(body[0]["labels"]["instance"], "h3");
  EXPECT_EQ(body[4]["labels"]["instance"], "h7");
}

TEST(NotifierTest, RetriesWithExponentialBackoff) {
  FakeClock clock(kT0);
  FakeClient client;
  NotifierOptions o = TwoAlertmanagers();
  o.max_attempts = 4;
  Notifier n(&clock, &client, o);
  client.Script("http://am1:9093/api/v2/alerts",
                {absl::UnavailableError("refused"), absl::UnavailableError("HTTP 503")});
  n.Send("up", {FiringAlert("h1")});
  n.Send("up", {FiringAlert("h2")});
  n.Pump();
  EXPECT_EQ(n.metrics().sent.at("http://am2:9093/"), 2);
  EXPECT_EQ(n.NextPump(), kT0 + absl::Milliseconds(500));
  n.Pump();  // Still backing off: nothing is posted.
  EXPECT_EQ(client.PostsTo("http://am1:9093/api/v2/alerts"), 1);

  clock.Advance(absl::Milliseconds(500));
  n.Pump();
  EXPECT_EQ(client.PostsTo("http://am1:9093/api/v2/alerts"), 2);
  EXPECT_EQ(n.NextPump(), kT0 + absl::Milliseconds(1500)) << "backoff doubled";
  clock.Advance(absl::Seconds(1));
  n.Pump();
  EXPECT_EQ(client.PostsTo("http://am1:9093/api/v2/alerts"), 3);
  NotifierMetrics m = n.metrics();
  EXPECT_EQ(m.sent.at("http://am1:9093"), 2);
  EXPECT_EQ(m.errors.count("http://am1:9093"), 0);
  EXPECT_EQ(client.PostsTo("http://am2:9093/api/v2/alerts"), 1) << "am2 took it the first time";
}

TEST(NotifierTest, GivesUpAfterMaxAttemptsAndOnClientErrors) {
  FakeClock clock(kT0);
  FakeClient client;
  NotifierOptions o = TwoAlertmanagers();
  o.max_attempts = 2;
  Notifier n(&clock, &client, o);
  client.Script("http://am1:9093/api/v2/alerts",
                {absl::UnavailableError("down"), absl::UnavailableError("down")});
  client.Script("http://am2:9093/api/v2/alerts", {absl::InvalidArgumentError("HTTP 400")});
  n.Send("up", {FiringAlert("h1")});
  n.Pump();
  EXPECT_EQ(n.metrics().errors.at("http://am2:9093/"), 1) << "4xx is not retried";
  clock.Advance(absl::Seconds(1));
  n.Pump();
  EXPECT_EQ(n.metrics().errors.at("http://am1:9093"), 1);
  EXPECT_EQ(n.NextPump(), absl::InfiniteFuture());
  EXPECT_EQ(client.posts.size(), 3);
}

// The rule manager feeding the notifier: resend delay and endsAt as Prometheus.
TEST(NotifierTest, RuleManagerNotificationsCarryValidUntilAndResolution) {
  class Querier : public RuleQuerier {
   public:
    absl::StatusOr<std::vector<Series>> Query(absl::string_view, absl::Time) override {
      return result;
    }
    std::vector<Series> result;
  } querier;
  querier.result = {{Labels{{"instance", "h1"}}, {{0, 0}}}};
  FakeClock clock(kT0);
  FakeClient client;
  NotifierOptions o = TwoAlertmanagers();
  o.alertmanager_urls.pop_back();
  Notifier notifier(&clock, &client, o);
  RuleManagerOptions mo;
  mo.resend_delay = absl::Minutes(1);
  RuleManager manager(&clock, &querier, nullptr, &notifier, mo);
  RuleGroup g;
  g.name = "g";
  g.file = "f";
  g.interval = absl::Seconds(30);
  Rule r;
  r.alert = "A";
  r.expr = "up == 0";
  g.rules = {r};
  manager.SetRules(RuleSet{{g}});

  absl::Time ts = manager.scheduler().NextDue();
  clock.Set(ts);
  manager.RunDue();
  notifier.Pump();
  ASSERT_THAT(client.posts, SizeIs(1));
  nlohmann::json fired = Body(client.posts[0].second)[0];
  EXPECT_EQ(fired["startsAt"], absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", ts, absl::UTCTimeZone()));
  EXPECT_EQ(fired["endsAt"], absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", ts + absl::Minutes(4),
                                              absl::UTCTimeZone()))
      << "now + 4 * max(resend delay, interval)";

  clock.Set(ts + absl::Seconds(30));  // Within the resend delay: nothing new.
  manager.RunDue();
  notifier.Pump();
  EXPECT_THAT(client.posts, SizeIs(1));

  querier.result.clear();
  clock.Set(ts + absl::Seconds(60));
  manager.RunDue();
  notifier.Pump();
  ASSERT_THAT(client.posts, SizeIs(2));
  nlohmann::json resolved = Body(client.posts[1].second)[0];
  EXPECT_EQ(resolved["endsAt"], absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", ts + absl::Seconds(60),
                                                 absl::UTCTimeZone()));
  EXPECT_EQ(resolved["startsAt"], fired["startsAt"]);
}

// An Alertmanager stand-in on a free loopback port.
class FakeAlertmanager {
 public:
  FakeAlertmanager() {
    server_.Post("/api/v2/alerts", [this](const httplib::Request& req, httplib::Response& res) {
      absl::MutexLock l(&mu_);
      bodies_.push_back(req.body);
      res.status = status_;
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop runs would not stop it: wait until it runs.
    absl::Time deadline = RealClock::Get()->Now() + absl::Seconds(60);
    while (!server_.is_running() && RealClock::Get()->Now() < deadline) std::this_thread::yield();
    CHECK(server_.is_running()) << "test HTTP server did not start";
  }
  ~FakeAlertmanager() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  void set_status(int s) {
    absl::MutexLock l(&mu_);
    status_ = s;
  }
  // Waits (up to a generous timeout) for `n` bodies.
  std::vector<std::string> WaitForBodies(size_t n) {
    absl::MutexLock l(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return bodies_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(60));
    return bodies_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<std::string> bodies_ ABSL_GUARDED_BY(mu_);
  int status_ ABSL_GUARDED_BY(mu_) = 200;
};

TEST(HttpAlertmanagerClientTest, PostsToARealServer) {
  FakeAlertmanager am;
  HttpAlertmanagerClient client(absl::Seconds(30));
  std::string json = EncodeAlertsJSON({ToNotifierAlert(FiringAlert("h1"), "up", "")});
  ASSERT_OK(client.Post(am.url() + "/api/v2/alerts", json));
  EXPECT_THAT(am.WaitForBodies(1), ElementsAre(json));

  am.set_status(400);
  EXPECT_THAT(client.Post(am.url() + "/api/v2/alerts", json),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("HTTP 400")));
  am.set_status(503);
  EXPECT_THAT(client.Post(am.url() + "/api/v2/alerts", json),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("HTTP 503")));
  EXPECT_THAT(client.Post("https://127.0.0.1:1/api/v2/alerts", json),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HttpAlertmanagerClientTest, ConnectionRefusedIsUnavailable) {
  std::string url;
  {
    FakeAlertmanager am;
    url = am.url();
  }  // Stopped: nothing listens on the port any more.
  HttpAlertmanagerClient client(absl::Seconds(30));
  EXPECT_THAT(client.Post(url + "/api/v2/alerts", "[]"), StatusIs(absl::StatusCode::kUnavailable));
}

TEST(NotifierRunnerTest, DeliversThroughTheRealClientOnItsOwnThread) {
  FakeAlertmanager am;
  HttpAlertmanagerClient client(absl::Seconds(30));
  NotifierOptions o;
  o.alertmanager_urls = {am.url()};
  Notifier notifier(RealClock::Get(), &client, o);
  {
    NotifierRunner runner(&notifier);
    notifier.Send("up", {FiringAlert("h1")});
    notifier.Send("up", {FiringAlert("h2")});
    std::vector<std::string> bodies = am.WaitForBodies(1);
    size_t alerts = 0;
    for (const std::string& b : bodies) alerts += Body(b).size();
    if (alerts < 2) bodies = am.WaitForBodies(2);
  }
  EXPECT_EQ(notifier.metrics().sent.at(am.url()), 2);
}

}  // namespace
}  // namespace vigil::alerting
