// cluster/data_plane_stream.cc
//
// DataPlane: the rebalancing streams (StreamShard), run on the Raft leader for
// the control plane's moves. See data_plane.h.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "cluster/data_plane.h"
#include "cluster/replica_service.h"
#include "glog/logging.h"

namespace vigil::cluster {
namespace {

constexpr size_t kStreamHistory = 64;

int64_t PayloadBytes(const std::vector<Series>& batch) {
  int64_t bytes = 0;
  for (const Series& s : batch) {
    for (const Label& l : s.labels) bytes += static_cast<int64_t>(l.name.size() + l.value.size());
    bytes += 16 * static_cast<int64_t>(s.samples.size());
  }
  return bytes;
}

const char* StateName(StreamProgress::State s) {
  switch (s) {
    case StreamProgress::State::kQueued:
      return "queued";
    case StreamProgress::State::kRunning:
      return "running";
    case StreamProgress::State::kDone:
      return "done";
    case StreamProgress::State::kFailed:
      return "failed";
  }
  return "unknown";
}

}  // namespace

void DataPlane::StreamShard(const Transfer& transfer, std::function<void(absl::Status)> done) {
  auto progress = std::make_shared<StreamProgress>();
  progress->transfer = transfer;
  progress->queued = opts_.clock->MonotonicNow();
  bool stopping = false;
  {
    absl::MutexLock l(&mu_);
    stopping = stopping_;
    if (!stopping) streams_.push_back(progress);
    if (!stopping && opts_.background) {
      stream_queue_.push_back(QueuedStream{progress, std::move(done)});
      return;
    }
  }
  done(stopping ? absl::UnavailableError("the data plane is stopping") : StreamShardNow(transfer));
}

void DataPlane::StreamWorker() {
  absl::MutexLock l(&mu_);
  for (;;) {
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || !stream_queue_.empty();
    };
    mu_.Await(absl::Condition(&ready));
    if (stream_queue_.empty()) return;  // stopping, nothing left
    QueuedStream next = std::move(stream_queue_.front());
    stream_queue_.pop_front();
    const bool stopping = stopping_;
    mu_.Unlock();
    next.done(stopping ? absl::UnavailableError("the data plane is stopping")
                       : StreamShardNow(next.progress->transfer));
    mu_.Lock();
  }
}

absl::Status DataPlane::StreamShardNow(const Transfer& t) {
  std::shared_ptr<StreamProgress> progress;
  absl::Duration settle;
  {
    absl::MutexLock l(&mu_);
    for (auto it = streams_.rbegin(); it != streams_.rend(); ++it) {
      if ((*it)->transfer == t && (*it)->state == StreamProgress::State::kQueued) {
        progress = *it;
        break;
      }
    }
    if (progress == nullptr) {
      progress = std::make_shared<StreamProgress>();
      progress->transfer = t;
      progress->queued = opts_.clock->MonotonicNow();
      streams_.push_back(progress);
    }
    progress->state = StreamProgress::State::kRunning;
    progress->started = opts_.clock->Now();
    // Settle from when the stream was handed over (queued streams settle
    // meanwhile). Real (monotonic) time on purpose (I/O shell): Stop() cuts the
    // wait short.
    settle = progress->queued + opts_.stream_settle - opts_.clock->MonotonicNow();
  }
  stop_event_.WaitWithTimeout(settle);
  absl::Status s;
  const absl::Time deadline = opts_.clock->MonotonicNow() + opts_.stream_timeout;
  auto push = [&](std::vector<Series> batch) -> absl::Status {
    {
      absl::MutexLock l(&mu_);
      if (stopping_) return absl::UnavailableError("the data plane is stopping");
    }
    return PushBatch(t.shard, t.to, std::move(batch), deadline, progress);
  };
  if (t.from == opts_.self) {
    s = tsdb_->ExportShard(t.shard, t.range.mint, t.range.maxt, push);
  } else {
    s = remote_.ExportShard(t.from, t.shard, t.range, deadline, push);
  }
  absl::MutexLock l(&mu_);
  progress->finished = opts_.clock->Now();
  progress->state = s.ok() ? StreamProgress::State::kDone : StreamProgress::State::kFailed;
  if (s.ok()) {
    ++stream_totals_.done;
    LOG(INFO) << "rebalance: streamed shard " << t.shard << " from node " << t.from << ": "
              << progress->series << " series, " << progress->samples << " samples, "
              << progress->bytes << " bytes in "
              << absl::FormatDuration(progress->finished - progress->started);
  } else {
    ++stream_totals_.failed;
    progress->error = std::string(s.message());
    LOG(WARNING) << "rebalance: streaming shard " << t.shard << " from node " << t.from
                 << " failed: " << s;
  }
  // Forget the oldest finished transfers beyond the history bound.
  size_t finished = 0;
  for (const auto& p : streams_) {
    finished += p->state == StreamProgress::State::kDone ||
                p->state == StreamProgress::State::kFailed;
  }
  for (auto it = streams_.begin(); it != streams_.end() && finished > kStreamHistory;) {
    if ((*it)->state == StreamProgress::State::kDone ||
        (*it)->state == StreamProgress::State::kFailed) {
      it = streams_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
  return s;
}

absl::Status DataPlane::PushBatch(uint32_t shard, const std::vector<NodeId>& to,
                                  std::vector<Series> batch, absl::Time deadline,
                                  const std::shared_ptr<StreamProgress>& progress) {
  if (batch.empty() || to.empty()) return absl::OkStatus();
  const int64_t series = static_cast<int64_t>(batch.size());
  int64_t samples = 0;
  for (const Series& s : batch) samples += static_cast<int64_t>(s.samples.size());
  const int64_t bytes = PayloadBytes(batch);
  SharedSeries shared = std::make_shared<const std::vector<Series>>(std::move(batch));
  struct Pending {
    absl::Mutex mu;
    size_t left;
    absl::Status status;
    absl::Notification all_done;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = to.size();
  for (NodeId node : to) {
    ReplicaWriteRequest req;
    req.shards.push_back(ShardWrite{shard, ShardView{}, shared});  // not fenced
    auto done = [pending, node](absl::StatusOr<ReplicaWriteReply> r) {
      absl::MutexLock l(&pending->mu);
      if (!r.ok()) {
        pending->status.Update(absl::Status(
            r.status().code(), absl::StrCat("node ", node, ": ", r.status().message())));
      }
      if (--pending->left == 0) pending->all_done.Notify();
    };
    if (node == opts_.self) {
      done(AppendShardsConcurrently(local_append_, req));
    } else {
      remote_.Write(node, std::move(req), deadline, std::move(done));
    }
  }
  pending->all_done.WaitForNotification();
  absl::MutexLock l(&pending->mu);
  if (!pending->status.ok()) return pending->status;
  const int64_t targets = static_cast<int64_t>(to.size());
  absl::MutexLock pl(&mu_);
  progress->series += series;
  progress->samples += samples * targets;
  progress->bytes += bytes * targets;
  stream_totals_.series += series;
  stream_totals_.samples += samples * targets;
  stream_totals_.bytes += bytes * targets;
  return absl::OkStatus();
}

nlohmann::json DataPlane::StreamsJson() const {
  absl::MutexLock l(&mu_);
  nlohmann::json j;
  int running = 0;
  int queued = 0;
  nlohmann::json recent = nlohmann::json::array();
  const absl::Time now = opts_.clock->Now();
  for (auto it = streams_.rbegin(); it != streams_.rend(); ++it) {
    const StreamProgress& p = **it;
    running += p.state == StreamProgress::State::kRunning;
    queued += p.state == StreamProgress::State::kQueued;
    const bool finished = p.state == StreamProgress::State::kDone ||
                          p.state == StreamProgress::State::kFailed;
    double seconds = 0;
    if (p.state != StreamProgress::State::kQueued) {
      seconds = absl::ToDoubleSeconds((finished ? p.finished : now) - p.started);
    }
    nlohmann::json e = {{"shard", p.transfer.shard},
                        {"range", {p.transfer.range.mint, p.transfer.range.maxt}},
                        {"from", p.transfer.from},
                        {"to", p.transfer.to},
                        {"state", StateName(p.state)},
                        {"series", p.series},
                        {"samples", p.samples},
                        {"bytes", p.bytes},
                        {"seconds", seconds}};
    if (!p.error.empty()) e["error"] = p.error;
    recent.push_back(std::move(e));
  }
  j["running"] = running;
  j["queued"] = queued;
  j["done"] = stream_totals_.done;
  j["failed"] = stream_totals_.failed;
  j["series"] = stream_totals_.series;
  j["samples"] = stream_totals_.samples;
  j["bytes"] = stream_totals_.bytes;
  j["recent"] = std::move(recent);
  return j;
}

}  // namespace vigil::cluster
