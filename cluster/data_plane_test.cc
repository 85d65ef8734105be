// cluster/data_plane_test.cc
//
// Three real nodes in one process: a TSDB in a temp dir, the Replica gRPC
// service on a free loopback port and a DataPlane each, with a fixed RF=3 shard
// map built with ClusterState (no Raft). Background threads are off: the tests
// drive hint replay and anti-entropy with the *Once() calls, polling with
// generous deadlines where gRPC reconnects.
#include "cluster/data_plane.h"

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cluster/replica_service.h"
#include "common/status_macros.h"
#include "common/testing/status_matchers.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;

constexpr uint32_t kShards = 8;
constexpr int kSeries = 40;

std::shared_ptr<const ShardMap> ThreeNodeMap() {
  ClusterOptions o;
  o.num_shards = kShards;
  ClusterState state(o);
  v1::Command c;
  for (NodeId id = 1; id <= 3; ++id) c.mutable_bootstrap()->add_members()->set_id(id);
  c.mutable_bootstrap()->set_replication_factor(3);
  CHECK_EQ(state.Apply(1, EncodeCommand(c)).code(), 0);
  return state.shard_map();
}

class Cluster : public ::testing::Test {
 protected:
  struct TestNode {
    std::unique_ptr<storage::TSDB> tsdb;
    std::unique_ptr<ReplicaService> service;
    std::unique_ptr<grpc::Server> server;
    std::unique_ptr<DataPlane> dp;
  };

  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            absl::StrCat("data_plane_test_", getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    map_ = ThreeNodeMap();
    for (NodeId id = 1; id <= 3; ++id) {
      storage::Options so;
      so.dir = (root_ / absl::StrCat("n", id)).string();
      so.num_shards = kShards;
      ASSERT_OK_AND_ASSIGN(nodes_[id].tsdb, storage::TSDB::Open(so));
      StartServer(id);
      DataPlaneOptions o;
      o.self = id;
      o.num_shards = kShards;
      o.background = false;
      o.write_timeout = absl::Seconds(10);
      o.read_timeout = absl::Seconds(10);
      o.anti_entropy_window = absl::Hours(2);
      o.anti_entropy_range = absl::Minutes(30);
      o.anti_entropy.min_range_ms = 60'000;
      o.stream_settle = absl::ZeroDuration();
      o.stale_map_wait = absl::Milliseconds(300);
      storage::TSDB* db = nodes_[id].tsdb.get();
      nodes_[id].dp = std::make_unique<DataPlane>(
          o, db, [db](const std::vector<storage::SeriesAppend>& b) { return db->Append(b); },
          [this, id] { return NodeMap(id); }, [this](NodeId n) { return Address(n); });
    }
  }

  void TearDown() override {
    for (auto& [id, n] : nodes_) n.dp.reset();
    for (auto& [id, n] : nodes_) StopServer(id);
    nodes_.clear();
    std::filesystem::remove_all(root_);
  }

  void StartServer(NodeId id) {
    TestNode& n = nodes_[id];
    storage::TSDB* db = n.tsdb.get();
    n.service = std::make_unique<ReplicaService>(
        [db](const std::vector<storage::SeriesAppend>& b) { return db->Append(b); }, db, kShards,
        [this, id] {
          ++fence_checks_;
          return NodeMap(id);
        });
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(n.service.get());
    n.server = b.BuildAndStart();
    ASSERT_NE(n.server, nullptr);
    ASSERT_GT(port, 0);
    absl::MutexLock l(&mu_);
    addresses_[id] = absl::StrCat("127.0.0.1:", port);
  }

  void StopServer(NodeId id) {
    TestNode& n = nodes_[id];
    if (n.server == nullptr) return;
    n.server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    n.server.reset();
    n.service.reset();
  }

  // Node `id`'s own map: map_ unless it was given one (SetMap).
  std::shared_ptr<const ShardMap> NodeMap(NodeId id) {
    absl::MutexLock l(&mu_);
    return MapOfLocked(id);
  }
  std::shared_ptr<const ShardMap> MapOfLocked(NodeId id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = own_maps_.find(id);
    if (it == own_maps_.end()) return map_;
    return it->second ? it->second() : nullptr;
  }
  void SetMap(NodeId id, std::function<std::shared_ptr<const ShardMap>()> fn) {
    absl::MutexLock l(&mu_);
    own_maps_[id] = std::move(fn);
  }

  std::string Address(NodeId id) {
    absl::MutexLock l(&mu_);
    auto it = addresses_.find(id);
    return it == addresses_.end() ? "" : it->second;
  }

  // kSeries series with `per_series` samples each, the samples in the last minutes.
  std::vector<Series> Batch(absl::string_view name, int per_series) {
    const int64_t base = absl::ToUnixMillis(absl::Now()) - 5 * 60 * 1000;
    std::vector<Series> out;
    for (int i = 0; i < kSeries; ++i) {
      Series s{Labels{{"__name__", name}, {"i", absl::StrCat(i)}}, {}};
      for (int j = 0; j < per_series; ++j) s.samples.push_back({base + j * 1000, double(i + j)});
      out.push_back(std::move(s));
    }
    return out;
  }

  static int64_t Samples(const std::vector<Series>& series) { return CountSamples(series); }

  // Every series named `name` from `source`.
  static absl::StatusOr<query::SelectResult> SelectAll(query::SeriesSource* source,
                                                       absl::string_view name) {
    ASSIGN_OR_RETURN(LabelMatcher m, LabelMatcher::Create(MatchType::kEqual, "__name__", name));
    const int64_t now = absl::ToUnixMillis(absl::Now());
    return source->Select({now - 3'600'000, now + 600'000}, {m});
  }

  int64_t LocalSamples(NodeId id, absl::string_view name) {
    absl::StatusOr<query::SelectResult> r = SelectAll(nodes_[id].tsdb.get(), name);
    return r.ok() ? Samples(r->series) : -1;
  }

  std::filesystem::path root_;
  std::shared_ptr<const ShardMap> map_;
  std::map<NodeId, TestNode> nodes_;
  absl::Mutex mu_;
  std::map<NodeId, std::string> addresses_ ABSL_GUARDED_BY(mu_);
  std::map<NodeId, std::function<std::shared_ptr<const ShardMap>()>> own_maps_
      ABSL_GUARDED_BY(mu_);
  std::atomic<int> fence_checks_{0};  // writes the replica services were asked to check
};

TEST_F(Cluster, WritesThroughAnyNodeReachAllReplicas) {
  std::vector<Series> a = Batch("a", 5);
  std::vector<Series> b = Batch("b", 5);
  ASSERT_OK_AND_ASSIGN(storage::AppendResult r, nodes_[1].dp->WriteSeries(a));
  EXPECT_EQ(r.appended, Samples(a));
  ASSERT_OK_AND_ASSIGN(r, nodes_[2].dp->WriteSeries(b));
  EXPECT_EQ(r.appended, Samples(b));
  // W=2 of 3 acked; the third replica may still be appending: poll.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (NodeId id = 1; id <= 3; ++id) {
    while ((LocalSamples(id, "a") != Samples(a) || LocalSamples(id, "b") != Samples(b)) &&
           absl::Now() < deadline) {
      nodes_[1].dp->MaintainOnce();  // hints, if a write to the third replica failed
      nodes_[2].dp->MaintainOnce();
    }
    EXPECT_EQ(LocalSamples(id, "a"), Samples(a)) << "node " << id;
    EXPECT_EQ(LocalSamples(id, "b"), Samples(b)) << "node " << id;
  }
  // And the fanned-out source of the third node sees all of it.
  ASSERT_OK_AND_ASSIGN(query::SelectResult q, SelectAll(nodes_[3].dp->QuerySource().get(), "a"));
  EXPECT_EQ(Samples(q.series), Samples(a));
  EXPECT_THAT(q.warnings, IsEmpty());
}

TEST_F(Cluster, OneNodeDownWritesSucceedAndHintsCatchItUp) {
  StopServer(3);
  std::vector<Series> a = Batch("a", 10);
  ASSERT_OK_AND_ASSIGN(storage::AppendResult r, nodes_[1].dp->WriteSeries(a));
  EXPECT_EQ(r.appended, Samples(a));
  // Reads through node 2 (node 3 still down) return every acked sample.
  ASSERT_OK_AND_ASSIGN(query::SelectResult q, SelectAll(nodes_[2].dp->QuerySource().get(), "a"));
  EXPECT_EQ(Samples(q.series), Samples(a));
  EXPECT_GT(nodes_[1].dp->hint_stats(3).hints, 0);
  EXPECT_EQ(LocalSamples(3, "a"), 0);

  // Node 3 comes back (same storage, new port): node 1 replays its hints.
  StartServer(3);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (LocalSamples(3, "a") != Samples(a) && absl::Now() < deadline) {
    nodes_[1].dp->MaintainOnce();
  }
  EXPECT_EQ(LocalSamples(3, "a"), Samples(a));
  EXPECT_EQ(nodes_[1].dp->hint_stats(3).hints, 0);
}

TEST_F(Cluster, TwoNodesDownWritesAreUnavailableAndPartialReadsWarn) {
  std::vector<Series> a = Batch("a", 3);
  ASSERT_THAT(nodes_[1].dp->WriteSeries(a).status(), IsOk());
  StopServer(2);
  StopServer(3);
  EXPECT_THAT(nodes_[1].dp->WriteSeries(Batch("b", 3)).status(),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(SelectAll(nodes_[1].dp->QuerySource(false).get(), "a").status(),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK_AND_ASSIGN(query::SelectResult q,
                       SelectAll(nodes_[1].dp->QuerySource(true).get(), "a"));
  EXPECT_EQ(Samples(q.series), Samples(a));
  EXPECT_THAT(q.warnings, Not(IsEmpty()));
}

TEST_F(Cluster, AntiEntropyRepairsDivergentReplicas) {
  std::vector<Series> a = Batch("a", 5);
  ASSERT_THAT(nodes_[1].dp->WriteSeries(a).status(), IsOk());
  // Samples only node 2 has (as if the others had lost them and their hints).
  std::vector<Series> only2 = Batch("only2", 20);
  ASSERT_THAT(nodes_[2].tsdb->Append(ToSeriesAppends(only2)).status(), IsOk());
  ASSERT_EQ(LocalSamples(1, "only2"), 0);

  const absl::Time start = absl::Now();
  AntiEntropyStats s1 = nodes_[1].dp->AntiEntropyOnce();
  AntiEntropyStats s3 = nodes_[3].dp->AntiEntropyOnce();
  EXPECT_GT(s1.transfers, 0);
  EXPECT_EQ(s1.samples_pulled, Samples(only2));
  EXPECT_EQ(s3.samples_pulled, Samples(only2));
  EXPECT_EQ(LocalSamples(1, "only2"), Samples(only2));
  EXPECT_EQ(LocalSamples(3, "only2"), Samples(only2));
  // A second pass finds everything in sync and records the convergence time.
  AntiEntropyStats again = nodes_[1].dp->AntiEntropyOnce();
  EXPECT_EQ(again.transfers, 0);
  EXPECT_EQ(again.unknown, 0);
  ASSERT_TRUE(nodes_[1].dp->last_convergence().has_value());
  LOG(INFO) << "anti-entropy converged " << Samples(only2) << " samples in "
            << absl::FormatDuration(absl::Now() - start) << " (node 1 measured "
            << absl::FormatDuration(*nodes_[1].dp->last_convergence()) << ")";
}

TEST_F(Cluster, StreamShardFillsANewReplica) {
  std::vector<Series> a = Batch("a", 5);
  ASSERT_THAT(nodes_[1].dp->WriteSeries(a).status(), IsOk());
  const uint32_t shard = storage::ShardOf(a[0].labels.Hash(), kShards);
  int64_t in_shard = 0;
  for (const Series& s : a) {
    if (storage::ShardOf(s.labels.Hash(), kShards) == shard) in_shard += s.samples.size();
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (LocalSamples(3, "a") != Samples(a) && absl::Now() < deadline) {
    nodes_[1].dp->MaintainOnce();
  }
  const TimeRange all{INT64_MIN, INT64_MAX};
  ASSERT_OK_AND_ASSIGN(uint64_t want, nodes_[2].tsdb->ShardDigest(shard, all.mint, all.maxt));

  // Node 3 loses the shard (a new owner starts empty); node 1 streams it from
  // node 2 (remote source) and then from itself (local source).
  for (NodeId from : {NodeId{2}, NodeId{1}}) {
    ASSERT_OK(nodes_[3].tsdb->DropShard(shard));
    ASSERT_EQ(LocalSamples(3, "a"), Samples(a) - in_shard);
    absl::Status status = absl::UnknownError("not called");
    nodes_[1].dp->StreamShard(Transfer{shard, all, from, {3}},
                              [&](absl::Status s) { status = std::move(s); });
    EXPECT_OK(status) << "from " << from;
    EXPECT_EQ(LocalSamples(3, "a"), Samples(a)) << "from " << from;
    ASSERT_OK_AND_ASSIGN(uint64_t got, nodes_[3].tsdb->ShardDigest(shard, all.mint, all.maxt));
    EXPECT_EQ(got, want) << "from " << from;
  }
  nlohmann::json j = nodes_[1].dp->StreamsJson();
  EXPECT_EQ(j["done"], 2);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["running"], 0);
  EXPECT_EQ(j["samples"], 2 * in_shard);
  EXPECT_GT(j["bytes"].get<int64_t>(), 16 * 2 * in_shard);
  ASSERT_EQ(j["recent"].size(), 2u);
  EXPECT_EQ(j["recent"][0]["from"], 1);
  EXPECT_EQ(j["recent"][0]["state"], "done");

  // A target that does not answer fails the stream (the leader retries the move).
  StopServer(3);
  EXPECT_THAT(nodes_[1].dp->StreamShardNow(Transfer{shard, all, 2, {3}}),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(nodes_[1].dp->StreamsJson()["failed"], 1);
}

TEST_F(Cluster, UnownedShardsAreDroppedAfterTheDelay) {
  ASSERT_THAT(nodes_[1].dp->WriteSeries(Batch("a", 2)).status(), IsOk());
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (LocalSamples(3, "a") != kSeries * 2 && absl::Now() < deadline) {
    nodes_[1].dp->MaintainOnce();
  }
  std::vector<uint32_t> held = nodes_[3].tsdb->ListShards();
  ASSERT_FALSE(held.empty());
  // Node 3 leaves every shard's replica set.
  ClusterOptions o;
  o.num_shards = kShards;
  ClusterState state(o);
  v1::Command c;
  for (NodeId id = 1; id <= 2; ++id) c.mutable_bootstrap()->add_members()->set_id(id);
  c.mutable_bootstrap()->set_replication_factor(2);
  ASSERT_EQ(state.Apply(1, EncodeCommand(c)).code(), 0);
  map_ = state.shard_map();
  // The default delay (seconds) has not passed: nothing is dropped yet.
  EXPECT_EQ(nodes_[3].dp->DropUnownedShardsOnce(), 0);
  EXPECT_EQ(nodes_[3].tsdb->ListShards(), held);
  // Without a delay they go at once; shards node 3 still replicates would stay.
  DataPlaneOptions o3;
  o3.self = 3;
  o3.num_shards = kShards;
  o3.background = false;
  o3.drop_delay = absl::ZeroDuration();
  storage::TSDB* db = nodes_[3].tsdb.get();
  DataPlane dp3(
      o3, db, [db](const std::vector<storage::SeriesAppend>& b) { return db->Append(b); },
      [this] { return map_; }, [this](NodeId n) { return Address(n); });
  EXPECT_EQ(dp3.DropUnownedShardsOnce(), static_cast<int>(held.size()));
  EXPECT_THAT(nodes_[3].tsdb->ListShards(), IsEmpty());
  EXPECT_EQ(LocalSamples(3, "a"), 0);
}

TEST_F(Cluster, UnknownShardCountIsRefused) {
  ClusterOptions o;
  o.num_shards = kShards * 2;
  ClusterState other(o);
  v1::Command c;
  c.mutable_bootstrap()->add_members()->set_id(1);
  ASSERT_EQ(other.Apply(1, EncodeCommand(c)).code(), 0);
  map_ = other.shard_map();
  EXPECT_THAT(nodes_[1].dp->WriteSeries(Batch("a", 1)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("shards")));
}

// ThreeNodeMap after a flip: the same replicas at epoch 2 (what matters to
// fencing is that the replicas' epoch is newer than the coordinator's).
std::shared_ptr<const ShardMap> Flipped() {
  auto m = std::make_shared<ShardMap>(*ThreeNodeMap());
  for (ShardPlacement& p : m->shards) p.epoch = 2;
  return m;
}

TEST_F(Cluster, StaleCoordinatorIsRefusedAndNeverAcks) {
  auto old_map = ThreeNodeMap();
  auto new_map = Flipped();
  SetMap(1, [old_map] { return old_map; });  // node 1 never catches up
  SetMap(2, [new_map] { return new_map; });
  SetMap(3, [new_map] { return new_map; });
  EXPECT_THAT(nodes_[1].dp->WriteSeries(Batch("a", 3)).status(),
              StatusIs(absl::StatusCode::kUnavailable,
                       ::testing::AllOf(HasSubstr("stale shard epoch 1 (not moving) < 2"),
                                        HasSubstr("did not catch up"))));
  // Nodes 2 and 3 stored nothing (node 1's own replica did; nobody acked it).
  EXPECT_EQ(LocalSamples(2, "a"), 0);
  EXPECT_EQ(LocalSamples(3, "a"), 0);
}

TEST_F(Cluster, CoordinatorThatCatchesUpRewritesAndSucceeds) {
  auto old_map = ThreeNodeMap();
  auto new_map = Flipped();
  // Node 1's control plane applies the flip once the replicas have refused it.
  SetMap(1, [this, old_map, new_map] {
    return fence_checks_ >= 2 ? new_map : old_map;
  });
  SetMap(2, [new_map] { return new_map; });
  SetMap(3, [new_map] { return new_map; });
  std::vector<Series> a = Batch("a", 3);
  ASSERT_OK_AND_ASSIGN(storage::AppendResult r, nodes_[1].dp->WriteSeries(a));
  EXPECT_EQ(r.appended + r.duplicates, Samples(a));
  // Acked by a quorum of the new view; the third replica may still be appending.
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (NodeId id = 1; id <= 3; ++id) {
    while (LocalSamples(id, "a") != Samples(a) && absl::Now() < deadline) {
      nodes_[1].dp->MaintainOnce();
    }
    EXPECT_EQ(LocalSamples(id, "a"), Samples(a)) << "node " << id;
  }
}

TEST_F(Cluster, ReplicasBehindTheCoordinatorAccept) {
  auto old_map = ThreeNodeMap();
  auto new_map = Flipped();
  SetMap(1, [new_map] { return new_map; });
  SetMap(2, [old_map] { return old_map; });
  SetMap(3, [old_map] { return old_map; });
  std::vector<Series> a = Batch("a", 3);
  ASSERT_OK_AND_ASSIGN(storage::AppendResult r, nodes_[1].dp->WriteSeries(a));
  EXPECT_EQ(r.appended, Samples(a));
}

}  // namespace
}  // namespace vigil::cluster
