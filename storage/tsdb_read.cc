// TSDB: queries, shards, retention, flush and stats. Append and recovery are in tsdb.cc.
#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "rocksdb/convenience.h"
#include "storage/tsdb.h"
#include "storage/tsdb_impl.h"
#include "xxhash.h"

namespace vigil::storage {

namespace {

constexpr size_t kExportBatchSeries = 500;

Labels LabelsFromCanonical(absl::string_view canonical) {
  std::vector<Label> labels;
  ForEachCanonicalLabel(canonical, [&](absl::string_view n, absl::string_view v) {
    labels.push_back(Label{std::string(n), std::string(v)});
  });
  return Labels(std::move(labels));
}

void AppendInRange(absl::string_view chunk, int64_t mint, int64_t maxt, std::vector<Sample>* out,
                   absl::Status* status) {
  ChunkIterator it(chunk);
  while (it.Next()) {
    if (it.t() >= mint && it.t() <= maxt) out->push_back(Sample{it.t(), it.v()});
  }
  *status = it.status();
}

}  // namespace

int64_t TSDB::Impl::MinKeptTime() const {
  if (min_partition_ <= std::numeric_limits<int64_t>::min() / partition_ms_) {
    return std::numeric_limits<int64_t>::min();
  }
  return min_partition_ * partition_ms_;
}

std::vector<int64_t> TSDB::Impl::PartitionsIn(int64_t mint, int64_t maxt) {
  std::vector<int64_t> out;
  for (auto it = partitions_.lower_bound(Partition(mint));
       it != partitions_.end() && *it <= Partition(maxt); ++it) {
    out.push_back(*it);
  }
  return out;
}

std::vector<TSDB::Impl::SeriesSnapshot> TSDB::Impl::SnapshotSeries(
    const std::vector<SeriesId>& ids, int64_t mint, int64_t maxt) {
  std::vector<SeriesSnapshot> out;
  out.reserve(ids.size());
  for (SeriesId id : ids) {
    if (id >= series_.size() || series_[id] == nullptr) continue;
    const MemSeries& s = *series_[id];
    SeriesSnapshot snap{id, s.shard, s.canonical, s.max_t, {}, {}};
    if (!s.head.empty() && s.head.last_t() >= mint && s.head.first_t() <= maxt) {
      snap.head_chunk = std::string(s.head.data());  // decoded after the lock is released
    }
    if (s.ooo != nullptr) {
      for (const Sample& smp : *s.ooo) {
        if (smp.t >= mint && smp.t <= maxt) snap.head.push_back(smp);
      }
    }
    out.push_back(std::move(snap));
  }
  return out;
}

absl::Status TSDB::Impl::ReadSealed(rocksdb::Iterator* it, int64_t partition, uint32_t shard,
                                    SeriesId id, int64_t mint, int64_t maxt,
                                    std::vector<Sample>* out) {
  const std::string prefix = ChunkPrefix(partition, shard, id);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    ChunkKeyParts parts;
    if (!ParseChunkKey(absl::string_view(it->key().data(), it->key().size()), &parts)) {
      return absl::DataLossError("bad chunk key");
    }
    if (parts.mint > maxt) break;
    std::vector<Sample> samples;
    absl::Status s =
        DecodeSealedChunk(absl::string_view(it->value().data(), it->value().size()), &samples);
    for (const Sample& smp : samples) {
      if (smp.t >= mint && smp.t <= maxt) out->push_back(smp);
    }
    if (!s.ok()) {
      return absl::DataLossError(absl::StrCat("series ", id, " partition ", partition, ": ",
                                              s.message()));
    }
  }
  return FromRocks(it->status());
}

absl::StatusOr<std::vector<Series>> TSDB::Impl::ReadSeries(std::vector<SeriesSnapshot> snaps,
                                                           const std::vector<int64_t>& partitions,
                                                           int64_t mint, int64_t maxt) {
  std::vector<Series> out;
  out.reserve(snaps.size());
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (SeriesSnapshot& snap : snaps) {
    std::vector<Sample> samples = std::move(snap.head);
    if (!snap.head_chunk.empty()) {
      absl::Status ignored;  // our own in-memory encoding
      AppendInRange(snap.head_chunk, mint, maxt, &samples, &ignored);
    }
    for (int64_t p : partitions) {
      if (snap.max_t == kNoTimestamp || p > Partition(snap.max_t)) break;
      RETURN_IF_ERROR(ReadSealed(it.get(), p, snap.shard, snap.id, mint, maxt, &samples));
    }
    if (samples.empty()) continue;
    // A chunk sealed after the head snapshot shows up twice: keep one copy.
    std::stable_sort(samples.begin(), samples.end(),
                     [](const Sample& a, const Sample& b) { return a.t < b.t; });
    samples.erase(std::unique(samples.begin(), samples.end(),
                              [](const Sample& a, const Sample& b) { return a.t == b.t; }),
                  samples.end());
    out.push_back(Series{LabelsFromCanonical(snap.canonical), std::move(samples)});
  }
  return out;
}

absl::StatusOr<query::SelectResult> TSDB::Impl::Select(const query::SelectHints& hints,
                                                       const std::vector<LabelMatcher>& matchers) {
  query::SelectResult result;
  std::vector<SeriesSnapshot> snaps;
  std::vector<int64_t> partitions;
  int64_t mint = hints.mint;
  {
    absl::MutexLock l(&mu_);
    ASSIGN_OR_RETURN(std::vector<SeriesId> ids, index_.Select(matchers));
    mint = std::max(mint, MinKeptTime());
    if (mint > hints.maxt) return result;
    snaps = SnapshotSeries(ids, mint, hints.maxt);
    partitions = PartitionsIn(mint, hints.maxt);
  }
  ASSIGN_OR_RETURN(result.series, ReadSeries(std::move(snaps), partitions, mint, hints.maxt));
  std::sort(result.series.begin(), result.series.end(),
            [](const Series& a, const Series& b) { return a.labels < b.labels; });
  return result;
}

std::vector<SeriesId> TSDB::Impl::LiveSeriesLocked(const std::vector<LabelMatcher>& matchers,
                                                  int64_t mint, int64_t maxt) {
  std::vector<SeriesId> ids = index_.SelectOrAll(matchers);
  if (mint > maxt) return {};
  // A series counts if it has samples at or after mint (its newest sample is
  // known; the oldest is not, so maxt does not filter).
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [&](SeriesId id) { return series_[id]->max_t < mint; }),
            ids.end());
  return ids;
}

absl::StatusOr<std::vector<std::string>> TSDB::Impl::LabelNames(
    const std::vector<LabelMatcher>& matchers, int64_t mint, int64_t maxt) {
  absl::MutexLock l(&mu_);
  if (matchers.empty() && mint <= MinKeptTime() && mint <= maxt) return index_.LabelNames();
  absl::btree_set<std::string> names;
  for (SeriesId id : LiveSeriesLocked(matchers, mint, maxt)) {
    ForEachCanonicalLabel(series_[id]->canonical, [&](absl::string_view n, absl::string_view) {
      names.emplace(n);
    });
  }
  return std::vector<std::string>(names.begin(), names.end());
}

absl::StatusOr<std::vector<std::string>> TSDB::Impl::LabelValues(
    absl::string_view name, const std::vector<LabelMatcher>& matchers, int64_t mint, int64_t maxt) {
  absl::MutexLock l(&mu_);
  if (matchers.empty() && mint <= MinKeptTime() && mint <= maxt) return index_.LabelValues(name);
  absl::btree_set<std::string> values;
  for (SeriesId id : LiveSeriesLocked(matchers, mint, maxt)) {
    ForEachCanonicalLabel(series_[id]->canonical, [&](absl::string_view n, absl::string_view v) {
      if (n == name) values.emplace(v);
    });
  }
  return std::vector<std::string>(values.begin(), values.end());
}

std::vector<uint32_t> TSDB::Impl::ListShards() {
  absl::MutexLock l(&mu_);
  std::vector<uint32_t> out;
  for (const auto& [shard, n] : shard_series_) {
    if (n > 0) out.push_back(shard);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<SeriesId> TSDB::Impl::ShardSeriesLocked(uint32_t shard) {
  std::vector<SeriesId> ids;
  for (const auto& s : series_) {
    if (s != nullptr && s->shard == shard) ids.push_back(s->id);
  }
  return ids;
}

absl::Status TSDB::Impl::ExportShard(uint32_t shard, int64_t mint, int64_t maxt,
                                     const std::function<absl::Status(std::vector<Series>)>& fn) {
  std::vector<std::pair<Labels, SeriesId>> order;
  {
    absl::MutexLock l(&mu_);
    for (SeriesId id : ShardSeriesLocked(shard)) {
      order.emplace_back(LabelsFromCanonical(series_[id]->canonical), id);
    }
  }
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t start = 0; start < order.size(); start += kExportBatchSeries) {
    std::vector<SeriesId> ids;
    for (size_t i = start; i < std::min(order.size(), start + kExportBatchSeries); i++) {
      ids.push_back(order[i].second);
    }
    std::vector<SeriesSnapshot> snaps;
    std::vector<int64_t> partitions;
    int64_t lo = mint;
    {
      absl::MutexLock l(&mu_);
      lo = std::max(lo, MinKeptTime());
      if (lo > maxt) return absl::OkStatus();
      snaps = SnapshotSeries(ids, lo, maxt);
      partitions = PartitionsIn(lo, maxt);
    }
    ASSIGN_OR_RETURN(std::vector<Series> batch, ReadSeries(std::move(snaps), partitions, lo, maxt));
    if (batch.empty()) continue;
    RETURN_IF_ERROR(fn(std::move(batch)));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> TSDB::Impl::ShardDigest(uint32_t shard, int64_t mint, int64_t maxt) {
  uint64_t digest = 0;
  RETURN_IF_ERROR(ExportShard(shard, mint, maxt, [&](std::vector<Series> batch) {
    for (const Series& s : batch) {
      struct {
        uint64_t labels_hash;
        int64_t t;
        uint64_t bits;
      } triple{s.labels.Hash(), 0, 0};
      for (const Sample& smp : s.samples) {
        triple.t = smp.t;
        triple.bits = DoubleBits(smp.v);
        digest += XXH64(&triple, sizeof triple, 0);  // a sum does not depend on order
      }
    }
    return absl::OkStatus();
  }));
  return digest;
}

void TSDB::Impl::RemoveSeriesLocked(const std::vector<SeriesId>& ids) {
  absl::flat_hash_set<SeriesId> removed;
  for (SeriesId id : ids) {
    MemSeries* s = series_[id].get();
    if (s->has_head()) {
      head_series_--;
      head_samples_ -= s->head_samples();
    }
    batch_.Delete(SeriesKey(id));
    batch_.Delete(MarkKey(id));
    ForEachCanonicalLabel(s->canonical, [&](absl::string_view n, absl::string_view v) {
      batch_.Delete(PostingKey(n, v, id));
    });
    auto h = by_hash_.find(s->hash);
    if (h != by_hash_.end() && h->second == s) {
      by_hash_.erase(h);
      // Promote a colliding series with the same hash, if any.
      for (auto c = collisions_.begin(); c != collisions_.end(); ++c) {
        if (c->second->hash == s->hash) {
          by_hash_[s->hash] = c->second;
          collisions_.erase(c);
          break;
        }
      }
    } else {
      collisions_.erase(s->canonical);
    }
    if (--shard_series_[s->shard] == 0) shard_series_.erase(s->shard);
    removed.insert(id);
    series_[id].reset();
    num_series_--;
  }
  index_.RemoveSeries(removed);
}

absl::Status TSDB::Impl::DropShard(uint32_t shard) {
  absl::MutexLock l(&mu_);
  if (shard >= opts_.num_shards) return absl::OkStatus();  // holds nothing
  RemoveSeriesLocked(ShardSeriesLocked(shard));
  for (int64_t p : partitions_) {
    batch_.DeleteRange(ChunkPrefix(p, shard), ChunkPrefix(p, shard + 1));
  }
  // The WAL still names the dropped series: seal everything else and empty it
  // so that recovery cannot bring them back.
  return FlushLocked();
}

absl::StatusOr<int> TSDB::Impl::ApplyRetention() {
  absl::MutexLock l(&mu_);
  const int64_t now = opts_.clock->NowMillis();
  const int64_t new_min = Partition(now - absl::ToInt64Milliseconds(opts_.retention));
  int dropped = 0;
  if (new_min > min_partition_) {
    while (!partitions_.empty() && *partitions_.begin() < new_min) {
      partitions_.erase(partitions_.begin());
      dropped++;
    }
    min_partition_ = new_min;
    std::string value;
    PutOrderedInt64(&value, new_min);
    const std::string begin(1, kChunkPrefix), end = ChunkPrefix(new_min);
    const rocksdb::Slice b(begin), e(end);
    // Whole SST files of old partitions go first (cheap), then a range
    // tombstone covers the rest.
    RETURN_IF_ERROR(
        FromRocks(rocksdb::DeleteFilesInRange(db_.get(), db_->DefaultColumnFamily(), &b, &e)));
    batch_.Put(kMinPartitionKey, value);
    batch_.DeleteRange(begin, end);
    RETURN_IF_ERROR(WriteBatchLocked());
    rocksdb::FlushOptions fo;
    fo.wait = true;
    RETURN_IF_ERROR(FromRocks(db_->Flush(fo)));
    rocksdb::CompactRangeOptions co;
    RETURN_IF_ERROR(FromRocks(db_->CompactRange(co, &b, &e)));
  }
  // Forget series with nothing left. (If the WAL still defines one, recovery
  // brings it back empty and the next ApplyRetention removes it again.)
  std::vector<SeriesId> gone;
  const int64_t min_kept = MinKeptTime();
  for (const auto& s : series_) {
    if (s != nullptr && !s->has_head() && s->max_t < min_kept) gone.push_back(s->id);
  }
  RemoveSeriesLocked(gone);
  RETURN_IF_ERROR(WriteBatchLocked());
  return dropped;
}

absl::Status TSDB::Impl::Flush() {
  absl::MutexLock l(&mu_);
  absl::Status s = FlushLocked();
  if (!s.ok()) broken_ = s;
  return s;
}

Stats TSDB::Impl::GetStats() {
  Stats st;
  {
    absl::MutexLock l(&mu_);
    st.series = num_series_;
    st.head_series = head_series_;
    st.head_samples = head_samples_;
    st.samples_appended_total = samples_appended_total_;
    st.partitions = static_cast<int64_t>(partitions_.size());
    st.chunks_sealed_total = chunks_sealed_total_;
    st.out_of_order_total = out_of_order_total_;
    st.duplicates_total = duplicates_total_;
    st.rejected_total = rejected_total_;
  }
  st.recovery_time = recovery_time_;
  st.wal_bytes = static_cast<int64_t>(wal_->total_bytes());
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(opts_.dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const std::string ext = it->path().extension().string();
    if (it->is_regular_file(ec) && (ext == ".sst" || ext == ".wal" || ext == ".log")) {
      st.bytes_on_disk += static_cast<int64_t>(it->file_size(ec));
    }
  }
  return st;
}

int64_t TSDB::Impl::EstimateMemoryBytes() {
  absl::MutexLock l(&mu_);
  int64_t mem = static_cast<int64_t>(index_.MemoryUsage() + series_.capacity() * sizeof(void*) +
                                     by_hash_.capacity() * 16);
  for (const auto& s : series_) {
    if (s == nullptr) continue;
    mem += static_cast<int64_t>(sizeof(MemSeries) + s->canonical.capacity() +
                                s->head.MemoryUsage() - sizeof(ChunkEncoder));
    if (s->ooo != nullptr) mem += static_cast<int64_t>(s->ooo->capacity() * sizeof(Sample));
  }
  return mem;
}

}  // namespace vigil::storage
