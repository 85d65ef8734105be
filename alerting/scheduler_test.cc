#include "alerting/scheduler.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::alerting {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000) + absl::Milliseconds(123);

RuleGroup Group(std::string name, absl::Duration interval = absl::ZeroDuration()) {
  RuleGroup g;
  g.name = std::move(name);
  g.file = "rules.yml";
  g.interval = interval;
  return g;
}

TEST(SchedulerTest, SlotsAreOnAFixedGridOffsetByTheGroupHash) {
  const absl::Duration kInterval = absl::Seconds(30);
  RuleGroup a = Group("a"), b = Group("b");
  absl::Time sa = Scheduler::SlotAtOrBefore(a, kInterval, kStart);
  absl::Time sb = Scheduler::SlotAtOrBefore(b, kInterval, kStart);
  for (absl::Time s : {sa, sb}) {
    EXPECT_LE(s, kStart);
    EXPECT_GT(s, kStart - kInterval);
  }
  EXPECT_NE(sa, sb) << "groups are spread over the interval";
  // The grid does not depend on when you ask.
  EXPECT_EQ(Scheduler::SlotAtOrBefore(a, kInterval, sa), sa);
  EXPECT_EQ(Scheduler::SlotAtOrBefore(a, kInterval, sa + kInterval - absl::Nanoseconds(1)), sa);
  EXPECT_EQ(Scheduler::SlotAtOrBefore(a, kInterval, kStart + 10 * kInterval), sa + 10 * kInterval);
}

TEST(SchedulerTest, FirstEvaluationIsAtTheNextSlot) {
  FakeClock clock(kStart);
  Scheduler s(&clock, absl::Minutes(1));
  RuleGroup g = Group("g", absl::Seconds(30));
  s.SetRules(RuleSet{{g}});
  absl::Time first = Scheduler::SlotAtOrBefore(g, absl::Seconds(30), kStart) + absl::Seconds(30);
  EXPECT_EQ(s.NextDue(), first);
  EXPECT_THAT(s.TakeDue(), IsEmpty());
  clock.Set(first - absl::Nanoseconds(1));
  EXPECT_THAT(s.TakeDue(), IsEmpty());
  clock.Set(first);
  std::vector<DueGroup> due = s.TakeDue();
  ASSERT_THAT(due, SizeIs(1));
  EXPECT_EQ(due[0].group->name, "g");
  EXPECT_EQ(due[0].eval_ts, first);
  EXPECT_EQ(due[0].missed, 0);
  EXPECT_EQ(s.NextDue(), first + absl::Seconds(30));
  EXPECT_THAT(s.TakeDue(), IsEmpty()) << "a slot runs once";
}

TEST(SchedulerTest, CountsMissedIterationsAndSkipsToTheLatestSlot) {
  FakeClock clock(kStart);
  Scheduler s(&clock, absl::Minutes(1));
  RuleGroup g = Group("g", absl::Seconds(10));
  s.SetRules(RuleSet{{g}});
  absl::Time first = s.NextDue();
  clock.Set(first + absl::Seconds(35));  // Slots first, +10, +20, +30 have passed.
  std::vector<DueGroup> due = s.TakeDue();
  ASSERT_THAT(due, SizeIs(1));
  EXPECT_EQ(due[0].missed, 3);
  EXPECT_EQ(due[0].eval_ts, first + absl::Seconds(30));
  EXPECT_EQ(s.NextDue(), first + absl::Seconds(40));
  const GroupMetrics* m = s.metrics(g.Key());
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->iterations_missed, 3);
  EXPECT_EQ(m->iterations_total, 4);

  clock.Set(first + absl::Seconds(40));
  ASSERT_THAT(s.TakeDue(), SizeIs(1));
  EXPECT_EQ(s.metrics(g.Key())->iterations_missed, 3);
  EXPECT_EQ(s.metrics(g.Key())->iterations_total, 5);
}

TEST(SchedulerTest, SkipPassedSlotsResumesAtTheLatestSlotWithoutCountingMisses) {
  FakeClock clock(kStart);
  Scheduler s(&clock, absl::Minutes(1));
  RuleGroup g = Group("g", absl::Seconds(10));
  s.SetRules(RuleSet{{g}});
  absl::Time first = s.NextDue();
  clock.Set(first + absl::Seconds(95));  // A follower for a while.
  s.SkipPassedSlots();
  std::vector<DueGroup> due = s.TakeDue();
  ASSERT_THAT(due, SizeIs(1));
  EXPECT_EQ(due[0].eval_ts, first + absl::Seconds(90));
  EXPECT_EQ(due[0].missed, 0);
  EXPECT_EQ(s.metrics(g.Key())->iterations_missed, 0);
  s.SkipPassedSlots();  // Nothing passed since: no change.
  EXPECT_EQ(s.NextDue(), first + absl::Seconds(100));
}

TEST(SchedulerTest, GroupsWithoutIntervalUseTheDefault) {
  FakeClock clock(kStart);
  Scheduler s(&clock, absl::Seconds(20));
  RuleGroup g = Group("g");
  s.SetRules(RuleSet{{g}});
  EXPECT_EQ(s.IntervalOf(g), absl::Seconds(20));
  EXPECT_EQ(s.NextDue(), Scheduler::SlotAtOrBefore(g, absl::Seconds(20), kStart) + absl::Seconds(20));
}

TEST(SchedulerTest, NewSchedulerContinuesOnTheSameGrid) {
  // Two nodes, or a leader and its successor, compute the same slots.
  FakeClock clock(kStart);
  Scheduler first(&clock, absl::Minutes(1));
  RuleGroup g = Group("g", absl::Seconds(15));
  first.SetRules(RuleSet{{g}});
  clock.Advance(absl::Seconds(47));
  Scheduler second(&clock, absl::Minutes(1));
  second.SetRules(RuleSet{{g}});
  absl::Duration diff = second.NextDue() - first.NextDue();
  EXPECT_EQ(absl::IDivDuration(diff, absl::Seconds(15), &diff), 3);
  EXPECT_EQ(diff, absl::ZeroDuration());
}

TEST(SchedulerTest, SetRulesKeepsScheduleAndMetricsOfUnchangedGroups) {
  FakeClock clock(kStart);
  Scheduler s(&clock, absl::Minutes(1));
  RuleGroup a = Group("a", absl::Seconds(10)), b = Group("b", absl::Seconds(10));
  s.SetRules(RuleSet{{a, b}});
  clock.Set(s.NextDue() + absl::Seconds(25));
  s.TakeDue();
  int64_t missed_a = s.metrics(a.Key())->iterations_missed;
  ASSERT_GT(missed_a, 0);

  RuleGroup b2 = Group("b", absl::Seconds(20));  // Interval changed: rescheduled.
  RuleGroup c = Group("c", absl::Seconds(10));
  s.SetRules(RuleSet{{a, b2, c}});
  EXPECT_EQ(s.metrics(a.Key())->iterations_missed, missed_a);
  EXPECT_EQ(s.metrics(b2.Key())->iterations_missed, 0);
  EXPECT_EQ(s.metrics(c.Key())->iterations_total, 0);
  s.SetRules(RuleSet{});
  EXPECT_EQ(s.metrics(a.Key()), nullptr);
  EXPECT_EQ(s.NextDue(), absl::InfiniteFuture());
}

TEST(SchedulerTest, RecordEvaluationKeepsDurationAndFailures) {
  FakeClock clock(kStart);
  Scheduler s(&clock, absl::Minutes(1));
  RuleGroup g = Group("g");
  s.SetRules(RuleSet{{g}});
  s.RecordEvaluation(g.Key(), kStart, absl::Milliseconds(40), /*ok=*/false);
  s.RecordEvaluation("unknown;x", kStart, absl::Milliseconds(40), false);
  const GroupMetrics* m = s.metrics(g.Key());
  EXPECT_EQ(m->last_duration, absl::Milliseconds(40));
  EXPECT_EQ(m->last_eval_ts, kStart);
  EXPECT_EQ(m->evaluation_failures, 1);
}

}  // namespace
}  // namespace vigil::alerting
