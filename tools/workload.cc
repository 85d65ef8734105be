#include "tools/workload.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vigil::tools {
namespace {

enum class Kind {
  kCounterCentis,  // CPU seconds: grows by ~rate*interval, 2 decimals
  kCounterInt,     // bytes/packets/events: grows by an integer ~rate*interval
  kGaugePages,     // memory/filesystem bytes: random walk in 4 KiB pages
  kGaugeCentis,    // load average: random walk, 2 decimals, >= 0
  kGaugeSmallInt,  // procs running: 0..4
  kClock,          // node_time_seconds: the scrape time
  kConstant,       // up, sizes, boot time
  kBucket,         // histogram bucket: kCounterInt whose draws are shared per host
};

struct MetricTemplate {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  Kind kind;
  double scale;  // rate per second for counters, step or level for gauges
};

std::vector<MetricTemplate> BuildTemplates() {
  std::vector<MetricTemplate> t;
  const char* modes[] = {"idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"};
  const double mode_rate[] = {0.9, 0.01, 0.0, 0.001, 0.005, 0.0, 0.03, 0.06};
  for (int cpu = 0; cpu < 4; ++cpu) {
    for (int m = 0; m < 8; ++m) {
      t.push_back({"node_cpu_seconds_total", {{"cpu", absl::StrCat(cpu)}, {"mode", modes[m]}},
                   Kind::kCounterCentis, mode_rate[m]});
    }
  }
  for (const char* dev : {"eth0", "lo"}) {
    double f = dev[0] == 'e' ? 1.0 : 0.1;
    t.push_back({"node_network_receive_bytes_total", {{"device", dev}}, Kind::kCounterInt, 2e4 * f});
    t.push_back({"node_network_transmit_bytes_total", {{"device", dev}}, Kind::kCounterInt, 1e4 * f});
    t.push_back({"node_network_receive_packets_total", {{"device", dev}}, Kind::kCounterInt, 30 * f});
    t.push_back({"node_network_transmit_packets_total", {{"device", dev}}, Kind::kCounterInt, 20 * f});
  }
  for (const char* dev : {"sda", "sdb"}) {
    t.push_back({"node_disk_read_bytes_total", {{"device", dev}}, Kind::kCounterInt, 4096});
    t.push_back({"node_disk_written_bytes_total", {{"device", dev}}, Kind::kCounterInt, 16384});
    t.push_back({"node_disk_io_time_seconds_total", {{"device", dev}}, Kind::kCounterCentis, 0.02});
  }
  for (const char* m : {"MemFree", "MemAvailable", "Cached", "Buffers"}) {
    t.push_back({absl::StrCat("node_memory_", m, "_bytes"), {}, Kind::kGaugePages, 64});
  }
  t.push_back({"node_memory_MemTotal_bytes", {}, Kind::kConstant, 16.0 * (1 << 30)});
  const char* mounts[][3] = {{"/dev/sda1", "/", "ext4"}, {"/dev/sdb1", "/data", "xfs"},
                             {"tmpfs", "/run", "tmpfs"}};
  for (const auto& m : mounts) {
    std::vector<std::pair<std::string, std::string>> l = {
        {"device", m[0]}, {"fstype", m[2]}, {"mountpoint", m[1]}};
    t.push_back({"node_filesystem_avail_bytes", l, Kind::kGaugePages, 8});
    t.push_back({"node_filesystem_free_bytes", l, Kind::kGaugePages, 8});
    t.push_back({"node_filesystem_size_bytes", l, Kind::kConstant, 512.0 * (1 << 30)});
  }
  for (const char* n : {"node_load1", "node_load5", "node_load15"}) {
    t.push_back({n, {}, Kind::kGaugeCentis, 0.1});
  }
  t.push_back({"node_context_switches_total", {}, Kind::kCounterInt, 3000});
  t.push_back({"node_intr_total", {}, Kind::kCounterInt, 1500});
  t.push_back({"node_forks_total", {}, Kind::kCounterInt, 2});
  t.push_back({"node_procs_running", {}, Kind::kGaugeSmallInt, 4});
  t.push_back({"node_procs_blocked", {}, Kind::kGaugeSmallInt, 1});
  t.push_back({"node_time_seconds", {}, Kind::kClock, 1});
  t.push_back({"node_boot_time_seconds", {}, Kind::kConstant, 1.7e9});
  t.push_back({"up", {}, Kind::kConstant, 1});
  t.push_back({"scrape_samples_scraped", {}, Kind::kConstant, 1200});
  // A request-latency histogram (cumulative buckets, ~50 requests/s, latencies
  // roughly exponential with a 0.15 s mean).
  const char* les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"};
  for (const char* le : les) {
    double cdf = std::string(le) == "+Inf" ? 1.0 : 1.0 - std::exp(-std::stod(le) / 0.15);
    t.push_back({"node_request_duration_seconds_bucket", {{"le", le}}, Kind::kBucket, 50 * cdf});
  }
  return t;
}

const std::vector<MetricTemplate>& Templates() {
  static const auto* t = new std::vector<MetricTemplate>(BuildTemplates());
  return *t;
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A uniform double in [0, 1) determined by (seed, series, round, salt).
double Uniform(uint64_t seed, int64_t series, int64_t round, uint64_t salt = 0) {
  uint64_t h = SplitMix(seed ^ SplitMix(static_cast<uint64_t>(series) * 0x100000001b3ULL ^
                                        SplitMix(static_cast<uint64_t>(round) + salt)));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

double Centis(double v) { return std::round(v * 100) / 100; }

// The value of series `i` at round 0.
double InitialValue(const MetricTemplate& m, uint64_t seed, int64_t i, int64_t start_ms) {
  double u = Uniform(seed, i, -1);
  switch (m.kind) {
    case Kind::kCounterCentis: return Centis(u * 1e6 * std::max(m.scale, 0.001));
    case Kind::kCounterInt: return std::floor(u * 1e5 * std::max(m.scale, 1.0));
    case Kind::kGaugePages: return 4096.0 * std::floor((0.2 + 0.6 * u) * (1 << 20));
    case Kind::kGaugeCentis: return Centis(u * 4);
    case Kind::kGaugeSmallInt: return std::floor(u * (m.scale + 1));
    case Kind::kClock: return static_cast<double>(start_ms / 1000);
    case Kind::kConstant: return m.scale;
    case Kind::kBucket: return std::floor(u * 1e5 * m.scale);
  }
  return 0;
}

// The value after `prev` one interval later.
double Step(const MetricTemplate& m, double prev, double u, double interval_s) {
  switch (m.kind) {
    case Kind::kCounterCentis: return Centis(prev + m.scale * interval_s * (0.5 + u));
    case Kind::kCounterInt:
    case Kind::kBucket: return prev + std::floor(m.scale * interval_s * (0.5 + u));
    case Kind::kGaugePages:
      // Moves about half the time, by up to `scale` pages either way.
      if (u < 0.5) return prev;
      return std::max(0.0, prev + 4096.0 * std::round((u - 0.75) * 4 * m.scale));
    case Kind::kGaugeCentis: return std::max(0.0, Centis(prev + (u - 0.5) * m.scale));
    case Kind::kGaugeSmallInt: return std::floor(u * (m.scale + 1));
    case Kind::kClock: return prev + interval_s;
    case Kind::kConstant: return prev;
  }
  return prev;
}

// The value of series `i` at `round`, given its value `prev` one round before.
double ValueAt(const WorkloadOptions& opts, int64_t i, int64_t round, double prev) {
  if (opts.mode == ValueMode::kRandom) {
    // Every mantissa bit random: nothing for XOR encoding to exploit.
    return Uniform(opts.seed, i, round) * 1e6;
  }
  const int64_t per_host = static_cast<int64_t>(Templates().size());
  const MetricTemplate& m = Templates()[i % per_host];
  // A histogram's buckets draw the same numbers (keyed by host, not series),
  // so a bucket with a larger `le` never holds or gains less than a smaller one.
  const int64_t key = m.kind == Kind::kBucket ? -1 - i / per_host : i;
  if (round == 0) return InitialValue(m, opts.seed, key, opts.start_ms);
  return Step(m, prev, Uniform(opts.seed, key, round), opts.interval_ms / 1000.0);
}

std::vector<int64_t> OwnedSeries(int64_t series, int shard, int num_shards) {
  std::vector<int64_t> owned;
  for (int64_t i = shard; i < series; i += num_shards) owned.push_back(i);
  return owned;
}

}  // namespace

int64_t SeriesPerHost() { return static_cast<int64_t>(Templates().size()); }

Labels SeriesLabels(int64_t i) {
  const MetricTemplate& m = Templates()[i % SeriesPerHost()];
  std::vector<Label> l;
  l.reserve(m.labels.size() + 3);
  l.push_back({std::string(kMetricNameLabel), m.name});
  l.push_back({"instance", absl::StrFormat("host-%06d:9100", i / SeriesPerHost())});
  l.push_back({"job", "node"});
  for (const auto& [name, value] : m.labels) l.push_back({name, value});
  return Labels(std::move(l));
}

ShardGenerator::ShardGenerator(const WorkloadOptions& opts, int shard, int num_shards)
    : opts_(opts),
      owned_(OwnedSeries(opts.series, shard, num_shards)),
      values_(owned_.size()),
      batch_slot_(owned_.size(), -1) {}

int64_t ShardGenerator::TotalSamples() const {
  return static_cast<int64_t>(owned_.size()) * opts_.rounds;
}

double ShardGenerator::NextValue(int64_t series, int64_t local, int64_t round) {
  double& v = values_[local];
  v = ValueAt(opts_, series, round, v);
  return v;
}

bool ShardGenerator::Next(Batch& batch) {
  batch.series.clear();
  batch.samples = 0;
  used_.clear();
  while (batch.samples < opts_.samples_per_request && round_ < opts_.rounds && !owned_.empty()) {
    int64_t& slot = batch_slot_[next_];
    if (slot < 0) {
      slot = static_cast<int64_t>(batch.series.size());
      used_.push_back(next_);
      batch.series.push_back(Series{SeriesLabels(owned_[next_]), {}});
    }
    batch.series[slot].samples.push_back(
        Sample{opts_.start_ms + round_ * opts_.interval_ms,
               NextValue(owned_[next_], static_cast<int64_t>(next_), round_)});
    ++batch.samples;
    if (++next_ == owned_.size()) {
      next_ = 0;
      ++round_;
    }
  }
  for (size_t local : used_) batch_slot_[local] = -1;
  return batch.samples > 0;
}

void WriteOpenMetrics(const WorkloadOptions& opts, std::ostream& out) {
  for (int64_t i = 0; i < opts.series; ++i) {
    // OpenMetrics allows no spaces between labels, unlike Labels::ToString.
    Labels labels = SeriesLabels(i);
    std::string name(labels.MetricName());
    std::string sep = "{";
    for (const Label& l : labels) {
      if (l.name == kMetricNameLabel) continue;
      absl::StrAppend(&name, sep, l.name, "=\"", l.value, "\"");
      sep = ",";
    }
    name += "}";
    double v = 0;
    for (int64_t r = 0; r < opts.rounds; ++r) {
      v = ValueAt(opts, i, r, v);
      int64_t t = opts.start_ms + r * opts.interval_ms;
      out << name << ' ' << absl::StrFormat("%.17g", v) << ' ' << t / 1000 << '.'
          << absl::StrFormat("%03d", t % 1000) << '\n';
    }
  }
  out << "# EOF\n";
}

}  // namespace vigil::tools
