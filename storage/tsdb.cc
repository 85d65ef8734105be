// TSDB: open, recovery, append and sealing. Reads are in tsdb_read.cc.
#include "storage/tsdb.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "rocksdb/cache.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "storage/tsdb_impl.h"
#include "xxhash.h"

namespace vigil::storage {

uint32_t ShardOf(uint64_t labels_hash, uint32_t num_shards) {
  return static_cast<uint32_t>(labels_hash % num_shards);
}

namespace {

constexpr int kMaxErrors = 10;

std::string CanonicalToString(absl::string_view canonical) {
  std::vector<Label> labels;
  ForEachCanonicalLabel(canonical, [&](absl::string_view n, absl::string_view v) {
    labels.push_back(Label{std::string(n), std::string(v)});
  });
  return Labels(std::move(labels)).ToString();
}

std::string EncodeMark(const MemSeries& s) {
  std::string v;
  PutVarint(&v, s.applied_lsn);
  PutVarint(&v, s.applied_idx);
  PutVarint(&v, ZigZagEncode(s.max_t));
  PutFixed64LE(&v, s.last_v_bits);
  PutVarint(&v, ZigZagEncode(s.min_t));
  return v;
}

constexpr size_t kBlockCacheBytes = 32 << 20;

rocksdb::Options RocksOptions() {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.compression = rocksdb::kLZ4Compression;
  o.bottommost_compression = rocksdb::kZSTD;
  o.write_buffer_size = 64 << 20;
  o.max_background_jobs = 2;
  o.keep_log_file_num = 2;
  o.info_log_level = rocksdb::WARN_LEVEL;
  rocksdb::BlockBasedTableOptions t;
  t.block_size = 16 << 10;
  t.format_version = 5;
  // Bounded read memory: data, index and filter blocks share one LRU cache
  // (index blocks would otherwise stay in memory for every open SST file).
  t.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

}  // namespace

TSDB::Impl::Impl(const Options& opts)
    : opts_(opts),
      partition_ms_(absl::ToInt64Milliseconds(opts.partition)),
      ooo_window_ms_(absl::ToInt64Milliseconds(opts.ooo_window)),
      max_future_ms_(absl::ToInt64Milliseconds(opts.max_future)) {}

TSDB::Impl::~Impl() {
  wal_.reset();  // writes anything queued
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
}

int64_t TSDB::Impl::Partition(int64_t t) const {
  int64_t p = t / partition_ms_;
  if (t % partition_ms_ < 0) p--;  // floor for negative timestamps
  return p;
}

absl::Status TSDB::Impl::Open() {
  const absl::Time start = absl::Now();
  std::error_code ec;
  std::filesystem::create_directories(opts_.dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", opts_.dir, ": ", ec.message()));
  rocksdb::DB* db = nullptr;
  RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(RocksOptions(), opts_.dir + "/db", &db)));
  db_.reset(db);

  absl::MutexLock l(&mu_);
  RETURN_IF_ERROR(LoadIndex());
  WalOptions wo;
  wo.dir = opts_.dir + "/wal";
  wo.sync = opts_.sync;
  wo.segment_bytes = opts_.wal_segment_bytes;
  ASSIGN_OR_RETURN(wal_, Wal::Open(wo, [this](uint64_t lsn, absl::string_view payload) {
                     mu_.AssertHeld();
                     return ReplayRecord(lsn, payload);
                   }));
  RETURN_IF_ERROR(WriteBatchLocked());
  uint64_t max_lsn = wal_->recovered_lsn();
  for (const auto& [id, mark] : seal_marks_) max_lsn = std::max(max_lsn, mark.lsn);
  next_lsn_ = max_lsn + 1;
  seal_marks_.clear();
  last_closed_segments_ = wal_->closed_segments();
  recovery_time_ = absl::Now() - start;  // measures real work, not a simulated clock
  LOG(INFO) << "tsdb " << opts_.dir << ": " << num_series_ << " series, recovered in "
            << recovery_time_;
  return absl::OkStatus();
}

absl::Status TSDB::Impl::LoadIndex() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(std::string(1, kSeriesPrefix)); it->Valid() && it->key()[0] == kSeriesPrefix;
       it->Next()) {
    if (it->key().size() != 5) return absl::DataLossError("bad series key");
    const SeriesId id = GetBigEndian32(it->key().data() + 1);
    const absl::string_view canonical(it->value().data(), it->value().size());
    AddSeries(id, XXH64(canonical.data(), canonical.size(), 0), canonical, /*persist=*/false);
  }
  for (it->Seek(std::string(1, kPostingPrefix)); it->Valid() && it->key()[0] == kPostingPrefix;
       it->Next()) {
    absl::string_view k(it->key().data() + 1, it->key().size() - 1);
    const size_t a = k.find('\xff');
    if (a == absl::string_view::npos || k.size() < a + 6 || k[k.size() - 5] != '\xff') {
      return absl::DataLossError("bad posting key");
    }
    index_.Add(GetBigEndian32(k.data() + k.size() - 4), k.substr(0, a),
               k.substr(a + 1, k.size() - 5 - a - 1));
  }
  for (it->Seek(std::string(1, kMarkPrefix)); it->Valid() && it->key()[0] == kMarkPrefix;
       it->Next()) {
    const SeriesId id = GetBigEndian32(it->key().data() + 1);
    absl::string_view v(it->value().data(), it->value().size());
    uint64_t lsn, idx, max_t, bits;
    if (!GetVarint(&v, &lsn) || !GetVarint(&v, &idx) || !GetVarint(&v, &max_t) ||
        !GetFixed64LE(&v, &bits)) {
      return absl::DataLossError(absl::StrCat("bad seal mark of series ", id));
    }
    seal_marks_[id] = SealMark{lsn, static_cast<uint32_t>(idx)};
    if (id < series_.size() && series_[id] != nullptr) {
      series_[id]->max_t = ZigZagDecode(max_t);
      // The mark is written by Seal. Which sealed chunks are out of order is not
      // known: assume any may be.
      series_[id]->sealed_max_t = series_[id]->max_t;
      series_[id]->ooo_sealed_max_t = series_[id]->max_t;
      uint64_t min_t;  // absent in marks written before it was added: unknown
      series_[id]->min_t = GetVarint(&v, &min_t) ? ZigZagDecode(min_t) : kNoTimestamp;
      series_[id]->last_v_bits = bits;
    }
  }
  it->Seek(kMinPartitionKey);
  if (it->Valid() && it->key() == kMinPartitionKey && it->value().size() == 8) {
    min_partition_ = GetOrderedInt64(it->value().data());
  }
  // Skip-scan the partitions that hold chunks.
  it->Seek(std::string(1, kChunkPrefix));
  while (it->Valid() && it->key()[0] == kChunkPrefix) {
    ChunkKeyParts parts;
    if (!ParseChunkKey(absl::string_view(it->key().data(), it->key().size()), &parts)) {
      return absl::DataLossError("bad chunk key");
    }
    partitions_.insert(parts.partition);
    if (parts.partition == std::numeric_limits<int64_t>::max()) break;
    it->Seek(ChunkPrefix(parts.partition + 1));
  }
  return FromRocks(it->status());
}

absl::Status TSDB::Impl::ReplayRecord(uint64_t lsn, absl::string_view payload) {
  uint64_t n_defs;
  if (!GetVarint(&payload, &n_defs)) return absl::DataLossError("bad wal record");
  for (uint64_t i = 0; i < n_defs; i++) {
    uint64_t id, len;
    if (!GetVarint(&payload, &id) || !GetVarint(&payload, &len) || payload.size() < len) {
      return absl::DataLossError("bad series definition in wal");
    }
    const absl::string_view canonical = payload.substr(0, len);
    payload.remove_prefix(len);
    if (id >= series_.size() || series_[id] == nullptr) {
      AddSeries(static_cast<SeriesId>(id), XXH64(canonical.data(), canonical.size(), 0), canonical,
                /*persist=*/true);
    }
  }
  uint64_t base_t;
  if (!GetVarint(&payload, &base_t)) return absl::DataLossError("bad wal record time base");
  const int64_t now = opts_.clock->NowMillis();
  std::string error;
  while (!payload.empty()) {
    uint64_t id, n;
    if (!GetVarint(&payload, &id) || !GetVarint(&payload, &n)) {
      return absl::DataLossError("bad wal entry");
    }
    if (id >= series_.size() || series_[id] == nullptr) {
      return absl::DataLossError(absl::StrCat("wal names unknown series ", id));
    }
    MemSeries* s = series_[id].get();
    auto mark_it = seal_marks_.find(s->id);
    int64_t t = ZigZagDecode(base_t);
    for (uint64_t j = 0; j < n; j++) {
      uint64_t dt, bits;
      if (!GetVarint(&payload, &dt) || !GetFixed64LE(&payload, &bits)) {
        return absl::DataLossError("bad wal sample");
      }
      t = static_cast<int64_t>(static_cast<uint64_t>(t) + static_cast<uint64_t>(ZigZagDecode(dt)));
      if (mark_it != seal_marks_.end()) {
        const uint32_t idx = s->applied_lsn == lsn ? s->applied_idx + 1 : 1;
        if (lsn < mark_it->second.lsn || (lsn == mark_it->second.lsn && idx <= mark_it->second.idx)) {
          AdvancePosition(s, lsn);  // already sealed into RocksDB
          continue;
        }
      }
      double v;
      std::memcpy(&v, &bits, sizeof v);
      // Positions number the record's samples, whatever becomes of them now
      // (retention may reject what was accepted then).
      if (ApplySample(s, t, v, lsn, now, /*replay=*/true, &error) != SampleOutcome::kAppended) {
        AdvancePosition(s, lsn);
      }
    }
  }
  if (batch_.Count() > 10000) RETURN_IF_ERROR(WriteBatchLocked());
  return absl::OkStatus();
}

MemSeries* TSDB::Impl::FindSeries(uint64_t hash, absl::string_view canonical) {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return nullptr;
  if (it->second->canonical == canonical) return it->second;
  auto c = collisions_.find(canonical);
  return c == collisions_.end() ? nullptr : c->second;
}

MemSeries* TSDB::Impl::AddSeries(SeriesId id, uint64_t hash, absl::string_view canonical,
                                 bool persist) {
  auto s = std::make_unique<MemSeries>();
  s->id = id;
  s->hash = hash;
  s->shard = ShardOf(hash, opts_.num_shards);
  s->canonical = std::string(canonical);
  MemSeries* raw = s.get();
  if (!by_hash_.emplace(hash, raw).second) collisions_.emplace(s->canonical, raw);
  if (id >= series_.size()) series_.resize(std::max<size_t>(id + 1, series_.size() * 3 / 2));
  CHECK(series_[id] == nullptr) << "series id " << id << " reused";
  series_[id] = std::move(s);
  next_id_ = std::max(next_id_, id + 1);
  num_series_++;
  shard_series_[raw->shard]++;
  index_.AddSeries(id);
  if (persist) {
    batch_.Put(SeriesKey(id), rocksdb::Slice(canonical.data(), canonical.size()));
    ForEachCanonicalLabel(canonical, [&](absl::string_view n, absl::string_view v) {
      index_.Add(id, n, v);
      batch_.Put(PostingKey(n, v, id), rocksdb::Slice());
    });
  }
  return raw;
}

void TSDB::Impl::AdvancePosition(MemSeries* s, uint64_t lsn) {
  if (s->applied_lsn != lsn) {
    s->applied_lsn = lsn;
    s->applied_idx = 0;
  }
  s->applied_idx++;
}

SampleOutcome TSDB::Impl::ApplySample(MemSeries* s, int64_t t, double v, uint64_t lsn, int64_t now,
                                      bool replay, std::string* error) {
  const uint64_t bits = DoubleBits(v);
  auto reject = [&](absl::string_view why) {
    *error = absl::StrCat("series ", CanonicalToString(s->canonical), ": sample at t=", t, " ", why);
    rejected_total_++;
    return SampleOutcome::kRejected;
  };
  if (!replay && t > now && static_cast<uint64_t>(t) - static_cast<uint64_t>(now) >
                                static_cast<uint64_t>(max_future_ms_)) {
    return reject(absl::StrCat("is too far in the future (more than ", max_future_ms_,
                               "ms after now=", now, ")"));
  }
  if (t == kNoTimestamp) return reject("has a reserved timestamp");
  const int64_t p = Partition(t);
  if (p < min_partition_) return reject("is older than the retention period");
  if (t > s->max_t) {
    if (!s->head.empty() &&
        (s->head.num_samples() >= opts_.chunk_samples || p != s->head_partition)) {
      Seal(s);
    }
    if (s->head.empty()) s->head_partition = p;
    NoteHeadSample(s, lsn);
    s->head.Append(t, v);
    if (s->max_t == kNoTimestamp) s->min_t = t;  // the series' first sample
    s->max_t = t;
    s->last_v_bits = bits;
    AdvancePosition(s, lsn);
    return SampleOutcome::kAppended;
  }
  auto same_t = [&](uint64_t stored_bits) {
    if (stored_bits == bits) {
      duplicates_total_++;
      return SampleOutcome::kDuplicate;
    }
    double stored;
    std::memcpy(&stored, &stored_bits, sizeof stored);
    return reject(absl::StrCat("conflicts with the stored value ",
                               IsStaleNaN(stored) ? "(stale marker)" : absl::StrCat(stored),
                               "; new value ", IsStaleNaN(v) ? "(stale marker)" : absl::StrCat(v)));
  };
  if (t == s->max_t) return same_t(s->last_v_bits);
  if (static_cast<uint64_t>(s->max_t) - static_cast<uint64_t>(t) >
      static_cast<uint64_t>(ooo_window_ms_)) {
    return reject(absl::StrCat("is too old: more than the out-of-order window (", ooo_window_ms_,
                               "ms) before the newest sample at t=", s->max_t));
  }
  absl::StatusOr<std::optional<uint64_t>> stored = FindStored(s, t);
  if (!stored.ok()) return reject(absl::StrCat("could not be checked: ", stored.status().message()));
  if (stored->has_value()) return same_t(**stored);
  if (s->ooo != nullptr && static_cast<int>(s->ooo->size()) >= opts_.chunk_samples) Seal(s);
  if (s->ooo == nullptr) s->ooo = std::make_unique<std::vector<Sample>>();
  auto pos = std::lower_bound(s->ooo->begin(), s->ooo->end(), t,
                              [](const Sample& a, int64_t b) { return a.t < b; });
  s->ooo->insert(pos, Sample{t, v});
  s->min_t = std::min(s->min_t, t);
  NoteHeadSample(s, lsn);
  AdvancePosition(s, lsn);
  out_of_order_total_++;
  return SampleOutcome::kAppended;
}

absl::StatusOr<std::optional<uint64_t>> TSDB::Impl::FindStored(MemSeries* s, int64_t t) {
  if (!s->head.empty() && t >= s->head.first_t() && t <= s->head.last_t()) {
    for (ChunkIterator it(s->head.data()); it.Next();) {
      if (it.t() == t) return std::optional<uint64_t>(it.v_bits());
    }
  }
  if (s->ooo != nullptr) {
    auto pos = std::lower_bound(s->ooo->begin(), s->ooo->end(), t,
                                [](const Sample& a, int64_t b) { return a.t < b; });
    if (pos != s->ooo->end() && pos->t == t) return std::optional<uint64_t>(DoubleBits(pos->v));
  }
  // Chunks sealed earlier in this operation must be visible to the lookup.
  RETURN_IF_ERROR(WriteBatchLocked());
  const std::string prefix = ChunkPrefix(Partition(t), s->shard, s->id);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    ChunkKeyParts parts;
    if (!ParseChunkKey(absl::string_view(it->key().data(), it->key().size()), &parts)) {
      return absl::DataLossError("bad chunk key");
    }
    if (parts.mint > t) break;
    std::vector<Sample> samples;
    RETURN_IF_ERROR(DecodeSealedChunk(absl::string_view(it->value().data(), it->value().size()), &samples));
    for (const Sample& smp : samples) {
      if (smp.t == t) return std::optional<uint64_t>(DoubleBits(smp.v));
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status()));
  return std::optional<uint64_t>();
}

void TSDB::Impl::NoteHeadSample(MemSeries* s, uint64_t lsn) {
  if (s->head_first_lsn == 0) {
    s->head_first_lsn = lsn;
    head_series_++;
  }
  head_samples_++;
}

void TSDB::Impl::Seal(MemSeries* s) {
  if (!s->has_head()) return;
  head_series_--;
  head_samples_ -= s->head_samples();
  // Samples of partitions dropped by retention are discarded here.
  if (!s->head.empty() && s->head_partition >= min_partition_) {
    batch_.Put(ChunkKey(s->head_partition, s->shard, s->id, s->head.first_t()),
               EncodeSealedChunk(s->head.data()));
    s->last_chunk_first_t = s->head.first_t();
    partitions_.insert(s->head_partition);
    chunks_sealed_total_++;
  }
  if (s->ooo != nullptr) {
    // One chunk per partition. Chunk keys cannot collide: a chunk's key holds its
    // first timestamp, and a timestamp is stored at most once per series.
    ChunkEncoder enc;
    int64_t p = 0;
    auto put = [&] {
      if (p < min_partition_) return;
      batch_.Put(ChunkKey(p, s->shard, s->id, enc.first_t()), EncodeSealedChunk(enc.data()));
      partitions_.insert(p);
      chunks_sealed_total_++;
    };
    for (const Sample& smp : *s->ooo) {
      const int64_t sp = Partition(smp.t);
      if (!enc.empty() && sp != p) {
        put();
        enc.Reset();
      }
      p = sp;
      enc.Append(smp.t, smp.v);
    }
    if (!enc.empty()) put();
    s->ooo_sealed_max_t = std::max(s->ooo_sealed_max_t, s->ooo->back().t);
  }
  batch_.Put(MarkKey(s->id), EncodeMark(*s));
  s->sealed_max_t = std::max(s->sealed_max_t, s->max_t);  // every stored sample is sealed now
  s->head.Reset();
  s->ooo.reset();
  s->head_first_lsn = 0;
}

absl::Status TSDB::Impl::WriteBatchLocked() {
  if (batch_.Count() == 0) return absl::OkStatus();
  // No RocksDB WAL: our own WAL holds everything until a memtable flush, and
  // WAL segments are only deleted after one (MaybeTruncateWal, FlushLocked).
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  rocksdb::Status s = db_->Write(wo, &batch_);
  batch_.Clear();
  return FromRocks(s);
}

absl::Status TSDB::Impl::MaybeTruncateWal() {
  const int closed = wal_->closed_segments();
  if (closed == 0 || closed == last_closed_segments_) return absl::OkStatus();
  last_closed_segments_ = closed;
  const uint64_t oldest_last = wal_->oldest_segment_last_lsn();
  const bool over_budget = wal_->total_bytes() > opts_.wal_max_bytes;
  uint64_t min_live = next_lsn_;
  for (const auto& s : series_) {
    if (s == nullptr || s->head_first_lsn == 0) continue;
    if (over_budget && s->head_first_lsn <= oldest_last) {
      Seal(s.get());
      continue;
    }
    min_live = std::min(min_live, s->head_first_lsn);
  }
  if (min_live <= oldest_last) return absl::OkStatus();  // nothing can go yet
  RETURN_IF_ERROR(WriteBatchLocked());
  rocksdb::FlushOptions fo;
  fo.wait = true;
  RETURN_IF_ERROR(FromRocks(db_->Flush(fo)));
  RETURN_IF_ERROR(wal_->DeleteSegmentsBefore(min_live));
  last_closed_segments_ = wal_->closed_segments();
  return absl::OkStatus();
}

absl::Status TSDB::Impl::FlushLocked() {
  for (const auto& s : series_) {
    if (s != nullptr) Seal(s.get());
  }
  RETURN_IF_ERROR(WriteBatchLocked());
  rocksdb::FlushOptions fo;
  fo.wait = true;
  RETURN_IF_ERROR(FromRocks(db_->Flush(fo)));
  RETURN_IF_ERROR(wal_->Rotate());
  RETURN_IF_ERROR(wal_->DeleteSegmentsBefore(next_lsn_));
  last_closed_segments_ = wal_->closed_segments();
  return absl::OkStatus();
}

// Per-thread scratch space so the append path does not allocate per series.
struct AppendScratch {
  struct Prepared {
    uint64_t hash;
    size_t offset;
    size_t size;
    bool suspicious;  // a name or value holds 0xff: must go through validation
  };
  std::string arena;  // canonical labels of every series of the batch
  std::vector<Prepared> prepared;
  std::vector<MemSeries*> found;
  std::vector<const LabelRef*> refs;
  std::string defs, entries, samples, payload;
};

namespace {

AppendScratch& Scratch() {
  thread_local AppendScratch scratch;
  return scratch;
}

// Sorts the non-empty labels of `in` by name into `refs`.
void SortedRefs(const SeriesAppend& in, std::vector<const LabelRef*>* refs) {
  refs->clear();
  for (const LabelRef& l : in.labels) {
    if (!l.value.empty()) refs->push_back(&l);
  }
  std::sort(refs->begin(), refs->end(),
            [](const LabelRef* a, const LabelRef* b) { return a->name < b->name; });
}

absl::Status ValidateSeries(const SeriesAppend& in, const LabelLimits& limits,
                            std::vector<const LabelRef*>* refs) {
  SortedRefs(in, refs);
  std::vector<Label> labels;
  labels.reserve(refs->size());
  for (const LabelRef* l : *refs) labels.push_back(Label{std::string(l->name), std::string(l->value)});
  absl::Status s = ValidateLabels(labels, limits, /*require_sorted=*/true);
  if (s.ok()) return s;
  return absl::InvalidArgumentError(
      absl::StrCat("series ", Labels(std::move(labels)).ToString(), ": ", s.message()));
}

}  // namespace

absl::StatusOr<AppendResult> TSDB::Impl::Append(const std::vector<SeriesAppend>& batch) {
  AppendScratch& sc = Scratch();
  sc.arena.clear();
  sc.prepared.clear();
  for (const SeriesAppend& in : batch) {
    SortedRefs(in, &sc.refs);
    AppendScratch::Prepared p{0, sc.arena.size(), 0, false};
    for (const LabelRef* l : sc.refs) {
      p.suspicious |= std::memchr(l->name.data(), 0xff, l->name.size()) != nullptr ||
                      std::memchr(l->value.data(), 0xff, l->value.size()) != nullptr;
      sc.arena.append(l->name.data(), l->name.size());
      sc.arena.push_back('\xff');
      sc.arena.append(l->value.data(), l->value.size());
      sc.arena.push_back('\xff');
    }
    p.size = sc.arena.size() - p.offset;
    p.hash = XXH64(sc.arena.data() + p.offset, p.size, 0);
    sc.prepared.push_back(p);
  }
  auto canonical = [&](size_t i) {
    return absl::string_view(sc.arena.data() + sc.prepared[i].offset, sc.prepared[i].size);
  };

  AppendResult result;
  uint64_t lsn = 0;
  {
    absl::MutexLock l(&mu_);
    if (!broken_.ok()) return broken_;
    // Pass 1: resolve known series, validate new ones. Nothing is applied yet.
    sc.found.assign(batch.size(), nullptr);
    for (size_t i = 0; i < batch.size(); i++) {
      if (!sc.prepared[i].suspicious) sc.found[i] = FindSeries(sc.prepared[i].hash, canonical(i));
      if (sc.found[i] == nullptr) {
        RETURN_IF_ERROR(ValidateSeries(batch[i], opts_.limits, &sc.refs));
      }
    }
    // Pass 2: create series and apply samples, recording what was applied.
    lsn = next_lsn_++;
    const int64_t now = opts_.clock->NowMillis();
    sc.defs.clear();
    sc.entries.clear();
    uint64_t n_defs = 0;
    std::string error;
    for (size_t i = 0; i < batch.size(); i++) {
      if (batch[i].samples.empty()) continue;  // no series without samples
      MemSeries* s = sc.found[i];
      if (s == nullptr) s = FindSeries(sc.prepared[i].hash, canonical(i));  // repeated in batch
      if (s == nullptr) {
        s = AddSeries(next_id_, sc.prepared[i].hash, canonical(i), /*persist=*/true);
        PutVarint(&sc.defs, s->id);
        PutVarint(&sc.defs, sc.prepared[i].size);
        sc.defs.append(canonical(i).data(), sc.prepared[i].size);
        n_defs++;
      }
      sc.samples.clear();
      uint64_t n = 0;
      int64_t prev_t = now;  // the record's time base
      for (const Sample& smp : batch[i].samples) {
        switch (ApplySample(s, smp.t, smp.v, lsn, now, /*replay=*/false, &error)) {
          case SampleOutcome::kAppended:
            PutVarint(&sc.samples, ZigZagEncode(static_cast<int64_t>(
                                       static_cast<uint64_t>(smp.t) - static_cast<uint64_t>(prev_t))));
            PutFixed64LE(&sc.samples, DoubleBits(smp.v));
            prev_t = smp.t;
            n++;
            result.appended++;
            break;
          case SampleOutcome::kDuplicate:
            result.duplicates++;
            break;
          case SampleOutcome::kRejected:
            result.rejected++;
            if (result.errors.size() < kMaxErrors) result.errors.push_back(std::move(error));
            break;
        }
      }
      if (n > 0) {
        PutVarint(&sc.entries, s->id);
        PutVarint(&sc.entries, n);
        sc.entries.append(sc.samples);
      }
    }
    samples_appended_total_ += result.appended;
    if (n_defs == 0 && sc.entries.empty()) {
      // Nothing new to log, but a duplicate may be of a sample another caller
      // has applied and not yet made durable: wait for that caller's record.
      if (result.duplicates == 0) return result;
      lsn = last_enqueued_lsn_;
    } else {
      RETURN_IF_ERROR(EnqueueLocked(lsn, n_defs, now, sc));
    }
  }
  if (lsn == 0) return result;
  absl::Status s = wal_->WaitDurable(lsn);
  if (!s.ok()) {
    absl::MutexLock l(&mu_);
    broken_ = s;
    return s;
  }
  return result;
}

absl::Status TSDB::Impl::EnqueueLocked(uint64_t lsn, uint64_t n_defs, int64_t base_t,
                                       AppendScratch& sc) {
  sc.payload.clear();
  PutVarint(&sc.payload, n_defs);
  sc.payload.append(sc.defs);
  PutVarint(&sc.payload, ZigZagEncode(base_t));
  sc.payload.append(sc.entries);
  wal_->Enqueue(lsn, sc.payload);
  last_enqueued_lsn_ = lsn;
  absl::Status s = WriteBatchLocked();
  if (s.ok()) s = MaybeTruncateWal();
  if (!s.ok()) broken_ = s;
  return s;
}

// --- TSDB: forwards to Impl ---

TSDB::TSDB(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TSDB::~TSDB() = default;

absl::StatusOr<std::unique_ptr<TSDB>> TSDB::Open(const Options& opts) {
  if (opts.dir.empty()) return absl::InvalidArgumentError("tsdb: dir is required");
  if (opts.num_shards == 0) return absl::InvalidArgumentError("tsdb: num_shards must be > 0");
  if (opts.partition < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError("tsdb: partition must be at least 1ms");
  }
  if (opts.chunk_samples < 1 || opts.chunk_samples > kMaxChunkSamples) {
    return absl::InvalidArgumentError("tsdb: chunk_samples out of range");
  }
  if (opts.ooo_window < absl::ZeroDuration() || opts.clock == nullptr) {
    return absl::InvalidArgumentError("tsdb: bad ooo_window or clock");
  }
  auto impl = std::make_unique<Impl>(opts);
  RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<TSDB>(new TSDB(std::move(impl)));
}

absl::StatusOr<AppendResult> TSDB::Append(const std::vector<SeriesAppend>& batch) {
  return impl_->Append(batch);
}
absl::StatusOr<query::SelectResult> TSDB::Select(const query::SelectHints& hints,
                                                 const std::vector<LabelMatcher>& matchers) {
  return impl_->Select(hints, matchers);
}
absl::StatusOr<std::vector<std::string>> TSDB::LabelNames(const std::vector<LabelMatcher>& matchers,
                                                          int64_t mint, int64_t maxt) {
  return impl_->LabelNames(matchers, mint, maxt);
}
absl::StatusOr<std::vector<std::string>> TSDB::LabelValues(
    absl::string_view name, const std::vector<LabelMatcher>& matchers, int64_t mint, int64_t maxt) {
  return impl_->LabelValues(name, matchers, mint, maxt);
}
std::vector<uint32_t> TSDB::ListShards() { return impl_->ListShards(); }
absl::Status TSDB::ExportShard(uint32_t shard, int64_t mint, int64_t maxt,
                               const std::function<absl::Status(std::vector<Series>)>& fn) {
  return impl_->ExportShard(shard, mint, maxt, fn);
}
absl::Status TSDB::DropShard(uint32_t shard) { return impl_->DropShard(shard); }
absl::StatusOr<uint64_t> TSDB::ShardDigest(uint32_t shard, int64_t mint, int64_t maxt) {
  return impl_->ShardDigest(shard, mint, maxt);
}
absl::StatusOr<int> TSDB::ApplyRetention() { return impl_->ApplyRetention(); }
absl::Status TSDB::Flush() { return impl_->Flush(); }
Stats TSDB::GetStats() { return impl_->GetStats(); }
int64_t TSDB::EstimateMemoryBytes() { return impl_->EstimateMemoryBytes(); }

}  // namespace vigil::storage
