// cluster/rebalancer.h
//
// Rebalancing decisions for the Raft leader's control loop, as pure functions of
// the ClusterState (the shell proposes the commands, runs the streams and calls
// again; nothing here blocks or remembers):
//
//   loop on the leader:
//     step = NextRebalanceStep(state, streamed, opts)
//     propose step.propose (Begin/Complete/AbortShardMove)
//     start step.streams not already running (PlanMoveStreams: old owner ->
//       new owners, via TSDB::ExportShard into the new owners' Append);
//       when one finishes, record streamed[shard] = the epoch it was started at
//
// and on every node: DropShardsNotOwned(self, map, local shards) after a flip.
// A move completes only after its stream finished at the shard's current epoch;
// writes reach both sets meanwhile (QuorumWriter), so no acked sample is lost.
#ifndef VIGIL_CLUSTER_REBALANCER_H_
#define VIGIL_CLUSTER_REBALANCER_H_

#include <cstdint>
#include <map>
#include <vector>

#include "cluster/anti_entropy.h"
#include "cluster/cluster_state.h"

namespace vigil::cluster {

struct RebalanceOptions {
  // Shards moving at once (each streams a whole shard).
  int max_concurrent_moves = 4;
  // The time range streams cover.
  TimeRange stream_range{INT64_MIN, INT64_MAX};
};

struct RebalanceStep {
  std::vector<v1::Command> propose;  // in order
  std::vector<Transfer> streams;     // for moving shards not yet streamed
};

// `streamed`: shard -> the epoch at which its move's stream completed.
// Completes moves whose stream is done at the current epoch; aborts moves whose
// pending set names a node that is no longer ACTIVE; begins planned moves up to
// the concurrency limit. Deterministic.
RebalanceStep NextRebalanceStep(const ClusterState& state,
                                const std::map<uint32_t, uint64_t>& streamed,
                                const RebalanceOptions& opts);

// Shards in `local` (what this node's TSDB holds) that `self` neither replicates
// nor is receiving: safe to TSDB::DropShard once the map shows the flip.
std::vector<uint32_t> ShardsToDrop(NodeId self, const ShardMap& map,
                                   const std::vector<uint32_t>& local);

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_REBALANCER_H_
