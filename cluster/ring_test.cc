#include "cluster/ring.h"

#include <algorithm>
#include <set>

#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr uint32_t kShards = 64;

std::vector<NodeId> Nodes(int n) {
  std::vector<NodeId> out;
  for (int i = 1; i <= n; ++i) out.push_back(i);
  return out;
}

TEST(RingTest, ReplicasAreDistinctAndCappedAtNodeCount) {
  for (int nodes = 1; nodes <= 6; ++nodes) {
    for (int rf = 1; rf <= 5; ++rf) {
      SCOPED_TRACE(::testing::Message() << nodes << " nodes, rf " << rf);
      Ring ring(Nodes(nodes));
      for (uint32_t s = 0; s < kShards; ++s) {
        std::vector<NodeId> r = ring.Place(s, kShards, rf);
        EXPECT_EQ(r.size(), static_cast<size_t>(std::min(rf, nodes)));
        EXPECT_EQ(std::set<NodeId>(r.begin(), r.end()).size(), r.size());
      }
    }
  }
}

TEST(RingTest, EmptyRingPlacesNothing) {
  Ring ring({});
  EXPECT_THAT(ring.Place(3, kShards, 3), IsEmpty());
}

TEST(RingTest, PlacementIgnoresInputOrderAndDuplicates) {
  Ring a({3, 1, 2}), b({1, 2, 3, 2});
  EXPECT_THAT(b.nodes(), ElementsAre(1, 2, 3));
  EXPECT_EQ(a.PlaceAll(kShards, 2), b.PlaceAll(kShards, 2));
}

TEST(RingTest, PlacementIsPinned) {
  // Pinned: a change here moves every cluster's data on upgrade.
  Ring ring(Nodes(5));
  EXPECT_THAT(ring.Place(0, kShards, 3), ElementsAre(1, 3, 2));
  EXPECT_THAT(ring.Place(kShards - 1, kShards, 3), ElementsAre(4, 3, 1));
}

TEST(RingTest, BalanceAcrossNodes) {
  for (int nodes : {3, 4, 5}) {
    SCOPED_TRACE(nodes);
    Ring ring(Nodes(nodes));
    std::map<NodeId, int> counts = ReplicaCounts(ring.PlaceAll(kShards, 3));
    ASSERT_EQ(counts.size(), static_cast<size_t>(nodes));
    int max = 0, min = kShards * 3;
    for (const auto& [node, c] : counts) {
      max = std::max(max, c);
      min = std::min(min, c);
    }
    const double ideal = kShards * 3.0 / nodes;
    LOG(INFO) << "ring balance: " << nodes << " nodes, 64 shards, RF 3: max " << max
              << " min " << min << " replicas per node (ideal " << ideal << ")";
    EXPECT_LE(max, ideal * 1.25);
    EXPECT_GE(min, ideal * 0.75);
  }
}

// On a join the new node enters replica sets, each changed set losing exactly one
// old node; on a leave the departed node is replaced by exactly one node.
TEST(RingTest, JoinMovesOnlyToTheNewNode) {
  for (int nodes : {3, 4, 5}) {
    SCOPED_TRACE(nodes);
    auto before = Ring(Nodes(nodes)).PlaceAll(kShards, 3);
    auto after = Ring(Nodes(nodes + 1)).PlaceAll(kShards, 3);
    const NodeId joined = nodes + 1;
    for (uint32_t s = 0; s < kShards; ++s) {
      for (NodeId n : after[s]) {
        if (std::find(before[s].begin(), before[s].end(), n) == before[s].end()) {
          EXPECT_EQ(n, joined) << "shard " << s;
        }
      }
    }
    const int moves = CountMoves(before, after);
    const double ideal = kShards * 3.0 / (nodes + 1);
    LOG(INFO) << "ring join " << nodes << "->" << nodes + 1 << " nodes: " << moves
              << " replica moves (ideal " << ideal << ")";
    EXPECT_LE(moves, ideal * 1.3);
    EXPECT_GE(moves, ideal * 0.7);
  }
}

TEST(RingTest, LeaveMovesOnlyTheDepartedNodesReplicas) {
  for (int nodes : {4, 5}) {
    for (NodeId leaving = 1; leaving <= static_cast<NodeId>(nodes); ++leaving) {
      SCOPED_TRACE(::testing::Message() << nodes << " nodes, leaving " << leaving);
      std::vector<NodeId> rest = Nodes(nodes);
      rest.erase(std::find(rest.begin(), rest.end(), leaving));
      auto before = Ring(Nodes(nodes)).PlaceAll(kShards, 3);
      auto after = Ring(rest).PlaceAll(kShards, 3);
      int held = 0;
      for (uint32_t s = 0; s < kShards; ++s) {
        const bool had = std::count(before[s].begin(), before[s].end(), leaving) > 0;
        held += had;
        std::set<NodeId> b(before[s].begin(), before[s].end()), a(after[s].begin(), after[s].end());
        b.erase(leaving);
        // Every surviving replica stays; at most one new one replaces the departed.
        for (NodeId n : b) EXPECT_TRUE(a.count(n)) << "shard " << s;
        EXPECT_EQ(a.size() - b.size(), had ? 1u : 0u) << "shard " << s;
      }
      EXPECT_EQ(CountMoves(before, after), held);
    }
  }
}

TEST(RingTest, CountMovesCountsAddedReplicas) {
  std::vector<std::vector<NodeId>> from = {{1, 2, 3}, {1, 2, 3}, {}};
  std::vector<std::vector<NodeId>> to = {{1, 2, 3}, {4, 2, 5}, {1}};
  EXPECT_EQ(CountMoves(from, to), 3);
}

}  // namespace
}  // namespace vigil::cluster
