#include "cluster/cluster_state.h"

#include <algorithm>
#include <random>
#include <set>

#include "common/testing/status_matchers.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;

v1::Member MakeMember(NodeId id, v1::MemberState state = v1::MEMBER_STATE_UNSPECIFIED) {
  v1::Member m;
  m.set_id(id);
  m.set_grpc_address(absl::StrCat("127.0.0.1:740", id));
  m.set_http_address(absl::StrCat("127.0.0.1:940", id));
  m.set_state(state);
  return m;
}

v1::Command BootstrapCmd(int nodes, uint32_t rf = 0) {
  v1::Command c;
  for (int i = 1; i <= nodes; ++i) *c.mutable_bootstrap()->add_members() = MakeMember(i);
  c.mutable_bootstrap()->set_replication_factor(rf);
  return c;
}

v1::Command AddCmd(NodeId id) {
  v1::Command c;
  *c.mutable_add_member()->mutable_member() = MakeMember(id);
  return c;
}

v1::Command MarkCmd(NodeId id, v1::MemberState state) {
  v1::Command c;
  c.mutable_mark_member_state()->set_id(id);
  c.mutable_mark_member_state()->set_state(state);
  return c;
}

v1::Command RemoveCmd(NodeId id, bool force = false) {
  v1::Command c;
  c.mutable_remove_member()->set_id(id);
  c.mutable_remove_member()->set_force(force);
  return c;
}

v1::Command BeginCmd(uint32_t shard, std::vector<NodeId> target, uint64_t epoch) {
  v1::Command c;
  c.mutable_begin_shard_move()->set_shard(shard);
  c.mutable_begin_shard_move()->mutable_target()->Add(target.begin(), target.end());
  c.mutable_begin_shard_move()->set_expected_epoch(epoch);
  return c;
}

v1::Command CompleteCmd(uint32_t shard, uint64_t epoch) {
  v1::Command c;
  c.mutable_complete_shard_move()->set_shard(shard);
  c.mutable_complete_shard_move()->set_expected_epoch(epoch);
  return c;
}

v1::Command AbortCmd(uint32_t shard, uint64_t epoch) {
  v1::Command c;
  c.mutable_abort_shard_move()->set_shard(shard);
  c.mutable_abort_shard_move()->set_expected_epoch(epoch);
  return c;
}

v1::Command RfCmd(uint32_t rf) {
  v1::Command c;
  c.mutable_set_replication_factor()->set_replication_factor(rf);
  return c;
}

v1::Command PutCmd(const std::string& key, const std::string& value) {
  v1::Command c;
  c.mutable_put()->set_key(key);
  c.mutable_put()->set_value(value);
  return c;
}

v1::Command GetCmd(const std::string& key) {
  v1::Command c;
  c.mutable_get()->set_key(key);
  return c;
}

v1::Command CasVersionCmd(const std::string& key, uint64_t expected, const std::string& value) {
  v1::Command c;
  c.mutable_compare_and_set()->set_key(key);
  c.mutable_compare_and_set()->set_expected_version(expected);
  c.mutable_compare_and_set()->set_value(value);
  return c;
}

v1::Command CasValueCmd(const std::string& key, const std::string& expected,
                        const std::string& value) {
  v1::Command c = CasVersionCmd(key, 0, value);
  c.mutable_compare_and_set()->set_compare_value(true);
  c.mutable_compare_and_set()->set_expected_value(expected);
  return c;
}

v1::Command WithSession(v1::Command c, uint64_t client, uint64_t seq) {
  c.set_client_id(client);
  c.set_sequence(seq);
  return c;
}

// Applies commands at consecutive indexes.
class Applier {
 public:
  explicit Applier(ClusterOptions opts = {}) : state(opts) {}
  v1::CommandResult Run(const v1::Command& c) { return state.Apply(++index, EncodeCommand(c)); }
  absl::Status Do(const v1::Command& c) { return ResultStatus(Run(c)); }

  ClusterState state;
  uint64_t index = 0;
};

// Carries out every planned move, as the rebalancer would after streaming.
void RunPlannedMoves(Applier& a) {
  for (const PlannedMove& m : a.state.PlanMoves()) {
    ASSERT_OK(a.Do(BeginCmd(m.shard, m.to, m.epoch)));
    ASSERT_OK(a.Do(CompleteCmd(m.shard, m.epoch)));
  }
  EXPECT_THAT(a.state.PlanMoves(), IsEmpty());
}

TEST(ClusterStateTest, BootstrapPlacesEveryShardOnDistinctNodes) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(3)));
  EXPECT_TRUE(a.state.bootstrapped());
  EXPECT_EQ(a.state.members().size(), 3u);
  for (uint32_t s = 0; s < a.state.num_shards(); ++s) {
    const ShardPlacement& p = a.state.shard(s);
    EXPECT_EQ(std::set<NodeId>(p.replicas.begin(), p.replicas.end()), (std::set<NodeId>{1, 2, 3}));
    EXPECT_EQ(p.epoch, 1u);
    EXPECT_FALSE(p.moving());
  }
  EXPECT_THAT(a.state.PlanMoves(), IsEmpty());
  EXPECT_THAT(a.Do(BootstrapCmd(3)), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ClusterStateTest, ReplicationFactorIsCappedAtActiveNodes) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(2, 3)));
  EXPECT_EQ(a.state.replication_factor(), 3u);
  for (uint32_t s = 0; s < a.state.num_shards(); ++s) {
    EXPECT_THAT(a.state.shard(s).replicas, SizeIs(2));
  }
}

TEST(ClusterStateTest, BadBootstrapIsRejected) {
  Applier a;
  v1::Command dup = BootstrapCmd(2);
  *dup.mutable_bootstrap()->add_members() = MakeMember(1);
  EXPECT_THAT(a.Do(dup), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate")));
  EXPECT_THAT(a.Do(v1::Command()), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(a.state.bootstrapped());
  EXPECT_TRUE(a.state.members().empty());
}

TEST(ClusterStateTest, JoiningNodeGetsShardsOnlyOnceActive) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(3)));
  ASSERT_OK(a.Do(AddCmd(4)));
  EXPECT_EQ(a.state.FindMember(4)->state(), v1::JOINING);
  EXPECT_THAT(a.state.PlanMoves(), IsEmpty());
  ASSERT_OK(a.Do(MarkCmd(4, v1::ACTIVE)));
  std::vector<PlannedMove> moves = a.state.PlanMoves();
  ASSERT_FALSE(moves.empty());
  for (const PlannedMove& m : moves) {
    // Each move swaps one old replica for the new node.
    EXPECT_THAT(m.to, SizeIs(3));
    EXPECT_EQ(std::count(m.to.begin(), m.to.end(), 4), 1);
    EXPECT_EQ(std::count(m.from.begin(), m.from.end(), 4), 0);
  }
  RunPlannedMoves(a);
  int held_by_4 = 0;
  for (uint32_t s = 0; s < a.state.num_shards(); ++s) {
    const ShardPlacement& p = a.state.shard(s);
    held_by_4 += std::count(p.replicas.begin(), p.replicas.end(), 4);
    EXPECT_EQ(p.epoch, std::count(p.replicas.begin(), p.replicas.end(), 4) ? 2u : 1u);
  }
  EXPECT_EQ(held_by_4, static_cast<int>(moves.size()));
}

TEST(ClusterStateTest, ReAddingAMemberIsIdempotentButConflictsAreNot) {
  Applier a;
  ASSERT_OK(a.Do(AddCmd(7)));
  ASSERT_OK(a.Do(AddCmd(7)));
  v1::Command other = AddCmd(7);
  other.mutable_add_member()->mutable_member()->set_grpc_address("10.0.0.1:1");
  EXPECT_THAT(a.Do(other), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(a.Do(AddCmd(0)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a.Do(MarkCmd(8, v1::ACTIVE)), StatusIs(absl::StatusCode::kNotFound));
}

TEST(ClusterStateTest, MoveWritesToBothSetsUntilCompleted) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(3)));
  ASSERT_OK(a.Do(AddCmd(4)));
  ASSERT_OK(a.Do(MarkCmd(4, v1::ACTIVE)));
  const std::vector<NodeId> old = a.state.shard(5).replicas;
  std::vector<NodeId> target = {old[0], old[1], 4};
  v1::CommandResult r = a.Run(BeginCmd(5, target, 1));
  ASSERT_OK(ResultStatus(r));
  EXPECT_EQ(r.epoch(), 1u);
  const ShardPlacement& p = a.state.shard(5);
  EXPECT_TRUE(p.moving());
  EXPECT_EQ(p.replicas, old);
  EXPECT_THAT(p.WriteSet(), ElementsAre(old[0], old[1], old[2], 4));
  // A second move cannot start, and the plan skips the moving shard.
  EXPECT_THAT(a.Do(BeginCmd(5, {1, 2, 4}, 1)), StatusIs(absl::StatusCode::kFailedPrecondition));
  for (const PlannedMove& m : a.state.PlanMoves()) EXPECT_NE(m.shard, 5u);
  // A stale epoch cannot complete it.
  EXPECT_THAT(a.Do(CompleteCmd(5, 0)), StatusIs(absl::StatusCode::kFailedPrecondition));
  r = a.Run(CompleteCmd(5, 1));
  ASSERT_OK(ResultStatus(r));
  EXPECT_EQ(r.epoch(), 2u);
  EXPECT_EQ(a.state.shard(5).replicas, target);
  EXPECT_FALSE(a.state.shard(5).moving());
  EXPECT_THAT(a.Do(CompleteCmd(5, 2)), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ClusterStateTest, AbortKeepsTheOldReplicas) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(3)));
  ASSERT_OK(a.Do(AddCmd(4)));
  ASSERT_OK(a.Do(MarkCmd(4, v1::ACTIVE)));
  const std::vector<NodeId> old = a.state.shard(0).replicas;
  ASSERT_OK(a.Do(BeginCmd(0, {4, old[1], old[2]}, 1)));
  ASSERT_OK(a.Do(AbortCmd(0, 1)));
  EXPECT_EQ(a.state.shard(0).replicas, old);
  // A new epoch, so nothing recorded for the aborted move counts for the next one.
  EXPECT_EQ(a.state.shard(0).epoch, 2u);
  EXPECT_FALSE(a.state.shard(0).moving());
  EXPECT_THAT(a.Do(AbortCmd(0, 1)), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(a.Do(CompleteCmd(0, 1)), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(ClusterStateTest, MoveTargetsMustBeDistinctActiveMembers) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(3)));
  ASSERT_OK(a.Do(AddCmd(4)));  // joining
  EXPECT_THAT(a.Do(BeginCmd(0, {1, 2, 4}, 1)), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(a.Do(BeginCmd(0, {1, 2, 9}, 1)), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(a.Do(BeginCmd(0, {1, 1, 2}, 1)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a.Do(BeginCmd(0, {}, 1)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a.Do(BeginCmd(64, {1}, 1)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(a.state.shard(0).moving());
}

TEST(ClusterStateTest, LeavingNodeIsDrainedThenRemoved) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(4)));
  EXPECT_THAT(a.Do(RemoveCmd(2)), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(a.Do(MarkCmd(2, v1::LEAVING)));
  std::vector<PlannedMove> moves = a.state.PlanMoves();
  ASSERT_FALSE(moves.empty());
  for (const PlannedMove& m : moves) {
    EXPECT_EQ(std::count(m.from.begin(), m.from.end(), 2), 1);
    EXPECT_EQ(std::count(m.to.begin(), m.to.end(), 2), 0);
  }
  RunPlannedMoves(a);
  ASSERT_OK(a.Do(RemoveCmd(2)));
  EXPECT_EQ(a.state.FindMember(2), nullptr);
}

TEST(ClusterStateTest, ForcedRemovalDropsTheNodeFromReplicaSets) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(4)));
  std::vector<uint32_t> held;
  for (uint32_t s = 0; s < a.state.num_shards(); ++s) {
    const auto& r = a.state.shard(s).replicas;
    if (std::count(r.begin(), r.end(), 3)) held.push_back(s);
  }
  ASSERT_FALSE(held.empty());
  ASSERT_OK(a.Do(RemoveCmd(3, /*force=*/true)));
  for (uint32_t s : held) {
    EXPECT_THAT(a.state.shard(s).replicas, SizeIs(2));
    EXPECT_EQ(a.state.shard(s).epoch, 2u);
  }
  EXPECT_THAT(a.state.PlanMoves(), SizeIs(held.size()));
  RunPlannedMoves(a);
  for (uint32_t s = 0; s < a.state.num_shards(); ++s) {
    EXPECT_THAT(a.state.shard(s).replicas, SizeIs(3));
  }
  EXPECT_THAT(a.Do(RemoveCmd(3)), StatusIs(absl::StatusCode::kNotFound));
}

TEST(ClusterStateTest, RaisingReplicationFactorPlansCopies) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(3, 1)));
  EXPECT_THAT(a.state.shard(0).replicas, SizeIs(1));
  EXPECT_THAT(a.Do(RfCmd(0)), StatusIs(absl::StatusCode::kInvalidArgument));
  ASSERT_OK(a.Do(RfCmd(3)));
  std::vector<PlannedMove> moves = a.state.PlanMoves();
  EXPECT_THAT(moves, SizeIs(a.state.num_shards()));
  for (const PlannedMove& m : moves) EXPECT_EQ(m.to[0], m.from[0]);
  RunPlannedMoves(a);
  EXPECT_THAT(a.state.shard(0).replicas, SizeIs(3));
}

TEST(ClusterStateTest, ShardMapIsSharedUntilAChange) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(3)));
  auto m1 = a.state.shard_map();
  EXPECT_EQ(m1, a.state.shard_map());
  ASSERT_OK(a.Do(PutCmd("k", "v")));
  EXPECT_EQ(m1, a.state.shard_map());
  ASSERT_OK(a.Do(AddCmd(4)));
  ASSERT_OK(a.Do(MarkCmd(4, v1::ACTIVE)));
  const PlannedMove m = a.state.PlanMoves().front();
  ASSERT_OK(a.Do(BeginCmd(m.shard, m.to, m.epoch)));
  auto m2 = a.state.shard_map();
  EXPECT_NE(m1, m2);
  EXPECT_FALSE(m1->shards[m.shard].moving());  // the old map is unchanged
  EXPECT_TRUE(m2->shards[m.shard].moving());
  EXPECT_EQ(m2->num_shards(), 64u);
}

TEST(ClusterStateTest, RegistersAreVersioned) {
  Applier a;
  v1::CommandResult r = a.Run(GetCmd("x"));
  EXPECT_EQ(r.code(), 0);
  EXPECT_EQ(r.version(), 0u);
  r = a.Run(PutCmd("x", "1"));
  EXPECT_EQ(r.version(), 1u);
  r = a.Run(PutCmd("x", "2"));
  EXPECT_EQ(r.version(), 2u);
  r = a.Run(GetCmd("x"));
  EXPECT_EQ(r.value(), "2");
  EXPECT_EQ(r.version(), 2u);
  ASSERT_TRUE(a.state.GetRegister("x").has_value());
  EXPECT_EQ(a.state.GetRegister("x")->value, "2");
  v1::Command del;
  del.mutable_delete_()->set_key("x");
  ASSERT_OK(a.Do(del));
  EXPECT_FALSE(a.state.GetRegister("x").has_value());
}

TEST(ClusterStateTest, CompareAndSetByVersionAndByValue) {
  Applier a;
  // Version 0 means "absent": creates the register.
  v1::CommandResult r = a.Run(CasVersionCmd("k", 0, "a"));
  ASSERT_OK(ResultStatus(r));
  EXPECT_EQ(r.version(), 1u);
  r = a.Run(CasVersionCmd("k", 0, "b"));
  EXPECT_THAT(ResultStatus(r), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(r.value(), "a");  // the current value comes back
  EXPECT_EQ(r.version(), 1u);
  ASSERT_OK(a.Do(CasVersionCmd("k", 1, "b")));
  EXPECT_THAT(a.Do(CasValueCmd("k", "a", "c")), StatusIs(absl::StatusCode::kFailedPrecondition));
  r = a.Run(CasValueCmd("k", "b", "c"));
  ASSERT_OK(ResultStatus(r));
  EXPECT_EQ(r.version(), 3u);
  EXPECT_THAT(a.Do(CasValueCmd("absent", "", "x")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(a.state.GetRegister("k")->value, "c");
}

TEST(ClusterStateTest, RetriedCommandAppliesOnce) {
  Applier a;
  v1::CommandResult first = a.Run(WithSession(PutCmd("x", "v"), 42, 1));
  v1::CommandResult again = a.Run(WithSession(PutCmd("x", "v"), 42, 1));
  EXPECT_EQ(first.SerializeAsString(), again.SerializeAsString());
  EXPECT_EQ(a.state.GetRegister("x")->version, 1u);
  // The next sequence applies; an older one is refused.
  EXPECT_EQ(a.Run(WithSession(PutCmd("x", "v"), 42, 2)).version(), 2u);
  EXPECT_THAT(ResultStatus(a.Run(WithSession(PutCmd("x", "v"), 42, 1))),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stale")));
  EXPECT_EQ(a.state.GetRegister("x")->version, 2u);
  // Another client and sessionless commands are independent.
  EXPECT_EQ(a.Run(WithSession(PutCmd("x", "v"), 43, 1)).version(), 3u);
  EXPECT_EQ(a.Run(PutCmd("x", "v")).version(), 4u);
  EXPECT_EQ(a.Run(PutCmd("x", "v")).version(), 5u);
}

TEST(ClusterStateTest, LeastRecentlyUsedSessionIsEvicted) {
  ClusterOptions opts;
  opts.max_sessions = 2;
  Applier a(opts);
  a.Run(WithSession(PutCmd("x", "v"), 1, 1));
  a.Run(WithSession(PutCmd("x", "v"), 2, 1));
  a.Run(WithSession(PutCmd("x", "v"), 1, 2));  // client 1 used last
  a.Run(WithSession(PutCmd("x", "v"), 3, 1));  // evicts client 2
  EXPECT_EQ(a.state.GetRegister("x")->version, 4u);
  a.Run(WithSession(PutCmd("x", "v"), 1, 2));  // remembered: not applied
  EXPECT_EQ(a.state.GetRegister("x")->version, 4u);
  a.Run(WithSession(PutCmd("x", "v"), 2, 1));  // forgotten: applies again
  EXPECT_EQ(a.state.GetRegister("x")->version, 5u);
}

TEST(ClusterStateTest, UnparsableCommandIsRejectedAndAdvancesTheIndex) {
  ClusterState s;
  v1::CommandResult r = s.Apply(1, "\xff\xff\xff");
  EXPECT_THAT(ResultStatus(r), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(s.applied_index(), 1u);
}

TEST(ClusterStateTest, ToJsonDescribesMembersAndShards) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(3)));
  ASSERT_OK(a.Do(AddCmd(4)));
  ASSERT_OK(a.Do(MarkCmd(4, v1::ACTIVE)));
  const PlannedMove m = a.state.PlanMoves().front();
  ASSERT_OK(a.Do(BeginCmd(m.shard, m.to, m.epoch)));
  nlohmann::json j = a.state.ToJson();
  EXPECT_EQ(j["num_shards"], 64);
  EXPECT_EQ(j["replication_factor"], 3);
  EXPECT_EQ(j["applied_index"], a.index);
  ASSERT_EQ(j["members"].size(), 4u);
  EXPECT_EQ(j["members"][0]["id"], 1);
  EXPECT_EQ(j["members"][0]["grpc_address"], "127.0.0.1:7401");
  EXPECT_EQ(j["members"][0]["http_address"], "127.0.0.1:9401");
  EXPECT_EQ(j["members"][0]["state"], "active");
  ASSERT_EQ(j["shards"].size(), 64u);
  EXPECT_EQ(j["moving_shards"], 1);
  const nlohmann::json& sj = j["shards"][m.shard];
  EXPECT_EQ(sj["shard"], m.shard);
  EXPECT_EQ(sj["epoch"], 1);
  EXPECT_EQ(sj["replicas"].get<std::vector<NodeId>>(), m.from);
  EXPECT_EQ(sj["pending"].get<std::vector<NodeId>>(), m.to);
}

// A random command, valid or not, over a small space so that commands interact.
v1::Command RandomCommand(std::mt19937_64& rng, const ClusterState& s) {
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const NodeId node = 1 + pick(6);
  const uint32_t shard = pick(64);
  const uint64_t epoch = s.shard(shard).epoch - pick(2);
  v1::Command c;
  switch (pick(12)) {
    case 0: c = BootstrapCmd(3); break;
    case 1: c = AddCmd(node); break;
    case 2: c = RemoveCmd(node, pick(2)); break;
    case 3: c = MarkCmd(node, static_cast<v1::MemberState>(1 + pick(3))); break;
    case 4: {
      std::vector<PlannedMove> moves = s.PlanMoves();
      c = moves.empty() ? BeginCmd(shard, {node}, epoch)
                        : BeginCmd(moves[0].shard, moves[0].to, moves[0].epoch);
      break;
    }
    case 5: c = CompleteCmd(shard, epoch); break;
    case 6: c = AbortCmd(shard, epoch); break;
    case 7: c = RfCmd(pick(4)); break;
    case 8: c = PutCmd(absl::StrCat("k", pick(4)), absl::StrCat(rng() % 100)); break;
    case 9: c = CasVersionCmd(absl::StrCat("k", pick(4)), pick(3), "c"); break;
    case 10: c = GetCmd(absl::StrCat("k", pick(4))); break;
    default: {
      // Complete a move in flight so that ownership flips happen often.
      for (uint32_t i = 0; i < s.num_shards(); ++i) {
        if (s.shard(i).moving()) return CompleteCmd(i, s.shard(i).epoch);
      }
      c = PutCmd("k0", "x");
    }
  }
  if (pick(3) == 0) c = WithSession(c, 1 + pick(3), pick(4));
  return c;
}

TEST(ClusterStateTest, ReplicasApplyingTheSameLogHaveIdenticalSnapshots) {
  const uint64_t seed = std::random_device()();
  LOG(INFO) << "seed " << seed;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  ClusterOptions opts;
  opts.max_sessions = 2;
  ClusterState a(opts), b(opts), c(opts);
  std::map<int, int> ok_by_op;
  for (uint64_t index = 1; index <= 2000; ++index) {
    v1::Command cmd = index == 1 ? BootstrapCmd(3) : RandomCommand(rng, a);
    const std::string bytes = EncodeCommand(cmd);
    v1::CommandResult ra = a.Apply(index, bytes);
    if (ra.code() == 0) ++ok_by_op[cmd.op_case()];
    ASSERT_EQ(ra.SerializeAsString(), b.Apply(index, bytes).SerializeAsString());
    ASSERT_EQ(a.Snapshot(), b.Snapshot()) << "diverged at " << index;
    // c catches up through a snapshot now and then, as a lagging follower would.
    if (index % 97 == 0) {
      ClusterState fresh(opts);
      ASSERT_OK(fresh.Restore(a.Snapshot()));
      ASSERT_EQ(fresh.Snapshot(), a.Snapshot());
      ASSERT_OK(c.Restore(b.Snapshot()));
    } else {
      c.Apply(index, bytes);
    }
    ASSERT_EQ(c.Snapshot(), a.Snapshot()) << "diverged at " << index;
    ASSERT_EQ(c.ToJson(), a.ToJson());
  }
  EXPECT_TRUE(a.bootstrapped());
  LOG(INFO) << "applied ok: begin " << ok_by_op[v1::Command::kBeginShardMove] << ", complete "
            << ok_by_op[v1::Command::kCompleteShardMove] << ", remove "
            << ok_by_op[v1::Command::kRemoveMember] << ", cas "
            << ok_by_op[v1::Command::kCompareAndSet];
}

TEST(ClusterStateTest, RestoreRejectsBadSnapshots) {
  Applier a;
  ASSERT_OK(a.Do(BootstrapCmd(3)));
  const std::string before = a.state.Snapshot();
  EXPECT_THAT(a.state.Restore("\xff\xff"), StatusIs(absl::StatusCode::kDataLoss));
  ClusterOptions small;
  small.num_shards = 8;
  ClusterState other(small);
  EXPECT_THAT(a.state.Restore(other.Snapshot()), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_EQ(a.state.Snapshot(), before);
}

}  // namespace
}  // namespace vigil::cluster
