#include "cluster/rebalancer.h"

#include <set>

#include "cluster/testing/commands.h"
#include "common/testing/status_matchers.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// A leader's control loop over one ClusterState, with streams that finish at
// once (or never, for nodes in `stuck`).
class Loop {
 public:
  Loop() { Propose(BootstrapCommand({1, 2, 3}, /*named=*/true)); }
  v1::CommandResult Propose(const v1::Command& c) {
    return state.Apply(++index, EncodeCommand(c));
  }
  void AddActive(NodeId id) { Propose(AddMemberCommand(id)); }
  void Mark(NodeId id, v1::MemberState st) { Propose(MarkMemberStateCommand(id, st)); }
  // Runs steps until nothing is left to do; returns how many steps it took.
  int RunToQuiescence(const RebalanceOptions& opts, int max_steps = 1000) {
    for (int i = 0; i < max_steps; ++i) {
      RebalanceStep step = NextRebalanceStep(state, streamed, opts);
      if (step.propose.empty() && step.streams.empty()) return i;
      for (const v1::Command& c : step.propose) {
        EXPECT_EQ(Propose(c).code(), 0) << c.ShortDebugString();
      }
      bool progress = !step.propose.empty();
      for (const Transfer& t : step.streams) {
        bool blocked = false;
        for (NodeId n : t.to) blocked = blocked || stuck.count(n);
        if (blocked || streamed[t.shard] == state.shard(t.shard).epoch) continue;
        streamed[t.shard] = state.shard(t.shard).epoch;
        streams_run++;
        progress = true;
      }
      int moving = 0;
      for (uint32_t s = 0; s < state.num_shards(); ++s) moving += state.shard(s).moving();
      max_moving = std::max(max_moving, moving);
      if (!progress) return i;  // only waiting for stuck streams
    }
    return max_steps;
  }

  ClusterState state;
  uint64_t index = 0;
  std::map<uint32_t, uint64_t> streamed;
  std::set<NodeId> stuck;
  int streams_run = 0;
  int max_moving = 0;
};

TEST(RebalancerTest, BalancedClusterHasNothingToDo) {
  Loop loop;
  RebalanceStep step = NextRebalanceStep(loop.state, {}, RebalanceOptions());
  EXPECT_TRUE(step.propose.empty());
  EXPECT_THAT(step.streams, IsEmpty());
}

TEST(RebalancerTest, JoinConvergesWithBoundedConcurrentMoves) {
  Loop loop;
  loop.AddActive(4);
  const size_t planned = loop.state.PlanMoves().size();
  RebalanceOptions opts;
  opts.max_concurrent_moves = 3;
  loop.RunToQuiescence(opts);
  EXPECT_THAT(loop.state.PlanMoves(), IsEmpty());
  EXPECT_LE(loop.max_moving, 3);
  EXPECT_EQ(loop.streams_run, static_cast<int>(planned));
  for (uint32_t s = 0; s < loop.state.num_shards(); ++s) {
    EXPECT_FALSE(loop.state.shard(s).moving());
  }
}

TEST(RebalancerTest, FirstStepBeginsThenStreamsFromOldOwnersToTheNewOne) {
  Loop loop;
  loop.AddActive(4);
  RebalanceOptions opts;
  opts.max_concurrent_moves = 2;
  RebalanceStep step = NextRebalanceStep(loop.state, {}, opts);
  ASSERT_EQ(step.propose.size(), 2u);
  EXPECT_TRUE(step.propose[0].has_begin_shard_move());
  EXPECT_THAT(step.streams, IsEmpty());  // nothing is moving yet
  for (const v1::Command& c : step.propose) loop.Propose(c);
  step = NextRebalanceStep(loop.state, {}, opts);
  EXPECT_TRUE(step.propose.empty());  // at the limit, streams not done
  ASSERT_THAT(step.streams, SizeIs(4));  // two shards, each from two old replicas
  for (const Transfer& t : step.streams) {
    EXPECT_THAT(t.to, ElementsAre(4));
    EXPECT_NE(t.from, 4u);
  }
  // A stream recorded at an older epoch does not complete the move.
  const uint32_t s = step.streams[0].shard;
  step = NextRebalanceStep(loop.state, {{s, loop.state.shard(s).epoch - 1}}, opts);
  EXPECT_TRUE(step.propose.empty());
  step = NextRebalanceStep(loop.state, {{s, loop.state.shard(s).epoch}}, opts);
  ASSERT_EQ(step.propose.size(), 2u);
  EXPECT_TRUE(step.propose[0].has_complete_shard_move());
  EXPECT_TRUE(step.propose[1].has_begin_shard_move());  // the freed slot
}

TEST(RebalancerTest, MoveToANodeThatLeftIsAborted) {
  Loop loop;
  loop.AddActive(4);
  loop.stuck.insert(4);
  RebalanceOptions opts;
  loop.RunToQuiescence(opts);
  int moving = 0;
  for (uint32_t s = 0; s < loop.state.num_shards(); ++s) moving += loop.state.shard(s).moving();
  EXPECT_EQ(moving, opts.max_concurrent_moves);  // stuck on node 4's streams
  loop.Mark(4, v1::LEAVING);
  loop.stuck.clear();
  loop.RunToQuiescence(opts);
  for (uint32_t s = 0; s < loop.state.num_shards(); ++s) {
    const ShardPlacement& p = loop.state.shard(s);
    EXPECT_FALSE(p.moving());
    EXPECT_EQ(std::count(p.replicas.begin(), p.replicas.end(), 4), 0);
  }
}

// A stream finished for a move that was then aborted must not complete the
// shard's next move: that move's new replicas never got the shard's data.
TEST(RebalancerTest, StreamOfAnAbortedMoveDoesNotCompleteTheNextMove) {
  Loop loop;
  loop.AddActive(4);
  RebalanceOptions opts;
  opts.max_concurrent_moves = 1;
  RebalanceStep step = NextRebalanceStep(loop.state, loop.streamed, opts);
  ASSERT_EQ(step.propose.size(), 1u);
  ASSERT_TRUE(step.propose[0].has_begin_shard_move());
  const uint32_t s = step.propose[0].begin_shard_move().shard();
  ASSERT_EQ(loop.Propose(step.propose[0]).code(), 0);
  loop.streamed[s] = loop.state.shard(s).epoch;  // its stream finished
  loop.Mark(4, v1::LEAVING);
  step = NextRebalanceStep(loop.state, loop.streamed, opts);
  ASSERT_EQ(step.propose.size(), 1u);
  ASSERT_TRUE(step.propose[0].has_abort_shard_move());
  ASSERT_EQ(loop.Propose(step.propose[0]).code(), 0);
  // Node 4 is back: the same shard moves to it again, and must be streamed again.
  loop.Mark(4, v1::ACTIVE);
  step = NextRebalanceStep(loop.state, loop.streamed, opts);
  ASSERT_EQ(step.propose.size(), 1u);
  ASSERT_EQ(step.propose[0].begin_shard_move().shard(), s);
  ASSERT_EQ(loop.Propose(step.propose[0]).code(), 0);
  step = NextRebalanceStep(loop.state, loop.streamed, opts);
  EXPECT_THAT(step.propose, IsEmpty());
  ASSERT_THAT(step.streams, Not(IsEmpty()));
  for (const Transfer& t : step.streams) {
    EXPECT_EQ(t.shard, s);
    EXPECT_THAT(t.to, ElementsAre(4));
  }
}

TEST(RebalancerTest, LeavingNodeIsDrainedAndShrinkingNeedsNoStream) {
  Loop loop;
  loop.AddActive(4);
  RebalanceOptions opts;
  loop.RunToQuiescence(opts);
  loop.Mark(2, v1::LEAVING);
  loop.RunToQuiescence(opts);
  for (uint32_t s = 0; s < loop.state.num_shards(); ++s) {
    const auto& r = loop.state.shard(s).replicas;
    EXPECT_EQ(std::count(r.begin(), r.end(), 2), 0);
  }
  v1::Command rm;
  rm.mutable_remove_member()->set_id(2);
  EXPECT_EQ(loop.Propose(rm).code(), 0);
  // RF 3 -> 1 removes replicas only: moves complete without streams.
  v1::Command rf;
  rf.mutable_set_replication_factor()->set_replication_factor(1);
  loop.Propose(rf);
  const int before = loop.streams_run;
  loop.RunToQuiescence(opts);
  EXPECT_EQ(loop.streams_run, before);
  for (uint32_t s = 0; s < loop.state.num_shards(); ++s) {
    EXPECT_THAT(loop.state.shard(s).replicas, SizeIs(1));
  }
}

TEST(RebalancerTest, ShardsToDropAreThoseOutsideTheWriteSet) {
  ShardMap map;
  map.shards = {ShardPlacement{{1, 2}, {}, 1}, ShardPlacement{{2, 3}, {}, 1},
                ShardPlacement{{2, 3}, {1, 3}, 1}};
  EXPECT_THAT(ShardsToDrop(1, map, {0, 1, 2, 9}), ElementsAre(1));
  EXPECT_THAT(ShardsToDrop(3, map, {0, 1, 2}), ElementsAre(0));
}

}  // namespace
}  // namespace vigil::cluster
