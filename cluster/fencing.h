// cluster/fencing.h
//
// Epoch fencing of replica writes. A coordinator places every write with its
// own shard map and sends each replica, per shard, the view it placed it with
// (ShardView: the shard's ownership epoch and whether a move had begun at it).
// A replica compares that with its own map and refuses a write placed with an
// older view (kFailedPrecondition "stale shard epoch ..."), so that a
// coordinator with a stale map (a node removed while partitioned, or one that
// has not applied the latest control state yet) cannot count acks from a
// replica set that no longer owns the shard; it waits for its map to catch up
// and rewrites (QuorumWriter::WriteAndWait with an AwaitMapFn), or fails the
// write as kUnavailable. A replica behind the coordinator accepts. Why that is
// safe: cluster/README.md, "Epoch fencing".
//
// Pure functions: thread-safe.
#ifndef VIGIL_CLUSTER_FENCING_H_
#define VIGIL_CLUSTER_FENCING_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "cluster/cluster_state.h"

namespace vigil::cluster {

// What a coordinator knew of one shard when it placed a write.
struct ShardView {
  // The shard's ownership epoch; 0: unknown (rebalancing streams, repairs), never fenced.
  uint64_t epoch = 0;
  // Whether a move (writes to both replica sets) had begun at `epoch`; nullopt
  // from coordinators that do not say (older versions): only the epoch counts.
  std::optional<bool> moving;

  friend bool operator==(const ShardView&, const ShardView&) = default;
};

inline ShardView ViewOf(const ShardPlacement& p) { return ShardView{p.epoch, p.moving()}; }

// Whether `a` is a later view of a shard than `b`: a higher epoch, or the same
// epoch with the move begun where `b` had none.
inline bool NewerView(const ShardView& a, const ShardView& b) {
  return a.epoch > b.epoch ||
         (a.epoch == b.epoch && a.moving.value_or(false) && !b.moving.value_or(true));
}

// kFailedPrecondition "stale shard epoch N < M ..." naming the shard and both views.
absl::Status StaleShardViewError(uint32_t shard, const ShardView& write, const ShardView& local);
// Whether `s` is a replica's refusal of a write placed with a stale view.
bool IsStaleShardView(const absl::Status& s);

// The replica's side: OK if this replica, whose map is `map` (null: none yet),
// may accept a write of `shard` placed with `write`; kFailedPrecondition
// (IsStaleShardView) if its map has a newer view of the shard than `write`.
// Never rejects when `write.epoch` is 0, `map` is null or does not have the
// shard: a replica that cannot judge accepts. An integer compare or two.
inline absl::Status CheckShardView(uint32_t shard, const ShardView& write, const ShardMap* map) {
  if (write.epoch == 0 || map == nullptr || shard >= map->num_shards()) return absl::OkStatus();
  const ShardPlacement& p = map->shards[shard];
  if (write.epoch > p.epoch) return absl::OkStatus();  // this replica is behind: accept
  if (write.epoch < p.epoch || (p.moving() && write.moving.has_value() && !*write.moving)) {
    return StaleShardViewError(shard, write, ViewOf(p));
  }
  return absl::OkStatus();
}

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_FENCING_H_
