// TSDB benchmarks (not a test): durable ingest throughput, bytes per sample on
// disk after a flush, and memory per active series.
//
//   ninja -C build tsdb_bench && build/storage/tsdb_bench
//
// BM_AppendDurable: Append batches of 1000 samples (1000 series x 1 sample)
// over 10k series with fsync'd, group-committed acks; samples/s is the
// "items_per_second" column. BM_BytesPerSample: 10k series x 720 samples (3h of
// 15s scrapes) of node_exporter-like data (constant, counter and gauge series),
// then Flush; and the same with random 64-bit values as the worst case.
#include <stdio.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "glog/logging.h"
#include "storage/chunk.h"
#include "storage/tsdb.h"

namespace vigil::storage {
namespace {

constexpr int kSeries = 10000;
constexpr int kBatch = 1000;
constexpr int64_t kStart = 1'700'000'000'000;
constexpr int64_t kScrapeMs = 15000;

// A benchmark's own data directory, removed afterwards.
class BenchDir {
 public:
  BenchDir() {
    std::string tmpl = "/tmp/vigil_tsdb_bench_XXXXXX";
    CHECK(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~BenchDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Label storage for kSeries node_exporter-like series.
struct SeriesSet {
  std::vector<std::vector<std::pair<std::string, std::string>>> labels;
  SeriesSet() {
    static const char* kMetrics[] = {"node_cpu_seconds_total", "node_memory_MemFree_bytes",
                                     "node_network_receive_bytes_total", "node_filesystem_avail_bytes",
                                     "node_disk_io_time_seconds_total"};
    for (int i = 0; i < kSeries; i++) {
      labels.push_back({{"__name__", kMetrics[i % 5]},
                        {"instance", absl::StrCat("host-", i / 100, ".example.com:9100")},
                        {"job", "node"},
                        {"device", absl::StrCat("dev", (i / 5) % 20)}});
    }
  }
  void Fill(int i, SeriesAppend* out) const {
    out->labels.clear();
    for (const auto& [n, v] : labels[i]) out->labels.push_back(LabelRef{n, v});
  }
};

const SeriesSet& Series10k() {
  static const SeriesSet* set = new SeriesSet;
  return *set;
}

// Next value of series i, node_exporter-like: 40% constant (info, sizes,
// limits), 20% integer counters (packets, bytes), 10% counters with two
// decimals (cpu seconds), 20% gauges that change now and then (memory), 10%
// two-decimal gauges (load average). Or random finite doubles: the worst case.
double NextValue(int i, double prev, std::mt19937_64* rng, bool random_values) {
  if (random_values) {
    const uint64_t bits = (*rng)() & 0x7fefffffffffffffULL;
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
  switch (i % 10) {
    case 0: case 1: case 2: case 3:
      return 1000 + i;
    case 4: case 5:
      return prev + ((*rng)() % 5 == 0 ? 0 : static_cast<double>((*rng)() % 1000));
    case 6:
      return std::round((prev + 14.5 + static_cast<double>((*rng)() % 100) / 100.0) * 100) / 100;
    case 7: case 8:
      return (*rng)() % 10 == 0 ? 4e9 + static_cast<double>((*rng)() % 1000) * 4096 : prev;
    default:
      return std::round((std::fabs(prev) < 100 ? prev : 1.0) * 100 +
                        static_cast<double>((*rng)() % 21) - 10) / 100;
  }
}

int64_t RssBytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f != nullptr) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return static_cast<int64_t>(rss) * sysconf(_SC_PAGESIZE);
}

struct Shared {
  std::unique_ptr<BenchDir> dir;
  std::unique_ptr<TSDB> db;
};
Shared* shared = nullptr;

void BM_AppendDurable(benchmark::State& state) {
  if (state.thread_index() == 0) {
    shared = new Shared;
    shared->dir = std::make_unique<BenchDir>();
    Options o;
    o.dir = shared->dir->path();
    o.sync = true;
    o.ooo_window = absl::Hours(24 * 365 * 10);
    auto db = TSDB::Open(o);
    CHECK(db.ok()) << db.status();
    shared->db = std::move(*db);
  }
  const SeriesSet& set = Series10k();
  // Thread k owns series [k*n, (k+1)*n) so each series arrives in order.
  const int per_thread = kSeries / state.threads();
  const int first = state.thread_index() * per_thread;
  std::mt19937_64 rng(state.thread_index());
  std::vector<double> values(per_thread, 1000);
  std::vector<SeriesAppend> batch(kBatch);
  int64_t cursor = 0;
  for (auto _ : state) {
    for (int j = 0; j < kBatch; j++) {
      const int local = static_cast<int>((cursor + j) % per_thread);
      const int64_t round = (cursor + j) / per_thread;
      set.Fill(first + local, &batch[j]);
      values[local] = NextValue(first + local, values[local], &rng, false);
      batch[j].samples.assign(1, Sample{kStart + round * kScrapeMs, values[local]});
    }
    cursor += kBatch;
    auto r = shared->db->Append(batch);
    if (!r.ok() || r->appended != kBatch) {
      state.SkipWithError("append failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  // Every thread has left its loop (the framework's barrier): safe to close.
  if (state.thread_index() == 0) {
    delete shared;
    shared = nullptr;
  }
}
BENCHMARK(BM_AppendDurable)->Threads(1)->UseRealTime()->MinTime(5);
BENCHMARK(BM_AppendDurable)->Threads(4)->UseRealTime()->MinTime(5);
BENCHMARK(BM_AppendDurable)->Threads(8)->UseRealTime()->MinTime(5);

void BM_BytesPerSample(benchmark::State& state) {
  const bool random_values = state.range(0) != 0;
  constexpr int kRounds = 720;  // 3h of 15s scrapes
  const SeriesSet& set = Series10k();
  for (auto _ : state) {
    BenchDir dir;
    Options o;
    o.dir = dir.path();
    o.sync = false;  // measures size, not durability
    o.ooo_window = absl::Hours(24 * 365 * 10);
    auto db = TSDB::Open(o);
    CHECK(db.ok()) << db.status();
    std::mt19937_64 rng(1);
    std::vector<double> values(kSeries, 1000);
    std::vector<SeriesAppend> batch(kBatch);
    int64_t total = 0;
    // The same data in plain 120-sample XOR chunks (what Prometheus' chunks
    // hold), for reference beside our bytes on disk.
    std::vector<ChunkEncoder> gorilla(kSeries);
    int64_t gorilla_bytes = 0;
    for (int round = 0; round < kRounds; round++) {
      for (int first = 0; first < kSeries; first += kBatch) {
        for (int j = 0; j < kBatch; j++) {
          set.Fill(first + j, &batch[j]);
          values[first + j] = NextValue(first + j, values[first + j], &rng, random_values);
          batch[j].samples.assign(1, Sample{kStart + round * kScrapeMs, values[first + j]});
          ChunkEncoder& g = gorilla[first + j];
          if (g.num_samples() == 120) {
            gorilla_bytes += static_cast<int64_t>(g.data().size());
            g.Reset();
          }
          g.Append(kStart + round * kScrapeMs, values[first + j]);
        }
        auto r = (*db)->Append(batch);
        CHECK(r.ok() && r->appended == kBatch);
        total += kBatch;
      }
    }
    for (const ChunkEncoder& g : gorilla) gorilla_bytes += static_cast<int64_t>(g.data().size());
    state.counters["xor_chunk_bytes_per_sample"] = static_cast<double>(gorilla_bytes) / total;
    CHECK((*db)->Flush().ok());
    Stats st = (*db)->GetStats();
    state.counters["bytes_per_sample"] = static_cast<double>(st.bytes_on_disk) / total;
    state.counters["samples"] = static_cast<double>(total);
    state.SetItemsProcessed(total);
  }
}
// RSS growth per active series: 200k series with 20 samples each in their heads.
void BM_MemoryPerSeries(benchmark::State& state) {
  constexpr int kMany = 200000;
  std::vector<std::vector<std::string>> values;
  for (int i = 0; i < kMany; i++) {
    values.push_back({absl::StrCat("host-", i / 100, ".example.com:9100"), absl::StrCat("dev", i % 100)});
  }
  for (auto _ : state) {
    BenchDir dir;
    Options o;
    o.dir = dir.path();
    o.sync = false;
    auto db = TSDB::Open(o);
    CHECK(db.ok()) << db.status();
    const int64_t rss_before = RssBytes();
    std::vector<SeriesAppend> batch(kBatch);
    std::mt19937_64 rng(1);
    for (int round = 0; round < 20; round++) {
      for (int first = 0; first < kMany; first += kBatch) {
        for (int j = 0; j < kBatch; j++) {
          const int i = first + j;
          batch[j].labels = {{"__name__", "node_network_receive_bytes_total"},
                             {"instance", values[i][0]}, {"job", "node"}, {"device", values[i][1]}};
          batch[j].samples.assign(1, Sample{kStart + round * kScrapeMs, NextValue(i, 1000 + round, &rng, false)});
        }
        auto r = (*db)->Append(batch);
        CHECK(r.ok() && r->appended == kBatch);
      }
    }
    state.counters["rss_per_series"] = static_cast<double>(RssBytes() - rss_before) / kMany;
    state.counters["est_mem_per_series"] =
        static_cast<double>((*db)->EstimateMemoryBytes()) / kMany;
  }
}
BENCHMARK(BM_MemoryPerSeries)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// Restart time: 10k series with 100 samples each, closed without Flush, so
// Open replays the WAL (heads of up to 120 samples) on top of sealed chunks.
void BM_Recovery(benchmark::State& state) {
  const SeriesSet& set = Series10k();
  for (auto _ : state) {
    BenchDir dir;
    Options o;
    o.dir = dir.path();
    o.sync = false;
    {
      auto db = TSDB::Open(o);
      CHECK(db.ok()) << db.status();
      std::vector<SeriesAppend> batch(kBatch);
      for (int round = 0; round < 100; round++) {
        for (int first = 0; first < kSeries; first += kBatch) {
          for (int j = 0; j < kBatch; j++) {
            set.Fill(first + j, &batch[j]);
            batch[j].samples.assign(1, Sample{kStart + round * kScrapeMs, 1.0 * round});
          }
          CHECK((*db)->Append(batch).ok());
        }
      }
    }
    auto db = TSDB::Open(o);
    CHECK(db.ok()) << db.status();
    const Stats st = (*db)->GetStats();
    state.counters["recovery_ms"] = absl::ToDoubleMilliseconds(st.recovery_time);
    state.counters["head_samples"] = static_cast<double>(st.head_samples);
  }
}
BENCHMARK(BM_Recovery)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// Select cost per series: 10k series x 260 samples (65 min of 15 s scrapes,
// two sealed chunks and a head each), then Select of every series over the
// instant-query window (5 min, Arg 0) or a 1 h range (Arg 1).
void BM_Select(benchmark::State& state) {
  constexpr int kRounds = 260;
  const SeriesSet& set = Series10k();
  BenchDir dir;
  Options o;
  o.dir = dir.path();
  o.sync = false;
  o.ooo_window = absl::Hours(24 * 365 * 10);
  auto db = TSDB::Open(o);
  CHECK(db.ok()) << db.status();
  std::vector<SeriesAppend> batch(kBatch);
  for (int round = 0; round < kRounds; round++) {
    for (int first = 0; first < kSeries; first += kBatch) {
      for (int j = 0; j < kBatch; j++) {
        set.Fill(first + j, &batch[j]);
        batch[j].samples.assign(1, Sample{kStart + round * kScrapeMs, 1.0 * round});
      }
      CHECK((*db)->Append(batch).ok());
    }
  }
  const int64_t last = kStart + (kRounds - 1) * kScrapeMs;
  query::SelectHints hints{last - (state.range(0) == 0 ? 300000 : 3900000), last};
  auto m = LabelMatcher::Create(MatchType::kRegexMatch, "__name__", ".+");
  CHECK(m.ok()) << m.status();
  const std::vector<LabelMatcher> matchers = {*m};
  int64_t samples = 0;
  for (auto _ : state) {
    auto r = (*db)->Select(hints, matchers);
    CHECK(r.ok() && r->series.size() == kSeries) << r.status();
    samples = 0;
    for (const Series& s : r->series) samples += static_cast<int64_t>(s.samples.size());
  }
  state.counters["samples_per_series"] = static_cast<double>(samples) / kSeries;
  state.SetItemsProcessed(state.iterations() * kSeries);  // items/s: series read per second
}
BENCHMARK(BM_Select)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK(BM_BytesPerSample)->Arg(0)->Arg(1)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace vigil::storage

BENCHMARK_MAIN();
