// raft/grpc_transport.h
//
// GrpcTransport: raft::Transport over gRPC (proto/raft.proto). It runs its own server for
// inbound streams and, per peer, a sender thread that keeps one client stream open, reconnecting
// with exponential backoff (10 ms .. 1 s). Outbound queues are bounded (kMaxQueued per peer);
// when full, or while a peer is unreachable, messages are dropped: Raft retransmits.
// Snapshots travel as single messages (max message size 256 MiB); they are not chunked yet.
// Thread-safe.
#ifndef VIGIL_RAFT_GRPC_TRANSPORT_H_
#define VIGIL_RAFT_GRPC_TRANSPORT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proto/raft.grpc.pb.h"
#include "raft/transport.h"

namespace vigil::raft {

// Conversions between the core's Message and the wire message.
vigil::raft::v1::Message ToProto(const Message& m);
Message FromProto(const vigil::raft::v1::Message& pb);

class GrpcTransport final : public Transport {
 public:
  static constexpr size_t kMaxQueued = 4096;

  // Starts the inbound server on `listen_address` ("127.0.0.1:0" picks a free port; see port()).
  static absl::StatusOr<std::unique_ptr<GrpcTransport>> Create(const std::string& listen_address);
  // Registers the inbound service on the caller's `builder` instead, so one gRPC port serves Raft
  // and everything else. The caller builds and starts the server, and must shut it down before
  // destroying the transport; port() is 0. The builder's max receive size (gRPC's default 4 MiB
  // unless the caller raises it) then bounds the largest snapshot this node can receive.
  static std::unique_ptr<GrpcTransport> CreateOn(grpc::ServerBuilder* builder);
  GrpcTransport(const GrpcTransport&) = delete;
  GrpcTransport& operator=(const GrpcTransport&) = delete;
  ~GrpcTransport() override;

  int port() const { return port_; }
  void SetHandler(Handler handler) override;
  void AddPeer(uint64_t id, const std::string& address) override;
  void RemovePeer(uint64_t id) override;
  void Send(std::vector<Message> msgs) override;

 private:
  class Service;
  class Peer;
  GrpcTransport();
  void Deliver(Message m);

  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  absl::Mutex mu_;
  Handler handler_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::unique_ptr<Peer>> peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_GRPC_TRANSPORT_H_
