#include "cluster/anti_entropy.h"

#include <algorithm>
#include <utility>

#include "glog/logging.h"

namespace vigil::cluster {
namespace {

bool Contains(const std::vector<NodeId>& v, NodeId n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

// `r` cut into `parts` nearly equal pieces (fewer if it is narrower).
std::vector<TimeRange> Split(TimeRange r, int parts) {
  std::vector<TimeRange> out;
  const int64_t width = r.maxt - r.mint + 1;
  const int64_t step = std::max<int64_t>(1, (width + parts - 1) / parts);
  for (int64_t t = r.mint; t <= r.maxt; t += step) {
    out.push_back({t, std::min(r.maxt, t + step - 1)});
    if (r.maxt - t < step) break;  // avoids overflow near INT64_MAX
  }
  return out;
}

// Union repair of one narrow range: each distinct version goes from its lowest
// holder to every replica holding another version.
void PlanTransfers(uint32_t shard, const RangeDigests& rd, const std::vector<NodeId>& answered,
                   const AntiEntropyOptions& opts, std::vector<Transfer>* out) {
  std::map<uint64_t, std::vector<NodeId>> versions;  // nodes ascending
  for (NodeId n : answered) versions[rd.digests.at(n)].push_back(n);
  std::vector<Transfer> planned;
  for (const auto& [digest, holders] : versions) {
    if (opts.empty_digest.has_value() && digest == *opts.empty_digest) continue;
    Transfer t{shard, rd.range, holders.front(), {}};
    for (NodeId n : answered) {
      if (!Contains(holders, n)) t.to.push_back(n);
    }
    planned.push_back(std::move(t));
  }
  std::sort(planned.begin(), planned.end(),
            [](const Transfer& a, const Transfer& b) { return a.from < b.from; });
  for (Transfer& t : planned) out->push_back(std::move(t));
}

}  // namespace

std::vector<TimeRange> AlignedRanges(int64_t mint, int64_t maxt, int64_t width) {
  CHECK_GT(width, 0);
  std::vector<TimeRange> out;
  if (mint > maxt) return out;
  int64_t start = mint;
  while (true) {
    const int64_t bucket_end = (FloorDiv(start, width) + 1) * width - 1;
    const int64_t end = std::min(maxt, bucket_end);
    out.push_back({start, end});
    if (end >= maxt) break;
    start = end + 1;
  }
  return out;
}

RepairPlan PlanRepair(uint32_t shard, const std::vector<NodeId>& replicas,
                      const std::vector<RangeDigests>& ranges, const AntiEntropyOptions& opts) {
  CHECK_GE(opts.split, 2);
  std::vector<NodeId> sorted = replicas;
  std::sort(sorted.begin(), sorted.end());
  RepairPlan plan;
  for (const RangeDigests& rd : ranges) {
    std::vector<NodeId> answered;
    for (NodeId n : sorted) {
      if (rd.digests.count(n)) answered.push_back(n);
    }
    if (answered.size() < sorted.size()) plan.unknown.push_back(rd.range);
    if (answered.size() < 2) continue;
    const uint64_t first = rd.digests.at(answered[0]);
    const bool agree = std::all_of(answered.begin(), answered.end(),
                                   [&](NodeId n) { return rd.digests.at(n) == first; });
    if (agree) {
      ++plan.in_sync;
    } else if (rd.range.maxt - rd.range.mint >= opts.min_range_ms) {
      for (const TimeRange& piece : Split(rd.range, opts.split)) plan.refine.push_back(piece);
    } else {
      PlanTransfers(shard, rd, answered, opts, &plan.transfers);
    }
  }
  return plan;
}

RepairPlan PlanShardRepair(uint32_t shard, const std::vector<NodeId>& replicas,
                           std::vector<TimeRange> ranges, const DigestFn& digest,
                           const AntiEntropyOptions& opts) {
  RepairPlan total;
  while (!ranges.empty()) {
    std::vector<RangeDigests> digests;
    for (const TimeRange& r : ranges) {
      RangeDigests rd{r, {}};
      for (NodeId n : replicas) {
        absl::StatusOr<uint64_t> d = digest(n, r);
        if (d.ok()) rd.digests[n] = *d;
      }
      digests.push_back(std::move(rd));
    }
    RepairPlan step = PlanRepair(shard, replicas, digests, opts);
    total.in_sync += step.in_sync;
    for (Transfer& t : step.transfers) total.transfers.push_back(std::move(t));
    for (TimeRange& r : step.unknown) total.unknown.push_back(r);
    ranges = std::move(step.refine);
  }
  return total;
}

std::vector<Transfer> PlanMoveStreams(const PlannedMove& move, TimeRange range,
                                      const std::vector<NodeId>& unavailable) {
  std::vector<Transfer> out;
  std::vector<NodeId> to;
  for (NodeId n : move.to) {
    if (!Contains(move.from, n)) to.push_back(n);
  }
  std::sort(to.begin(), to.end());
  if (to.empty()) return out;
  const size_t need = ReadQuorum(move.from.size());
  for (NodeId n : move.from) {
    if (out.size() == need) break;
    if (!Contains(unavailable, n)) out.push_back(Transfer{move.shard, range, n, to});
  }
  if (out.size() < need) out.clear();
  return out;
}

}  // namespace vigil::cluster
