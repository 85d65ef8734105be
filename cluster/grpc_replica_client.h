// cluster/grpc_replica_client.h
//
// GrpcReplicaClient: the ReplicaClient and ReplicaReader of remote nodes over
// the internal Replica gRPC service, plus the digest and export calls of
// anti-entropy. One channel per node, created on first use and kept (recreated
// if the node's address changes). Calls never wait for a connection
// (wait_for_ready false) and reconnect attempts are short, so a node that is
// down fails calls at once instead of eating the deadline.
//
// Thread-safe. Callbacks run on gRPC's threads. Shutdown() (or the destructor)
// cancels the calls in flight and waits for their callbacks, so no call
// outlives the client: a call's last reference to its channel must never be
// dropped inside gRPC's own callback (gRPC 1.51 then destroys the channel's
// completion queue under itself: "ref_counted.h: prior > 0" aborts).
// A callback runs after its call's gRPC state is released, so `done` may
// destroy the client's owner only after Shutdown() returned.
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
#include "common/clock.h"
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
  // The shortest a connection attempt may take before it counts as failed
  // (gRPC's min connect timeout): short enough that an unreachable node fails
  // calls soon, long enough for a handshake on a loaded machine.
  absl::Duration min_connect_timeout = absl::Seconds(2);
  // Deadlines are readings of its MonotonicNow() (replica_client.h). Not owned.
  const Clock* clock = RealClock::Get();
};

class GrpcReplicaClient final : public ReplicaClient, public ReplicaReader {
 public:
  GrpcReplicaClient(AddressFn address, GrpcReplicaClientOptions opts = {});
  ~GrpcReplicaClient();
  GrpcReplicaClient(const GrpcReplicaClient&) = delete;
  GrpcReplicaClient& operator=(const GrpcReplicaClient&) = delete;

  // Cancels every call in flight and waits until their callbacks returned;
  // later calls fail with kUnavailable at once. Idempotent.
  void Shutdown();

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
  class CallGuard;
  template <typename Req, typename Resp, typename Reply>
  struct AsyncCall;
  // Starts `start(stub, ctx, req, resp, on_done)` with `req` and a deadline,
  // then calls `done` with decode(resp) or the call's error.
  template <typename Req, typename Resp, typename Reply, typename StartFn, typename DecodeFn>
  void CallAsync(NodeId node, absl::Time deadline, Req req, StartFn start, DecodeFn decode,
                 std::function<void(absl::StatusOr<Reply>)> done);

  // kUnavailable if the node has no address.
  absl::StatusOr<internal::v1::Replica::Stub*> Stub(NodeId node);
  // Registers a call about to start with `ctx` (cancelled by Shutdown()): its
  // id, or 0 once shut down. Each id gets ForgetContext(id) before `ctx` is
  // destroyed, and then one EndCall() when the call's callback is done.
  uint64_t BeginCall(grpc::ClientContext* ctx);
  void ForgetContext(uint64_t id);
  void EndCall();

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
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_call_ ABSL_GUARDED_BY(mu_) = 1;
  int inflight_ ABSL_GUARDED_BY(mu_) = 0;  // calls begun and not ended
  std::map<uint64_t, grpc::ClientContext*> contexts_ ABSL_GUARDED_BY(mu_);  // cancellable
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_GRPC_REPLICA_CLIENT_H_
