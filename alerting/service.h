// alerting/service.h
//
// AlertingService: everything vigild needs for rules and alerts behind narrow
// injected interfaces. Rule sets and alert state are committed through a
// Replicator (the control plane's Raft log); every node applies the committed
// payloads with OnCommitted, in log order. Only the leader evaluates rules,
// proposes state records and notifies Alertmanagers; a follower keeps the
// committed state so that a new leader continues each alert where it was
// (a pending alert fires at activeAt + for, not later).
//
// Payloads (what Propose gets and OnCommitted takes): one tag byte, then
//   'R' + SerializeRuleSet(...)          the rules in force
//   'S' + RuleStateProto bytes           one alerting rule's committed state
// Anything else is kInvalidArgument from OnCommitted (and ignored by the caller).
//
// Tick() is the deterministic core (tests drive it with a FakeClock); Start()
// owns a thread that ticks, and a NotifierRunner. Thread-safe.
#ifndef VIGIL_ALERTING_SERVICE_H_
#define VIGIL_ALERTING_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "alerting/manager.h"
#include "alerting/notifier.h"
#include "alerting/rules.h"
#include "common/clock.h"
#include "common/event.h"

namespace httplib {
class Server;
}  // namespace httplib
namespace vigil::metrics {
class Registry;
}  // namespace vigil::metrics

namespace vigil::alerting {

// Commits payloads through the control plane.
class Replicator {
 public:
  virtual ~Replicator() = default;
  // The Raft term in which this node leads and may evaluate, or 0 if it does
  // not lead (or leads but has not applied everything committed before its
  // term yet, so its view of the alert state may be stale).
  virtual uint64_t LeaderTerm() = 0;
  // A rule set, from any node: appends `bytes` to the replicated log (through
  // the leader); `done` runs once with the outcome (OK once committed, after
  // OnCommitted ran on this node if it is a member).
  virtual void Propose(std::string bytes, std::function<void(absl::Status)> done) = 0;
  // Alert state computed while leading in `term`: committed only as part of
  // that leadership, never forwarded (a fenced write: a deposed leader's state
  // cannot overwrite a later leader's). `done` as for Propose;
  // kFailedPrecondition once the leadership of `term` is over (the state is
  // stale: never retry it).
  virtual void ProposeFenced(uint64_t term, std::string bytes,
                             std::function<void(absl::Status)> done) = 0;
};

struct AlertingServiceOptions {
  std::vector<std::string> alertmanager_urls;  // --alertmanager_url, repeated or comma-separated.
  std::map<std::string, std::string> external_labels;
  std::string external_url;
  // --rule_files: validated by Start(), proposed the first time this node leads
  // after Start() unless this content was seeded before (see SeedRuleSet): a
  // rule set applied through the API stays in force until the files change.
  std::vector<std::string> rule_files;
  absl::Duration evaluation_interval = absl::Minutes(1);
  absl::Duration resend_delay = absl::Minutes(1);
  absl::Duration commit_timeout = absl::Seconds(10);  // POST /api/v1/admin/rules waits this long.
};

// Payload tags.
inline constexpr char kRuleSetPayload = 'R';
inline constexpr char kAlertStatePayload = 'S';

// The key under which the control plane may keep `payload` when it stores
// alerting payloads as last-writer-wins registers (which survive log
// compaction): "alerting/rules" for a rule set, "alerting/state/<group key>/<rule
// index>" for a state record. kInvalidArgument / kDataLoss for bad payloads.
absl::StatusOr<std::string> AlertingPayloadKey(absl::string_view payload);

// What a node started with --rule_files proposes when it first leads: the
// files' rule set with its content hash appended to `committed.seeded`, or
// nothing if that content was seeded before. So the flags seed an empty
// cluster and apply again only when their content changed; a rule set applied
// through the API stays in force over files that were already seeded, and
// nodes with different files do not flip the rules at every failover.
std::optional<RuleSet> SeedRuleSet(const RuleSet& files, const RuleSet& committed);

class AlertingService {
 public:
  // All pointers must outlive the service. `appender` may be null (recording
  // rules then evaluate without writing). A null `am_client` uses an
  // HttpAlertmanagerClient.
  AlertingService(AlertingServiceOptions opts, const Clock* clock, RuleQuerier* querier,
                  SampleAppender* appender, Replicator* replicator,
                  AlertmanagerClient* am_client = nullptr);
  ~AlertingService();  // Stop()s.
  AlertingService(const AlertingService&) = delete;
  AlertingService& operator=(const AlertingService&) = delete;

  // The control plane's apply path, in log order, on every node. Cheap and
  // non-blocking (safe on the Raft apply thread): the payload is decoded and
  // queued; it takes effect before the next Tick, leadership change or read.
  // kInvalidArgument / kDataLoss for payloads that do not decode.
  absl::Status OnCommitted(absl::string_view bytes);
  // Call when this node's leadership changes: `term` is the Raft term it leads
  // in (Replicator::LeaderTerm), 0 when it follows. A new term resumes from the
  // committed state, as does a leadership regained after a lost one. A term
  // whose fenced state write failed is not resumed again.
  void OnLeadershipChange(uint64_t term);

  // Validates the files (all or nothing) and proposes them as the rule set.
  // kInvalidArgument / kNotFound without proposing; the rules in force stay.
  absl::Status ApplyRuleFiles(const std::vector<std::string>& paths);
  // Same for rule-file contents (file name -> YAML).
  absl::Status ApplyRuleContents(
      const std::vector<std::pair<std::string, std::string>>& files_and_contents,
      std::function<void(absl::Status)> done);

  // One step: on the leader, evaluates due groups and proposes their state
  // records; the notifier is pumped. Returns when the next group is due.
  absl::Time Tick();

  // Starts the evaluation thread and the notifier runner. If rule files were
  // given they are loaded now (a bad file is an error here) and proposed once
  // this node leads.
  absl::Status Start();
  void Stop();  // Idempotent.

  // GET /api/v1/rules, GET /api/v1/alerts, POST /api/v1/admin/rules[?file=NAME]
  // (body: one rule file; 200 once committed, 400 with the line-numbered errors
  // of a bad file, whose rules are then not applied, 503 if not committed).
  void RegisterRoutes(httplib::Server* server);
  // Adds a collect hook exporting vigil_rule_group_* and vigil_notifications_*.
  void ExportMetrics(metrics::Registry* registry);

  // The "data" of GET /api/v1/rules and /api/v1/alerts, as JSON text.
  std::string RulesJSON(absl::string_view type = "");
  std::string AlertsJSON();
  NotifierMetrics notifier_metrics() const { return notifier_.metrics(); }
  bool leading();

 private:
  void RunLoop();
  // Applies the committed payloads queued by OnCommitted, in order.
  void DrainLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ProposeRuleSet(const RuleSet& set, std::function<void(absl::Status)> done);
  // A state write of `term` failed: drop the uncommitted evaluations (back to
  // the committed state) and, if that leadership is over, do not resume it.
  void OnStateNotCommitted(uint64_t term, const absl::Status& s);
  bool LeadsIn(uint64_t term);
  void Notify(const std::vector<PendingNotification>& notes);
  // Proposes the --rule_files set if it waits for this node's leadership.
  void MaybeProposeStartupRules();
  // The API's reads ("alerts", "rules/<type>"): rendered now when mu_ is free;
  // while an evaluation holds it (every rule's query runs under mu_, and a query
  // may wait for slow replicas), the view as of the start of that evaluation.
  std::string View(const std::string& key);
  // Locks mu_, or returns false at once if an evaluation holds it.
  bool LockUnlessEvaluating() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true, mu_);
  std::string RenderViewLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Re-renders the views read so far; Tick calls it before evaluating.
  void RefreshViewsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AlertingServiceOptions opts_;
  const Clock* const clock_;
  Replicator* const replicator_;
  std::unique_ptr<AlertmanagerClient> own_client_;
  Notifier notifier_;

  absl::Mutex mu_;
  RuleManager manager_ ABSL_GUARDED_BY(mu_);
  RuleSet rules_ ABSL_GUARDED_BY(mu_);  // As last committed.
  // The term this node evaluates in; 0 while it follows.
  // Invariant: manager_.leading() == (term_ != 0).
  uint64_t term_ ABSL_GUARDED_BY(mu_) = 0;
  // The last term whose fenced state write was refused: that leadership is over.
  uint64_t lost_term_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // Notified with stop_: the loop's pause is a monotonic wait (common/event.h; an
  // absl timed wait returns at once when the process' wall clock is behind the
  // kernel's, as under libfaketime, and the loop would spin).
  Event stop_event_;
  // The --rule_files set until this node proposed it as leader.
  std::optional<RuleSet> startup_rules_ ABSL_GUARDED_BY(mu_);

  // True while Tick evaluates rules under mu_ (written under mu_). Then the API
  // serves views_, which Tick rendered just before: the state as of the start of
  // that evaluation, which is what a reader blocking on mu_ would see until it
  // ends.
  std::atomic<bool> evaluating_{false};
  // The last rendering of each API view (View); keys from a fixed set.
  absl::Mutex views_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::map<std::string, std::string> views_ ABSL_GUARDED_BY(views_mu_);

  absl::Mutex inbox_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::vector<std::function<void()>> inbox_ ABSL_GUARDED_BY(inbox_mu_);

  std::unique_ptr<NotifierRunner> notifier_runner_;
  std::thread thread_;
};

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_SERVICE_H_
