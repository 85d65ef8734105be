// storage/tsdb_impl.h
//
// Internals of TSDB shared by tsdb.cc (open, recovery, append, sealing) and
// tsdb_read.cc (queries, shards, retention, flush). Not part of the API.
#ifndef VIGIL_STORAGE_TSDB_IMPL_H_
#define VIGIL_STORAGE_TSDB_IMPL_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/chunk.h"
#include "storage/index.h"
#include "storage/keys.h"
#include "storage/tsdb.h"
#include "storage/wal.h"

namespace vigil::storage {

// RocksDB status -> absl::Status (kDataLoss for corruption).
inline absl::Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsCorruption()) return absl::DataLossError(s.ToString());
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return absl::UnavailableError(s.ToString());
  return absl::InternalError(s.ToString());
}

inline constexpr int64_t kNoTimestamp = std::numeric_limits<int64_t>::min();

struct AppendScratch;  // tsdb.cc

// One series in memory: identity, its open head and where its head begins in the WAL.
struct MemSeries {
  SeriesId id = 0;
  uint32_t shard = 0;
  uint64_t hash = 0;
  std::string canonical;  // Labels::Canonical() encoding

  // Newest timestamp stored for the series (head or sealed) and the bits of its value.
  int64_t max_t = kNoTimestamp;
  uint64_t last_v_bits = 0;
  // Oldest timestamp ever stored for the series (kNoTimestamp: unknown, so any
  // time). Samples dropped by retention leave it older than the oldest kept.
  int64_t min_t = kNoTimestamp;
  // No sealed chunk of the series holds a sample after this (kNoTimestamp: none
  // sealed). Lets reads skip RocksDB when the range lies in the head.
  int64_t sealed_max_t = kNoTimestamp;
  // First timestamp of the newest sealed in-order chunk, whose key holds it as
  // mint (kNoTimestamp: unknown, e.g. after a restart): older in-order chunks
  // end before it. Sealed out-of-order chunks hold nothing after
  // ooo_sealed_max_t. Together they let a read of the recent past seek straight
  // to the one chunk that can hold samples in range.
  int64_t last_chunk_first_t = kNoTimestamp;
  int64_t ooo_sealed_max_t = kNoTimestamp;

  // In-order samples since the last seal, all in partition head_partition.
  ChunkEncoder head;
  int64_t head_partition = 0;
  // Out-of-order samples since the last seal, sorted by t; null when none.
  std::unique_ptr<std::vector<Sample>> ooo;
  // LSN of the oldest WAL record with a sample in head or ooo; 0 when both are empty.
  uint64_t head_first_lsn = 0;
  // Position of the last sample applied: the record's LSN and the sample's
  // 1-based index among that record's samples of this series. Sealing stores it
  // as the series' seal mark: WAL replay skips samples at or before the mark.
  uint64_t applied_lsn = 0;
  uint32_t applied_idx = 0;

  bool has_head() const { return !head.empty() || ooo != nullptr; }
  int64_t head_samples() const {
    return head.num_samples() + (ooo != nullptr ? static_cast<int64_t>(ooo->size()) : 0);
  }
};

// What became of one sample.
enum class SampleOutcome { kAppended, kDuplicate, kRejected };

class TSDB::Impl {
 public:
  explicit Impl(const Options& opts);
  ~Impl();

  absl::Status Open();
  absl::StatusOr<AppendResult> Append(const std::vector<SeriesAppend>& batch);

  absl::StatusOr<query::SelectResult> Select(const query::SelectHints& hints,
                                             const std::vector<LabelMatcher>& matchers);
  absl::StatusOr<std::vector<std::string>> LabelNames(const std::vector<LabelMatcher>& matchers,
                                                      int64_t mint, int64_t maxt);
  absl::StatusOr<std::vector<std::string>> LabelValues(absl::string_view name,
                                                       const std::vector<LabelMatcher>& matchers,
                                                       int64_t mint, int64_t maxt);
  std::vector<uint32_t> ListShards();
  absl::Status ExportShard(uint32_t shard, int64_t mint, int64_t maxt,
                           const std::function<absl::Status(std::vector<Series>)>& fn);
  absl::Status DropShard(uint32_t shard);
  absl::StatusOr<uint64_t> ShardDigest(uint32_t shard, int64_t mint, int64_t maxt);
  absl::StatusOr<int> ApplyRetention();
  absl::Status Flush();
  Stats GetStats();
  int64_t EstimateMemoryBytes();

 private:
  // A series' seal mark loaded from RocksDB, used only during recovery.
  struct SealMark {
    uint64_t lsn = 0;
    uint32_t idx = 0;
  };
  // What a read needs of one series, copied out under mu_. Its strings are in
  // the ReadSnapshot's buffer (one allocation for all series, not one each).
  struct SeriesSnapshot {
    SeriesId id;
    uint32_t shard;
    int64_t sealed_max_t;  // MemSeries::sealed_max_t
    // Sealed chunks whose key sorts before (partition of seek_t, shard, id,
    // seek_t) hold nothing in range; kNoTimestamp: read every chunk.
    int64_t seek_t;
    size_t canonical_off, canonical_len;
    size_t head_off, head_len;  // the in-order head chunk if it overlaps the range, else empty
    std::vector<Sample> ooo;    // out-of-order head samples in range
  };
  // Everything a read of [mint, maxt] needs from memory, taken under mu_.
  struct ReadSnapshot {
    int64_t mint = 0;
    int64_t maxt = 0;
    std::vector<int64_t> partitions;  // partitions with sealed chunks overlapping the range
    std::string bytes;                // canonical labels and head chunks of `series`
    std::vector<SeriesSnapshot> series;
    absl::string_view canonical(const SeriesSnapshot& s) const {
      return absl::string_view(bytes).substr(s.canonical_off, s.canonical_len);
    }
    absl::string_view head(const SeriesSnapshot& s) const {
      return absl::string_view(bytes).substr(s.head_off, s.head_len);
    }
  };

  // --- Recovery (tsdb.cc) ---
  absl::Status LoadIndex() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReplayRecord(uint64_t lsn, absl::string_view payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Series (tsdb.cc) ---
  MemSeries* FindSeries(uint64_t hash, absl::string_view canonical) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds a series to memory; with `persist`, also queues its 'S' and 'P' keys.
  MemSeries* AddSeries(SeriesId id, uint64_t hash, absl::string_view canonical, bool persist)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Append path (tsdb.cc) ---
  SampleOutcome ApplySample(MemSeries* s, int64_t t, double v, uint64_t lsn, int64_t now,
                            bool replay, std::string* error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Position bookkeeping for the WAL (see MemSeries::applied_*).
  void AdvancePosition(MemSeries* s, uint64_t lsn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The stored value bits at exactly `t`, looking in head, ooo and sealed chunks.
  absl::StatusOr<std::optional<uint64_t>> FindStored(MemSeries* s, int64_t t)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Accounts for a sample entering the head of `s` in record `lsn`.
  void NoteHeadSample(MemSeries* s, uint64_t lsn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the head and ooo samples into chunks queued in batch_.
  void Seal(MemSeries* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs the record of an Append (sc.defs, sc.entries) as `lsn` and writes its
  // RocksDB batch; an error there makes the TSDB refuse further appends.
  absl::Status EnqueueLocked(uint64_t lsn, uint64_t n_defs, int64_t base_t, AppendScratch& sc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees WAL segments no head depends on, force-sealing heads that pin segments
  // once the WAL passes its size budget.
  absl::Status MaybeTruncateWal() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Seals every head, flushes RocksDB and deletes every WAL segment.
  absl::Status FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Reads (tsdb_read.cc) ---
  // Snapshot of the series `ids` (those that may have samples in [mint, maxt]).
  ReadSnapshot SnapshotSeries(const std::vector<SeriesId>& ids, int64_t mint, int64_t maxt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Completes a snapshot with the sealed samples in range into Series sorted by
  // labels, each sorted by time with unique timestamps; drops series without samples.
  absl::StatusOr<std::vector<Series>> ReadSeries(ReadSnapshot snap);
  // Appends the sealed samples in range of every snapshot series to samples[i]:
  // one RocksDB iterator moving forward through the partitions in key order.
  absl::Status ReadSealed(const ReadSnapshot& snap, std::vector<std::vector<Sample>>* samples);
  // Partitions with sealed chunks that [mint, maxt] overlaps.
  std::vector<int64_t> PartitionsIn(int64_t mint, int64_t maxt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // First timestamp not dropped by retention.
  int64_t MinKeptTime() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<SeriesId> ShardSeriesLocked(uint32_t shard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Series matching `matchers` (all if none) with samples in [mint, maxt], as
  // far as their oldest and newest timestamps tell.
  std::vector<SeriesId> LiveSeriesLocked(const std::vector<LabelMatcher>& matchers, int64_t mint,
                                         int64_t maxt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether every stored sample lies in [mint, maxt].
  bool CoversAllLocked(int64_t mint, int64_t maxt) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets the series (memory, index, 'S'/'P'/'M' keys; not their chunks).
  void RemoveSeriesLocked(const std::vector<SeriesId>& ids) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t Partition(int64_t t) const;

  // Constant after construction / Open.
  const Options opts_;
  const int64_t partition_ms_;
  const int64_t ooo_window_ms_;
  const int64_t max_future_ms_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<Wal> wal_;
  absl::Duration recovery_time_;
  absl::flat_hash_map<SeriesId, SealMark> seal_marks_;  // only during Open

  absl::Mutex mu_;
  // Series by labels hash; a series whose hash collides with another lives in
  // collisions_ keyed by its canonical labels instead.
  absl::flat_hash_map<uint64_t, MemSeries*> by_hash_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, MemSeries*> collisions_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<MemSeries>> series_ ABSL_GUARDED_BY(mu_);  // by id; null = none
  int64_t num_series_ ABSL_GUARDED_BY(mu_) = 0;
  PostingsIndex index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint32_t, int64_t> shard_series_ ABSL_GUARDED_BY(mu_);  // series per shard
  std::set<int64_t> partitions_ ABSL_GUARDED_BY(mu_);  // partitions holding sealed chunks
  // Partitions below this were dropped by retention; their samples are rejected.
  int64_t min_partition_ ABSL_GUARDED_BY(mu_) = std::numeric_limits<int64_t>::min();
  uint64_t next_lsn_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t last_enqueued_lsn_ ABSL_GUARDED_BY(mu_) = 0;  // 0: none this session
  SeriesId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t samples_appended_total_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t head_series_ ABSL_GUARDED_BY(mu_) = 0;   // series with has_head()
  int64_t head_samples_ ABSL_GUARDED_BY(mu_) = 0;  // samples in heads and ooo lists
  int64_t chunks_sealed_total_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t out_of_order_total_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t duplicates_total_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rejected_total_ ABSL_GUARDED_BY(mu_) = 0;
  int last_closed_segments_ ABSL_GUARDED_BY(mu_) = 0;  // WAL segments seen by MaybeTruncateWal
  rocksdb::WriteBatch batch_ ABSL_GUARDED_BY(mu_);  // RocksDB writes of the current operation
  absl::Status broken_ ABSL_GUARDED_BY(mu_);  // set after a WAL failure: appends then fail
};

}  // namespace vigil::storage

#endif  // VIGIL_STORAGE_TSDB_IMPL_H_
