#include "raft/core/raft_log.h"

#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "raft/core/progress.h"
#include "raft/core/storage.h"

namespace vigil::raft {
namespace {

using ::vigil::testing::IsOk;

std::vector<Entry> Ents(uint64_t from, uint64_t to, uint64_t term) {
  std::vector<Entry> out;
  for (uint64_t i = from; i <= to; ++i) out.push_back(Entry{term, i, EntryType::kNormal, "x"});
  return out;
}

// Paper 5.3: a conflicting suffix is deleted and replaced by the leader's entries.
TEST(RaftLogTest, MaybeAppendTruncatesConflictingSuffix) {
  MemoryStorage s;
  s.Append(Ents(1, 5, 1));
  RaftLog log(&s);
  std::optional<uint64_t> last = log.MaybeAppend(2, 1, 0, Ents(3, 4, 2));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, 4u);
  EXPECT_EQ(log.last_index(), 4u);
  EXPECT_EQ(*log.Term(3), 2u);
  EXPECT_EQ(log.unstable_entries().size(), 2u);
  // A mismatching previous entry is rejected.
  EXPECT_FALSE(log.MaybeAppend(4, 1, 0, Ents(5, 5, 2)).has_value());
}

// Appending entries that are already present (a duplicate append) changes nothing.
TEST(RaftLogTest, DuplicateAppendIsNoOp) {
  MemoryStorage s;
  s.Append(Ents(1, 5, 1));
  RaftLog log(&s);
  ASSERT_TRUE(log.MaybeAppend(1, 1, 3, Ents(2, 3, 1)).has_value());
  EXPECT_EQ(log.last_index(), 5u);
  EXPECT_TRUE(log.unstable_entries().empty());
  EXPECT_EQ(log.committed(), 3u);
}

TEST(RaftLogTest, FindConflictByTermSkipsWholeTerms) {
  MemoryStorage s;
  s.Append(Ents(1, 3, 1));
  s.Append(Ents(4, 9, 3));
  RaftLog log(&s);
  EXPECT_EQ(log.FindConflictByTerm(9, 2), (std::pair<uint64_t, uint64_t>{3, 1}));
  EXPECT_EQ(log.FindConflictByTerm(9, 3), (std::pair<uint64_t, uint64_t>{9, 3}));
}

TEST(RaftLogTest, SliceRespectsSizeLimitAcrossStableAndUnstable) {
  MemoryStorage s;
  s.Append(Ents(1, 3, 1));
  RaftLog log(&s);
  log.Append(Ents(4, 6, 1));
  ASSERT_OK_AND_ASSIGN(std::vector<Entry> all, log.Slice(2, 7, 1 << 20));
  EXPECT_EQ(all.size(), 5u);
  ASSERT_OK_AND_ASSIGN(std::vector<Entry> one, log.Slice(2, 7, 1));
  EXPECT_EQ(one.size(), 1u);  // always at least one
  ASSERT_OK_AND_ASSIGN(std::vector<Entry> some, log.Slice(2, 7, 2 * EntrySize(all[0])));
  EXPECT_EQ(some.size(), 2u);
}

TEST(RaftLogTest, CompactedReadsReportCompacted) {
  MemoryStorage s;
  s.Append(Ents(1, 10, 1));
  ASSERT_THAT(s.CreateSnapshot(8, ConfState{{1}, {}}, "d").status(), IsOk());
  ASSERT_THAT(s.Compact(8), IsOk());
  RaftLog log(&s);
  EXPECT_EQ(log.first_index(), 9u);
  EXPECT_TRUE(IsCompacted(log.Slice(5, 9, 100).status()));
  EXPECT_TRUE(IsCompacted(log.Term(7).status()));
  EXPECT_EQ(*log.Term(8), 1u);  // the snapshot's index keeps its term
}

// Section 10.2 flow control: a replicating follower has a bounded window of appends in flight.
TEST(ProgressTest, InflightsBoundThePipeline) {
  Progress pr(1, /*max_inflight=*/2, /*max_inflight_bytes=*/0, /*learner=*/false);
  pr.BecomeReplicate();
  pr.SentEntries(3, 10);
  EXPECT_FALSE(pr.IsPaused());
  pr.SentEntries(5, 10);
  EXPECT_TRUE(pr.IsPaused());
  ASSERT_TRUE(pr.MaybeUpdate(3));
  pr.inflights.FreeLE(3);
  EXPECT_FALSE(pr.IsPaused());
  EXPECT_EQ(pr.next, 6u);
}

TEST(ProgressTest, ProbeRejectUsesHint) {
  Progress pr(10, 4, 0, false);
  pr.SentEntries(12, 10);  // probing: one message at a time
  EXPECT_TRUE(pr.IsPaused());
  EXPECT_TRUE(pr.MaybeDecrTo(9, 4));
  EXPECT_EQ(pr.next, 5u);
  EXPECT_FALSE(pr.IsPaused());
  EXPECT_FALSE(pr.MaybeDecrTo(9, 2));  // stale: no longer the probed index
}

}  // namespace
}  // namespace vigil::raft
