// raft/log_store.h
//
// LogStore: the durable Raft log, hard state and latest snapshot of one node, in RocksDB (format
// in raft/FORMAT.md). Every record carries an XXH64 checksum; Open() verifies them all and
// returns kDataLoss on any mismatch, so a node with a corrupt log refuses to start instead of
// serving. Save() is one fsync'd write batch. Reads are served from an in-memory copy of the
// (compacted) log, which is why LogStore is also the core's Storage.
//
// Thread-compatible: used from the RaftNode loop thread only.
#ifndef VIGIL_RAFT_LOG_STORE_H_
#define VIGIL_RAFT_LOG_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "raft/core/storage.h"
#include "raft/core/types.h"
#include "rocksdb/db.h"

namespace vigil::raft {

class LogStore final : public Storage {
 public:
  // Opens or creates the store under `dir`. kDataLoss if any record fails its checksum or the
  // log has a gap; kInternal for other RocksDB failures.
  static absl::StatusOr<std::unique_ptr<LogStore>> Open(const std::string& dir);
  LogStore(const LogStore&) = delete;
  LogStore& operator=(const LogStore&) = delete;

  // Storage (the core's view).
  HardState GetHardState() const override { return mem_.GetHardState(); }
  absl::StatusOr<std::vector<Entry>> Entries(uint64_t lo, uint64_t hi,
                                             uint64_t max_bytes) const override {
    return mem_.Entries(lo, hi, max_bytes);
  }
  absl::StatusOr<uint64_t> Term(uint64_t i) const override { return mem_.Term(i); }
  uint64_t FirstIndex() const override { return mem_.FirstIndex(); }
  uint64_t LastIndex() const override { return mem_.LastIndex(); }
  Snapshot GetSnapshot() const override { return mem_.GetSnapshot(); }

  // Durably persists a Ready's snapshot (replacing the log), entries (truncating any suffix they
  // overwrite) and hard state, in one fsync'd batch. A failure here is fatal to the node.
  // A batch that only moves the hard state's commit index is written without fsync (etcd's
  // MustSync): a power loss may then take the stored commit index back, which is safe, since the
  // committed entries themselves were synced and the commit index is learned again from the
  // leader. Nothing to save writes nothing.
  absl::Status Save(const std::optional<HardState>& hs, const std::vector<Entry>& entries,
                    const Snapshot& snapshot);
  // fsyncs performed by Save() and unsynced Save() writes, for tests and metrics.
  uint64_t synced_saves() const { return synced_saves_; }
  uint64_t unsynced_saves() const { return unsynced_saves_; }
  // Records a snapshot of the application state at `index` and drops entries up to
  // `compact_index` (<= index).
  absl::Status CreateSnapshotAndCompact(uint64_t index, const ConfState& cs, std::string data,
                                        uint64_t compact_index);
  // Writes the founding configuration (MemoryStorage::Bootstrap) if the log is empty.
  absl::Status Bootstrap(const std::vector<uint64_t>& voters);
  bool empty() const { return mem_.LastIndex() == 0 && mem_.GetHardState().term == 0; }

 private:
  explicit LogStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}
  absl::Status Load();
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync = true);

  std::unique_ptr<rocksdb::DB> db_;
  // Mirror of what was written (durable, except possibly the latest commit-only hard state);
  // the source for reads.
  MemoryStorage mem_;
  uint64_t synced_saves_ = 0;
  uint64_t unsynced_saves_ = 0;
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_LOG_STORE_H_
