// cluster/control_plane_machine.h (internal to the control plane)
//
// ControlPlane::Machine: the raft::StateMachine that RaftNode drives. RaftNode
// calls it from its loop thread; readers on other threads use Read(), map() and
// CommittedJson(), which lock.
#ifndef VIGIL_CLUSTER_CONTROL_PLANE_MACHINE_H_
#define VIGIL_CLUSTER_CONTROL_PLANE_MACHINE_H_

#include <atomic>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cluster/control_plane.h"
#include "glog/logging.h"
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

  std::string Apply(uint64_t index, uint64_t term, absl::string_view data) override {
    if (std::optional<v1::CommandResult> fenced = FenceRejection(term, data)) {
      return fenced->SerializeAsString();
    }
    v1::CommandResult r;
    std::vector<v1::Register> written;
    {
      absl::MutexLock l(&mu_);
      r = state_.Apply(index, data);
      if (r.code() == 0 && has_register_subs_.load(std::memory_order_acquire)) {
        WrittenRegister(data, r, &written);
      }
    }
    AddMemberPeers();
    PublishIfChanged();
    NotifyRegisters(written);
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
    AddMemberPeers();
    PublishIfChanged();
    if (s.ok() && has_register_subs_.load(std::memory_order_acquire)) {
      NotifyRegisters(AllRegisters());
    }
    return s;
  }

  // ControlPlane::SubscribeRegisters.
  void SubscribeRegisters(absl::string_view prefix, RegisterCallback cb) {
    absl::MutexLock l(&subs_mu_);
    // Before reading the state: a write applied meanwhile then waits for subs_mu_
    // and reaches `cb` too (perhaps twice, never lost).
    has_register_subs_.store(true, std::memory_order_release);
    for (const v1::Register& r : AllRegisters()) {
      if (absl::StartsWith(r.key(), prefix)) cb(r.key(), r.value());
    }
    register_subs_.emplace_back(std::string(prefix), std::move(cb));
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
  // A fenced command in an entry of another term than its own (a copy that a
  // later leader appended) is refused, identically on every node.
  static std::optional<v1::CommandResult> FenceRejection(uint64_t term, absl::string_view data) {
    v1::Command cmd;
    if (!cmd.ParseFromArray(data.data(), static_cast<int>(data.size()))) return std::nullopt;
    if (cmd.fence_term() == 0 || cmd.fence_term() == term) return std::nullopt;
    v1::CommandResult r;
    r.set_code(static_cast<int>(absl::StatusCode::kFailedPrecondition));
    r.set_message(absl::StrCat("fenced command of term ", cmd.fence_term(),
                               " refused in an entry of term ", term));
    return r;
  }

  // The transport learns every committed member's address (a joined node knows
  // no other member from its flags).
  void AddMemberPeers() {
    std::vector<std::pair<NodeId, std::string>> add;
    {
      absl::MutexLock l(&mu_);
      for (const auto& [id, m] : state_.members()) {
        if (id != self_ && !peers_.contains(id)) add.emplace_back(id, m.grpc_address());
      }
    }
    for (const auto& [id, address] : add) AddPeer(id, address);
  }

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

  // The register a successful Put / CompareAndSet in `data` wrote, appended to
  // `out` unless a later command overwrote it (a session's retried command
  // answers with its first result).
  void WrittenRegister(absl::string_view data, const v1::CommandResult& r,
                       std::vector<v1::Register>* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    v1::Command cmd;
    if (!cmd.ParseFromArray(data.data(), static_cast<int>(data.size()))) return;
    std::string key;
    if (cmd.has_put()) {
      key = cmd.put().key();
    } else if (cmd.has_compare_and_set()) {
      key = cmd.compare_and_set().key();
    } else {
      return;
    }
    std::optional<RegisterValue> v = state_.GetRegister(key);
    if (!v.has_value() || v->version != r.version()) return;
    v1::Register& reg = out->emplace_back();
    reg.set_key(std::move(key));
    reg.set_value(v->value);
    reg.set_version(v->version);
  }

  // Every register, by key (from a snapshot of the state).
  std::vector<v1::Register> AllRegisters() const {
    v1::Snapshot snap;
    {
      absl::MutexLock l(&mu_);
      CHECK(snap.ParseFromString(state_.Snapshot()));
    }
    return {snap.registers().begin(), snap.registers().end()};
  }

  void NotifyRegisters(const std::vector<v1::Register>& regs) {
    if (regs.empty()) return;
    absl::MutexLock l(&subs_mu_);
    for (const v1::Register& r : regs) {
      for (const auto& [prefix, cb] : register_subs_) {
        if (absl::StartsWith(r.key(), prefix)) cb(r.key(), r.value());
      }
    }
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
  std::vector<std::pair<std::string, RegisterCallback>> register_subs_ ABSL_GUARDED_BY(subs_mu_);
  std::atomic<bool> has_register_subs_{false};
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_CONTROL_PLANE_MACHINE_H_
