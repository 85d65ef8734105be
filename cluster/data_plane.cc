// cluster/data_plane.cc
#include "cluster/data_plane.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "cluster/fanout_source.h"
#include "cluster/rebalancer.h"
#include "cluster/replica_service.h"
#include "common/status_macros.h"
#include "glog/logging.h"

namespace vigil::cluster {

// This node through LocalReplica, every other node over gRPC.
class DataPlane::Router final : public ReplicaClient, public ReplicaReader {
 public:
  Router(NodeId self, const AppendFn* append, const MapFn* map, LocalReplica* local,
         GrpcReplicaClient* remote)
      : self_(self), append_(append), map_(map), local_(local), remote_(remote) {}

  void Write(NodeId node, ReplicaWriteRequest req, absl::Time deadline,
             WriteCallback done) override {
    if (node == self_) {
      // Fenced like a remote replica: the map may have moved on since the
      // write was placed.
      done(AppendShardsConcurrently(*append_, req, (*map_)().get()));
    } else {
      remote_->Write(node, std::move(req), deadline, std::move(done));
    }
  }
  void Read(NodeId node, const ReplicaReadRequest& req, absl::Time deadline,
            ReadCallback done) override {
    if (node == self_) {
      local_->Read(node, req, deadline, std::move(done));
    } else {
      remote_->Read(node, req, deadline, std::move(done));
    }
  }

 private:
  const NodeId self_;
  const AppendFn* const append_;
  const MapFn* const map_;
  LocalReplica* const local_;
  GrpcReplicaClient* const remote_;
};

// A FanoutSource over the map current at each call.
class DataPlane::ClusterSource final : public query::SeriesSource {
 public:
  ClusterSource(const DataPlane* dp, bool partial) : dp_(dp), partial_(partial) {}

  absl::StatusOr<query::SelectResult> Select(const query::SelectHints& hints,
                                             const std::vector<LabelMatcher>& m) override {
    ASSIGN_OR_RETURN(std::unique_ptr<FanoutSource> f, Fanout());
    return f->Select(hints, m);
  }
  absl::StatusOr<std::vector<std::string>> LabelNames(const std::vector<LabelMatcher>& m,
                                                      int64_t mint, int64_t maxt) override {
    ASSIGN_OR_RETURN(std::unique_ptr<FanoutSource> f, Fanout());
    return f->LabelNames(m, mint, maxt);
  }
  absl::StatusOr<std::vector<std::string>> LabelValues(absl::string_view name,
                                                       const std::vector<LabelMatcher>& m,
                                                       int64_t mint, int64_t maxt) override {
    ASSIGN_OR_RETURN(std::unique_ptr<FanoutSource> f, Fanout());
    return f->LabelValues(name, m, mint, maxt);
  }

 private:
  absl::StatusOr<std::unique_ptr<FanoutSource>> Fanout() const {
    absl::StatusOr<std::shared_ptr<const ShardMap>> map = dp_->Map();
    if (!map.ok()) return map.status();
    FanoutOptions o;
    o.self = dp_->opts_.self;
    o.timeout = dp_->opts_.read_timeout;
    o.hedge_delay = dp_->opts_.read_hedge_delay;
    o.attempt_timeout = dp_->opts_.read_attempt_timeout;
    o.suspects = &dp_->read_suspects_;
    o.partial_response = partial_;
    return std::make_unique<FanoutSource>(*std::move(map), dp_->router_.get(), dp_->opts_.clock,
                                          o);
  }

  const DataPlane* const dp_;
  const bool partial_;
};

DataPlane::DataPlane(DataPlaneOptions opts, storage::TSDB* tsdb, AppendFn local_append,
                     MapFn current_map, AddressFn address)
    : opts_(std::move(opts)),
      tsdb_(tsdb),
      local_append_(local_append),
      current_map_(std::move(current_map)),
      local_(std::move(local_append), tsdb, &storage::ShardOf, opts_.num_shards),
      remote_(std::move(address),
              [this] {
                GrpcReplicaClientOptions g = opts_.grpc;
                g.clock = opts_.clock;
                return g;
              }()),
      router_(std::make_unique<Router>(opts_.self, &local_append_, &current_map_, &local_,
                                       &remote_)),
      hints_(opts_.hints, opts_.clock),
      writer_(
          [&] {
            QuorumWriterOptions w;
            w.shard_of = &storage::ShardOf;
            w.timeout = opts_.write_timeout;
            return w;
          }(),
          router_.get(), opts_.clock, &hints_) {
  CHECK_NE(opts_.self, 0u);
  if (!opts_.background) return;
  threads_.emplace_back([this] {
    Loop(opts_.maintenance_interval, [this] {
      MaintainOnce();
      if (opts_.drop_unowned_shards) DropUnownedShardsOnce();
    });
  });
  for (int i = 0; i < opts_.stream_workers; ++i) {
    threads_.emplace_back([this] { StreamWorker(); });
  }
  threads_.emplace_back([this] {
    Loop(opts_.anti_entropy_interval, [this] { AntiEntropyOnce(); });
  });
}

DataPlane::~DataPlane() { Stop(); }

void DataPlane::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  stop_event_.Notify();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  // Remote calls in flight are cancelled and their callbacks run now, while the
  // writer they report to is still alive.
  remote_.Shutdown();
  // Writes still waiting for replicas are failed (their callbacks run now).
  while (writer_.inflight() > 0) {
    writer_.ExpireOverdue();
    if (writer_.inflight() == 0) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

void DataPlane::Loop(absl::Duration interval, const std::function<void()>& work) {
  // Real (monotonic) time on purpose: this is the I/O shell, and Stop() wakes it.
  while (!stop_event_.HasBeenNotified()) {
    work();
    stop_event_.WaitWithTimeout(interval);
  }
}

absl::StatusOr<std::shared_ptr<const ShardMap>> DataPlane::Map() const {
  std::shared_ptr<const ShardMap> map = current_map_();
  if (map == nullptr || map->num_shards() == 0) {
    return absl::UnavailableError("the cluster has no shard map yet");
  }
  for (const ShardPlacement& p : map->shards) {
    if (p.replicas.empty()) {
      return absl::UnavailableError("the cluster is not bootstrapped yet (shards without replicas)");
    }
  }
  if (map->num_shards() != opts_.num_shards) {
    return absl::FailedPreconditionError(
        absl::StrCat("the shard map has ", map->num_shards(), " shards but storage has ",
                     opts_.num_shards));
  }
  return map;
}

absl::StatusOr<storage::AppendResult> DataPlane::Write(
    const std::vector<storage::SeriesAppend>& batch) {
  std::vector<Series> series;
  series.reserve(batch.size());
  for (const storage::SeriesAppend& a : batch) {
    std::vector<Label> labels;
    labels.reserve(a.labels.size());
    for (const storage::LabelRef& l : a.labels) {
      labels.push_back({std::string(l.name), std::string(l.value)});
    }
    series.push_back(Series{Labels(std::move(labels)), a.samples});
  }
  return WriteSeries(std::move(series));
}

absl::StatusOr<storage::AppendResult> DataPlane::WriteSeries(std::vector<Series> series) {
  absl::StatusOr<std::shared_ptr<const ShardMap>> map = Map();
  if (!map.ok()) return map.status();
  return writer_.WriteAndWait(
      *std::move(map), std::move(series),
      [this](const std::shared_ptr<const ShardMap>& stale) { return AwaitNewerMap(stale); });
}

std::shared_ptr<const ShardMap> DataPlane::AwaitNewerMap(
    const std::shared_ptr<const ShardMap>& stale) {
  // Polls: the map comes from a function. Real time on purpose (I/O shell).
  constexpr absl::Duration kPoll = absl::Milliseconds(5);
  const int64_t polls = std::max<int64_t>(1, opts_.stale_map_wait / kPoll);
  for (int64_t i = 0;; ++i) {
    absl::StatusOr<std::shared_ptr<const ShardMap>> map = Map();
    if (map.ok() && *map != stale) return *std::move(map);
    if (i == polls) return nullptr;
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return nullptr;
    }
    absl::SleepFor(kPoll);
  }
}

std::unique_ptr<query::SeriesSource> DataPlane::QuerySource(bool partial_response) {
  return std::make_unique<ClusterSource>(this, partial_response);
}

void DataPlane::MaintainOnce() {
  writer_.ExpireOverdue();
  absl::StatusOr<std::shared_ptr<const ShardMap>> map = Map();
  if (!map.ok()) return;
  for (NodeId node : hints_.Targets()) {
    // Drain while the node accepts, a bounded number of batches per pass.
    for (int i = 0; i < 64 && hints_.Stats(node).hints > 0; ++i) {
      absl::Notification done;
      absl::Status status;
      writer_.ReplayHints(node, **map, [&](absl::Status s) {
        status = std::move(s);
        done.Notify();
      });
      done.WaitForNotification();
      if (!status.ok()) break;
    }
  }
}

AntiEntropyStats DataPlane::AntiEntropyOnce() {
  absl::MutexLock pass(&ae_mu_);
  AntiEntropyStats stats;
  absl::StatusOr<std::shared_ptr<const ShardMap>> map = Map();
  if (!map.ok()) return stats;
  const absl::Time start = opts_.clock->Now();
  const int64_t now_ms = absl::ToUnixMillis(start);
  const int64_t mint = now_ms - absl::ToInt64Milliseconds(opts_.anti_entropy_window);
  const int64_t maxt = now_ms + 10 * 60 * 1000;
  const int64_t width = std::max<int64_t>(1, absl::ToInt64Milliseconds(opts_.anti_entropy_range));
  for (uint32_t shard = 0; shard < (*map)->num_shards(); ++shard) {
    const std::vector<NodeId>& replicas = (*map)->shards[shard].replicas;
    if (replicas.size() < 2 ||
        std::find(replicas.begin(), replicas.end(), opts_.self) == replicas.end()) {
      continue;
    }
    ++stats.shards_checked;
    const absl::Time deadline = opts_.clock->MonotonicNow() + opts_.anti_entropy_call_timeout;
    DigestFn digest = [&](NodeId node, TimeRange r) -> absl::StatusOr<uint64_t> {
      if (node == opts_.self) return tsdb_->ShardDigest(shard, r.mint, r.maxt);
      return remote_.ShardDigest(node, shard, r, deadline);
    };
    RepairPlan plan = PlanShardRepair(shard, replicas, AlignedRanges(mint, maxt, width), digest,
                                      opts_.anti_entropy);
    stats.ranges_in_sync += plan.in_sync;
    stats.unknown += static_cast<int>(plan.unknown.size());
    for (const Transfer& t : plan.transfers) {
      if (t.from == opts_.self ||
          std::find(t.to.begin(), t.to.end(), opts_.self) == t.to.end()) {
        continue;  // the receiving replicas pull for themselves
      }
      ++stats.transfers;
      absl::Status s = remote_.ExportShard(
          t.from, shard, t.range, opts_.clock->MonotonicNow() + opts_.anti_entropy_call_timeout,
          [&](std::vector<Series> batch) -> absl::Status {
            absl::StatusOr<storage::AppendResult> r = local_append_(ToSeriesAppends(batch));
            if (!r.ok()) return r.status();
            stats.samples_pulled += r->appended;
            return absl::OkStatus();
          });
      if (!s.ok()) {
        LOG(WARNING) << "anti-entropy: pulling shard " << shard << " [" << t.range.mint << ", "
                     << t.range.maxt << "] from node " << t.from << " failed: " << s;
      }
    }
  }
  const absl::Time end = opts_.clock->Now();
  absl::MutexLock l(&mu_);
  if (stats.transfers > 0) {
    if (!diverged_since_.has_value()) diverged_since_ = start;
    LOG(INFO) << "anti-entropy: pulled " << stats.samples_pulled << " samples in "
              << stats.transfers << " ranges over " << stats.shards_checked << " shards in "
              << absl::FormatDuration(end - start);
  } else if (diverged_since_.has_value() && stats.unknown == 0) {
    last_convergence_ = end - *diverged_since_;
    diverged_since_.reset();
    LOG(INFO) << "anti-entropy: converged in " << absl::FormatDuration(*last_convergence_);
  }
  return stats;
}

std::optional<absl::Duration> DataPlane::last_convergence() const {
  absl::MutexLock l(&mu_);
  return last_convergence_;
}

int DataPlane::DropUnownedShardsOnce() {
  absl::StatusOr<std::shared_ptr<const ShardMap>> map = Map();
  if (!map.ok()) return 0;
  int dropped = 0;
  const std::vector<uint32_t> unowned = ShardsToDrop(opts_.self, **map, tsdb_->ListShards());
  std::vector<uint32_t> due;
  {
    const absl::Time now = opts_.clock->Now();
    absl::MutexLock l(&mu_);
    std::map<uint32_t, absl::Time> since;
    for (uint32_t shard : unowned) {
      auto it = unowned_since_.find(shard);
      const absl::Time first = it == unowned_since_.end() ? now : it->second;
      if (now - first >= opts_.drop_delay) {
        due.push_back(shard);
      } else {
        since[shard] = first;
      }
    }
    unowned_since_ = std::move(since);
  }
  for (uint32_t shard : due) {
    absl::Status s = tsdb_->DropShard(shard);
    if (!s.ok()) {
      LOG(WARNING) << "dropping unowned shard " << shard << " failed: " << s;
      continue;
    }
    LOG(INFO) << "dropped shard " << shard << ", no longer owned by node " << opts_.self;
    ++dropped;
  }
  return dropped;
}

}  // namespace vigil::cluster
