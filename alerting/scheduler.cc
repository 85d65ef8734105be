#include "alerting/scheduler.h"

#include <utility>

#include "common/labels.h"
#include "glog/logging.h"

namespace vigil::alerting {

Scheduler::Scheduler(const Clock* clock, absl::Duration default_interval)
    : clock_(clock), default_interval_(default_interval) {
  CHECK(clock_ != nullptr);
  CHECK_GT(default_interval_, absl::ZeroDuration());
}

absl::Duration Scheduler::IntervalOf(const RuleGroup& g) const {
  return g.interval > absl::ZeroDuration() ? g.interval : default_interval_;
}

absl::Time Scheduler::SlotAtOrBefore(const RuleGroup& g, absl::Duration interval, absl::Time t) {
  // Prometheus hashes labels {file=..., name=...}; our Labels::Hash is the same xxhash.
  uint64_t hash = Labels{{"file", g.file}, {"name", g.name}}.Hash();
  int64_t interval_ns = absl::ToInt64Nanoseconds(interval);
  int64_t offset = static_cast<int64_t>(hash % static_cast<uint64_t>(interval_ns));
  int64_t adj = absl::ToUnixNanos(t) - offset;
  int64_t rem = adj % interval_ns;
  if (rem < 0) rem += interval_ns;  // Floor, for times before the epoch.
  return absl::FromUnixNanos(adj - rem + offset);
}

void Scheduler::SetRules(RuleSet rules) {
  absl::Time now = clock_->Now();
  std::map<std::string, Entry> entries;
  for (const RuleGroup& g : rules.groups) {
    absl::Duration interval = IntervalOf(g);
    auto old = entries_.find(g.Key());
    if (old != entries_.end() && old->second.interval == interval) {
      entries.emplace(g.Key(), old->second);
      continue;
    }
    entries.emplace(g.Key(), Entry{interval, SlotAtOrBefore(g, interval, now) + interval, {}});
  }
  entries_ = std::move(entries);
  rules_ = std::move(rules);
}

std::vector<DueGroup> Scheduler::TakeDue() {
  absl::Time now = clock_->Now();
  std::vector<DueGroup> due;
  for (const RuleGroup& g : rules_.groups) {
    Entry& e = entries_.at(g.Key());
    if (now < e.next) continue;
    absl::Duration rem;
    int64_t missed = absl::IDivDuration(now - e.next, e.interval, &rem);
    absl::Time ts = e.next + missed * e.interval;
    e.next = ts + e.interval;
    e.metrics.iterations_total += missed + 1;
    e.metrics.iterations_missed += missed;
    due.push_back({&g, ts, missed});
  }
  return due;
}

void Scheduler::SkipPassedSlots() {
  absl::Time now = clock_->Now();
  for (const RuleGroup& g : rules_.groups) {
    Entry& e = entries_.at(g.Key());
    if (e.next <= now) e.next = SlotAtOrBefore(g, e.interval, now);
  }
}

absl::Time Scheduler::NextDue() const {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [key, e] : entries_) next = std::min(next, e.next);
  return next;
}

void Scheduler::RecordEvaluation(const std::string& key, absl::Time eval_ts, absl::Duration took,
                                 bool ok) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;  // The group was removed while it ran.
  GroupMetrics& m = it->second.metrics;
  m.last_duration = took;
  m.last_eval_ts = eval_ts;
  if (!ok) ++m.evaluation_failures;
}

const GroupMetrics* Scheduler::metrics(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second.metrics;
}

}  // namespace vigil::alerting
