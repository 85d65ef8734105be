#include "cluster/fanout_source.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cluster/quorum_writer.h"
#include "common/status_macros.h"
#include "glog/logging.h"

namespace vigil::cluster {
namespace {

// Errors that are the query's fault: every replica would say the same.
bool IsQueryError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument ||
         s.code() == absl::StatusCode::kResourceExhausted;
}

// The order in which to ask a shard's replicas: this node first, suspects last.
std::vector<NodeId> Candidates(const ShardPlacement& p, NodeId self,
                               const SuspectNodes* suspects) {
  std::vector<NodeId> out;
  if (std::find(p.replicas.begin(), p.replicas.end(), self) != p.replicas.end()) {
    out.push_back(self);
  }
  for (NodeId n : p.replicas) {
    if (n != self) out.push_back(n);
  }
  if (suspects != nullptr) {
    std::stable_partition(out.begin(), out.end(),
                          [suspects](NodeId n) { return !suspects->IsSuspect(n); });
  }
  return out;
}

std::vector<Sample> UnionSamples(const std::vector<Sample>& a, const std::vector<Sample>& b) {
  std::vector<Sample> out;
  out.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].t <= b[j].t)) {
      if (j < b.size() && a[i].t == b[j].t) ++j;  // a's value wins
      out.push_back(a[i++]);
    } else {
      out.push_back(b[j++]);
    }
  }
  return out;
}

// What the read callbacks share with their Gatherer. Held by shared_ptr in every
// callback, so a reply that arrives after Gather returned (a straggler it did
// not wait for) lands here and is dropped with the last reference.
struct Mailbox {
  absl::Mutex mu;
  std::vector<std::pair<size_t, absl::StatusOr<ReplicaReadReply>>> arrived ABSL_GUARDED_BY(mu);
  // Notified on each arrival; replaced before every look at `arrived`.
  std::shared_ptr<Event> wake ABSL_GUARDED_BY(mu);
};

// One read sent to one node for some shards.
struct Ask {
  NodeId node = 0;
  std::vector<uint32_t> shards;
  absl::Time sent;
  bool answered = false;
  bool hedged = false;  // its hedge time passed unanswered
};

// Per-shard bookkeeping of one Gather.
struct ShardProgress {
  std::vector<NodeId> candidates;
  size_t next = 0;  // next candidate to try
  int need = 0;
  int got = 0;
  std::vector<size_t> in_flight;  // asks not answered yet
};

// One Gather: sends reads, absorbs replies, hedges, until every shard is settled
// (R answers, or no replica left to ask) or the query deadline passed. Lives on
// the calling thread; only the Mailbox is shared with the reader's callbacks.
class Gatherer {
 public:
  Gatherer(const ShardMap& map, ReplicaReader* reader, const Clock* clock,
           const FanoutOptions& opts, ReplicaReadRequest req)
      : reader_(reader), clock_(clock), opts_(opts), req_(std::move(req)),
        box_(std::make_shared<Mailbox>()),
        deadline_(clock->MonotonicNow() + opts.timeout) {
    shards_.resize(map.num_shards());
    for (uint32_t s = 0; s < map.num_shards(); ++s) {
      shards_[s].candidates = Candidates(map.shards[s], opts_.self, opts_.suspects);
      shards_[s].need = ReadQuorum(map.shards[s].replicas.size());
    }
  }

  // OK once settled or past the deadline; a query error (IsQueryError) at once.
  absl::Status Run() {
    while (true) {
      std::vector<std::pair<size_t, absl::StatusOr<ReplicaReadReply>>> arrived;
      std::shared_ptr<Event> wake = std::make_shared<Event>();
      {
        absl::MutexLock l(&box_->mu);
        arrived.swap(box_->arrived);
        box_->wake = wake;  // any later arrival notifies it
      }
      for (auto& [id, result] : arrived) RETURN_IF_ERROR(Absorb(id, std::move(result)));
      const absl::Time now = clock_->MonotonicNow();
      if (now >= deadline_) return absl::OkStatus();
      Dispatch(now);
      if (Settled()) return absl::OkStatus();
      const absl::Time until = NextWake(clock_->MonotonicNow());
      if (opts_.wait_for_testing) {
        opts_.wait_for_testing(wake.get(), until);
      } else {
        wake->WaitWithTimeout(until - clock_->MonotonicNow());
      }
    }
  }

  // One line per shard with fewer than R answers, with each replica's reason.
  std::vector<std::string> ShortShards() const;

  std::map<NodeId, std::vector<ReplicaReadReply>> TakeReplies() { return std::move(replies_); }

 private:
  absl::Status Absorb(size_t id, absl::StatusOr<ReplicaReadReply> result);
  // Asks each unsettled shard's next candidates for the answers it still needs.
  void Dispatch(absl::Time now);
  void Send(NodeId node, std::vector<uint32_t> shards);
  bool Settled() const;
  // When an in-flight read is hedged next, or the deadline.
  absl::Time NextWake(absl::Time now) const;
  absl::Time HedgeAt(const Ask& ask) const {
    return ask.sent + std::max(opts_.hedge_delay, opts_.hedge_latency_factor * slowest_);
  }
  // Whether `s` has a candidate that is neither asked yet nor failed.
  bool HasSpare(const ShardProgress& p) const {
    for (size_t i = p.next; i < p.candidates.size(); ++i) {
      if (!failed_.count(p.candidates[i])) return true;
    }
    return false;
  }

  ReplicaReader* const reader_;
  const Clock* const clock_;
  const FanoutOptions& opts_;
  ReplicaReadRequest req_;
  const std::shared_ptr<Mailbox> box_;
  const absl::Time deadline_;
  std::vector<ShardProgress> shards_;
  std::vector<Ask> asks_;                   // by id
  std::map<NodeId, absl::Status> failed_;  // nodes that failed, first error
  std::map<NodeId, std::vector<ReplicaReadReply>> replies_;
  absl::Duration slowest_;  // the slowest answer so far
};

absl::Status Gatherer::Absorb(size_t id, absl::StatusOr<ReplicaReadReply> result) {
  Ask& ask = asks_[id];
  ask.answered = true;
  for (uint32_t s : ask.shards) {
    std::vector<size_t>& f = shards_[s].in_flight;
    f.erase(std::remove(f.begin(), f.end(), id), f.end());
  }
  if (!result.ok()) {
    if (IsQueryError(result.status())) return result.status();
    failed_.emplace(ask.node, result.status());
    if (opts_.suspects != nullptr) opts_.suspects->Suspect(ask.node);
    return absl::OkStatus();
  }
  if (opts_.suspects != nullptr) opts_.suspects->Clear(ask.node);
  slowest_ = std::max(slowest_, clock_->MonotonicNow() - ask.sent);
  for (uint32_t s : ask.shards) ++shards_[s].got;
  replies_[ask.node].push_back(*std::move(result));
  return absl::OkStatus();
}

void Gatherer::Dispatch(absl::Time now) {
  for (Ask& ask : asks_) {
    if (ask.answered || ask.hedged || HedgeAt(ask) > now) continue;
    ask.hedged = true;
    if (opts_.suspects != nullptr) opts_.suspects->Suspect(ask.node);
  }
  std::map<NodeId, std::vector<uint32_t>> round;
  for (uint32_t s = 0; s < shards_.size(); ++s) {
    ShardProgress& p = shards_[s];
    // Reads past their hedge time no longer count as coming.
    int coming = 0;
    for (size_t id : p.in_flight) coming += HedgeAt(asks_[id]) > now ? 1 : 0;
    while (p.got + coming < p.need && p.next < p.candidates.size()) {
      const NodeId n = p.candidates[p.next++];
      if (failed_.count(n)) continue;
      round[n].push_back(s);
      ++coming;
    }
  }
  // Remote nodes first: this node's read may run on this thread.
  auto self = round.find(opts_.self);
  for (auto it = round.begin(); it != round.end(); ++it) {
    if (it != self) Send(it->first, std::move(it->second));
  }
  if (self != round.end()) Send(self->first, std::move(self->second));
}

void Gatherer::Send(NodeId node, std::vector<uint32_t> shards) {
  const size_t id = asks_.size();
  const absl::Time now = clock_->MonotonicNow();
  bool spare = true;
  for (uint32_t s : shards) {
    shards_[s].in_flight.push_back(id);
    spare = spare && HasSpare(shards_[s]);
  }
  const absl::Time deadline = spare ? std::min(deadline_, now + opts_.attempt_timeout) : deadline_;
  req_.shards = shards;
  asks_.push_back(Ask{node, std::move(shards), now});
  reader_->Read(node, req_, deadline,
                [box = box_, id](absl::StatusOr<ReplicaReadReply> r) {
                  std::shared_ptr<Event> wake;
                  {
                    absl::MutexLock l(&box->mu);
                    box->arrived.emplace_back(id, std::move(r));
                    wake = box->wake;
                  }
                  if (wake != nullptr) wake->Notify();
                });
}

bool Gatherer::Settled() const {
  for (const ShardProgress& p : shards_) {
    if (p.got < p.need && !p.in_flight.empty()) return false;
  }
  return true;
}

absl::Time Gatherer::NextWake(absl::Time now) const {
  absl::Time next = deadline_;
  for (const ShardProgress& p : shards_) {
    if (p.got >= p.need || !HasSpare(p)) continue;
    for (size_t id : p.in_flight) {
      const absl::Time at = HedgeAt(asks_[id]);
      if (at > now) next = std::min(next, at);
    }
  }
  return next;
}

std::vector<std::string> Gatherer::ShortShards() const {
  std::vector<std::string> out;
  for (uint32_t s = 0; s < shards_.size(); ++s) {
    const ShardProgress& p = shards_[s];
    if (p.got >= p.need) continue;
    std::vector<std::string> why;
    for (NodeId n : p.candidates) {
      auto it = failed_.find(n);
      if (it != failed_.end()) {
        why.push_back(absl::StrCat("node ", n, ": ", it->second.ToString()));
        continue;
      }
      for (size_t id : p.in_flight) {
        if (asks_[id].node != n) continue;
        why.push_back(absl::StrCat("node ", n, ": no answer within the query timeout of ",
                                   absl::FormatDuration(opts_.timeout)));
        break;
      }
    }
    if (p.candidates.empty()) why.push_back("no replicas");
    out.push_back(absl::StrCat("shard ", s, ": ", p.got, " of ", p.need,
                               " replicas answered (", absl::StrJoin(why, "; "), ")"));
  }
  return out;
}

}  // namespace

void SuspectNodes::Suspect(NodeId n) {
  absl::MutexLock l(&mu_);
  until_[n] = clock_->MonotonicNow() + ttl_;
}

void SuspectNodes::Clear(NodeId n) {
  absl::MutexLock l(&mu_);
  until_.erase(n);
}

bool SuspectNodes::IsSuspect(NodeId n) const {
  absl::MutexLock l(&mu_);
  auto it = until_.find(n);
  return it != until_.end() && clock_->MonotonicNow() < it->second;
}

std::vector<Series> MergeSeries(std::vector<std::vector<Series>> lists) {
  std::vector<Series> all;
  for (auto& list : lists) {
    for (Series& s : list) all.push_back(std::move(s));
  }
  // Stable: among equal labels the earlier list comes first and wins conflicts.
  std::stable_sort(all.begin(), all.end(),
                   [](const Series& a, const Series& b) { return a.labels < b.labels; });
  std::vector<Series> out;
  for (Series& s : all) {
    if (!out.empty() && out.back().labels == s.labels) {
      out.back().samples = UnionSamples(out.back().samples, s.samples);
    } else {
      out.push_back(std::move(s));
    }
  }
  return out;
}

FanoutSource::FanoutSource(std::shared_ptr<const ShardMap> map, ReplicaReader* reader,
                           const Clock* clock, FanoutOptions opts)
    : map_(std::move(map)), reader_(reader), clock_(clock), opts_(opts) {
  CHECK(map_ != nullptr);
  CHECK(reader_ != nullptr);
  CHECK(clock_ != nullptr);
}

absl::StatusOr<FanoutSource::Gathered> FanoutSource::Gather(ReplicaReadRequest req) {
  Gatherer g(*map_, reader_, clock_, opts_, std::move(req));
  RETURN_IF_ERROR(g.Run());
  Gathered out;
  out.warnings = g.ShortShards();
  if (!out.warnings.empty() && !opts_.partial_response) {
    return absl::UnavailableError(absl::StrCat("read quorum missed on ", out.warnings.size(),
                                               " shards: ", absl::StrJoin(out.warnings, ", ")));
  }
  for (auto& [node, list] : g.TakeReplies()) {
    for (ReplicaReadReply& r : list) {
      for (std::string& w : r.warnings) out.warnings.push_back(std::move(w));
      out.replies.push_back(std::move(r));
    }
  }
  return out;
}

absl::StatusOr<query::SelectResult> FanoutSource::Select(
    const query::SelectHints& hints, const std::vector<LabelMatcher>& matchers) {
  ReplicaReadRequest req;
  req.kind = ReplicaReadRequest::Kind::kSelect;
  req.matchers = matchers;
  req.mint = hints.mint;
  req.maxt = hints.maxt;
  auto gathered = Gather(std::move(req));
  if (!gathered.ok()) return gathered.status();
  std::vector<std::vector<Series>> lists;
  for (ReplicaReadReply& r : gathered->replies) lists.push_back(std::move(r.series));
  query::SelectResult out;
  out.series = MergeSeries(std::move(lists));
  out.warnings = std::move(gathered->warnings);
  return out;
}

absl::StatusOr<std::vector<std::string>> FanoutSource::GatherStrings(ReplicaReadRequest req) {
  auto gathered = Gather(std::move(req));
  if (!gathered.ok()) return gathered.status();
  std::set<std::string> all;
  for (ReplicaReadReply& r : gathered->replies) {
    for (std::string& s : r.strings) all.insert(std::move(s));
  }
  {
    absl::MutexLock l(&mu_);
    for (std::string& w : gathered->warnings) label_warnings_.push_back(std::move(w));
  }
  return std::vector<std::string>(all.begin(), all.end());
}

std::vector<std::string> FanoutSource::LabelWarnings() const {
  absl::MutexLock l(&mu_);
  return label_warnings_;
}

absl::StatusOr<std::vector<std::string>> FanoutSource::LabelNames(
    const std::vector<LabelMatcher>& matchers, int64_t mint, int64_t maxt) {
  ReplicaReadRequest req;
  req.kind = ReplicaReadRequest::Kind::kLabelNames;
  req.matchers = matchers;
  req.mint = mint;
  req.maxt = maxt;
  return GatherStrings(std::move(req));
}

absl::StatusOr<std::vector<std::string>> FanoutSource::LabelValues(
    absl::string_view name, const std::vector<LabelMatcher>& matchers, int64_t mint,
    int64_t maxt) {
  ReplicaReadRequest req;
  req.kind = ReplicaReadRequest::Kind::kLabelValues;
  req.label_name = std::string(name);
  req.matchers = matchers;
  req.mint = mint;
  req.maxt = maxt;
  return GatherStrings(std::move(req));
}

}  // namespace vigil::cluster
