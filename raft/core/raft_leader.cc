// Raft, leader side: proposals, replication with flow control (section 10.2), commitment
// (section 3.6.2), ReadIndex (section 6.4), leadership transfer (section 3.10), membership
// changes one server at a time (section 4.1) and their effect on the configuration.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "raft/core/raft.h"

namespace vigil::raft {

const Progress* Raft::progress(uint64_t id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

absl::Status Raft::NotLeaderError() const {
  return absl::FailedPreconditionError(absl::StrCat("not the leader; leader=", leader_));
}

absl::StatusOr<LogPosition> Raft::Propose(std::string data) {
  if (role_ != Role::kLeader) return NotLeaderError();
  if (lead_transferee_ != kNone) {
    return absl::UnavailableError("leadership transfer in progress");
  }
  return AppendEntry(EntryType::kNormal, std::move(data));
}

absl::StatusOr<LogPosition> Raft::ProposeFenced(uint64_t term, std::string data) {
  if (role_ != Role::kLeader || term != term_) {
    return absl::FailedPreconditionError(
        absl::StrCat("fenced proposal for term ", term, " refused: term ", term_,
                     role_ == Role::kLeader ? " (this node leads)" : "", "; leader=", leader_));
  }
  return Propose(std::move(data));
}

absl::StatusOr<LogPosition> Raft::ProposeConfChange(const ConfChange& cc) {
  if (role_ != Role::kLeader) return NotLeaderError();
  if (lead_transferee_ != kNone) {
    return absl::UnavailableError("leadership transfer in progress");
  }
  if (cc.type == ConfChange::Type::kAddVoter) {
    return absl::InvalidArgumentError("add a learner, then promote it");
  }
  // The 2015 fix to single-server changes: a leader must commit an entry of its own term before
  // changing the configuration, or two leaders of different terms could each commit a change.
  if (!CommittedEntryInCurrentTerm()) {
    return absl::UnavailableError("leader has not committed an entry of its term yet");
  }
  if (LatestConfIndex() > log_.committed()) {
    return absl::UnavailableError("another configuration change is pending");
  }
  absl::StatusOr<ConfState> next = cc.ApplyTo(conf_state());
  if (!next.ok()) return next.status();
  if (cc.type == ConfChange::Type::kPromoteLearner) {
    const Progress* pr = progress(cc.node_id);
    if (pr == nullptr || pr->match < log_.committed()) {
      return absl::UnavailableError("learner has not caught up");
    }
  }
  return AppendEntry(EntryType::kConfChange, cc.Encode());
}

absl::StatusOr<LogPosition> Raft::AppendEntry(EntryType type, std::string data) {
  Entry e;
  e.term = term_;
  e.index = log_.last_index() + 1;
  e.type = type;
  e.data = std::move(data);
  LogPosition pos{e.index, e.term};
  std::vector<Entry> ents;
  ents.push_back(std::move(e));
  log_.Append(ents);
  UpdateConfHistory(ents);
  // The leader's own copy counts toward commitment only once persisted (SelfPersisted()).
  BcastAppend();
  return pos;
}

void Raft::SelfPersisted() {
  if (role_ != Role::kLeader) return;
  auto self = progress_.find(id_);
  if (self == progress_.end() || !self->second.MaybeUpdate(log_.last_stable_index())) return;
  if (MaybeCommit() && role_ == Role::kLeader) BcastAppend();
}

bool Raft::IsEarlySendable(const Message& m) const {
  switch (m.type) {
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      // Only a leader sends these, once per term; the term must already be on disk, or a crash
      // could let this node lead the same term again with a different log.
      return m.term == prev_hard_state_.term && vote_ == prev_hard_state_.vote;
    default:
      return false;
  }
}

// ---- Replication ----

bool Raft::SendAppend(uint64_t to, bool send_if_empty) {
  auto it = progress_.find(to);
  if (it == progress_.end() || to == id_) return false;
  Progress& pr = it->second;
  if (pr.IsPaused()) return false;
  absl::StatusOr<uint64_t> prev_term = log_.Term(pr.next - 1);
  absl::StatusOr<std::vector<Entry>> ents =
      prev_term.ok() ? log_.Slice(pr.next, log_.last_index() + 1, max_bytes_per_msg_)
                     : absl::StatusOr<std::vector<Entry>>(prev_term.status());
  Message m;
  m.to = to;
  if (!ents.ok()) {
    // The follower needs compacted entries: InstallSnapshot (section 5).
    if (!pr.recent_active) return false;
    Snapshot snap = storage_->GetSnapshot();
    if (snap.empty()) return false;
    m.type = MessageType::kSnapshot;
    m.snapshot = std::move(snap);
    pr.BecomeSnapshot(m.snapshot.metadata.index);
    Send(std::move(m));
    return true;
  }
  if (ents->empty() && !send_if_empty) return false;
  m.type = MessageType::kAppend;
  m.index = pr.next - 1;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  if (!ents->empty()) {
    uint64_t bytes = 0;
    for (const Entry& e : *ents) bytes += EntrySize(e);
    pr.SentEntries(ents->back().index, bytes);
  } else if (pr.state == Progress::State::kProbe) {
    pr.probe_sent = true;
  }
  m.entries = *std::move(ents);
  Send(std::move(m));
  return true;
}

void Raft::BcastAppend() {
  for (auto& [id, pr] : progress_) {
    if (id != id_) SendAppend(id, /*send_if_empty=*/true);
  }
}

void Raft::BcastHeartbeat(const std::string& context) {
  for (auto& [id, pr] : progress_) {
    if (id == id_) continue;
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = id;
    // Never tell a follower to commit past what it is known to hold.
    m.commit = std::min(pr.match, log_.committed());
    m.context = context;
    Send(std::move(m));
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_) {
    election_elapsed_ = 0;
    if (check_quorum_ && !QuorumActive()) {
      // Section 6.2: a leader cut off from a majority steps down.
      BecomeFollower(term_, kNone);
      return;
    }
    lead_transferee_ = kNone;  // a transfer that did not finish in an election timeout aborts
  }
  for (auto& [id, pr] : progress_) {
    if (pr.state == Progress::State::kSnapshot && ++pr.snapshot_ticks >= election_timeout_) {
      pr.BecomeProbe();  // the snapshot was probably lost; try again
    }
  }
  if (heartbeat_elapsed_ >= heartbeat_timeout_) {
    heartbeat_elapsed_ = 0;
    BcastHeartbeat(read_queue_.empty() ? std::string() : read_queue_.back());
  }
}

bool Raft::QuorumActive() {
  size_t active = 0;
  for (auto& [id, pr] : progress_) {
    if (id == id_) {
      if (!pr.learner) ++active;
      continue;
    }
    if (pr.recent_active && !pr.learner) ++active;
    pr.recent_active = false;
  }
  return active >= Quorum();
}

void Raft::StepLeader(const Message& m) {
  if (m.type == MessageType::kReadIndex) {
    HandleReadIndex(m.from, m.context);
    return;
  }
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  switch (m.type) {
    case MessageType::kAppendResponse:
      pr.recent_active = true;
      HandleAppendResponse(m, pr);
      return;
    case MessageType::kHeartbeatResponse:
      pr.recent_active = true;
      HandleHeartbeatResponse(m, pr);
      return;
    default:
      return;
  }
}

void Raft::HandleAppendResponse(const Message& m, Progress& pr) {
  if (m.reject) {
    uint64_t next_probe = m.reject_hint;
    if (m.log_term > 0) next_probe = log_.FindConflictByTerm(m.reject_hint, m.log_term).first;
    if (pr.MaybeDecrTo(m.index, next_probe)) {
      if (pr.state == Progress::State::kReplicate) pr.BecomeProbe();
      SendAppend(m.from, /*send_if_empty=*/true);
    }
    return;
  }
  bool was_paused = pr.IsPaused();
  if (!pr.MaybeUpdate(m.index)) return;
  switch (pr.state) {
    case Progress::State::kProbe:
      pr.BecomeReplicate();
      break;
    case Progress::State::kSnapshot:
      if (pr.match >= pr.pending_snapshot) {
        pr.BecomeProbe();
        pr.BecomeReplicate();
      }
      break;
    case Progress::State::kReplicate:
      pr.inflights.FreeLE(m.index);
      break;
  }
  if (MaybeCommit()) {
    if (role_ != Role::kLeader) return;  // stepped down after committing its own removal
    BcastAppend();
  } else if (was_paused) {
    SendAppend(m.from, /*send_if_empty=*/true);
  }
  // Keep the pipeline full.
  while (SendAppend(m.from, /*send_if_empty=*/false)) {
  }
  if (m.from == lead_transferee_ && pr.match == log_.last_index()) SendTimeoutNow(m.from);
}

void Raft::HandleHeartbeatResponse(const Message& m, Progress& pr) {
  pr.probe_sent = false;
  if (pr.state == Progress::State::kReplicate && pr.inflights.Full()) pr.inflights.FreeFirstOne();
  if (pr.match < log_.last_index()) SendAppend(m.from, /*send_if_empty=*/true);
  if (read_only_ == ReadOnlyOption::kSafe && !m.context.empty()) AckRead(m.from, m.context);
}

bool Raft::MaybeCommit() {
  std::vector<uint64_t> matches;
  for (uint64_t voter : conf_state().voters) {
    const Progress* pr = progress(voter);
    matches.push_back(pr == nullptr ? 0 : pr->match);
  }
  if (matches.empty()) return false;
  std::sort(matches.begin(), matches.end(), std::greater<uint64_t>());
  uint64_t candidate = matches[Quorum() - 1];
  bool had_term_commit = CommittedEntryInCurrentTerm();
  // Section 3.6.2 / figure 8: only entries of the current term commit by counting replicas.
  if (!log_.MaybeCommit(candidate, term_)) return false;
  if (!had_term_commit) {
    std::vector<std::pair<uint64_t, std::string>> waiting;
    waiting.swap(reads_before_commit_);
    for (auto& [from, ctx] : waiting) HandleReadIndex(from, ctx);
  }
  if (!conf_state().IsVoter(id_) && LatestConfIndex() <= log_.committed()) {
    // Section 4.2.2: a removed leader steps down once its removal commits; hand over at once to
    // a caught-up voter instead of waiting for an election timeout.
    for (uint64_t voter : conf_state().voters) {
      const Progress* pr = progress(voter);
      if (pr != nullptr && pr->match == log_.last_index()) {
        SendTimeoutNow(voter);
        break;
      }
    }
    BcastAppend();  // tell followers the new commit index
    BecomeFollower(term_, kNone);
  }
  return true;
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return role_ == Role::kLeader && log_.committed() >= term_start_index_;
}

// ---- ReadIndex ----

absl::Status Raft::ReadIndex(std::string context) {
  if (role_ == Role::kLeader) {
    HandleReadIndex(id_, context);
    return absl::OkStatus();
  }
  if (leader_ == kNone) return absl::FailedPreconditionError("no leader");
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = leader_;
  m.context = std::move(context);
  Send(std::move(m));
  return absl::OkStatus();
}

void Raft::HandleReadIndex(uint64_t from, const std::string& context) {
  const ConfState& cs = conf_state();
  if (cs.voters.size() == 1 && cs.IsVoter(id_)) {
    RespondRead(from, log_.committed(), context);
    return;
  }
  // Section 6.4 step 1: until an entry of this term commits, our commit index may be stale.
  if (!CommittedEntryInCurrentTerm()) {
    reads_before_commit_.emplace_back(from, context);
    return;
  }
  if (read_only_ == ReadOnlyOption::kLeaseBased) {
    RespondRead(from, log_.committed(), context);
    return;
  }
  if (pending_reads_.count(context) > 0) return;
  pending_reads_[context] = PendingRead{from, log_.committed(), {}};
  read_queue_.push_back(context);
  AckRead(id_, context);
  BcastHeartbeat(context);
}

void Raft::AckRead(uint64_t from, const std::string& context) {
  auto it = pending_reads_.find(context);
  if (it == pending_reads_.end()) return;
  std::vector<uint64_t>& acks = it->second.acks;
  if (std::find(acks.begin(), acks.end(), from) == acks.end()) acks.push_back(from);
  size_t voter_acks = 0;
  for (uint64_t id : acks) voter_acks += conf_state().IsVoter(id) ? 1 : 0;
  if (voter_acks < Quorum()) return;
  // A quorum acknowledged us after this request arrived, which also confirms every earlier one.
  while (!read_queue_.empty()) {
    std::string ctx = read_queue_.front();
    read_queue_.pop_front();
    auto pr = pending_reads_.find(ctx);
    PendingRead read = pr->second;
    pending_reads_.erase(pr);
    RespondRead(read.from, read.index, ctx);
    if (ctx == context) break;
  }
}

void Raft::RespondRead(uint64_t from, uint64_t index, const std::string& context) {
  if (from == id_) {
    read_states_.push_back(ReadState{index, context});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResponse;
  m.to = from;
  m.index = index;
  m.context = context;
  Send(std::move(m));
}

// ---- Leadership transfer ----

absl::Status Raft::TransferLeadership(uint64_t target) {
  if (role_ != Role::kLeader) return NotLeaderError();
  if (target == id_) return absl::OkStatus();
  const Progress* pr = progress(target);
  if (pr == nullptr || !conf_state().IsVoter(target)) {
    return absl::InvalidArgumentError(absl::StrCat("node ", target, " is not a voter"));
  }
  if (lead_transferee_ == target) return absl::OkStatus();
  lead_transferee_ = target;
  // The transfer must finish within an election timeout (checked in TickHeartbeat).
  election_elapsed_ = 0;
  if (pr->match == log_.last_index()) {
    SendTimeoutNow(target);
  } else {
    SendAppend(target, /*send_if_empty=*/true);
  }
  return absl::OkStatus();
}

void Raft::SendTimeoutNow(uint64_t to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  Send(std::move(m));
}

void Raft::ReportSnapshot(uint64_t id, bool ok) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(id);
  if (it == progress_.end() || it->second.state != Progress::State::kSnapshot) return;
  if (!ok) it->second.pending_snapshot = 0;
  it->second.BecomeProbe();
  it->second.probe_sent = true;  // wait for a heartbeat response before probing
}

void Raft::ReportUnreachable(uint64_t id) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(id);
  if (it != progress_.end() && it->second.state == Progress::State::kReplicate) {
    it->second.BecomeProbe();
  }
}

// ---- Membership ----

uint64_t Raft::LatestConfIndex() const {
  return conf_history_.empty() ? base_conf_index_ : conf_history_.back().index;
}

void Raft::UpdateConfHistory(const std::vector<Entry>& appended) {
  // Drop changes whose entries were truncated (section 4.1: a server reverts to the previous
  // configuration when its latest configuration entry is removed).
  // (Compacted entries were committed, so they were never truncated.)
  while (!conf_history_.empty()) {
    absl::StatusOr<uint64_t> t = log_.Term(conf_history_.back().index);
    if (!t.ok() || *t == conf_history_.back().term) break;
    conf_history_.pop_back();
  }
  for (const Entry& e : appended) {
    if (e.type != EntryType::kConfChange || e.index <= LatestConfIndex()) continue;
    if (!log_.MatchTerm(e.index, e.term)) continue;
    absl::StatusOr<ConfChange> cc = ConfChange::Decode(e.data);
    CHECK(cc.ok()) << "corrupt conf change at " << e.index << ": " << cc.status();
    absl::StatusOr<ConfState> next = cc->ApplyTo(conf_state());
    CHECK(next.ok()) << "conf change at " << e.index << " does not apply: " << next.status();
    conf_history_.push_back(ConfEntry{e.index, e.term, *std::move(next)});
  }
  SyncProgressWithConfig();
}

void Raft::SyncProgressWithConfig() {
  if (role_ != Role::kLeader) return;
  const ConfState& cs = conf_state();
  for (auto it = progress_.begin(); it != progress_.end();) {
    if (!cs.IsVoter(it->first) && !cs.IsLearner(it->first)) {
      if (it->first == lead_transferee_) lead_transferee_ = kNone;
      it = progress_.erase(it);
    } else {
      it->second.learner = cs.IsLearner(it->first);
      ++it;
    }
  }
  auto add = [&](uint64_t id, bool learner) {
    if (progress_.count(id) > 0) return;
    Progress pr(log_.last_index() + 1, max_inflight_msgs_, max_inflight_bytes_, learner);
    if (id == id_) pr.match = log_.last_stable_index();
    pr.recent_active = true;
    progress_.emplace(id, std::move(pr));
  };
  for (uint64_t id : cs.voters) add(id, false);
  for (uint64_t id : cs.learners) add(id, true);
}

}  // namespace vigil::raft
