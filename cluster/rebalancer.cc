#include "cluster/rebalancer.h"

#include <algorithm>

namespace vigil::cluster {
namespace {

bool AllActive(const ClusterState& state, const std::vector<NodeId>& nodes) {
  return std::all_of(nodes.begin(), nodes.end(), [&](NodeId n) {
    const v1::Member* m = state.FindMember(n);
    return m != nullptr && m->state() == v1::ACTIVE;
  });
}

}  // namespace

RebalanceStep NextRebalanceStep(const ClusterState& state,
                                const std::map<uint32_t, uint64_t>& streamed,
                                const RebalanceOptions& opts) {
  RebalanceStep step;
  int moving = 0;
  for (uint32_t s = 0; s < state.num_shards(); ++s) {
    const ShardPlacement& p = state.shard(s);
    if (!p.moving()) continue;
    v1::Command c;
    if (!AllActive(state, p.pending)) {
      c.mutable_abort_shard_move()->set_shard(s);
      c.mutable_abort_shard_move()->set_expected_epoch(p.epoch);
      step.propose.push_back(std::move(c));
      continue;
    }
    // Nothing to stream when no node is new (a shrinking set) or no old one is left.
    std::vector<Transfer> streams =
        PlanMoveStreams(PlannedMove{s, p.epoch, p.replicas, p.pending}, opts.stream_range);
    auto it = streamed.find(s);
    if (streams.empty() || (it != streamed.end() && it->second == p.epoch)) {
      c.mutable_complete_shard_move()->set_shard(s);
      c.mutable_complete_shard_move()->set_expected_epoch(p.epoch);
      step.propose.push_back(std::move(c));
      continue;  // frees its slot
    }
    ++moving;
    for (Transfer& t : streams) step.streams.push_back(std::move(t));
  }
  for (const PlannedMove& m : state.PlanMoves()) {
    if (moving >= opts.max_concurrent_moves) break;
    v1::Command c;
    c.mutable_begin_shard_move()->set_shard(m.shard);
    c.mutable_begin_shard_move()->mutable_target()->Add(m.to.begin(), m.to.end());
    c.mutable_begin_shard_move()->set_expected_epoch(m.epoch);
    step.propose.push_back(std::move(c));
    ++moving;
  }
  return step;
}

std::vector<uint32_t> ShardsToDrop(NodeId self, const ShardMap& map,
                                   const std::vector<uint32_t>& local) {
  std::vector<uint32_t> out;
  for (uint32_t s : local) {
    if (s >= map.num_shards()) continue;
    const std::vector<NodeId> w = map.shards[s].WriteSet();
    if (std::find(w.begin(), w.end(), self) == w.end()) out.push_back(s);
  }
  return out;
}

}  // namespace vigil::cluster
