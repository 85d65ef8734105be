#include "raft/core/raft_log.h"

#include <algorithm>

#include "glog/logging.h"

namespace vigil::raft {

RaftLog::RaftLog(const Storage* storage) : storage_(storage) {
  unstable_offset_ = storage_->LastIndex() + 1;
  committed_ = storage_->FirstIndex() - 1;
  applied_ = committed_;
}

uint64_t RaftLog::first_index() const {
  if (unstable_snapshot_) return unstable_snapshot_->metadata.index + 1;
  return storage_->FirstIndex();
}

uint64_t RaftLog::last_index() const {
  if (!unstable_.empty()) return unstable_offset_ + unstable_.size() - 1;
  if (unstable_snapshot_) return unstable_snapshot_->metadata.index;
  return storage_->LastIndex();
}

uint64_t RaftLog::last_term() const { return TermOrZero(last_index()); }

absl::StatusOr<uint64_t> RaftLog::Term(uint64_t i) const {
  uint64_t dummy = first_index() - 1;
  if (i < dummy) return CompactedError();
  if (i > last_index()) return 0;
  if (i >= unstable_offset_ && i - unstable_offset_ < unstable_.size()) {
    return unstable_[i - unstable_offset_].term;
  }
  if (unstable_snapshot_ && i == unstable_snapshot_->metadata.index) {
    return unstable_snapshot_->metadata.term;
  }
  CHECK(!unstable_snapshot_) << "index " << i << " not covered by the pending snapshot";
  return storage_->Term(i);
}

uint64_t RaftLog::TermOrZero(uint64_t i) const {
  absl::StatusOr<uint64_t> t = Term(i);
  return t.ok() ? *t : 0;
}

bool RaftLog::MatchTerm(uint64_t i, uint64_t term) const {
  absl::StatusOr<uint64_t> t = Term(i);
  return t.ok() && *t == term;
}

bool RaftLog::IsUpToDate(uint64_t lasti, uint64_t term) const {
  return term > last_term() || (term == last_term() && lasti >= last_index());
}

std::optional<uint64_t> RaftLog::MaybeAppend(uint64_t index, uint64_t log_term, uint64_t commit,
                                             const std::vector<Entry>& ents) {
  if (!MatchTerm(index, log_term)) return std::nullopt;
  uint64_t last_new = index + ents.size();
  uint64_t ci = FindConflict(ents);
  if (ci != 0) {
    CHECK_GT(ci, committed_) << "entry " << ci << " conflicts with a committed entry";
    std::vector<Entry> suffix(ents.begin() + (ci - index - 1), ents.end());
    Append(suffix);
  }
  CommitTo(std::min(commit, last_new));
  return last_new;
}

uint64_t RaftLog::Append(const std::vector<Entry>& ents) {
  if (ents.empty()) return last_index();
  CHECK_GT(ents.front().index, committed_) << "appending over committed entries";
  TruncateAndAppend(ents);
  return last_index();
}

// The index of the first entry of `ents` that is new or conflicts with the log, 0 if none.
uint64_t RaftLog::FindConflict(const std::vector<Entry>& ents) const {
  for (const Entry& e : ents) {
    if (!MatchTerm(e.index, e.term)) return e.index;
  }
  return 0;
}

std::pair<uint64_t, uint64_t> RaftLog::FindConflictByTerm(uint64_t index, uint64_t term) const {
  for (; index > 0; --index) {
    absl::StatusOr<uint64_t> t = Term(index);
    if (!t.ok()) return {index, 0};  // compacted: let the leader probe from here
    if (*t <= term) return {index, *t};
  }
  return {0, 0};
}

void RaftLog::TruncateAndAppend(const std::vector<Entry>& ents) {
  uint64_t after = ents.front().index;
  if (after == unstable_offset_ + unstable_.size()) {
    unstable_.insert(unstable_.end(), ents.begin(), ents.end());
  } else if (after <= unstable_offset_) {
    // Replaces the unstable tail and (once persisted) the stored suffix from `after`.
    unstable_offset_ = after;
    unstable_ = ents;
  } else {
    unstable_.resize(after - unstable_offset_);
    unstable_.insert(unstable_.end(), ents.begin(), ents.end());
  }
}

absl::StatusOr<std::vector<Entry>> RaftLog::Slice(uint64_t lo, uint64_t hi,
                                                  uint64_t max_bytes) const {
  CHECK_LE(lo, hi);
  if (lo < first_index()) return CompactedError();
  CHECK_LE(hi, last_index() + 1) << "slice out of bound";
  std::vector<Entry> out;
  if (lo == hi) return out;
  if (lo < unstable_offset_) {
    absl::StatusOr<std::vector<Entry>> stored =
        storage_->Entries(lo, std::min(hi, unstable_offset_), max_bytes);
    if (!stored.ok()) return stored.status();
    out = *std::move(stored);
    if (out.size() < std::min(hi, unstable_offset_) - lo) return out;  // hit the size limit
  }
  uint64_t bytes = 0;
  for (const Entry& e : out) bytes += EntrySize(e);
  for (uint64_t i = std::max(lo, unstable_offset_); i < hi; ++i) {
    const Entry& e = unstable_[i - unstable_offset_];
    bytes += EntrySize(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

std::vector<Entry> RaftLog::NextCommittedEntries(uint64_t max_bytes) const {
  if (!HasNextCommittedEntries()) return {};
  uint64_t lo = std::max(applied_ + 1, first_index());
  absl::StatusOr<std::vector<Entry>> ents = Slice(lo, committed_ + 1, max_bytes);
  CHECK(ents.ok()) << "unexpected error reading committed entries: " << ents.status();
  return *std::move(ents);
}

bool RaftLog::HasNextCommittedEntries() const {
  if (unstable_snapshot_) return false;
  return committed_ + 1 > std::max(applied_ + 1, first_index());
}

void RaftLog::CommitTo(uint64_t commit) {
  if (commit <= committed_) return;
  CHECK_LE(commit, last_index()) << "commit out of range";
  committed_ = commit;
}

bool RaftLog::MaybeCommit(uint64_t index, uint64_t term) {
  if (index > committed_ && TermOrZero(index) == term) {
    CommitTo(index);
    return true;
  }
  return false;
}

void RaftLog::AppliedTo(uint64_t index) {
  if (index == 0) return;
  CHECK(committed_ >= index && index >= applied_)
      << "applied " << index << " out of range [" << applied_ << ", " << committed_ << "]";
  applied_ = index;
}

void RaftLog::Restore(const Snapshot& snap) {
  committed_ = snap.metadata.index;
  unstable_offset_ = snap.metadata.index + 1;
  unstable_.clear();
  unstable_snapshot_ = snap;
}

void RaftLog::StableTo(uint64_t index, uint64_t term) {
  if (index < unstable_offset_ || index - unstable_offset_ >= unstable_.size()) return;
  if (unstable_[index - unstable_offset_].term != term) return;  // overwritten meanwhile
  unstable_.erase(unstable_.begin(), unstable_.begin() + (index + 1 - unstable_offset_));
  unstable_offset_ = index + 1;
}

void RaftLog::StableSnapTo(uint64_t index) {
  if (unstable_snapshot_ && unstable_snapshot_->metadata.index == index) {
    unstable_snapshot_.reset();
  }
}

}  // namespace vigil::raft
