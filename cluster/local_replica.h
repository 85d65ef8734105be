// cluster/local_replica.h
//
// LocalReplica: this node's own replica behind the ReplicaClient and
// ReplicaReader interfaces, so the coordinators treat it like any other node
// but without a network hop. Writes go to an append function (vigild binds
// storage::TSDB::Append), reads to a query::SeriesSource (the TSDB), keeping
// only the series of the requested shards. vigild's internal gRPC handlers for
// replica writes and reads can call it too, so every node serves the same way.
//
// Calls back before returning. Thread-safe if the append function and the
// source are (TSDB is).
#ifndef VIGIL_CLUSTER_LOCAL_REPLICA_H_
#define VIGIL_CLUSTER_LOCAL_REPLICA_H_

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "cluster/replica_client.h"
#include "query/series_source.h"
#include "storage/tsdb.h"

namespace vigil::cluster {

using AppendFn =
    std::function<absl::StatusOr<storage::AppendResult>(const std::vector<storage::SeriesAppend>&)>;

// Views of `series` for TSDB::Append; `series` must outlive the result.
std::vector<storage::SeriesAppend> ToSeriesAppends(const std::vector<Series>& series);

class LocalReplica final : public ReplicaClient, public ReplicaReader {
 public:
  // `source` must outlive this object.
  LocalReplica(AppendFn append, query::SeriesSource* source, ShardOfFn shard_of,
               uint32_t num_shards);

  // One append per shard, in order; the first error stops it and is returned.
  void Write(NodeId node, ReplicaWriteRequest req, absl::Time deadline,
             WriteCallback done) override;
  // kSelect keeps the series of req.shards; label names and values come from the
  // whole node (a superset when it still holds shards it no longer owns).
  void Read(NodeId node, const ReplicaReadRequest& req, absl::Time deadline,
            ReadCallback done) override;

  absl::StatusOr<ReplicaWriteReply> WriteNow(const ReplicaWriteRequest& req);
  absl::StatusOr<ReplicaReadReply> ReadNow(const ReplicaReadRequest& req);

 private:
  const AppendFn append_;
  query::SeriesSource* const source_;
  const ShardOfFn shard_of_;
  const uint32_t num_shards_;
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_LOCAL_REPLICA_H_
