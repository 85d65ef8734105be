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
// Reads use each shard's current replica set, also during a move (the pending
// owners are still being filled). This node's replica is asked first.
// Construct one per query (it is cheap) with the current ShardMap. Thread-safe;
// blocks the calling thread until the replies are in, which the reader's
// deadline contract bounds.
#ifndef VIGIL_CLUSTER_FANOUT_SOURCE_H_
#define VIGIL_CLUSTER_FANOUT_SOURCE_H_

#include <cstdint>
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
#include "query/series_source.h"

namespace vigil::cluster {

struct FanoutOptions {
  NodeId self = 0;  // asked first for the shards it holds; 0 for none
  absl::Duration timeout = absl::Seconds(30);
  bool partial_response = false;
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
    std::vector<ReplicaReadReply> replies;  // by ascending node id, then round
    std::vector<std::string> warnings;
  };
  // Reads `req` (shards filled in here) from R replicas of every shard.
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
