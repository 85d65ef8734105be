// Raft: construction, roles, elections (sections 3.4, 9.6 pre-vote, 6.2 check-quorum), follower
// handling of AppendEntries / heartbeats / InstallSnapshot, and the Ready interface.
#include "raft/core/raft.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace vigil::raft {

Raft::Raft(const Config& c)
    : id_(c.id),
      storage_(c.storage),
      election_timeout_(c.election_ticks),
      heartbeat_timeout_(c.heartbeat_ticks),
      max_bytes_per_msg_(c.max_bytes_per_msg),
      max_inflight_msgs_(c.max_inflight_msgs),
      max_inflight_bytes_(c.max_inflight_bytes),
      max_committed_bytes_per_ready_(c.max_committed_bytes_per_ready),
      pre_vote_(c.pre_vote),
      check_quorum_(c.check_quorum),
      read_only_(c.read_only),
      rng_(c.seed * 0x9E3779B97F4A7C15ull + c.id),
      log_(c.storage) {
  CHECK_NE(id_, kNone) << "raft id must be non-zero";
  CHECK(storage_ != nullptr);
  CHECK_GT(heartbeat_timeout_, 0);
  CHECK_GT(election_timeout_, heartbeat_timeout_);
  CHECK_GT(max_inflight_msgs_, 0u);
  CHECK(read_only_ != ReadOnlyOption::kLeaseBased || check_quorum_)
      << "lease reads require check_quorum";

  Snapshot snap = storage_->GetSnapshot();
  base_conf_ = snap.metadata.conf_state;
  base_conf_index_ = snap.metadata.index;
  // Rebuild the configuration history from the conf change entries after the snapshot.
  for (uint64_t lo = snap.metadata.index + 1; lo <= storage_->LastIndex();) {
    absl::StatusOr<std::vector<Entry>> ents =
        storage_->Entries(lo, storage_->LastIndex() + 1, 64 << 20);
    CHECK(ents.ok()) << ents.status();
    UpdateConfHistory(*ents);
    lo = ents->back().index + 1;
  }

  HardState hs = storage_->GetHardState();
  CHECK_LE(hs.commit, log_.last_index()) << "hard state commit beyond the log";
  log_.CommitTo(hs.commit);
  uint64_t applied = std::max(c.applied, snap.metadata.index);
  if (applied > log_.applied()) log_.AppliedTo(applied);
  term_ = hs.term;
  vote_ = hs.vote;
  BecomeFollower(term_, kNone);
  prev_hard_state_ = hard_state();
  prev_soft_state_ = SoftState{leader_, role_};
}

const ConfState& Raft::conf_state() const {
  return conf_history_.empty() ? base_conf_ : conf_history_.back().conf;
}

ConfState Raft::ConfStateAt(uint64_t index) const {
  CHECK_GE(index, base_conf_index_) << "configuration history compacted";
  for (auto it = conf_history_.rbegin(); it != conf_history_.rend(); ++it) {
    if (it->index <= index) return it->conf;
  }
  return base_conf_;
}

bool Raft::Promotable() const {
  return conf_state().IsVoter(id_) && !log_.unstable_snapshot().has_value();
}

size_t Raft::Quorum() const { return conf_state().voters.size() / 2 + 1; }

void Raft::Send(Message m) {
  m.from = id_;
  switch (m.type) {
    case MessageType::kVote:
    case MessageType::kPreVote:
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
      CHECK_NE(m.term, 0u) << "vote messages carry an explicit term";
      break;
    default:
      m.term = term_;
  }
  msgs_.push_back(std::move(m));
}

// ---- Roles ----

void Raft::Reset(uint64_t term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNone;
  }
  leader_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  randomized_election_timeout_ =
      election_timeout_ + static_cast<int>(rng_() % static_cast<uint64_t>(election_timeout_));
  votes_.clear();
  progress_.clear();
  lead_transferee_ = kNone;
  reads_before_commit_.clear();
  pending_reads_.clear();
  read_queue_.clear();
}

void Raft::BecomeFollower(uint64_t term, uint64_t leader) {
  Reset(term);
  leader_ = leader;
  role_ = Role::kFollower;
}

void Raft::BecomePreCandidate() {
  CHECK(role_ != Role::kLeader) << "leader cannot become pre-candidate";
  // Neither the term nor the vote changes (section 9.6): a pre-vote disrupts nobody.
  votes_.clear();
  leader_ = kNone;
  role_ = Role::kPreCandidate;
}

void Raft::BecomeCandidate() {
  CHECK(role_ != Role::kLeader) << "leader cannot become candidate";
  Reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Raft::BecomeLeader() {
  CHECK(role_ == Role::kCandidate) << "only a candidate becomes leader";
  Reset(term_);
  leader_ = id_;
  role_ = Role::kLeader;
  SyncProgressWithConfig();
  // A no-op of the new term (section 8): commits every earlier entry once it commits.
  absl::StatusOr<LogPosition> noop = AppendEntry(EntryType::kNormal, "");
  CHECK(noop.ok()) << noop.status();
  term_start_index_ = noop->index;
}

// ---- Elections ----

void Raft::Campaign() { CampaignInternal(pre_vote_, /*transfer=*/false); }

void Raft::CampaignInternal(bool pre_vote, bool transfer) {
  if (!Promotable()) return;
  MessageType type;
  uint64_t vote_term;
  if (pre_vote) {
    BecomePreCandidate();
    type = MessageType::kPreVote;
    vote_term = term_ + 1;
  } else {
    BecomeCandidate();
    type = MessageType::kVote;
    vote_term = term_;
  }
  if (Poll(id_, true) > 0) {
    // Single-voter cluster.
    if (pre_vote) {
      CampaignInternal(false, transfer);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (uint64_t voter : conf_state().voters) {
    if (voter == id_) continue;
    Message m;
    m.type = type;
    m.to = voter;
    m.term = vote_term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    if (transfer) m.context = kTransferContext;
    Send(std::move(m));
  }
}

int Raft::Poll(uint64_t from, bool granted) {
  votes_.emplace(from, granted);
  size_t yes = 0, no = 0;
  for (uint64_t voter : conf_state().voters) {
    auto it = votes_.find(voter);
    if (it == votes_.end()) continue;
    (it->second ? yes : no)++;
  }
  if (yes >= Quorum()) return 1;
  if (no > conf_state().voters.size() - Quorum()) return -1;
  return 0;
}

void Raft::Tick() {
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    Campaign();
  }
}

void Raft::HandleVoteRequest(const Message& m) {
  bool pre = m.type == MessageType::kPreVote;
  MessageType resp = pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  // Section 3.6/5.2: one vote per term, only for a candidate at least as up to date.
  bool can_vote = vote_ == m.from || (vote_ == kNone && leader_ == kNone) || (pre && m.term > term_);
  Message r;
  r.type = resp;
  r.to = m.from;
  if (can_vote && log_.IsUpToDate(m.index, m.log_term)) {
    r.term = m.term;
    Send(std::move(r));
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.term = term_;
    r.reject = true;
    Send(std::move(r));
  }
}

void Raft::Step(const Message& m) {
  if (m.from == id_ || m.from == kNone) return;
  bool vote_request = m.type == MessageType::kVote || m.type == MessageType::kPreVote;
  if (m.term > term_) {
    if (vote_request) {
      bool force = m.context == kTransferContext;
      bool in_lease = check_quorum_ && leader_ != kNone && election_elapsed_ < election_timeout_;
      // Section 4.2.3: a server that recently heard from a leader ignores disruptive candidates.
      if (!force && in_lease) return;
    }
    if (m.type == MessageType::kPreVote) {
      // Pre-votes do not bump our term.
    } else if (m.type == MessageType::kPreVoteResponse && !m.reject) {
      // A granted pre-vote carries the term we would campaign in.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNone);
    }
  } else if (m.term < term_) {
    if ((check_quorum_ || pre_vote_) &&
        (m.type == MessageType::kHeartbeat || m.type == MessageType::kAppend)) {
      // Tells a stale leader (e.g. after a partition healed) about the newer term, so it steps
      // down even though our pre-votes never raised its term.
      Message r;
      r.type = MessageType::kAppendResponse;
      r.to = m.from;
      Send(std::move(r));
    } else if (m.type == MessageType::kPreVote) {
      Message r;
      r.type = MessageType::kPreVoteResponse;
      r.to = m.from;
      r.term = term_;
      r.reject = true;
      Send(std::move(r));
    }
    return;
  }

  if (vote_request) {
    HandleVoteRequest(m);
    return;
  }
  switch (role_) {
    case Role::kLeader: StepLeader(m); break;
    case Role::kCandidate:
    case Role::kPreCandidate: StepCandidate(m); break;
    case Role::kFollower: StepFollower(m); break;
  }
}

void Raft::StepCandidate(const Message& m) {
  MessageType my_resp =
      role_ == Role::kPreCandidate ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  switch (m.type) {
    case MessageType::kAppend:
      BecomeFollower(m.term, m.from);
      HandleAppend(m);
      return;
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      return;
    case MessageType::kSnapshot:
      BecomeFollower(m.term, m.from);
      HandleSnapshot(m);
      return;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse: {
      if (m.type != my_resp) return;
      int result = Poll(m.from, !m.reject);
      if (result > 0) {
        if (role_ == Role::kPreCandidate) {
          CampaignInternal(/*pre_vote=*/false, /*transfer=*/false);
        } else {
          BecomeLeader();
          BcastAppend();
        }
      } else if (result < 0) {
        BecomeFollower(term_, kNone);
      }
      return;
    }
    default:
      return;  // no leader to forward to; the client retries
  }
}

void Raft::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleAppend(m);
      return;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleHeartbeat(m);
      return;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleSnapshot(m);
      return;
    case MessageType::kTimeoutNow:
      // Section 3.10: the leader asks us to take over; skip pre-vote and the lease.
      CampaignInternal(/*pre_vote=*/false, /*transfer=*/true);
      return;
    case MessageType::kReadIndexResponse:
      read_states_.push_back(ReadState{m.index, m.context});
      return;
    default:
      return;
  }
}

// ---- Follower log handling ----

void Raft::HandleAppend(const Message& m) {
  Message r;
  r.type = MessageType::kAppendResponse;
  r.to = m.from;
  if (m.index < log_.committed()) {
    r.index = log_.committed();
    Send(std::move(r));
    return;
  }
  if (std::optional<uint64_t> last = log_.MaybeAppend(m.index, m.log_term, m.commit, m.entries)) {
    UpdateConfHistory(m.entries);
    r.index = *last;
    Send(std::move(r));
    return;
  }
  // Fast backtracking (section 5.3 optimization): point the leader at our last entry whose term
  // is <= the term it probed with, so it skips a whole conflicting term per round trip.
  uint64_t hint_index = std::min(m.index, log_.last_index());
  auto [index, term] = log_.FindConflictByTerm(hint_index, m.log_term);
  r.index = m.index;
  r.reject = true;
  r.reject_hint = index;
  r.log_term = term;
  Send(std::move(r));
}

void Raft::HandleHeartbeat(const Message& m) {
  log_.CommitTo(std::min(m.commit, log_.last_index()));
  Message r;
  r.type = MessageType::kHeartbeatResponse;
  r.to = m.from;
  r.context = m.context;
  Send(std::move(r));
}

void Raft::HandleSnapshot(const Message& m) {
  Message r;
  r.type = MessageType::kAppendResponse;
  r.to = m.from;
  r.index = Restore(m.snapshot) ? log_.last_index() : log_.committed();
  Send(std::move(r));
}

bool Raft::Restore(const Snapshot& snap) {
  const SnapshotMetadata& md = snap.metadata;
  if (md.index <= log_.committed()) return false;
  if (log_.MatchTerm(md.index, md.term)) {
    // We already have the snapshot's entries: just fast-forward the commit index.
    log_.CommitTo(md.index);
    return false;
  }
  log_.Restore(snap);
  base_conf_ = md.conf_state;
  base_conf_index_ = md.index;
  conf_history_.clear();
  return true;
}

// ---- Ready ----

bool Raft::HasReady() const {
  return !(SoftState{leader_, role_} == prev_soft_state_) || hard_state() != prev_hard_state_ ||
         !log_.unstable_entries().empty() || log_.unstable_snapshot().has_value() ||
         log_.HasNextCommittedEntries() || !msgs_.empty() || !read_states_.empty();
}

Ready Raft::TakeReady() {
  CHECK(!ready_outstanding_) << "TakeReady called twice without Advance";
  ready_outstanding_ = true;
  Ready rd;
  rd.soft_state = SoftState{leader_, role_};
  if (hard_state() != prev_hard_state_) rd.hard_state = hard_state();
  rd.entries = log_.unstable_entries();
  if (log_.unstable_snapshot()) rd.snapshot = *log_.unstable_snapshot();
  rd.committed_entries = log_.NextCommittedEntries(max_committed_bytes_per_ready_);
  for (Message& m : msgs_) {
    (IsEarlySendable(m) ? rd.early_messages : rd.messages).push_back(std::move(m));
  }
  msgs_.clear();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  return rd;
}

void Raft::Advance(const Ready& rd) {
  CHECK(ready_outstanding_) << "Advance without TakeReady";
  ready_outstanding_ = false;
  prev_soft_state_ = rd.soft_state;
  if (rd.hard_state) prev_hard_state_ = *rd.hard_state;
  if (!rd.snapshot.empty()) {
    log_.StableSnapTo(rd.snapshot.metadata.index);
    log_.AppliedTo(rd.snapshot.metadata.index);
  }
  if (!rd.entries.empty()) log_.StableTo(rd.entries.back().index, rd.entries.back().term);
  if (!rd.committed_entries.empty()) log_.AppliedTo(rd.committed_entries.back().index);
  SelfPersisted();
}

std::string Raft::DebugString() const {
  std::string s = absl::StrCat("node ", id_, " ", RoleName(role_), " term=", term_, " vote=", vote_,
                               " leader=", leader_, " last=", log_.last_index(), "/",
                               log_.last_term(), " commit=", log_.committed(),
                               " applied=", log_.applied());
  for (const auto& [id, pr] : progress_) absl::StrAppend(&s, "\n  ", id, ": ", pr.DebugString());
  return s;
}

}  // namespace vigil::raft
