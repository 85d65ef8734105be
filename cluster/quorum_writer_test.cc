#include "cluster/quorum_writer.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cluster/testing/fake_nodes.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;
using Mode = FakeNodes::Mode;

constexpr uint32_t kShards = 8;

std::shared_ptr<const ShardMap> ThreeNodeMap() { return UniformMap(kShards, {1, 2, 3}); }

std::vector<Series> MakeSeries(int n, int samples_each = 2, int64_t t0 = 1000) {
  std::vector<Series> out;
  for (int i = 0; i < n; ++i) {
    Series s{Labels{{"__name__", "m"}, {"i", absl::StrCat(i)}}, {}};
    for (int k = 0; k < samples_each; ++k) s.samples.push_back({t0 + k, double(i)});
    out.push_back(std::move(s));
  }
  return out;
}

std::set<uint32_t> ShardsOf(const std::vector<Series>& series, uint32_t shards = kShards) {
  std::set<uint32_t> out;
  for (const Series& s : series) out.insert(ModShardOf(s.labels.Hash(), shards));
  return out;
}

class QuorumWriterTest : public ::testing::Test {
 protected:
  QuorumWriterTest()
      : nodes_(&clock_, kShards), hints_(HintOptions(), &clock_),
        writer_(Options(), &nodes_, &clock_, &hints_) {}

  static QuorumWriterOptions Options() {
    QuorumWriterOptions o;
    o.shard_of = &ModShardOf;
    o.timeout = absl::Seconds(5);
    return o;
  }

  // Starts a write; the answer lands in `result` when it comes.
  void Start(std::shared_ptr<const ShardMap> map, std::vector<Series> series) {
    result_.reset();
    writer_.Write(std::move(map), std::move(series),
                  [this](absl::StatusOr<storage::AppendResult> r) {
                    ASSERT_FALSE(result_.has_value()) << "answered twice";
                    result_ = std::move(r);
                  });
  }

  FakeClock clock_;
  FakeNodes nodes_;
  HintStore hints_;
  QuorumWriter writer_;
  std::optional<absl::StatusOr<storage::AppendResult>> result_;
};

TEST(QuorumTest, QuorumSizesOverlap) {
  struct Case { size_t n; int w; int r; };
  for (const Case& c : {Case{1, 1, 1}, Case{2, 2, 1}, Case{3, 2, 2}, Case{4, 3, 2},
                        Case{5, 3, 3}}) {
    SCOPED_TRACE(c.n);
    EXPECT_EQ(WriteQuorum(c.n), c.w);
    EXPECT_GT(WriteQuorum(c.n) + c.r, static_cast<int>(c.n));
  }
}

TEST_F(QuorumWriterTest, AllReplicasAckAndEachNodeGetsOneRequest) {
  std::vector<Series> series = MakeSeries(20, 3);
  const std::set<uint32_t> touched = ShardsOf(series);
  Start(ThreeNodeMap(), series);
  ASSERT_TRUE(result_.has_value());
  ASSERT_OK(*result_);
  EXPECT_EQ((*result_)->appended, 60);
  EXPECT_EQ((*result_)->duplicates, 0);
  for (NodeId n : {1, 2, 3}) {
    EXPECT_EQ(nodes_.writes(n), 1) << "node " << n;
    EXPECT_THAT(nodes_.write_requests(n)[0].shards, SizeIs(touched.size()));
    EXPECT_EQ(nodes_.SampleCount(n), 60);
  }
  EXPECT_EQ(writer_.inflight(), 0u);
  EXPECT_TRUE(hints_.Targets().empty());
  // A retry is accepted as duplicates.
  Start(ThreeNodeMap(), series);
  ASSERT_OK(*result_);
  EXPECT_EQ((*result_)->duplicates, 60);
}

TEST_F(QuorumWriterTest, OneReplicaDownStillSucceedsAndLeavesHints) {
  nodes_.SetMode(3, Mode::kDown);
  std::vector<Series> series = MakeSeries(20);
  Start(ThreeNodeMap(), series);
  ASSERT_OK(*result_);
  EXPECT_EQ((*result_)->appended, 40);
  EXPECT_EQ(hints_.Targets(), std::vector<NodeId>{3});
  HintStats st = hints_.Stats(3);
  EXPECT_EQ(st.hints, static_cast<int64_t>(ShardsOf(series).size()));
  EXPECT_EQ(st.samples, 40);
}

TEST_F(QuorumWriterTest, TwoReplicasDownFailsNamingTheShards) {
  nodes_.SetMode(2, Mode::kDown);
  nodes_.SetMode(3, Mode::kDown);
  std::vector<Series> series = MakeSeries(3);
  Start(ThreeNodeMap(), series);
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("missed quorum")));
  for (uint32_t s : ShardsOf(series)) {
    EXPECT_THAT(result_->status().message(), HasSubstr(absl::StrCat(s, " (1 of 3 acked)")));
  }
  EXPECT_THAT(result_->status().message(), HasSubstr("node 2"));
  // Node 1 stored it anyway (no rollback); nodes 2 and 3 get hints.
  EXPECT_EQ(nodes_.SampleCount(1), 6);
  EXPECT_EQ(hints_.Targets(), (std::vector<NodeId>{2, 3}));
}

TEST_F(QuorumWriterTest, OnlyShardsThatMissQuorumAreNamed) {
  // Shard placement differs per shard: node 9 alone holds odd shards.
  std::vector<ShardPlacement> shards;
  for (uint32_t s = 0; s < kShards; ++s) {
    shards.push_back(s % 2 ? ShardPlacement{{9}, {}, 1} : ShardPlacement{{1, 2, 3}, {}, 1});
  }
  nodes_.SetMode(9, Mode::kDown);
  std::vector<Series> series = MakeSeries(30);
  Start(MapOf(shards), series);
  ASSERT_THAT(*result_, StatusIs(absl::StatusCode::kUnavailable));
  for (uint32_t s : ShardsOf(series)) {
    EXPECT_EQ(absl::StrContains(result_->status().message(), absl::StrCat(" ", s, " (")), s % 2 == 1)
        << "shard " << s << ": " << result_->status();
  }
}

TEST_F(QuorumWriterTest, AnswersAtQuorumWithoutWaitingForTheSlowReplica) {
  nodes_.SetMode(3, Mode::kHold);
  Start(ThreeNodeMap(), MakeSeries(10));
  ASSERT_TRUE(result_.has_value());
  ASSERT_OK(*result_);
  EXPECT_EQ(writer_.inflight(), 1u);  // node 3 still owes an answer
  nodes_.Release(3, /*succeed=*/false);
  EXPECT_EQ(writer_.inflight(), 0u);
  EXPECT_EQ(hints_.Targets(), std::vector<NodeId>{3});
}

TEST_F(QuorumWriterTest, DeadlineFailsAWriteWhoseReplicasDoNotAnswer) {
  nodes_.SetMode(2, Mode::kHold);
  nodes_.SetMode(3, Mode::kHold);
  Start(ThreeNodeMap(), MakeSeries(4));
  EXPECT_FALSE(result_.has_value());
  clock_.Advance(absl::Seconds(4));
  EXPECT_EQ(writer_.ExpireOverdue(), 0);
  EXPECT_FALSE(result_.has_value());
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(writer_.ExpireOverdue(), 1);
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("deadline")));
  EXPECT_EQ(writer_.inflight(), 0u);
  EXPECT_EQ(hints_.Targets(), (std::vector<NodeId>{2, 3}));
  // Late answers change nothing (and the fixture fails on a second answer).
  nodes_.Release(2, true);
  nodes_.Release(3, true);
  EXPECT_EQ(hints_.Stats(2).added, hints_.Stats(2).hints);
}

TEST_F(QuorumWriterTest, SlowReplicaPastTheDeadlineCountsAsFailed) {
  nodes_.SetDelay(3, absl::Seconds(6));  // the fake fails calls past their deadline
  Start(ThreeNodeMap(), MakeSeries(4));
  ASSERT_OK(*result_);  // nodes 1 and 2
  EXPECT_EQ(hints_.Targets(), std::vector<NodeId>{3});
}

// A moving shard needs W acks in its current and in its pending replica set.
TEST_F(QuorumWriterTest, MovingShardNeedsQuorumInBothSets) {
  struct Case {
    std::vector<NodeId> down;
    bool ok;
  };
  const std::vector<Case> cases = {
      {{}, true},     {{4}, true},     {{3}, true},     {{3, 4}, true},
      {{1}, true},    {{1, 2}, false}, {{2, 4}, false}, {{1, 3}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "down " << ::testing::PrintToString(c.down));
    for (NodeId n : {1, 2, 3, 4}) nodes_.SetMode(n, Mode::kUp);
    for (NodeId n : c.down) nodes_.SetMode(n, Mode::kDown);
    Start(MapOf({ShardPlacement{{1, 2, 3}, {1, 2, 4}, 1}}), MakeSeries(2));
    ASSERT_TRUE(result_.has_value());
    EXPECT_EQ(result_->ok(), c.ok) << result_->status();
  }
  EXPECT_EQ(nodes_.writes(4), static_cast<int>(cases.size()));  // pending owners get writes
}

TEST_F(QuorumWriterTest, RefusedInputIsInvalidArgument) {
  for (NodeId n : {1, 2, 3}) nodes_.SetMode(n, Mode::kReject);
  Start(ThreeNodeMap(), MakeSeries(2));
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad labels")));
}

TEST_F(QuorumWriterTest, ShardWithoutReplicasFails) {
  Start(MapOf(std::vector<ShardPlacement>(kShards)), MakeSeries(2));
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(writer_.inflight(), 0u);
}

TEST_F(QuorumWriterTest, EmptyWriteSucceedsWithoutRequests) {
  Start(ThreeNodeMap(), {});
  ASSERT_OK(*result_);
  EXPECT_EQ(nodes_.writes(1), 0);
}

TEST_F(QuorumWriterTest, WriteAndWaitReturnsTheOutcome) {
  ASSERT_OK_AND_ASSIGN(storage::AppendResult r, writer_.WriteAndWait(ThreeNodeMap(), MakeSeries(5)));
  EXPECT_EQ(r.appended, 10);
  nodes_.SetMode(1, Mode::kDown);
  nodes_.SetMode(2, Mode::kDown);
  EXPECT_THAT(writer_.WriteAndWait(ThreeNodeMap(), MakeSeries(5)),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(QuorumWriterTest, HintsAreReplayedWhenTheNodeReturns) {
  nodes_.SetMode(3, Mode::kDown);
  Start(ThreeNodeMap(), MakeSeries(20));
  ASSERT_OK(*result_);
  EXPECT_EQ(nodes_.SampleCount(3), 0);
  // Still down: the hints go back.
  absl::Status replay = absl::OkStatus();
  writer_.ReplayHints(3, *ThreeNodeMap(), [&](absl::Status s) { replay = s; });
  EXPECT_THAT(replay, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(hints_.Stats(3).samples, 40);
  // Back up: delivered, the node converges with its peers.
  nodes_.SetMode(3, Mode::kUp);
  replay = absl::UnknownError("not called");
  writer_.ReplayHints(3, *ThreeNodeMap(), [&](absl::Status s) { replay = s; });
  ASSERT_OK(replay);
  EXPECT_EQ(hints_.Stats(3).hints, 0);
  EXPECT_EQ(nodes_.Data(3).size(), nodes_.Data(1).size());
  EXPECT_EQ(nodes_.SampleCount(3), 40);
}

TEST_F(QuorumWriterTest, HintsForShardsTheNodeNoLongerHoldsAreDiscarded) {
  nodes_.SetMode(3, Mode::kDown);
  Start(ThreeNodeMap(), MakeSeries(20));
  ASSERT_OK(*result_);
  nodes_.SetMode(3, Mode::kUp);
  auto without3 = MapOf(std::vector<ShardPlacement>(kShards, ShardPlacement{{1, 2, 4}, {}, 2}));
  absl::Status replay = absl::UnknownError("not called");
  writer_.ReplayHints(3, *without3, [&](absl::Status s) { replay = s; });
  ASSERT_OK(replay);
  EXPECT_EQ(nodes_.writes(3), 1);  // only the original, failed write
  EXPECT_EQ(hints_.Stats(3).hints, 0);
}

// Epoch fencing. Before: every shard on {1, 2, 3} at epoch 1. After (the
// shards moved to {2, 3, 4}, epoch 2): what the replicas that applied it have.
std::shared_ptr<const ShardMap> Before() { return ThreeNodeMap(); }
std::shared_ptr<const ShardMap> After() {
  return MapOf(std::vector<ShardPlacement>(kShards, ShardPlacement{{2, 3, 4}, {}, 2}));
}

TEST_F(QuorumWriterTest, StaleCoordinatorIsNeverAcked) {
  // Node 1 (the old replica set's coordinator, a removed node) never applied
  // the flip; nodes 2 and 3 did.
  nodes_.SetMap(1, Before());
  for (NodeId n : {2, 3, 4}) nodes_.SetMap(n, After());
  Start(Before(), MakeSeries(10));
  ASSERT_TRUE(result_.has_value());
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kUnavailable,
                                 HasSubstr("stale shard epoch 1 (not moving) < 2")));
  EXPECT_EQ(nodes_.fenced(2), 1);
  EXPECT_EQ(nodes_.fenced(3), 1);
  EXPECT_EQ(nodes_.writes(4), 0);
  // A fenced write leaves no hints: it is rewritten with a newer map or failed.
  EXPECT_EQ(hints_.Stats(2).hints, 0);
  EXPECT_EQ(hints_.Stats(3).hints, 0);

  // Without a newer map to rewrite with, WriteAndWait fails retryably too.
  int awaited = 0;
  EXPECT_THAT(writer_.WriteAndWait(Before(), MakeSeries(10),
                                   [&](const std::shared_ptr<const ShardMap>&) {
                                     ++awaited;
                                     return nullptr;
                                   }),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("did not catch up")));
  EXPECT_EQ(awaited, 1);
}

TEST_F(QuorumWriterTest, WriteShardsReportsFencingAndWhatMissedQuorum) {
  for (NodeId n : {2, 3, 4}) nodes_.SetMap(n, After());
  std::optional<QuorumWriteResult> r;
  writer_.WriteShards(Before(), MakeSeries(10), [&](QuorumWriteResult x) { r = std::move(x); });
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(IsStaleShardView(r->status)) << r->status;
  EXPECT_EQ(r->missed.size(), 10u);
  EXPECT_EQ(r->appended.appended, 0);
}

TEST_F(QuorumWriterTest, CoordinatorThatCatchesUpRewritesToTheNewReplicas) {
  nodes_.SetMap(1, Before());
  for (NodeId n : {2, 3, 4}) nodes_.SetMap(n, After());
  std::vector<Series> series = MakeSeries(10);
  int awaited = 0;
  ASSERT_OK_AND_ASSIGN(storage::AppendResult r,
                       writer_.WriteAndWait(Before(), series,
                                            [&](const std::shared_ptr<const ShardMap>& stale) {
                                              ++awaited;
                                              EXPECT_EQ(stale->shards[0].epoch, 1u);
                                              return After();
                                            }));
  EXPECT_EQ(awaited, 1);
  // Counted once: the rewrite's first ack comes from a node that had nothing.
  EXPECT_EQ(r.appended + r.duplicates, 20);
  for (NodeId n : {2, 3, 4}) EXPECT_EQ(nodes_.SampleCount(n), 20) << "node " << n;
  EXPECT_EQ(nodes_.writes(1), 1);  // the rewrite does not go to the old replica
}

TEST_F(QuorumWriterTest, OnlyTheShardsThatMissedQuorumAreRewritten) {
  // Shard 0 moved off node 1 (epoch 2); the others did not. Node 2 applied the
  // flip and refuses the whole request (it holds shard 0 among others).
  std::vector<ShardPlacement> before(kShards, ShardPlacement{{1, 2, 3}, {}, 1});
  std::vector<ShardPlacement> after = before;
  after[0] = ShardPlacement{{2, 3, 4}, {}, 2};
  nodes_.SetMap(2, MapOf(after));
  nodes_.SetMap(3, MapOf(after));
  std::vector<Series> series = MakeSeries(40);
  ASSERT_OK_AND_ASSIGN(
      storage::AppendResult r,
      writer_.WriteAndWait(MapOf(before), series,
                           [&](const std::shared_ptr<const ShardMap>&) { return MapOf(after); }));
  EXPECT_EQ(r.appended + r.duplicates, 80);
  // Node 4 got shard 0 only, from the rewrite.
  ASSERT_EQ(nodes_.write_requests(4).size(), 1u);
  ASSERT_EQ(nodes_.write_requests(4)[0].shards.size(), 1u);
  EXPECT_EQ(nodes_.write_requests(4)[0].shards[0].shard, 0u);
  EXPECT_EQ(nodes_.write_requests(4)[0].shards[0].view, (ShardView{2, false}));
}

TEST_F(QuorumWriterTest, ReplicaBehindTheCoordinatorDoesNotRefuse) {
  // The coordinator applied the flip; replicas 2 and 3 have not yet.
  for (NodeId n : {2, 3}) nodes_.SetMap(n, Before());
  Start(After(), MakeSeries(10));
  ASSERT_OK(*result_);
  EXPECT_EQ(nodes_.fenced(2) + nodes_.fenced(3), 0);
  // Nor one that has not seen a move begin the coordinator writes through.
  auto moving = MapOf(std::vector<ShardPlacement>(kShards, ShardPlacement{{2, 3, 4}, {2, 3, 5}, 2}));
  for (NodeId n : {2, 3, 4, 5}) nodes_.SetMap(n, After());
  Start(moving, MakeSeries(10));
  ASSERT_OK(*result_);
  EXPECT_EQ(nodes_.fenced(5), 0);
}

TEST_F(QuorumWriterTest, ReplicaThatSawTheMoveBeginRefusesAWriteToTheOldSetOnly) {
  // Nodes 1-3 applied BeginShardMove (pending {1, 2, 4}); the coordinator has not
  // and would write to {1, 2, 3} only, where the move's stream may miss it.
  auto moving = MapOf(std::vector<ShardPlacement>(kShards, ShardPlacement{{1, 2, 3}, {1, 2, 4}, 1}));
  for (NodeId n : {1, 2, 3}) nodes_.SetMap(n, moving);
  Start(Before(), MakeSeries(4));
  EXPECT_THAT(*result_, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("(moving)")));
  ASSERT_OK(writer_.WriteAndWait(Before(), MakeSeries(4),
                                 [&](const std::shared_ptr<const ShardMap>&) { return moving; }));
  EXPECT_EQ(nodes_.SampleCount(4), 8);  // the new replica has it
}

}  // namespace
}  // namespace vigil::cluster
