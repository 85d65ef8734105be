// alerting/evaluator.h
//
// The alert state machine of one alerting rule as a pure function, with
// Prometheus 2.42 semantics (rules/alerting.go AlertingRule.Eval):
//
//   EvaluateAlertingRule(rule, previous_state, query_result, now)
//       -> new state, transitions, ALERTS / ALERTS_FOR_STATE samples
//
// - Each output series of the rule's expression, after dropping __name__ and
//   adding the rule's (templated) labels and `alertname`, is one alert. A new
//   label set is pending from `now` (activeAt); it fires once now - activeAt >=
//   `for` (firedAt). A label set that disappears resolves: a pending alert is
//   dropped, a firing one becomes inactive with resolvedAt and is kept for 15
//   minutes so that the resolution reaches Alertmanager. keep_firing_for keeps a
//   firing alert firing that long after the condition clears.
// - Labels that change (a template over $value, say) make a new alert.
// - More active alerts than the group's `limit` fail the evaluation and clear
//   the rule's alerts, as Prometheus does.
//
// State is plain data with a deterministic encoding (alerting.proto
// RuleStateProto): the leader commits it through Raft when the evaluation
// reports `needs_commit`, and any node restores it and carries on where the
// old leader stopped (a restored pending alert fires at activeAt + for).
//
// Nothing here reads a clock or does I/O. Value types; not synchronized.
#ifndef VIGIL_ALERTING_EVALUATOR_H_
#define VIGIL_ALERTING_EVALUATOR_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "alerting/rules.h"
#include "alerting/template.h"
#include "common/labels.h"
#include "common/sample.h"

namespace vigil::alerting {

// How long a resolved alert is kept (and re-sent as resolved): Prometheus'
// resolvedRetention.
inline constexpr absl::Duration kResolvedRetention = absl::Minutes(15);

enum class AlertState { kInactive = 0, kPending = 1, kFiring = 2 };
// "inactive", "pending", "firing" (the `alertstate` label values).
absl::string_view AlertStateName(AlertState s);

// absl::InfinitePast() stands for Go's zero time.Time ("never").
inline bool IsSet(absl::Time t) { return t != absl::InfinitePast(); }

struct Alert {
  Labels labels;            // Identity: series labels + rule labels + alertname.
  StringPairs annotations;  // Expanded, sorted by name.
  AlertState state = AlertState::kInactive;
  absl::Time active_at = absl::InfinitePast();
  absl::Time fired_at = absl::InfinitePast();
  absl::Time resolved_at = absl::InfinitePast();
  absl::Time keep_firing_since = absl::InfinitePast();
  double last_value = 0;
  absl::Time last_sent_at = absl::InfinitePast();
  absl::Time valid_until = absl::InfinitePast();

  friend bool operator==(const Alert& a, const Alert& b);
};

// The alerts of one alerting rule, keyed by their labels.
struct RuleState {
  std::map<Labels, Alert> alerts;
  friend bool operator==(const RuleState& a, const RuleState& b) { return a.alerts == b.alerts; }
};

// A rule's state as committed through Raft, with the rule it belongs to.
struct RuleStateRecord {
  std::string group_key;  // RuleGroup::Key().
  int rule_index = 0;     // Position of the rule in its group.
  std::string rule_name;
  absl::Time eval_ts = absl::InfinitePast();  // The evaluation that produced `state`.
  RuleState state;
};

// Deterministic encoding (RuleStateProto): equal records give equal bytes.
std::string SerializeRuleState(const RuleStateRecord& record);
// kDataLoss if `bytes` is not a RuleStateProto.
absl::StatusOr<RuleStateRecord> DeserializeRuleState(absl::string_view bytes);

struct EvalContext {
  std::map<std::string, std::string> external_labels;  // For $externalLabels.
  std::string external_url;                            // For $externalURL.
  int limit = 0;                                       // The group's limit; 0 = none.
  TemplateQueryFunc query;                             // For `query` in templates; may be empty.
};

struct AlertTransition {
  enum class Kind {
    kPending,         // New alert (absent or inactive before).
    kFiring,          // Pending -> firing.
    kPendingCleared,  // Pending alert dropped: its condition cleared before `for`.
    kResolved,        // Firing -> inactive.
    kKeepFiring,      // Condition cleared, kept firing by keep_firing_for.
    kKeepFiringReset, // Condition back while kept firing.
    kForgotten,       // Resolved alert dropped after kResolvedRetention.
    kCleared,         // Dropped because the rule's limit was exceeded.
  };
  Kind kind;
  Labels labels;
};

struct AlertEvalResult {
  // OK, or kResourceExhausted when the limit was exceeded (the state then has
  // no alerts), or kInvalidArgument when two series map to the same alert
  // labels (the state is then `previous`, unchanged).
  absl::Status status;
  RuleState state;
  std::vector<AlertTransition> transitions;
  // True when the state differs from `previous` in anything but the last value,
  // annotations and notification bookkeeping: commit it through Raft.
  bool needs_commit = false;
  // ALERTS and ALERTS_FOR_STATE samples at `now`, one sample per series.
  std::vector<Series> series;
};

// One evaluation of `rule` (an alerting rule) at `now` given the instant vector
// its expression returned (one sample per series; the sample time is ignored).
// Template errors do not fail the evaluation: the text becomes
// "<error expanding template: ...>", as in Prometheus.
AlertEvalResult EvaluateAlertingRule(const Rule& rule, const RuleState& previous,
                                     const std::vector<Series>& vector, absl::Time now,
                                     const EvalContext& ctx);

// Prometheus' Alert.needsSending + sendAlerts: picks the alerts of `state` to
// send to Alertmanager at `now` (firing ones every `resend_delay`, resolved ones
// until their resolution was sent), records lastSentAt and validUntil =
// now + 4 * max(resend_delay, group_interval) in `state`, and returns copies.
std::vector<Alert> SelectAlertsToSend(RuleState* state, absl::Time now,
                                      absl::Duration resend_delay,
                                      absl::Duration group_interval);

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_EVALUATOR_H_
