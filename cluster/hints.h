// cluster/hints.h
//
// HintStore: hinted handoff. When a replica misses a write (it failed, timed out
// or was unreachable), the coordinator keeps the shard's series for it here and
// replays them once the node answers again. Bounded per target node: past
// max_hints or max_samples the oldest hints are dropped, and hints older than
// max_age expire; both are counted, and anti-entropy repairs what they lost.
// Hints live in memory only: a coordinator restart loses them (anti-entropy again).
//
// Thread-safe.
#ifndef VIGIL_CLUSTER_HINTS_H_
#define VIGIL_CLUSTER_HINTS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/ring.h"
#include "common/clock.h"
#include "common/sample.h"

namespace vigil::cluster {

// Series of one shard, shared (not copied) between the replicas' requests and hints.
using SharedSeries = std::shared_ptr<const std::vector<Series>>;

int64_t CountSamples(const std::vector<Series>& series);

struct Hint {
  uint32_t shard = 0;
  SharedSeries series;
  absl::Time created;
};

struct HintOptions {
  size_t max_hints_per_node = 100'000;
  int64_t max_samples_per_node = 10'000'000;
  absl::Duration max_age = absl::Hours(1);
};

struct HintStats {
  int64_t hints = 0;    // queued now
  int64_t samples = 0;  // queued now
  int64_t added = 0;
  int64_t dropped = 0;  // pushed out by the bounds
  int64_t expired = 0;  // older than max_age when taken
  int64_t replayed = 0; // taken and not requeued
};

class HintStore {
 public:
  // `clock` must outlive the store.
  HintStore(HintOptions opts, const Clock* clock);
  HintStore(const HintStore&) = delete;
  HintStore& operator=(const HintStore&) = delete;

  // Queues `series` of `shard` for `target`, dropping the target's oldest hints
  // if the bounds are exceeded (a single hint larger than the bounds is dropped).
  void Add(NodeId target, uint32_t shard, SharedSeries series);
  // Removes and returns up to `max_hints` of `target`'s hints, oldest first,
  // discarding expired ones on the way.
  std::vector<Hint> Take(NodeId target, size_t max_hints);
  // Puts hints that could not be delivered back in front, oldest first, within
  // the bounds (what does not fit is dropped). Not counted as replayed.
  void Requeue(NodeId target, std::vector<Hint> hints);

  // Nodes with queued hints, ascending.
  std::vector<NodeId> Targets() const;
  HintStats Stats(NodeId target) const;

 private:
  struct Queue {
    std::deque<Hint> hints;
    HintStats stats;
  };
  // Drops from the front (oldest) until `q` fits the bounds.
  void Trim(Queue& q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void PopFront(Queue& q);

  // Constant after construction.
  const HintOptions opts_;
  const Clock* const clock_;

  mutable absl::Mutex mu_;
  std::map<NodeId, Queue> queues_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_HINTS_H_
