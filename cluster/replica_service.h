// cluster/replica_service.h
//
// ReplicaService: the internal Replica gRPC service
// (proto/vigil/internal/v1/replica.proto) of one node, over its local TSDB
// through LocalReplica, so a remote coordinator's write or read is served
// exactly like a local one. Write replies after the TSDB append is durable.
//
// Thread-safe and lock-free on its own: concurrent Write calls reach
// TSDB::Append concurrently, which group-commits them.
#ifndef VIGIL_CLUSTER_REPLICA_SERVICE_H_
#define VIGIL_CLUSTER_REPLICA_SERVICE_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "cluster/local_replica.h"
#include "grpcpp/grpcpp.h"
#include "proto/vigil/internal/v1/replica.grpc.pb.h"
#include "storage/tsdb.h"

namespace vigil::cluster {

// A replica's side of a write. With `fence_map` (this node's shard map), first
// refuses the whole request, appending nothing, if the map fences a shard's
// view (CheckWriteViews: kFailedPrecondition "stale shard epoch ..."). Then
// appends each shard of `req` with its own `append` call, concurrently on the
// calling thread and a small process-wide pool (16 threads, shared by every
// request), so that the storage group-commits them into a few fsyncs instead
// of one per shard. The first error (in shard order) is returned.
absl::StatusOr<ReplicaWriteReply> AppendShardsConcurrently(const AppendFn& append,
                                                           const ReplicaWriteRequest& req,
                                                           const ShardMap* fence_map = nullptr);

class ReplicaService final : public internal::v1::Replica::Service {
 public:
  using MapFn = std::function<std::shared_ptr<const ShardMap>()>;

  // `append` stores a batch (vigild binds TSDB::Append plus its counters); `tsdb`
  // serves reads, digests and exports; `num_shards` is the storage's. Writes
  // are fenced with the map `current_map` returns (DataPlane::current_map;
  // null function or map: not fenced). `tsdb` must outlive the service.
  ReplicaService(AppendFn append, storage::TSDB* tsdb, uint32_t num_shards,
                 MapFn current_map = nullptr);

  grpc::Status Write(grpc::ServerContext* ctx, const internal::v1::ReplicaWriteRequest* req,
                     internal::v1::ReplicaWriteResponse* resp) override;
  grpc::Status Select(grpc::ServerContext* ctx, const internal::v1::ReplicaReadRequest* req,
                      internal::v1::ReplicaReadResponse* resp) override;
  grpc::Status LabelNames(grpc::ServerContext* ctx, const internal::v1::ReplicaReadRequest* req,
                          internal::v1::ReplicaReadResponse* resp) override;
  grpc::Status LabelValues(grpc::ServerContext* ctx, const internal::v1::ReplicaReadRequest* req,
                           internal::v1::ReplicaReadResponse* resp) override;
  grpc::Status ShardDigest(grpc::ServerContext* ctx, const internal::v1::ShardRange* req,
                           internal::v1::ShardDigestResponse* resp) override;
  grpc::Status ExportShard(grpc::ServerContext* ctx, const internal::v1::ShardRange* req,
                           grpc::ServerWriter<internal::v1::ExportShardResponse>* out) override;

 private:
  grpc::Status Read(ReplicaReadRequest::Kind kind, const internal::v1::ReplicaReadRequest* req,
                    internal::v1::ReplicaReadResponse* resp);

  const AppendFn append_;
  storage::TSDB* const tsdb_;
  const MapFn current_map_;
  LocalReplica local_;
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_REPLICA_SERVICE_H_
