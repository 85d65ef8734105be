// cluster/testing/fake_nodes.h
//
// FakeNodes: an in-memory cluster of replicas behind the ReplicaClient and
// ReplicaReader interfaces, for tests. Each node can be up, down (kUnavailable),
// rejecting (kInvalidArgument), holding (callbacks kept until released) or slow
// (advances the FakeClock by a delay and fails past the deadline). A node given
// a shard map (SetMap) fences writes with it as a real replica does
// (CheckWriteViews). Everything runs on the caller's thread; no sleeping.
#ifndef VIGIL_CLUSTER_TESTING_FAKE_NODES_H_
#define VIGIL_CLUSTER_TESTING_FAKE_NODES_H_

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "cluster/cluster_state.h"
#include "cluster/replica_client.h"
#include "common/clock.h"
#include "absl/strings/str_cat.h"
#include "common/matcher.h"

namespace vigil::cluster {

inline uint32_t ModShardOf(uint64_t hash, uint32_t num_shards) { return hash % num_shards; }

inline std::shared_ptr<const ShardMap> MapOf(std::vector<ShardPlacement> shards) {
  auto m = std::make_shared<ShardMap>();
  m->shards = std::move(shards);
  return m;
}

// Every shard on `replicas`, epoch 1.
inline std::shared_ptr<const ShardMap> UniformMap(uint32_t shards, std::vector<NodeId> replicas) {
  return MapOf(std::vector<ShardPlacement>(shards, ShardPlacement{std::move(replicas), {}, 1}));
}

class FakeNodes final : public ReplicaClient, public ReplicaReader {
 public:
  enum class Mode { kUp, kDown, kReject, kHold };

  FakeNodes(FakeClock* clock, uint32_t num_shards) : clock_(clock), num_shards_(num_shards) {}

  void SetMode(NodeId n, Mode m) { mode_[n] = m; }
  void SetDelay(NodeId n, absl::Duration d) { delay_[n] = d; }
  // The map `n` fences writes with (null: none, accepts every view).
  void SetMap(NodeId n, std::shared_ptr<const ShardMap> map) { maps_[n] = std::move(map); }
  // Writes `n` refused as stale so far.
  int fenced(NodeId n) const { return Lookup(fenced_, n); }

  // Stores samples on `n` directly (to make replicas diverge).
  void Add(NodeId n, const Series& s) {
    auto& dst = data_[n][s.labels];
    for (const Sample& x : s.samples) dst.emplace(x.t, x.v);
  }
  // Everything `n` holds, sorted by labels.
  std::vector<Series> Data(NodeId n) const {
    std::vector<Series> out;
    auto it = data_.find(n);
    if (it == data_.end()) return out;
    for (const auto& [labels, samples] : it->second) {
      Series s{labels, {}};
      for (const auto& [t, v] : samples) s.samples.push_back({t, v});
      out.push_back(std::move(s));
    }
    return out;
  }
  int64_t SampleCount(NodeId n) const {
    int64_t c = 0;
    for (const Series& s : Data(n)) c += s.samples.size();
    return c;
  }

  bool up(NodeId n) const { return ModeOf(n) == Mode::kUp; }

  // Shards `n` holds data of, ascending.
  std::vector<uint32_t> ListShards(NodeId n) const {
    std::set<uint32_t> out;
    for (const Series& s : Data(n)) out.insert(ModShardOf(s.labels.Hash(), num_shards_));
    return std::vector<uint32_t>(out.begin(), out.end());
  }
  // What a move stream does: the union of `from`'s shard data into `to`.
  void CopyShard(NodeId from, NodeId to, uint32_t shard) {
    for (const Series& s : Data(from)) {
      if (ModShardOf(s.labels.Hash(), num_shards_) == shard) Add(to, s);
    }
  }
  void DropShard(NodeId n, uint32_t shard) {
    auto& series = data_[n];
    for (auto it = series.begin(); it != series.end();) {
      if (ModShardOf(it->first.Hash(), num_shards_) == shard) {
        it = series.erase(it);
      } else {
        ++it;
      }
    }
  }

  int writes(NodeId n) const { return Lookup(writes_, n); }
  int reads(NodeId n) const { return Lookup(reads_, n); }
  // Shards asked of `n` over all reads.
  int shards_read(NodeId n) const { return Lookup(shards_read_, n); }
  const std::vector<ReplicaWriteRequest>& write_requests(NodeId n) { return write_log_[n]; }
  size_t held() const { return held_.size(); }

  // Answers the held writes of `n`: stored and OK, or kUnavailable.
  void Release(NodeId n, bool succeed) {
    std::vector<std::pair<ReplicaWriteRequest, WriteCallback>> mine;
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->first == n) {
        mine.push_back(std::move(it->second));
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [req, done] : mine) {
      if (succeed) {
        done(Store(n, req));
      } else {
        done(absl::UnavailableError("released as failed"));
      }
    }
  }

  void Write(NodeId n, ReplicaWriteRequest req, absl::Time deadline,
             WriteCallback done) override {
    ++writes_[n];
    write_log_[n].push_back(req);
    absl::Status s = Admit(n, deadline);
    if (!s.ok()) return done(s);
    if (auto m = maps_.find(n); m != maps_.end()) {
      s = CheckWriteViews(req, m->second.get());
      if (!s.ok()) {
        ++fenced_[n];
        return done(s);
      }
    }
    if (ModeOf(n) == Mode::kHold) {
      held_.emplace_back(n, std::make_pair(std::move(req), std::move(done)));
      return;
    }
    done(Store(n, req));
  }

  void Read(NodeId n, const ReplicaReadRequest& req, absl::Time deadline,
            ReadCallback done) override {
    ++reads_[n];
    shards_read_[n] += req.shards.size();
    absl::Status s = Admit(n, deadline);
    if (!s.ok()) return done(s);
    ReplicaReadReply reply;
    std::set<std::string> strings;
    for (const Series& series : Data(n)) {
      const uint32_t shard = ModShardOf(series.labels.Hash(), num_shards_);
      if (!std::binary_search(req.shards.begin(), req.shards.end(), shard)) continue;
      if (!MatchesAll(req.matchers, series.labels)) continue;
      Series trimmed{series.labels, {}};
      for (const Sample& x : series.samples) {
        if (x.t >= req.mint && x.t <= req.maxt) trimmed.samples.push_back(x);
      }
      if (trimmed.samples.empty()) continue;
      for (const Label& l : series.labels) {
        if (req.kind == ReplicaReadRequest::Kind::kLabelNames) strings.insert(l.name);
        if (req.kind == ReplicaReadRequest::Kind::kLabelValues && l.name == req.label_name) {
          strings.insert(l.value);
        }
      }
      if (req.kind == ReplicaReadRequest::Kind::kSelect) reply.series.push_back(std::move(trimmed));
    }
    reply.strings.assign(strings.begin(), strings.end());
    done(std::move(reply));
  }

 private:
  static int Lookup(const std::map<NodeId, int>& m, NodeId n) {
    auto it = m.find(n);
    return it == m.end() ? 0 : it->second;
  }
  Mode ModeOf(NodeId n) const {
    auto it = mode_.find(n);
    return it == mode_.end() ? Mode::kUp : it->second;
  }
  absl::Status Admit(NodeId n, absl::Time deadline) {
    auto d = delay_.find(n);
    if (d != delay_.end()) clock_->Advance(d->second);
    if (clock_->MonotonicNow() > deadline) return absl::DeadlineExceededError("fake deadline");
    switch (ModeOf(n)) {
      case Mode::kDown: return absl::UnavailableError(absl::StrCat("node ", n, " is down"));
      case Mode::kReject: return absl::InvalidArgumentError("bad labels");
      default: return absl::OkStatus();
    }
  }
  ReplicaWriteReply Store(NodeId n, const ReplicaWriteRequest& req) {
    ReplicaWriteReply reply;
    for (const ShardWrite& w : req.shards) {
      storage::AppendResult r;
      for (const Series& s : *w.series) {
        auto& dst = data_[n][s.labels];
        for (const Sample& x : s.samples) {
          if (dst.emplace(x.t, x.v).second) {
            ++r.appended;
          } else {
            ++r.duplicates;
          }
        }
      }
      reply.shards.push_back(r);
    }
    return reply;
  }

  FakeClock* const clock_;
  const uint32_t num_shards_;
  std::map<NodeId, Mode> mode_;
  std::map<NodeId, absl::Duration> delay_;
  std::map<NodeId, std::shared_ptr<const ShardMap>> maps_;
  std::map<NodeId, int> fenced_;
  std::map<NodeId, std::map<Labels, std::map<int64_t, double>>> data_;
  std::map<NodeId, int> writes_, reads_, shards_read_;
  std::map<NodeId, std::vector<ReplicaWriteRequest>> write_log_;
  std::vector<std::pair<NodeId, std::pair<ReplicaWriteRequest, WriteCallback>>> held_;
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_TESTING_FAKE_NODES_H_
