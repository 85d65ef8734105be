// vigil-bench: a load generator for Prometheus remote-write endpoints (vigild,
// Prometheus with --web.enable-remote-write-receiver, VictoriaMetrics) and for
// vigild's gRPC Ingest.Write.
//
//   vigil-bench --url=http://127.0.0.1:9090/api/v1/write --series=100000 --rounds=120
//   vigil-bench --grpc=127.0.0.1:7070 --series=10000 --duration=30s
//   vigil-bench --emit_openmetrics=data.om --series=100000 --rounds=120
//
// The data set is tools/workload.h's: --series node_exporter-like series, each
// scraped --rounds times 15 s apart, ending at the time the run starts (or from
// --start_ms). --concurrency senders each own the series i % concurrency ==
// sender, so every series arrives in order. Remote-write requests are encoded
// before the clock starts when they fit in --preencode_mb.
//
// The run stops when the data set is sent, after --duration, after
// --max_requests, or after --max_errors failed requests, whichever is first.
// It prints a summary and one machine-readable line:
//   RESULT samples=... seconds=... samples_per_sec=... requests=... errors=... p50_ms=... p99_ms=...
// Exit status 0 when no request failed, 1 otherwise, 2 for a usage error.
// Targets must be loopback addresses: this tool is for benchmarks on one machine.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "httplib.h"
#include "proto/vigil/v1/vigil.grpc.pb.h"
#include "tools/encode.h"
#include "tools/workload.h"

ABSL_FLAG(std::string, url, "", "remote-write endpoint, http://127.0.0.1:PORT/api/v1/write");
ABSL_FLAG(std::string, grpc, "", "vigild gRPC address, 127.0.0.1:PORT (instead of --url)");
ABSL_FLAG(int64_t, series, 10000, "number of series (10k to 1M)");
ABSL_FLAG(int64_t, rounds, 0,
          "samples per series (scrapes, 15 s apart); 0: enough for --max_requests, else 24h");
ABSL_FLAG(int64_t, start_ms, 0, "timestamp of the first scrape; 0: so that the last one is now");
ABSL_FLAG(int32_t, samples_per_request, 1000, "samples in each request");
ABSL_FLAG(int32_t, concurrency, 4, "sender threads, each with its own connection and series");
ABSL_FLAG(absl::Duration, duration, absl::Minutes(5), "stop sending after this long");
ABSL_FLAG(int64_t, max_requests, 0, "stop after this many requests in total; 0: no limit");
ABSL_FLAG(int64_t, max_errors, 100, "stop after this many failed requests");
ABSL_FLAG(std::string, mode, "realistic", "values: realistic (node_exporter-like) or random");
ABSL_FLAG(uint64_t, seed, 1, "seed of the generated values");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of each request");
ABSL_FLAG(int64_t, preencode_mb, 1024, "encode remote-write requests up front if they fit");
ABSL_FLAG(std::string, emit_openmetrics, "",
          "write the data set to this file as OpenMetrics (for promtool) and exit");

namespace vigil::tools {
namespace {

constexpr int64_t kDefaultRounds = 24 * 3600 / 15;
constexpr int64_t kEstimatedBytesPerSample = 40;  // snappy'd remote-write, labels included

// "localhost", "::1", "[::1]" and dotted-quad addresses in 127.0.0.0/8. Names
// are not resolved: a name other than localhost is refused.
bool IsLoopbackHost(absl::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4 || parts[0] != "127") return false;
  for (absl::string_view p : parts) {
    int octet;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &octet) || octet > 255) return false;
  }
  return true;
}

struct Endpoint {
  std::string host;
  int port = 0;
  std::string path;  // remote-write only
};

absl::StatusOr<Endpoint> ParseHostPort(absl::string_view hostport) {
  size_t colon = hostport.rfind(':');
  Endpoint e;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(hostport.substr(colon + 1), &e.port) ||
      e.port <= 0 || e.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("\"", hostport, "\" is not HOST:PORT"));
  }
  e.host = std::string(hostport.substr(0, colon));
  if (!IsLoopbackHost(e.host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to target \"", e.host, "\": vigil-bench only sends to loopback addresses"));
  }
  return e;
}

absl::StatusOr<Endpoint> ParseUrl(absl::string_view url) {
  if (!absl::ConsumePrefix(&url, "http://")) {
    return absl::InvalidArgumentError("--url must start with http://");
  }
  size_t slash = url.find('/');
  absl::string_view path = slash == absl::string_view::npos ? "/api/v1/write" : url.substr(slash);
  absl::StatusOr<Endpoint> e = ParseHostPort(url.substr(0, slash));
  if (e.ok()) e->path = std::string(path);
  return e;
}

// Sends one encoded request; the only thing timed per request.
class Sender {
 public:
  virtual ~Sender() = default;
  // Prepares the next request from `batch` (not timed).
  virtual void Prepare(const Batch& batch) = 0;
  // Uses a request made by Prepare, or a pre-encoded remote-write body.
  virtual absl::Status Send(const std::string* body) = 0;
  // Samples the server said it stored, when the protocol says (gRPC).
  int64_t acked() const { return acked_; }

 protected:
  int64_t acked_ = 0;
};

class RemoteWriteSender : public Sender {
 public:
  explicit RemoteWriteSender(const Endpoint& e) : client_(e.host, e.port), path_(e.path) {
    absl::Duration t = absl::GetFlag(FLAGS_timeout);
    client_.set_keep_alive(true);
    client_.set_tcp_nodelay(true);  // headers and body go out in separate writes
    client_.set_connection_timeout(absl::ToChronoSeconds(t));
    client_.set_read_timeout(absl::ToChronoSeconds(t));
    client_.set_write_timeout(absl::ToChronoSeconds(t));
  }
  void Prepare(const Batch& batch) override { body_ = EncodeRemoteWrite(batch); }
  absl::Status Send(const std::string* body) override {
    const std::string& b = body ? *body : body_;
    httplib::Headers headers = {{"Content-Encoding", "snappy"},
                                {"X-Prometheus-Remote-Write-Version", "0.1.0"},
                                {"User-Agent", "vigil-bench"}};
    httplib::Result res = client_.Post(path_.c_str(), headers, b, "application/x-protobuf");
    if (!res) {
      return absl::UnavailableError(absl::StrCat("POST ", path_, ": ", httplib::to_string(res.error())));
    }
    if (res->status / 100 != 2) {
      return absl::UnknownError(absl::StrCat("POST ", path_, ": HTTP ", res->status, ": ",
                                             res->body.substr(0, 300)));
    }
    return absl::OkStatus();
  }

 private:
  httplib::Client client_;
  std::string path_;
  std::string body_;
};

class GrpcSender : public Sender {
 public:
  explicit GrpcSender(const std::string& addr) {
    // One channel per sender, so senders do not share a connection.
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    args.SetMaxSendMessageSize(256 << 20);
    stub_ = vigil::v1::Ingest::NewStub(
        grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args));
  }
  void Prepare(const Batch& batch) override { ToVigilWriteRequest(batch, req_); }
  absl::Status Send(const std::string*) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
    vigil::v1::WriteResponse resp;
    grpc::Status s = stub_->Write(&ctx, req_, &resp);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          absl::StrCat("Ingest.Write: ", s.error_message()));
    }
    acked_ += resp.samples_appended() + resp.samples_duplicate();
    if (resp.samples_rejected() > 0) {
      return absl::UnknownError(absl::StrCat("Ingest.Write rejected ", resp.samples_rejected(),
                                             " samples: ",
                                             resp.errors_size() ? resp.errors(0) : ""));
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<vigil::v1::Ingest::Stub> stub_;
  vigil::v1::WriteRequest req_;
};

// What every sender shares: the stop conditions and the results.
class Run {
 public:
  Run(absl::Time deadline, int64_t max_requests, int64_t max_errors)
      : deadline_(deadline), max_requests_(max_requests), max_errors_(max_errors) {}

  // Claims the next request slot; false when the run is over.
  bool Claim() {
    if (errors_.load() >= max_errors_ || absl::Now() >= deadline_) return false;
    return max_requests_ <= 0 || claimed_.fetch_add(1) < max_requests_;
  }
  void Record(const absl::Status& s, int64_t samples, absl::Duration latency,
              std::vector<double>& latencies_ms) {
    latencies_ms.push_back(absl::ToDoubleMilliseconds(latency));
    if (s.ok()) {
      samples_.fetch_add(samples);
      return;
    }
    if (errors_.fetch_add(1) < 5) {
      absl::MutexLock l(&mu_);
      std::cerr << "vigil-bench: request failed: " << s.message() << "\n";
    }
  }
  int64_t samples() const { return samples_.load(); }
  int64_t errors() const { return errors_.load(); }

 private:
  const absl::Time deadline_;
  const int64_t max_requests_;
  const int64_t max_errors_;
  std::atomic<int64_t> claimed_{0};
  std::atomic<int64_t> samples_{0};
  std::atomic<int64_t> errors_{0};
  absl::Mutex mu_;  // serializes error output
};

struct Prepared {
  std::vector<std::string> bodies;  // pre-encoded remote-write requests
  std::vector<int64_t> samples;     // samples in each
};

// Encodes shard `shard`'s requests, at most `limit` of them (0: all).
Prepared PreEncode(const WorkloadOptions& o, int shard, int shards, int64_t limit) {
  Prepared p;
  ShardGenerator gen(o, shard, shards);
  Batch b;
  while ((limit <= 0 || static_cast<int64_t>(p.bodies.size()) < limit) && gen.Next(b)) {
    p.bodies.push_back(EncodeRemoteWrite(b));
    p.samples.push_back(b.samples);
  }
  return p;
}

// One sender thread's loop: bounded by the data set and by `run`.
void SendLoop(Sender& sender, ShardGenerator& gen, const Prepared* pre, Run& run,
              std::vector<double>& latencies_ms) {
  Batch b;
  for (size_t i = 0;; ++i) {
    const std::string* body = nullptr;
    int64_t samples;
    if (pre != nullptr) {
      if (i >= pre->bodies.size()) return;
      body = &pre->bodies[i];
      samples = pre->samples[i];
    } else {
      if (!gen.Next(b)) return;
      sender.Prepare(b);
      samples = b.samples;
    }
    if (!run.Claim()) return;
    absl::Time t0 = absl::Now();
    absl::Status s = sender.Send(body);
    run.Record(s, samples, absl::Now() - t0, latencies_ms);
  }
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

absl::StatusOr<WorkloadOptions> Options() {
  WorkloadOptions o;
  o.series = absl::GetFlag(FLAGS_series);
  o.samples_per_request = absl::GetFlag(FLAGS_samples_per_request);
  o.seed = absl::GetFlag(FLAGS_seed);
  if (o.series <= 0 || o.series > 100'000'000) return absl::InvalidArgumentError("bad --series");
  if (o.samples_per_request <= 0) return absl::InvalidArgumentError("bad --samples_per_request");
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "random") {
    o.mode = ValueMode::kRandom;
  } else if (mode != "realistic") {
    return absl::InvalidArgumentError("--mode must be realistic or random");
  }
  o.rounds = absl::GetFlag(FLAGS_rounds);
  const int64_t max_requests = absl::GetFlag(FLAGS_max_requests);
  if (o.rounds <= 0) {
    o.rounds = max_requests > 0
                   ? (max_requests * o.samples_per_request + o.series - 1) / o.series
                   : kDefaultRounds;
  }
  o.start_ms = absl::GetFlag(FLAGS_start_ms);
  if (o.start_ms == 0) {
    const int64_t now = absl::ToUnixMillis(absl::Now());
    o.start_ms = now - now % o.interval_ms - (o.rounds - 1) * o.interval_ms;
  }
  return o;
}

absl::Status EmitOpenMetrics(const WorkloadOptions& o, const std::string& path) {
  std::ofstream out(path);
  WriteOpenMetrics(o, out);
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("writing ", path, " failed"));
  std::cout << "wrote " << o.series * o.rounds << " samples to " << path << "\n";
  return absl::OkStatus();
}

struct Summary {
  int64_t samples = 0;  // acknowledged
  int64_t requests = 0;
  int64_t errors = 0;
  double seconds = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

// Sends the data set from `senders.size()` threads, each its own shard;
// returns when every sender has stopped (data sent, deadline, limits).
Summary SendAll(const WorkloadOptions& o, std::vector<std::unique_ptr<Sender>>& senders,
                bool preencode) {
  const int shards = static_cast<int>(senders.size());
  std::vector<std::unique_ptr<ShardGenerator>> gens;
  std::vector<Prepared> prepared(shards);
  std::vector<std::thread> threads;
  for (int s = 0; s < shards; ++s) {
    gens.push_back(std::make_unique<ShardGenerator>(o, s, shards));
    if (preencode) {
      // No shard sends more than --max_requests, whatever the others do.
      threads.emplace_back(
          [&, s] { prepared[s] = PreEncode(o, s, shards, absl::GetFlag(FLAGS_max_requests)); });
    }
  }
  for (std::thread& t : threads) t.join();
  threads.clear();
  int64_t encoded_bytes = 0;
  for (const Prepared& p : prepared) {
    for (const std::string& b : p.bodies) encoded_bytes += static_cast<int64_t>(b.size());
  }
  std::cout << absl::StrFormat(
      "vigil-bench: %d series x %d samples (%s values, start %d), %d per request, %d senders%s\n",
      o.series, o.rounds, absl::GetFlag(FLAGS_mode), o.start_ms, o.samples_per_request, shards,
      preencode ? absl::StrFormat(", pre-encoded (%.1f MiB)", encoded_bytes / 1048576.0) : "");

  std::vector<std::vector<double>> latencies(shards);
  const absl::Time start = absl::Now();
  Run run(start + absl::GetFlag(FLAGS_duration), absl::GetFlag(FLAGS_max_requests),
          absl::GetFlag(FLAGS_max_errors));
  for (int s = 0; s < shards; ++s) {
    threads.emplace_back([&, s] {
      SendLoop(*senders[s], *gens[s], preencode ? &prepared[s] : nullptr, run, latencies[s]);
    });
  }
  for (std::thread& t : threads) t.join();

  Summary sum;
  sum.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  sum.requests = static_cast<int64_t>(all.size());
  sum.p50_ms = Percentile(all, 0.50);
  sum.p99_ms = Percentile(all, 0.99);
  sum.samples = run.samples();
  sum.errors = run.errors();
  return sum;
}

void PrintSummary(const Summary& s, int64_t total) {
  const double rate = s.seconds > 0 ? static_cast<double>(s.samples) / s.seconds : 0;
  std::cout << absl::StrFormat(
      "sent %d of %d samples in %.2f s: %.0f samples/s, %d requests, %d errors, "
      "latency p50 %.2f ms p99 %.2f ms\n",
      s.samples, total, s.seconds, rate, s.requests, s.errors, s.p50_ms, s.p99_ms);
  std::cout << absl::StrFormat(
      "RESULT samples=%d seconds=%.3f samples_per_sec=%.0f requests=%d errors=%d p50_ms=%.3f "
      "p99_ms=%.3f\n",
      s.samples, s.seconds, rate, s.requests, s.errors, s.p50_ms, s.p99_ms);
}

absl::Status Main() {
  absl::StatusOr<WorkloadOptions> opts = Options();
  if (!opts.ok()) return opts.status();
  const WorkloadOptions& o = *opts;
  if (const std::string path = absl::GetFlag(FLAGS_emit_openmetrics); !path.empty()) {
    return EmitOpenMetrics(o, path);
  }
  const std::string url = absl::GetFlag(FLAGS_url), grpc_addr = absl::GetFlag(FLAGS_grpc);
  if (url.empty() == grpc_addr.empty()) {
    return absl::InvalidArgumentError("give exactly one of --url and --grpc");
  }
  absl::StatusOr<Endpoint> endpoint = url.empty() ? ParseHostPort(grpc_addr) : ParseUrl(url);
  if (!endpoint.ok()) return endpoint.status();
  std::vector<std::unique_ptr<Sender>> senders;
  for (int s = 0; s < std::max(1, absl::GetFlag(FLAGS_concurrency)); ++s) {
    if (url.empty()) {
      senders.push_back(std::make_unique<GrpcSender>(grpc_addr));
    } else {
      senders.push_back(std::make_unique<RemoteWriteSender>(*endpoint));
    }
  }
  const int64_t total = o.series * o.rounds;
  const bool preencode = !url.empty() &&
                         total * kEstimatedBytesPerSample <= absl::GetFlag(FLAGS_preencode_mb) << 20;
  const Summary sum = SendAll(o, senders, preencode);
  PrintSummary(sum, total);
  if (sum.errors > 0) return absl::UnknownError(absl::StrCat(sum.errors, " requests failed"));
  return absl::OkStatus();
}

}  // namespace
}  // namespace vigil::tools

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "vigil-bench (--url=http://127.0.0.1:PORT/api/v1/write | --grpc=127.0.0.1:PORT) [flags]");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::cerr << "vigil-bench: unexpected argument \"" << positional[1] << "\"\n";
    return 2;
  }
  absl::Status s = vigil::tools::Main();
  if (!s.ok()) {
    std::cerr << "vigil-bench: " << s.message() << "\n";
    return absl::IsInvalidArgument(s) ? 2 : 1;
  }
  return 0;
}
