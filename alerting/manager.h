// alerting/manager.h
//
// RuleManager: evaluates the due rule groups (Prometheus rules/manager.go and
// group.go), holding the alert state of every alerting rule. It runs each rule's
// expression through an injected RuleQuerier, feeds alerting rules to the pure
// EvaluateAlertingRule, writes recording-rule results and ALERTS series through
// an injected SampleAppender (with stale markers for series that disappear),
// hands alerts to notify to an injected AlertSink, and reports the alert state
// that must be committed through Raft.
//
// How vigild wires it (the leader evaluates, everyone applies):
//   on becoming leader:  manager.ResumeAsLeader();
//   leader loop:         for (auto& out : manager.RunDue()) for (auto& c : out.commits)
//                          raft.Propose(c.bytes);     // RuleStateProto
//   on losing leadership: manager.StepDown();
//   every node, in log order: on a committed RuleStateProto
//                          manager.ApplyCommittedState(bytes);
//                        on a committed RuleSetProto
//                          manager.SetRules(*DeserializeRuleSet(bytes));
// Every node keeps the committed state of each rule. A leader works on its own
// evaluations (ahead of the log); a new leader starts from the committed state,
// so a pending alert keeps its activeAt and a firing one keeps firing; a leader
// that steps down drops whatever it evaluated but never got committed.
//
// No threads inside; not thread-safe (one loop owns it). RuleRunner below owns a
// thread for processes that want one.
#ifndef VIGIL_ALERTING_MANAGER_H_
#define VIGIL_ALERTING_MANAGER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "alerting/evaluator.h"
#include "alerting/rules.h"
#include "alerting/scheduler.h"
#include "common/clock.h"
#include "common/sample.h"

namespace vigil::alerting {

// The query path rules read through (the cluster's fan-out query in vigild).
class RuleQuerier {
 public:
  virtual ~RuleQuerier() = default;
  // The instant vector of `expr` at `ts`, one sample per series. A scalar result
  // must come back as one series without labels (Prometheus' EngineQueryFunc).
  // Any error fails that rule's evaluation only.
  virtual absl::StatusOr<std::vector<Series>> Query(absl::string_view expr, absl::Time ts) = 0;
};

// Where recording-rule results and ALERTS / ALERTS_FOR_STATE samples go (ingest).
class SampleAppender {
 public:
  virtual ~SampleAppender() = default;
  // Called once per rule with that rule's samples (including stale markers), so a
  // later rule in the group can read an earlier rule's output, as in Prometheus.
  virtual absl::Status Append(const std::vector<Series>& series) = 0;
};

// Receives alerts to notify (the Notifier).
class AlertSink {
 public:
  virtual ~AlertSink() = default;
  // `expr` is the rule's expression, for generatorURL.
  virtual void Send(absl::string_view expr, const std::vector<Alert>& alerts) = 0;
};

struct RuleManagerOptions {
  absl::Duration default_interval = absl::Minutes(1);  // --rules.evaluation-interval
  absl::Duration resend_delay = absl::Minutes(1);      // --rules.alert.resend-delay
  std::map<std::string, std::string> external_labels;
  std::string external_url;
  // Alerts to notify go to GroupRunResult::notifications instead of the sink, so
  // that the caller sends them only once the state that produced them committed
  // (AlertingService: a node never notifies a state the cluster did not commit).
  bool defer_notifications = false;
};

// A rule state to commit: RuleStateProto bytes, as SerializeRuleState made them.
struct StateCommit {
  std::string group_key;
  int rule_index;
  std::string bytes;
};

// Alerts to send once `commit` (an index into GroupRunResult::commits, -1 if the
// evaluation changed no durable state) is committed.
struct PendingNotification {
  std::string expr;  // For generatorURL.
  std::vector<Alert> alerts;
  int commit = -1;
};

// A rule's health after its last evaluation on this node (the API's health,
// lastError, evaluationTime, lastEvaluation). "unknown" until it ran here.
struct RuleHealth {
  std::string health = "unknown";  // "ok", "err" or "unknown".
  std::string last_error;
  absl::Time last_evaluation = absl::InfinitePast();
  absl::Duration evaluation_time = absl::ZeroDuration();
};

struct GroupRunResult {
  std::string group_key;
  absl::Time eval_ts;
  int64_t missed = 0;
  absl::Duration took;
  std::vector<StateCommit> commits;
  // With RuleManagerOptions::defer_notifications.
  std::vector<PendingNotification> notifications;
  // Per failed rule: (rule index, error). Other rules of the group still ran.
  std::vector<std::pair<int, absl::Status>> errors;
};

class RuleManager {
 public:
  // All pointers must outlive the manager. `appender` and `sink` may be null.
  RuleManager(const Clock* clock, RuleQuerier* querier, SampleAppender* appender,
              AlertSink* sink, RuleManagerOptions opts);
  RuleManager(const RuleManager&) = delete;
  RuleManager& operator=(const RuleManager&) = delete;

  // Replaces the rules. Alert state is kept for rules with the same group key,
  // position and name; the rest is dropped.
  void SetRules(RuleSet rules);

  // Records a committed RuleStateProto (call in log order). A follower also
  // takes it as its current state; a leader keeps its own, newer one. kDataLoss
  // for bad bytes; kNotFound if the rule it names is not in the current rule set
  // (the state is then ignored).
  absl::Status ApplyCommittedState(absl::string_view bytes);

  // Call when this node becomes the leader: evaluation resumes at each group's
  // latest slot, without counting the slots it was a follower for as missed.
  // The current state of every rule becomes its committed state.
  void ResumeAsLeader();
  // Back to follower: uncommitted evaluations are dropped (state = committed).
  void StepDown();
  bool leading() const { return leading_; }

  // Evaluates every group that is due now (at its slot timestamp).
  std::vector<GroupRunResult> RunDue();
  // Evaluates one group at `ts` regardless of the schedule (tests, `vigilctl`).
  GroupRunResult EvaluateGroup(const RuleGroup& group, absl::Time ts);

  // The state of one alerting rule; nullptr if unknown.
  const RuleState* state(const std::string& group_key, int rule_index) const;
  // The health of one rule; nullptr if unknown.
  const RuleHealth* health(const std::string& group_key, int rule_index) const;
  Scheduler& scheduler() { return scheduler_; }
  const Scheduler& scheduler_view() const { return scheduler_; }

 private:
  using RuleKey = std::tuple<std::string, int, std::string>;  // group key, index, name
  struct RuleSlot {
    RuleState state;      // Current: the leader's latest evaluation, else `committed`.
    RuleState committed;  // As of the last applied RuleStateProto.
    std::vector<Labels> last_series;            // Written last time, for stale markers.
    RuleHealth health;
  };

  const RuleSlot* FindSlot(const std::string& group_key, int rule_index) const;

  const Rule* FindRule(const std::string& group_key, int index) const;
  absl::Status EvalRule(const RuleGroup& group, int index, absl::Time ts, GroupRunResult* out);
  absl::Status EvalRecording(const Rule& rule, int limit, std::vector<Series> vec, absl::Time ts,
                             std::vector<Series>* samples);
  absl::Status AppendWithStaleness(const RuleKey& key, std::vector<Series> samples, absl::Time ts);

  const Clock* const clock_;
  RuleQuerier* const querier_;
  SampleAppender* const appender_;
  AlertSink* const sink_;
  const RuleManagerOptions opts_;
  Scheduler scheduler_;
  std::map<RuleKey, RuleSlot> slots_;
  bool leading_ = false;
};

// Owns a thread that calls RunDue() whenever a group is due and hands each
// result to `on_result` (e.g. propose the commits through Raft). It waits with
// real-time deadlines, so the manager must run on a RealClock.
class RuleRunner {
 public:
  using ResultFn = std::function<void(const GroupRunResult&)>;
  // `manager` must outlive the runner; from now on only the runner's thread uses
  // it: call SetRules / ApplyCommittedState through Post.
  RuleRunner(RuleManager* manager, ResultFn on_result);
  ~RuleRunner();  // Stops and joins.
  RuleRunner(const RuleRunner&) = delete;
  RuleRunner& operator=(const RuleRunner&) = delete;

  // Runs `fn` on the runner's thread before its next evaluation.
  void Post(std::function<void(RuleManager*)> fn);
  // Stops the thread after the current evaluation; idempotent.
  void Stop();

 private:
  void Loop();
  bool Woken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RuleManager* const manager_;
  const ResultFn on_result_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void(RuleManager*)>> inbox_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // Last: starts after the fields above exist.
};

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_MANAGER_H_
