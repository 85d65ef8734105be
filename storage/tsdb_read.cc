// TSDB: queries, shards, retention, flush and stats. Append and recovery are in tsdb.cc.
#include <algorithm>
#include <cstring>
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
  labels.reserve(std::count(canonical.begin(), canonical.end(), '\xff') / 2);
  ForEachCanonicalLabel(canonical, [&](absl::string_view n, absl::string_view v) {
    labels.push_back(Label{std::string(n), std::string(v)});
  });
  return Labels(std::move(labels));
}

// Appends the samples of an in-order XOR chunk within [mint, maxt] to `out`.
void AppendHeadInRange(absl::string_view chunk, int64_t mint, int64_t maxt,
                       std::vector<Sample>* out) {
  for (ChunkIterator it(chunk); it.Next();) {  // our own in-memory encoding: no corruption
    if (it.t() > maxt) break;
    if (it.t() >= mint) out->push_back(Sample{it.t(), it.v()});
  }
}

// Labels order (Labels::operator<) on canonical encodings: the 0xff separator
// sorts before every byte (it never occurs inside a name or value).
bool CanonicalLess(absl::string_view a, absl::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {  // skip the common prefix a word at a time
    uint64_t x, y;
    std::memcpy(&x, a.data() + i, 8);
    std::memcpy(&y, b.data() + i, 8);
    if (x != y) break;
  }
  while (i < n && a[i] == b[i]) i++;
  if (i == n) return a.size() < b.size();
  const auto rank = [](char c) { return (static_cast<unsigned char>(c) + 1) & 0xff; };
  return rank(a[i]) < rank(b[i]);
}

// Sorts by time and keeps the first of equal timestamps, unless already so.
void SortUnique(std::vector<Sample>* samples) {
  const auto not_before = [](const Sample& a, const Sample& b) { return a.t >= b.t; };
  if (std::adjacent_find(samples->begin(), samples->end(), not_before) == samples->end()) return;
  std::stable_sort(samples->begin(), samples->end(),
                   [](const Sample& a, const Sample& b) { return a.t < b.t; });
  samples->erase(std::unique(samples->begin(), samples->end(),
                             [](const Sample& a, const Sample& b) { return a.t == b.t; }),
                 samples->end());
}

// Positions `it` at the first key >= target. Targets of successive calls must
// increase and the iterator only move forward in between: then a target a few
// keys ahead is reached with Next() instead of a full Seek.
void SeekForward(rocksdb::Iterator* it, const rocksdb::Slice& target) {
  constexpr int kMaxSteps = 8;
  for (int i = 0; i < kMaxSteps && it->Valid(); i++) {
    if (it->key().compare(target) >= 0) return;
    it->Next();
  }
  it->Seek(target);
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

TSDB::Impl::ReadSnapshot TSDB::Impl::SnapshotSeries(const std::vector<SeriesId>& ids,
                                                    int64_t mint, int64_t maxt) {
  ReadSnapshot snap;
  snap.mint = mint;
  snap.maxt = maxt;
  snap.partitions = PartitionsIn(mint, maxt);
  snap.series.reserve(ids.size());
  for (SeriesId id : ids) {
    if (id >= series_.size() || series_[id] == nullptr) continue;
    const MemSeries& s = *series_[id];
    const bool head = !s.head.empty() && s.head.last_t() >= mint && s.head.first_t() <= maxt;
    const bool sealed = s.sealed_max_t != kNoTimestamp && s.sealed_max_t >= mint;
    if (!head && !sealed && s.ooo == nullptr) continue;  // nothing in range
    const bool one_chunk = s.last_chunk_first_t != kNoTimestamp && s.last_chunk_first_t <= mint &&
                           s.ooo_sealed_max_t < mint;
    SeriesSnapshot ss{id,
                      s.shard,
                      s.sealed_max_t,
                      one_chunk ? s.last_chunk_first_t : kNoTimestamp,
                      snap.bytes.size(),
                      s.canonical.size(),
                      0,
                      0,
                      {}};
    snap.bytes.append(s.canonical);
    if (head) {
      ss.head_off = snap.bytes.size();
      ss.head_len = s.head.data().size();
      snap.bytes.append(s.head.data().data(), s.head.data().size());
    }
    if (s.ooo != nullptr) {
      for (const Sample& smp : *s.ooo) {
        if (smp.t >= mint && smp.t <= maxt) ss.ooo.push_back(smp);
      }
    }
    snap.series.push_back(std::move(ss));
  }
  return snap;
}

absl::Status TSDB::Impl::ReadSealed(const ReadSnapshot& snap,
                                    std::vector<std::vector<Sample>>* samples) {
  // The series with sealed samples possibly in range, in chunk key order.
  std::vector<size_t> order;
  for (size_t i = 0; i < snap.series.size(); i++) {
    const SeriesSnapshot& s = snap.series[i];
    if (s.sealed_max_t != kNoTimestamp && s.sealed_max_t >= snap.mint) order.push_back(i);
  }
  if (order.empty() || snap.partitions.empty()) return absl::OkStatus();
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const SeriesSnapshot &x = snap.series[a], &y = snap.series[b];
    return x.shard != y.shard ? x.shard < y.shard : x.id < y.id;
  });
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  std::vector<Sample> chunk;
  std::string prefix, target;
  for (int64_t p : snap.partitions) {
    for (size_t i : order) {
      const SeriesSnapshot& s = snap.series[i];
      if (p > Partition(s.sealed_max_t)) continue;
      const int64_t seek_p = s.seek_t == kNoTimestamp ? p : Partition(s.seek_t);
      if (p < seek_p) continue;
      prefix = ChunkPrefix(p);
      PutBigEndian32(&prefix, s.shard);
      PutBigEndian32(&prefix, s.id);
      target = prefix;
      if (p == seek_p && s.seek_t != kNoTimestamp) PutOrderedInt64(&target, s.seek_t);
      SeekForward(it.get(), target);
      for (; it->Valid() && it->key().starts_with(prefix); it->Next()) {
        if (it->key().size() != kChunkKeySize) return absl::DataLossError("bad chunk key");
        if (GetOrderedInt64(it->key().data() + prefix.size()) > snap.maxt) break;
        chunk.clear();
        absl::Status st =
            DecodeSealedChunk(absl::string_view(it->value().data(), it->value().size()), &chunk);
        if (!st.ok()) {
          return absl::DataLossError(
              absl::StrCat("series ", s.id, " partition ", p, ": ", st.message()));
        }
        for (const Sample& smp : chunk) {
          if (smp.t >= snap.mint && smp.t <= snap.maxt) (*samples)[i].push_back(smp);
        }
      }
      RETURN_IF_ERROR(FromRocks(it->status()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Series>> TSDB::Impl::ReadSeries(ReadSnapshot snap) {
  const size_t n = snap.series.size();
  std::vector<std::vector<Sample>> samples(n);
  // Sealed samples come before the head's, and out-of-order ones last: mostly
  // already in order.
  RETURN_IF_ERROR(ReadSealed(snap, &samples));
  for (size_t i = 0; i < n; i++) {
    SeriesSnapshot& s = snap.series[i];
    AppendHeadInRange(snap.head(s), snap.mint, snap.maxt, &samples[i]);
    samples[i].insert(samples[i].end(), s.ooo.begin(), s.ooo.end());
  }
  std::vector<size_t> order;
  for (size_t i = 0; i < n; i++) {
    if (!samples[i].empty()) order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return CanonicalLess(snap.canonical(snap.series[a]), snap.canonical(snap.series[b]));
  });
  std::vector<Series> out;
  out.reserve(order.size());
  for (size_t i : order) {
    // A chunk sealed after the head snapshot shows up twice: keep one copy.
    SortUnique(&samples[i]);
    out.push_back(Series{LabelsFromCanonical(snap.canonical(snap.series[i])), std::move(samples[i])});
  }
  return out;
}

absl::StatusOr<query::SelectResult> TSDB::Impl::Select(const query::SelectHints& hints,
                                                       const std::vector<LabelMatcher>& matchers) {
  query::SelectResult result;
  ReadSnapshot snap;
  {
    absl::MutexLock l(&mu_);
    ASSIGN_OR_RETURN(std::vector<SeriesId> ids, index_.Select(matchers));
    const int64_t mint = std::max(hints.mint, MinKeptTime());
    if (mint > hints.maxt) return result;
    snap = SnapshotSeries(ids, mint, hints.maxt);
  }
  ASSIGN_OR_RETURN(result.series, ReadSeries(std::move(snap)));
  return result;
}

std::vector<SeriesId> TSDB::Impl::LiveSeriesLocked(const std::vector<LabelMatcher>& matchers,
                                                  int64_t mint, int64_t maxt) {
  if (mint > maxt) return {};
  std::vector<SeriesId> ids = index_.SelectOrAll(matchers);
  ids.erase(std::remove_if(ids.begin(), ids.end(),
                           [&](SeriesId id) {
                             const MemSeries& s = *series_[id];
                             return s.max_t < mint || s.min_t > maxt;
                           }),
            ids.end());
  return ids;
}

bool TSDB::Impl::CoversAllLocked(int64_t mint, int64_t maxt) const {
  // No stored sample lies beyond now + max_future (later ones are rejected).
  return mint <= MinKeptTime() && maxt >= opts_.clock->NowMillis() + max_future_ms_;
}

absl::StatusOr<std::vector<std::string>> TSDB::Impl::LabelNames(
    const std::vector<LabelMatcher>& matchers, int64_t mint, int64_t maxt) {
  absl::MutexLock l(&mu_);
  if (matchers.empty() && CoversAllLocked(mint, maxt)) return index_.LabelNames();
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
  if (matchers.empty() && CoversAllLocked(mint, maxt)) return index_.LabelValues(name);
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
    ReadSnapshot snap;
    {
      absl::MutexLock l(&mu_);
      const int64_t lo = std::max(mint, MinKeptTime());
      if (lo > maxt) return absl::OkStatus();
      snap = SnapshotSeries(ids, lo, maxt);
    }
    ASSIGN_OR_RETURN(std::vector<Series> batch, ReadSeries(std::move(snap)));
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
