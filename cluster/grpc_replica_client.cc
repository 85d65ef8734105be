// cluster/grpc_replica_client.cc
#include "cluster/grpc_replica_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "cluster/replica_codec.h"
#include "cluster/replica_service.h"

namespace vigil::cluster {
namespace {

// The state of one asynchronous unary call, deleted by its completion.
template <typename Req, typename Resp>
struct Call {
  grpc::ClientContext ctx;
  Req req;
  Resp resp;
};

void SetDeadline(grpc::ClientContext* ctx, absl::Time deadline) {
  ctx->set_deadline(absl::ToChronoTime(deadline));
  ctx->set_wait_for_ready(false);
}

}  // namespace

GrpcReplicaClient::GrpcReplicaClient(AddressFn address, GrpcReplicaClientOptions opts)
    : address_(std::move(address)), opts_(opts) {}

absl::StatusOr<internal::v1::Replica::Stub*> GrpcReplicaClient::Stub(NodeId node) {
  const std::string addr = address_(node);
  if (addr.empty()) return absl::UnavailableError(absl::StrCat("node ", node, " has no address"));
  absl::MutexLock l(&mu_);
  Peer& p = peers_[node];
  if (p.stub == nullptr || p.address != addr) {
    if (p.stub != nullptr) retired_.push_back(std::move(p.stub));
    grpc::ChannelArguments args;
    const int backoff_ms = static_cast<int>(absl::ToInt64Milliseconds(opts_.max_reconnect_backoff));
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(backoff_ms, 100));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::min(backoff_ms, 100));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, backoff_ms);
    args.SetMaxReceiveMessageSize(opts_.max_message_bytes);
    args.SetMaxSendMessageSize(opts_.max_message_bytes);
    // A distinct channel per peer (no subchannel sharing across clients).
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    p.address = addr;
    p.stub = internal::v1::Replica::NewStub(
        grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args));
  }
  return p.stub.get();
}

void GrpcReplicaClient::Write(NodeId node, ReplicaWriteRequest req, absl::Time deadline,
                              WriteCallback done) {
  absl::StatusOr<internal::v1::Replica::Stub*> stub = Stub(node);
  if (!stub.ok()) {
    done(stub.status());
    return;
  }
  using WriteCall = Call<internal::v1::ReplicaWriteRequest, internal::v1::ReplicaWriteResponse>;
  auto* call = new WriteCall;
  SetDeadline(&call->ctx, deadline);
  WriteToProto(req, &call->req);
  const size_t shards = req.shards.size();
  (*stub)->async()->Write(&call->ctx, &call->req, &call->resp,
                          [call, shards, done = std::move(done)](grpc::Status s) {
                            std::unique_ptr<WriteCall> owned(call);
                            if (!s.ok()) {
                              done(FromGrpc(s));
                              return;
                            }
                            if (static_cast<size_t>(owned->resp.shards_size()) != shards) {
                              done(absl::InternalError("replica answered for other shards"));
                              return;
                            }
                            ReplicaWriteReply reply;
                            for (const auto& r : owned->resp.shards()) {
                              reply.shards.push_back(AppendResultFromProto(r));
                            }
                            done(std::move(reply));
                          });
}

void GrpcReplicaClient::Read(NodeId node, const ReplicaReadRequest& req, absl::Time deadline,
                             ReadCallback done) {
  absl::StatusOr<internal::v1::Replica::Stub*> stub = Stub(node);
  if (!stub.ok()) {
    done(stub.status());
    return;
  }
  using ReadCall = Call<internal::v1::ReplicaReadRequest, internal::v1::ReplicaReadResponse>;
  auto* call = new ReadCall;
  SetDeadline(&call->ctx, deadline);
  ReadToProto(req, &call->req);
  auto cb = [call, done = std::move(done)](grpc::Status s) {
    std::unique_ptr<ReadCall> owned(call);
    if (!s.ok()) {
      done(FromGrpc(s));
      return;
    }
    done(ReadReplyFromProto(owned->resp));
  };
  auto* async = (*stub)->async();
  switch (req.kind) {
    case ReplicaReadRequest::Kind::kSelect:
      async->Select(&call->ctx, &call->req, &call->resp, std::move(cb));
      break;
    case ReplicaReadRequest::Kind::kLabelNames:
      async->LabelNames(&call->ctx, &call->req, &call->resp, std::move(cb));
      break;
    case ReplicaReadRequest::Kind::kLabelValues:
      async->LabelValues(&call->ctx, &call->req, &call->resp, std::move(cb));
      break;
  }
}

absl::StatusOr<uint64_t> GrpcReplicaClient::ShardDigest(NodeId node, uint32_t shard,
                                                        TimeRange range, absl::Time deadline) {
  absl::StatusOr<internal::v1::Replica::Stub*> stub = Stub(node);
  if (!stub.ok()) return stub.status();
  grpc::ClientContext ctx;
  SetDeadline(&ctx, deadline);
  internal::v1::ShardRange req;
  req.set_shard(shard);
  req.set_mint(range.mint);
  req.set_maxt(range.maxt);
  internal::v1::ShardDigestResponse resp;
  grpc::Status s = (*stub)->ShardDigest(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s);
  return resp.digest();
}

absl::Status GrpcReplicaClient::ExportShard(
    NodeId node, uint32_t shard, TimeRange range, absl::Time deadline,
    const std::function<absl::Status(std::vector<Series>)>& fn) {
  absl::StatusOr<internal::v1::Replica::Stub*> stub = Stub(node);
  if (!stub.ok()) return stub.status();
  grpc::ClientContext ctx;
  SetDeadline(&ctx, deadline);
  internal::v1::ShardRange req;
  req.set_shard(shard);
  req.set_mint(range.mint);
  req.set_maxt(range.maxt);
  std::unique_ptr<grpc::ClientReader<internal::v1::ExportShardResponse>> reader =
      (*stub)->ExportShard(&ctx, req);
  internal::v1::ExportShardResponse msg;
  absl::Status result;
  while (reader->Read(&msg)) {
    result = fn(SeriesFromProto(msg.series()));
    if (!result.ok()) {
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status s = reader->Finish();
  if (!result.ok()) return result;
  return FromGrpc(s);
}

}  // namespace vigil::cluster
