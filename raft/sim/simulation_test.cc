#include "raft/sim/simulation.h"

#include <string>

#include "absl/strings/str_join.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::raft::sim {
namespace {

using ::vigil::testing::IsOk;

// Every seed that ever failed, with what it found. They must stay green.
struct Regression {
  uint64_t seed;
  int steps;
  const char* found;
};
constexpr Regression kRegressions[] = {
    {4, 10000, "snapshot taken while a received snapshot was unpersisted (ConfStateAt CHECK)"},
};

TEST(SimulationTest, RegressionSeeds) {
  for (const Regression& r : kRegressions) {
    SCOPED_TRACE(r.found);
    SimOptions opts;
    opts.seed = r.seed;
    opts.steps = r.steps;
    Simulation sim(opts);
    absl::Status s = sim.Run();
    EXPECT_THAT(s, IsOk()) << "seed " << r.seed << "\n" << absl::StrJoin(sim.trace(), "\n");
  }
}

// A seed replays exactly: the trace is a function of the seed.
TEST(SimulationTest, SameSeedSameTrace) {
  SimOptions opts;
  opts.seed = 7;
  opts.steps = 3000;
  opts.full_trace = true;
  Simulation a(opts);
  Simulation b(opts);
  ASSERT_THAT(a.Run(), IsOk());
  ASSERT_THAT(b.Run(), IsOk());
  EXPECT_EQ(a.trace(), b.trace());
  EXPECT_GT(a.trace().size(), 1000u);
}

// The simulator is not vacuous: across a few seeds it commits commands, serves reads, changes
// membership, ships snapshots and crashes nodes.
TEST(SimulationTest, ExercisesEveryFeature) {
  SimStats total;
  for (uint64_t seed = 100; seed < 112; ++seed) {
    SimOptions opts;
    opts.seed = seed;
    opts.steps = 10000;
    Simulation sim(opts);
    ASSERT_THAT(sim.Run(), IsOk()) << "seed " << seed;
    total.commands_completed += sim.stats().commands_completed;
    total.reads_served += sim.stats().reads_served;
    total.conf_changes += sim.stats().conf_changes;
    total.snapshots_sent += sim.stats().snapshots_sent;
    total.crashes += sim.stats().crashes;
    total.max_commit = std::max(total.max_commit, sim.stats().max_commit);
  }
  EXPECT_GT(total.commands_completed, 50);
  EXPECT_GT(total.reads_served, 50);
  EXPECT_GT(total.conf_changes, 5);
  EXPECT_GT(total.snapshots_sent, 5);
  EXPECT_GT(total.crashes, 5);
  EXPECT_GT(total.max_commit, 50u);
}

// The figure-8 scenario has the shape it promises: 5 voters, leaders that keep crashing, and
// still some commits (so there are committed entries for a new leader to lose).
TEST(SimulationTest, Figure8ScenarioCrashesLeadersAndCommits) {
  SimStats total;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SimOptions opts;
    opts.seed = seed;
    opts.steps = 10000;
    opts.scenario = Scenario::kFigure8;
    opts.full_trace = seed == 1;
    Simulation sim(opts);
    ASSERT_THAT(sim.Run(), IsOk()) << "seed " << seed;
    if (seed == 1) EXPECT_THAT(sim.trace()[0], ::testing::HasSubstr("5 nodes"));
    total.crashes += sim.stats().crashes;
    total.max_commit = std::max(total.max_commit, sim.stats().max_commit);
  }
  EXPECT_GT(total.crashes, 100);
  EXPECT_GT(total.max_commit, 8u);
}

}  // namespace
}  // namespace vigil::raft::sim
