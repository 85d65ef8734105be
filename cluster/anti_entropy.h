// cluster/anti_entropy.h
//
// Anti-entropy planning: decides which time ranges of a shard to stream from
// which replica to which, from per-replica digests of those ranges
// (storage::TSDB::ShardDigest, order-independent over (labels, t, value)).
// Ranges whose digests agree are in sync. A range that differs and is wider than
// min_range is split for a closer look; a narrow one is repaired by union: every
// distinct version of the range is streamed from one holder to every replica
// with another version (appends are idempotent, so after the transfers every
// replica holds the union, which contains every acked sample). Pure logic: the
// shell fetches digests and streams (TSDB::ExportShard into Append).
//
// Thread-compatible free functions.
#ifndef VIGIL_CLUSTER_ANTI_ENTROPY_H_
#define VIGIL_CLUSTER_ANTI_ENTROPY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "cluster/cluster_state.h"
#include "cluster/ring.h"

namespace vigil::cluster {

struct TimeRange {
  int64_t mint = 0;  // inclusive, ms
  int64_t maxt = 0;  // inclusive, ms
  friend bool operator==(const TimeRange&, const TimeRange&) = default;
  friend bool operator<(const TimeRange& a, const TimeRange& b) {
    return a.mint < b.mint || (a.mint == b.mint && a.maxt < b.maxt);
  }
};

struct AntiEntropyOptions {
  // Differing ranges at most this wide are streamed whole; wider ones are split.
  int64_t min_range_ms = 15 * 60 * 1000;
  // Pieces a differing wide range is split into.
  int split = 4;
  // What ShardDigest returns for a range without data, if known: replicas with
  // it have nothing to give and are never sources.
  std::optional<uint64_t> empty_digest;
};

// The digests of one range from the replicas that answered.
struct RangeDigests {
  TimeRange range;
  std::map<NodeId, uint64_t> digests;
};

// Stream `shard`'s samples in `range` from `from` into each node of `to`.
struct Transfer {
  uint32_t shard = 0;
  TimeRange range;
  NodeId from = 0;
  std::vector<NodeId> to;  // ascending
  friend bool operator==(const Transfer&, const Transfer&) = default;
};

struct RepairPlan {
  std::vector<Transfer> transfers;
  std::vector<TimeRange> refine;   // digest these on every replica and plan again
  std::vector<TimeRange> unknown;  // some replica did not answer: planned among the rest
  int in_sync = 0;                 // ranges whose digests all agreed
};

// [mint, maxt] cut at multiples of `width` (> 0): the first and last pieces may
// be partial. Empty if mint > maxt.
std::vector<TimeRange> AlignedRanges(int64_t mint, int64_t maxt, int64_t width);

// One planning step over `ranges` of `shard` held by `replicas`. Digests from
// nodes not in `replicas` are ignored; a range with fewer than two answers is
// only listed as unknown.
RepairPlan PlanRepair(uint32_t shard, const std::vector<NodeId>& replicas,
                      const std::vector<RangeDigests>& ranges, const AntiEntropyOptions& opts);

// PlanRepair to the end: digests `ranges`, refines differing ranges by asking
// `digest` again, and returns the transfers (plus the unknown ranges). A digest
// error counts as that replica not answering.
using DigestFn = std::function<absl::StatusOr<uint64_t>(NodeId node, TimeRange range)>;
RepairPlan PlanShardRepair(uint32_t shard, const std::vector<NodeId>& replicas,
                           std::vector<TimeRange> ranges, const DigestFn& digest,
                           const AntiEntropyOptions& opts);

// The streams that fill the new owners of a move: the nodes of `move.to` not in
// `move.from` get `range` from each of a read quorum of old replicas (the first
// R not in `unavailable`), since any single one may have missed acked writes.
// Empty if no node is new, or fewer than R old replicas are available (then the
// move must wait, or be aborted).
std::vector<Transfer> PlanMoveStreams(const PlannedMove& move, TimeRange range,
                                      const std::vector<NodeId>& unavailable = {});

}  // namespace vigil::cluster

#endif  // VIGIL_CLUSTER_ANTI_ENTROPY_H_
