// alerting/scheduler.h
//
// Scheduler: decides when each rule group is due, driven by an injected Clock.
// Like Prometheus (rules/group.go EvalTimestamp), a group evaluates on a fixed
// grid: slots at k * interval + offset, with offset = hash(file, name) % interval,
// so groups spread over the interval and every node computes the same slots
// (a new leader continues on the old leader's grid). A group that falls behind
// skips the slots it missed, counting them (vigil_rule_group_iterations_missed_total).
//
// No threads, no sleeping: the owner asks TakeDue() and waits until NextDue().
// Not thread-safe; one loop owns it.
#ifndef VIGIL_ALERTING_SCHEDULER_H_
#define VIGIL_ALERTING_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "alerting/rules.h"
#include "common/clock.h"

namespace vigil::alerting {

// Per-group counters, exported as /metrics by the server:
//   vigil_rule_group_iterations_total{rule_group="<key>"}
//   vigil_rule_group_iterations_missed_total{rule_group="<key>"}
//   vigil_rule_group_evaluation_failures_total{rule_group="<key>"}
//   vigil_rule_group_last_duration_seconds{rule_group="<key>"}
//   vigil_rule_group_last_evaluation_timestamp_seconds{rule_group="<key>"}
struct GroupMetrics {
  int64_t iterations_total = 0;   // Scheduled, including missed ones (Prometheus' scheduled).
  int64_t iterations_missed = 0;
  int64_t evaluation_failures = 0;
  absl::Duration last_duration = absl::ZeroDuration();
  absl::Time last_eval_ts = absl::InfinitePast();
};

struct DueGroup {
  const RuleGroup* group;  // Points into the scheduler's rule set; valid until SetRules.
  absl::Time eval_ts;      // The slot to evaluate at (<= now).
  int64_t missed;          // Slots skipped since the previous evaluation.
};

class Scheduler {
 public:
  // `clock` must outlive the scheduler. Groups without an interval use `default_interval`.
  Scheduler(const Clock* clock, absl::Duration default_interval);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Replaces the rule set. A group that keeps its key and interval keeps its
  // schedule and metrics; a new one is first due at the slot after now.
  void SetRules(RuleSet rules);
  const RuleSet& rules() const { return rules_; }

  // The groups due at the clock's now, in rule-set order; advances their schedule
  // past now and counts missed slots.
  std::vector<DueGroup> TakeDue();

  // Forgets the slots that passed while this node was not evaluating (a follower
  // that just became leader): each group is next due at its latest slot at or
  // before now, and nothing counts as missed.
  void SkipPassedSlots();

  // When the next group is due; absl::InfiniteFuture() without groups.
  absl::Time NextDue() const;

  // Records one finished evaluation of the group with `key`.
  void RecordEvaluation(const std::string& key, absl::Time eval_ts, absl::Duration took, bool ok);

  // nullptr for an unknown key.
  const GroupMetrics* metrics(const std::string& key) const;
  absl::Duration IntervalOf(const RuleGroup& g) const;

  // Prometheus' Group.EvalTimestamp: the latest slot of the group at or before `t`.
  static absl::Time SlotAtOrBefore(const RuleGroup& g, absl::Duration interval, absl::Time t);

 private:
  struct Entry {
    absl::Duration interval;
    absl::Time next;  // Invariant: the slot after the last one evaluated or skipped.
    GroupMetrics metrics;
  };

  const Clock* const clock_;
  const absl::Duration default_interval_;
  RuleSet rules_;
  std::map<std::string, Entry> entries_;  // By group key.
};

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_SCHEDULER_H_
