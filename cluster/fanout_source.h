// cluster/fanout_source.h
//
// FanoutSource: the query::SeriesSource of a cluster node. For every shard it
// reads R = n - W + 1 of the shard's n replicas (so R + W > n: every acked
// sample is seen), coalescing the shards asked of each node into one request,
// and merges the answers: the union of series and, per series, the union of
// samples by timestamp without duplicates (on a conflict the lowest node id's
// value wins, so the answer is deterministic). A replica that fails is replaced
// by the shard's next replica. A shard with fewer than R answers fails the call
// with kUnavailable naming it, unless partial_response is set: then the call
// returns what it has with one warning per such shard (as Thanos and Mimir do).
//
// A slow or silent replica (paused, partitioned) does not hold the query until
// its deadline: reads are hedged (Dean & Barroso's "hedged requests", Cassandra's
// speculative retry). A replica that has not answered hedge_delay after it was
// asked stops counting toward its shards' quorum, and those shards ask their next
// untried replica while the first read stays in flight; a shard is done once R
// replicas answered, and the call returns once every shard is done, without
// waiting for the stragglers (whose late replies are dropped). A read whose
// shards all have another replica left gets its own shorter deadline
// (attempt_timeout); the last candidates get the whole query deadline.
//
// Reads use each shard's current replica set, also during a move (the pending
// owners are still being filled). This node's replica is asked first, nodes
// that recently failed or were hedged (SuspectNodes, if given) last.
// Construct one per query (it is cheap) with the current ShardMap. Thread-safe;
// blocks the calling thread until every shard has its answers or the query
// deadline (FanoutOptions::timeout, on the Clock's monotonic time) passed.
#ifndef VIGIL_CLUSTER_FANOUT_SOURCE_H_
#define VIGIL_CLUSTER_FANOUT_SOURCE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/cluster_state.h"
#include "cluster/replica_client.h"
#include "common/clock.h"
#include "common/event.h"
#include "query/series_source.h"

namespace vigil::cluster {

// Nodes whose reads recently failed or went unanswered past the hedge delay.
// FanoutSource asks them last among a shard's replicas, so that while a node is
// paused or cut off only the first query per `ttl` pays a hedge delay for it.
// A node stops being suspect `ttl` after it was last suspected, or once it
// answers. Shared by the FanoutSources of one node (DataPlane owns one).
// Thread-safe.
class SuspectNodes {
 public:
  // `clock` (monotonic time) must outlive this object.
  explicit SuspectNodes(const Clock* clock, absl::Duration ttl = absl::Seconds(10))
      : clock_(clock), ttl_(ttl) {}
  void Suspect(NodeId n);
  void Clear(NodeId n);
  bool IsSuspect(NodeId n) const;

 private:
  const Clock* const clock_;
  const absl::Duration ttl_;
  mutable absl::Mutex mu_;
  std::map<NodeId, absl::Time> until_ ABSL_GUARDED_BY(mu_);  // monotonic
};

struct FanoutOptions {
  NodeId self = 0;  // asked first for the shards it holds; 0 for none
  // The whole call's deadline: shards without R answers by then fail it.
  absl::Duration timeout = absl::Seconds(30);
  bool partial_response = false;
  // Hedging: a read not answered this long after it was sent no longer counts
  // toward its shards' quorum (they ask their next replica). Adaptive within a
  // query: never less than hedge_latency_factor times the slowest answer so far,
  // so a query that is slow on every replica is not read three times over.
  // InfiniteDuration(): no hedging (a replica is replaced only once it failed).
  absl::Duration hedge_delay = absl::Milliseconds(400);
  double hedge_latency_factor = 2;
  // The deadline of one read whose every shard has another replica left to ask:
  // min(query deadline, sent + attempt_timeout). It then fails and is replaced.
  absl::Duration attempt_timeout = absl::Seconds(10);
  // How the call waits for replies: returns once `wake` was notified (a reply
  // arrived) or the Clock's MonotonicNow() reached `until` (or a little after:
  // it is re-checked). Null: a real monotonic wait (production). Tests with a
  // FakeClock advance it here (nothing else moves time while the call waits).
  std::function<void(Event* wake, absl::Time until)> wait_for_testing;
  // Optional (may be null); must outlive the FanoutSource.
  SuspectNodes* suspects = nullptr;
};

// Merges series lists (each sorted by labels) into one sorted list: series with
// equal labels are combined, samples unioned by timestamp, the first list's
// sample kept on equal timestamps.
std::vector<Series> MergeSeries(std::vector<std::vector<Series>> lists);

class FanoutSource final : public query::SeriesSource {
 public:
  // `reader` and `clock` must outlive this object.
  FanoutSource(std::shared_ptr<const ShardMap> map, ReplicaReader* reader, const Clock* clock,
               FanoutOptions opts);

  absl::StatusOr<query::SelectResult> Select(const query::SelectHints& hints,
                                             const std::vector<LabelMatcher>& matchers) override;
  absl::StatusOr<std::vector<std::string>> LabelNames(const std::vector<LabelMatcher>& matchers,
                                                      int64_t mint, int64_t maxt) override;
  absl::StatusOr<std::vector<std::string>> LabelValues(absl::string_view name,
                                                       const std::vector<LabelMatcher>& matchers,
                                                       int64_t mint, int64_t maxt) override;
  // The partial-response warnings of LabelNames/LabelValues calls so far (the
  // SeriesSource interface has no place for them).
  std::vector<std::string> LabelWarnings() const;

 private:
  struct Gathered {
    std::vector<ReplicaReadReply> replies;  // by ascending node id, then arrival
    std::vector<std::string> warnings;
  };
  // Reads `req` (shards filled in here) from R replicas of every shard
  // (fanout_source.cc's Gatherer).
  absl::StatusOr<Gathered> Gather(ReplicaReadRequest req);
  absl::StatusOr<std::vector<std::string>> GatherStrings(ReplicaReadRequest req);

  // Constant after construction.
  const std::shared_ptr<const ShardMap> map_;
  ReplicaReader* const reader_;
  const Clock* const clock_;
  const FanoutOptions opts_;

  mutable absl::Mutex mu_;
  std::vector<std::string> label_warnings_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_FANOUT_SOURCE_H_
