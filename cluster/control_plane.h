// cluster/control_plane.h
//
// ControlPlane: a node's member of the Raft group that replicates the cluster's
// control state (ClusterState: members, shard placement, epochs, registers). It
// owns the RaftNode (RocksDB log under <data_dir>/raft), the gRPC Raft transport
// and the ClusterAdmin service (proto/vigil/v1/cluster.proto), both registered
// on the caller's grpc::ServerBuilder so vigild serves one gRPC port.
//
// Lifecycle: Create() -> RegisterServices(builder) -> the caller builds and
// starts its gRPC server -> Start() -> ... -> the caller shuts its servers down
// -> the ControlPlane is destroyed. HTTP routes may be registered right after
// Create(); until Start() every call answers kUnavailable ("starting").
//
// Bootstrap: with `join == false`, an empty log is bootstrapped with every peer
// as a founding voter; the first leader proposes Bootstrap (all peers ACTIVE,
// shards placed by the ring). A restarted node recovers from its log. With
// `join == true` the node starts empty and waits for the leader to add it
// (AddNode on any member).
//
// The leader runs a reconcile loop: promote caught-up learners, mark joined
// members ACTIVE, move shards toward the ring's placement (through
// `stream_shard`), and drop LEAVING members once no shard lists them.
//
// Thread-safe: every public method may be called from any thread.
#ifndef VIGIL_CLUSTER_CONTROL_PLANE_H_
#define VIGIL_CLUSTER_CONTROL_PLANE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/anti_entropy.h"
#include "cluster/cluster_state.h"
#include "common/clock.h"
#include "common/event.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "proto/vigil/v1/cluster.grpc.pb.h"
#include "raft/grpc_transport.h"
#include "raft/raft_node.h"

namespace vigil::metrics {
class Registry;
}  // namespace vigil::metrics

namespace vigil::cluster {

struct PeerAddress {
  std::string grpc_address;
  std::string http_address;  // may be empty
};

// Streams one shard range to the nodes of `transfer.to` and calls `done` once
// (from any thread) when it finished. Supplied by the data plane.
using ShardStreamer =
    std::function<void(const Transfer& transfer, std::function<void(absl::Status)> done)>;

struct ControlPlaneOptions {
  NodeId node_id = 0;
  // Every founding member including this node (id -> addresses); with `join`,
  // the members this node can reach. Parse "--peers" with ParsePeers().
  std::map<NodeId, PeerAddress> peers;
  // Start without a configuration and wait to be added to an existing cluster.
  bool join = false;
  // With `join`: a running member's gRPC address ("host:port"). Until this node
  // is in the Raft configuration, the reconcile loop asks it (ClusterAdmin.AddNode)
  // to add this node with its `peers` entry's addresses.
  std::string join_via;
  // The Raft log lives in <data_dir>/raft.
  std::string data_dir;
  // Election timeouts are drawn from [election_ticks, 2 * election_ticks) ticks:
  // 0.5-1 s, so a dead leader is replaced in about a second.
  absl::Duration tick = absl::Milliseconds(50);
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  uint32_t replication_factor = 3;
  uint32_t num_shards = 64;
  // Deadline of Propose/Get and of the calls forwarded to the leader.
  absl::Duration request_timeout = absl::Seconds(5);
  // Deadlines and timeouts are measured on its MonotonicNow() (wall-clock steps
  // neither expire nor extend them). Not owned.
  const Clock* clock = RealClock::Get();
  // How often the leader's reconcile loop runs.
  absl::Duration reconcile_interval = absl::Milliseconds(200);
  // Snapshot the control state and compact the Raft log every this many entries.
  uint64_t snapshot_every = 10000;
  // Committed entries kept for GET /debug/raft.
  size_t debug_entries = 64;
  // Null: the leader never begins shard moves (placement stays as bootstrapped
  // plus forced removals). The data plane sets it.
  ShardStreamer stream_shard;
  // When set, StatusJson() reports its value as "streams" (the data plane's
  // rebalancing transfers run by this node, DataPlane::StreamsJson()).
  std::function<nlohmann::json()> stream_status;
  // Raft gauges are exported here when set. Not owned.
  metrics::Registry* metrics = nullptr;
};

// Parses "1=host:port,2=host:port" or "1=host:port/http_host:http_port,..."
// (kInvalidArgument on a malformed entry or duplicate id).
absl::StatusOr<std::map<NodeId, PeerAddress>> ParsePeers(absl::string_view flag);

class ControlPlane {
 public:
  using MapCallback = std::function<void(std::shared_ptr<const ShardMap>)>;

  // Checks the options. kInvalidArgument on bad options.
  static absl::StatusOr<std::unique_ptr<ControlPlane>> Create(ControlPlaneOptions options);
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;
  // Stops the loops. The server the services were registered on must already
  // be shut down.
  ~ControlPlane();

  // Ends the Raft streams peers keep open into this node and refuses new ones
  // (raft::GrpcTransport::CloseInbound). Call right before shutting down the
  // gRPC server the services are on: its Shutdown() would wait for them.
  void CloseInbound();

  // Registers the Raft transport and ClusterAdmin services on `builder`, whose
  // max receive size bounds the Raft snapshots this node accepts (the control
  // state is small: members, shards, registers, sessions). Call once, before Start().
  void RegisterServices(grpc::ServerBuilder* builder);

  // Opens the log (kDataLoss if corrupt), recovers the state and starts Raft and
  // the reconcile loop. Call once, after the gRPC server started.
  absl::Status Start();
  bool started() const { return started_.load(std::memory_order_acquire); }

  NodeId node_id() const { return options_.node_id; }
  // The placement as of the last applied entry (empty shards before bootstrap).
  std::shared_ptr<const ShardMap> shard_map() const;
  // Calls `cb` now with the current map and after every applied change, on the
  // Raft loop thread: it must be quick and must not call back into Raft.
  void SubscribeShardMap(MapCallback cb);

  using RegisterCallback = std::function<void(absl::string_view key, absl::string_view value)>;
  // Calls `cb(key, value)` for every register whose key starts with `prefix`:
  // now for the registers already there, then, on the Raft apply thread and in
  // apply order, for every committed Put or successful CompareAndSet under the
  // prefix, and for every register under the prefix after a snapshot restore
  // (also the one at Start()). Subscribe before Start() to see the startup
  // replay. `cb` must be quick and must not call back into Raft; a value may be
  // delivered more than once (a session's retried command), never out of order.
  void SubscribeRegisters(absl::string_view prefix, RegisterCallback cb);

  // Proposes `cmd` (on the leader, or forwarded to it) and waits until it is
  // applied: the state machine's result (whose code may be an error, see
  // ResultStatus). A command without a session gets a fresh one, so internal
  // retries apply it once. kUnavailable when no leader answered within the
  // timeout (the command may or may not apply), kFailedPrecondition if stopped.
  absl::StatusOr<v1::CommandResult> Propose(v1::Command cmd);

  // Registers, linearizable: Get runs a ReadIndex barrier then reads locally.
  absl::StatusOr<RegisterValue> GetRegister(absl::string_view key);  // version 0: absent
  absl::StatusOr<uint64_t> PutRegister(absl::string_view key, absl::string_view value);
  // kFailedPrecondition with *current set when the value differs.
  absl::StatusOr<uint64_t> CompareAndSetRegister(absl::string_view key,
                                                 absl::string_view expected,
                                                 absl::string_view value, RegisterValue* current);
  // A register write of state computed by the leader of Raft term `term` (alert
  // state): proposed here only while this node leads in `term`, never forwarded,
  // and applied only from a log entry of that term (v1::Command.fence_term), so
  // a deposed leader's late write cannot overwrite a later leader's. Take `term`
  // from raft_status() while leader_applied. kFailedPrecondition if this node
  // does not lead in `term` or that leadership ended before the write committed
  // (it then never applies: recompute, do not retry); kUnavailable if the
  // outcome is unknown (timeout).
  absl::StatusOr<uint64_t> PutRegisterFenced(absl::string_view key, absl::string_view value,
                                             uint64_t term);

  // Membership, forwarded to the leader. AddNode: AddMember (JOINING) and a Raft
  // learner; the reconcile loop promotes it and makes it ACTIVE. RemoveNode:
  // marks it LEAVING (its shards move away), then it leaves the member list and
  // the Raft configuration; with `force` (dead node) at once.
  absl::Status AddNode(NodeId id, const PeerAddress& address);
  absl::Status RemoveNode(NodeId id, bool force = false);
  // Moves leadership to `target` (kNone: the most up-to-date other voter) and
  // waits until it leads. Returns the new leader.
  absl::StatusOr<NodeId> TransferLeader(NodeId target);

  // The gRPC address of member `id` in the committed member list, else its
  // --peers entry, else "" (the data plane's AddressFn).
  std::string MemberGrpcAddress(NodeId id) const;

  raft::RaftStatus raft_status() const;
  // GET /api/v1/status/cluster.
  nlohmann::json StatusJson() const;
  // GET /debug/raft: term, role, leader, commit_index, committed [[index, term, digest]...].
  nlohmann::json DebugRaftJson() const;

 private:
  class Machine;
  class AdminService;
  enum class Scope { kAnyNode, kLeaderOnly };

  using LocalFn = std::function<absl::Status(absl::Time deadline)>;
  using RemoteFn =
      std::function<grpc::Status(vigil::v1::ClusterAdmin::Stub*, grpc::ClientContext*)>;

  explicit ControlPlane(ControlPlaneOptions options);
  // Runs `local` if this node leads, else `remote` against the leader; retries
  // while leadership is unsettled (kFailedPrecondition/kUnavailable) until the
  // request timeout.
  absl::Status OnLeader(const LocalFn& local, const RemoteFn& remote);
  void ReconcileLoop();
  // One AddNode call for `join_via`; true once this node is a member.
  bool TryJoin();
  void Reconcile();
  void ReconcileMembers(const raft::RaftStatus& st, absl::Time deadline);
  void Rebalance(absl::Time deadline);
  absl::StatusOr<v1::CommandResult> ProposeLocal(const v1::Command& cmd, absl::Time deadline);
  absl::Status AddNodeLocal(NodeId id, const PeerAddress& address);
  absl::Status RemoveNodeLocal(NodeId id, bool force);
  absl::StatusOr<NodeId> TransferLeaderLocal(NodeId target);
  absl::Status ChangeConf(raft::ConfChange::Type type, NodeId id, std::string context,
                          absl::Time deadline);
  absl::StatusOr<NodeId> WaitForLeader(absl::Time deadline) const;
  std::string GrpcAddressOf(NodeId id) const;
  vigil::v1::ClusterAdmin::Stub* StubFor(NodeId id);
  void ExportMetrics();
  // Per-peer raft::PeerStats and the inbound snapshot counts, as gauges.
  void ExportTransportMetrics(const raft::ConfState& conf);

  const ControlPlaneOptions options_;
  std::unique_ptr<Machine> machine_;
  std::unique_ptr<raft::GrpcTransport> transport_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<raft::RaftNode> raft_;  // set once by Start(), before started_
  std::atomic<bool> started_{false};

  absl::Mutex stubs_mu_;
  std::map<std::string, std::unique_ptr<vigil::v1::ClusterAdmin::Stub>> stubs_
      ABSL_GUARDED_BY(stubs_mu_);

  // Shard streams of the moves this node started as leader; shared with the
  // streams' completion callbacks, which may outlive the ControlPlane.
  struct StreamBook {
    absl::Mutex mu;
    std::map<uint32_t, uint64_t> streamed ABSL_GUARDED_BY(mu);  // shard -> epoch
    std::set<uint32_t> running ABSL_GUARDED_BY(mu);
  };
  const std::shared_ptr<StreamBook> streams_ = std::make_shared<StreamBook>();

  Event stop_loop_;  // wakes the reconcile loop's monotonic wait
  std::thread loop_;
  uint64_t exported_leader_changes_ = 0;  // reconcile loop thread only
  bool joined_ = false;                    // reconcile loop thread only
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_CONTROL_PLANE_H_
