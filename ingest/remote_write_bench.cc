// Decode throughput of a remote-write request of 1000 samples (100 series x 10
// samples, node_exporter-like labels): the generated protobuf classes against the
// zero-copy reader. Both include snappy decompression. Reports samples/s.
#include <string>

#include "benchmark/benchmark.h"
#include "glog/logging.h"
#include "ingest/remote_write.h"
#include "proto/prometheus/remote.pb.h"
#include "snappy.h"

namespace vigil::ingest {
namespace {

constexpr int kSeries = 100;
constexpr int kSamplesPerSeries = 10;

std::string MakeBody() {
  prometheus::WriteRequest req;
  for (int s = 0; s < kSeries; ++s) {
    prometheus::TimeSeries* ts = req.add_timeseries();
    const std::pair<std::string, std::string> labels[] = {
        {"__name__", "node_cpu_seconds_total"},
        {"cpu", std::to_string(s % 16)},
        {"instance", "host-" + std::to_string(s / 16) + ".example.com:9100"},
        {"job", "node"},
        {"mode", "user"},
    };
    for (const auto& [n, v] : labels) {
      prometheus::Label* l = ts->add_labels();
      l->set_name(n);
      l->set_value(v);
    }
    for (int i = 0; i < kSamplesPerSeries; ++i) {
      prometheus::Sample* sample = ts->add_samples();
      sample->set_timestamp(1'700'000'000'000 + i * 15'000);
      sample->set_value(12345.67 + i * 0.25);
    }
  }
  std::string raw = req.SerializeAsString(), body;
  snappy::Compress(raw.data(), raw.size(), &body);
  return body;
}

void BM_DecodeGenerated(benchmark::State& state) {
  const std::string body = MakeBody();
  for (auto _ : state) {
    std::string raw;
    CHECK(snappy::Uncompress(body.data(), body.size(), &raw));
    prometheus::WriteRequest req;
    CHECK(req.ParseFromString(raw));
    benchmark::DoNotOptimize(req);
  }
  state.SetItemsProcessed(state.iterations() * kSeries * kSamplesPerSeries);
}
BENCHMARK(BM_DecodeGenerated);

void BM_DecodeZeroCopy(benchmark::State& state) {
  const std::string body = MakeBody();
  for (auto _ : state) {
    absl::StatusOr<DecodedWrite> got = DecodeRemoteWrite(body);
    CHECK(got.ok()) << got.status();
    benchmark::DoNotOptimize(got->series().data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries * kSamplesPerSeries);
}
BENCHMARK(BM_DecodeZeroCopy);

}  // namespace
}  // namespace vigil::ingest
