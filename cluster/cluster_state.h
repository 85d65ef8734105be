// cluster/cluster_state.h
//
// ClusterState: the Raft-replicated control state of a Vigil cluster, as a
// deterministic state machine. It holds the members (id, addresses, state),
// the replication factor, each shard's replica set and ownership epoch, an
// in-flight move per shard, a space of versioned registers (used by the Jepsen
// control-state workload and alert state) and client sessions that make retried
// commands apply once.
//
// Commands are `v1::Command` protos serialized into the Raft log; Apply() takes
// them in log order. Nodes that apply the same commands hold the same state and
// produce byte-identical Snapshot()s. Nothing here reads a clock, a random
// source, or the network; a rejected command (bad arguments, wrong epoch) leaves
// the state unchanged and says why in its result.
//
// Shard ownership: Bootstrap places shards on the ring directly. Later changes
// are moves: BeginShardMove sets a pending replica set (writes go to both sets,
// reads keep using the current one), CompleteShardMove makes it current and bumps
// the shard's epoch, after which replicas no longer listed drop the shard.
// AbortShardMove drops the pending set and bumps the epoch too, so an epoch
// names at most one move (what a finished stream is recorded against).
// PlanMoves() says which moves would bring the placement to what the ring wants.
//
// Not thread-safe: one thread (the Raft apply loop) owns it; readers on other
// threads take shard_map() (immutable, shared) or a JSON/Snapshot copy.
#ifndef VIGIL_CLUSTER_CLUSTER_STATE_H_
#define VIGIL_CLUSTER_CLUSTER_STATE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cluster/ring.h"
#include "nlohmann/json.hpp"
#include "proto/vigil/cluster/v1/cluster.pb.h"

namespace vigil::cluster {

struct ClusterOptions {
  // Fixed for the life of the cluster; equal to storage::Options::num_shards.
  uint32_t num_shards = 64;
  // Until a Bootstrap or SetReplicationFactor says otherwise.
  uint32_t replication_factor = 3;
  int tokens_per_node = kDefaultTokensPerNode;
  // Client sessions kept; beyond this the least recently used is forgotten.
  size_t max_sessions = 4096;
};

struct ShardPlacement {
  std::vector<NodeId> replicas;  // preference order; reads use these
  std::vector<NodeId> pending;   // non-empty while a move is in flight
  uint64_t epoch = 0;            // bumped whenever `replicas` changes or a move ends

  bool moving() const { return !pending.empty(); }
  // Nodes a write must reach: replicas, then pending nodes not among them.
  std::vector<NodeId> WriteSet() const;
  friend bool operator==(const ShardPlacement&, const ShardPlacement&) = default;
};

// Acks a write needs from a shard's n replicas: floor(n/2) + 1 (1 for n == 0,
// which then can never be met).
int WriteQuorum(size_t n);
// Replicas a read must hear from so that it meets every acked write:
// n - W + 1, at least 1 (R + W > n).
int ReadQuorum(size_t n);

// The data plane's view of placement: immutable once built, shared across threads.
struct ShardMap {
  std::vector<ShardPlacement> shards;  // indexed by shard
  uint32_t num_shards() const { return static_cast<uint32_t>(shards.size()); }
};

// A move PlanMoves() proposes: BeginShardMove(shard, to, epoch), stream from the
// `from` replicas to the nodes of `to` that lack the shard, CompleteShardMove.
struct PlannedMove {
  uint32_t shard = 0;
  uint64_t epoch = 0;
  std::vector<NodeId> from;
  std::vector<NodeId> to;
};

struct RegisterValue {
  std::string value;
  uint64_t version = 0;
};

class ClusterState {
 public:
  explicit ClusterState(ClusterOptions opts = {});
  ClusterState(const ClusterState&) = delete;
  ClusterState& operator=(const ClusterState&) = delete;

  // Applies the serialized `v1::Command` at Raft log position `index`, which must
  // be greater than applied_index() (CHECKed). Always advances applied_index().
  // The result's code is OK or says why nothing changed: kInvalidArgument
  // (unparsable bytes, bad arguments), kNotFound (unknown member), kAlreadyExists,
  // kFailedPrecondition (wrong epoch, shard busy, CAS mismatch, stale session
  // sequence). A repeat of a session's last (client_id, sequence) returns the
  // first result without applying again.
  v1::CommandResult Apply(uint64_t index, absl::string_view command);

  // The whole state, deterministic bytes (a v1::Snapshot).
  std::string Snapshot() const;
  // Replaces the state with a Snapshot()'s. kDataLoss if the bytes do not parse
  // or are inconsistent (wrong shard count); the state is then unchanged.
  absl::Status Restore(absl::string_view snapshot);

  uint64_t applied_index() const { return applied_index_; }
  bool bootstrapped() const { return bootstrapped_; }
  uint32_t num_shards() const { return opts_.num_shards; }
  uint32_t replication_factor() const { return replication_factor_; }
  const std::map<NodeId, v1::Member>& members() const { return members_; }
  const v1::Member* FindMember(NodeId id) const;
  const ShardPlacement& shard(uint32_t s) const { return shards_.at(s); }
  // The current placement, rebuilt after a change; safe to hand to other threads.
  std::shared_ptr<const ShardMap> shard_map() const;
  // A possibly stale local read; nullopt if absent.
  std::optional<RegisterValue> GetRegister(absl::string_view key) const;

  // Moves that bring each shard not already moving to the ring's placement over
  // the ACTIVE members with min(RF, active) replicas. Deterministic, ascending shard.
  std::vector<PlannedMove> PlanMoves() const;

  // For GET /api/v1/status/cluster: applied index, shard count, RF, members and
  // per-shard replicas, epochs and pending moves.
  nlohmann::json ToJson() const;

 private:
  v1::CommandResult ApplyOp(const v1::Command& cmd);
  v1::CommandResult DoBootstrap(const v1::Bootstrap& op);
  v1::CommandResult DoAddMember(const v1::AddMember& op);
  v1::CommandResult DoRemoveMember(const v1::RemoveMember& op);
  v1::CommandResult DoMarkMemberState(const v1::MarkMemberState& op);
  v1::CommandResult DoBeginShardMove(const v1::BeginShardMove& op);
  v1::CommandResult DoCompleteShardMove(const v1::CompleteShardMove& op);
  v1::CommandResult DoAbortShardMove(const v1::AbortShardMove& op);
  v1::CommandResult DoSetReplicationFactor(const v1::SetReplicationFactor& op);
  v1::CommandResult DoPut(const v1::Put& op);
  v1::CommandResult DoGet(const v1::Get& op);
  v1::CommandResult DoDelete(const v1::Delete& op);
  v1::CommandResult DoCompareAndSet(const v1::CompareAndSet& op);
  ShardPlacement* MovingShard(uint32_t shard, uint64_t expected_epoch, v1::CommandResult* error);
  v1::CommandResult WriteRegister(const std::string& key, const std::string& value);
  void RememberSession(uint64_t client_id, uint64_t sequence, const v1::CommandResult& r);
  std::vector<NodeId> ActiveMembers() const;
  void ShardsChanged() { shard_map_cache_.reset(); }

  // Constant after construction.
  const ClusterOptions opts_;

  // The replicated state. Invariant: identical on every node after the same Apply()s.
  uint64_t applied_index_ = 0;
  bool bootstrapped_ = false;
  uint32_t replication_factor_;
  std::map<NodeId, v1::Member> members_;
  std::vector<ShardPlacement> shards_;  // size == opts_.num_shards
  std::map<std::string, RegisterValue, std::less<>> registers_;
  std::map<uint64_t, v1::Session> sessions_;  // by client id

  // Derived: reset whenever shards_ changes.
  mutable std::shared_ptr<const ShardMap> shard_map_cache_;
};

// Serializes `cmd` for the Raft log.
std::string EncodeCommand(const v1::Command& cmd);
// The result's code and message as a Status.
absl::Status ResultStatus(const v1::CommandResult& result);
const char* MemberStateName(v1::MemberState state);

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_CLUSTER_STATE_H_
