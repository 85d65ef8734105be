// The leader writes its log in parallel with replication (dissertation 10.2.1): its appends come
// out of TakeReady() as early_messages, which the shell sends before persisting, and the leader
// counts its own copy toward commitment only after Advance() reports the write durable.
#include <memory>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "raft/core/raft.h"
#include "raft/core/raft_test_util.h"

namespace vigil::raft {
namespace {

using ::vigil::testing::IsOk;

void Persist(MemoryStorage& storage, const Ready& rd) {
  storage.Append(rd.entries);
  if (rd.hard_state) storage.SetHardState(*rd.hard_state);
}

int CountType(const std::vector<Message>& msgs, MessageType type) {
  int n = 0;
  for (const Message& m : msgs) n += m.type == type ? 1 : 0;
  return n;
}

// 10.2.1: the appends for a new entry leave before the leader's own write of it.
TEST(RaftParallelPersistTest, LeaderAppendsAreEarlyMessages) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  ASSERT_EQ(net.raft(1).role(), Role::kLeader);
  Raft& leader = net.raft(1);
  ASSERT_OK_AND_ASSIGN(LogPosition pos, leader.Propose("x"));
  Ready rd = leader.TakeReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.entries[0].index, pos.index);
  EXPECT_EQ(CountType(rd.early_messages, MessageType::kAppend), 2);
  EXPECT_EQ(CountType(rd.messages, MessageType::kAppend), 0);
  for (const Message& m : rd.early_messages) {
    ASSERT_EQ(m.entries.size(), 1u);
    EXPECT_EQ(m.entries[0].index, pos.index);
  }
  Persist(*net.node(1).storage, rd);
  leader.Advance(rd);
}

// 10.2.1: a follower's ack alone is not a majority while the leader's own write is pending;
// the entry commits when Advance() reports the leader's write durable.
TEST(RaftParallelPersistTest, LeaderCountsItselfOnlyOncePersisted) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  Raft& leader = net.raft(1);
  ASSERT_OK_AND_ASSIGN(LogPosition pos, leader.Propose("x"));
  uint64_t committed_before = leader.log().committed();
  Ready rd = leader.TakeReady();
  // The ack races the leader's fsync and wins.
  leader.Step(AppendAck(2, 1, leader.term(), pos.index));
  EXPECT_EQ(leader.log().committed(), committed_before);
  EXPECT_EQ(leader.progress(1)->match, pos.index - 1);
  Persist(*net.node(1).storage, rd);
  leader.Advance(rd);
  EXPECT_EQ(leader.progress(1)->match, pos.index);
  EXPECT_EQ(leader.log().committed(), pos.index);
  // The new commit index reaches the followers in the next Ready.
  ASSERT_TRUE(leader.HasReady());
  Ready next = leader.TakeReady();
  ASSERT_EQ(next.committed_entries.size(), 1u);
  EXPECT_EQ(next.committed_entries[0].data, "x");
  leader.Advance(next);
}

// The other order: the leader's write finishes first, then one ack makes a majority.
TEST(RaftParallelPersistTest, LeaderWriteThenOneAckCommits) {
  TestNetwork net({1, 2, 3});
  net.Campaign(1);
  Raft& leader = net.raft(1);
  ASSERT_OK_AND_ASSIGN(LogPosition pos, leader.Propose("x"));
  Ready rd = leader.TakeReady();
  Persist(*net.node(1).storage, rd);
  leader.Advance(rd);
  EXPECT_LT(leader.log().committed(), pos.index);
  leader.Step(AppendAck(3, 1, leader.term(), pos.index));
  EXPECT_EQ(leader.log().committed(), pos.index);
}

// A single voter commits on its own write alone, one Ready later.
TEST(RaftParallelPersistTest, SingleVoterCommitsAfterItsWrite) {
  TestNetwork net({1});
  net.Campaign(1);
  ASSERT_EQ(net.raft(1).role(), Role::kLeader);
  ASSERT_OK_AND_ASSIGN(LogPosition pos, net.Propose(1, "solo"));
  EXPECT_EQ(net.raft(1).log().committed(), pos.index);
  ASSERT_EQ(net.node(1).applied.size(), 1u);
  EXPECT_EQ(net.node(1).applied[0].data, "solo");
}

// A term that is not yet durable must not leave early: a single voter wins its election inside
// one Ready, and if its appends to a learner left before that Ready's write, a crash could let it
// lead the same term again with a different log.
TEST(RaftParallelPersistTest, AppendsOfANewTermWaitForItsHardState) {
  auto storage = std::make_unique<MemoryStorage>();
  storage->Bootstrap({1});
  ConfChange learner{ConfChange::Type::kAddLearner, 2, ""};
  storage->Append({Entry{1, 2, EntryType::kConfChange, learner.Encode()}});
  Config c;
  c.id = 1;
  c.storage = storage.get();
  Raft raft(c);
  raft.Campaign();
  ASSERT_EQ(raft.role(), Role::kLeader);
  Ready rd = raft.TakeReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term, raft.term());
  EXPECT_TRUE(rd.early_messages.empty());
  EXPECT_GE(CountType(rd.messages, MessageType::kAppend), 1);
  Persist(*storage, rd);
  raft.Advance(rd);
  // Once the term is durable, later appends may leave early.
  ASSERT_THAT(raft.Propose("y").status(), IsOk());
  while (raft.HasReady()) {
    Ready next = raft.TakeReady();
    for (const Message& m : next.messages) EXPECT_NE(m.type, MessageType::kAppend);
    Persist(*storage, next);
    raft.Advance(next);
  }
}

}  // namespace
}  // namespace vigil::raft
