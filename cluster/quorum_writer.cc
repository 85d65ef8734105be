#include "cluster/quorum_writer.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "cluster/fencing.h"
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

void AddCounts(const storage::AppendResult& r, storage::AppendResult* total) {
  total->appended += r.appended;
  total->duplicates += r.duplicates;
  total->rejected += r.rejected;
  for (const std::string& e : r.errors) {
    if (total->errors.size() < kMaxErrors) total->errors.push_back(e);
  }
}

// The write's outcome once every shard is decided; nullopt while one is pending.
std::optional<QuorumWriteResult> Outcome(const std::vector<ShardState>& shards,
                                         const std::map<NodeId, absl::Status>& errors) {
  for (const ShardState& s : shards) {
    if (JudgeShard(s) == Verdict::kPending) return std::nullopt;
  }
  QuorumWriteResult r;
  std::vector<std::string> missed;
  for (const ShardState& s : shards) {
    if (JudgeShard(s) == Verdict::kOk) {
      AddCounts(*s.result, &r.appended);
      continue;
    }
    missed.push_back(absl::StrCat(s.shard, " (", s.acked.size(), " of ",
                                  s.replicas.size() + s.pending.size(), " acked)"));
    r.missed.insert(r.missed.end(), s.series->begin(), s.series->end());
  }
  if (missed.empty()) return r;
  const std::string where = absl::StrCat("write missed quorum on shards ", absl::StrJoin(missed, ", "));
  std::vector<std::string> reasons;
  const absl::Status* stale = nullptr;
  for (const auto& [node, status] : errors) {
    if (status.code() == absl::StatusCode::kInvalidArgument) {
      r.status = status;
      return r;
    }
    if (stale == nullptr && IsStaleShardView(status)) stale = &status;
    reasons.push_back(absl::StrCat("node ", node, ": ", status.ToString()));
  }
  // Keeps the replica's message first, so that IsStaleShardView still holds.
  r.status = stale != nullptr
                 ? absl::FailedPreconditionError(absl::StrCat(stale->message(), "; ", where))
                 : absl::UnavailableError(absl::StrCat(where, "; ", absl::StrJoin(reasons, "; ")));
  return r;
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
  std::function<void(QuorumWriteResult)> done ABSL_GUARDED_BY(mu);  // null once called
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
  WriteShards(std::move(map), std::move(series), [done = std::move(done)](QuorumWriteResult r) {
    if (r.status.ok()) return done(std::move(r.appended));
    // Without a rewrite, a fenced write is one the client should retry.
    if (IsStaleShardView(r.status)) return done(absl::UnavailableError(r.status.message()));
    done(std::move(r.status));
  });
}

void QuorumWriter::WriteShards(std::shared_ptr<const ShardMap> map, std::vector<Series> series,
                               std::function<void(QuorumWriteResult)> done) {
  CHECK(map != nullptr);
  std::map<uint32_t, std::vector<Series>> by_shard;
  for (Series& s : series) {
    const uint32_t shard = opts_.shard_of(s.labels.Hash(), map->num_shards());
    CHECK_LT(shard, map->num_shards());
    by_shard[shard].push_back(std::move(s));
  }
  if (by_shard.empty()) {
    done(QuorumWriteResult());
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
      shard_writes.push_back(ShardWrite{shard, ViewOf(p), st.series});
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
    // A fenced write is rewritten with a newer map or failed: no hint.
    const bool hint = !reply.ok() && !IsStaleShardView(reply.status());
    for (size_t k = 0; k < r.shards.size(); ++k) {
      ShardState& s = op->shards[r.shards[k]];
      if (reply.ok()) {
        s.acked.push_back(r.node);
        if (!s.result.has_value()) s.result = reply->shards[k];
      } else {
        s.failed.push_back(r.node);
        if (hint) hints.emplace_back(s.shard, s.series);
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
  std::function<void(QuorumWriteResult)> done;
  QuorumWriteResult outcome;
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
    std::shared_ptr<const ShardMap> map, std::vector<Series> series,
    const AwaitMapFn& await_newer) {
  storage::AppendResult total;
  for (int rewrites = 0;; ++rewrites) {
    absl::Notification done;
    QuorumWriteResult r;
    WriteShards(map, std::move(series), [&](QuorumWriteResult result) {
      r = std::move(result);
      done.Notify();
    });
    done.WaitForNotification();
    AddCounts(r.appended, &total);
    if (r.status.ok()) return total;
    if (!IsStaleShardView(r.status)) return r.status;
    // This node's map is older than a replica's: rewrite what missed quorum
    // once it has caught up; never ack from the stale replica set.
    std::shared_ptr<const ShardMap> newer;
    if (await_newer && rewrites < kMaxRewrites) newer = await_newer(map);
    if (newer == nullptr) {
      return absl::UnavailableError(
          absl::StrCat(r.status.message(), "; this node's shard map did not catch up"));
    }
    map = std::move(newer);
    series = std::move(r.missed);
  }
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
    req.shards.push_back(ShardWrite{h.shard, ViewOf(p), h.series});
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
