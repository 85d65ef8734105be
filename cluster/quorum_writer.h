// cluster/quorum_writer.h
//
// QuorumWriter: the data plane's write coordinator. A write's series are split by
// shard (ShardOf(labels hash)), coalesced into one request per replica node and
// sent to every node of each shard's write set in parallel through a
// ReplicaClient. The write succeeds once every shard it touches has
// W = floor(n/2) + 1 acks from its n replicas and, while the shard is moving,
// also W of its n pending replicas (so no acked sample is lost when ownership
// flips). Otherwise it fails with kUnavailable naming the shards that missed
// quorum: never a false OK. Replicas that failed or did not answer by the
// deadline get the shard's series as hints (HintStore), replayed by ReplayHints().
//
// Epoch fencing (fencing.h): each shard is sent with the view of it in the
// write's map. A replica whose map is newer refuses it (no hint then); the
// write fails kFailedPrecondition (IsStaleShardView) in WriteShards(), and
// WriteAndWait() with an AwaitMapFn rewrites the shards that missed quorum once
// the coordinator's map has caught up, or fails kUnavailable.
//
// Network-free and clock-injected: the deadline is enforced by the client's
// contract (replica_client.h) and, as a backstop, by ExpireOverdue(), which the
// shell calls periodically and tests call after advancing a FakeClock.
//
// Thread-safe. The client, clock and hint store must outlive the writer, and the
// writer must outlive every callback it has handed to the client.
#ifndef VIGIL_CLUSTER_QUORUM_WRITER_H_
#define VIGIL_CLUSTER_QUORUM_WRITER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/cluster_state.h"
#include "cluster/hints.h"
#include "cluster/replica_client.h"
#include "common/clock.h"
#include "common/sample.h"
#include "storage/tsdb.h"

namespace vigil::cluster {

// A write's outcome shard by shard (QuorumWriter::WriteShards).
struct QuorumWriteResult {
  // OK once every shard reached quorum. Else kInvalidArgument if a replica
  // refused the input; kFailedPrecondition (IsStaleShardView) if a replica's
  // map was newer than the write's (rewriting `missed` with a newer map may
  // succeed); otherwise kUnavailable naming the shards that missed quorum.
  absl::Status status;
  storage::AppendResult appended;  // summed over the shards that reached quorum
  std::vector<Series> missed;      // the series of the shards that did not
};

// Waits (bounded) until the coordinator has a newer map than `stale` and
// returns it; null if none came in time.
using AwaitMapFn = std::function<std::shared_ptr<const ShardMap>(
    const std::shared_ptr<const ShardMap>& stale)>;

struct QuorumWriterOptions {
  ShardOfFn shard_of = nullptr;  // required: &storage::ShardOf in vigild
  absl::Duration timeout = absl::Seconds(10);
  size_t replay_batch_hints = 256;  // hints per ReplayHints request
};

class QuorumWriter {
 public:
  // Counts summed over shards, each shard's from the first replica that acked it.
  using WriteCallback = std::function<void(absl::StatusOr<storage::AppendResult>)>;

  QuorumWriter(QuorumWriterOptions opts, ReplicaClient* client, const Clock* clock,
               HintStore* hints);
  QuorumWriter(const QuorumWriter&) = delete;
  QuorumWriter& operator=(const QuorumWriter&) = delete;

  // Writes `series` (labels canonical, as Labels keeps them) with placement `map`
  // and calls `done` exactly once: OK with the counts once every touched shard
  // has its quorum; kUnavailable naming the shards that missed it once that is
  // certain or the deadline passed; kInvalidArgument if a replica refused the
  // input and quorum was missed. A write that replicas fenced (the map is
  // stale) is kUnavailable too. May call `done` before returning.
  void Write(std::shared_ptr<const ShardMap> map, std::vector<Series> series,
             WriteCallback done);
  // Write() with the outcome per shard (see QuorumWriteResult).
  void WriteShards(std::shared_ptr<const ShardMap> map, std::vector<Series> series,
                   std::function<void(QuorumWriteResult)> done);
  // Write() and wait for its answer (which the client contract bounds in time).
  // With `await_newer`: when replicas fence the write, waits for a newer map
  // with it and rewrites the shards that missed quorum (at most
  // kMaxRewrites times; counts are summed over the attempts); kUnavailable
  // if no newer map comes.
  absl::StatusOr<storage::AppendResult> WriteAndWait(std::shared_ptr<const ShardMap> map,
                                                     std::vector<Series> series,
                                                     const AwaitMapFn& await_newer = nullptr);
  static constexpr int kMaxRewrites = 4;

  // Fails every write past its deadline: replicas that have not answered are
  // treated as failed (and get hints). Returns how many writes it finished.
  int ExpireOverdue();
  // Writes with replicas still outstanding.
  size_t inflight() const;

  // Sends up to replay_batch_hints of `node`'s hints whose shard still lists the
  // node in `map`'s write set (the others are discarded), then calls `done`:
  // OK if delivered (or nothing to send), else the error, and the hints go back.
  void ReplayHints(NodeId node, const ShardMap& map, std::function<void(absl::Status)> done);

 private:
  struct Op;
  void OnReply(const std::shared_ptr<Op>& op, size_t request,
               absl::StatusOr<ReplicaWriteReply> reply);
  void Finish(const std::shared_ptr<Op>& op, bool all_replied);

  // Constant after construction.
  const QuorumWriterOptions opts_;
  ReplicaClient* const client_;
  const Clock* const clock_;
  HintStore* const hints_;

  mutable absl::Mutex mu_;
  uint64_t next_op_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, std::shared_ptr<Op>> inflight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_QUORUM_WRITER_H_
