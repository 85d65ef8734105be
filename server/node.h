// server/node.h
//
// Node: one running vigild. Owns the TSDB, the PromQL engine, the metrics
// registry, the HTTP server (Prometheus API), the gRPC server (vigil.v1) and the
// retention loop, and stops them in order.
//
// Start/Stop from one thread; everything else is thread-safe.
#ifndef VIGIL_SERVER_NODE_H_
#define VIGIL_SERVER_NODE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "alerting/service.h"
#include "cluster/control_plane.h"
#include "cluster/data_plane.h"
#include "cluster/replica_service.h"
#include "common/event.h"
#include "grpcpp/server.h"
#include "query/engine.h"
#include "server/grpc_services.h"
#include "server/http_api.h"
#include "server/metrics.h"
#include "storage/tsdb.h"

namespace httplib {
class Server;
}

namespace vigil::server {

// The node's cluster: empty `peers` runs a single node exactly as before.
struct ClusterNodeOptions {
  // Every member, this node included (cluster::ParsePeers of --peers).
  std::map<cluster::NodeId, cluster::PeerAddress> peers;
  // True: the shard map is computed once from `peers` (no Raft; membership
  // cannot change). False: the Raft-replicated ControlPlane owns it.
  bool static_map = false;
  uint32_t replication_factor = 3;  // capped at the number of peers
  bool partial_response = false;    // queries return what they can, with warnings
  absl::Duration write_timeout = absl::Seconds(5);
  // Reads: a replica silent this long is hedged (its shards ask the next one;
  // InfiniteDuration: never), and one read's deadline while another replica is
  // left (cluster/fanout_source.h).
  absl::Duration read_hedge_delay = absl::Milliseconds(400);
  absl::Duration read_attempt_timeout = absl::Seconds(10);
  absl::Duration anti_entropy_interval = absl::Seconds(30);
  // Non-empty: join an existing cluster through this member's gRPC address
  // (HOST:PORT) instead of bootstrapping; `peers` then holds this node's own
  // addresses (what it announces).
  std::string join;
};

struct NodeOptions {
  int64_t node_id = 1;
  // HOST:PORT; port 0 picks a free port (see http_port()/grpc_port()).
  std::string http_addr = "127.0.0.1:9401";
  std::string grpc_addr = "127.0.0.1:7401";
  storage::Options storage;  // storage.dir is the data directory
  HttpApiOptions http;
  query::EngineOptions engine;
  // How often the retention loop drops expired partitions.
  absl::Duration retention_interval = absl::Minutes(5);
  int http_threads = 8;
  std::string version = "0.1.0";
  ClusterNodeOptions cluster;
  // Rules and alerts (alerting/service.h). With the Raft control plane, rule sets
  // and alert state are committed through it and only its leader evaluates and
  // notifies; otherwise (single node, static cluster) this node does both alone.
  alerting::AlertingServiceOptions alerting;
};

class Node {
 public:
  // Binds the HTTP port first (so /-/healthy answers and /-/ready says 503 while
  // storage recovers), opens storage, then serves gRPC, starts the control plane
  // (a cluster member applies its persisted Raft state: a restarted member knows
  // its shard map) and the retention loop. /-/ready says 200, and API writes and
  // reads are served, only once all of that is done. kInvalidArgument for a bad
  // address; kUnavailable if a port cannot be bound; storage's errors from
  // TSDB::Open.
  static absl::StatusOr<std::unique_ptr<Node>> Start(const NodeOptions& opts);
  // Stop()s if still running.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Stops accepting requests, lets in-flight ones finish (gRPC calls get
  // kGrpcShutdownGrace, then are cancelled; peers' Raft streams are closed at
  // once), stops the retention loop and flushes storage. Idempotent. Returns
  // the flush's status.
  absl::Status Stop();

  int http_port() const { return http_port_; }
  int grpc_port() const { return grpc_port_; }
  storage::TSDB* tsdb() { return tsdb_.load(); }
  // Null on a single node.
  cluster::DataPlane* data_plane() { return data_plane_.get(); }
  metrics::Registry* metrics() { return &metrics_; }
  alerting::AlertingService* alerting() { return alerting_.get(); }
  // How long opening storage took.
  absl::Duration recovery_time() const { return recovery_time_; }

 private:
  class ReadySource;
  class RuleAppender;
  class CpReplicator;
  explicit Node(const NodeOptions& opts);

  // What the HTTP and gRPC APIs serve from: this node's storage and engine.
  ApiBackend Backend();
  absl::Status StartHttp();
  absl::Status OpenStorage();
  absl::Status StartGrpc();
  // Cluster mode: creates the ControlPlane (before the HTTP routes are registered).
  absl::Status CreateControlPlane();
  // Cluster mode: the static shard map or the ControlPlane's, and the DataPlane
  // over the open storage.
  absl::Status StartDataPlane();
  void RegisterMetrics();
  // Creates the AlertingService (before the HTTP routes are registered) and
  // subscribes it to the control plane's alerting registers, or restores a
  // single node's alert state from <data_dir>/alerting (kDataLoss if corrupt).
  absl::Status CreateAlerting();
  absl::StatusOr<storage::AppendResult> Append(const std::vector<storage::SeriesAppend>& batch);
  // This node's storage only, with the counters.
  absl::StatusOr<storage::AppendResult> AppendLocal(storage::TSDB* db,
                                                    const std::vector<storage::SeriesAppend>& b);
  void RetentionLoop();

  // Constant after construction.
  const NodeOptions opts_;
  const absl::Time start_time_;
  metrics::Registry metrics_;
  query::Engine engine_;
  std::unique_ptr<ReadySource> source_;
  std::unique_ptr<HttpApi> http_api_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<IngestService> ingest_service_;
  std::unique_ptr<QueryService> query_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<cluster::ReplicaService> replica_service_;
  // Cluster mode only: the shard map (static, from opts.cluster.peers), the data
  // plane, and its fanned-out source. Set before tsdb_.
  std::shared_ptr<const cluster::ShardMap> shard_map_;
  std::unique_ptr<cluster::ControlPlane> control_plane_;  // unless static_map
  std::unique_ptr<cluster::DataPlane> data_plane_;
  std::unique_ptr<query::SeriesSource> cluster_source_;
  std::atomic<query::SeriesSource*> cluster_source_ptr_{nullptr};
  // A request's partial_response=true/false (ApiBackend::source_for).
  std::unique_ptr<query::SeriesSource> partial_source_, strict_source_;
  // The control plane's rebalancing streams reach the data plane through this
  // (null until the data plane exists and once it stops).
  std::atomic<cluster::DataPlane*> stream_target_{nullptr};
  // Alerting: rules read through source_ (the cluster's fan-out in a cluster),
  // results are written through Append (the data plane in a cluster).
  std::unique_ptr<alerting::RuleQuerier> rule_querier_;
  std::unique_ptr<RuleAppender> rule_appender_;
  std::unique_ptr<alerting::Replicator> rule_replicator_;
  std::unique_ptr<alerting::AlertingService> alerting_;
  std::thread http_thread_;
  std::thread retention_thread_;
  int http_port_ = 0;
  int grpc_port_ = 0;
  absl::Duration recovery_time_;
  metrics::Counter* appended_;
  metrics::Counter* duplicates_;
  metrics::Counter* rejected_;

  // Null until storage has recovered; set once. Owned by storage_owner_.
  std::atomic<storage::TSDB*> tsdb_{nullptr};
  std::unique_ptr<storage::TSDB> storage_owner_;

  // Everything started: /-/ready, API writes and reads.
  std::atomic<bool> serving_{false};
  Event stopping_;        // wakes the retention loop (a monotonic timed wait)
  bool stopped_ = false;  // Stop() ran; touched only by the owning thread.
};

// How long in-flight gRPC calls may run on after Node::Stop() begins.
inline constexpr absl::Duration kGrpcShutdownGrace = absl::Seconds(3);

// Splits "host:port" (the last ':' separates); kInvalidArgument otherwise.
absl::StatusOr<std::pair<std::string, int>> ParseHostPort(absl::string_view addr);

// The process' resident set size in bytes from /proc/self/status, or -1.
int64_t ProcessRssBytes();

}  // namespace vigil::server

#endif  // VIGIL_SERVER_NODE_H_
