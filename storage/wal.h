// storage/wal.h
//
// Wal: the TSDB's write-ahead log. Records (an LSN and an opaque payload) go to
// numbered segment files; a record is durable once WaitDurable returns OK for
// its LSN. Concurrent callers share fdatasyncs (group commit, as leveldb's
// DBImpl::Write): whoever finds no write in flight writes everything queued so
// far with one write() and one fdatasync(), then wakes the others.
// Thread-safe. Record format: storage/FORMAT.md.
#ifndef VIGIL_STORAGE_WAL_H_
#define VIGIL_STORAGE_WAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace vigil::storage {

struct WalOptions {
  std::string dir;
  bool sync = true;                       // fdatasync before records count as durable
  uint64_t segment_bytes = 64ull << 20;  // start a new segment past this size
};

class Wal {
 public:
  using ReplayFn = std::function<absl::Status(uint64_t lsn, absl::string_view payload)>;

  // Opens (creating) the log in opts.dir, calls `replay` for every intact record
  // in LSN order, cuts off a torn tail of the newest segment, and starts a new
  // segment. kDataLoss if a record of an older segment is corrupt; replay's own
  // error stops Open and is returned.
  static absl::StatusOr<std::unique_ptr<Wal>> Open(const WalOptions& opts, const ReplayFn& replay);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Highest LSN found on Open (0 if none).
  uint64_t recovered_lsn() const { return recovered_lsn_; }

  // Queues a record. LSNs must increase across calls; callers that need records
  // in a particular order call Enqueue in that order (e.g. under their own lock).
  void Enqueue(uint64_t lsn, absl::string_view payload);
  // Returns once every record up to `lsn` is written (and synced if opts.sync).
  // kInternal if a write or sync failed: the log is then unusable.
  absl::Status WaitDurable(uint64_t lsn);

  // Writes everything queued and starts a new segment, so that every record
  // enqueued before the call is in an older segment.
  absl::Status Rotate();
  // Deletes closed segments whose records all have LSN < `lsn`.
  absl::Status DeleteSegmentsBefore(uint64_t lsn);

  // Closed segments (not counting the one being written) and bytes in all segments.
  int closed_segments();
  uint64_t total_bytes();
  // LSN of the newest record of the oldest segment (0 if only the current one).
  uint64_t oldest_segment_last_lsn();

 private:
  struct Segment {
    uint64_t number;
    uint64_t first_lsn;  // 0 while empty
    uint64_t last_lsn;
    uint64_t bytes;
  };

  explicit Wal(const WalOptions& opts) : opts_(opts) {}
  absl::Status OpenNewSegment() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes pending_ as the leader; mu_ is released around the I/O.
  absl::Status WriteQueued() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string SegmentPath(uint64_t number) const;

  // Constant after construction.
  const WalOptions opts_;
  uint64_t recovered_lsn_ = 0;

  absl::Mutex mu_;
  absl::CondVar cv_;
  std::string pending_ ABSL_GUARDED_BY(mu_);  // framed records not yet written
  std::string spare_ ABSL_GUARDED_BY(mu_);    // reused buffer for the next batch
  uint64_t pending_first_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t pending_last_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t durable_lsn_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a leader is doing I/O
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  int fd_ ABSL_GUARDED_BY(mu_) = -1;  // the current segment; written only by the leader
  std::vector<Segment> segments_ ABSL_GUARDED_BY(mu_);  // oldest first; back() is current
};

}  // namespace vigil::storage

#endif  // VIGIL_STORAGE_WAL_H_
