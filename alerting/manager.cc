#include "alerting/manager.h"

#include <set>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "glog/logging.h"

namespace vigil::alerting {

RuleManager::RuleManager(const Clock* clock, RuleQuerier* querier, SampleAppender* appender,
                         AlertSink* sink, RuleManagerOptions opts)
    : clock_(clock),
      querier_(querier),
      appender_(appender),
      sink_(sink),
      opts_(std::move(opts)),
      scheduler_(clock, opts_.default_interval) {
  CHECK(querier_ != nullptr);
}

void RuleManager::SetRules(RuleSet rules) {
  std::map<RuleKey, RuleSlot> slots;
  for (const RuleGroup& g : rules.groups) {
    for (int i = 0; i < static_cast<int>(g.rules.size()); ++i) {
      RuleKey key{g.Key(), i, g.rules[i].name()};
      auto old = slots_.find(key);
      if (old != slots_.end()) slots.emplace(key, std::move(old->second));
    }
  }
  slots_ = std::move(slots);
  scheduler_.SetRules(std::move(rules));
}

absl::Status RuleManager::ApplyCommittedState(absl::string_view bytes) {
  ASSIGN_OR_RETURN(RuleStateRecord rec, DeserializeRuleState(bytes));
  const Rule* rule = FindRule(rec.group_key, rec.rule_index);
  if (rule == nullptr || rule->name() != rec.rule_name) {
    return absl::NotFoundError(absl::StrFormat("no rule %d \"%s\" in group %s", rec.rule_index,
                                               rec.rule_name, rec.group_key));
  }
  RuleSlot& slot = slots_[RuleKey{rec.group_key, rec.rule_index, rec.rule_name}];
  slot.committed = std::move(rec.state);
  // A leader's own proposals come back after it may have evaluated again.
  if (!leading_) slot.state = slot.committed;
  return absl::OkStatus();
}

void RuleManager::ResumeAsLeader() {
  leading_ = true;
  for (auto& [key, slot] : slots_) slot.state = slot.committed;
  scheduler_.SkipPassedSlots();
}

void RuleManager::StepDown() {
  leading_ = false;
  for (auto& [key, slot] : slots_) slot.state = slot.committed;
}

const Rule* RuleManager::FindRule(const std::string& group_key, int index) const {
  for (const RuleGroup& g : scheduler_.rules().groups) {
    if (g.Key() != group_key) continue;
    if (index < 0 || index >= static_cast<int>(g.rules.size())) return nullptr;
    return &g.rules[index];
  }
  return nullptr;
}

const RuleManager::RuleSlot* RuleManager::FindSlot(const std::string& group_key,
                                                   int rule_index) const {
  const Rule* rule = FindRule(group_key, rule_index);
  if (rule == nullptr) return nullptr;
  auto it = slots_.find(RuleKey{group_key, rule_index, rule->name()});
  return it == slots_.end() ? nullptr : &it->second;
}

const RuleState* RuleManager::state(const std::string& group_key, int rule_index) const {
  const RuleSlot* slot = FindSlot(group_key, rule_index);
  return slot == nullptr ? nullptr : &slot->state;
}

const RuleHealth* RuleManager::health(const std::string& group_key, int rule_index) const {
  const RuleSlot* slot = FindSlot(group_key, rule_index);
  return slot == nullptr ? nullptr : &slot->health;
}

std::vector<GroupRunResult> RuleManager::RunDue() {
  std::vector<GroupRunResult> results;
  for (const DueGroup& due : scheduler_.TakeDue()) {
    absl::Time start = clock_->Now();
    GroupRunResult r = EvaluateGroup(*due.group, due.eval_ts);
    r.took = clock_->Now() - start;
    r.missed = due.missed;
    scheduler_.RecordEvaluation(r.group_key, due.eval_ts, r.took, r.errors.empty());
    results.push_back(std::move(r));
  }
  return results;
}

GroupRunResult RuleManager::EvaluateGroup(const RuleGroup& group, absl::Time ts) {
  GroupRunResult out;
  out.group_key = group.Key();
  out.eval_ts = ts;
  for (int i = 0; i < static_cast<int>(group.rules.size()); ++i) {
    absl::Time start = clock_->Now();
    absl::Status s = EvalRule(group, i, ts, &out);
    RuleHealth& h = slots_[RuleKey{group.Key(), i, group.rules[i].name()}].health;
    h.health = s.ok() ? "ok" : "err";
    h.last_error = s.ok() ? "" : std::string(s.message());
    h.last_evaluation = ts;
    h.evaluation_time = clock_->Now() - start;
    if (!s.ok()) out.errors.emplace_back(i, std::move(s));
  }
  return out;
}

absl::Status RuleManager::EvalRule(const RuleGroup& group, int index, absl::Time ts,
                                   GroupRunResult* out) {
  const Rule& rule = group.rules[index];
  RuleKey key{group.Key(), index, rule.name()};
  ASSIGN_OR_RETURN(std::vector<Series> vec, querier_->Query(rule.expr, ts));
  if (!rule.is_alerting()) {
    std::vector<Series> samples;
    RETURN_IF_ERROR(EvalRecording(rule, group.limit, std::move(vec), ts, &samples));
    return AppendWithStaleness(key, std::move(samples), ts);
  }
  EvalContext ctx;
  ctx.external_labels = opts_.external_labels;
  ctx.external_url = opts_.external_url;
  ctx.limit = group.limit;
  ctx.query = [this, ts](absl::string_view expr) { return querier_->Query(expr, ts); };
  RuleSlot& slot = slots_[key];
  AlertEvalResult r = EvaluateAlertingRule(rule, slot.state, vec, ts, ctx);
  slot.state = std::move(r.state);
  absl::Status s = r.status;
  if (s.ok()) s = AppendWithStaleness(key, std::move(r.series), ts);
  std::vector<Alert> send;
  if (s.ok() && (sink_ != nullptr || opts_.defer_notifications)) {
    send = SelectAlertsToSend(&slot.state, ts, opts_.resend_delay, scheduler_.IntervalOf(group));
  }
  // After SelectAlertsToSend: the committed state carries lastSentAt, so a new
  // leader does not send again what this one just sent.
  if (r.needs_commit) {
    out->commits.push_back(
        {group.Key(), index, SerializeRuleState({group.Key(), index, rule.alert, ts, slot.state})});
  }
  if (send.empty()) return s;
  if (opts_.defer_notifications) {
    const int commit = r.needs_commit ? static_cast<int>(out->commits.size()) - 1 : -1;
    out->notifications.push_back({rule.expr, std::move(send), commit});
  } else {
    sink_->Send(rule.expr, send);
  }
  return s;
}

absl::Status RuleManager::EvalRecording(const Rule& rule, int limit, std::vector<Series> vec,
                                        absl::Time ts, std::vector<Series>* samples) {
  int64_t t = absl::ToUnixMillis(ts);
  std::set<Labels> seen;
  for (Series& s : vec) {
    Labels labels = std::move(s.labels);
    labels.Set(kMetricNameLabel, rule.record);
    for (const auto& [name, value] : rule.labels) labels.Set(name, value);
    if (!seen.insert(labels).second) {
      return absl::InvalidArgumentError(
          "vector contains metrics with the same labelset after applying rule labels");
    }
    double v = s.samples.empty() ? 0 : s.samples.back().v;
    samples->push_back({std::move(labels), {{t, v}}});
  }
  if (limit > 0 && static_cast<int>(samples->size()) > limit) {
    int n = static_cast<int>(samples->size());
    samples->clear();
    return absl::ResourceExhaustedError(absl::StrFormat("exceeded limit %d with %d series", limit, n));
  }
  return absl::OkStatus();
}

absl::Status RuleManager::AppendWithStaleness(const RuleKey& key, std::vector<Series> samples,
                                              absl::Time ts) {
  RuleSlot& slot = slots_[key];
  std::set<Labels> current;
  for (const Series& s : samples) current.insert(s.labels);
  int64_t t = absl::ToUnixMillis(ts);
  for (const Labels& l : slot.last_series) {
    if (!current.count(l)) samples.push_back({l, {{t, StaleNaN()}}});
  }
  slot.last_series.assign(current.begin(), current.end());
  if (appender_ == nullptr || samples.empty()) return absl::OkStatus();
  return appender_->Append(samples);
}

// ---- RuleRunner ----

RuleRunner::RuleRunner(RuleManager* manager, ResultFn on_result)
    : manager_(manager), on_result_(std::move(on_result)), thread_([this] { Loop(); }) {}

RuleRunner::~RuleRunner() { Stop(); }

void RuleRunner::Post(std::function<void(RuleManager*)> fn) {
  absl::MutexLock l(&mu_);
  inbox_.push_back(std::move(fn));
}

void RuleRunner::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool RuleRunner::Woken() const { return stop_ || !inbox_.empty(); }

void RuleRunner::Loop() {
  while (true) {
    absl::Time deadline = manager_->scheduler().NextDue();
    std::vector<std::function<void(RuleManager*)>> inbox;
    {
      absl::MutexLock l(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(this, &RuleRunner::Woken), deadline);
      if (stop_) return;
      inbox.swap(inbox_);
    }
    for (auto& fn : inbox) fn(manager_);
    for (const GroupRunResult& r : manager_->RunDue()) on_result_(r);
  }
}

}  // namespace vigil::alerting
