// raft/core/types.h
//
// Plain value types of the Raft core: log entries, persistent state, snapshots, configurations and
// the messages peers exchange. No behaviour beyond small helpers; safe to copy between threads.
#ifndef VIGIL_RAFT_CORE_TYPES_H_
#define VIGIL_RAFT_CORE_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vigil::raft {

// Node ids are non-zero; kNone means "no node" (no leader, no vote).
inline constexpr uint64_t kNone = 0;

enum class EntryType : uint8_t { kNormal = 0, kConfChange = 1 };

struct Entry {
  uint64_t term = 0;
  uint64_t index = 0;
  EntryType type = EntryType::kNormal;
  // Application bytes for kNormal (empty for the leader's no-op), an encoded ConfChange otherwise.
  std::string data;

  bool operator==(const Entry& o) const {
    return term == o.term && index == o.index && type == o.type && data == o.data;
  }
};

// Approximate in-memory/wire size of an entry, used for batching limits.
inline uint64_t EntrySize(const Entry& e) { return e.data.size() + 24; }

// What must be durable before any message that depends on it leaves the node.
struct HardState {
  uint64_t term = 0;
  uint64_t vote = kNone;
  // Persisted so a restarted node re-applies committed entries; may lag the true commit index.
  uint64_t commit = 0;

  bool operator==(const HardState& o) const {
    return term == o.term && vote == o.vote && commit == o.commit;
  }
  bool operator!=(const HardState& o) const { return !(*this == o); }
};

// A cluster configuration. Invariant: voters and learners are sorted and disjoint.
struct ConfState {
  std::vector<uint64_t> voters;
  std::vector<uint64_t> learners;

  bool IsVoter(uint64_t id) const;
  bool IsLearner(uint64_t id) const;
  bool operator==(const ConfState& o) const {
    return voters == o.voters && learners == o.learners;
  }
};

// One server at a time (Ongaro's dissertation, section 4.1): a configuration takes effect on a
// server as soon as its entry is appended to that server's log, committed or not.
struct ConfChange {
  enum class Type : uint8_t {
    // Only for bootstrapping the initial configuration (log entries 1..n written by Bootstrap).
    kAddVoter = 0,
    kAddLearner = 1,
    // A learner becomes a voter; the leader refuses until the learner has caught up.
    kPromoteLearner = 2,
    kRemoveNode = 3,
  };
  Type type = Type::kAddLearner;
  uint64_t node_id = kNone;
  // Opaque to the core (e.g. the new node's address); travels in the log entry.
  std::string context;

  std::string Encode() const;
  static absl::StatusOr<ConfChange> Decode(absl::string_view data);
  // The configuration after applying this change to `cs`; kInvalidArgument if it does not apply
  // (adding an existing member, promoting a non-learner, removing a non-member or the last voter).
  absl::StatusOr<ConfState> ApplyTo(const ConfState& cs) const;
};

struct SnapshotMetadata {
  uint64_t index = 0;
  uint64_t term = 0;
  // The configuration as of `index`.
  ConfState conf_state;
};

struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;
  bool empty() const { return metadata.index == 0; }
};

enum class MessageType : uint8_t {
  kAppend,          // AppendEntries (log_term/index name the entry preceding `entries`)
  kAppendResponse,  // index = last matching index, or the rejected index with a hint
  kVote,
  kVoteResponse,
  kPreVote,
  kPreVoteResponse,
  kHeartbeat,
  kHeartbeatResponse,
  kSnapshot,    // InstallSnapshot
  kTimeoutNow,  // leadership transfer: the receiver campaigns at once
  kReadIndex,   // a follower asks the leader for a read index (context identifies the read)
  kReadIndexResponse,
};

const char* MessageTypeName(MessageType t);

struct Message {
  MessageType type = MessageType::kAppend;
  uint64_t to = kNone;
  uint64_t from = kNone;
  uint64_t term = 0;
  uint64_t log_term = 0;
  uint64_t index = 0;
  std::vector<Entry> entries;
  uint64_t commit = 0;
  Snapshot snapshot;
  bool reject = false;
  // On a rejected append: the follower's best guess of the index the leader should probe next.
  uint64_t reject_hint = 0;
  // Read-index request id, or kTransferContext on a vote triggered by leadership transfer.
  std::string context;
};

std::string DebugString(const Message& m);

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role r);

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_CORE_TYPES_H_
