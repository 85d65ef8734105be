// cluster/grpc_replica_client.h
//
// GrpcReplicaClient: the ReplicaClient and ReplicaReader of remote nodes over
// the internal Replica gRPC service, plus the digest and export calls of
// anti-entropy. One channel per node, created on first use and kept (recreated
// if the node's address changes). Calls never wait for a connection
// (wait_for_ready false) and reconnect attempts are short, so a node that is
// down fails calls at once instead of eating the deadline.
//
// Thread-safe. Callbacks run on gRPC's threads; the client must outlive every
// call in flight (its destructor does not wait).
#ifndef VIGIL_CLUSTER_GRPC_REPLICA_CLIENT_H_
#define VIGIL_CLUSTER_GRPC_REPLICA_CLIENT_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/anti_entropy.h"
#include "cluster/replica_client.h"
#include "grpcpp/grpcpp.h"
#include "proto/vigil/internal/v1/replica.grpc.pb.h"

namespace vigil::cluster {

// The gRPC address ("host:port") of a node, or "" if unknown.
using AddressFn = std::function<std::string(NodeId)>;

struct GrpcReplicaClientOptions {
  // Upper bound of the reconnect backoff: how long a node that came back may
  // go unnoticed.
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  int max_message_bytes = 256 << 20;
};

class GrpcReplicaClient final : public ReplicaClient, public ReplicaReader {
 public:
  GrpcReplicaClient(AddressFn address, GrpcReplicaClientOptions opts = {});

  void Write(NodeId node, ReplicaWriteRequest req, absl::Time deadline,
             WriteCallback done) override;
  void Read(NodeId node, const ReplicaReadRequest& req, absl::Time deadline,
            ReadCallback done) override;

  // Blocking anti-entropy calls.
  absl::StatusOr<uint64_t> ShardDigest(NodeId node, uint32_t shard, TimeRange range,
                                       absl::Time deadline);
  // Calls `fn` with each streamed batch; stops at fn's first error.
  absl::Status ExportShard(NodeId node, uint32_t shard, TimeRange range, absl::Time deadline,
                           const std::function<absl::Status(std::vector<Series>)>& fn);

 private:
  // kUnavailable if the node has no address.
  absl::StatusOr<internal::v1::Replica::Stub*> Stub(NodeId node);

  const AddressFn address_;
  const GrpcReplicaClientOptions opts_;
  absl::Mutex mu_;
  struct Peer {
    std::string address;
    std::unique_ptr<internal::v1::Replica::Stub> stub;
  };
  // Stubs are never destroyed while the client lives (calls may use them).
  std::map<NodeId, Peer> peers_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<internal::v1::Replica::Stub>> retired_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_GRPC_REPLICA_CLIENT_H_
