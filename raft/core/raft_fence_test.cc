// Fenced proposals (Raft::ProposeFenced) and Raft::LeaderApplied. A fenced proposal carries the
// term under which the proposer computed it: the core appends it only while leading that term,
// so its entry either commits with that term or is overwritten by a later leader (paper 5.3)
// and never applies. The apply-time half of the fence (the state machine compares the entry's
// term with the command's) is tested with the control plane's state machine in cluster/.
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "raft/core/raft.h"
#include "raft/core/raft_test_util.h"

namespace vigil::raft {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;

absl::StatusOr<LogPosition> ProposeFenced(TestNetwork& net, uint64_t id, uint64_t term,
                                          std::string data) {
  absl::StatusOr<LogPosition> pos = net.raft(id).ProposeFenced(term, std::move(data));
  net.Drain();
  return pos;
}

// Paper 5.3: a proposal in the leader's current term commits and applies everywhere with that
// term.
TEST(RaftFenceTest, FencedProposalInTheLeadersTermApplies) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  const uint64_t term = net.raft(1).term();
  ASSERT_OK_AND_ASSIGN(LogPosition pos, ProposeFenced(net, 1, term, "state"));
  EXPECT_EQ(pos.term, term);
  net.TickAll(2);  // Heartbeats carry the commit index to the followers.
  for (uint64_t id : {1, 2, 3}) {
    ASSERT_EQ(AppliedData(net.node(id)), std::vector<std::string>{"state"}) << id;
    EXPECT_EQ(net.node(id).applied[0].term, term);
  }
}

// A follower, or a leader of another term, refuses without appending anything: nothing is
// forwarded, and the error names the leader.
TEST(RaftFenceTest, FencedProposalOutsideItsTermIsRefused) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  const uint64_t term = net.raft(1).term();
  const uint64_t last = net.raft(1).log().last_index();
  EXPECT_THAT(ProposeFenced(net, 2, term, "x"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("leader=1")));
  EXPECT_THAT(ProposeFenced(net, 1, term - 1, "x"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("this node leads")));
  EXPECT_THAT(ProposeFenced(net, 1, term + 1, "x"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(net.raft(id).log().last_index(), last) << id;
}

// Paper 5.3 and figure 7: a leader that is deposed before its entry commits (here: isolated, a
// new leader elected and committing) has that entry overwritten when it rejoins. The entry never
// applies anywhere, the index now holds a later term (which the shell reports to the proposer as
// a lost fenced proposal), and the old term can no longer be proposed in.
TEST(RaftFenceTest, DeposedLeadersFencedEntryIsOverwrittenAndNeverApplied) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  const uint64_t old_term = net.raft(1).term();
  net.Isolate(1);
  ASSERT_OK_AND_ASSIGN(LogPosition stale, ProposeFenced(net, 1, old_term, "stale"));
  EXPECT_EQ(net.raft(1).log().committed(), stale.index - 1);

  net.ExpireLeases({2, 3});
  net.Campaign(2);
  ASSERT_EQ(net.raft(2).role(), Role::kLeader);
  const uint64_t new_term = net.raft(2).term();
  ASSERT_GT(new_term, old_term);
  ASSERT_THAT(ProposeFenced(net, 2, new_term, "fresh"), IsOk());

  net.Recover();
  net.TickAll(2);  // Node 1 hears the new leader, steps down and has its suffix replaced.
  EXPECT_EQ(net.raft(1).role(), Role::kFollower);
  absl::StatusOr<uint64_t> term_at = net.raft(1).log().Term(stale.index);
  ASSERT_OK(term_at.status());
  EXPECT_EQ(*term_at, new_term);
  for (uint64_t id : {1, 2, 3}) {
    EXPECT_EQ(AppliedData(net.node(id)), std::vector<std::string>{"fresh"}) << id;
  }
  EXPECT_THAT(ProposeFenced(net, 1, old_term, "stale again"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("leader=2")));
  EXPECT_THAT(ProposeFenced(net, 2, old_term, "stale again"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

// Dissertation 6.4: a new leader knows everything committed before its term only once an entry
// of its own term commits; LeaderApplied() waits for that entry to be applied.
TEST(RaftFenceTest, LeaderAppliedOnceItsNoOpApplies) {
  TestNetwork net({1, 2, 3});
  net.SetFilter([](const Message& m) { return m.type == MessageType::kAppendResponse; });
  net.Campaign(1);
  ASSERT_EQ(net.raft(1).role(), Role::kLeader);
  EXPECT_FALSE(net.raft(1).LeaderApplied());
  EXPECT_FALSE(net.raft(2).LeaderApplied());
  net.Recover();
  net.TickAll(2);
  EXPECT_TRUE(net.raft(1).LeaderApplied());
  EXPECT_FALSE(net.raft(2).LeaderApplied());
}

}  // namespace
}  // namespace vigil::raft
