#include "raft/core/storage.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace vigil::raft {

absl::Status CompactedError() { return absl::OutOfRangeError("raft log compacted"); }

bool IsCompacted(const absl::Status& s) {
  return s.code() == absl::StatusCode::kOutOfRange && s.message() == "raft log compacted";
}

MemoryStorage::MemoryStorage() : ents_(1) {}

absl::StatusOr<std::vector<Entry>> MemoryStorage::Entries(uint64_t lo, uint64_t hi,
                                                          uint64_t max_bytes) const {
  uint64_t offset = ents_[0].index;
  if (lo <= offset) return CompactedError();
  CHECK_LE(hi, LastIndex() + 1) << "entries out of bound";
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (uint64_t i = lo; i < hi; ++i) {
    const Entry& e = ents_[i - offset];
    bytes += EntrySize(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

absl::StatusOr<uint64_t> MemoryStorage::Term(uint64_t i) const {
  uint64_t offset = ents_[0].index;
  if (i < offset) return CompactedError();
  if (i - offset >= ents_.size()) return 0;
  return ents_[i - offset].term;
}

void MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  uint64_t first = FirstIndex();
  uint64_t last = entries.back().index;
  if (last < first) return;
  size_t skip = entries.front().index < first ? first - entries.front().index : 0;
  uint64_t start = entries[skip].index;
  CHECK_LE(start, LastIndex() + 1) << "gap appending at " << start;
  ents_.resize(start - ents_[0].index);
  ents_.insert(ents_.end(), entries.begin() + skip, entries.end());
}

absl::Status MemoryStorage::ApplySnapshot(const Snapshot& snap) {
  if (snap.metadata.index <= snapshot_.metadata.index) {
    return absl::FailedPreconditionError("snapshot out of date");
  }
  snapshot_ = snap;
  ents_.assign(1, Entry{});
  ents_[0].index = snap.metadata.index;
  ents_[0].term = snap.metadata.term;
  return absl::OkStatus();
}

absl::StatusOr<Snapshot> MemoryStorage::CreateSnapshot(uint64_t index, const ConfState& cs,
                                                       std::string data) {
  if (index <= snapshot_.metadata.index) {
    return absl::FailedPreconditionError("snapshot out of date");
  }
  CHECK_LE(index, LastIndex()) << "snapshot beyond last index";
  snapshot_.metadata.index = index;
  snapshot_.metadata.term = ents_[index - ents_[0].index].term;
  snapshot_.metadata.conf_state = cs;
  snapshot_.data = std::move(data);
  return snapshot_;
}

absl::Status MemoryStorage::Compact(uint64_t compact_index) {
  uint64_t offset = ents_[0].index;
  if (compact_index <= offset) return CompactedError();
  CHECK_LE(compact_index, LastIndex()) << "compact beyond last index";
  // Entries after the snapshot must stay: a restart rebuilds the configuration from them.
  CHECK_LE(compact_index, snapshot_.metadata.index) << "compact beyond the snapshot";
  uint64_t i = compact_index - offset;
  std::vector<Entry> kept(ents_.begin() + i, ents_.end());
  kept[0].data.clear();
  kept[0].type = EntryType::kNormal;
  ents_ = std::move(kept);
  return absl::OkStatus();
}

void MemoryStorage::Bootstrap(const std::vector<uint64_t>& voters) {
  CHECK_EQ(LastIndex(), 0u) << "bootstrapping a non-empty log";
  std::vector<Entry> entries;
  for (uint64_t id : voters) {
    ConfChange cc{ConfChange::Type::kAddVoter, id, ""};
    entries.push_back(Entry{1, entries.size() + 1, EntryType::kConfChange, cc.Encode()});
  }
  Append(entries);
  hard_state_ = HardState{1, kNone, entries.size()};
}

}  // namespace vigil::raft
