// Membership changes one server at a time (Ongaro's dissertation, chapter 4), each test citing
// the section it checks.
#include <memory>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "raft/core/raft.h"
#include "raft/core/raft_test_util.h"

namespace vigil::raft {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;

ConfChange Change(ConfChange::Type type, uint64_t id) { return ConfChange{type, id, ""}; }

TEST(ConfChangeTest, EncodeDecodeRoundTrip) {
  ConfChange cc{ConfChange::Type::kPromoteLearner, 42, "host:1:2"};
  absl::StatusOr<ConfChange> back = ConfChange::Decode(cc.Encode());
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(back->type, cc.type);
  EXPECT_EQ(back->node_id, 42u);
  EXPECT_EQ(back->context, "host:1:2");
  EXPECT_THAT(ConfChange::Decode("x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Dissertation 4.2.1: a new server joins as a non-voting learner, catches up, and only then is
// promoted; the learner never campaigns.
TEST(RaftMembershipTest, LearnerCatchesUpBeforePromotion) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  for (int i = 0; i < 5; ++i) ASSERT_THAT(net.Propose(1, "x"), IsOk());
  net.AddNode(4, std::make_unique<MemoryStorage>());
  net.Isolate(4);
  ASSERT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kAddLearner, 4)), IsOk());
  net.Drain();
  EXPECT_THAT(net.raft(1).conf_state().learners, ElementsAre(4));
  // Cut off, the learner has not caught up: promotion is refused.
  EXPECT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kPromoteLearner, 4)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("caught up")));
  net.Recover();
  net.TickAll(2);
  EXPECT_EQ(net.node(4).applied.size(), 5u);
  EXPECT_TRUE(net.raft(4).conf_state().IsLearner(4));
  net.Tick(4, 50);
  EXPECT_EQ(net.raft(4).role(), Role::kFollower);  // learners never campaign
  EXPECT_EQ(net.raft(1).role(), Role::kLeader);
  ASSERT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kPromoteLearner, 4)),
              IsOk());
  net.TickAll(2);
  EXPECT_THAT(net.raft(4).conf_state().voters, ElementsAre(1, 2, 3, 4));
  // Now a voter, node 4 can win an election.
  net.ExpireLeases({1, 2, 3});
  net.Campaign(4);
  EXPECT_EQ(net.raft(4).role(), Role::kLeader);
}

// The 2015 single-server bug fix (raft-dev, "bug in single-server membership changes"): a new
// leader must commit an entry of its own term before proposing a change.
TEST(RaftMembershipTest, NewLeaderMustCommitInTermBeforeChange) {
  TestNetwork net({1, 2, 3});
  net.SetFilter([](const Message& m) {
    return m.from == 1 && (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat);
  });
  net.Campaign(1);
  ASSERT_EQ(net.raft(1).role(), Role::kLeader);
  EXPECT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kAddLearner, 4)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("entry of its term")));
  net.Recover();
  net.TickAll(1);
  EXPECT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kAddLearner, 4)), IsOk());
}

// Dissertation 4.1: only one change at a time; the next waits until the previous commits.
TEST(RaftMembershipTest, OnePendingChangeAtATime) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(1);
  ASSERT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kAddLearner, 4)), IsOk());
  EXPECT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kAddLearner, 5)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("pending")));
  net.Recover();
  net.TickAll(1);
  EXPECT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kAddLearner, 5)), IsOk());
}

// Dissertation 4.1: a configuration takes effect when appended, and a server whose latest
// configuration entry is truncated reverts to the previous configuration.
TEST(RaftMembershipTest, TruncatedChangeReverts) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(1);
  ASSERT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kRemoveNode, 3)), IsOk());
  EXPECT_THAT(net.raft(1).conf_state().voters, ElementsAre(1, 2));  // effective at once
  net.ExpireLeases({2, 3});
  net.Campaign(2);
  ASSERT_EQ(net.raft(2).role(), Role::kLeader);
  ASSERT_THAT(net.Propose(2, "y"), IsOk());
  net.Recover();
  net.TickAll(1);
  EXPECT_EQ(net.raft(1).leader(), 2u);
  EXPECT_THAT(net.raft(1).conf_state().voters, ElementsAre(1, 2, 3));
}

// Dissertation 4.2.2: removing the leader. It steps down once the removal commits and hands off
// leadership; the remaining servers carry on.
TEST(RaftMembershipTest, RemoveLeader) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  ASSERT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kRemoveNode, 1)), IsOk());
  net.Drain();
  EXPECT_NE(net.raft(1).role(), Role::kLeader);
  EXPECT_FALSE(net.raft(1).Promotable());
  uint64_t leader = net.raft(2).leader();
  ASSERT_TRUE(leader == 2 || leader == 3) << leader;
  EXPECT_EQ(net.raft(leader).role(), Role::kLeader);
  EXPECT_THAT(net.raft(leader).conf_state().voters, ::testing::Not(::testing::Contains(1u)));
  EXPECT_THAT(net.Propose(leader, "after"), IsOk());
  net.TickAll(1);
  uint64_t other = leader == 2 ? 3 : 2;
  ASSERT_EQ(net.node(other).applied.size(), 1u);
  EXPECT_EQ(net.node(other).applied[0].data, "after");
}

// Dissertation 4.1: removing a follower shrinks the quorum; the removed node stops counting.
TEST(RaftMembershipTest, RemoveFollowerShrinksQuorum) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  ASSERT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kRemoveNode, 3)), IsOk());
  net.TickAll(1);
  net.Isolate(3);
  EXPECT_THAT(net.Propose(1, "two of two"), IsOk());
  EXPECT_EQ(net.node(2).applied.size(), 1u);
  EXPECT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kRemoveNode, 2)), IsOk());
  net.TickAll(1);
  EXPECT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kRemoveNode, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("last voter")));
}

// Restart (section 3.8): the configuration is rebuilt from the stored snapshot and log.
TEST(RaftMembershipTest, RestartRestoresConfiguration) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  ASSERT_THAT(net.raft(1).ProposeConfChange(Change(ConfChange::Type::kAddLearner, 7)), IsOk());
  net.TickAll(1);
  Config c;
  c.id = 2;
  c.storage = net.node(2).storage.get();
  Raft restarted(c);
  EXPECT_THAT(restarted.conf_state().voters, ElementsAre(1, 2, 3));
  EXPECT_THAT(restarted.conf_state().learners, ElementsAre(7));
  EXPECT_EQ(restarted.term(), net.raft(2).term());
  EXPECT_EQ(restarted.log().committed(), net.raft(2).log().committed());
}

}  // namespace
}  // namespace vigil::raft
