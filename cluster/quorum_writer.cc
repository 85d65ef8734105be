#include "cluster/quorum_writer.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "glog/logging.h"

namespace vigil::cluster {
namespace {

bool Contains(const std::vector<NodeId>& v, NodeId n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

enum class Verdict { kPending, kOk, kFailed };

constexpr size_t kMaxErrors = 10;

// One shard of a write, and which of its nodes acked or failed.
struct ShardState {
  uint32_t shard = 0;
  SharedSeries series;
  std::vector<NodeId> replicas;
  std::vector<NodeId> pending;
  std::vector<NodeId> acked;
  std::vector<NodeId> failed;
  std::optional<storage::AppendResult> result;  // from the first ack
};

Verdict JudgeGroup(const std::vector<NodeId>& group, const ShardState& s) {
  const int w = WriteQuorum(group.size());
  int acks = 0, alive = 0;
  for (NodeId n : group) {
    acks += Contains(s.acked, n);
    alive += !Contains(s.failed, n);
  }
  if (alive < w) return Verdict::kFailed;
  return acks >= w ? Verdict::kOk : Verdict::kPending;
}

// OK with W acks in the replica set and, while moving, W in the pending set too;
// failed as soon as either can no longer reach W.
Verdict JudgeShard(const ShardState& s) {
  const Verdict v = JudgeGroup(s.replicas, s);
  if (v == Verdict::kFailed || s.pending.empty()) return v;
  const Verdict p = JudgeGroup(s.pending, s);
  if (p == Verdict::kFailed) return p;
  return v == Verdict::kOk && p == Verdict::kOk ? Verdict::kOk : Verdict::kPending;
}

// The write's outcome once every shard is decided; nullopt while one is pending.
std::optional<absl::StatusOr<storage::AppendResult>> Outcome(
    const std::vector<ShardState>& shards, const std::map<NodeId, absl::Status>& errors) {
  storage::AppendResult total;
  std::vector<std::string> missed;
  for (const ShardState& s : shards) {
    const Verdict v = JudgeShard(s);
    if (v == Verdict::kPending) return std::nullopt;
    if (v == Verdict::kFailed) {
      missed.push_back(absl::StrCat(s.shard, " (", s.acked.size(), " of ",
                                    s.replicas.size() + s.pending.size(), " acked)"));
      continue;
    }
    total.appended += s.result->appended;
    total.duplicates += s.result->duplicates;
    total.rejected += s.result->rejected;
    for (const std::string& e : s.result->errors) {
      if (total.errors.size() < kMaxErrors) total.errors.push_back(e);
    }
  }
  if (missed.empty()) return total;
  std::vector<std::string> reasons;
  for (const auto& [node, status] : errors) {
    if (status.code() == absl::StatusCode::kInvalidArgument) return status;
    reasons.push_back(absl::StrCat("node ", node, ": ", status.ToString()));
  }
  return absl::UnavailableError(absl::StrCat("write missed quorum on shards ",
                                             absl::StrJoin(missed, ", "), "; ",
                                             absl::StrJoin(reasons, "; ")));
}

}  // namespace

struct QuorumWriter::Op {
  struct Request {
    NodeId node = 0;
    std::vector<size_t> shards;  // indexes into `shards`
  };

  uint64_t id = 0;
  absl::Time deadline;
  std::vector<Request> requests;  // constant once sent

  absl::Mutex mu;
  std::vector<ShardState> shards ABSL_GUARDED_BY(mu);
  std::vector<bool> replied ABSL_GUARDED_BY(mu);  // per request
  size_t replies ABSL_GUARDED_BY(mu) = 0;
  std::map<NodeId, absl::Status> errors ABSL_GUARDED_BY(mu);  // first per node
  WriteCallback done ABSL_GUARDED_BY(mu);  // null once called
};

QuorumWriter::QuorumWriter(QuorumWriterOptions opts, ReplicaClient* client, const Clock* clock,
                           HintStore* hints)
    : opts_(opts), client_(client), clock_(clock), hints_(hints) {
  CHECK(opts_.shard_of != nullptr) << "QuorumWriterOptions.shard_of is required";
  CHECK(client_ != nullptr);
  CHECK(clock_ != nullptr);
}

void QuorumWriter::Write(std::shared_ptr<const ShardMap> map, std::vector<Series> series,
                         WriteCallback done) {
  CHECK(map != nullptr);
  std::map<uint32_t, std::vector<Series>> by_shard;
  for (Series& s : series) {
    const uint32_t shard = opts_.shard_of(s.labels.Hash(), map->num_shards());
    CHECK_LT(shard, map->num_shards());
    by_shard[shard].push_back(std::move(s));
  }
  if (by_shard.empty()) {
    done(storage::AppendResult());
    return;
  }
  auto op = std::make_shared<Op>();
  op->deadline = clock_->MonotonicNow() + opts_.timeout;
  std::map<NodeId, Op::Request> requests;
  std::vector<ShardWrite> shard_writes;
  {
    absl::MutexLock l(&op->mu);
    op->done = std::move(done);
    for (auto& [shard, list] : by_shard) {
      const ShardPlacement& p = map->shards[shard];
      ShardState st;
      st.shard = shard;
      st.series = std::make_shared<const std::vector<Series>>(std::move(list));
      st.replicas = p.replicas;
      st.pending = p.pending;
      for (NodeId n : p.WriteSet()) {
        requests[n].node = n;
        requests[n].shards.push_back(op->shards.size());
      }
      shard_writes.push_back(ShardWrite{shard, p.epoch, st.series});
      op->shards.push_back(std::move(st));
    }
  }
  for (auto& [node, r] : requests) op->requests.push_back(std::move(r));
  {
    absl::MutexLock l(&op->mu);
    op->replied.assign(op->requests.size(), false);
  }
  {
    absl::MutexLock l(&mu_);
    op->id = next_op_id_++;
    inflight_[op->id] = op;
  }
  if (op->requests.empty()) {
    Finish(op, /*all_replied=*/true);  // no shard has a replica: fails at once
    return;
  }
  for (size_t i = 0; i < op->requests.size(); ++i) {
    ReplicaWriteRequest req;
    for (size_t idx : op->requests[i].shards) req.shards.push_back(shard_writes[idx]);
    client_->Write(op->requests[i].node, std::move(req), op->deadline,
                   [this, op, i](absl::StatusOr<ReplicaWriteReply> reply) {
                     OnReply(op, i, std::move(reply));
                   });
  }
}

void QuorumWriter::OnReply(const std::shared_ptr<Op>& op, size_t request,
                           absl::StatusOr<ReplicaWriteReply> reply) {
  const Op::Request& r = op->requests[request];
  std::vector<std::pair<uint32_t, SharedSeries>> hints;
  bool all_replied;
  {
    absl::MutexLock l(&op->mu);
    if (op->replied[request]) return;  // expired already
    op->replied[request] = true;
    all_replied = ++op->replies == op->requests.size();
    if (reply.ok() && reply->shards.size() != r.shards.size()) {
      reply = absl::InternalError(absl::StrCat("replica answered for ", reply->shards.size(),
                                               " shards, not ", r.shards.size()));
    }
    for (size_t k = 0; k < r.shards.size(); ++k) {
      ShardState& s = op->shards[r.shards[k]];
      if (reply.ok()) {
        s.acked.push_back(r.node);
        if (!s.result.has_value()) s.result = reply->shards[k];
      } else {
        s.failed.push_back(r.node);
        hints.emplace_back(s.shard, s.series);
      }
    }
    if (!reply.ok()) op->errors.emplace(r.node, reply.status());
  }
  if (hints_ != nullptr) {
    for (auto& [shard, series] : hints) hints_->Add(r.node, shard, std::move(series));
  }
  Finish(op, all_replied);
}

void QuorumWriter::Finish(const std::shared_ptr<Op>& op, bool all_replied) {
  WriteCallback done;
  absl::StatusOr<storage::AppendResult> outcome;
  {
    absl::MutexLock l(&op->mu);
    if (op->done) {
      auto o = Outcome(op->shards, op->errors);
      if (o.has_value()) {
        outcome = *std::move(o);
        done = std::move(op->done);
        op->done = nullptr;
      }
    }
  }
  if (all_replied) {
    absl::MutexLock l(&mu_);
    inflight_.erase(op->id);
  }
  if (done) done(std::move(outcome));
}

int QuorumWriter::ExpireOverdue() {
  const absl::Time now = clock_->MonotonicNow();
  std::vector<std::shared_ptr<Op>> overdue;
  {
    absl::MutexLock l(&mu_);
    for (const auto& [id, op] : inflight_) {
      if (op->deadline <= now) overdue.push_back(op);
    }
  }
  int finished = 0;
  for (const auto& op : overdue) {
    for (size_t i = 0; i < op->requests.size(); ++i) {
      OnReply(op, i, absl::DeadlineExceededError("replica did not answer before the deadline"));
    }
    ++finished;
  }
  return finished;
}

size_t QuorumWriter::inflight() const {
  absl::MutexLock l(&mu_);
  return inflight_.size();
}

absl::StatusOr<storage::AppendResult> QuorumWriter::WriteAndWait(
    std::shared_ptr<const ShardMap> map, std::vector<Series> series) {
  absl::Notification done;
  absl::StatusOr<storage::AppendResult> result;
  Write(std::move(map), std::move(series), [&](absl::StatusOr<storage::AppendResult> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

void QuorumWriter::ReplayHints(NodeId node, const ShardMap& map,
                               std::function<void(absl::Status)> done) {
  if (hints_ == nullptr) {
    done(absl::OkStatus());
    return;
  }
  std::vector<Hint> hints;
  ReplicaWriteRequest req;
  for (Hint& h : hints_->Take(node, opts_.replay_batch_hints)) {
    if (h.shard >= map.num_shards()) continue;
    const ShardPlacement& p = map.shards[h.shard];
    if (!Contains(p.WriteSet(), node)) continue;  // no longer the node's shard
    req.shards.push_back(ShardWrite{h.shard, p.epoch, h.series});
    hints.push_back(std::move(h));
  }
  if (hints.empty()) {
    done(absl::OkStatus());
    return;
  }
  client_->Write(node, std::move(req), clock_->MonotonicNow() + opts_.timeout,
                 [this, node, hints = std::move(hints),
                  done = std::move(done)](absl::StatusOr<ReplicaWriteReply> reply) mutable {
                   if (!reply.ok()) hints_->Requeue(node, std::move(hints));
                   done(reply.status());
                 });
}

}  // namespace vigil::cluster
