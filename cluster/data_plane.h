// cluster/data_plane.h
//
// DataPlane: the running data plane of one vigild node in a cluster. Writes go
// through a QuorumWriter to each shard's replicas (this node through
// LocalReplica, the others over gRPC: GrpcReplicaClient) and succeed only with
// W-of-n durable acks per shard; queries read through a FanoutSource over every
// shard. Background threads replay hinted handoff to nodes that answer again
// (and expire overdue writes), run anti-entropy (per shard this node
// replicates: digest every replica's aligned time ranges, pull the ranges where
// this node differs from another replica with ExportShard into the local
// Append), and drop the shards this node no longer owns.
//
// Rebalancing: on the Raft leader, the control plane hands each move's
// transfers to StreamShard (ControlPlaneOptions::stream_shard). A stream worker
// reads the shard from the old replica (ExportShard, or the local TSDB) and
// writes every batch to the new replicas (Replica.Write, or locally), while
// coordinators already send new writes to both replica sets; the move then
// completes at a committed epoch and the old owners drop the shard.
// StreamsJson() reports the transfers' progress (series, samples, bytes).
//
// The shard map comes from a function (the control plane's latest, or a static
// map); a null map means "not ready" and writes and reads fail kUnavailable.
// Writes carry each shard's view of that map, and replicas (this node's local
// one too) refuse views older than their own map's (fencing.h).
//
// Thread-safe. Stop() (or the destructor) joins the background threads; the
// TSDB must outlive the DataPlane.
#ifndef VIGIL_CLUSTER_DATA_PLANE_H_
#define VIGIL_CLUSTER_DATA_PLANE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/anti_entropy.h"
#include "cluster/cluster_state.h"
#include "cluster/fanout_source.h"
#include "cluster/grpc_replica_client.h"
#include "cluster/hints.h"
#include "cluster/local_replica.h"
#include "cluster/quorum_writer.h"
#include "common/clock.h"
#include "common/event.h"
#include "nlohmann/json.hpp"
#include "query/series_source.h"
#include "storage/tsdb.h"

namespace vigil::cluster {

struct DataPlaneOptions {
  NodeId self = 0;            // required
  uint32_t num_shards = 64;   // the storage's; maps with another count are refused
  absl::Duration write_timeout = absl::Seconds(5);
  absl::Duration read_timeout = absl::Seconds(30);
  // FanoutOptions::hedge_delay and attempt_timeout of every query's reads.
  absl::Duration read_hedge_delay = absl::Milliseconds(400);
  absl::Duration read_attempt_timeout = absl::Seconds(10);
  bool partial_response = false;  // the default of QuerySource()
  // Background work; false leaves it to the *Once() calls (tests).
  bool background = true;
  absl::Duration maintenance_interval = absl::Seconds(1);  // hints, overdue writes
  absl::Duration anti_entropy_interval = absl::Seconds(30);
  // Anti-entropy compares [now - window, now + 10 min] in aligned ranges.
  absl::Duration anti_entropy_window = absl::Hours(6);
  absl::Duration anti_entropy_range = absl::Hours(1);
  absl::Duration anti_entropy_call_timeout = absl::Seconds(30);
  AntiEntropyOptions anti_entropy;
  bool drop_unowned_shards = true;
  // A shard is dropped once it has been unowned (ShardsToDrop) for this long, so
  // that writes and reads coordinated with the map from before the flip finish
  // first. Checked every maintenance_interval.
  absl::Duration drop_delay = absl::Seconds(5);
  HintOptions hints;
  GrpcReplicaClientOptions grpc;
  const Clock* clock = RealClock::Get();
  // Rebalancing streams (StreamShard): how many run at once, how long a stream
  // waits before it reads the old replica (so that writes coordinated with the
  // map from before the move began have landed there; anti-entropy repairs any
  // later straggler), and the deadline of one whole-shard stream.
  int stream_workers = 2;
  absl::Duration stream_settle = absl::Seconds(1);
  absl::Duration stream_timeout = absl::Minutes(10);
  // Epoch fencing: after replicas refused a write placed with this node's map
  // (stale), how long to wait for the map to change before each rewrite
  // (QuorumWriter::WriteAndWait); the write fails kUnavailable if it does not.
  absl::Duration stale_map_wait = absl::Seconds(2);
};

// One rebalancing transfer as StreamsJson() reports it.
struct StreamProgress {
  Transfer transfer;
  enum class State { kQueued, kRunning, kDone, kFailed } state = State::kQueued;
  int64_t series = 0;   // series batches read from the source (a series split
                        // across batches counts once per batch)
  int64_t samples = 0;  // samples written to every target
  int64_t bytes = 0;    // payload: label bytes + 16 per sample, per target
  absl::Time queued = absl::InfinitePast();  // on the clock's MonotonicNow()
  absl::Time started = absl::InfinitePast();
  absl::Time finished = absl::InfinitePast();
  std::string error;
};

struct AntiEntropyStats {
  int shards_checked = 0;
  int ranges_in_sync = 0;
  int transfers = 0;        // ranges pulled into this node
  int64_t samples_pulled = 0;  // newly appended by the pulls
  int unknown = 0;          // ranges some replica did not answer for
};

class DataPlane {
 public:
  using MapFn = std::function<std::shared_ptr<const ShardMap>()>;

  // `local_append` stores a batch in this node's TSDB (vigild adds counters);
  // `tsdb` serves local reads, digests, exports and drops.
  DataPlane(DataPlaneOptions opts, storage::TSDB* tsdb, AppendFn local_append, MapFn current_map,
            AddressFn address);
  ~DataPlane();
  DataPlane(const DataPlane&) = delete;
  DataPlane& operator=(const DataPlane&) = delete;

  // The ApiBackend write: OK only once every touched shard has W-of-n durable
  // acks; kUnavailable otherwise (retryable), kInvalidArgument for bad input.
  // Replicas with a newer map than this node's refuse the write (epoch
  // fencing): it waits up to stale_map_wait for this node's map to change and
  // rewrites the shards that missed quorum, or fails kUnavailable.
  absl::StatusOr<storage::AppendResult> Write(const std::vector<storage::SeriesAppend>& batch);
  absl::StatusOr<storage::AppendResult> WriteSeries(std::vector<Series> series);

  // A SeriesSource over the whole cluster: each call fans out over the current
  // map (FanoutSource). Valid while the DataPlane lives.
  std::unique_ptr<query::SeriesSource> QuerySource(bool partial_response);
  std::unique_ptr<query::SeriesSource> QuerySource() {
    return QuerySource(opts_.partial_response);
  }

  // One pass of each background task.
  void MaintainOnce();  // ExpireOverdue + replay hints to every target
  AntiEntropyStats AntiEntropyOnce();
  // Drops the shards unowned for at least drop_delay (remembering when the
  // others were first seen unowned); how many shards were dropped.
  int DropUnownedShardsOnce();

  // The control plane's ShardStreamer: streams transfer.shard in
  // transfer.range from transfer.from into every node of transfer.to, then
  // calls `done` once (from a stream worker; with background == false, before
  // returning). kUnavailable once stopping; otherwise the first failed read or
  // write (the leader retries the move's streams on its next round).
  void StreamShard(const Transfer& transfer, std::function<void(absl::Status)> done);
  // Synchronous, on the calling thread (tests; the workers call it).
  absl::Status StreamShardNow(const Transfer& transfer);
  // {"running", "queued", "done", "failed", "series", "samples", "bytes",
  //  "recent": [{shard, range, from, to, state, series, samples, bytes,
  //  seconds, error}]}: totals since start and the latest transfers, newest first.
  nlohmann::json StreamsJson() const;

  // This node's current shard map (null before it has one): the one its
  // ReplicaService fences incoming writes with.
  std::shared_ptr<const ShardMap> current_map() const { return current_map_(); }

  HintStats hint_stats(NodeId target) const { return hints_.Stats(target); }
  // How long the last divergence took to repair: from the first anti-entropy
  // pass that found a difference to the first pass that found none.
  std::optional<absl::Duration> last_convergence() const;

  // Joins the background threads. Idempotent.
  void Stop();

 private:
  class Router;
  class ClusterSource;

  absl::StatusOr<std::shared_ptr<const ShardMap>> Map() const;
  // A map other than `stale`, polled for up to stale_map_wait; null if none came.
  std::shared_ptr<const ShardMap> AwaitNewerMap(const std::shared_ptr<const ShardMap>& stale);
  void Loop(absl::Duration interval, const std::function<void()>& work);
  void StreamWorker();
  // Writes one exported batch of `shard` to every node of `to`, waiting for all.
  absl::Status PushBatch(uint32_t shard, const std::vector<NodeId>& to, std::vector<Series> batch,
                         absl::Time deadline, const std::shared_ptr<StreamProgress>& progress);

  const DataPlaneOptions opts_;
  storage::TSDB* const tsdb_;
  const AppendFn local_append_;
  const MapFn current_map_;
  LocalReplica local_;
  GrpcReplicaClient remote_;
  std::unique_ptr<Router> router_;
  HintStore hints_;
  QuorumWriter writer_;
  // Nodes whose reads recently failed or were hedged: every query asks them last.
  mutable SuspectNodes read_suspects_{opts_.clock};

  // Notified with stopping_: cuts the background loops' monotonic waits short.
  Event stop_event_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Time> diverged_since_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Duration> last_convergence_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, absl::Time> unowned_since_ ABSL_GUARDED_BY(mu_);
  struct QueuedStream {
    std::shared_ptr<StreamProgress> progress;
    std::function<void(absl::Status)> done;
  };
  std::deque<QueuedStream> stream_queue_ ABSL_GUARDED_BY(mu_);
  // Newest last; at most kStreamHistory finished ones are kept.
  std::deque<std::shared_ptr<StreamProgress>> streams_ ABSL_GUARDED_BY(mu_);
  struct StreamTotals {
    int64_t done = 0, failed = 0, series = 0, samples = 0, bytes = 0;
  } stream_totals_ ABSL_GUARDED_BY(mu_);
  absl::Mutex ae_mu_;  // one anti-entropy pass at a time
  std::vector<std::thread> threads_;
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_DATA_PLANE_H_
