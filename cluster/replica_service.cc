// cluster/replica_service.cc
#include "cluster/replica_service.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "cluster/replica_codec.h"
#include "common/grpc_status.h"

namespace vigil::cluster {
namespace {

// Appends wait on the WAL's group-committed fsync far longer than they compute,
// so a few more than the cores keep fsyncs shared without a thread per shard.
constexpr int kAppendThreads = 16;

// A fixed pool that runs the iterations of ParallelFor calls, the calling
// thread included (so a call never waits for a busy pool to start it).
class AppendPool {
 public:
  explicit AppendPool(int threads) {
    for (int i = 0; i < threads; ++i) std::thread([this] { WorkerLoop(); }).detach();
  }

  // Runs fn(0..n-1), on this thread and up to n - 1 pool threads; returns when all ran.
  void ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
    auto job = std::make_shared<Job>(&fn, n);
    const size_t helpers = std::min<size_t>(n > 0 ? n - 1 : 0, kAppendThreads);
    if (helpers > 0) {
      absl::MutexLock l(&mu_);
      for (size_t i = 0; i < helpers; ++i) queue_.push_back(job);
    }
    Work(*job);
    absl::MutexLock l(&job->mu);
    job->mu.Await(absl::Condition(
        +[](Job* j) { return j->finished == j->n; }, job.get()));
  }

 private:
  struct Job {
    Job(const std::function<void(size_t)>* f, size_t count) : fn(f), n(count) {}
    const std::function<void(size_t)>* const fn;  // valid until finished == n
    const size_t n;
    std::atomic<size_t> next{0};
    absl::Mutex mu;
    size_t finished ABSL_GUARDED_BY(mu) = 0;
  };

  // Claims and runs iterations until none is left. A helper that arrives after
  // the last was claimed does nothing (and never touches fn).
  static void Work(Job& job) {
    for (size_t i = job.next.fetch_add(1); i < job.n; i = job.next.fetch_add(1)) {
      (*job.fn)(i);
      absl::MutexLock l(&job.mu);
      ++job.finished;
    }
  }

  void WorkerLoop() {
    while (true) {
      std::shared_ptr<Job> job;
      {
        absl::MutexLock l(&mu_);
        mu_.Await(absl::Condition(
            +[](std::deque<std::shared_ptr<Job>>* q) { return !q->empty(); }, &queue_));
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      Work(*job);
    }
  }

  absl::Mutex mu_;
  std::deque<std::shared_ptr<Job>> queue_ ABSL_GUARDED_BY(mu_);
};

AppendPool& Pool() {
  static AppendPool* const pool = new AppendPool(kAppendThreads);  // lives until exit
  return *pool;
}

}  // namespace

absl::StatusOr<ReplicaWriteReply> AppendShardsConcurrently(const AppendFn& append,
                                                           const ReplicaWriteRequest& req,
                                                           const ShardMap* fence_map) {
  if (fence_map != nullptr) {
    absl::Status fenced = CheckWriteViews(req, fence_map);
    if (!fenced.ok()) return fenced;
  }
  const size_t n = req.shards.size();
  std::vector<absl::StatusOr<storage::AppendResult>> results(n, absl::UnknownError("not run"));
  Pool().ParallelFor(n, [&](size_t i) {
    static const std::vector<Series> kNone;
    const std::vector<Series>& series =
        req.shards[i].series != nullptr ? *req.shards[i].series : kNone;
    results[i] = append(ToSeriesAppends(series));
  });
  ReplicaWriteReply reply;
  for (absl::StatusOr<storage::AppendResult>& r : results) {
    if (!r.ok()) return r.status();
    reply.shards.push_back(*std::move(r));
  }
  return reply;
}

ReplicaService::ReplicaService(AppendFn append, storage::TSDB* tsdb, uint32_t num_shards,
                               MapFn current_map)
    : append_(append),
      tsdb_(tsdb),
      current_map_(std::move(current_map)),
      local_(std::move(append), tsdb, &storage::ShardOf, num_shards) {}

grpc::Status ReplicaService::Write(grpc::ServerContext*,
                                   const internal::v1::ReplicaWriteRequest* req,
                                   internal::v1::ReplicaWriteResponse* resp) {
  std::shared_ptr<const ShardMap> map = current_map_ ? current_map_() : nullptr;
  absl::StatusOr<ReplicaWriteReply> r =
      AppendShardsConcurrently(append_, WriteFromProto(*req), map.get());
  if (!r.ok()) return ToGrpcStatus(r.status());
  for (const storage::AppendResult& a : r->shards) AppendResultToProto(a, resp->add_shards());
  return grpc::Status::OK;
}

grpc::Status ReplicaService::Read(ReplicaReadRequest::Kind kind,
                                  const internal::v1::ReplicaReadRequest* req,
                                  internal::v1::ReplicaReadResponse* resp) {
  absl::StatusOr<ReplicaReadRequest> r = ReadFromProto(kind, *req);
  if (!r.ok()) return ToGrpcStatus(r.status());
  absl::StatusOr<ReplicaReadReply> reply = local_.ReadNow(*r);
  if (!reply.ok()) return ToGrpcStatus(reply.status());
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
  if (!d.ok()) return ToGrpcStatus(d.status());
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
  return ToGrpcStatus(s);
}

}  // namespace vigil::cluster
