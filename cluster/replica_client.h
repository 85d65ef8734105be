// cluster/replica_client.h
//
// The data plane's transports, injected so that the coordinators (QuorumWriter,
// FanoutSource) are network-free and testable: a ReplicaClient sends writes to a
// node, a ReplicaReader reads from one. vigild implements them over gRPC for
// remote nodes and with LocalReplica (cluster/local_replica.h) for itself.
//
// Contract for every implementation: each call invokes its callback exactly
// once, from any thread, possibly before the call returns, and no later than
// shortly after `deadline` (a transport deadline, e.g. gRPC's, enforces it).
// Every `deadline` is a reading of the data plane's Clock::MonotonicNow() (a
// monotonic deadline: wall-clock steps neither expire nor extend it).
// Implementations must be thread-safe.
#ifndef VIGIL_CLUSTER_REPLICA_CLIENT_H_
#define VIGIL_CLUSTER_REPLICA_CLIENT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cluster/fencing.h"
#include "cluster/hints.h"
#include "cluster/ring.h"
#include "common/matcher.h"
#include "common/sample.h"
#include "query/series_source.h"
#include "storage/tsdb.h"

namespace vigil::cluster {

// The series of one shard bound for one replica.
struct ShardWrite {
  uint32_t shard = 0;
  // The coordinator's view of the shard (fencing.h); epoch 0 (streams, repairs): not fenced.
  ShardView view;
  SharedSeries series;
};

// Everything one write sends to one node, coalesced across shards.
struct ReplicaWriteRequest {
  std::vector<ShardWrite> shards;
};

// The replica's side of epoch fencing: OK, or the first shard of `req` whose
// view `map` (the replica's) fences (CheckShardView).
inline absl::Status CheckWriteViews(const ReplicaWriteRequest& req, const ShardMap* map) {
  for (const ShardWrite& w : req.shards) {
    absl::Status s = CheckShardView(w.shard, w.view, map);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

struct ReplicaWriteReply {
  // Parallel to the request's shards: what the replica's TSDB::Append said.
  std::vector<storage::AppendResult> shards;
};

class ReplicaClient {
 public:
  using WriteCallback = std::function<void(absl::StatusOr<ReplicaWriteReply>)>;
  virtual ~ReplicaClient() = default;

  // Appends every shard of `req` on `node` durably, then replies OK. Any error
  // means the node may hold some, all or none of it (appends are idempotent, so
  // resending is safe). kInvalidArgument when the replica refused the input;
  // kFailedPrecondition (IsStaleShardView) when its map fenced a shard's view
  // (then it appended nothing).
  virtual void Write(NodeId node, ReplicaWriteRequest req, absl::Time deadline,
                     WriteCallback done) = 0;
};

// A read of some shards on one node.
struct ReplicaReadRequest {
  enum class Kind { kSelect, kLabelNames, kLabelValues };
  Kind kind = Kind::kSelect;
  std::vector<uint32_t> shards;  // ascending; answer only for series of these shards
  std::vector<LabelMatcher> matchers;
  int64_t mint = 0;  // inclusive, ms
  int64_t maxt = 0;  // inclusive, ms
  std::string label_name;  // kLabelValues
};

struct ReplicaReadReply {
  std::vector<Series> series;        // kSelect: sorted by labels
  std::vector<std::string> strings;  // kLabelNames / kLabelValues: sorted, unique
  std::vector<std::string> warnings;
};

class ReplicaReader {
 public:
  using ReadCallback = std::function<void(absl::StatusOr<ReplicaReadReply>)>;
  virtual ~ReplicaReader() = default;

  // kInvalidArgument / kResourceExhausted are the query's fault and fail it;
  // any other error counts as the replica not answering.
  virtual void Read(NodeId node, const ReplicaReadRequest& req, absl::Time deadline,
                    ReadCallback done) = 0;
};

// The shard of a series' labels hash; vigild passes &storage::ShardOf.
using ShardOfFn = uint32_t (*)(uint64_t labels_hash, uint32_t num_shards);

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_REPLICA_CLIENT_H_
