// storage/tsdb.h
//
// TSDB: one node's time-series store on RocksDB. Series are identified by their
// canonical labels, indexed by label pair (postings), and grouped into shards
// (hash ranges of series) that the cluster replicates and moves. Samples live in
// Gorilla/XOR chunks: sealed chunks in RocksDB, open head chunks in memory, with
// every acked sample durable on disk before Append returns (group commit).
// Time is cut into partitions so retention drops whole partitions cheaply.
//
// Thread-safe: every method may be called concurrently.
#ifndef VIGIL_STORAGE_TSDB_H_
#define VIGIL_STORAGE_TSDB_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/labels.h"
#include "common/matcher.h"
#include "common/sample.h"
#include "query/series_source.h"

namespace vigil::storage {

struct Options {
  std::string dir;
  // Number of shards series hash onto (ShardOf). Fixed for the life of the data.
  uint32_t num_shards = 64;
  // Samples older than (newest sample of the series - ooo_window) are rejected.
  absl::Duration ooo_window = absl::Hours(1);
  // Samples more than this ahead of the clock are rejected.
  absl::Duration max_future = absl::Minutes(10);
  // Partitions entirely older than now - retention are dropped by ApplyRetention.
  absl::Duration retention = absl::Hours(24 * 15);
  // Width of a time partition.
  absl::Duration partition = absl::Hours(2);
  // Samples per head chunk before it is sealed.
  int chunk_samples = 120;
  LabelLimits limits;
  // fsync before Append returns (group-committed). Off only in benchmarks that say so.
  bool sync = true;
  Clock* clock = RealClock::Get();
  // The write-ahead log (under dir/wal) is cut into segments of about this size.
  uint64_t wal_segment_bytes = 64ull << 20;
  // Past this much WAL, heads that pin the oldest segment are sealed early
  // (partial chunks) so the segment can be deleted.
  uint64_t wal_max_bytes = 512ull << 20;
};

// The shard of a series: its labels' hash mapped onto [0, num_shards).
uint32_t ShardOf(uint64_t labels_hash, uint32_t num_shards);

struct LabelRef {
  absl::string_view name;
  absl::string_view value;
};

// One series' samples to append. The strings are borrowed from the caller for the
// duration of Append (e.g. views into a decoded remote-write request). Labels
// need not be sorted; empty values mean absent.
struct SeriesAppend {
  std::vector<LabelRef> labels;
  std::vector<Sample> samples;
};

struct AppendResult {
  int64_t appended = 0;    // new samples, now durable
  int64_t duplicates = 0;  // same (t, value) already stored: accepted idempotently
  int64_t rejected = 0;    // too old, too far in the future, or same t with another value
  // The first few rejections, each naming the series, timestamp and reason.
  std::vector<std::string> errors;
};

struct Stats {
  int64_t series = 0;         // series in the index
  int64_t head_series = 0;    // series with an open head chunk
  int64_t head_samples = 0;   // samples in open head chunks
  int64_t samples_appended_total = 0;
  int64_t bytes_on_disk = 0;  // RocksDB SST + WAL files
  int64_t partitions = 0;
  absl::Duration recovery_time;  // how long Open took to replay the head
  int64_t wal_bytes = 0;          // bytes in the write-ahead log
  int64_t chunks_sealed_total = 0;
  int64_t out_of_order_total = 0;  // samples accepted out of order
  int64_t duplicates_total = 0;
  int64_t rejected_total = 0;
};

class TSDB : public query::SeriesSource {
 public:
  // Opens or creates the database under opts.dir and replays the durable head.
  // kDataLoss if a checksum fails on recovery; kInvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<TSDB>> Open(const Options& opts);
  ~TSDB() override;
  TSDB(const TSDB&) = delete;
  TSDB& operator=(const TSDB&) = delete;

  // Validates every series of `batch` first: kInvalidArgument naming the series if
  // any has bad labels, and then nothing is applied. Otherwise appends; individual
  // samples that are too old, too far ahead, or conflict with a stored sample (same
  // t, other value; a stale marker counts as a value distinct from other NaNs) are
  // rejected and counted in the result while the rest are applied. Returns OK only
  // once everything applied is durable. kUnavailable/kInternal on I/O failure.
  absl::StatusOr<AppendResult> Append(const std::vector<SeriesAppend>& batch);

  // query::SeriesSource. LabelNames and LabelValues count a series when its
  // oldest and newest samples span a time in [mint, maxt] (the oldest as ever
  // stored, also when retention has dropped it since).
  absl::StatusOr<query::SelectResult> Select(const query::SelectHints& hints,
                                             const std::vector<LabelMatcher>& matchers) override;
  absl::StatusOr<std::vector<std::string>> LabelNames(const std::vector<LabelMatcher>& matchers,
                                                      int64_t mint, int64_t maxt) override;
  absl::StatusOr<std::vector<std::string>> LabelValues(absl::string_view name,
                                                       const std::vector<LabelMatcher>& matchers,
                                                       int64_t mint, int64_t maxt) override;

  // Shards that hold at least one series, ascending.
  std::vector<uint32_t> ListShards();
  // Calls `fn` with batches of the series of `shard` and their samples in
  // [mint, maxt], in label order. Stops and returns fn's error if it fails.
  absl::Status ExportShard(uint32_t shard, int64_t mint, int64_t maxt,
                           const std::function<absl::Status(std::vector<Series>)>& fn);
  // Removes every series and sample of `shard`.
  absl::Status DropShard(uint32_t shard);
  // Order-independent digest of the (labels, t, value) triples of `shard` in
  // [mint, maxt]; replicas holding the same data have the same digest.
  absl::StatusOr<uint64_t> ShardDigest(uint32_t shard, int64_t mint, int64_t maxt);

  // Drops partitions that end before now - retention. Returns how many.
  absl::StatusOr<int> ApplyRetention();
  // Seals every open head chunk into RocksDB and flushes memtables (for shutdown
  // and for measuring bytes on disk).
  absl::Status Flush();

  // Cheap: counters only (plus a walk of the data directory's file sizes).
  Stats GetStats();
  // Estimated heap bytes of series, heads and the in-memory index. Walks every
  // series under the lock: for benchmarks and debugging, not every scrape.
  int64_t EstimateMemoryBytes();

 private:
  class Impl;
  explicit TSDB(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::storage

#endif  // VIGIL_STORAGE_TSDB_H_
