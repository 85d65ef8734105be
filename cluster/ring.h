// cluster/ring.h
//
// Ring: consistent-hash placement of shards on nodes. Each node owns
// `tokens_per_node` points on a 64-bit ring (xxhash64 of its id and the token
// number, so every node computes the same ring from the same member list); shard
// s sits at the middle of its hash range, s * 2^64 / num_shards, and its replicas
// are the first `rf` distinct nodes met walking clockwise from there. Adding a
// node only inserts it into replica sets (each changed set loses one old node);
// removing one only replaces it. Both move about rf/N of the replicas.
//
// Value type, immutable after construction; thread-safe for concurrent reads.
#ifndef VIGIL_CLUSTER_RING_H_
#define VIGIL_CLUSTER_RING_H_

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace vigil::cluster {

using NodeId = uint64_t;

inline constexpr int kDefaultTokensPerNode = 256;

class Ring {
 public:
  // `nodes` in any order; duplicates are ignored. tokens_per_node >= 1.
  Ring(std::vector<NodeId> nodes, int tokens_per_node = kDefaultTokensPerNode);

  // The replicas of `shard` (< num_shards) in preference order: min(rf, nodes)
  // distinct nodes. Empty if the ring has no nodes.
  std::vector<NodeId> Place(uint32_t shard, uint32_t num_shards, int rf) const;
  // Place() for every shard, indexed by shard.
  std::vector<std::vector<NodeId>> PlaceAll(uint32_t num_shards, int rf) const;

  const std::vector<NodeId>& nodes() const { return nodes_; }

 private:
  std::vector<NodeId> nodes_;                        // sorted, unique
  std::vector<std::pair<uint64_t, NodeId>> tokens_;  // sorted by position
};

// Replicas that must be copied to go from placement `from` to `to` (same shard
// count): the sum over shards of |to[s] \ from[s]|.
int CountMoves(const std::vector<std::vector<NodeId>>& from,
               const std::vector<std::vector<NodeId>>& to);

// How many shard replicas each node holds in `placement`.
std::map<NodeId, int> ReplicaCounts(const std::vector<std::vector<NodeId>>& placement);

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_RING_H_
