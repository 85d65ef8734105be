// The cluster's pieces together over FakeNodes: ClusterState applying the
// rebalancer's commands, QuorumWriter writing through moves, FanoutSource
// reading. Nodes join, leave and fail (up to two at a time, losing hints);
// after every step every acked sample must be readable by any read that
// succeeds, and with at most one node down writes and reads must succeed.
#include <cstdlib>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "cluster/cluster_state.h"
#include "cluster/fanout_source.h"
#include "cluster/quorum_writer.h"
#include "cluster/rebalancer.h"
#include "cluster/testing/commands.h"
#include "cluster/testing/fake_nodes.h"
#include "common/testing/status_matchers.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using Mode = FakeNodes::Mode;

constexpr uint32_t kShards = 16;

class ClusterSim {
 public:
  explicit ClusterSim(uint64_t seed)
      : rng_(seed),
        state_(Options()),
        nodes_(&clock_, kShards),
        hints_(HintOptions(), &clock_),
        writer_(WriterOptions(), &nodes_, &clock_, &hints_) {
    Propose(BootstrapCommand({1, 2, 3}));
  }

  static ClusterOptions Options() {
    ClusterOptions o;
    o.num_shards = kShards;
    return o;
  }
  static QuorumWriterOptions WriterOptions() {
    QuorumWriterOptions o;
    o.shard_of = &ModShardOf;
    return o;
  }

  void Propose(const v1::Command& c) {
    v1::CommandResult r = state_.Apply(++index_, EncodeCommand(c));
    ASSERT_EQ(r.code(), 0) << r.message() << " for " << c.ShortDebugString();
    if (c.has_complete_shard_move()) ++flips_;
  }

  void AddNode(NodeId id) { Propose(AddMemberCommand(id)); }
  void Mark(NodeId id, v1::MemberState st) { Propose(MarkMemberStateCommand(id, st)); }

  // Up to two members down at a time. A returning node gets its hints only
  // half the time (the coordinator may have restarted and lost them).
  void MaybeFail() {
    if (rng_() % 2 != 0) return;
    std::vector<NodeId> members;
    for (const auto& [id, m] : state_.members()) members.push_back(id);
    const NodeId n = members[rng_() % members.size()];
    if (down_.count(n)) {
      nodes_.SetMode(n, Mode::kUp);
      down_.erase(n);
      if (rng_() % 2) {
        absl::Status replayed;
        writer_.ReplayHints(n, *state_.shard_map(), [&](absl::Status s) { replayed = s; });
        EXPECT_OK(replayed);
      } else {
        while (!hints_.Take(n, 1000).empty()) {
        }
      }
    } else if (down_.size() < 2) {
      nodes_.SetMode(n, Mode::kDown);
      down_.insert(n);
    }
  }

  void Write(int64_t t) {
    std::vector<Series> batch;
    for (int k = 0; k < 4; ++k) {
      batch.push_back(Series{Labels{{"__name__", "m"}, {"s", absl::StrCat(rng_() % 24)}},
                             {{t, static_cast<double>(t)}}});
    }
    std::vector<Series> copy = batch;
    absl::StatusOr<storage::AppendResult> r = writer_.WriteAndWait(state_.shard_map(), batch);
    // One node down of three or more replicas never blocks a write.
    if (down_.size() <= 1) {
      ASSERT_OK(r) << "t=" << t;
    }
    if (!r.ok()) {
      ++failed_writes_;
      return;
    }
    for (const Series& s : copy) acked_[s.labels].insert(s.samples[0].t);
  }

  // One turn of the leader's loop, streams that can run finish at once, and
  // every live node drops what it no longer owns.
  void Rebalance() {
    RebalanceOptions opts;
    opts.max_concurrent_moves = 4;
    RebalanceStep step = NextRebalanceStep(state_, streamed_, opts);
    for (const v1::Command& c : step.propose) Propose(c);
    std::map<uint32_t, bool> complete;
    for (const Transfer& t : step.streams) {
      // Streams take a while: half of them are still running at the next step.
      bool ok = nodes_.up(t.from) && rng_() % 2 == 0;
      for (NodeId to : t.to) ok = ok && nodes_.up(to);
      if (ok) {
        for (NodeId to : t.to) nodes_.CopyShard(t.from, to, t.shard);
      }
      complete.emplace(t.shard, true);
      complete[t.shard] = complete[t.shard] && ok;
    }
    for (const auto& [shard, ok] : complete) {
      if (ok) streamed_[shard] = state_.shard(shard).epoch;
    }
    auto map = state_.shard_map();
    for (NodeId n = 1; n <= 5; ++n) {
      if (!nodes_.up(n)) continue;
      for (uint32_t s : ShardsToDrop(n, *map, nodes_.ListShards(n))) nodes_.DropShard(n, s);
    }
  }

  void CheckReads(int step) {
    FanoutOptions fo;
    std::vector<NodeId> members;
    for (const auto& [id, m] : state_.members()) members.push_back(id);
    fo.self = members[rng_() % members.size()];
    FanoutSource src(state_.shard_map(), &nodes_, &clock_, fo);
    absl::StatusOr<query::SelectResult> r =
        src.Select({0, 1'000'000}, {LabelMatcher::Equal("__name__", "m")});
    if (down_.size() <= 1) {
      ASSERT_OK(r) << "step " << step;
    }
    if (!r.ok()) return;
    ++checked_reads_;
    std::map<Labels, std::set<int64_t>> seen;
    for (const Series& s : r->series) {
      for (const Sample& x : s.samples) seen[s.labels].insert(x.t);
    }
    for (const auto& [labels, times] : acked_) {
      for (int64_t t : times) {
        ASSERT_TRUE(seen[labels].count(t))
            << "step " << step << ": acked " << labels.ToString() << " @" << t << " lost";
      }
    }
  }

  // The invariant reads rely on: for every shard, every read quorum of its
  // replicas (not just the one FanoutSource happens to pick) together holds
  // every acked sample of the shard.
  void CheckReadQuorums(int step) {
    std::map<NodeId, std::map<Labels, std::set<int64_t>>> held;
    for (NodeId n = 1; n <= 5; ++n) {
      for (const Series& series : nodes_.Data(n)) {
        for (const Sample& x : series.samples) held[n][series.labels].insert(x.t);
      }
    }
    auto map = state_.shard_map();
    for (const auto& [labels, times] : acked_) {
      const std::vector<NodeId>& r = map->shards[ModShardOf(labels.Hash(), kShards)].replicas;
      const size_t need = ReadQuorum(r.size());
      for (uint32_t mask = 0; mask < (1u << r.size()); ++mask) {
        if (static_cast<size_t>(__builtin_popcount(mask)) != need) continue;
        for (int64_t t : times) {
          bool found = false;
          for (size_t i = 0; i < r.size(); ++i) {
            found = found || ((mask >> i) & 1 && held[r[i]][labels].count(t));
          }
          ASSERT_TRUE(found) << "step " << step << ": acked " << labels.ToString() << " @" << t
                             << " missing from a read quorum (mask " << mask << ")";
        }
      }
    }
  }

  void Run(int steps) {
    for (int step = 0; step < steps; ++step) {
      if (step == 20) AddNode(4);
      if (step == 90) AddNode(5);
      if (step == 160) Mark(2, v1::LEAVING);
      MaybeFail();
      Write(step);
      Rebalance();
      CheckReads(step);
      CheckReadQuorums(step);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  std::mt19937_64 rng_;
  FakeClock clock_;
  ClusterState state_;
  FakeNodes nodes_;
  HintStore hints_;
  QuorumWriter writer_;
  uint64_t index_ = 0;
  std::set<NodeId> down_;
  int flips_ = 0;
  int failed_writes_ = 0;
  int checked_reads_ = 0;
  std::map<uint32_t, uint64_t> streamed_;
  std::map<Labels, std::set<int64_t>> acked_;
};

// Runs one seeded simulation and checks that every acked sample is in every read quorum.
void RunSeed(uint64_t seed) {
  {
    LOG(INFO) << "seed " << seed;
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    ClusterSim sim(seed);
    sim.Run(260);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    // Let the last moves finish with every node up.
    for (NodeId n : sim.down_) sim.nodes_.SetMode(n, Mode::kUp);
    sim.down_.clear();
    auto settled = [&] {
      for (uint32_t s = 0; s < kShards; ++s) {
        if (sim.state_.shard(s).moving()) return false;
      }
      return sim.state_.PlanMoves().empty();
    };
    for (int i = 0; i < 1000 && !settled(); ++i) sim.Rebalance();
    sim.Rebalance();  // the last drops
    sim.CheckReads(-1);
    EXPECT_TRUE(sim.state_.PlanMoves().empty());
    for (uint32_t s = 0; s < kShards; ++s) {
      const ShardPlacement& p = sim.state_.shard(s);
      EXPECT_FALSE(p.moving());
      EXPECT_EQ(std::count(p.replicas.begin(), p.replicas.end(), 2), 0);
      EXPECT_EQ(p.replicas.size(), 3u);
    }
    // The leaving node dropped everything; the others hold only their shards.
    EXPECT_TRUE(sim.nodes_.ListShards(2).empty());
    LOG(INFO) << "ownership flips " << sim.flips_ << ", failed writes " << sim.failed_writes_
              << ", reads checked " << sim.checked_reads_;
    EXPECT_GT(sim.flips_, 0);
  }
}

// Fixed seeds so CI is deterministic; sweep more with --gtest_also_run_disabled_tests.
TEST(ClusterSimTest, NoAckedSampleIsLostThroughJoinsLeavesAndFailures) {
  for (uint64_t seed : {2122987828ULL, 973196206ULL, 69315299ULL, 3663778650ULL, 843780061ULL,
                        4192653296ULL, 1574343078ULL, 1086457845ULL}) {
    RunSeed(seed);
    if (::testing::Test::HasFailure()) return;
  }
}

// Seed 1604136155 lost an acked sample from a read quorum at step 194: a move
// aborted after its stream had finished, a new move of the shard began at the
// same epoch and completed on the old stream record, so its new replica never
// got the shard's data. Fixed by AbortShardMove bumping the epoch.
TEST(ClusterSimTest, RegressionSeed1604136155) { RunSeed(1604136155ULL); }

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : std::strtoull(v, nullptr, 10);
}

// A sweep: CLUSTER_SIM_SEEDS seeds (default 50) from CLUSTER_SIM_FIRST_SEED
// (default random), stopping at the first failure (its seed is in the trace).
TEST(ClusterSimTest, DISABLED_RandomSeeds) {
  const uint64_t first = EnvOr("CLUSTER_SIM_FIRST_SEED", std::random_device()());
  const uint64_t count = EnvOr("CLUSTER_SIM_SEEDS", 50);
  for (uint64_t seed = first; seed < first + count && !::testing::Test::HasFailure(); ++seed) {
    RunSeed(seed);
  }
}

}  // namespace
}  // namespace vigil::cluster
