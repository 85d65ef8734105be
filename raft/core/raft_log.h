// raft/core/raft_log.h
//
// RaftLog: the core's log, the durable Storage plus an "unstable" tail (entries and possibly a
// snapshot) that the shell has not yet persisted (etcd's raftLog + unstable).
// Invariants: applied <= committed <= last_index(); committed never decreases.
// Thread-compatible (owned by one Raft).
#ifndef VIGIL_RAFT_CORE_RAFT_LOG_H_
#define VIGIL_RAFT_CORE_RAFT_LOG_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "raft/core/storage.h"
#include "raft/core/types.h"

namespace vigil::raft {

class RaftLog {
 public:
  explicit RaftLog(const Storage* storage);
  RaftLog(const RaftLog&) = delete;
  RaftLog& operator=(const RaftLog&) = delete;

  uint64_t first_index() const;
  uint64_t last_index() const;
  uint64_t last_term() const;
  uint64_t committed() const { return committed_; }
  uint64_t applied() const { return applied_; }

  // Term of entry i; 0 if i > last_index(); CompactedError() if i < first_index() - 1.
  absl::StatusOr<uint64_t> Term(uint64_t i) const;
  uint64_t TermOrZero(uint64_t i) const;
  bool MatchTerm(uint64_t i, uint64_t term) const;
  // Section 5.4.1: a candidate's log is at least as up to date as ours.
  bool IsUpToDate(uint64_t last_index, uint64_t last_term) const;

  // AppendEntries consistency check and append (section 5.3). If entry `index` has `log_term`,
  // appends `ents` (truncating a conflicting suffix), advances commit to min(commit, last new
  // index) and returns the last new index; nullopt otherwise.
  std::optional<uint64_t> MaybeAppend(uint64_t index, uint64_t log_term, uint64_t commit,
                                      const std::vector<Entry>& ents);
  // Appends at the end (or truncates and appends); returns the new last index.
  uint64_t Append(const std::vector<Entry>& ents);
  // Fast backtracking: the largest index <= `index` whose term is <= `term`, and its term.
  std::pair<uint64_t, uint64_t> FindConflictByTerm(uint64_t index, uint64_t term) const;

  // Entries in [lo, hi) up to ~max_bytes (at least one). CompactedError() if lo is compacted.
  absl::StatusOr<std::vector<Entry>> Slice(uint64_t lo, uint64_t hi, uint64_t max_bytes) const;
  // Committed entries not yet handed out for application, up to ~max_bytes.
  std::vector<Entry> NextCommittedEntries(uint64_t max_bytes) const;
  bool HasNextCommittedEntries() const;

  void CommitTo(uint64_t commit);
  // Commits up to `index` if entry `index` has `term` (section 5.4.2) and index > committed.
  bool MaybeCommit(uint64_t index, uint64_t term);
  void AppliedTo(uint64_t index);

  // Replaces the log by `snap` (unstable until the shell persists it).
  void Restore(const Snapshot& snap);

  const std::vector<Entry>& unstable_entries() const { return unstable_; }
  const std::optional<Snapshot>& unstable_snapshot() const { return unstable_snapshot_; }
  // The shell persisted entries up to (index, term) / the snapshot at `index`.
  void StableTo(uint64_t index, uint64_t term);
  void StableSnapTo(uint64_t index);
  // The last index known persisted (0 while a snapshot is pending).
  uint64_t last_stable_index() const {
    return unstable_snapshot_ ? 0 : unstable_offset_ - 1;
  }

 private:
  uint64_t FindConflict(const std::vector<Entry>& ents) const;
  void TruncateAndAppend(const std::vector<Entry>& ents);

  const Storage* const storage_;
  std::optional<Snapshot> unstable_snapshot_;
  // Entries not yet persisted; unstable_[i].index == unstable_offset_ + i.
  std::vector<Entry> unstable_;
  uint64_t unstable_offset_;
  uint64_t committed_;
  // Highest index handed out to the application (in a Ready that was Advance()d).
  uint64_t applied_;
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_CORE_RAFT_LOG_H_
