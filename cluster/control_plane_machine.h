// cluster/control_plane_machine.h (internal to the control plane)
//
// ControlPlane::Machine: the raft::StateMachine that RaftNode drives. RaftNode
// calls it from its loop thread; readers on other threads use Read(), map() and
// CommittedJson(), which lock.
#ifndef VIGIL_CLUSTER_CONTROL_PLANE_MACHINE_H_
#define VIGIL_CLUSTER_CONTROL_PLANE_MACHINE_H_

#include <deque>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_format.h"
#include "cluster/control_plane.h"
#include "xxhash.h"

namespace vigil::cluster {

// The StateMachine RaftNode drives: ClusterState behind a mutex for readers on
// other threads, the map subscribers, the transport's peer list as membership
// changes commit, and the tail of the committed log for /debug/raft.
class ControlPlane::Machine final : public raft::StateMachine {
 public:
  Machine(NodeId self, const ClusterOptions& opts, size_t debug_entries)
      : self_(self), debug_entries_(debug_entries), state_(opts) {
    map_ = state_.shard_map();
  }

  // Before Raft starts.
  void set_transport(raft::GrpcTransport* t) { transport_ = t; }

  void AddPeer(NodeId id, const std::string& address) {
    if (id == self_ || address.empty()) return;
    absl::MutexLock l(&mu_);
    if (!peers_.insert(id).second) return;
    transport_->AddPeer(id, address);
  }

  std::string Apply(uint64_t index, absl::string_view data) override {
    v1::CommandResult r;
    {
      absl::MutexLock l(&mu_);
      r = state_.Apply(index, data);
    }
    PublishIfChanged();
    return r.SerializeAsString();
  }

  void OnCommitted(const raft::Entry& e) override {
    absl::MutexLock l(&mu_);
    uint64_t digest = XXH64(e.data.data(), e.data.size(), static_cast<uint64_t>(e.type));
    committed_.push_back({e.index, e.term, absl::StrFormat("%016x", digest)});
    while (committed_.size() > debug_entries_) committed_.pop_front();
  }

  void ApplyConfChange(uint64_t index, const raft::ConfChange& cc,
                       const raft::ConfState& conf) override {
    using T = raft::ConfChange::Type;
    if (cc.type == T::kAddVoter || cc.type == T::kAddLearner) {
      AddPeer(cc.node_id, cc.context);
    } else if (cc.type == T::kRemoveNode && cc.node_id != self_) {
      absl::MutexLock l(&mu_);
      if (peers_.erase(cc.node_id) > 0) transport_->RemovePeer(cc.node_id);
    }
  }

  absl::StatusOr<std::string> Snapshot() override {
    absl::MutexLock l(&mu_);
    return state_.Snapshot();
  }

  absl::Status Restore(absl::string_view data) override {
    absl::Status s;
    {
      absl::MutexLock l(&mu_);
      s = state_.Restore(data);
    }
    PublishIfChanged();
    return s;
  }

  // Runs `fn(state)` under the lock; `fn` must not block.
  template <typename F>
  auto Read(F fn) const {
    absl::MutexLock l(&mu_);
    return fn(state_);
  }

  std::shared_ptr<const ShardMap> map() const {
    absl::MutexLock l(&mu_);
    return map_;
  }

  void Subscribe(MapCallback cb) {
    absl::MutexLock l(&subs_mu_);
    cb(map());
    subs_.push_back(std::move(cb));
  }

  nlohmann::json CommittedJson() const {
    absl::MutexLock l(&mu_);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [index, term, digest] : committed_) out.push_back({index, term, digest});
    return out;
  }

 private:
  void PublishIfChanged() {
    std::shared_ptr<const ShardMap> changed;
    {
      absl::MutexLock l(&mu_);
      std::shared_ptr<const ShardMap> m = state_.shard_map();
      if (m != map_) changed = map_ = std::move(m);
    }
    if (changed == nullptr) return;
    absl::MutexLock l(&subs_mu_);
    for (const MapCallback& cb : subs_) cb(changed);
  }

  const NodeId self_;
  const size_t debug_entries_;
  raft::GrpcTransport* transport_ = nullptr;

  mutable absl::Mutex mu_;
  ClusterState state_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const ShardMap> map_ ABSL_GUARDED_BY(mu_);
  std::set<NodeId> peers_ ABSL_GUARDED_BY(mu_);
  std::deque<std::tuple<uint64_t, uint64_t, std::string>> committed_ ABSL_GUARDED_BY(mu_);

  absl::Mutex subs_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<MapCallback> subs_ ABSL_GUARDED_BY(subs_mu_);
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_CONTROL_PLANE_MACHINE_H_
