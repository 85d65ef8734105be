#include "alerting/evaluator.h"

#include <algorithm>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::alerting {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::vigil::testing::StatusIs;
using Kind = AlertTransition::Kind;

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

Rule InstanceDown(absl::Duration for_duration = absl::Minutes(5)) {
  Rule r;
  r.alert = "InstanceDown";
  r.expr = "up == 0";
  r.for_duration = for_duration;
  r.labels = {{"severity", "page"}};
  r.annotations = {{"summary", "{{ $labels.instance }} down, value {{ $value }}"}};
  return r;
}

Series Up(absl::string_view instance, double v = 0) {
  return {Labels{{"__name__", "up"}, {"instance", instance}, {"job", "node"}}, {{0, v}}};
}

Labels AlertLabels(absl::string_view instance) {
  return Labels{{"alertname", "InstanceDown"}, {"instance", instance}, {"job", "node"},
                {"severity", "page"}};
}

std::vector<Kind> Kinds(const AlertEvalResult& r) {
  std::vector<Kind> k;
  for (const auto& t : r.transitions) k.push_back(t.kind);
  return k;
}

// Drives one rule through evaluations like the scheduler would, keeping the state.
class Driver {
 public:
  explicit Driver(Rule rule, EvalContext ctx = {}) : rule_(std::move(rule)), ctx_(std::move(ctx)) {}
  AlertEvalResult Eval(absl::Time now, std::vector<Series> vector) {
    AlertEvalResult r = EvaluateAlertingRule(rule_, state_, vector, now, ctx_);
    state_ = r.state;
    if (r.needs_commit) committed_ = SerializeRuleState({"g", 0, rule_.alert, now, state_});
    for (const auto& t : r.transitions) {
      if (t.kind == Kind::kFiring) ++firing_transitions_;
    }
    return r;
  }
  const Alert& alert(absl::string_view instance) const {
    return state_.alerts.at(AlertLabels(instance));
  }
  RuleState& state() { return state_; }
  const std::string& committed() const { return committed_; }
  int firing_transitions() const { return firing_transitions_; }
  // A new leader: state comes from the last committed bytes only.
  void Restore(const std::string& committed) {
    committed_ = committed;
    auto rec = DeserializeRuleState(committed_);
    ASSERT_TRUE(rec.ok()) << rec.status();
    state_ = rec->state;
  }

 private:
  Rule rule_;
  EvalContext ctx_;
  RuleState state_;
  std::string committed_;
  int firing_transitions_ = 0;
};

TEST(EvaluatorTest, PendingThenFiringAfterFor) {
  Driver d(InstanceDown());
  AlertEvalResult r = d.Eval(kT0, {Up("a")});
  ASSERT_OK(r.status);
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kPending));
  EXPECT_TRUE(r.needs_commit);
  EXPECT_EQ(d.alert("a").state, AlertState::kPending);
  EXPECT_EQ(d.alert("a").active_at, kT0);

  for (int m = 1; m < 5; ++m) {
    r = d.Eval(kT0 + absl::Minutes(m), {Up("a")});
    EXPECT_THAT(Kinds(r), IsEmpty()) << m;
    EXPECT_FALSE(r.needs_commit) << "no commit while nothing but the value changes";
    EXPECT_EQ(d.alert("a").state, AlertState::kPending);
  }
  r = d.Eval(kT0 + absl::Minutes(5), {Up("a")});
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kFiring));
  EXPECT_TRUE(r.needs_commit);
  EXPECT_EQ(d.alert("a").state, AlertState::kFiring);
  EXPECT_EQ(d.alert("a").fired_at, kT0 + absl::Minutes(5));
  EXPECT_EQ(d.alert("a").active_at, kT0);
}

TEST(EvaluatorTest, ZeroForFiresOnFirstEvaluation) {
  Driver d(InstanceDown(absl::ZeroDuration()));
  AlertEvalResult r = d.Eval(kT0, {Up("a")});
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kPending, Kind::kFiring));
  EXPECT_EQ(d.alert("a").state, AlertState::kFiring);
}

TEST(EvaluatorTest, PendingAlertIsDroppedWhenConditionClears) {
  Driver d(InstanceDown());
  d.Eval(kT0, {Up("a")});
  AlertEvalResult r = d.Eval(kT0 + absl::Minutes(1), {});
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kPendingCleared));
  EXPECT_TRUE(r.needs_commit);
  EXPECT_TRUE(d.state().alerts.empty());
  EXPECT_THAT(r.series, IsEmpty());
}

TEST(EvaluatorTest, ResolvedAlertIsKeptForRetentionThenForgotten) {
  Driver d(InstanceDown(absl::ZeroDuration()));
  d.Eval(kT0, {Up("a")});
  absl::Time resolved = kT0 + absl::Minutes(1);
  AlertEvalResult r = d.Eval(resolved, {});
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kResolved));
  EXPECT_EQ(d.alert("a").state, AlertState::kInactive);
  EXPECT_EQ(d.alert("a").resolved_at, resolved);
  EXPECT_THAT(r.series, IsEmpty()) << "inactive alerts have no ALERTS series";

  r = d.Eval(resolved + kResolvedRetention, {});
  EXPECT_THAT(Kinds(r), IsEmpty());
  EXPECT_EQ(d.state().alerts.size(), 1);
  r = d.Eval(resolved + kResolvedRetention + absl::Seconds(1), {});
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kForgotten));
  EXPECT_TRUE(r.needs_commit);
  EXPECT_TRUE(d.state().alerts.empty());
}

TEST(EvaluatorTest, ResolvedAlertThatReturnsStartsANewEpisode) {
  Driver d(InstanceDown(absl::Minutes(1)));
  d.Eval(kT0, {Up("a")});
  d.Eval(kT0 + absl::Minutes(1), {Up("a")});
  d.Eval(kT0 + absl::Minutes(2), {});
  ASSERT_EQ(d.alert("a").state, AlertState::kInactive);
  AlertEvalResult r = d.Eval(kT0 + absl::Minutes(3), {Up("a")});
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kPending));
  EXPECT_EQ(d.alert("a").active_at, kT0 + absl::Minutes(3));
  EXPECT_FALSE(IsSet(d.alert("a").resolved_at));
  EXPECT_FALSE(IsSet(d.alert("a").fired_at));
}

TEST(EvaluatorTest, FlappingBeforeForRestartsTheClock) {
  Driver d(InstanceDown());
  d.Eval(kT0, {Up("a")});
  d.Eval(kT0 + absl::Minutes(4), {Up("a")});
  d.Eval(kT0 + absl::Minutes(5) - absl::Seconds(1), {});  // Cleared just before `for`.
  AlertEvalResult r = d.Eval(kT0 + absl::Minutes(5), {Up("a")});
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kPending));
  EXPECT_EQ(d.alert("a").active_at, kT0 + absl::Minutes(5));
  r = d.Eval(kT0 + absl::Minutes(9), {Up("a")});
  EXPECT_EQ(d.alert("a").state, AlertState::kPending);
  r = d.Eval(kT0 + absl::Minutes(10), {Up("a")});
  EXPECT_EQ(d.alert("a").state, AlertState::kFiring);
}

TEST(EvaluatorTest, KeepFiringForHoldsAFiringAlert) {
  Rule rule = InstanceDown(absl::ZeroDuration());
  rule.keep_firing_for = absl::Minutes(2);
  Driver d(rule);
  d.Eval(kT0, {Up("a")});
  AlertEvalResult r = d.Eval(kT0 + absl::Minutes(1), {});
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kKeepFiring));
  EXPECT_TRUE(r.needs_commit) << "keep_firing_since must survive a failover";
  EXPECT_EQ(d.alert("a").state, AlertState::kFiring);
  EXPECT_EQ(d.alert("a").keep_firing_since, kT0 + absl::Minutes(1));
  EXPECT_EQ(r.series.size(), 2) << "a kept alert still writes ALERTS";

  r = d.Eval(kT0 + absl::Minutes(2), {Up("a")});  // Condition back: reset.
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kKeepFiringReset));
  EXPECT_FALSE(IsSet(d.alert("a").keep_firing_since));

  d.Eval(kT0 + absl::Minutes(3), {});
  r = d.Eval(kT0 + absl::Minutes(4) + absl::Seconds(59), {});
  EXPECT_THAT(Kinds(r), IsEmpty());
  EXPECT_EQ(d.alert("a").state, AlertState::kFiring);
  r = d.Eval(kT0 + absl::Minutes(5), {});  // keep_firing_for elapsed.
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kResolved));
  EXPECT_EQ(d.alert("a").state, AlertState::kInactive);
  EXPECT_EQ(d.alert("a").resolved_at, kT0 + absl::Minutes(5));
  EXPECT_EQ(d.firing_transitions(), 1);
}

TEST(EvaluatorTest, LabelChangeMakesANewAlert) {
  Rule rule = InstanceDown(absl::ZeroDuration());
  rule.labels = {{"severity", "{{ if gt $value 10.0 }}page{{ else }}ticket{{ end }}"}};
  Driver d(rule);
  d.Eval(kT0, {Up("a", 5)});
  Labels ticket{{"alertname", "InstanceDown"}, {"instance", "a"}, {"job", "node"},
                {"severity", "ticket"}};
  Labels page = ticket;
  page.Set("severity", "page");
  ASSERT_TRUE(d.state().alerts.count(ticket));
  AlertEvalResult r = d.Eval(kT0 + absl::Minutes(1), {Up("a", 50)});
  ASSERT_EQ(r.transitions.size(), 3);
  EXPECT_EQ(r.transitions[0].kind, Kind::kPending);
  EXPECT_EQ(r.transitions[0].labels, page);
  EXPECT_EQ(d.state().alerts.at(page).state, AlertState::kFiring);
  EXPECT_EQ(d.state().alerts.at(ticket).state, AlertState::kInactive);
  EXPECT_THAT(Kinds(r), ::testing::UnorderedElementsAre(Kind::kPending, Kind::kFiring,
                                                         Kind::kResolved));
}

TEST(EvaluatorTest, LimitExceededFailsAndClearsAlerts) {
  EvalContext ctx;
  ctx.limit = 2;
  Driver d(InstanceDown(), ctx);
  ASSERT_OK(d.Eval(kT0, {Up("a"), Up("b")}).status);
  AlertEvalResult r = d.Eval(kT0 + absl::Minutes(1), {Up("a"), Up("b"), Up("c")});
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kResourceExhausted,
                                 HasSubstr("exceeded limit of 2 with 3 alerts")));
  EXPECT_TRUE(d.state().alerts.empty());
  EXPECT_THAT(r.series, IsEmpty());
  EXPECT_TRUE(r.needs_commit);
}

TEST(EvaluatorTest, DuplicateLabelSetsFailWithoutChangingState) {
  Rule rule = InstanceDown();
  Driver d(rule);
  d.Eval(kT0, {Up("a")});
  RuleState before = d.state();
  // Same labels except __name__, which alerts drop.
  Series other = Up("a");
  other.labels.Set("__name__", "other");
  AlertEvalResult r = d.Eval(kT0 + absl::Minutes(1), {Up("a"), other});
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr("same labelset after applying alert labels")));
  EXPECT_EQ(d.state(), before);
  EXPECT_FALSE(r.needs_commit);
}

TEST(EvaluatorTest, TemplatesSeeLabelsValueAndExternalLabels) {
  Rule rule = InstanceDown(absl::ZeroDuration());
  rule.labels = {{"short", "{{ $labels.instance | stripPort }}"}, {"empty", "{{ $labels.nope }}"}};
  rule.annotations = {{"broken", "{{ .Nope }}"},
                      {"cluster", "{{ $externalLabels.cluster }} {{ .ExternalURL }}"},
                      {"summary", "{{ $labels.instance }} at {{ $value | humanize }}"}};
  EvalContext ctx;
  ctx.external_labels = {{"cluster", "eu1"}};
  ctx.external_url = "http://vigil:9090";
  Driver d(rule, ctx);
  AlertEvalResult r = d.Eval(kT0, {Up("host:9100", 1234567)});
  ASSERT_EQ(d.state().alerts.size(), 1);
  const Alert& a = d.state().alerts.begin()->second;
  EXPECT_EQ(a.labels, (Labels{{"alertname", "InstanceDown"}, {"instance", "host:9100"},
                              {"job", "node"}, {"short", "host"}}))
      << "an empty expansion removes the label";
  EXPECT_THAT(a.annotations[0].second, HasSubstr("<error expanding template: "));
  EXPECT_THAT(a.annotations[0].second, HasSubstr("can't evaluate field Nope"));
  EXPECT_EQ(a.annotations[1].second, "eu1 http://vigil:9090");
  EXPECT_EQ(a.annotations[2].second, "host:9100 at 1.235M");
  EXPECT_EQ(a.last_value, 1234567);
}

TEST(EvaluatorTest, AlertsSeriesLikePrometheus) {
  Rule rule = InstanceDown();
  rule.labels.emplace_back("vanishing", "{{ $labels.nope }}");
  Driver d(rule);
  AlertEvalResult r = d.Eval(kT0 + absl::Milliseconds(250), {Up("a")});
  int64_t t = absl::ToUnixMillis(kT0) + 250;
  ASSERT_EQ(r.series.size(), 2);
  // Prometheus builds these from the rule's raw labels overlaid with the alert's,
  // so a label whose template expands to "" keeps its template text here.
  EXPECT_EQ(r.series[0].labels,
            (Labels{{"__name__", "ALERTS"}, {"alertname", "InstanceDown"}, {"alertstate", "pending"},
                    {"instance", "a"}, {"job", "node"}, {"severity", "page"},
                    {"vanishing", "{{ $labels.nope }}"}}));
  EXPECT_EQ(r.series[0].samples.size(), 1);
  EXPECT_EQ(r.series[0].samples[0].t, t);
  EXPECT_EQ(r.series[0].samples[0].v, 1);
  EXPECT_EQ(r.series[1].labels,
            (Labels{{"__name__", "ALERTS_FOR_STATE"}, {"alertname", "InstanceDown"},
                    {"instance", "a"}, {"job", "node"}, {"severity", "page"},
                    {"vanishing", "{{ $labels.nope }}"}}));
  EXPECT_EQ(r.series[1].samples[0].t, t);
  EXPECT_EQ(r.series[1].samples[0].v, 1'700'000'000) << "activeAt in whole seconds";

  r = d.Eval(kT0 + absl::Milliseconds(250) + absl::Minutes(5), {Up("a")});
  EXPECT_EQ(r.series[0].labels.Get("alertstate"), "firing");
  EXPECT_EQ(r.series[1].samples[0].v, 1'700'000'000);
}

TEST(EvaluatorRestoreTest, PendingForFourOfFiveMinutesFiresAboutOneMinuteAfterRestore) {
  Driver old_leader(InstanceDown());
  for (int s = 0; s <= 240; s += 15) old_leader.Eval(kT0 + absl::Seconds(s), {Up("a")});
  ASSERT_EQ(old_leader.alert("a").state, AlertState::kPending);

  // The new leader only has what was committed (the pending transition at kT0).
  Driver new_leader(InstanceDown());
  new_leader.Restore(old_leader.committed());
  EXPECT_EQ(new_leader.alert("a").active_at, kT0);

  absl::Time failover = kT0 + absl::Seconds(250);
  AlertEvalResult r = new_leader.Eval(failover, {Up("a")});
  EXPECT_THAT(Kinds(r), IsEmpty());
  EXPECT_EQ(new_leader.alert("a").state, AlertState::kPending);
  r = new_leader.Eval(kT0 + absl::Seconds(285), {Up("a")});
  EXPECT_EQ(new_leader.alert("a").state, AlertState::kPending);
  r = new_leader.Eval(kT0 + absl::Seconds(300), {Up("a")});
  EXPECT_THAT(Kinds(r), ElementsAre(Kind::kFiring));
  EXPECT_EQ(new_leader.alert("a").fired_at, kT0 + absl::Minutes(5))
      << "fires at activeAt + for, not failover + for";
}

TEST(EvaluatorRestoreTest, FiringStaysFiringWithOneFiringNotificationPerEpisode) {
  const absl::Duration kResend = absl::Minutes(1), kInterval = absl::Seconds(15);
  Driver old_leader(InstanceDown());
  std::vector<Alert> sent;
  for (int s = 0; s <= 360; s += 15) {
    absl::Time now = kT0 + absl::Seconds(s);
    old_leader.Eval(now, {Up("a")});
    for (Alert& a : SelectAlertsToSend(&old_leader.state(), now, kResend, kInterval)) sent.push_back(a);
  }
  ASSERT_EQ(old_leader.alert("a").state, AlertState::kFiring);
  ASSERT_FALSE(sent.empty());
  absl::Time fired_at = old_leader.alert("a").fired_at;

  Driver new_leader(InstanceDown());
  new_leader.Restore(old_leader.committed());
  for (int s = 375; s <= 600; s += 15) {
    absl::Time now = kT0 + absl::Seconds(s);
    AlertEvalResult r = new_leader.Eval(now, {Up("a")});
    EXPECT_THAT(Kinds(r), IsEmpty()) << "still firing after the failover";
    for (Alert& a : SelectAlertsToSend(&new_leader.state(), now, kResend, kInterval)) sent.push_back(a);
  }
  EXPECT_EQ(old_leader.firing_transitions() + new_leader.firing_transitions(), 1);
  // Every notification of the episode carries the same identity and start, so
  // Alertmanager sees one alert and notifies once.
  for (const Alert& a : sent) {
    EXPECT_EQ(a.labels, AlertLabels("a"));
    EXPECT_EQ(a.state, AlertState::kFiring);
    EXPECT_EQ(a.fired_at, fired_at);
  }
}

TEST(EvaluatorStateTest, SerializationIsDeterministicAndRoundTrips) {
  Driver d(InstanceDown(absl::Minutes(1)));
  d.Eval(kT0, {Up("b"), Up("a"), Up("c")});
  d.Eval(kT0 + absl::Minutes(1), {Up("a"), Up("c")});
  SelectAlertsToSend(&d.state(), kT0 + absl::Minutes(1), absl::Minutes(1), absl::Seconds(15));
  absl::Time ts = kT0 + absl::Minutes(1);
  std::string bytes = SerializeRuleState({"f;g", 3, "InstanceDown", ts, d.state()});
  ASSERT_OK_AND_ASSIGN(RuleStateRecord rec, DeserializeRuleState(bytes));
  EXPECT_EQ(rec.group_key, "f;g");
  EXPECT_EQ(rec.rule_index, 3);
  EXPECT_EQ(rec.rule_name, "InstanceDown");
  EXPECT_EQ(rec.eval_ts, ts);
  EXPECT_EQ(rec.state, d.state());
  EXPECT_EQ(SerializeRuleState(rec), bytes);

  // Built in another order, the same state encodes to the same bytes.
  Driver e(InstanceDown(absl::Minutes(1)));
  e.Eval(kT0, {Up("c"), Up("a"), Up("b")});
  e.Eval(kT0 + absl::Minutes(1), {Up("c"), Up("a")});
  SelectAlertsToSend(&e.state(), kT0 + absl::Minutes(1), absl::Minutes(1), absl::Seconds(15));
  EXPECT_EQ(SerializeRuleState({"f;g", 3, "InstanceDown", ts, e.state()}), bytes);
  EXPECT_THAT(DeserializeRuleState("garbage\xff"), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(SelectAlertsToSendTest, ResendDelayAndValidUntil) {
  Driver d(InstanceDown(absl::ZeroDuration()));
  const absl::Duration kResend = absl::Minutes(1), kInterval = absl::Minutes(2);
  d.Eval(kT0, {Up("a"), Up("b")});
  std::vector<Alert> s = SelectAlertsToSend(&d.state(), kT0, kResend, kInterval);
  ASSERT_EQ(s.size(), 2);
  EXPECT_EQ(s[0].valid_until, kT0 + 4 * kInterval) << "4 * max(resend delay, interval)";
  EXPECT_THAT(SelectAlertsToSend(&d.state(), kT0 + absl::Seconds(30), kResend, kInterval), IsEmpty());
  EXPECT_THAT(SelectAlertsToSend(&d.state(), kT0 + absl::Minutes(1), kResend, kInterval), IsEmpty())
      << "strictly after lastSentAt + resend delay";
  EXPECT_EQ(SelectAlertsToSend(&d.state(), kT0 + absl::Seconds(61), kResend, kInterval).size(), 2);

  // Resolution is sent at once, even inside the resend delay.
  d.Eval(kT0 + absl::Seconds(70), {Up("a")});
  s = SelectAlertsToSend(&d.state(), kT0 + absl::Seconds(70), kResend, kInterval);
  ASSERT_EQ(s.size(), 1);
  EXPECT_EQ(s[0].labels.Get("instance"), "b");
  EXPECT_EQ(s[0].state, AlertState::kInactive);

  // Pending alerts are never sent.
  Driver p(InstanceDown());
  p.Eval(kT0, {Up("a")});
  EXPECT_THAT(SelectAlertsToSend(&p.state(), kT0, kResend, kInterval), IsEmpty());
}

}  // namespace
}  // namespace vigil::alerting
