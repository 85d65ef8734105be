// raft/grpc_transport.h
//
// GrpcTransport: raft::Transport over gRPC (proto/raft.proto, wire format in raft/FORMAT.md). It
// runs its own server for inbound streams (or registers on the caller's) and, per peer, a sender
// thread that keeps one client stream open, reconnecting with exponential backoff (10 ms .. 1 s).
//
// Per peer, outbound messages wait in a queue bounded by count and bytes; when it is full, or
// while the peer is unreachable, messages are dropped (Raft retransmits). A message whose write
// (or the stream setup before it) takes longer than `message_timeout` cancels that peer's
// stream and drops its queue, so a stuck peer costs its own queue's memory and nothing else:
// every peer has its own thread, and Send() never blocks on the network.
//
// Snapshots travel in their own InstallSnapshot call, in chunks of `snapshot_chunk_bytes` with
// offsets and an xxh64 checksum of the whole; the receiver assembles them and delivers the
// snapshot message only when complete and verified. A torn or corrupt transfer is discarded;
// Raft resends the snapshot when it is not acknowledged.
// Thread-safe.
#ifndef VIGIL_RAFT_GRPC_TRANSPORT_H_
#define VIGIL_RAFT_GRPC_TRANSPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/raft.grpc.pb.h"
#include "raft/transport.h"

namespace vigil::raft {

// Conversions between the core's Message and the wire message.
vigil::raft::v1::Message ToProto(const Message& m);
Message FromProto(const vigil::raft::v1::Message& pb);

struct GrpcTransportOptions {
  // A single write to a peer's stream (including opening it) that takes longer than this
  // (detected within 1.5 times this) cancels the stream; queued messages to that peer are
  // dropped.
  absl::Duration message_timeout = absl::Seconds(5);
  // Bounds of each peer's outbound queue (messages beyond either are dropped).
  size_t max_queued_messages = 4096;
  uint64_t max_queued_bytes = 64 << 20;
  // Snapshots are sent in chunks of this many bytes; the whole transfer gets a deadline of
  // snapshot_timeout plus the time to move the data at snapshot_bytes_per_second.
  size_t snapshot_chunk_bytes = 1 << 20;
  absl::Duration snapshot_timeout = absl::Seconds(10);
  uint64_t snapshot_bytes_per_second = 8 << 20;
  // Largest snapshot this node accepts.
  uint64_t max_snapshot_bytes = uint64_t{4} << 30;
};

// Counters of one peer's outbound side.
struct PeerStats {
  uint64_t queued_messages = 0;
  uint64_t queued_bytes = 0;
  uint64_t sent = 0;           // messages written to the peer's stream (snapshots included)
  uint64_t send_failures = 0;  // streams that failed or timed out (each reported unreachable)
  uint64_t dropped = 0;   // queue full, or dropped after a failed or timed-out write
  uint64_t timeouts = 0;  // writes cancelled after message_timeout
  uint64_t snapshots_sent = 0;  // acknowledged by the receiver
  uint64_t snapshot_failures = 0;
};

// Counters of the inbound side.
struct InboundStats {
  uint64_t snapshots_received = 0;  // complete and verified, delivered
  uint64_t snapshots_rejected = 0;  // torn, out of order, oversized or failing the checksum
  uint64_t snapshot_chunks = 0;
};

class GrpcTransport final : public Transport {
 public:
  // The default of GrpcTransportOptions::max_queued_messages.
  static constexpr size_t kMaxQueued = 4096;

  // Starts the inbound server on `listen_address` ("127.0.0.1:0" picks a free port; see port()).
  static absl::StatusOr<std::unique_ptr<GrpcTransport>> Create(
      const std::string& listen_address, const GrpcTransportOptions& options = {});
  // Registers the inbound service on the caller's `builder` instead, so one gRPC port serves Raft
  // and everything else. The caller builds and starts the server, and must shut it down before
  // destroying the transport; port() is 0. Snapshot chunks fit gRPC's default 4 MiB receive
  // limit as long as snapshot_chunk_bytes stays below it.
  static std::unique_ptr<GrpcTransport> CreateOn(grpc::ServerBuilder* builder,
                                                 const GrpcTransportOptions& options = {});
  GrpcTransport(const GrpcTransport&) = delete;
  GrpcTransport& operator=(const GrpcTransport&) = delete;
  ~GrpcTransport() override;

  int port() const { return port_; }
  void SetHandler(Handler handler) override;
  void AddPeer(uint64_t id, const std::string& address) override;
  void RemovePeer(uint64_t id) override;
  void Send(std::vector<Message> msgs) override;
  void SetSnapshotReporter(SnapshotReporter reporter) override;
  void SetUnreachableReporter(UnreachableReporter reporter) override;

  // Ends the inbound streams and snapshot transfers running now and refuses new ones
  // (kUnavailable), for good. Call right before shutting down the gRPC server the service is
  // on: peers never end their streams, so its Shutdown() would wait for them until its deadline.
  void CloseInbound();

  // Zeroes for an unknown peer.
  PeerStats peer_stats(uint64_t id) const;
  InboundStats inbound_stats() const;

 private:
  class Service;
  class Peer;
  explicit GrpcTransport(const GrpcTransportOptions& options);
  void Deliver(Message m);
  void ReportSnapshot(uint64_t peer, bool ok);
  void ReportUnreachable(uint64_t peer);

  const GrpcTransportOptions options_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  mutable absl::Mutex mu_;
  Handler handler_ ABSL_GUARDED_BY(mu_);
  SnapshotReporter reporter_ ABSL_GUARDED_BY(mu_);
  UnreachableReporter unreachable_reporter_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::unique_ptr<Peer>> peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_GRPC_TRANSPORT_H_
