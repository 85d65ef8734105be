#include "alerting/api.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace vigil::alerting {

std::string GoTimeJSON(absl::Time t) {
  if (!IsSet(t)) return "0001-01-01T00:00:00Z";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

std::string FormatFloatE(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  return std::string(buf, res.ptr);
}

namespace {

nlohmann::json LabelsJSON(const Labels& labels) {
  nlohmann::json j = nlohmann::json::object();
  for (const Label& l : labels) j[l.name] = l.value;
  return j;
}

nlohmann::json PairsJSON(const StringPairs& pairs) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : pairs) j[k] = v;
  return j;
}

// The active (pending or firing) alerts of a rule, as the API shows them.
nlohmann::json ActiveAlertsJSON(const RuleState* state, AlertState* max_state) {
  nlohmann::json list = nlohmann::json::array();
  if (state == nullptr) return list;
  for (const auto& [labels, a] : state->alerts) {
    if (a.state > *max_state) *max_state = a.state;
    if (IsSet(a.resolved_at)) continue;  // Prometheus' ActiveAlerts().
    nlohmann::json j;
    j["labels"] = LabelsJSON(a.labels);
    j["annotations"] = PairsJSON(a.annotations);
    j["state"] = std::string(AlertStateName(a.state));
    j["activeAt"] = GoTimeJSON(a.active_at);
    if (IsSet(a.keep_firing_since)) j["keepFiringSince"] = GoTimeJSON(a.keep_firing_since);
    j["value"] = FormatFloatE(a.last_value);
    list.push_back(std::move(j));
  }
  return list;
}

nlohmann::json RuleJSON(const RuleManager& m, const RuleGroup& g, int index) {
  const Rule& r = g.rules[index];
  const RuleHealth* h = m.health(g.Key(), index);
  RuleHealth none;
  if (h == nullptr) h = &none;
  nlohmann::json j;
  j["name"] = r.name();
  j["query"] = r.expr;
  j["health"] = h->health;
  if (!h->last_error.empty()) j["lastError"] = h->last_error;
  j["evaluationTime"] = absl::ToDoubleSeconds(h->evaluation_time);
  j["lastEvaluation"] = GoTimeJSON(h->last_evaluation);
  if (!r.is_alerting()) {
    if (!r.labels.empty()) j["labels"] = PairsJSON(r.labels);
    j["type"] = "recording";
    return j;
  }
  AlertState max_state = AlertState::kInactive;
  j["alerts"] = ActiveAlertsJSON(m.state(g.Key(), index), &max_state);
  j["state"] = std::string(AlertStateName(max_state));
  j["duration"] = absl::ToDoubleSeconds(r.for_duration);
  j["keepFiringFor"] = absl::ToDoubleSeconds(r.keep_firing_for);
  j["labels"] = PairsJSON(r.labels);
  j["annotations"] = PairsJSON(r.annotations);
  j["type"] = "alerting";
  return j;
}

}  // namespace

nlohmann::json AlertsAPIData(const RuleManager& manager) {
  nlohmann::json alerts = nlohmann::json::array();
  for (const RuleGroup& g : manager.scheduler_view().rules().groups) {
    for (int i = 0; i < static_cast<int>(g.rules.size()); ++i) {
      if (!g.rules[i].is_alerting()) continue;
      AlertState ignored = AlertState::kInactive;
      for (auto& a : ActiveAlertsJSON(manager.state(g.Key(), i), &ignored)) {
        alerts.push_back(std::move(a));
      }
    }
  }
  return {{"alerts", alerts}};
}

nlohmann::json RulesAPIData(const RuleManager& manager, absl::string_view type) {
  nlohmann::json groups = nlohmann::json::array();
  const Scheduler& sched = manager.scheduler_view();
  for (const RuleGroup& g : sched.rules().groups) {
    nlohmann::json rules = nlohmann::json::array();
    for (int i = 0; i < static_cast<int>(g.rules.size()); ++i) {
      bool alerting = g.rules[i].is_alerting();
      if ((type == "alert" && !alerting) || (type == "record" && alerting)) continue;
      rules.push_back(RuleJSON(manager, g, i));
    }
    const GroupMetrics* gm = sched.metrics(g.Key());
    nlohmann::json j;
    j["name"] = g.name;
    j["file"] = g.file;
    j["rules"] = std::move(rules);
    j["interval"] = absl::ToDoubleSeconds(sched.IntervalOf(g));
    j["limit"] = g.limit;
    j["evaluationTime"] = gm == nullptr ? 0.0 : absl::ToDoubleSeconds(gm->last_duration);
    j["lastEvaluation"] = GoTimeJSON(gm == nullptr ? absl::InfinitePast() : gm->last_eval_ts);
    groups.push_back(std::move(j));
  }
  return {{"groups", groups}};
}

}  // namespace vigil::alerting
