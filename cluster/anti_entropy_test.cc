#include "cluster/anti_entropy.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kMinute = 60'000;
constexpr int64_t kHour = 60 * kMinute;

AntiEntropyOptions Opts() {
  AntiEntropyOptions o;
  o.min_range_ms = 15 * kMinute;
  o.split = 4;
  return o;
}

TEST(AlignedRangesTest, CutsAtMultiplesOfTheWidth) {
  EXPECT_THAT(AlignedRanges(5, 25, 10),
              ElementsAre(TimeRange{5, 9}, TimeRange{10, 19}, TimeRange{20, 25}));
  EXPECT_THAT(AlignedRanges(10, 19, 10), ElementsAre(TimeRange{10, 19}));
  EXPECT_THAT(AlignedRanges(-15, -1, 10), ElementsAre(TimeRange{-15, -11}, TimeRange{-10, -1}));
  EXPECT_THAT(AlignedRanges(3, 2, 10), IsEmpty());
}

TEST(PlanRepairTest, AgreeingDigestsNeedNothing) {
  RepairPlan p = PlanRepair(7, {1, 2, 3}, {{{0, kHour - 1}, {{1, 42}, {2, 42}, {3, 42}}}}, Opts());
  EXPECT_EQ(p.in_sync, 1);
  EXPECT_THAT(p.transfers, IsEmpty());
  EXPECT_THAT(p.refine, IsEmpty());
  EXPECT_THAT(p.unknown, IsEmpty());
}

TEST(PlanRepairTest, WideDifferingRangeIsRefined) {
  RepairPlan p = PlanRepair(7, {1, 2, 3}, {{{0, kHour - 1}, {{1, 42}, {2, 42}, {3, 43}}}}, Opts());
  EXPECT_THAT(p.transfers, IsEmpty());
  EXPECT_THAT(p.refine, ElementsAre(TimeRange{0, 15 * kMinute - 1},
                                    TimeRange{15 * kMinute, 30 * kMinute - 1},
                                    TimeRange{30 * kMinute, 45 * kMinute - 1},
                                    TimeRange{45 * kMinute, kHour - 1}));
}

TEST(PlanRepairTest, NarrowDifferingRangeIsRepairedByUnion) {
  const TimeRange r{0, 15 * kMinute - 1};
  // Nodes 1 and 2 agree, node 3 differs: both versions must reach the others.
  RepairPlan p = PlanRepair(7, {3, 1, 2}, {{r, {{1, 42}, {2, 42}, {3, 43}}}}, Opts());
  EXPECT_THAT(p.transfers, ElementsAre(Transfer{7, r, 1, {3}}, Transfer{7, r, 3, {1, 2}}));
  // Three versions: each goes to the two others.
  p = PlanRepair(7, {1, 2, 3}, {{r, {{1, 5}, {2, 6}, {3, 7}}}}, Opts());
  EXPECT_THAT(p.transfers, ElementsAre(Transfer{7, r, 1, {2, 3}}, Transfer{7, r, 2, {1, 3}},
                                       Transfer{7, r, 3, {1, 2}}));
}

TEST(PlanRepairTest, EmptyReplicasAreNeverSources) {
  const TimeRange r{0, kMinute};
  AntiEntropyOptions o = Opts();
  o.empty_digest = 0;
  RepairPlan p = PlanRepair(1, {1, 2, 3}, {{r, {{1, 42}, {2, 0}, {3, 42}}}}, o);
  EXPECT_THAT(p.transfers, ElementsAre(Transfer{1, r, 1, {2}}));
}

TEST(PlanRepairTest, MissingAnswersAreReportedAndTheRestCompared) {
  const TimeRange r{0, kMinute};
  RepairPlan p = PlanRepair(1, {1, 2, 3}, {{r, {{1, 1}, {3, 2}}}, {r, {{1, 1}}}}, Opts());
  EXPECT_THAT(p.unknown, ElementsAre(r, r));
  EXPECT_THAT(p.transfers, ElementsAre(Transfer{1, r, 1, {3}}, Transfer{1, r, 3, {1}}));
  // Digests of non-replicas (a former owner) are ignored.
  p = PlanRepair(1, {1, 2}, {{r, {{1, 1}, {2, 1}, {9, 5}}}}, Opts());
  EXPECT_EQ(p.in_sync, 1);
  EXPECT_THAT(p.transfers, IsEmpty());
}

// Any one old replica may have missed an acked write, so new owners are filled
// from a read quorum of them.
TEST(PlanMoveStreamsTest, NewOwnersAreFilledFromAReadQuorumOfOldReplicas) {
  const TimeRange all{0, 100};
  PlannedMove m{3, 1, {1, 2, 3}, {1, 4, 5}};
  EXPECT_THAT(PlanMoveStreams(m, all),
              ElementsAre(Transfer{3, all, 1, {4, 5}}, Transfer{3, all, 2, {4, 5}}));
  EXPECT_THAT(PlanMoveStreams(m, all, {1}),
              ElementsAre(Transfer{3, all, 2, {4, 5}}, Transfer{3, all, 3, {4, 5}}));
  EXPECT_THAT(PlanMoveStreams(m, all, {1, 2}), IsEmpty());  // must wait
  // One old replica of one: it alone; none left: nothing to stream from.
  EXPECT_THAT(PlanMoveStreams(PlannedMove{3, 1, {1}, {2}}, all),
              ElementsAre(Transfer{3, all, 1, {2}}));
  EXPECT_THAT(PlanMoveStreams(PlannedMove{3, 1, {}, {2}}, all), IsEmpty());
  // Shrinking: no new node, nothing to stream.
  EXPECT_THAT(PlanMoveStreams(PlannedMove{3, 1, {1, 2}, {2}}, all), IsEmpty());
}

// A toy replica: series -> t -> v, with a digest like ShardDigest's (an
// order-independent sum of per-sample hashes).
using Store = std::map<std::string, std::map<int64_t, double>>;

uint64_t Digest(const Store& s, TimeRange r) {
  uint64_t d = 0;
  for (const auto& [series, samples] : s) {
    for (auto it = samples.lower_bound(r.mint); it != samples.end() && it->first <= r.maxt; ++it) {
      d += std::hash<std::string>()(series) * 31 + std::hash<int64_t>()(it->first) * 17 +
           std::hash<double>()(it->second);
    }
  }
  return d;
}

int64_t Apply(const Transfer& t, std::map<NodeId, Store>& nodes) {
  int64_t moved = 0;
  for (const auto& [series, samples] : nodes[t.from]) {
    for (auto it = samples.lower_bound(t.range.mint);
         it != samples.end() && it->first <= t.range.maxt; ++it) {
      for (NodeId to : t.to) nodes[to][series].emplace(it->first, it->second);
      ++moved;
    }
  }
  return moved;
}

// Replicas that diverged by a few scattered samples converge after one pass,
// streaming only narrow ranges around the differences.
TEST(PlanShardRepairTest, RandomDivergenceConvergesInOnePass) {
  const uint64_t seed = std::random_device()();
  LOG(INFO) << "seed " << seed;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 rng(seed);
  const int64_t day = 24 * kHour;
  std::map<NodeId, Store> nodes;
  int64_t total = 0;
  for (int s = 0; s < 20; ++s) {
    for (int64_t t = 0; t < day; t += 15'000) {
      for (NodeId n : {1, 2, 3}) nodes[n][absl::StrCat("m", s)][t] = s;
      ++total;
    }
  }
  // Each replica misses some samples (an outage) and holds some the others
  // lack (an unacked write).
  for (int k = 0; k < 10; ++k) {
    const NodeId n = 1 + rng() % 3;
    const std::string series = absl::StrCat("m", rng() % 20);
    const int64_t t = (rng() % (day / 15'000)) * 15'000;
    if (rng() % 2) {
      nodes[n][series].erase(t);
    } else {
      nodes[n][series][t + 1] = 7;
    }
  }
  DigestFn digest = [&](NodeId n, TimeRange r) -> absl::StatusOr<uint64_t> {
    return Digest(nodes[n], r);
  };
  RepairPlan plan =
      PlanShardRepair(0, {1, 2, 3}, AlignedRanges(0, day - 1, 4 * kHour), digest, Opts());
  int64_t moved = 0;
  for (const Transfer& t : plan.transfers) {
    EXPECT_LE(t.range.maxt - t.range.mint + 1, Opts().min_range_ms);
    moved += Apply(t, nodes);
  }
  LOG(INFO) << plan.transfers.size() << " transfers moved " << moved << " samples of " << total
            << " per replica";
  // At most two versions per damaged range; each transfer carries one 15-minute
  // range of the shard's 20 series (60 samples each, plus strays).
  EXPECT_LE(plan.transfers.size(), 10u * 2);
  EXPECT_LE(moved, static_cast<int64_t>(plan.transfers.size()) * (20 * 60 + 10));
  EXPECT_LT(moved, total / 4);
  EXPECT_EQ(nodes[1], nodes[2]);
  EXPECT_EQ(nodes[1], nodes[3]);
  RepairPlan after =
      PlanShardRepair(0, {1, 2, 3}, AlignedRanges(0, day - 1, 4 * kHour), digest, Opts());
  EXPECT_THAT(after.transfers, IsEmpty());
  EXPECT_EQ(after.in_sync, 6);
}

TEST(PlanShardRepairTest, UnreachableReplicaIsReportedNotRepaired) {
  std::map<NodeId, Store> nodes;
  nodes[1]["a"][10] = 1;
  nodes[2]["a"][10] = 1;
  nodes[2]["a"][20] = 2;
  DigestFn digest = [&](NodeId n, TimeRange r) -> absl::StatusOr<uint64_t> {
    if (n == 3) return absl::UnavailableError("down");
    return Digest(nodes[n], r);
  };
  RepairPlan plan = PlanShardRepair(0, {1, 2, 3}, {{0, kHour - 1}}, digest, Opts());
  EXPECT_FALSE(plan.unknown.empty());
  ASSERT_THAT(plan.transfers, SizeIs(2));
  for (const Transfer& t : plan.transfers) Apply(t, nodes);
  EXPECT_EQ(nodes[1], nodes[2]);
  EXPECT_FALSE(nodes.count(3));
}

}  // namespace
}  // namespace vigil::cluster
