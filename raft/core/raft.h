// raft/core/raft.h
//
// Raft: one server's consensus state machine, modeled on etcd-io/raft. Pure and deterministic:
// no threads, clocks, sockets or disks. The owner drives it with Tick() (one logical clock tick),
// Step() (a message from a peer), Propose()/ProposeConfChange()/ReadIndex()/TransferLeadership()
// (client requests), and drains its output with TakeReady()/Advance():
//
//   Ready rd = raft.TakeReady();
//   send rd.early_messages                                   // may overlap the fsync below
//   persist rd.snapshot, rd.entries, rd.hard_state (fsync)   // before rd.messages leave the node
//   send rd.messages
//   apply rd.snapshot then rd.committed_entries; serve rd.read_states once applied >= index
//   raft.Advance(rd);
//
// TakeReady() must not be called again before Advance(). Messages may be lost, duplicated or
// reordered by the network; the core tolerates all three.
//
// Membership changes are one server at a time (Ongaro's dissertation, 4.1): a configuration takes
// effect when its entry is appended to the log, and reverts if that entry is truncated. A leader
// proposes a change only after committing an entry of its own term (the 2015 fix) and when no
// other change is uncommitted.
//
// Thread-compatible: one thread at a time (the node's loop thread).
#ifndef VIGIL_RAFT_CORE_RAFT_H_
#define VIGIL_RAFT_CORE_RAFT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/core/progress.h"
#include "raft/core/raft_log.h"
#include "raft/core/storage.h"
#include "raft/core/types.h"

namespace vigil::raft {

enum class ReadOnlyOption : uint8_t {
  // ReadIndex confirmed by a heartbeat round to a quorum (section 6.4); no clock assumption.
  kSafe,
  // Lease reads: the leader answers from its commit index without a round trip. Only correct if
  // clocks drift less than the gap between election timeout and lease (see raft/README.md).
  // Requires check_quorum.
  kLeaseBased,
};

struct Config {
  uint64_t id = kNone;
  // Not owned; must outlive the Raft. The shell writes it, the core only reads it.
  const Storage* storage = nullptr;
  // A follower campaigns after a randomized [election_ticks, 2*election_ticks) ticks of silence.
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  // The last index the application has applied (restart); raised to the snapshot index.
  uint64_t applied = 0;
  uint64_t max_bytes_per_msg = 1 << 20;
  size_t max_inflight_msgs = 256;
  uint64_t max_inflight_bytes = 0;  // 0 = unlimited
  uint64_t max_committed_bytes_per_ready = 64 << 20;
  bool pre_vote = true;
  // A leader that has not heard from a quorum for an election timeout steps down; followers that
  // heard from a leader within the timeout ignore vote requests (disruptive server protection).
  bool check_quorum = true;
  ReadOnlyOption read_only = ReadOnlyOption::kSafe;
  // Seeds the election timeout randomization.
  uint64_t seed = 0;
};

struct SoftState {
  uint64_t leader = kNone;
  Role role = Role::kFollower;
  bool operator==(const SoftState& o) const { return leader == o.leader && role == o.role; }
};

// A read with `context` may be served once the local applied index reaches `index`.
struct ReadState {
  uint64_t index = 0;
  std::string context;
};

struct Ready {
  SoftState soft_state;
  // Set if it changed since the last Ready; persist it.
  std::optional<HardState> hard_state;
  // Entries to append to stable storage (may overwrite a suffix).
  std::vector<Entry> entries;
  // Non-empty if a snapshot must be installed (persist, then restore the state machine).
  Snapshot snapshot;
  // Entries to apply to the state machine, in order, after persisting.
  std::vector<Entry> committed_entries;
  // To send after persisting.
  std::vector<Message> messages;
  // Messages that need not wait for this Ready to be persisted: appends, heartbeats and
  // snapshots from a leader whose term and vote are already durable. The shell may send them
  // while it persists (dissertation 10.2.1: the leader writes its log in parallel with
  // replication), or together with `messages`. The leader counts its own log toward commitment
  // only up to what Advance() reports persisted, so an entry it has not written never commits on
  // its account; if it crashes before the write, followers may hold entries of its term that it
  // lost, which is safe because it can never lead that term again.
  std::vector<Message> early_messages;
  std::vector<ReadState> read_states;
};

// Where a proposal landed; it committed iff the entry applied at `index` has `term`.
struct LogPosition {
  uint64_t index = 0;
  uint64_t term = 0;
};

// Vote context marking an election triggered by leadership transfer; such votes bypass the
// check-quorum lease.
inline constexpr char kTransferContext[] = "transfer";

class Raft {
 public:
  // Restores term, vote, commit and configuration from config.storage. CHECK-fails on an invalid
  // config.
  explicit Raft(const Config& config);
  Raft(const Raft&) = delete;
  Raft& operator=(const Raft&) = delete;

  void Tick();
  // Handles a message from a peer; stale or unexpected messages are ignored.
  void Step(const Message& m);
  // Appends `data` on the leader. kFailedPrecondition (naming the leader) on a non-leader;
  // kUnavailable while a leadership transfer is in progress.
  absl::StatusOr<LogPosition> Propose(std::string data);
  // A fenced proposal: appended only if this node leads in `term` (the term under which the
  // proposer computed `data`), so the entry, if it ever commits, carries `term`. Never forwarded.
  // kFailedPrecondition (naming the leader) if this node does not lead or leads another term;
  // kUnavailable while a leadership transfer is in progress. The state machine completes the
  // fence at apply time by comparing the entry's term with the one the command names (see
  // StateMachine::Apply), which catches copies of the command that reached the log another way.
  absl::StatusOr<LogPosition> ProposeFenced(uint64_t term, std::string data);
  // As Propose, for a membership change. Also kUnavailable if the leader has not committed an
  // entry of its term, if another change is uncommitted, or if a promoted learner has not caught
  // up; kInvalidArgument if the change does not apply to the current configuration.
  absl::StatusOr<LogPosition> ProposeConfChange(const ConfChange& cc);
  // Starts an election now (no-op if this node may not campaign).
  void Campaign();
  // Requests a linearizable read. A ReadState with `context` appears in a later Ready once the
  // leader confirmed its leadership; it may never appear (retry with a new context).
  // kFailedPrecondition if no leader is known.
  absl::Status ReadIndex(std::string context);
  // Leader only: hands leadership to voter `target` (section 3.10). kFailedPrecondition if not
  // leader, kInvalidArgument if `target` is not a voter.
  absl::Status TransferLeadership(uint64_t target);
  // The shell reports a failed/finished snapshot send or an unreachable peer (leader only).
  void ReportSnapshot(uint64_t id, bool ok);
  void ReportUnreachable(uint64_t id);

  bool HasReady() const;
  Ready TakeReady();
  void Advance(const Ready& rd);

  uint64_t id() const { return id_; }
  uint64_t term() const { return term_; }
  uint64_t vote() const { return vote_; }
  uint64_t leader() const { return leader_; }
  Role role() const { return role_; }
  const RaftLog& log() const { return log_; }
  // The configuration in effect (the latest in the log).
  const ConfState& conf_state() const;
  // The configuration as of log index `index`, for building snapshots. `index` must be >= the
  // latest snapshot's (including one received but not yet persisted: do not snapshot then).
  ConfState ConfStateAt(uint64_t index) const;
  // Leader only; nullptr for non-members.
  const Progress* progress(uint64_t id) const;
  uint64_t lead_transferee() const { return lead_transferee_; }
  bool Promotable() const;
  // Leader that has applied an entry of its own term (its no-op): its state machine reflects
  // every entry committed before its term, so state computed from it is not stale (6.4's
  // first step, applied rather than merely committed).
  bool LeaderApplied() const {
    return role_ == Role::kLeader && term_start_index_ != 0 && log_.applied() >= term_start_index_;
  }
  std::string DebugString() const;
  // Makes this node forget it recently heard from a leader (as after an election timeout).
  void ExpireLeaseForTesting() { election_elapsed_ = election_timeout_; }

 private:
  struct ConfEntry {
    uint64_t index;
    uint64_t term;
    ConfState conf;
  };
  struct PendingRead {
    uint64_t from;
    uint64_t index;
    std::vector<uint64_t> acks;
  };

  // raft.cc: roles, elections, followers.
  void Reset(uint64_t term);
  void BecomeFollower(uint64_t term, uint64_t leader);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void CampaignInternal(bool pre_vote, bool transfer);
  // Records a vote and returns +1 won, -1 lost, 0 pending.
  int Poll(uint64_t from, bool granted);
  void TickElection();
  void TickHeartbeat();
  void HandleVoteRequest(const Message& m);
  void StepCandidate(const Message& m);
  void StepFollower(const Message& m);
  void HandleAppend(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  bool Restore(const Snapshot& snap);
  void Send(Message m);
  size_t Quorum() const;
  HardState hard_state() const { return HardState{term_, vote_, log_.committed()}; }
  // Whether `m` may leave before the Ready carrying it is persisted: a leader's append, heartbeat
  // or snapshot, sent while its term and vote are already durable (Advance()d).
  bool IsEarlySendable(const Message& m) const;
  // Leader: counts the persisted part of its own log toward commitment (after Advance()).
  void SelfPersisted();

  // raft_leader.cc: replication, commit, reads, transfer, membership.
  void StepLeader(const Message& m);
  void HandleAppendResponse(const Message& m, Progress& pr);
  void HandleHeartbeatResponse(const Message& m, Progress& pr);
  absl::StatusOr<LogPosition> AppendEntry(EntryType type, std::string data);
  bool SendAppend(uint64_t to, bool send_if_empty);
  void BcastAppend();
  void BcastHeartbeat(const std::string& context);
  bool MaybeCommit();
  bool QuorumActive();
  bool CommittedEntryInCurrentTerm() const;
  void HandleReadIndex(uint64_t from, const std::string& context);
  void RespondRead(uint64_t from, uint64_t index, const std::string& context);
  void AckRead(uint64_t from, const std::string& context);
  void SendTimeoutNow(uint64_t to);
  absl::Status NotLeaderError() const;
  // Membership: keep conf_history_ equal to the conf entries in the log, then sync progress.
  void UpdateConfHistory(const std::vector<Entry>& appended);
  void SyncProgressWithConfig();
  uint64_t LatestConfIndex() const;

  // Constant after construction.
  const uint64_t id_;
  const Storage* const storage_;
  const int election_timeout_;
  const int heartbeat_timeout_;
  const uint64_t max_bytes_per_msg_;
  const size_t max_inflight_msgs_;
  const uint64_t max_inflight_bytes_;
  const uint64_t max_committed_bytes_per_ready_;
  const bool pre_vote_;
  const bool check_quorum_;
  const ReadOnlyOption read_only_;

  std::mt19937_64 rng_;
  RaftLog log_;
  uint64_t term_ = 0;
  uint64_t vote_ = kNone;
  uint64_t leader_ = kNone;
  Role role_ = Role::kFollower;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  std::map<uint64_t, bool> votes_;
  // Leader only: one per member (voters and learners), including self while a member.
  std::map<uint64_t, Progress> progress_;
  uint64_t lead_transferee_ = kNone;
  // Leader only: index of the no-op appended on election (first entry of this term).
  uint64_t term_start_index_ = 0;

  // Configuration: the snapshot's, then one per conf change entry in the log (increasing index).
  ConfState base_conf_;
  uint64_t base_conf_index_ = 0;
  std::vector<ConfEntry> conf_history_;

  // ReadIndex (leader): requests waiting for the first commit of the term, then requests waiting
  // for a quorum of heartbeat acks, in arrival order.
  std::vector<std::pair<uint64_t, std::string>> reads_before_commit_;
  std::map<std::string, PendingRead> pending_reads_;
  std::deque<std::string> read_queue_;

  // Output not yet taken.
  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
  SoftState prev_soft_state_;
  HardState prev_hard_state_;
  bool ready_outstanding_ = false;
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_CORE_RAFT_H_
