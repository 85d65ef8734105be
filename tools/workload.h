// tools/workload.h
//
// The synthetic data set vigil-bench writes: hosts that each export the same
// ~80 node_exporter-like series (CPU, network and disk counters that grow
// slowly, memory/filesystem/load gauges that wander, a few constants, the
// cumulative buckets of one request-latency histogram), scraped
// every `interval_ms`. Series i belongs to host i / SeriesPerHost().
//
// Every value is a pure function of (seed, series, round), so the data set is
// the same however it is sharded among senders, and can be written out as
// OpenMetrics for other tools (promtool) to ingest the same samples.
//
// ShardGenerator walks the series one sender owns (i % num_shards == shard),
// round after round, so each series' samples come out in time order, and packs
// them into batches of about samples_per_request samples.
// Not thread-safe: one generator per sender thread.
#ifndef VIGIL_TOOLS_WORKLOAD_H_
#define VIGIL_TOOLS_WORKLOAD_H_

#include <cstdint>
#include <ostream>
#include <vector>

#include "common/labels.h"
#include "common/sample.h"

namespace vigil::tools {

enum class ValueMode {
  kRealistic,  // node_exporter-like: compresses like real scrapes
  kRandom,     // uniformly random doubles: the compression worst case
};

struct WorkloadOptions {
  int64_t series = 10000;
  int64_t rounds = 240;  // samples per series
  int64_t start_ms = 0;  // timestamp of round 0
  int64_t interval_ms = 15000;
  int samples_per_request = 1000;
  ValueMode mode = ValueMode::kRealistic;
  uint64_t seed = 1;
};

// Number of series each simulated host exports.
int64_t SeriesPerHost();

// The labels of series `i` (sorted; includes __name__, instance and job).
Labels SeriesLabels(int64_t i);

// One request's worth of samples; each series appears once, its samples in
// time order.
struct Batch {
  std::vector<Series> series;
  int64_t samples = 0;
};

class ShardGenerator {
 public:
  ShardGenerator(const WorkloadOptions& opts, int shard, int num_shards);

  // Fills `batch` (cleared first) with the next samples. Returns false when
  // every round of every owned series has been produced (batch left empty).
  bool Next(Batch& batch);

  // Samples this shard produces in total.
  int64_t TotalSamples() const;

 private:
  double NextValue(int64_t series, int64_t local, int64_t round);

  // Constant after construction.
  const WorkloadOptions opts_;
  const std::vector<int64_t> owned_;  // global series ids, ascending

  int64_t round_ = 0;
  size_t next_ = 0;  // index into owned_ within round_
  std::vector<double> values_;         // per owned series: the last value
  std::vector<int64_t> batch_slot_;    // per owned series: index in the batch, or -1
  std::vector<size_t> used_;           // owned series in the current batch
};

// Writes the whole data set as OpenMetrics text (ordered by series, then time;
// timestamps in seconds) ending with `# EOF`, the input of
// `promtool tsdb create-blocks-from openmetrics`.
void WriteOpenMetrics(const WorkloadOptions& opts, std::ostream& out);

}  // namespace vigil::tools

#endif  // VIGIL_TOOLS_WORKLOAD_H_
