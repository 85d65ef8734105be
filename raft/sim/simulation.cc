#include "raft/sim/simulation.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"

namespace vigil::raft::sim {
namespace {

constexpr int kElectionTicks = 10;
constexpr size_t kMaxNetwork = 3000;
constexpr size_t kMaxMembers = 7;
constexpr size_t kMaxNodesEver = 16;

}  // namespace

Simulation::Simulation(const SimOptions& options)
    : options_(options), rng_(options.seed * 0x2545F4914F6CDD1Dull + 17) {
  size_t n = options.scenario == Scenario::kFigure8 ? 5 : 3 + Rand(5);
  std::vector<uint64_t> ids;
  for (uint64_t id = 1; id <= n; ++id) ids.push_back(id);
  next_node_id_ = n + 1;
  for (uint64_t id : ids) {
    Node& node = nodes_[id];
    node.id = id;
    node.storage = std::make_unique<MemoryStorage>();
    node.storage->Bootstrap(ids);
    StartNode(node);
  }
  for (uint64_t c = 1; c <= 3; ++c) {
    clients_.push_back(Client{c, 1, 1 + Rand(n), absl::StrCat("k", Rand(3))});
  }
  Trace(absl::StrCat("seed ", options.seed, ": ", n, " nodes"));
}

void Simulation::Trace(std::string line) {
  trace_.push_back(absl::StrCat("step ", step_, ": ", line));
  if (!options_.full_trace && trace_.size() > 2 * kTraceTail) {
    trace_.erase(trace_.begin(), trace_.end() - kTraceTail);
  }
}

void Simulation::Fail(const std::string& what) {
  if (!what.empty() && violation_.empty()) {
    violation_ = what;
    Trace(absl::StrCat("VIOLATION: ", what));
  }
}

void Simulation::StartNode(Node& n) {
  Config c;
  c.id = n.id;
  c.storage = n.storage.get();
  c.election_ticks = kElectionTicks;
  c.heartbeat_ticks = 1;
  // Small limits so batching, flow control and snapshots are exercised.
  c.max_inflight_msgs = 1 + (options_.seed + n.id) % 4;
  c.max_bytes_per_msg = 64 + (options_.seed * 7 + n.id) % 256;
  if (options_.scenario == Scenario::kFigure8) {
    c.max_inflight_msgs = 1;
    c.max_bytes_per_msg = 1;  // one entry per message
  }
  c.pre_vote = options_.seed % 4 != 0;
  c.check_quorum = options_.seed % 3 != 0;
  c.seed = options_.seed * 1000 + n.id;
  n.raft = std::make_unique<Raft>(c);
  n.machine = KvMachine();
  Snapshot snap = n.storage->GetSnapshot();
  if (!snap.empty()) {
    CHECK(n.machine.Restore(snap.data, snap.metadata.index).ok());
    Fail(invariants_.CheckApplied(n.id, snap.metadata.index, n.machine.chain()));
  }
  // Re-checks the whole committed log against what the cluster committed.
  n.last_commit = 0;
  n.up = true;
}

Simulation::Node* Simulation::RandomNode(bool want_up) {
  std::vector<Node*> pick;
  for (auto& [id, n] : nodes_) {
    if (!n.removed && n.up == want_up) pick.push_back(&n);
  }
  return pick.empty() ? nullptr : pick[Rand(pick.size())];
}

Simulation::Node* Simulation::Leader() {
  Node* best = nullptr;
  for (auto& [id, n] : nodes_) {
    if (!n.up || n.raft->role() != Role::kLeader) continue;
    if (best == nullptr || n.raft->term() > best->raft->term()) best = &n;
  }
  return best;
}

absl::Status Simulation::Run() {
  for (step_ = 0; step_ < options_.steps && violation_.empty(); ++step_) {
    Node* leader = options_.scenario == Scenario::kFigure8 ? Leader() : nullptr;
    uint64_t leader_id = leader != nullptr ? leader->id : kNone;
    uint64_t commit_before = leader != nullptr ? leader->raft->log().committed() : 0;
    Step();
    CheckNodes();
    if (leader_id != kNone && violation_.empty()) {
      MaybeCrashCommittingLeader(leader_id, commit_before);
    }
  }
  stats_.max_commit = invariants_.max_commit();
  if (!violation_.empty()) return absl::InternalError(violation_);
  return absl::OkStatus();
}

namespace {

enum Action {
  kDeliver, kReady, kTickAll, kTickOne, kWrite, kRead, kCrash, kCrashInReady, kRestart,
  kPartition, kMembership, kTransfer, kCompact, kCrashLeader, kNumActions
};

// Relative weights per profile. Calm runs make long progress between faults; stormy runs have
// frequent partitions, crashes and elections (short-lived leaders are what produce divergent
// logs, the interesting case for figure 8 and log matching).
constexpr int kWeights[3][kNumActions] = {
    // deliver ready tickall tick1 write read crash crashrdy restart part memb xfer compact
    // crashleader
    {5300, 2200, 600, 100, 1000, 400, 5, 5, 60, 10, 20, 15, 250, 0},
    {5300, 2200, 600, 100, 1000, 400, 10, 10, 80, 20, 20, 15, 250, 0},
    {4600, 2000, 900, 300, 1000, 400, 40, 40, 250, 150, 40, 60, 250, 0},
};

// The figure-8 scenario: no membership, transfers or compaction (they only add noise here),
// leaders crash often and crashed nodes come back quickly, so terms are short and logs diverge.
constexpr int kFigure8Weights[kNumActions] = {
    4000, 2000, 900, 300, 800, 0, 0, 20, 500, 100, 0, 0, 0, 60,
};

// After a step that moved the leader's commit index, the chance to crash it at once.
constexpr double kCrashOnCommit = 0.3;

}  // namespace

void Simulation::Step() {
  const int* weights = options_.scenario == Scenario::kFigure8 ? kFigure8Weights
                                                               : kWeights[options_.seed % 3];
  int total = 0;
  for (int a = 0; a < kNumActions; ++a) total += weights[a];
  int r = static_cast<int>(Rand(total));
  int action = 0;
  while (r >= weights[action]) r -= weights[action++];
  switch (action) {
    case kDeliver:
      DeliverMessage();
      break;
    case kReady: {
      std::vector<Node*> ready;
      for (auto& [id, n] : nodes_) {
        if (n.up && n.raft->HasReady()) ready.push_back(&n);
      }
      if (!ready.empty()) ProcessReady(*ready[Rand(ready.size())], CrashPoint::kNone);
      break;
    }
    case kTickAll:
      TickAll();
      break;
    case kTickOne:
      if (Node* n = RandomNode(true)) {
        Trace(absl::StrCat("tick ", n->id));
        n->raft->Tick();
      }
      break;
    case kWrite:
      ClientWrite();
      break;
    case kRead:
      ClientRead();
      break;
    case kCrash:
      if (Node* n = RandomNode(true)) Crash(*n);
      break;
    case kCrashInReady: {
      // Crash in the middle of handling a Ready: after sending the early messages but before
      // persisting, or after persisting but before sending the rest.
      Node* n = RandomNode(true);
      if (n != nullptr && n->raft->HasReady()) {
        ProcessReady(*n, Chance(0.5) ? CrashPoint::kBeforePersist : CrashPoint::kAfterPersist);
      }
      break;
    }
    case kRestart:
      if (Node* n = RandomNode(false)) {
        Trace(absl::StrCat("restart ", n->id));
        StartNode(*n);
      }
      break;
    case kPartition:
      Partition();
      break;
    case kMembership:
      ChangeMembership();
      break;
    case kTransfer:
      TransferLeader();
      break;
    case kCompact:
      if (Node* n = RandomNode(true)) Compact(*n);
      break;
    case kCrashLeader:
      CrashLeader();
      break;
  }
}

void Simulation::CrashLeader() {
  if (Node* leader = Leader()) Crash(*leader);
}

void Simulation::MaybeCrashCommittingLeader(uint64_t leader, uint64_t commit_before) {
  Node& n = nodes_.at(leader);
  if (!n.up || n.raft->role() != Role::kLeader) return;
  if (n.raft->log().committed() <= commit_before || !Chance(kCrashOnCommit)) return;
  Trace(absl::StrCat("leader ", leader, " committed ", n.raft->log().committed(), ": crash it"));
  Crash(n);
}

void Simulation::DeliverMessage() {
  // Mostly in order, but any of the oldest few may overtake the others (reordering), and a
  // delayed message waits until it is due.
  size_t window = std::min<size_t>(network_.size(), 6);
  if (window == 0) return;
  size_t i = Rand(window);
  if (network_[i].deliver_at > step_) return;
  Message m = network_[i].msg;
  bool duplicate = Chance(0.03);
  if (!duplicate) network_.erase(network_.begin() + i);
  auto to = nodes_.find(m.to);
  bool lost = to == nodes_.end() || !to->second.up || Chance(0.05) ||
              (!partition_.empty() && partition_[m.from] != partition_[m.to]);
  Trace(absl::StrCat(lost ? "drop " : (duplicate ? "dup " : "deliver "), DebugString(m)));
  if (!lost) {
    if (m.type == MessageType::kSnapshot) ++stats_.snapshots_sent;
    to->second.raft->Step(m);
  }
  // A transport that learns the outcome of a snapshot transfer tells the sender (sometimes).
  if (m.type == MessageType::kSnapshot && Chance(0.5)) {
    auto from = nodes_.find(m.from);
    if (from != nodes_.end() && from->second.up) {
      Trace(absl::StrCat("report snapshot ", m.from, "->", m.to, lost ? " failed" : " ok"));
      from->second.raft->ReportSnapshot(m.to, !lost);
    }
  }
}

void Simulation::TickAll() {
  Trace("tick all");
  for (auto& [id, n] : nodes_) {
    if (n.up) n.raft->Tick();
  }
}

void Simulation::SendAll(std::vector<Message>& msgs) {
  for (Message& m : msgs) {
    if (network_.size() >= kMaxNetwork) network_.pop_front();
    int delay = Chance(0.02) ? static_cast<int>(Rand(300)) : static_cast<int>(Rand(5));
    network_.push_back(InFlight{std::move(m), step_ + delay});
  }
}

void Simulation::ProcessReady(Node& n, CrashPoint crash) {
  Ready rd = n.raft->TakeReady();
  Trace(absl::StrCat("ready ", n.id, ": ", rd.entries.size(), " entries, ",
                     rd.committed_entries.size(), " committed, ", rd.early_messages.size(), "+",
                     rd.messages.size(), " msgs",
                     rd.snapshot.empty() ? "" : absl::StrCat(", snapshot@", rd.snapshot.metadata.index),
                     crash == CrashPoint::kBeforePersist  ? ", crash before persisting"
                     : crash == CrashPoint::kAfterPersist ? ", then crash"
                                                          : ""));
  // 0. The leader's appends leave while it persists its own log (they do not wait for it).
  SendAll(rd.early_messages);
  if (crash == CrashPoint::kBeforePersist) {
    Crash(n);
    return;
  }
  // 1. Persist (one atomic, fsync'd write in the real shell).
  if (!rd.snapshot.empty()) {
    CHECK(n.storage->ApplySnapshot(rd.snapshot).ok());
  }
  if (!rd.entries.empty()) {
    absl::StatusOr<uint64_t> prev = n.storage->Term(rd.entries.front().index - 1);
    Fail(invariants_.CheckPersist(n.id, rd.entries, prev.ok() ? *prev : Invariants::kUnknownTerm));
    n.storage->Append(rd.entries);
  }
  if (rd.hard_state) {
    Fail(invariants_.CheckPersistedCommit(n.id, n.storage->GetHardState().commit,
                                          rd.hard_state->commit));
    n.storage->SetHardState(*rd.hard_state);
  }
  if (crash == CrashPoint::kAfterPersist) {
    Crash(n);
    return;
  }
  // 2. Send.
  SendAll(rd.messages);
  // 3. Apply.
  if (!rd.snapshot.empty()) {
    const SnapshotMetadata& md = rd.snapshot.metadata;
    CHECK(n.machine.Restore(rd.snapshot.data, md.index).ok());
    Fail(invariants_.CheckApplied(n.id, md.index, n.machine.chain()));
  }
  ApplyCommitted(n, rd.committed_entries);
  for (const ReadState& rs : rd.read_states) {
    auto it = reads_.find(rs.context);
    if (it == reads_.end() || it->second.node != n.id) continue;
    it->second.ready = true;
    it->second.read_index = rs.index;
    Fail(invariants_.CheckRead(n.id, rs.index, it->second.min_index));
  }
  // 4. Advance.
  n.raft->Advance(rd);
  ServeReads(n);
  if (n.removed) Shutdown(n);
}

void Simulation::ApplyCommitted(Node& n, const std::vector<Entry>& committed) {
  for (const Entry& e : committed) {
    if (e.index != n.machine.applied() + 1) {
      Fail(absl::StrCat("node ", n.id, " applied index ", e.index, " after ",
                        n.machine.applied()));
      return;
    }
    KvMachine::Result res = n.machine.Apply(e);
    Fail(invariants_.CheckApplied(n.id, e.index, n.machine.chain()));
    if (res.is_command) {
      for (Client& c : clients_) {
        if (c.id == res.command.client && c.seq == res.command.seq) {
          Trace(absl::StrCat("client ", c.id, " seq ", c.seq, " done at ", e.index,
                             res.effective ? "" : " (duplicate)"));
          ++c.seq;
          ++stats_.commands_completed;
        }
      }
    }
    if (e.type == EntryType::kConfChange) {
      absl::StatusOr<ConfChange> cc = ConfChange::Decode(e.data);
      CHECK(cc.ok());
      if (cc->type == ConfChange::Type::kRemoveNode) {
        // The removal committed: the operator shuts the node down for good.
        Node& gone = nodes_.at(cc->node_id);
        if (!gone.removed) {
          Trace(absl::StrCat("node ", gone.id, " removed, shutting down"));
          gone.removed = true;
          if (gone.up && &gone != &n) Shutdown(gone);  // n finishes this Ready first
        }
      }
    }
  }
}

void Simulation::ServeReads(Node& n) {
  for (auto it = reads_.begin(); it != reads_.end();) {
    PendingRead& r = it->second;
    if (r.node == n.id && r.ready && n.machine.applied() >= r.read_index) {
      Trace(absl::StrCat("read ", it->first, " served on ", n.id, " at ", n.machine.applied()));
      ++stats_.reads_served;
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void Simulation::ClientWrite() {
  Client& c = clients_[Rand(clients_.size())];
  // A client retries its outstanding command only after a timeout (or a redirect).
  if (c.proposed_seq == c.seq && step_ - c.proposed_at < 150) return;
  auto it = nodes_.find(c.target);
  if (it == nodes_.end() || !it->second.up) {
    Node* n = RandomNode(true);
    if (n != nullptr) c.target = n->id;
    return;
  }
  Command cmd{c.id, c.seq, c.key};
  absl::StatusOr<LogPosition> pos = it->second.raft->Propose(cmd.Encode());
  Trace(absl::StrCat("client ", c.id, " proposes seq ", c.seq, " at ", c.target, ": ",
                     pos.ok() ? absl::StrCat("index ", pos->index) : pos.status().ToString()));
  if (pos.ok()) {
    c.proposed_seq = c.seq;
    c.proposed_at = step_;
  } else if (absl::IsFailedPrecondition(pos.status())) {
    uint64_t leader = it->second.raft->leader();
    c.target = leader != kNone ? leader : 1 + Rand(next_node_id_ - 1);
  }
}

void Simulation::ClientRead() {
  Node* n = RandomNode(true);
  if (n == nullptr) return;
  std::string ctx = absl::StrCat("r", next_read_++);
  absl::Status s = n->raft->ReadIndex(ctx);
  Trace(absl::StrCat("read ", ctx, " at ", n->id, ": ", s.ToString()));
  if (s.ok()) reads_[ctx] = PendingRead{n->id, invariants_.max_commit()};
}

void Simulation::Crash(Node& n) {
  Trace(absl::StrCat("crash ", n.id));
  ++stats_.crashes;
  Shutdown(n);
}

void Simulation::Shutdown(Node& n) {
  n.up = false;
  n.raft.reset();
  for (auto it = reads_.begin(); it != reads_.end();) {
    it = it->second.node == n.id ? reads_.erase(it) : std::next(it);
  }
}

void Simulation::Partition() {
  if (!partition_.empty()) {
    Trace("heal partition");
    partition_.clear();
    return;
  }
  std::vector<std::string> groups;
  uint64_t isolated = 1 + Rand(next_node_id_ - 1);
  bool single = Chance(0.5);
  for (auto& [id, n] : nodes_) {
    int g = single ? (id == isolated ? 1 : 0) : static_cast<int>(Rand(2));
    partition_[id] = g;
    groups.push_back(absl::StrCat(id, ":", g));
  }
  Trace(absl::StrCat("partition ", absl::StrJoin(groups, " ")));
}

void Simulation::ChangeMembership() {
  Node* leader = Leader();
  if (leader == nullptr) return;
  ConfState cs = leader->raft->conf_state();
  ConfChange cc;
  if (!cs.learners.empty() && Chance(0.5)) {
    cc = ConfChange{ConfChange::Type::kPromoteLearner, cs.learners[Rand(cs.learners.size())], ""};
  } else if (cs.voters.size() + cs.learners.size() < kMaxMembers &&
             nodes_.size() < kMaxNodesEver && Chance(0.5)) {
    cc = ConfChange{ConfChange::Type::kAddLearner, next_node_id_, ""};
  } else {
    std::vector<uint64_t> members = cs.learners;
    if (cs.voters.size() > 3) members.insert(members.end(), cs.voters.begin(), cs.voters.end());
    if (members.empty()) return;
    cc = ConfChange{ConfChange::Type::kRemoveNode, members[Rand(members.size())], ""};
  }
  absl::StatusOr<LogPosition> pos = leader->raft->ProposeConfChange(cc);
  Trace(absl::StrCat("conf change ", cc.Encode(), " at ", leader->id, ": ",
                     pos.ok() ? absl::StrCat("index ", pos->index) : pos.status().ToString()));
  if (!pos.ok()) return;
  ++stats_.conf_changes;
  if (cc.type == ConfChange::Type::kAddLearner) {
    Node& n = nodes_[next_node_id_];
    n.id = next_node_id_++;
    n.storage = std::make_unique<MemoryStorage>();
    StartNode(n);
  }
}

void Simulation::TransferLeader() {
  Node* leader = Leader();
  if (leader == nullptr) return;
  const std::vector<uint64_t>& voters = leader->raft->conf_state().voters;
  if (voters.empty()) return;
  uint64_t target = voters[Rand(voters.size())];
  absl::Status s = leader->raft->TransferLeadership(target);
  Trace(absl::StrCat("transfer ", leader->id, " -> ", target, ": ", s.ToString()));
}

void Simulation::Compact(Node& n) {
  uint64_t applied = n.raft->log().applied();
  uint64_t snap = n.storage->GetSnapshot().metadata.index;
  // Not while an installed snapshot is still unpersisted: the state is about to be replaced.
  if (applied < snap + 8 || n.machine.applied() != applied ||
      n.raft->log().unstable_snapshot().has_value()) {
    return;
  }
  CHECK(n.storage->CreateSnapshot(applied, n.raft->ConfStateAt(applied), n.machine.Serialize())
            .ok());
  // Keep a few entries behind the snapshot, as a real node would for slightly lagging peers.
  uint64_t compact = applied - Rand(4);
  if (compact >= n.storage->FirstIndex()) CHECK(n.storage->Compact(compact).ok());
  Trace(absl::StrCat("compact ", n.id, " snapshot@", applied, " first=", n.storage->FirstIndex()));
}

void Simulation::CheckNodes() {
  for (auto& [id, n] : nodes_) {
    if (!n.up) continue;
    const Raft& r = *n.raft;
    if (r.role() == Role::kLeader) Fail(invariants_.CheckLeader(r));
    Fail(invariants_.CheckCommit(r, &n.last_commit));
    if (r.log().applied() > r.log().committed()) {
      Fail(absl::StrCat("node ", id, " applied beyond commit"));
    }
  }
}

}  // namespace vigil::raft::sim
