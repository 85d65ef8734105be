// The cluster's pieces together over FakeNodes: ClusterState applying the
// rebalancer's commands, QuorumWriter writing through moves, FanoutSource
// reading. Nodes join, leave and fail (up to two at a time, losing hints);
// after every step every acked sample must be readable by any read that
// succeeds, and with at most one node down writes and reads must succeed.
//
// Every node applies the log itself, up to one step late, and coordinates
// writes and fences them (epoch fencing) with its own map; a node drops a shard
// its own map has not listed for two steps (drop_delay). Node 2 is cut off from
// the control plane at step 150 (its map freezes), is drained and removed, and
// keeps coordinating writes with its stale map until the end: none of those
// may be acked and lost.
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
constexpr NodeId kMaxNode = 5;
constexpr NodeId kCutOff = 2;       // the node whose map freezes
constexpr int kFreezeStep = 150;
constexpr int kDropDelaySteps = 2;  // longer than any live node's apply lag

class ClusterSim {
 public:
  explicit ClusterSim(uint64_t seed, bool fence = true)
      : rng_(seed),
        lag_rng_(seed ^ 0x5eedf00dULL),
        fence_(fence),
        state_(Options()),
        nodes_(&clock_, kShards),
        hints_(HintOptions(), &clock_),
        writer_(WriterOptions(), &nodes_, &clock_, &hints_) {
    for (NodeId n = 1; n <= kMaxNode; ++n) views_[n] = std::make_unique<ClusterState>(Options());
    Propose(BootstrapCommand({1, 2, 3}));
    CatchUpAll();
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
    const std::string bytes = EncodeCommand(c);
    v1::CommandResult r = state_.Apply(log_.size() + 1, bytes);
    ASSERT_EQ(r.code(), 0) << r.message() << " for " << c.ShortDebugString();
    log_.push_back(bytes);
    if (c.has_complete_shard_move()) ++flips_;
  }

  void AddNode(NodeId id) { Propose(AddMemberCommand(id)); }
  void Mark(NodeId id, v1::MemberState st) { Propose(MarkMemberStateCommand(id, st)); }

  // Node `n` applies the whole log and fences writes with the result.
  void CatchUp(NodeId n) {
    ClusterState& v = *views_[n];
    while (v.applied_index() < log_.size()) {
      const uint64_t i = v.applied_index() + 1;
      v.Apply(i, log_[i - 1]);
    }
    if (fence_) nodes_.SetMap(n, v.shard_map());
  }
  void CatchUpAll() {
    for (NodeId n = 1; n <= kMaxNode; ++n) {
      if (n != frozen_) CatchUp(n);
    }
  }
  // Each live node catches up now or, half the time, one step later.
  void Lag() {
    for (NodeId n = 1; n <= kMaxNode; ++n) {
      if (n == frozen_) continue;
      if (lagging_.count(n) || lag_rng_() % 2 == 0) {
        CatchUp(n);
        lagging_.erase(n);
      } else if (views_[n]->applied_index() < log_.size()) {
        lagging_.insert(n);
      }
    }
  }

  std::vector<NodeId> Members() const {
    std::vector<NodeId> out;
    for (const auto& [id, m] : state_.members()) out.push_back(id);
    return out;
  }

  // Up to two members down at a time. A returning node gets its hints only
  // half the time (the coordinator may have restarted and lost them).
  void MaybeFail() {
    if (rng_() % 2 != 0) return;
    std::vector<NodeId> members = Members();
    const NodeId n = members[rng_() % members.size()];
    if (down_.count(n)) {
      Up(n);
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
  void Up(NodeId n) {
    nodes_.SetMode(n, Mode::kUp);
    down_.erase(n);
  }

  // A member coordinates, or a quarter of the time the cut-off node once frozen.
  NodeId Coordinator() {
    if (frozen_ != 0 && lag_rng_() % 4 == 0) return frozen_;
    std::vector<NodeId> members = Members();
    return members[lag_rng_() % members.size()];
  }

  void Write(int64_t t) {
    std::vector<Series> batch;
    for (int k = 0; k < 4; ++k) {
      batch.push_back(Series{Labels{{"__name__", "m"}, {"s", absl::StrCat(rng_() % 24)}},
                             {{t, static_cast<double>(t)}}});
    }
    std::vector<Series> copy = batch;
    const NodeId c = Coordinator();
    // What DataPlane::AwaitNewerMap does: the coordinator's own map, once it
    // has caught up (never for the cut-off node).
    auto await_newer = [&](const std::shared_ptr<const ShardMap>& stale) {
      std::shared_ptr<const ShardMap> m;
      if (c != frozen_) {
        CatchUp(c);
        lagging_.erase(c);
        m = views_[c]->shard_map();
      }
      return m == stale ? nullptr : m;
    };
    absl::StatusOr<storage::AppendResult> r =
        writer_.WriteAndWait(views_[c]->shard_map(), batch, await_newer);
    // One node down of three or more replicas never blocks a write by a node
    // that can catch up.
    if (down_.size() <= 1 && c != frozen_) {
      ASSERT_OK(r) << "t=" << t << " coordinator " << c;
    }
    if (!r.ok()) {
      ++failed_writes_;
      if (c == frozen_) ++fenced_writes_;
      return;
    }
    if (c == frozen_) ++stale_acks_;
    for (const Series& s : copy) acked_[s.labels].insert(s.samples[0].t);
  }

  // One turn of the leader's loop, streams that can run finish at once, and
  // every live node drops what its own map has not listed for a while.
  void Rebalance() {
    RebalanceOptions opts;
    opts.max_concurrent_moves = 4;
    RebalanceStep step = NextRebalanceStep(state_, streamed_, opts);
    for (const v1::Command& c : step.propose) {
      Propose(c);
      if (c.has_begin_shard_move()) begun_[c.begin_shard_move().shard()] = step_;
    }
    std::map<uint32_t, bool> complete;
    for (const Transfer& t : step.streams) {
      // stream_settle: a move's streams start once every live node has applied
      // its begin (the apply lag is at most one step).
      if (step_ < begun_[t.shard] + 2) continue;
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
    RemoveDrainedLeaver();
    for (NodeId n = 1; n <= kMaxNode; ++n) {
      if (!nodes_.up(n)) continue;
      std::map<uint32_t, int> still;
      for (uint32_t s : ShardsToDrop(n, *views_[n]->shard_map(), nodes_.ListShards(n))) {
        const int steps = unowned_steps_[n][s] + 1;
        if (steps >= kDropDelaySteps) {
          nodes_.DropShard(n, s);
        } else {
          still[s] = steps;
        }
      }
      unowned_steps_[n] = std::move(still);
    }
  }

  // What the leader's reconcile loop does with a LEAVING member no shard lists.
  void RemoveDrainedLeaver() {
    const v1::Member* m = state_.FindMember(kCutOff);
    if (m == nullptr || m->state() != v1::LEAVING) return;
    for (uint32_t s = 0; s < kShards; ++s) {
      if (!ShardsToDrop(kCutOff, *state_.shard_map(), {s}).empty()) continue;
      return;  // still listed
    }
    v1::Command c;
    c.mutable_remove_member()->set_id(kCutOff);
    Propose(c);
    Up(kCutOff);  // no longer a member MaybeFail would bring back
    removed_ = true;
  }

  void Lost(const std::string& what) {
    if (lost_++ == 0) first_loss_ = what;
  }

  void CheckReads(int step) {
    FanoutOptions fo;
    std::vector<NodeId> members = Members();
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
        if (!seen[labels].count(t)) {
          Lost(absl::StrCat("step ", step, ": acked ", labels.ToString(), " @", t, " not read"));
        }
      }
    }
  }

  // The invariant reads rely on: for every shard, every read quorum of its
  // replicas (not just the one FanoutSource happens to pick) together holds
  // every acked sample of the shard.
  void CheckReadQuorums(int step) {
    std::map<NodeId, std::map<Labels, std::set<int64_t>>> held;
    for (NodeId n = 1; n <= kMaxNode; ++n) {
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
          if (!found) {
            Lost(absl::StrCat("step ", step, ": acked ", labels.ToString(), " @", t,
                              " missing from a read quorum (mask ", mask, ")"));
          }
        }
      }
    }
  }

  void Run(int steps) {
    for (int step = 0; step < steps; ++step) {
      if (step == 20) AddNode(4);
      if (step == 90) AddNode(5);
      if (step == kFreezeStep) frozen_ = kCutOff;
      if (step == 160) Mark(kCutOff, v1::LEAVING);
      step_ = step;
      Lag();
      MaybeFail();
      Write(step);
      Rebalance();
      CheckReads(step);
      CheckReadQuorums(step);
      if (::testing::Test::HasFatalFailure() || lost_ > 0) return;
    }
  }

  // Every node up and caught up (the cut-off one too, as if the partition
  // healed), then the leader's loop until no move is left, then the drops.
  void Settle() {
    frozen_ = 0;
    for (NodeId n = 1; n <= kMaxNode; ++n) Up(n);
    auto settled = [&] {
      for (uint32_t s = 0; s < kShards; ++s) {
        if (state_.shard(s).moving()) return false;
      }
      return state_.PlanMoves().empty();
    };
    for (int i = 0; i < 1000 && !settled(); ++i) {
      ++step_;
      CatchUpAll();
      Rebalance();
    }
    for (int i = 0; i < kDropDelaySteps; ++i) {
      ++step_;
      CatchUpAll();
      Rebalance();
    }
  }

  std::mt19937_64 rng_;
  std::mt19937_64 lag_rng_;  // apply lag and coordinators, apart from rng_'s events
  const bool fence_;
  FakeClock clock_;
  ClusterState state_;  // the leader's: everything applied
  std::vector<std::string> log_;
  std::map<NodeId, std::unique_ptr<ClusterState>> views_;  // each node's own
  std::set<NodeId> lagging_;
  NodeId frozen_ = 0;
  bool removed_ = false;
  std::map<NodeId, std::map<uint32_t, int>> unowned_steps_;
  int step_ = 0;
  std::map<uint32_t, int> begun_;  // shard -> the step its current move began
  FakeNodes nodes_;
  HintStore hints_;
  QuorumWriter writer_;
  std::set<NodeId> down_;
  int flips_ = 0;
  int failed_writes_ = 0;
  int fenced_writes_ = 0;  // by the cut-off node, refused
  int stale_acks_ = 0;     // by the cut-off node, acked (while nothing it wrote to had moved)
  int checked_reads_ = 0;
  int lost_ = 0;
  std::string first_loss_;
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
    ASSERT_EQ(sim.lost_, 0) << sim.first_loss_;
    sim.Settle();
    sim.CheckReads(-1);
    ASSERT_EQ(sim.lost_, 0) << sim.first_loss_;
    EXPECT_TRUE(sim.state_.PlanMoves().empty());
    for (uint32_t s = 0; s < kShards; ++s) {
      const ShardPlacement& p = sim.state_.shard(s);
      EXPECT_FALSE(p.moving());
      EXPECT_EQ(std::count(p.replicas.begin(), p.replicas.end(), kCutOff), 0);
      EXPECT_EQ(p.replicas.size(), 3u);
    }
    // The leaving node was removed and dropped everything; the others hold only their shards.
    EXPECT_TRUE(sim.removed_);
    EXPECT_EQ(sim.state_.FindMember(kCutOff), nullptr);
    EXPECT_TRUE(sim.nodes_.ListShards(kCutOff).empty());
    LOG(INFO) << "ownership flips " << sim.flips_ << ", failed writes " << sim.failed_writes_
              << " (the cut-off node's: " << sim.fenced_writes_ << " refused, "
              << sim.stale_acks_ << " acked), reads checked " << sim.checked_reads_;
    EXPECT_GT(sim.flips_, 0);
    EXPECT_GT(sim.fenced_writes_, 0);
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

// The simulation can fail: without fencing, the cut-off node's writes are
// acked by replica sets that no longer own the shard, and some of them are lost.
TEST(ClusterSimTest, WithoutFencingAStaleCoordinatorLosesAckedSamples) {
  int losing = 0;
  for (uint64_t seed : {2122987828ULL, 973196206ULL, 69315299ULL, 3663778650ULL}) {
    ClusterSim sim(seed, /*fence=*/false);
    sim.Run(260);
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
    if (sim.lost_ > 0) LOG(INFO) << "seed " << seed << " without fencing: " << sim.first_loss_;
    losing += sim.lost_ > 0;
  }
  EXPECT_GT(losing, 0);
}

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
