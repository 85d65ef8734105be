#include "cluster/ring.h"

#include <algorithm>

#include "absl/base/internal/endian.h"
#include "glog/logging.h"
#include "xxhash.h"

namespace vigil::cluster {
namespace {

// Part of the placement: changing it moves data between nodes.
constexpr uint64_t kTokenSeed = 0x76696769'6c72696eULL;  // "vigilrin"

uint64_t TokenPosition(NodeId node, uint32_t i) {
  char buf[12];
  absl::little_endian::Store64(buf, node);
  absl::little_endian::Store32(buf + 8, i);
  return XXH64(buf, sizeof buf, kTokenSeed);
}

uint64_t ShardPosition(uint32_t shard, uint32_t num_shards) {
  // The middle of the shard's slice of the hash space.
  const unsigned __int128 width = (static_cast<unsigned __int128>(1) << 64) / num_shards;
  return static_cast<uint64_t>(width * shard + width / 2);
}

}  // namespace

Ring::Ring(std::vector<NodeId> nodes, int tokens_per_node) : nodes_(std::move(nodes)) {
  CHECK_GE(tokens_per_node, 1);
  std::sort(nodes_.begin(), nodes_.end());
  nodes_.erase(std::unique(nodes_.begin(), nodes_.end()), nodes_.end());
  tokens_.reserve(nodes_.size() * tokens_per_node);
  for (NodeId n : nodes_) {
    for (int i = 0; i < tokens_per_node; ++i) {
      tokens_.emplace_back(TokenPosition(n, static_cast<uint32_t>(i)), n);
    }
  }
  // Ties (astronomically unlikely) break by node id, so the order is total.
  std::sort(tokens_.begin(), tokens_.end());
}

std::vector<NodeId> Ring::Place(uint32_t shard, uint32_t num_shards, int rf) const {
  CHECK_LT(shard, num_shards);
  std::vector<NodeId> out;
  const size_t want = std::min<size_t>(std::max(rf, 0), nodes_.size());
  if (want == 0) return out;
  const uint64_t pos = ShardPosition(shard, num_shards);
  auto it = std::lower_bound(tokens_.begin(), tokens_.end(),
                             std::make_pair(pos, NodeId{0}));
  for (size_t step = 0; step < tokens_.size() && out.size() < want; ++step, ++it) {
    if (it == tokens_.end()) it = tokens_.begin();
    if (std::find(out.begin(), out.end(), it->second) == out.end()) out.push_back(it->second);
  }
  CHECK_EQ(out.size(), want);
  return out;
}

std::vector<std::vector<NodeId>> Ring::PlaceAll(uint32_t num_shards, int rf) const {
  std::vector<std::vector<NodeId>> out;
  out.reserve(num_shards);
  for (uint32_t s = 0; s < num_shards; ++s) out.push_back(Place(s, num_shards, rf));
  return out;
}

int CountMoves(const std::vector<std::vector<NodeId>>& from,
               const std::vector<std::vector<NodeId>>& to) {
  CHECK_EQ(from.size(), to.size());
  int moves = 0;
  for (size_t s = 0; s < to.size(); ++s) {
    for (NodeId n : to[s]) {
      if (std::find(from[s].begin(), from[s].end(), n) == from[s].end()) ++moves;
    }
  }
  return moves;
}

std::map<NodeId, int> ReplicaCounts(const std::vector<std::vector<NodeId>>& placement) {
  std::map<NodeId, int> counts;
  for (const auto& replicas : placement) {
    for (NodeId n : replicas) ++counts[n];
  }
  return counts;
}

}  // namespace vigil::cluster
