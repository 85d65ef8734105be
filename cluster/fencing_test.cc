#include "cluster/fencing.h"

#include "cluster/replica_client.h"
#include "cluster/testing/fake_nodes.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;

// Shard 0 stable at epoch 3, shard 1 moving at epoch 3.
std::shared_ptr<const ShardMap> Map() {
  return MapOf({ShardPlacement{{1, 2, 3}, {}, 3}, ShardPlacement{{1, 2, 3}, {1, 2, 4}, 3}});
}

TEST(FencingTest, ReplicaWithANewerEpochRefuses) {
  auto map = Map();
  absl::Status s = CheckShardView(0, ShardView{2, false}, map.get());
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition,
                          HasSubstr("stale shard epoch 2 (not moving) < 3 (not moving)")));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("shard 0")));
  EXPECT_TRUE(IsStaleShardView(s));
  // Whatever the older view said about a move.
  EXPECT_TRUE(IsStaleShardView(CheckShardView(1, ShardView{2, true}, map.get())));
  EXPECT_TRUE(IsStaleShardView(CheckShardView(1, ShardView{2, std::nullopt}, map.get())));
}

TEST(FencingTest, ReplicaThatSawTheMoveBeginRefusesAViewWithoutIt) {
  auto map = Map();
  // The coordinator would write to the current replica set only.
  EXPECT_TRUE(IsStaleShardView(CheckShardView(1, ShardView{3, false}, map.get())));
  EXPECT_THAT(CheckShardView(1, ShardView{3, true}, map.get()), IsOk());
  // An older coordinator that does not say: only the epoch is compared.
  EXPECT_THAT(CheckShardView(1, ShardView{3, std::nullopt}, map.get()), IsOk());
}

TEST(FencingTest, ReplicaBehindTheCoordinatorAccepts) {
  auto map = Map();
  EXPECT_THAT(CheckShardView(0, ShardView{3, true}, map.get()), IsOk());  // move not applied yet
  EXPECT_THAT(CheckShardView(0, ShardView{4, false}, map.get()), IsOk());
  EXPECT_THAT(CheckShardView(1, ShardView{4, false}, map.get()), IsOk());  // flip not applied yet
  EXPECT_THAT(CheckShardView(0, ShardView{3, false}, map.get()), IsOk());  // same view
}

TEST(FencingTest, UnknownViewsAndMissingMapsAreNotFenced) {
  auto map = Map();
  EXPECT_THAT(CheckShardView(0, ShardView{}, map.get()), IsOk());  // a rebalancing stream
  EXPECT_THAT(CheckShardView(0, ShardView{1, false}, nullptr), IsOk());
  EXPECT_THAT(CheckShardView(7, ShardView{1, false}, map.get()), IsOk());  // no such shard
}

TEST(FencingTest, IsStaleShardViewOnlyForFencing) {
  EXPECT_FALSE(IsStaleShardView(absl::FailedPreconditionError("not the leader")));
  EXPECT_FALSE(IsStaleShardView(absl::UnavailableError("stale shard epoch 1 < 2")));
  EXPECT_FALSE(IsStaleShardView(absl::OkStatus()));
  EXPECT_TRUE(IsStaleShardView(StaleShardViewError(5, ShardView{1, {}}, ShardView{2, false})));
}

TEST(FencingTest, NewerViewOrdersEpochsThenMoves) {
  EXPECT_TRUE(NewerView(ShardView{4, false}, ShardView{3, true}));
  EXPECT_TRUE(NewerView(ShardView{3, true}, ShardView{3, false}));
  EXPECT_FALSE(NewerView(ShardView{3, false}, ShardView{3, true}));
  EXPECT_FALSE(NewerView(ShardView{3, true}, ShardView{3, true}));
  EXPECT_FALSE(NewerView(ShardView{3, true}, ShardView{4, false}));
}

TEST(FencingTest, WriteViewsNameTheFirstStaleShard) {
  auto map = Map();
  SharedSeries none = std::make_shared<const std::vector<Series>>();
  ReplicaWriteRequest req;
  req.shards.push_back(ShardWrite{0, ShardView{3, false}, none});
  req.shards.push_back(ShardWrite{1, ShardView{3, true}, none});
  EXPECT_THAT(CheckWriteViews(req, map.get()), IsOk());
  req.shards.push_back(ShardWrite{1, ShardView{2, true}, none});
  EXPECT_THAT(CheckWriteViews(req, map.get()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("shard 1")));
}

}  // namespace
}  // namespace vigil::cluster
