// alerting/service.cc
#include "alerting/service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "alerting/api.h"
#include "alerting/evaluator.h"
#include "alerting/promql.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/metrics.h"

namespace vigil::alerting {
namespace {

RuleManagerOptions ManagerOptions(const AlertingServiceOptions& o) {
  RuleManagerOptions m;
  m.default_interval = o.evaluation_interval;
  m.resend_delay = o.resend_delay;
  m.external_labels = o.external_labels;
  m.external_url = o.external_url;
  m.defer_notifications = true;  // Sent by Tick once committed.
  return m;
}

NotifierOptions NotifierOpts(const AlertingServiceOptions& o) {
  NotifierOptions n;
  n.alertmanager_urls = o.alertmanager_urls;
  n.external_labels = o.external_labels;
  n.external_url = o.external_url;
  return n;
}

AlertmanagerClient* ClientOr(AlertmanagerClient* given,
                             std::unique_ptr<AlertmanagerClient>* own) {
  if (given != nullptr) return given;
  *own = std::make_unique<HttpAlertmanagerClient>();
  return own->get();
}

std::string Envelope(const std::string& data_json) {
  return absl::StrCat("{\"status\":\"success\",\"data\":", data_json, "}");
}

std::string ErrorEnvelope(const absl::Status& s) {
  nlohmann::json j = {{"status", "error"},
                      {"errorType", s.code() == absl::StatusCode::kInvalidArgument ? "bad_data"
                                                                                    : "internal"},
                      {"error", std::string(s.message())}};
  return j.dump();
}

}  // namespace

std::optional<RuleSet> SeedRuleSet(const RuleSet& files, const RuleSet& committed) {
  const uint64_t hash = RuleSetContentHash(files);
  const std::vector<uint64_t>& seeded = committed.seeded;
  if (std::find(seeded.begin(), seeded.end(), hash) != seeded.end()) return std::nullopt;
  RuleSet set = files;
  set.seeded = seeded;
  set.seeded.push_back(hash);
  if (set.seeded.size() > kMaxSeededHashes) {
    set.seeded.erase(set.seeded.begin(), set.seeded.end() - kMaxSeededHashes);
  }
  return set;
}

absl::StatusOr<std::string> AlertingPayloadKey(absl::string_view payload) {
  if (payload.empty()) return absl::InvalidArgumentError("empty alerting payload");
  const char tag = payload[0];
  payload.remove_prefix(1);
  if (tag == kRuleSetPayload) return std::string("alerting/rules");
  if (tag != kAlertStatePayload) {
    return absl::InvalidArgumentError(absl::StrCat("unknown alerting payload tag ", int{tag}));
  }
  absl::StatusOr<RuleStateRecord> rec = DeserializeRuleState(payload);
  if (!rec.ok()) return rec.status();
  return absl::StrCat("alerting/state/", rec->group_key, "/", rec->rule_index);
}

AlertingService::AlertingService(AlertingServiceOptions opts, const Clock* clock,
                                 RuleQuerier* querier, SampleAppender* appender,
                                 Replicator* replicator, AlertmanagerClient* am_client)
    : opts_(std::move(opts)),
      clock_(clock),
      replicator_(replicator),
      notifier_(clock, ClientOr(am_client, &own_client_), NotifierOpts(opts_)),
      manager_(clock, querier, appender, &notifier_, ManagerOptions(opts_)) {}

AlertingService::~AlertingService() { Stop(); }

absl::Status AlertingService::OnCommitted(absl::string_view bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("empty alerting payload");
  const char tag = bytes[0];
  bytes.remove_prefix(1);
  std::function<void()> apply;
  if (tag == kRuleSetPayload) {
    absl::StatusOr<RuleSet> set = DeserializeRuleSet(bytes);
    if (!set.ok()) return set.status();
    apply = [this, set = *std::move(set)]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      rules_ = set;
      manager_.SetRules(set);
    };
  } else if (tag == kAlertStatePayload) {
    RETURN_IF_ERROR(DeserializeRuleState(bytes).status());
    apply = [this, state = std::string(bytes)]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      absl::Status s = manager_.ApplyCommittedState(state);
      // kNotFound: the rule left the rule set since; expected.
      if (!s.ok() && !absl::IsNotFound(s)) LOG(WARNING) << "alert state not applied: " << s;
    };
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown alerting payload tag ", int{tag}));
  }
  absl::MutexLock l(&inbox_mu_);
  inbox_.push_back(std::move(apply));
  return absl::OkStatus();
}

void AlertingService::DrainLocked() {
  std::vector<std::function<void()>> inbox;
  {
    absl::MutexLock l(&inbox_mu_);
    inbox.swap(inbox_);
  }
  for (std::function<void()>& fn : inbox) fn();
}

void AlertingService::OnLeadershipChange(uint64_t term) {
  absl::MutexLock l(&mu_);
  DrainLocked();
  if (term == lost_term_) term = 0;  // A state write of that term was refused.
  if (term == term_) return;
  // Another term, even if this node led all along: restart from what is committed.
  if (term_ != 0) manager_.StepDown();
  term_ = term;
  if (term_ != 0) manager_.ResumeAsLeader();
}

void AlertingService::OnStateNotCommitted(uint64_t term, const absl::Status& s) {
  absl::MutexLock l(&mu_);
  // Refused: the leadership of `term` is over. Unknown outcome (timeout): this
  // node may still lead, but its evaluations are ahead of what is committed.
  // Either way the evaluations are dropped, never proposed again; evaluation
  // resumes from the committed state, in `term` only if it was not refused.
  if (absl::IsFailedPrecondition(s)) lost_term_ = std::max(lost_term_, term);
  if (term_ != term) return;
  LOG(WARNING) << "alert state of term " << term << " not committed, back to the committed "
               << "state: " << s;
  manager_.StepDown();
  term_ = 0;
}

void AlertingService::Notify(const std::vector<PendingNotification>& notes) {
  for (const PendingNotification& n : notes) notifier_.Send(n.expr, n.alerts);
}

bool AlertingService::LeadsIn(uint64_t term) {
  absl::MutexLock l(&mu_);
  return term_ == term;
}

bool AlertingService::leading() {
  absl::MutexLock l(&mu_);
  DrainLocked();
  return manager_.leading();
}

void AlertingService::ProposeRuleSet(const RuleSet& set,
                                     std::function<void(absl::Status)> done) {
  replicator_->Propose(std::string(1, kRuleSetPayload) + SerializeRuleSet(set), std::move(done));
}

absl::Status AlertingService::ApplyRuleContents(
    const std::vector<std::pair<std::string, std::string>>& files_and_contents,
    std::function<void(absl::Status)> done) {
  absl::StatusOr<RuleSet> set = ParseRuleFiles(files_and_contents, PromQLExprValidator());
  if (!set.ok()) return set.status();
  {
    absl::MutexLock l(&mu_);
    DrainLocked();
    set->seeded = rules_.seeded;
  }
  ProposeRuleSet(*set, std::move(done));
  return absl::OkStatus();
}

absl::Status AlertingService::ApplyRuleFiles(const std::vector<std::string>& paths) {
  absl::StatusOr<RuleSet> set = LoadRuleFiles(paths, PromQLExprValidator());
  if (!set.ok()) return set.status();
  {
    absl::MutexLock l(&mu_);
    DrainLocked();
    set->seeded = rules_.seeded;
  }
  ProposeRuleSet(*set, [](absl::Status s) {
    if (!s.ok()) LOG(WARNING) << "rule set not committed: " << s;
  });
  return absl::OkStatus();
}

absl::Time AlertingService::Tick() {
  std::vector<GroupRunResult> results;
  absl::Time next;
  bool pump;
  uint64_t term;
  {
    absl::MutexLock l(&mu_);
    DrainLocked();
    if (term_ != 0) {
      // The API serves these views while the evaluation below holds mu_. (Also
      // after it, in case a group fell due between the check and RunDue.)
      if (manager_.scheduler_view().NextDue() <= clock_->Now()) RefreshViewsLocked();
      evaluating_ = true;
      results = manager_.RunDue();
      evaluating_ = false;
      if (!results.empty()) RefreshViewsLocked();
    }
    term = term_;
    next = term_ != 0 ? manager_.scheduler_view().NextDue() : absl::InfiniteFuture();
    pump = !started_;
  }
  // Outside the lock: a Replicator may apply (OnCommitted) before returning.
  // Each state is fenced with the term it was computed in; after a refusal the
  // rest of this round is stale too and is not proposed. Alerts are notified
  // only once the state that produced them committed, and only while this node
  // still leads that term: Alertmanager never hears of an uncommitted state.
  for (GroupRunResult& r : results) {
    std::vector<std::vector<PendingNotification>> after(r.commits.size());
    std::vector<PendingNotification> now;
    for (PendingNotification& n : r.notifications) {
      (n.commit < 0 ? now : after[n.commit]).push_back(std::move(n));
    }
    for (size_t i = 0; i < r.commits.size(); ++i) {
      if (!LeadsIn(term)) break;
      replicator_->ProposeFenced(
          term, std::string(1, kAlertStatePayload) + r.commits[i].bytes,
          [this, term, notes = std::move(after[i])](absl::Status s) {
            if (!s.ok()) return OnStateNotCommitted(term, s);
            if (LeadsIn(term)) Notify(notes);
          });
    }
    if (LeadsIn(term)) Notify(now);
  }
  if (pump && notifier_.NextPump() <= clock_->Now()) notifier_.Pump();
  return next;
}

absl::Status AlertingService::Start() {
  {
    absl::MutexLock l(&mu_);
    if (started_) return absl::OkStatus();
  }
  if (!opts_.rule_files.empty()) {
    absl::StatusOr<RuleSet> set = LoadRuleFiles(opts_.rule_files, PromQLExprValidator());
    if (!set.ok()) return set.status();
    // Proposed once this node leads (at once if it does now); the committed set
    // then reaches every node.
    absl::MutexLock l(&mu_);
    startup_rules_ = *std::move(set);
  }
  if (replicator_->LeaderTerm() != 0) MaybeProposeStartupRules();
  {
    absl::MutexLock l(&mu_);
    started_ = true;
    stop_ = false;
  }
  notifier_runner_ = std::make_unique<NotifierRunner>(&notifier_);
  thread_ = std::thread([this] { RunLoop(); });
  return absl::OkStatus();
}

void AlertingService::MaybeProposeStartupRules() {
  std::optional<RuleSet> set;
  {
    absl::MutexLock l(&mu_);
    DrainLocked();
    if (!startup_rules_.has_value()) return;
    set = SeedRuleSet(*startup_rules_, rules_);
    startup_rules_.reset();
  }
  if (!set.has_value()) return;
  // Outside the lock: the replicator may apply (OnCommitted) before returning.
  ProposeRuleSet(*set, [this, set](absl::Status s) {
    if (s.ok()) return;
    LOG(WARNING) << "--rule_files not committed (retried when leading): " << s;
    absl::MutexLock l(&mu_);
    if (!startup_rules_.has_value()) startup_rules_ = set;
  });
}

void AlertingService::RunLoop() {
  for (;;) {
    const uint64_t term = replicator_->LeaderTerm();
    OnLeadershipChange(term);
    if (term != 0) MaybeProposeStartupRules();
    const absl::Time next = Tick();
    notifier_runner_->Kick();
    // Real time here: this is the production loop; tests call Tick() instead.
    const absl::Duration wait =
        std::min(absl::Milliseconds(200), std::max(absl::ZeroDuration(), next - clock_->Now()));
    if (stop_event_.WaitWithTimeout(wait)) return;
  }
}

void AlertingService::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (!started_ || stop_) return;
    stop_ = true;
  }
  stop_event_.Notify();
  if (thread_.joinable()) thread_.join();
  notifier_runner_.reset();
}

std::string AlertingService::RulesJSON(absl::string_view type) {
  if (type != "" && type != "alert" && type != "record") {
    // Not a view kept for evaluations (filters nothing, as Prometheus' unknown
    // types do): rendered under the lock.
    absl::MutexLock l(&mu_);
    DrainLocked();
    return RulesAPIData(manager_, type).dump();
  }
  return View(absl::StrCat("rules/", type));
}

std::string AlertingService::AlertsJSON() { return View("alerts"); }

bool AlertingService::LockUnlessEvaluating() {
  if (mu_.TryLock()) return true;
  if (evaluating_) return false;
  mu_.Lock();
  return true;
}

std::string AlertingService::View(const std::string& key) {
  if (!LockUnlessEvaluating()) {
    {
      absl::MutexLock v(&views_mu_);
      auto it = views_.find(key);
      if (it != views_.end()) return it->second;
    }
    mu_.Lock();  // Never read before: wait for the evaluation.
  }
  DrainLocked();
  std::string out = RenderViewLocked(key);
  mu_.Unlock();
  return out;
}

std::string AlertingService::RenderViewLocked(const std::string& key) {
  std::string out = key == "alerts"
                        ? AlertsAPIData(manager_).dump()
                        : RulesAPIData(manager_, absl::string_view(key).substr(6)).dump();
  absl::MutexLock v(&views_mu_);
  views_[key] = out;
  return out;
}

void AlertingService::RefreshViewsLocked() {
  std::vector<std::string> keys;
  {
    absl::MutexLock v(&views_mu_);
    for (const auto& [key, view] : views_) keys.push_back(key);
  }
  for (const std::string& key : keys) RenderViewLocked(key);
}

void AlertingService::RegisterRoutes(httplib::Server* server) {
  server->Get("/api/v1/rules", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string type = req.has_param("type") ? req.get_param_value("type") : "";
    res.set_content(Envelope(RulesJSON(type)), "application/json");
  });
  server->Get("/api/v1/alerts", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(Envelope(AlertsJSON()), "application/json");
  });
  server->Post("/api/v1/admin/rules", [this](const httplib::Request& req,
                                             httplib::Response& res) {
    struct Wait {
      absl::Notification done;
      absl::Status status;
    };
    auto wait = std::make_shared<Wait>();
    // ?file=NAME names the rule file (group keys are "<file>;<group>"); default "api".
    const std::string file = req.has_param("file") ? req.get_param_value("file") : "api";
    absl::Status s = ApplyRuleContents({{file, req.body}}, [wait](absl::Status st) {
      wait->status = std::move(st);
      wait->done.Notify();
    });
    if (s.ok() && !wait->done.WaitForNotificationWithTimeout(opts_.commit_timeout)) {
      s = absl::DeadlineExceededError("rule set not committed in time");
    } else if (s.ok()) {
      s = wait->status;
    }
    if (!s.ok()) {
      res.status = absl::IsInvalidArgument(s) ? 400 : 503;
      res.set_content(ErrorEnvelope(s), "application/json");
      return;
    }
    res.set_content(Envelope("null"), "application/json");
  });
}

void AlertingService::ExportMetrics(metrics::Registry* registry) {
  registry->AddCollectHook([this, registry] {
    // While an evaluation holds mu_ the rule group gauges keep their last values
    // (a scrape must not wait for the rules' queries).
    if (LockUnlessEvaluating()) {
      DrainLocked();
      for (const RuleGroup& g : rules_.groups) {
        const GroupMetrics* m = manager_.scheduler_view().metrics(g.Key());
        if (m == nullptr) continue;
        const metrics::LabelPairs labels = {{"rule_group", g.Key()}};
        registry
            ->GetGauge("vigil_rule_group_iterations_missed_total",
                       "Rule group evaluations missed due to slow evaluation.", labels)
            ->Set(static_cast<double>(m->iterations_missed));
        registry
            ->GetGauge("vigil_rule_group_iterations_total",
                       "Scheduled rule group evaluations, missed or not.", labels)
            ->Set(static_cast<double>(m->iterations_total));
        registry
            ->GetGauge("vigil_rule_group_evaluation_failures_total",
                       "Rule group evaluations that failed.", labels)
            ->Set(static_cast<double>(m->evaluation_failures));
        registry
            ->GetGauge("vigil_rule_group_last_duration_seconds",
                       "Duration of the last rule group evaluation.", labels)
            ->Set(absl::ToDoubleSeconds(m->last_duration));
      }
      mu_.Unlock();
    }
    const NotifierMetrics n = notifier_.metrics();
    for (const auto& [url, v] : n.sent) {
      registry
          ->GetGauge("vigil_notifications_sent_total", "Alerts sent to Alertmanager.",
                     {{"alertmanager", url}})
          ->Set(static_cast<double>(v));
    }
    for (const auto& [url, v] : n.errors) {
      registry
          ->GetGauge("vigil_notifications_errors_total", "Alerts given up for an Alertmanager.",
                     {{"alertmanager", url}})
          ->Set(static_cast<double>(v));
    }
    registry
        ->GetGauge("vigil_notifications_dropped_total",
                   "Alerts dropped because the notification queue was full.")
        ->Set(static_cast<double>(n.dropped));
    registry->GetGauge("vigil_notifications_queue_length", "Alerts waiting in the queue.")
        ->Set(static_cast<double>(n.queue_length));
  });
}

}  // namespace vigil::alerting
