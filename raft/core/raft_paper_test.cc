// Scenario tests of the Raft core. Each cites the section of Ongaro's dissertation ("Consensus:
// Bridging Theory and Practice", 2014) or the Raft paper (Ongaro & Ousterhout 2014) it checks.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

// Paper 5.2: a candidate that wins votes from a majority becomes leader; the others follow.
TEST(RaftElectionTest, CandidateWithMajorityBecomesLeader) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  EXPECT_EQ(net.raft(1).role(), Role::kLeader);
  EXPECT_EQ(net.raft(2).leader(), 1u);
  EXPECT_EQ(net.raft(3).leader(), 1u);
  EXPECT_EQ(net.raft(2).term(), net.raft(1).term());
}

// Paper 5.2: without a majority no leader is elected.
TEST(RaftElectionTest, NoLeaderWithoutMajority) {
  TestNetwork net({1, 2, 3, 4, 5});
  net.Cut(1, 2);
  net.Cut(1, 3);
  net.Cut(1, 4);
  net.Campaign(1);
  EXPECT_NE(net.raft(1).role(), Role::kLeader);
}

// Paper 5.2: election timeouts are randomized, so one follower times out first and wins.
TEST(RaftElectionTest, RandomizedTimeoutElectsALeaderByTicking) {
  TestNetwork net({1, 2, 3});
  net.TickAll(40);
  int leaders = 0;
  for (auto& [id, n] : net.nodes()) leaders += n.raft->role() == Role::kLeader ? 1 : 0;
  EXPECT_EQ(leaders, 1);
}

// Paper 5.4.1: a voter denies its vote to a candidate whose log is less up to date.
TEST(RaftElectionTest, VoteDeniedToStaleLog) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(3);
  ASSERT_THAT(net.Propose(1, "x"), IsOk());
  net.Recover();
  net.Isolate(1);
  net.ExpireLeases({2, 3});
  // Node 3 lacks "x"; node 2 has it and refuses, so 3 cannot win.
  net.raft(3).Campaign();
  net.Drain();
  EXPECT_NE(net.raft(3).role(), Role::kLeader);
  net.Campaign(2);
  EXPECT_EQ(net.raft(2).role(), Role::kLeader);
}

// Dissertation 10.2 (flow control): a leader told that a follower is unreachable stops
// pipelining to it and probes (one append at a time) until it answers again.
TEST(RaftReplicationTest, UnreachableFollowerIsProbed) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  ASSERT_THAT(net.Propose(1, "x"), IsOk());
  ASSERT_EQ(net.raft(1).progress(2)->state, Progress::State::kReplicate);
  net.raft(1).ReportUnreachable(2);
  EXPECT_EQ(net.raft(1).progress(2)->state, Progress::State::kProbe);
  EXPECT_EQ(net.raft(1).progress(3)->state, Progress::State::kReplicate);
  ASSERT_THAT(net.Propose(1, "y"), IsOk());  // The probe is answered: pipelining again.
  EXPECT_EQ(net.raft(1).progress(2)->state, Progress::State::kReplicate);
  net.raft(2).ReportUnreachable(1);  // Not a leader: ignored.
}

// Paper 5.3: committed entries are applied on every server in the same order.
TEST(RaftReplicationTest, CommittedEntriesAppliedEverywhereInOrder) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  for (int i = 0; i < 10; ++i) ASSERT_THAT(net.Propose(1, absl::StrCat("e", i)), IsOk());
  net.TickAll(2);  // heartbeats carry the final commit index
  for (uint64_t id : {1, 2, 3}) {
    ASSERT_EQ(net.node(id).applied.size(), 10u) << id;
    EXPECT_EQ(AppliedData(net.node(id)), AppliedData(net.node(1)));
  }
}

// Dissertation 6.2: a proposal on a follower is refused with the leader's id.
TEST(RaftReplicationTest, FollowerProposalNamesLeader) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  EXPECT_THAT(net.raft(2).Propose("x"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("leader=1")));
}

// Paper 5.3 (end): fast backtracking skips a whole conflicting term per round trip.
TEST(RaftReplicationTest, FastBacktrackingSkipsConflictingTerms) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  // Node 1 appends 50 entries no one else sees, then loses leadership.
  net.Isolate(1);
  for (int i = 0; i < 50; ++i) ASSERT_THAT(net.Propose(1, "lost"), IsOk());
  net.Recover();
  net.Isolate(1);
  net.ExpireLeases({2, 3});
  net.Campaign(2);
  ASSERT_EQ(net.raft(2).role(), Role::kLeader);
  ASSERT_THAT(net.Propose(2, "kept"), IsOk());
  size_t before = net.sent().size();
  net.Recover();
  net.TickAll(2);
  int rejects = 0;
  for (size_t i = before; i < net.sent().size(); ++i) {
    const Message& m = net.sent()[i];
    if (m.type == MessageType::kAppendResponse && m.reject && m.from == 1) ++rejects;
  }
  EXPECT_LE(rejects, 3);  // not ~50
  EXPECT_EQ(net.raft(1).log().last_index(), net.raft(2).log().last_index());
  EXPECT_EQ(AppliedData(net.node(1)), std::vector<std::string>{"kept"});
}

// Paper 5.4.2 and figure 8: a leader never commits an entry from an earlier term by counting
// replicas; it commits it only indirectly, with an entry of its own term.
TEST(RaftCommitTest, Figure8PreviousTermEntryNotCommittedByCounting) {
  std::vector<uint64_t> ids = {1, 2, 3, 4, 5};
  auto make = [&](std::vector<uint64_t> terms, uint64_t term) {
    auto s = std::make_unique<MemoryStorage>();
    s->Bootstrap(ids);  // entries 1..5, term 1, committed
    std::vector<Entry> ents;
    for (uint64_t t : terms) ents.push_back(Entry{t, 6 + ents.size(), EntryType::kNormal, "v"});
    s->Append(ents);
    s->SetHardState(HardState{term, kNone, 5});
    return s;
  };
  // Figure 8 (c): S1 (term 4) has index 6 from term 2, as does S2; S5 has index 6 from term 3.
  TestNetwork net({});
  net.AddNode(1, make({2}, 3));
  net.AddNode(2, make({2}, 3));
  net.AddNode(3, make({}, 3));
  net.AddNode(4, make({}, 3));
  net.AddNode(5, make({3}, 3));
  net.Isolate(4);
  net.Isolate(5);
  // Elect S1 but hold back its appends, so we decide which acknowledgements arrive.
  net.SetFilter([](const Message& m) {
    return m.from == 1 && (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat);
  });
  net.raft(1).Campaign();
  net.Drain();
  ASSERT_EQ(net.raft(1).role(), Role::kLeader);
  const uint64_t term = net.raft(1).term();
  // S2 and S3 acknowledge index 6 (the term-2 entry): a majority holds it, yet no commit.
  for (uint64_t from : {2, 3}) net.Deliver(AppendAck(from, 1, term, 6));
  EXPECT_EQ(net.raft(1).log().committed(), 5u);
  // Figure 8 (d): had it committed, S5 could now win and overwrite index 6 on a majority.
  TestNetwork alt({});
  alt.AddNode(1, make({2}, 4));
  alt.AddNode(2, make({2}, 4));
  alt.AddNode(3, make({2}, 4));
  alt.AddNode(4, make({}, 4));
  alt.AddNode(5, make({3}, 4));
  alt.Isolate(1);
  alt.Campaign(5);
  ASSERT_EQ(alt.raft(5).role(), Role::kLeader);
  alt.TickAll(1);
  EXPECT_EQ(*alt.raft(3).log().Term(6), 3u);
  // Figure 8 (e): once S1's own-term no-op (index 7) reaches the majority, 6 and 7 commit.
  for (uint64_t from : {2, 3}) net.Deliver(AppendAck(from, 1, term, 7));
  EXPECT_EQ(net.raft(1).log().committed(), 7u);
}

// Dissertation 9.6 (pre-vote) and 6.2 (check-quorum): a partitioned follower that keeps timing
// out does not inflate its term, and rejoining does not depose the leader.
TEST(RaftPreVoteTest, PartitionedNodeDoesNotDisruptOnRejoin) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  const uint64_t term = net.raft(1).term();
  net.Isolate(3);
  net.Tick(3, 100);
  EXPECT_EQ(net.raft(3).term(), term);
  EXPECT_EQ(net.raft(3).role(), Role::kPreCandidate);
  net.Recover();
  net.TickAll(3);
  EXPECT_EQ(net.raft(1).role(), Role::kLeader);
  EXPECT_EQ(net.raft(1).term(), term);
  EXPECT_EQ(net.raft(3).leader(), 1u);
}

// Contrast (dissertation 9.6): without pre-vote and check-quorum the same partition forces a new
// election when the node returns.
TEST(RaftPreVoteTest, WithoutPreVoteRejoiningNodeDisrupts) {
  TestNetwork net({1, 2, 3}, [](Config& c) {
    c.pre_vote = false;
    c.check_quorum = false;
  });
  net.Campaign(1);
  const uint64_t term = net.raft(1).term();
  net.Isolate(3);
  net.Tick(3, 100);
  EXPECT_GT(net.raft(3).term(), term);
  net.Recover();
  net.TickAll(20);
  EXPECT_GT(net.raft(1).term(), term);
}

// Dissertation 6.2: a leader that cannot reach a majority for an election timeout steps down.
TEST(RaftCheckQuorumTest, IsolatedLeaderStepsDown) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(1);
  net.Tick(1, 2 * 10 + 1);
  EXPECT_EQ(net.raft(1).role(), Role::kFollower);
  // The majority side elects a new leader and makes progress.
  net.ExpireLeases({2, 3});
  net.Campaign(2);
  EXPECT_EQ(net.raft(2).role(), Role::kLeader);
  EXPECT_THAT(net.Propose(2, "x"), IsOk());
}

// Dissertation 4.2.3: followers that hear from a leader ignore vote requests (the lease).
TEST(RaftCheckQuorumTest, FollowersInLeaseIgnoreVoteRequests) {
  TestNetwork net({1, 2, 3}, [](Config& c) { c.pre_vote = false; });
  net.Campaign(1);
  const uint64_t term = net.raft(1).term();
  net.raft(3).Campaign();  // forced, not by timeout
  net.Drain();
  EXPECT_EQ(net.raft(1).role(), Role::kLeader);
  EXPECT_EQ(net.raft(2).term(), term);
}

// Paper 7 / dissertation 5: a follower too far behind receives InstallSnapshot and then the rest
// of the log by AppendEntries.
TEST(RaftSnapshotTest, SlowFollowerCatchesUpFromSnapshot) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(3);
  for (int i = 0; i < 20; ++i) ASSERT_THAT(net.Propose(1, absl::StrCat("e", i)), IsOk());
  // The leader compacts its log past everything node 3 has.
  uint64_t applied = net.raft(1).log().applied();
  MemoryStorage& s1 = *net.node(1).storage;
  ASSERT_THAT(s1.CreateSnapshot(applied, net.raft(1).ConfStateAt(applied), "state").status(),
              IsOk());
  ASSERT_THAT(s1.Compact(applied), IsOk());
  ASSERT_THAT(net.Propose(1, "after"), IsOk());
  net.Recover();
  net.TickAll(3);
  bool snapshot_sent = false;
  for (const Message& m : net.sent()) {
    if (m.type == MessageType::kSnapshot && m.to == 3) snapshot_sent = true;
  }
  EXPECT_TRUE(snapshot_sent);
  EXPECT_EQ(net.node(3).snapshots_installed, 1u);
  EXPECT_EQ(net.node(3).storage->GetSnapshot().data, "state");
  EXPECT_EQ(net.raft(3).log().committed(), net.raft(1).log().committed());
  EXPECT_EQ(AppliedData(net.node(3)), std::vector<std::string>{"after"});
}

// Dissertation 6.4: ReadIndex answers after a heartbeat round confirms leadership.
TEST(RaftReadIndexTest, LeaderAndFollowerReads) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  ASSERT_THAT(net.Propose(1, "x"), IsOk());
  ASSERT_THAT(net.raft(1).ReadIndex("r1"), IsOk());
  net.Drain();
  ASSERT_EQ(net.node(1).reads.size(), 1u);
  EXPECT_EQ(net.node(1).reads[0].context, "r1");
  EXPECT_EQ(net.node(1).reads[0].index, net.raft(1).log().committed());
  // A follower forwards the request and learns the leader's commit index.
  ASSERT_THAT(net.raft(2).ReadIndex("r2"), IsOk());
  net.Drain();
  ASSERT_EQ(net.node(2).reads.size(), 1u);
  EXPECT_EQ(net.node(2).reads[0].index, net.raft(1).log().committed());
}

// Dissertation 6.4: a deposed leader cut off from the majority cannot serve a ReadIndex read,
// which would be stale.
TEST(RaftReadIndexTest, PartitionedLeaderCannotServeReads) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(1);
  ASSERT_THAT(net.raft(1).ReadIndex("stale"), IsOk());
  net.Drain();
  net.ExpireLeases({2, 3});
  net.Campaign(2);
  ASSERT_THAT(net.Propose(2, "newer"), IsOk());
  net.Tick(1, 3);
  EXPECT_TRUE(net.node(1).reads.empty());
}

// Dissertation 6.4 step 1: a new leader defers reads until an entry of its term commits.
TEST(RaftReadIndexTest, NewLeaderDefersReadsUntilTermCommit) {
  TestNetwork net({1, 2, 3});
  net.SetFilter([](const Message& m) { return m.from == 1; });
  net.raft(1).Campaign();
  net.Drain();
  net.raft(1).Step(Message{MessageType::kPreVoteResponse, 1, 2, net.raft(1).term() + 1});
  net.Drain();
  net.raft(1).Step(Message{MessageType::kVoteResponse, 1, 2, net.raft(1).term()});
  net.Drain();
  ASSERT_EQ(net.raft(1).role(), Role::kLeader);
  ASSERT_THAT(net.raft(1).ReadIndex("early"), IsOk());
  net.Drain();
  EXPECT_TRUE(net.node(1).reads.empty());
  net.Recover();
  net.TickAll(2);
  ASSERT_EQ(net.node(1).reads.size(), 1u);
  EXPECT_GE(net.node(1).reads[0].index, 4u);  // at least the new term's no-op
}

// Dissertation 3.10: leadership transfer to an up-to-date follower via TimeoutNow.
TEST(RaftTransferTest, TransferToFollower) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  const uint64_t term = net.raft(1).term();
  ASSERT_THAT(net.raft(1).TransferLeadership(3), IsOk());
  net.Drain();
  EXPECT_EQ(net.raft(3).role(), Role::kLeader);
  EXPECT_EQ(net.raft(3).term(), term + 1);
  EXPECT_EQ(net.raft(1).leader(), 3u);
}

// Dissertation 3.10: a lagging target is caught up first; proposals pause during the transfer.
TEST(RaftTransferTest, LaggingTargetCaughtUpFirst) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(3);
  ASSERT_THAT(net.Propose(1, "x"), IsOk());
  ASSERT_THAT(net.raft(1).TransferLeadership(3), IsOk());
  net.Drain();
  EXPECT_THAT(net.raft(1).Propose("y"), StatusIs(absl::StatusCode::kUnavailable));
  net.Recover();
  net.TickAll(1);
  EXPECT_EQ(net.raft(3).role(), Role::kLeader);
  EXPECT_EQ(AppliedData(net.node(3)), std::vector<std::string>{"x"});
}

// Dissertation 3.10: a transfer that does not complete within an election timeout is aborted.
TEST(RaftTransferTest, TransferAbortsAfterElectionTimeout) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  net.Isolate(3);
  ASSERT_THAT(net.raft(1).TransferLeadership(3), IsOk());
  net.Tick(1, 10);
  EXPECT_EQ(net.raft(1).lead_transferee(), kNone);
  EXPECT_EQ(net.raft(1).role(), Role::kLeader);  // node 2 keeps the quorum alive
  EXPECT_THAT(net.Propose(1, "z"), IsOk());
}

}  // namespace
}  // namespace vigil::raft
