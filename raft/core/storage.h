// raft/core/storage.h
//
// Storage: the core's read-only view of the durable log (etcd's raft.Storage). The shell writes to
// it (after persisting a Ready) and the core reads from it. MemoryStorage is an in-memory
// implementation for tests and the simulator; the shell's RocksDB log implements the same interface.
//
// Thread-compatible: the core and the shell use it from the node's single loop thread.
#ifndef VIGIL_RAFT_CORE_STORAGE_H_
#define VIGIL_RAFT_CORE_STORAGE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "raft/core/types.h"

namespace vigil::raft {

// kOutOfRange "compacted": the requested index precedes the first available entry.
absl::Status CompactedError();
bool IsCompacted(const absl::Status& s);

class Storage {
 public:
  virtual ~Storage() = default;
  virtual HardState GetHardState() const = 0;
  // Entries in [lo, hi), at least one if any exist, at most ~max_bytes in total.
  // CompactedError() if lo < FirstIndex(). CHECK-fails if hi > LastIndex() + 1.
  virtual absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                                     uint64_t max_bytes) const = 0;
  // Term of entry i, for FirstIndex()-1 <= i <= LastIndex(). CompactedError() below that range;
  // 0 above it.
  virtual absl::StatusOr<uint64_t> Term(uint64_t i) const = 0;
  virtual uint64_t FirstIndex() const = 0;
  virtual uint64_t LastIndex() const = 0;
  // The most recent snapshot (metadata.index >= FirstIndex()-1).
  virtual Snapshot GetSnapshot() const = 0;
};

class MemoryStorage final : public Storage {
 public:
  MemoryStorage();

  HardState GetHardState() const override { return hard_state_; }
  absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                             uint64_t max_bytes) const override;
  absl::StatusOr<uint64_t> Term(uint64_t i) const override;
  uint64_t FirstIndex() const override { return ents_[0].index + 1; }
  uint64_t LastIndex() const override { return ents_[0].index + ents_.size() - 1; }
  Snapshot GetSnapshot() const override { return snapshot_; }

  void SetHardState(const HardState& hs) { hard_state_ = hs; }
  // Appends entries, truncating any existing suffix they overwrite. Entries below FirstIndex()
  // are ignored. CHECK-fails on a gap.
  void Append(const std::vector<Entry>& entries);
  // Replaces the whole log by `snap`; kFailedPrecondition if it is older than the current one.
  absl::Status ApplySnapshot(const Snapshot& snap);
  // Records a snapshot of the state at `index` (<= LastIndex()) and returns it; the log is not
  // compacted. kFailedPrecondition if `index` is not newer than the current snapshot.
  absl::StatusOr<Snapshot> CreateSnapshot(uint64_t index, const ConfState& cs, std::string data);
  // Discards entries up to and including `compact_index` (which must be <= the snapshot's index).
  // CompactedError() if already compacted that far.
  absl::Status Compact(uint64_t compact_index);

  // Initial state of a founding member: conf change entries 1..n (term 1) adding `voters`, and
  // a hard state that commits them. Every founding member must be bootstrapped identically.
  void Bootstrap(const std::vector<uint64_t>& voters);

 private:
  HardState hard_state_;
  Snapshot snapshot_;
  // ents_[0] is a dummy holding the snapshot's index and term; real entries follow.
  // Invariant: ents_[i].index == ents_[0].index + i.
  std::vector<Entry> ents_;
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_CORE_STORAGE_H_
