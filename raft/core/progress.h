// raft/core/progress.h
//
// Progress: the leader's view of one follower's log (etcd's tracker.Progress), and Inflights, the
// bounded window of appends sent but not yet acknowledged. Thread-compatible.
#ifndef VIGIL_RAFT_CORE_PROGRESS_H_
#define VIGIL_RAFT_CORE_PROGRESS_H_

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

namespace vigil::raft {

// Appends in flight to one follower, bounded by count and bytes (pipelining with back-pressure).
class Inflights {
 public:
  Inflights(size_t max_count, uint64_t max_bytes) : max_count_(max_count), max_bytes_(max_bytes) {}
  void Add(uint64_t last_index, uint64_t bytes);
  // Acknowledges every append whose last index is <= `index`.
  void FreeLE(uint64_t index);
  // Frees the oldest slot (a heartbeat response proves the follower is alive; a lost append
  // must not stall the pipeline forever).
  void FreeFirstOne();
  void Reset();
  bool Full() const;
  size_t count() const { return items_.size(); }

 private:
  size_t max_count_;
  uint64_t max_bytes_;  // 0 = unlimited
  uint64_t bytes_ = 0;
  std::deque<std::pair<uint64_t, uint64_t>> items_;  // (last index, bytes), increasing
};

class Progress {
 public:
  enum class State : uint8_t {
    // One append at a time until the follower's match index is found.
    kProbe,
    // Optimistic pipelining: next advances on send, bounded by inflights.
    kReplicate,
    // An InstallSnapshot is outstanding; nothing else is sent.
    kSnapshot,
  };

  Progress(uint64_t next, size_t max_inflight, uint64_t max_inflight_bytes, bool learner)
      : next(next), learner(learner), inflights(max_inflight, max_inflight_bytes) {}

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(uint64_t snapshot_index);
  // A successful append response up to `n`; false if stale.
  bool MaybeUpdate(uint64_t n);
  // A rejected append of index `rejected`; `match_hint` is where to probe next. False if stale.
  bool MaybeDecrTo(uint64_t rejected, uint64_t match_hint);
  // Records an append whose last entry is `last` (bytes in total) as sent.
  void SentEntries(uint64_t last, uint64_t bytes);
  bool IsPaused() const;
  std::string DebugString() const;

  // Invariant: match < next.
  uint64_t match = 0;
  uint64_t next;
  State state = State::kProbe;
  // In kProbe: an append was sent and no response came since (reset on heartbeat response).
  bool probe_sent = false;
  // In kSnapshot: the index of the snapshot sent, and ticks since (resent after a timeout).
  uint64_t pending_snapshot = 0;
  int snapshot_ticks = 0;
  // Heard from since the last check-quorum round.
  bool recent_active = false;
  bool learner;
  Inflights inflights;
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_CORE_PROGRESS_H_
