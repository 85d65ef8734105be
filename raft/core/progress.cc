#include "raft/core/progress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace vigil::raft {

void Inflights::Add(uint64_t last_index, uint64_t bytes) {
  CHECK(items_.empty() || items_.back().first < last_index) << "inflights out of order";
  items_.emplace_back(last_index, bytes);
  bytes_ += bytes;
}

void Inflights::FreeLE(uint64_t index) {
  while (!items_.empty() && items_.front().first <= index) {
    bytes_ -= items_.front().second;
    items_.pop_front();
  }
}

void Inflights::FreeFirstOne() {
  if (!items_.empty()) FreeLE(items_.front().first);
}

void Inflights::Reset() {
  items_.clear();
  bytes_ = 0;
}

bool Inflights::Full() const {
  return items_.size() >= max_count_ || (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

void Progress::BecomeProbe() {
  // After a snapshot, probe right after it; otherwise from just past the match.
  if (state == State::kSnapshot) {
    next = std::max(match + 1, pending_snapshot + 1);
  } else {
    next = match + 1;
  }
  state = State::kProbe;
  probe_sent = false;
  pending_snapshot = 0;
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  state = State::kReplicate;
  next = match + 1;
  probe_sent = false;
  pending_snapshot = 0;
  inflights.Reset();
}

void Progress::BecomeSnapshot(uint64_t snapshot_index) {
  state = State::kSnapshot;
  pending_snapshot = snapshot_index;
  snapshot_ticks = 0;
  probe_sent = false;
  inflights.Reset();
}

bool Progress::MaybeUpdate(uint64_t n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::MaybeDecrTo(uint64_t rejected, uint64_t match_hint) {
  if (state == State::kReplicate) {
    // Stale if the rejected append is at or below what we already know matches.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe, only the response to the latest probe (for next-1) counts.
  if (next == 0 || next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  probe_sent = false;
  return true;
}

void Progress::SentEntries(uint64_t last, uint64_t bytes) {
  switch (state) {
    case State::kReplicate:
      if (last >= next) {
        inflights.Add(last, bytes);
        next = last + 1;
      }
      break;
    case State::kProbe:
      probe_sent = true;
      break;
    case State::kSnapshot:
      LOG(FATAL) << "sending entries in snapshot state";
  }
}

bool Progress::IsPaused() const {
  switch (state) {
    case State::kProbe: return probe_sent;
    case State::kReplicate: return inflights.Full();
    case State::kSnapshot: return true;
  }
  return true;
}

std::string Progress::DebugString() const {
  static const char* kNames[] = {"probe", "replicate", "snapshot"};
  return absl::StrCat(kNames[static_cast<int>(state)], " match=", match, " next=", next,
                      learner ? " learner" : "", IsPaused() ? " paused" : "",
                      " inflight=", inflights.count());
}

}  // namespace vigil::raft
