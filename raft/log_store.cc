#include "raft/log_store.h"

#include <xxhash.h>

#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace vigil::raft {
namespace {

constexpr char kHardStateKey[] = "h";
constexpr char kSnapshotKey[] = "s";
constexpr char kEntryPrefix = 'e';

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool GetFixed64(absl::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v |= static_cast<uint64_t>(static_cast<uint8_t>((*in)[i])) << (8 * i);
  in->remove_prefix(8);
  return true;
}

// Big-endian so RocksDB's bytewise order is index order.
std::string EntryKey(uint64_t index) {
  std::string k(1, kEntryPrefix);
  for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((index >> (8 * i)) & 0xff));
  return k;
}

// Every value is XXH64(payload) followed by the payload.
std::string Seal(const std::string& payload) {
  std::string out;
  PutFixed64(&out, XXH64(payload.data(), payload.size(), 0));
  out += payload;
  return out;
}

absl::StatusOr<absl::string_view> Unseal(absl::string_view value, absl::string_view what) {
  uint64_t sum;
  if (!GetFixed64(&value, &sum) || XXH64(value.data(), value.size(), 0) != sum) {
    return absl::DataLossError(absl::StrCat("raft log: checksum mismatch in ", what));
  }
  return value;
}

std::string EncodeEntry(const Entry& e) {
  std::string p;
  PutFixed64(&p, e.index);
  PutFixed64(&p, e.term);
  p.push_back(static_cast<char>(e.type));
  p += e.data;
  return Seal(p);
}

absl::StatusOr<Entry> DecodeEntry(absl::string_view value) {
  absl::StatusOr<absl::string_view> p = Unseal(value, "entry");
  if (!p.ok()) return p.status();
  Entry e;
  absl::string_view in = *p;
  if (!GetFixed64(&in, &e.index) || !GetFixed64(&in, &e.term) || in.empty()) {
    return absl::DataLossError("raft log: truncated entry");
  }
  e.type = static_cast<EntryType>(in[0]);
  in.remove_prefix(1);
  e.data = std::string(in);
  return e;
}

std::string EncodeHardState(const HardState& hs) {
  std::string p;
  PutFixed64(&p, hs.term);
  PutFixed64(&p, hs.vote);
  PutFixed64(&p, hs.commit);
  return Seal(p);
}

void PutIds(std::string* p, const std::vector<uint64_t>& ids) {
  PutFixed64(p, ids.size());
  for (uint64_t id : ids) PutFixed64(p, id);
}

bool GetIds(absl::string_view* in, std::vector<uint64_t>* ids) {
  uint64_t n;
  if (!GetFixed64(in, &n) || n > in->size() / 8) return false;
  ids->resize(n);
  for (uint64_t& id : *ids) GetFixed64(in, &id);
  return true;
}

std::string EncodeSnapshot(const Snapshot& s) {
  std::string p;
  PutFixed64(&p, s.metadata.index);
  PutFixed64(&p, s.metadata.term);
  PutIds(&p, s.metadata.conf_state.voters);
  PutIds(&p, s.metadata.conf_state.learners);
  p += s.data;
  return Seal(p);
}

absl::StatusOr<Snapshot> DecodeSnapshot(absl::string_view value) {
  absl::StatusOr<absl::string_view> p = Unseal(value, "snapshot");
  if (!p.ok()) return p.status();
  absl::string_view in = *p;
  Snapshot s;
  if (!GetFixed64(&in, &s.metadata.index) || !GetFixed64(&in, &s.metadata.term) ||
      !GetIds(&in, &s.metadata.conf_state.voters) ||
      !GetIds(&in, &s.metadata.conf_state.learners)) {
    return absl::DataLossError("raft log: truncated snapshot");
  }
  s.data = std::string(in);
  return s;
}

absl::Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsCorruption()) return absl::DataLossError(s.ToString());
  return absl::InternalError(s.ToString());
}

}  // namespace

absl::StatusOr<std::unique_ptr<LogStore>> LogStore::Open(const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  rocksdb::DB* raw = nullptr;
  absl::Status s = FromRocks(rocksdb::DB::Open(options, dir, &raw));
  if (!s.ok()) return s;
  std::unique_ptr<LogStore> store(new LogStore(std::unique_ptr<rocksdb::DB>(raw)));
  s = store->Load();
  if (!s.ok()) return s;
  return store;
}

absl::Status LogStore::Load() {
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  std::string value;
  rocksdb::Status rs = db_->Get(ro, kSnapshotKey, &value);
  if (rs.ok()) {
    absl::StatusOr<Snapshot> snap = DecodeSnapshot(value);
    if (!snap.ok()) return snap.status();
    if (!snap->empty()) {
      absl::Status s = mem_.ApplySnapshot(*snap);
      if (!s.ok()) return s;
    }
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs);
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  std::vector<Entry> entries;
  for (it->Seek(EntryKey(0)); it->Valid() && it->key()[0] == kEntryPrefix; it->Next()) {
    absl::StatusOr<Entry> e = DecodeEntry(absl::string_view(it->value().data(), it->value().size()));
    if (!e.ok()) return e.status();
    if (it->key().ToString() != EntryKey(e->index)) {
      return absl::DataLossError(absl::StrCat("raft log: entry ", e->index, " under wrong key"));
    }
    if (e->index <= mem_.LastIndex()) continue;  // covered by the snapshot
    uint64_t expected = entries.empty() ? mem_.LastIndex() + 1 : entries.back().index + 1;
    if (e->index != expected) {
      return absl::DataLossError(absl::StrCat("raft log: gap, expected entry ", expected,
                                              " found ", e->index));
    }
    entries.push_back(*std::move(e));
  }
  absl::Status s = FromRocks(it->status());
  if (!s.ok()) return s;
  mem_.Append(entries);
  rs = db_->Get(ro, kHardStateKey, &value);
  if (rs.ok()) {
    absl::StatusOr<absl::string_view> p = Unseal(value, "hard state");
    if (!p.ok()) return p.status();
    absl::string_view in = *p;
    HardState hs;
    if (!GetFixed64(&in, &hs.term) || !GetFixed64(&in, &hs.vote) || !GetFixed64(&in, &hs.commit)) {
      return absl::DataLossError("raft log: truncated hard state");
    }
    if (hs.commit > mem_.LastIndex()) {
      return absl::DataLossError(absl::StrCat("raft log: commit index ", hs.commit,
                                              " beyond the last entry ", mem_.LastIndex()));
    }
    mem_.SetHardState(hs);
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs);
  }
  return absl::OkStatus();
}

absl::Status LogStore::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, batch));
}

absl::Status LogStore::Save(const std::optional<HardState>& hs, const std::vector<Entry>& entries,
                            const Snapshot& snapshot) {
  if (!hs && entries.empty() && snapshot.empty()) return absl::OkStatus();
  const HardState prev = mem_.GetHardState();
  const bool sync = !entries.empty() || !snapshot.empty() ||
                    (hs && (hs->term != prev.term || hs->vote != prev.vote));
  rocksdb::WriteBatch batch;
  uint64_t last = mem_.LastIndex();
  if (!snapshot.empty()) {
    batch.Put(kSnapshotKey, EncodeSnapshot(snapshot));
    batch.DeleteRange(EntryKey(0), EntryKey(std::numeric_limits<uint64_t>::max()));
    last = snapshot.metadata.index;
  }
  if (!entries.empty()) {
    uint64_t first = entries.front().index;
    if (first <= last) batch.DeleteRange(EntryKey(first), EntryKey(last + 1));
    for (const Entry& e : entries) batch.Put(EntryKey(e.index), EncodeEntry(e));
  }
  if (hs) batch.Put(kHardStateKey, EncodeHardState(*hs));
  absl::Status s = Write(&batch, sync);
  if (!s.ok()) return s;
  ++(sync ? synced_saves_ : unsynced_saves_);
  if (!snapshot.empty()) {
    s = mem_.ApplySnapshot(snapshot);
    if (!s.ok()) return s;
  }
  mem_.Append(entries);
  if (hs) mem_.SetHardState(*hs);
  return absl::OkStatus();
}

absl::Status LogStore::CreateSnapshotAndCompact(uint64_t index, const ConfState& cs,
                                                std::string data, uint64_t compact_index) {
  absl::StatusOr<Snapshot> snap = mem_.CreateSnapshot(index, cs, std::move(data));
  if (!snap.ok()) return snap.status();
  rocksdb::WriteBatch batch;
  batch.Put(kSnapshotKey, EncodeSnapshot(*snap));
  batch.DeleteRange(EntryKey(0), EntryKey(compact_index + 1));
  absl::Status s = Write(&batch);
  if (!s.ok()) return s;
  if (compact_index >= mem_.FirstIndex()) return mem_.Compact(compact_index);
  return absl::OkStatus();
}

absl::Status LogStore::Bootstrap(const std::vector<uint64_t>& voters) {
  if (!empty()) return absl::OkStatus();
  MemoryStorage tmp;
  tmp.Bootstrap(voters);
  absl::StatusOr<std::vector<Entry>> ents =
      tmp.Entries(1, tmp.LastIndex() + 1, std::numeric_limits<uint64_t>::max());
  if (!ents.ok()) return ents.status();
  return Save(tmp.GetHardState(), *ents, Snapshot());
}

}  // namespace vigil::raft
