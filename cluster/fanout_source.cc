#include "cluster/fanout_source.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/blocking_counter.h"
#include "cluster/quorum_writer.h"
#include "glog/logging.h"

namespace vigil::cluster {
namespace {

// Errors that are the query's fault: every replica would say the same.
bool IsQueryError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument ||
         s.code() == absl::StatusCode::kResourceExhausted;
}

// The order in which to ask a shard's replicas: this node first.
std::vector<NodeId> Candidates(const ShardPlacement& p, NodeId self) {
  std::vector<NodeId> out;
  if (std::find(p.replicas.begin(), p.replicas.end(), self) != p.replicas.end()) {
    out.push_back(self);
  }
  for (NodeId n : p.replicas) {
    if (n != self) out.push_back(n);
  }
  return out;
}

// Per-shard bookkeeping of one Gather.
struct ShardProgress {
  std::vector<NodeId> candidates;
  size_t next = 0;  // next candidate to try
  int need = 0;
  int got = 0;
};

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

}  // namespace

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
  const absl::Time deadline = clock_->MonotonicNow() + opts_.timeout;
  std::vector<ShardProgress> shards(map_->num_shards());
  for (uint32_t s = 0; s < map_->num_shards(); ++s) {
    shards[s].candidates = Candidates(map_->shards[s], opts_.self);
    shards[s].need = ReadQuorum(map_->shards[s].replicas.size());
  }
  std::map<NodeId, absl::Status> failed;  // nodes that failed, first error
  std::map<NodeId, std::vector<ReplicaReadReply>> replies;
  while (true) {
    // Ask each shard's next untried, not-failed candidates for the missing answers.
    std::map<NodeId, std::vector<uint32_t>> round;
    for (uint32_t s = 0; s < shards.size(); ++s) {
      ShardProgress& p = shards[s];
      int asked = 0;
      while (p.got + asked < p.need && p.next < p.candidates.size()) {
        const NodeId n = p.candidates[p.next++];
        if (failed.count(n)) continue;
        round[n].push_back(s);
        ++asked;
      }
    }
    if (round.empty()) break;
    std::vector<std::pair<NodeId, std::vector<uint32_t>>> asks(round.begin(), round.end());
    std::vector<absl::StatusOr<ReplicaReadReply>> results(asks.size());
    absl::BlockingCounter pending(static_cast<int>(asks.size()));
    for (size_t i = 0; i < asks.size(); ++i) {
      req.shards = asks[i].second;
      reader_->Read(asks[i].first, req, deadline,
                    [&results, &pending, i](absl::StatusOr<ReplicaReadReply> r) {
                      results[i] = std::move(r);
                      pending.DecrementCount();
                    });
    }
    pending.Wait();
    for (size_t i = 0; i < asks.size(); ++i) {
      const NodeId node = asks[i].first;
      if (!results[i].ok()) {
        if (IsQueryError(results[i].status())) return results[i].status();
        failed.emplace(node, results[i].status());
        continue;
      }
      for (uint32_t s : asks[i].second) ++shards[s].got;
      replies[node].push_back(*std::move(results[i]));
    }
  }
  Gathered out;
  std::vector<std::string> short_shards;
  for (uint32_t s = 0; s < shards.size(); ++s) {
    const ShardProgress& p = shards[s];
    if (p.got >= p.need) continue;
    std::vector<std::string> why;
    for (NodeId n : p.candidates) {
      auto it = failed.find(n);
      if (it != failed.end()) why.push_back(absl::StrCat("node ", n, ": ", it->second.ToString()));
    }
    if (p.candidates.empty()) why.push_back("no replicas");
    short_shards.push_back(absl::StrCat("shard ", s, ": ", p.got, " of ", p.need,
                                        " replicas answered (", absl::StrJoin(why, "; "), ")"));
  }
  if (!short_shards.empty() && !opts_.partial_response) {
    return absl::UnavailableError(absl::StrCat("read quorum missed on ", short_shards.size(),
                                               " shards: ", absl::StrJoin(short_shards, ", ")));
  }
  out.warnings = std::move(short_shards);
  for (auto& [node, list] : replies) {
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
