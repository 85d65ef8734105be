// cluster/grpc_replica_client.cc
#include "cluster/grpc_replica_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cluster/replica_codec.h"
#include "common/grpc_deadline.h"
#include "common/grpc_status.h"

namespace vigil::cluster {
namespace {

// `deadline` is a reading of `clock`'s monotonic clock.
void SetDeadline(grpc::ClientContext* ctx, absl::Time deadline, const Clock& clock) {
  ctx->set_deadline(GrpcDeadline(deadline - clock.MonotonicNow()));
  ctx->set_wait_for_ready(false);
}

absl::Status ShutDownError() { return absl::UnavailableError("replica client shut down"); }

internal::v1::ShardRange ShardRangeProto(uint32_t shard, TimeRange range) {
  internal::v1::ShardRange req;
  req.set_shard(shard);
  req.set_mint(range.mint);
  req.set_maxt(range.maxt);
  return req;
}

}  // namespace

// A blocking call's registration, for the length of the call.
class GrpcReplicaClient::CallGuard {
 public:
  CallGuard(GrpcReplicaClient* client, grpc::ClientContext* ctx)
      : client_(client), id_(client->BeginCall(ctx)) {}
  ~CallGuard() {
    if (id_ == 0) return;
    client_->ForgetContext(id_);
    client_->EndCall();
  }
  bool ok() const { return id_ != 0; }

 private:
  GrpcReplicaClient* const client_;
  const uint64_t id_;
};

// The state of one asynchronous unary call, deleted by its completion.
template <typename Req, typename Resp, typename Reply>
struct GrpcReplicaClient::AsyncCall {
  grpc::ClientContext ctx;
  Req req;
  Resp resp;
};

GrpcReplicaClient::GrpcReplicaClient(AddressFn address, GrpcReplicaClientOptions opts)
    : address_(std::move(address)), opts_(opts) {}

GrpcReplicaClient::~GrpcReplicaClient() { Shutdown(); }

void GrpcReplicaClient::Shutdown() {
  absl::MutexLock l(&mu_);
  shut_down_ = true;
  for (const auto& [id, ctx] : contexts_) ctx->TryCancel();
  mu_.Await(absl::Condition(+[](int* inflight) { return *inflight == 0; }, &inflight_));
}

uint64_t GrpcReplicaClient::BeginCall(grpc::ClientContext* ctx) {
  absl::MutexLock l(&mu_);
  if (shut_down_) return 0;
  const uint64_t id = next_call_++;
  contexts_.emplace(id, ctx);
  ++inflight_;
  return id;
}

void GrpcReplicaClient::ForgetContext(uint64_t id) {
  absl::MutexLock l(&mu_);
  contexts_.erase(id);
}

void GrpcReplicaClient::EndCall() {
  absl::MutexLock l(&mu_);
  --inflight_;
}

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
    // gRPC reads this as the minimum connect timeout, not as a backoff.
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
                static_cast<int>(absl::ToInt64Milliseconds(opts_.min_connect_timeout)));
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

template <typename Req, typename Resp, typename Reply, typename StartFn, typename DecodeFn>
void GrpcReplicaClient::CallAsync(NodeId node, absl::Time deadline, Req req, StartFn start,
                                  DecodeFn decode,
                                  std::function<void(absl::StatusOr<Reply>)> done) {
  absl::StatusOr<internal::v1::Replica::Stub*> stub = Stub(node);
  if (!stub.ok()) {
    done(stub.status());
    return;
  }
  using Call = AsyncCall<Req, Resp, Reply>;
  auto call = std::make_unique<Call>();
  SetDeadline(&call->ctx, deadline, *opts_.clock);
  call->req = std::move(req);
  const uint64_t id = BeginCall(&call->ctx);
  if (id == 0) {
    done(ShutDownError());
    return;
  }
  Call* raw = call.release();
  start(*stub, &raw->ctx, &raw->req, &raw->resp,
        [this, raw, id, decode = std::move(decode), done = std::move(done)](grpc::Status s) {
          std::unique_ptr<Call> owned(raw);
          absl::StatusOr<Reply> reply =
              s.ok() ? decode(owned->resp) : absl::StatusOr<Reply>(FromGrpcStatus(s));
          // Release the call (its context holds a channel reference) before
          // anything that may let the owner destroy this client.
          ForgetContext(id);
          owned.reset();
          done(std::move(reply));
          EndCall();  // the last touch of the client: Shutdown() may return now
        });
}

void GrpcReplicaClient::Write(NodeId node, ReplicaWriteRequest req, absl::Time deadline,
                              WriteCallback done) {
  internal::v1::ReplicaWriteRequest proto;
  WriteToProto(req, &proto);
  const size_t shards = req.shards.size();
  CallAsync<internal::v1::ReplicaWriteRequest, internal::v1::ReplicaWriteResponse,
            ReplicaWriteReply>(
      node, deadline, std::move(proto),
      [](internal::v1::Replica::Stub* stub, grpc::ClientContext* ctx, const auto* req, auto* resp,
         auto cb) { stub->async()->Write(ctx, req, resp, std::move(cb)); },
      [shards](const internal::v1::ReplicaWriteResponse& resp)
          -> absl::StatusOr<ReplicaWriteReply> {
        if (static_cast<size_t>(resp.shards_size()) != shards) {
          return absl::InternalError("replica answered for other shards");
        }
        ReplicaWriteReply reply;
        for (const auto& r : resp.shards()) reply.shards.push_back(AppendResultFromProto(r));
        return reply;
      },
      std::move(done));
}

void GrpcReplicaClient::Read(NodeId node, const ReplicaReadRequest& req, absl::Time deadline,
                             ReadCallback done) {
  internal::v1::ReplicaReadRequest proto;
  ReadToProto(req, &proto);
  CallAsync<internal::v1::ReplicaReadRequest, internal::v1::ReplicaReadResponse,
            ReplicaReadReply>(
      node, deadline, std::move(proto),
      [kind = req.kind](internal::v1::Replica::Stub* stub, grpc::ClientContext* ctx,
                        const auto* req, auto* resp, auto cb) {
        auto* async = stub->async();
        switch (kind) {
          case ReplicaReadRequest::Kind::kSelect:
            return async->Select(ctx, req, resp, std::move(cb));
          case ReplicaReadRequest::Kind::kLabelNames:
            return async->LabelNames(ctx, req, resp, std::move(cb));
          case ReplicaReadRequest::Kind::kLabelValues:
            return async->LabelValues(ctx, req, resp, std::move(cb));
        }
      },
      [](const internal::v1::ReplicaReadResponse& resp) -> absl::StatusOr<ReplicaReadReply> {
        return ReadReplyFromProto(resp);
      },
      std::move(done));
}

absl::StatusOr<uint64_t> GrpcReplicaClient::ShardDigest(NodeId node, uint32_t shard,
                                                        TimeRange range, absl::Time deadline) {
  absl::StatusOr<internal::v1::Replica::Stub*> stub = Stub(node);
  if (!stub.ok()) return stub.status();
  grpc::ClientContext ctx;
  SetDeadline(&ctx, deadline, *opts_.clock);
  CallGuard guard(this, &ctx);
  if (!guard.ok()) return ShutDownError();
  internal::v1::ShardDigestResponse resp;
  grpc::Status s = (*stub)->ShardDigest(&ctx, ShardRangeProto(shard, range), &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp.digest();
}

absl::Status GrpcReplicaClient::ExportShard(
    NodeId node, uint32_t shard, TimeRange range, absl::Time deadline,
    const std::function<absl::Status(std::vector<Series>)>& fn) {
  absl::StatusOr<internal::v1::Replica::Stub*> stub = Stub(node);
  if (!stub.ok()) return stub.status();
  grpc::ClientContext ctx;
  SetDeadline(&ctx, deadline, *opts_.clock);
  CallGuard guard(this, &ctx);
  if (!guard.ok()) return ShutDownError();
  std::unique_ptr<grpc::ClientReader<internal::v1::ExportShardResponse>> reader =
      (*stub)->ExportShard(&ctx, ShardRangeProto(shard, range));
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
  return FromGrpcStatus(s);
}

}  // namespace vigil::cluster
