// RaftNode: three in-process nodes over LocalNetwork with RocksDB logs in a temp dir.
#include "raft/raft_node.h"

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "raft/local_transport.h"
#include "raft/raft_node_test_util.h"

namespace vigil::raft {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;

class RaftNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("raft_node_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    for (uint64_t id = 1; id <= 3; ++id) {
      machines_[id] = std::make_unique<ListMachine>();
      transports_[id] = net_.Connect(id);
    }
  }
  void TearDown() override {
    for (auto& n : nodes_) n.reset();
    std::filesystem::remove_all(root_);
  }

  RaftNodeOptions Options(uint64_t id) {
    RaftNodeOptions o;
    o.id = id;
    o.dir = (std::filesystem::path(root_) / std::to_string(id)).string();
    o.initial_voters = {1, 2, 3};
    o.tick = absl::Milliseconds(10);
    o.snapshot_every = snapshot_every_;
    return o;
  }
  void Start(uint64_t id) {
    ASSERT_OK_AND_ASSIGN(nodes_[id], RaftNode::Open(Options(id), machines_[id].get(),
                                                     transports_[id].get()));
  }
  void StartAll() {
    for (uint64_t id = 1; id <= 3; ++id) Start(id);
  }
  // The id of the node all running nodes agree leads, once there is one.
  uint64_t WaitForLeader() {
    uint64_t leader = kNone;
    Eventually([&] {
      for (uint64_t id = 1; id <= 3; ++id) {
        if (nodes_[id] != nullptr && nodes_[id]->status().role == Role::kLeader) {
          leader = id;
          return true;
        }
      }
      return false;
    });
    return leader;
  }

  std::string root_;
  uint64_t snapshot_every_ = 10000;
  LocalNetwork net_;
  std::unique_ptr<ListMachine> machines_[4];
  std::unique_ptr<Transport> transports_[4];
  std::unique_ptr<RaftNode> nodes_[4];
};

TEST_F(RaftNodeTest, ElectsLeaderAndReplicates) {
  StartAll();
  uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, kNone);
  EXPECT_THAT(nodes_[leader]->ProposeAndWait("a", kTimeout), IsOk());
  absl::StatusOr<std::string> reply = nodes_[leader]->ProposeAndWait("b", kTimeout);
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ(*reply, "2");
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(Eventually([&] { return machines_[id]->items().size() == 2; })) << id;
    EXPECT_THAT(machines_[id]->items(), ElementsAre("a", "b"));
  }
}

TEST_F(RaftNodeTest, FollowerProposalNamesLeader) {
  StartAll();
  uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, kNone);
  uint64_t follower = leader == 1 ? 2 : 1;
  ASSERT_TRUE(Eventually([&] { return nodes_[follower]->status().leader == leader; }));
  EXPECT_THAT(nodes_[follower]->ProposeAndWait("x", kTimeout),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("leader=" + std::to_string(leader))));
}

// A fenced proposal of a leader that is cut off before it commits: a new leader is elected,
// the old leader's entry is overwritten when it reconnects, and its proposer learns that the
// leadership of its term ended (kFailedPrecondition, not a retryable kUnavailable). The command
// never applies anywhere; the old term is refused from then on.
TEST_F(RaftNodeTest, DeposedLeadersFencedProposalFailsAndNeverApplies) {
  StartAll();
  const uint64_t old_leader = WaitForLeader();
  ASSERT_NE(old_leader, kNone);
  ASSERT_TRUE(Eventually([&] { return nodes_[old_leader]->status().leader_applied; }));
  const uint64_t old_term = nodes_[old_leader]->status().term;
  ASSERT_THAT(nodes_[old_leader]->ProposeFencedAndWait(old_term, "in-term", kTimeout), IsOk());

  net_.SetConnected(old_leader, false);
  auto outcome = std::make_shared<absl::StatusOr<std::string>>(absl::UnknownError("pending"));
  auto done = std::make_shared<absl::Notification>();
  nodes_[old_leader]->ProposeFenced(old_term, "stale", [outcome, done](auto r) {
    *outcome = std::move(r);
    done->Notify();
  });
  uint64_t new_leader = kNone;
  ASSERT_TRUE(Eventually([&] {
    for (uint64_t id = 1; id <= 3; ++id) {
      RaftStatus st = nodes_[id]->status();
      if (id != old_leader && st.role == Role::kLeader && st.leader_applied) new_leader = id;
    }
    return new_leader != kNone;
  }));
  const uint64_t new_term = nodes_[new_leader]->status().term;
  ASSERT_GT(new_term, old_term);
  EXPECT_THAT(nodes_[new_leader]->ProposeFencedAndWait(old_term, "stale", kTimeout),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_THAT(nodes_[new_leader]->ProposeFencedAndWait(new_term, "fresh", kTimeout), IsOk());

  net_.SetConnected(old_leader, true);
  ASSERT_TRUE(done->WaitForNotificationWithTimeout(kTimeout));
  EXPECT_THAT(*outcome, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("lost")));
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(Eventually([&] { return machines_[id]->items().size() == 2; })) << id;
    EXPECT_THAT(machines_[id]->items(), ElementsAre("in-term", "fresh")) << id;
  }
  EXPECT_THAT(nodes_[old_leader]->ProposeFencedAndWait(old_term, "stale", kTimeout),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(RaftNodeTest, FailoverAndRestartCatchUp) {
  StartAll();
  uint64_t old_leader = WaitForLeader();
  ASSERT_NE(old_leader, kNone);
  ASSERT_THAT(nodes_[old_leader]->ProposeAndWait("before", kTimeout), IsOk());
  nodes_[old_leader].reset();  // the leader dies
  uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, kNone);
  ASSERT_NE(leader, old_leader);
  ASSERT_THAT(nodes_[leader]->ProposeAndWait("after", kTimeout), IsOk());
  // The old leader restarts from its log and catches up.
  machines_[old_leader] = std::make_unique<ListMachine>();
  Start(old_leader);
  EXPECT_TRUE(Eventually([&] { return machines_[old_leader]->items().size() == 2; }));
  EXPECT_THAT(machines_[old_leader]->items(), ElementsAre("before", "after"));
  EXPECT_GE(nodes_[leader]->status().leader_changes, 1u);
}

TEST_F(RaftNodeTest, ReadBarrierOnFollowerSeesCommittedWrite) {
  StartAll();
  uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, kNone);
  ASSERT_THAT(nodes_[leader]->ProposeAndWait("w", kTimeout), IsOk());
  uint64_t follower = leader == 3 ? 2 : 3;
  // The write may have committed without this follower, which then may not know the leader yet
  // (ReadBarrier answers kUnavailable until it does).
  ASSERT_TRUE(Eventually([&] { return nodes_[follower]->status().leader == leader; }));
  ASSERT_THAT(nodes_[follower]->ReadBarrier(kTimeout), IsOk());
  EXPECT_THAT(machines_[follower]->items(), ElementsAre("w"));
}

TEST_F(RaftNodeTest, LaggingNodeCatchesUpFromSnapshot) {
  snapshot_every_ = 5;
  StartAll();
  uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, kNone);
  uint64_t lagging = leader == 1 ? 2 : 1;
  net_.SetConnected(lagging, false);
  for (int i = 0; i < 20; ++i) {
    ASSERT_THAT(nodes_[leader]->ProposeAndWait("e" + std::to_string(i), kTimeout), IsOk());
  }
  net_.SetConnected(lagging, true);
  EXPECT_TRUE(Eventually([&] { return machines_[lagging]->items().size() == 20; }));
  EXPECT_EQ(machines_[lagging]->items(), machines_[leader]->items());
}

TEST_F(RaftNodeTest, OpenAppliesTheCommittedLogBeforeReturning) {
  StartAll();
  uint64_t leader = WaitForLeader();
  ASSERT_NE(leader, kNone);
  ASSERT_THAT(nodes_[leader]->ProposeAndWait("a", kTimeout), IsOk());
  ASSERT_THAT(nodes_[leader]->ProposeAndWait("b", kTimeout), IsOk());
  uint64_t follower = leader == 1 ? 2 : 1;
  ASSERT_TRUE(Eventually([&] { return machines_[follower]->items().size() == 2; }));
  for (auto& n : nodes_) n.reset();  // the whole cluster stops
  // Restarted alone, with a loop that never ticks and no peer to hear from: only Open() can
  // have applied the log.
  machines_[follower] = std::make_unique<ListMachine>();
  RaftNodeOptions o = Options(follower);
  o.tick = absl::Hours(1);
  ASSERT_OK_AND_ASSIGN(nodes_[follower], RaftNode::Open(o, machines_[follower].get(),
                                                         transports_[follower].get()));
  EXPECT_THAT(machines_[follower]->items(), ElementsAre("a", "b"));
  RaftStatus st = nodes_[follower]->status();
  EXPECT_GE(st.commit, 2u);
  EXPECT_EQ(st.applied, st.commit);
}

TEST_F(RaftNodeTest, CorruptLogRefusesToStart) {
  Start(1);
  nodes_[1].reset();
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), Options(1).dir, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "h", &value).ok());
    value[0] ^= 1;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "h", value).ok());
  }
  EXPECT_THAT(RaftNode::Open(Options(1), machines_[1].get(), transports_[1].get()).status(),
              StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace vigil::raft
