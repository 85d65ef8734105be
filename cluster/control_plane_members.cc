// ControlPlane: membership changes, leadership transfer, the leader's
// reconcile loop (bootstrap, promotion, rebalancing, removal) and status.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cluster/control_plane.h"
#include "cluster/control_plane_machine.h"
#include "cluster/rebalancer.h"
#include "common/grpc_deadline.h"
#include "glog/logging.h"
#include "server/metrics.h"

namespace vigil::cluster {

namespace {

absl::Status NotLeader(NodeId leader) {
  return absl::FailedPreconditionError(absl::StrCat("not the leader; leader=", leader));
}

// Shards moving at once: each move's streams first wait out a settle delay, so
// the moves' fixed costs overlap.
constexpr int kMaxConcurrentMoves = 8;

bool InConf(const raft::ConfState& conf, NodeId id) {
  return conf.IsVoter(id) || conf.IsLearner(id);
}

}  // namespace

absl::Status ControlPlane::AddNode(NodeId id, const PeerAddress& address) {
  if (id == 0 || address.grpc_address.empty()) {
    return absl::InvalidArgumentError("add-node needs a non-zero id and a gRPC address");
  }
  return OnLeader([&](absl::Time) { return AddNodeLocal(id, address); },
                  [&](vigil::v1::ClusterAdmin::Stub* stub, grpc::ClientContext* ctx) {
                    vigil::v1::AddNodeRequest req;
                    req.set_id(id);
                    req.set_grpc_address(address.grpc_address);
                    req.set_http_address(address.http_address);
                    vigil::v1::AddNodeResponse resp;
                    return stub->AddNode(ctx, req, &resp);
                  });
}

absl::Status ControlPlane::RemoveNode(NodeId id, bool force) {
  return OnLeader([&](absl::Time) { return RemoveNodeLocal(id, force); },
                  [&](vigil::v1::ClusterAdmin::Stub* stub, grpc::ClientContext* ctx) {
                    vigil::v1::RemoveNodeRequest req;
                    req.set_id(id);
                    vigil::v1::RemoveNodeResponse resp;
                    return stub->RemoveNode(ctx, req, &resp);
                  });
}

absl::StatusOr<NodeId> ControlPlane::TransferLeader(NodeId target) {
  NodeId leader = raft::kNone;
  absl::Status s = OnLeader(
      [&](absl::Time) -> absl::Status {
        absl::StatusOr<NodeId> r = TransferLeaderLocal(target);
        if (r.ok()) leader = *r;
        return r.status();
      },
      [&](vigil::v1::ClusterAdmin::Stub* stub, grpc::ClientContext* ctx) {
        vigil::v1::TransferLeaderRequest req;
        req.set_target(target);
        vigil::v1::TransferLeaderResponse resp;
        grpc::Status gs = stub->TransferLeader(ctx, req, &resp);
        leader = resp.leader();
        return gs;
      });
  if (!s.ok()) return s;
  return leader;
}

absl::Status ControlPlane::ChangeConf(raft::ConfChange::Type type, NodeId id, std::string context,
                                      absl::Time deadline) {
  raft::ConfChange cc;
  cc.type = type;
  cc.node_id = id;
  cc.context = std::move(context);
  absl::Status s;
  // "another configuration change is pending" clears within a commit round trip.
  do {
    s = raft_->ProposeConfChangeAndWait(cc, deadline - options_.clock->MonotonicNow());
    if (!absl::IsUnavailable(s) || type == raft::ConfChange::Type::kPromoteLearner) return s;
    absl::SleepFor(absl::Milliseconds(20));
  } while (options_.clock->MonotonicNow() < deadline);
  return s;
}

absl::Status ControlPlane::AddNodeLocal(NodeId id, const PeerAddress& address) {
  raft::RaftStatus st = raft_->status();
  if (st.role != raft::Role::kLeader) return NotLeader(st.leader);
  absl::Time deadline = options_.clock->MonotonicNow() + options_.request_timeout;
  v1::Command cmd;
  v1::Member* m = cmd.mutable_add_member()->mutable_member();
  m->set_id(id);
  m->set_grpc_address(address.grpc_address);
  m->set_http_address(address.http_address);
  m->set_state(v1::JOINING);
  absl::StatusOr<v1::CommandResult> r = ProposeLocal(cmd, deadline);
  if (!r.ok()) return r.status();
  if (absl::Status s = ResultStatus(*r); !s.ok()) return s;
  if (InConf(raft_->status().conf, id)) return absl::OkStatus();
  return ChangeConf(raft::ConfChange::Type::kAddLearner, id, address.grpc_address, deadline);
}

absl::Status ControlPlane::RemoveNodeLocal(NodeId id, bool force) {
  raft::RaftStatus st = raft_->status();
  if (st.role != raft::Role::kLeader) return NotLeader(st.leader);
  absl::Time deadline = options_.clock->MonotonicNow() + options_.request_timeout;
  bool member = machine_->Read([id](const ClusterState& s) { return s.FindMember(id) != nullptr; });
  if (member) {
    v1::Command cmd;
    if (force) {
      cmd.mutable_remove_member()->set_id(id);
      cmd.mutable_remove_member()->set_force(true);
    } else {
      cmd.mutable_mark_member_state()->set_id(id);
      cmd.mutable_mark_member_state()->set_state(v1::LEAVING);
    }
    absl::StatusOr<v1::CommandResult> r = ProposeLocal(cmd, deadline);
    if (!r.ok()) return r.status();
    if (absl::Status s = ResultStatus(*r); !s.ok()) return s;
    // Not forced: the reconcile loop removes it from Raft once its shards moved.
    if (!force) return absl::OkStatus();
  }
  if (!InConf(raft_->status().conf, id)) {
    return member ? absl::OkStatus() : absl::NotFoundError(absl::StrCat("no member ", id));
  }
  return ChangeConf(raft::ConfChange::Type::kRemoveNode, id, "", deadline);
}

absl::StatusOr<NodeId> ControlPlane::TransferLeaderLocal(NodeId target) {
  raft::RaftStatus st = raft_->status();
  if (st.role != raft::Role::kLeader) return NotLeader(st.leader);
  if (target == raft::kNone) {
    for (NodeId v : st.conf.voters) {
      if (v != options_.node_id) {
        target = v;
        break;
      }
    }
    if (target == raft::kNone) return absl::FailedPreconditionError("no other voter");
  }
  if (target == options_.node_id) return target;
  absl::Status s = raft_->TransferLeadership(target);
  if (!s.ok()) return s;
  absl::Time deadline = options_.clock->MonotonicNow() + options_.request_timeout;
  while (options_.clock->MonotonicNow() < deadline) {
    st = raft_->status();
    if (st.leader == target) return target;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(absl::StrCat("node ", target, " did not take over"));
}

void ControlPlane::ReconcileLoop() {
  for (;;) {
    if (stop_loop_.WaitWithTimeout(options_.reconcile_interval)) return;
    ExportMetrics();
    if (options_.join && !options_.join_via.empty() && !joined_) joined_ = TryJoin();
    Reconcile();
  }
}

bool ControlPlane::TryJoin() {
  if (InConf(raft_->status().conf, options_.node_id)) return true;
  auto self = options_.peers.find(options_.node_id);
  if (self == options_.peers.end()) {
    LOG(ERROR) << "join: no address of this node (" << options_.node_id << ") to announce";
    return true;  // nothing to retry
  }
  auto stub = vigil::v1::ClusterAdmin::NewStub(
      grpc::CreateChannel(options_.join_via, grpc::InsecureChannelCredentials()));
  // The members' addresses first: the leader's first messages need an answer,
  // and this node learns the member list from the log only once it caught up.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(GrpcDeadline(options_.request_timeout));
    vigil::v1::ClusterStatusResponse resp;
    grpc::Status s = stub->Status(&ctx, vigil::v1::ClusterStatusRequest(), &resp);
    if (!s.ok()) {
      LOG(WARNING) << "join: cluster status from " << options_.join_via << ": "
                   << s.error_message() << " (retrying)";
      return false;
    }
    nlohmann::json st = nlohmann::json::parse(resp.json(), nullptr, false);
    if (st.is_object()) {
      for (const nlohmann::json& m : st.value("members", nlohmann::json::array())) {
        const NodeId id = m.value("id", NodeId{0});
        if (id != 0) machine_->AddPeer(id, m.value("grpc_address", std::string()));
      }
    }
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(GrpcDeadline(options_.request_timeout));
  vigil::v1::AddNodeRequest req;
  req.set_id(options_.node_id);
  req.set_grpc_address(self->second.grpc_address);
  req.set_http_address(self->second.http_address);
  vigil::v1::AddNodeResponse resp;
  grpc::Status s = stub->AddNode(&ctx, req, &resp);
  if (!s.ok()) {
    LOG(WARNING) << "join: asking " << options_.join_via << " to add node " << options_.node_id
                 << ": " << s.error_message() << " (retrying)";
    return false;
  }
  LOG(INFO) << "join: node " << options_.node_id << " added through " << options_.join_via;
  return true;
}

void ControlPlane::Reconcile() {
  raft::RaftStatus st = raft_->status();
  if (st.role != raft::Role::kLeader) return;
  absl::Time deadline = options_.clock->MonotonicNow() + options_.request_timeout;
  if (!machine_->Read([](const ClusterState& s) { return s.bootstrapped(); })) {
    if (options_.join || st.conf.voters.empty()) return;
    // The founding voters are the configuration Raft was bootstrapped with.
    v1::Command cmd;
    v1::Bootstrap* b = cmd.mutable_bootstrap();
    b->set_replication_factor(options_.replication_factor);
    for (NodeId id : st.conf.voters) {
      v1::Member* m = b->add_members();
      m->set_id(id);
      m->set_state(v1::ACTIVE);
      if (auto it = options_.peers.find(id); it != options_.peers.end()) {
        m->set_grpc_address(it->second.grpc_address);
        m->set_http_address(it->second.http_address);
      }
    }
    absl::StatusOr<v1::CommandResult> r = ProposeLocal(cmd, deadline);
    if (r.ok() && !ResultStatus(*r).ok()) LOG(WARNING) << "bootstrap: " << ResultStatus(*r);
    return;
  }
  ReconcileMembers(st, deadline);
  Rebalance(deadline);
}

void ControlPlane::ReconcileMembers(const raft::RaftStatus& st, absl::Time deadline) {
  for (NodeId learner : st.conf.learners) {
    // Refused until the learner has caught up; the next round tries again.
    (void)ChangeConf(raft::ConfChange::Type::kPromoteLearner, learner, "", deadline);
  }
  struct Todo {
    std::vector<NodeId> activate, remove;
  };
  Todo todo = machine_->Read([&st](const ClusterState& s) {
    Todo t;
    for (const auto& [id, m] : s.members()) {
      if (m.state() == v1::JOINING && st.conf.IsVoter(id)) t.activate.push_back(id);
      if (m.state() != v1::LEAVING) continue;
      bool listed = false;
      for (uint32_t i = 0; i < s.num_shards() && !listed; ++i) {
        for (NodeId n : s.shard(i).WriteSet()) listed |= n == id;
      }
      if (!listed) t.remove.push_back(id);
    }
    return t;
  });
  for (NodeId id : todo.activate) {
    v1::Command cmd;
    cmd.mutable_mark_member_state()->set_id(id);
    cmd.mutable_mark_member_state()->set_state(v1::ACTIVE);
    (void)ProposeLocal(cmd, deadline);
  }
  for (NodeId id : todo.remove) {
    v1::Command cmd;
    cmd.mutable_remove_member()->set_id(id);
    absl::StatusOr<v1::CommandResult> r = ProposeLocal(cmd, deadline);
    if (!r.ok() || !ResultStatus(*r).ok()) continue;
    if (InConf(raft_->status().conf, id)) {
      absl::Status s = ChangeConf(raft::ConfChange::Type::kRemoveNode, id, "", deadline);
      if (!s.ok()) LOG(WARNING) << "removing node " << id << " from raft: " << s;
    }
  }
}

void ControlPlane::Rebalance(absl::Time deadline) {
  if (!options_.stream_shard) return;
  std::map<uint32_t, uint64_t> streamed;
  {
    absl::MutexLock l(&streams_->mu);
    streamed = streams_->streamed;
  }
  struct Plan {
    RebalanceStep step;
    std::map<uint32_t, uint64_t> epochs;
  };
  Plan plan = machine_->Read([&streamed](const ClusterState& s) {
    RebalanceOptions ro;
    ro.max_concurrent_moves = kMaxConcurrentMoves;
    Plan p{NextRebalanceStep(s, streamed, ro), {}};
    for (const Transfer& t : p.step.streams) p.epochs[t.shard] = s.shard(t.shard).epoch;
    return p;
  });
  for (const v1::Command& cmd : plan.step.propose) {
    absl::StatusOr<v1::CommandResult> r = ProposeLocal(cmd, deadline);
    if (!r.ok()) return;  // lost leadership or timed out: plan again next round
  }
  std::map<uint32_t, std::vector<Transfer>> by_shard;
  for (const Transfer& t : plan.step.streams) by_shard[t.shard].push_back(t);
  for (auto& [shard, transfers] : by_shard) {
    {
      absl::MutexLock l(&streams_->mu);
      if (!streams_->running.insert(shard).second) continue;
    }
    struct Progress {
      absl::Mutex mu;
      size_t left;
      absl::Status status;
    };
    auto progress = std::make_shared<Progress>();
    progress->left = transfers.size();
    const uint64_t epoch = plan.epochs[shard];
    for (const Transfer& t : transfers) {
      options_.stream_shard(t, [book = streams_, progress, shard = shard,
                                epoch](absl::Status s) {
        {
          absl::MutexLock l(&progress->mu);
          progress->status.Update(s);
          if (--progress->left > 0) return;
        }
        absl::MutexLock l(&book->mu);
        book->running.erase(shard);
        if (progress->status.ok()) {
          book->streamed[shard] = epoch;
        } else {
          LOG(WARNING) << "streaming shard " << shard << ": " << progress->status;
        }
      });
    }
  }
}

nlohmann::json ControlPlane::StatusJson() const {
  raft::RaftStatus st = raft_status();
  nlohmann::json j = machine_->Read([](const ClusterState& s) { return s.ToJson(); });
  j["node_id"] = options_.node_id;
  j["leader"] = st.leader;
  j["term"] = st.term;
  j["role"] = raft::RoleName(st.role);
  j["commit_index"] = st.commit;
  j["raft_applied_index"] = st.applied;
  j["leader_changes"] = st.leader_changes;
  j["voters"] = st.conf.voters;
  j["learners"] = st.conf.learners;
  if (options_.stream_status) j["streams"] = options_.stream_status();
  return j;
}

nlohmann::json ControlPlane::DebugRaftJson() const {
  raft::RaftStatus st = raft_status();
  return {{"node", options_.node_id},
          {"term", st.term},
          {"role", raft::RoleName(st.role)},
          {"leader", st.leader},
          {"commit_index", st.commit},
          {"committed", machine_->CommittedJson()}};
}

void ControlPlane::ExportMetrics() {
  metrics::Registry* reg = options_.metrics;
  if (reg == nullptr) return;
  raft::RaftStatus st = raft_->status();
  reg->GetGauge("vigil_raft_term", "Current Raft term.")->Set(st.term);
  reg->GetGauge("vigil_raft_is_leader", "1 if this node is the Raft leader.")
      ->Set(st.role == raft::Role::kLeader ? 1 : 0);
  reg->GetGauge("vigil_raft_leader_id", "Node id of the known Raft leader (0: none).")
      ->Set(st.leader);
  reg->GetGauge("vigil_raft_commit_index", "Highest committed Raft log index.")->Set(st.commit);
  reg->GetGauge("vigil_raft_applied_index", "Highest applied Raft log index.")->Set(st.applied);
  if (st.leader_changes > exported_leader_changes_) {
    reg->GetCounter("vigil_raft_leader_changes_total", "Leader changes seen by this node.")
        ->Inc(st.leader_changes - exported_leader_changes_);
    exported_leader_changes_ = st.leader_changes;
  }
  ExportTransportMetrics(st.conf);
}

void ControlPlane::ExportTransportMetrics(const raft::ConfState& conf) {
  metrics::Registry* reg = options_.metrics;
  std::vector<NodeId> peers = conf.voters;
  peers.insert(peers.end(), conf.learners.begin(), conf.learners.end());
  for (NodeId id : peers) {
    if (id == options_.node_id) continue;
    const raft::PeerStats ps = transport_->peer_stats(id);
    const metrics::LabelPairs peer = {{"peer", std::to_string(id)}};
    const std::pair<const char*, uint64_t> counts[] = {
        {"vigil_raft_transport_sent_total", ps.sent},
        {"vigil_raft_transport_send_failures_total", ps.send_failures},
        {"vigil_raft_transport_dropped_total", ps.dropped},
        {"vigil_raft_transport_timeouts_total", ps.timeouts},
        {"vigil_raft_transport_snapshots_sent_total", ps.snapshots_sent},
        {"vigil_raft_transport_snapshot_failures_total", ps.snapshot_failures},
        {"vigil_raft_transport_queued_messages", ps.queued_messages},
    };
    for (const auto& [name, value] : counts) {
      reg->GetGauge(name, "Raft messages to a peer (raft::PeerStats).", peer)
          ->Set(static_cast<double>(value));
    }
  }
  const raft::InboundStats in = transport_->inbound_stats();
  reg->GetGauge("vigil_raft_transport_snapshots_received_total",
                "Raft snapshots received whole and verified.")
      ->Set(static_cast<double>(in.snapshots_received));
  reg->GetGauge("vigil_raft_transport_snapshots_rejected_total",
                "Raft snapshot transfers discarded (torn, oversized, corrupt).")
      ->Set(static_cast<double>(in.snapshots_rejected));
}

}  // namespace vigil::cluster
