#include "alerting/evaluator.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "alerting/alerting.pb.h"
#include "alerting/encoding.h"
#include "glog/logging.h"

namespace vigil::alerting {

absl::string_view AlertStateName(AlertState s) {
  switch (s) {
    case AlertState::kInactive: return "inactive";
    case AlertState::kPending: return "pending";
    case AlertState::kFiring: return "firing";
  }
  LOG(FATAL) << "unknown alert state " << static_cast<int>(s);
}

bool operator==(const Alert& a, const Alert& b) {
  auto same_value = [](double x, double y) { return DoubleBits(x) == DoubleBits(y); };
  return a.labels == b.labels && a.annotations == b.annotations && a.state == b.state &&
         a.active_at == b.active_at && a.fired_at == b.fired_at && a.resolved_at == b.resolved_at &&
         a.keep_firing_since == b.keep_firing_since && same_value(a.last_value, b.last_value) &&
         a.last_sent_at == b.last_sent_at && a.valid_until == b.valid_until;
}

namespace {

constexpr absl::string_view kAlertMetricName = "ALERTS";
constexpr absl::string_view kAlertForStateMetricName = "ALERTS_FOR_STATE";
constexpr absl::string_view kAlertNameLabel = "alertname";
constexpr absl::string_view kAlertStateLabel = "alertstate";

// The fields that matter for failover; the rest is refreshed every evaluation.
bool SameDurableState(const Alert& a, const Alert& b) {
  return a.state == b.state && a.active_at == b.active_at && a.fired_at == b.fired_at &&
         a.resolved_at == b.resolved_at && a.keep_firing_since == b.keep_firing_since;
}

std::map<std::string, std::string> ToMap(const Labels& labels) {
  std::map<std::string, std::string> m;
  for (const Label& l : labels) m[l.name] = l.value;
  return m;
}

std::string Expand(const std::string& name, const std::string& text,
                   const AlertTemplateData& data, const EvalContext& ctx) {
  auto r = ExpandAlertTemplate(name, text, data, ctx.query);
  if (!r.ok()) return absl::StrCat("<error expanding template: ", r.status().message(), ">");
  return *std::move(r);
}

// Builds the alert one output series stands for (pending from `now`).
Alert AlertFromSample(const Rule& rule, const Series& s, absl::Time now, const EvalContext& ctx) {
  AlertTemplateData data;
  data.labels = ToMap(s.labels);
  data.external_labels = ctx.external_labels;
  data.external_url = ctx.external_url;
  data.value = s.samples.empty() ? 0 : s.samples.back().v;
  std::string tmpl_name = "__alert_" + rule.alert;

  Alert a;
  a.labels = s.labels;
  a.labels.Remove(kMetricNameLabel);
  for (const auto& [name, text] : rule.labels) a.labels.Set(name, Expand(tmpl_name, text, data, ctx));
  a.labels.Set(kAlertNameLabel, rule.alert);
  for (const auto& [name, text] : rule.annotations) {
    a.annotations.emplace_back(name, Expand(tmpl_name, text, data, ctx));
  }
  a.state = AlertState::kPending;
  a.active_at = now;
  a.last_value = data.value;
  return a;
}

// ALERTS / ALERTS_FOR_STATE labels: the rule's raw labels overlaid by the alert's.
Labels AlertSeriesLabels(const Rule& rule, const Alert& a, absl::string_view metric) {
  Labels l;
  for (const auto& [name, value] : rule.labels) l.Set(name, value);
  for (const Label& al : a.labels) l.Set(al.name, al.value);
  l.Set(kMetricNameLabel, metric);
  l.Set(kAlertNameLabel, rule.alert);
  return l;
}

void AppendSeries(const Rule& rule, const Alert& a, absl::Time now, std::vector<Series>* out) {
  int64_t t = absl::ToUnixMillis(now);
  Series alerts{AlertSeriesLabels(rule, a, kAlertMetricName), {{t, 1}}};
  alerts.labels.Set(kAlertStateLabel, AlertStateName(a.state));
  out->push_back(std::move(alerts));
  double active_at = static_cast<double>(absl::ToUnixSeconds(a.active_at));
  out->push_back({AlertSeriesLabels(rule, a, kAlertForStateMetricName), {{t, active_at}}});
}

using Kind = AlertTransition::Kind;

// The part of Eval that walks every known alert: resolve, keep firing, fire.
// Returns the number of alerts still active (pending or firing).
int Advance(const Rule& rule, const std::map<Labels, Alert>& fresh, absl::Time now,
            AlertEvalResult* r) {
  int active = 0;
  for (auto it = r->state.alerts.begin(); it != r->state.alerts.end();) {
    Alert& a = it->second;
    if (!fresh.count(it->first)) {
      bool keep_firing = false;
      if (a.state == AlertState::kFiring && rule.keep_firing_for > absl::ZeroDuration()) {
        if (!IsSet(a.keep_firing_since)) {
          a.keep_firing_since = now;
          r->transitions.push_back({Kind::kKeepFiring, a.labels});
        }
        keep_firing = now - a.keep_firing_since < rule.keep_firing_for;
      }
      bool drop = a.state == AlertState::kPending ||
                  (IsSet(a.resolved_at) && now - a.resolved_at > kResolvedRetention);
      if (a.state != AlertState::kInactive && !keep_firing) {
        r->transitions.push_back(
            {a.state == AlertState::kPending ? Kind::kPendingCleared : Kind::kResolved, a.labels});
        a.state = AlertState::kInactive;
        a.resolved_at = now;
      } else if (drop) {
        r->transitions.push_back({Kind::kForgotten, a.labels});
      }
      if (drop) {
        it = r->state.alerts.erase(it);
        continue;
      }
      if (!keep_firing) {
        ++it;
        continue;
      }
    } else if (IsSet(a.keep_firing_since)) {
      a.keep_firing_since = absl::InfinitePast();
      r->transitions.push_back({Kind::kKeepFiringReset, a.labels});
    }
    ++active;
    if (a.state == AlertState::kPending && now - a.active_at >= rule.for_duration) {
      a.state = AlertState::kFiring;
      a.fired_at = now;
      r->transitions.push_back({Kind::kFiring, a.labels});
    }
    AppendSeries(rule, a, now, &r->series);
    ++it;
  }
  return active;
}

bool DurableStateChanged(const RuleState& before, const RuleState& after) {
  if (before.alerts.size() != after.alerts.size()) return true;
  for (auto b = before.alerts.begin(), a = after.alerts.begin(); b != before.alerts.end(); ++b, ++a) {
    if (b->first != a->first || !SameDurableState(b->second, a->second)) return true;
  }
  return false;
}

}  // namespace

AlertEvalResult EvaluateAlertingRule(const Rule& rule, const RuleState& previous,
                                     const std::vector<Series>& vector, absl::Time now,
                                     const EvalContext& ctx) {
  CHECK(rule.is_alerting()) << "not an alerting rule: " << rule.name();
  AlertEvalResult r;
  r.state = previous;
  std::map<Labels, Alert> fresh;
  for (const Series& s : vector) {
    Alert a = AlertFromSample(rule, s, now, ctx);
    Labels key = a.labels;
    if (!fresh.emplace(std::move(key), std::move(a)).second) {
      r.status = absl::InvalidArgumentError(
          "vector contains metrics with the same labelset after applying alert labels");
      r.state = previous;
      return r;
    }
  }
  for (auto& [labels, a] : fresh) {
    auto it = r.state.alerts.find(labels);
    if (it != r.state.alerts.end() && it->second.state != AlertState::kInactive) {
      it->second.last_value = a.last_value;
      it->second.annotations = a.annotations;
      continue;
    }
    r.transitions.push_back({Kind::kPending, labels});
    r.state.alerts[labels] = a;
  }
  int active = Advance(rule, fresh, now, &r);
  if (ctx.limit > 0 && active > ctx.limit) {
    for (const auto& [labels, a] : r.state.alerts) r.transitions.push_back({Kind::kCleared, labels});
    r.state.alerts.clear();
    r.series.clear();
    r.status = absl::ResourceExhaustedError(
        absl::StrFormat("exceeded limit of %d with %d alerts", ctx.limit, active));
  }
  r.needs_commit = DurableStateChanged(previous, r.state);
  return r;
}

std::vector<Alert> SelectAlertsToSend(RuleState* state, absl::Time now,
                                      absl::Duration resend_delay,
                                      absl::Duration group_interval) {
  std::vector<Alert> out;
  absl::Duration delta = std::max(resend_delay, group_interval);
  for (auto& [labels, a] : state->alerts) {
    if (a.state == AlertState::kPending) continue;
    // Resolved since the last send, or firing and not sent for resend_delay.
    bool needs = (IsSet(a.resolved_at) && a.resolved_at > a.last_sent_at) ||
                 (IsSet(a.last_sent_at) ? a.last_sent_at + resend_delay < now : true);
    if (!needs) continue;
    a.last_sent_at = now;
    a.valid_until = now + 4 * delta;
    out.push_back(a);
  }
  return out;
}

// ---- Encoding ----

namespace {

using v1::AlertProto;

void SetTime(absl::Time t, void (AlertProto::*set)(int64_t), AlertProto* p) {
  if (IsSet(t)) (p->*set)(absl::ToUnixNanos(t));
}

absl::Time GetTime(bool has, int64_t ns) {
  return has ? absl::FromUnixNanos(ns) : absl::InfinitePast();
}

}  // namespace

std::string SerializeRuleState(const RuleStateRecord& record) {
  v1::RuleStateProto proto;
  proto.set_group_key(record.group_key);
  proto.set_rule_index(record.rule_index);
  proto.set_rule_name(record.rule_name);
  if (IsSet(record.eval_ts)) proto.set_eval_ts_ns(absl::ToUnixNanos(record.eval_ts));
  for (const auto& [labels, a] : record.state.alerts) {
    AlertProto* p = proto.add_alerts();
    for (const Label& l : a.labels) {
      auto* lp = p->add_labels();
      lp->set_name(l.name);
      lp->set_value(l.value);
    }
    for (const auto& [k, v] : a.annotations) {
      auto* lp = p->add_annotations();
      lp->set_name(k);
      lp->set_value(v);
    }
    p->set_state(static_cast<AlertProto::State>(a.state));
    SetTime(a.active_at, &AlertProto::set_active_at_ns, p);
    SetTime(a.fired_at, &AlertProto::set_fired_at_ns, p);
    SetTime(a.resolved_at, &AlertProto::set_resolved_at_ns, p);
    SetTime(a.keep_firing_since, &AlertProto::set_keep_firing_since_ns, p);
    p->set_last_value(a.last_value);
    SetTime(a.last_sent_at, &AlertProto::set_last_sent_at_ns, p);
    SetTime(a.valid_until, &AlertProto::set_valid_until_ns, p);
  }
  return SerializeDeterministic(proto);
}

absl::StatusOr<RuleStateRecord> DeserializeRuleState(absl::string_view bytes) {
  v1::RuleStateProto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("malformed rule state encoding");
  }
  RuleStateRecord rec;
  rec.group_key = proto.group_key();
  rec.rule_index = proto.rule_index();
  rec.rule_name = proto.rule_name();
  rec.eval_ts = GetTime(proto.has_eval_ts_ns(), proto.eval_ts_ns());
  for (const AlertProto& p : proto.alerts()) {
    Alert a;
    std::vector<Label> labels;
    for (const auto& l : p.labels()) labels.push_back({l.name(), l.value()});
    a.labels = Labels(std::move(labels));
    for (const auto& l : p.annotations()) a.annotations.emplace_back(l.name(), l.value());
    if (p.state() < AlertProto::INACTIVE || p.state() > AlertProto::FIRING) {
      return absl::DataLossError(absl::StrCat("bad alert state ", p.state()));
    }
    a.state = static_cast<AlertState>(p.state());
    a.active_at = GetTime(p.has_active_at_ns(), p.active_at_ns());
    a.fired_at = GetTime(p.has_fired_at_ns(), p.fired_at_ns());
    a.resolved_at = GetTime(p.has_resolved_at_ns(), p.resolved_at_ns());
    a.keep_firing_since = GetTime(p.has_keep_firing_since_ns(), p.keep_firing_since_ns());
    a.last_value = p.last_value();
    a.last_sent_at = GetTime(p.has_last_sent_at_ns(), p.last_sent_at_ns());
    a.valid_until = GetTime(p.has_valid_until_ns(), p.valid_until_ns());
    Labels key = a.labels;
    rec.state.alerts.emplace(std::move(key), std::move(a));
  }
  return rec;
}

}  // namespace vigil::alerting
