// cluster/replica_service.cc
#include "cluster/replica_service.h"

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cluster/replica_codec.h"

namespace vigil::cluster {

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

absl::StatusOr<ReplicaWriteReply> AppendShardsConcurrently(const AppendFn& append,
                                                           const ReplicaWriteRequest& req) {
  const size_t n = req.shards.size();
  std::vector<absl::StatusOr<storage::AppendResult>> results(n, absl::UnknownError("not run"));
  auto run = [&](size_t i) {
    static const std::vector<Series> kNone;
    const std::vector<Series>& series =
        req.shards[i].series != nullptr ? *req.shards[i].series : kNone;
    results[i] = append(ToSeriesAppends(series));
  };
  std::vector<std::thread> threads;
  threads.reserve(n > 0 ? n - 1 : 0);
  for (size_t i = 1; i < n; ++i) threads.emplace_back(run, i);
  if (n > 0) run(0);
  for (std::thread& t : threads) t.join();
  ReplicaWriteReply reply;
  for (absl::StatusOr<storage::AppendResult>& r : results) {
    if (!r.ok()) return r.status();
    reply.shards.push_back(*std::move(r));
  }
  return reply;
}

ReplicaService::ReplicaService(AppendFn append, storage::TSDB* tsdb, uint32_t num_shards)
    : append_(append), tsdb_(tsdb), local_(std::move(append), tsdb, &storage::ShardOf, num_shards) {}

grpc::Status ReplicaService::Write(grpc::ServerContext*,
                                   const internal::v1::ReplicaWriteRequest* req,
                                   internal::v1::ReplicaWriteResponse* resp) {
  absl::StatusOr<ReplicaWriteReply> r = AppendShardsConcurrently(append_, WriteFromProto(*req));
  if (!r.ok()) return ToGrpc(r.status());
  for (const storage::AppendResult& a : r->shards) AppendResultToProto(a, resp->add_shards());
  return grpc::Status::OK;
}

grpc::Status ReplicaService::Read(ReplicaReadRequest::Kind kind,
                                  const internal::v1::ReplicaReadRequest* req,
                                  internal::v1::ReplicaReadResponse* resp) {
  absl::StatusOr<ReplicaReadRequest> r = ReadFromProto(kind, *req);
  if (!r.ok()) return ToGrpc(r.status());
  absl::StatusOr<ReplicaReadReply> reply = local_.ReadNow(*r);
  if (!reply.ok()) return ToGrpc(reply.status());
  ReadReplyToProto(*reply, resp);
  return grpc::Status::OK;
}

grpc::Status ReplicaService::Select(grpc::ServerContext*,
                                    const internal::v1::ReplicaReadRequest* req,
                                    internal::v1::ReplicaReadResponse* resp) {
  return Read(ReplicaReadRequest::Kind::kSelect, req, resp);
}

grpc::Status ReplicaService::LabelNames(grpc::ServerContext*,
                                        const internal::v1::ReplicaReadRequest* req,
                                        internal::v1::ReplicaReadResponse* resp) {
  return Read(ReplicaReadRequest::Kind::kLabelNames, req, resp);
}

grpc::Status ReplicaService::LabelValues(grpc::ServerContext*,
                                         const internal::v1::ReplicaReadRequest* req,
                                         internal::v1::ReplicaReadResponse* resp) {
  return Read(ReplicaReadRequest::Kind::kLabelValues, req, resp);
}

grpc::Status ReplicaService::ShardDigest(grpc::ServerContext*, const internal::v1::ShardRange* req,
                                         internal::v1::ShardDigestResponse* resp) {
  absl::StatusOr<uint64_t> d = tsdb_->ShardDigest(req->shard(), req->mint(), req->maxt());
  if (!d.ok()) return ToGrpc(d.status());
  resp->set_digest(*d);
  return grpc::Status::OK;
}

grpc::Status ReplicaService::ExportShard(
    grpc::ServerContext* ctx, const internal::v1::ShardRange* req,
    grpc::ServerWriter<internal::v1::ExportShardResponse>* out) {
  absl::Status s = tsdb_->ExportShard(
      req->shard(), req->mint(), req->maxt(), [&](std::vector<Series> batch) {
        if (ctx->IsCancelled()) return absl::CancelledError("export cancelled by the client");
        internal::v1::ExportShardResponse msg;
        for (const Series& series : batch) SeriesToProto(series, msg.add_series());
        if (!out->Write(msg)) return absl::UnavailableError("export stream broken");
        return absl::OkStatus();
      });
  return ToGrpc(s);
}

}  // namespace vigil::cluster
