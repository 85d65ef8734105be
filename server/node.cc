// server/node.cc
#include "server/node.h"

#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "httplib.h"

namespace vigil::server {

// The TSDB as a SeriesSource, answering kUnavailable until storage has recovered.
class Node::ReadySource final : public query::SeriesSource {
 public:
  explicit ReadySource(std::atomic<storage::TSDB*>* tsdb) : tsdb_(tsdb) {}

  absl::StatusOr<query::SelectResult> Select(const query::SelectHints& hints,
                                             const std::vector<LabelMatcher>& m) override {
    ASSIGN_OR_RETURN(storage::TSDB * db, Get());
    return db->Select(hints, m);
  }
  absl::StatusOr<std::vector<std::string>> LabelNames(const std::vector<LabelMatcher>& m,
                                                      int64_t mint, int64_t maxt) override {
    ASSIGN_OR_RETURN(storage::TSDB * db, Get());
    return db->LabelNames(m, mint, maxt);
  }
  absl::StatusOr<std::vector<std::string>> LabelValues(absl::string_view name,
                                                       const std::vector<LabelMatcher>& m,
                                                       int64_t mint, int64_t maxt) override {
    ASSIGN_OR_RETURN(storage::TSDB * db, Get());
    return db->LabelValues(name, m, mint, maxt);
  }

  absl::StatusOr<storage::TSDB*> Get() const {
    storage::TSDB* db = tsdb_->load();
    if (db == nullptr) return absl::UnavailableError("storage is still recovering");
    return db;
  }

 private:
  std::atomic<storage::TSDB*>* const tsdb_;
};

absl::StatusOr<std::pair<std::string, int>> ParseHostPort(absl::string_view addr) {
  const size_t colon = addr.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad address \"", addr, "\": want HOST:PORT"));
  }
  return std::make_pair(std::string(addr.substr(0, colon)), port);
}

int64_t ProcessRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    int64_t kb = 0;
    absl::string_view rest = absl::StripAsciiWhitespace(absl::string_view(line).substr(6));
    rest = rest.substr(0, rest.find(' '));
    if (absl::SimpleAtoi(rest, &kb)) return kb * 1024;
  }
  return -1;
}

Node::Node(const NodeOptions& opts)
    : opts_(opts), start_time_(opts.storage.clock->Now()), engine_(opts.engine) {
  source_ = std::make_unique<ReadySource>(&tsdb_);
  appended_ = metrics_.GetCounter("vigil_samples_appended_total", "Samples newly stored.");
  duplicates_ = metrics_.GetCounter("vigil_samples_duplicate_total",
                                    "Samples that repeated a stored sample (accepted).");
  rejected_ = metrics_.GetCounter("vigil_samples_rejected_total",
                                  "Samples refused: too old, too far ahead, or conflicting.");
}

absl::StatusOr<std::unique_ptr<Node>> Node::Start(const NodeOptions& opts) {
  std::unique_ptr<Node> node(new Node(opts));
  node->RegisterMetrics();
  RETURN_IF_ERROR(node->StartHttp());
  absl::Status s = node->OpenStorage();
  if (s.ok()) s = node->StartGrpc();
  if (!s.ok()) {
    node->Stop().IgnoreError();
    return s;
  }
  node->retention_thread_ = std::thread([n = node.get()] { n->RetentionLoop(); });
  LOG(INFO) << "vigild node " << opts.node_id << " serving HTTP on port " << node->http_port_
            << ", gRPC on port " << node->grpc_port_;
  return node;
}

Node::~Node() { Stop().IgnoreError(); }

absl::StatusOr<storage::AppendResult> Node::Append(
    const std::vector<storage::SeriesAppend>& batch) {
  storage::TSDB* db = tsdb_.load();
  if (db == nullptr) return absl::UnavailableError("storage is still recovering");
  ASSIGN_OR_RETURN(storage::AppendResult r, db->Append(batch));
  appended_->Inc(static_cast<double>(r.appended));
  duplicates_->Inc(static_cast<double>(r.duplicates));
  rejected_->Inc(static_cast<double>(r.rejected));
  return r;
}

ApiBackend Node::Backend() {
  ApiBackend backend;
  backend.append = [this](const std::vector<storage::SeriesAppend>& b) { return Append(b); };
  backend.source = source_.get();
  backend.engine = &engine_;
  backend.metrics = &metrics_;
  backend.ready = [this] { return tsdb_.load() != nullptr; };
  return backend;
}

absl::Status Node::StartHttp() {
  ASSIGN_OR_RETURN(auto host_port, ParseHostPort(opts_.http_addr));
  const ApiBackend backend = Backend();
  HttpApiOptions http_opts = opts_.http;
  http_opts.version = opts_.version;
  http_opts.clock = opts_.storage.clock;
  http_api_ = std::make_unique<HttpApi>(backend, http_opts);
  http_ = std::make_unique<httplib::Server>();
  const int threads = opts_.http_threads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_api_->Register(http_.get());
  const auto& [host, port] = host_port;
  if (port == 0) {
    http_port_ = http_->bind_to_any_port(host);
  } else {
    http_port_ = http_->bind_to_port(host, port) ? port : -1;
  }
  if (http_port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on HTTP address ", opts_.http_addr));
  }
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs; wait for it so that
  // a Stop() right after Start() cannot leave the loop running forever.
  while (!http_->is_running()) absl::SleepFor(absl::Milliseconds(1));
  return absl::OkStatus();
}

absl::Status Node::OpenStorage() {
  // Real time: this measures the process, whatever clock storage is given.
  const absl::Time start = RealClock::Get()->Now();
  ASSIGN_OR_RETURN(storage_owner_, storage::TSDB::Open(opts_.storage));
  recovery_time_ = RealClock::Get()->Now() - start;
  tsdb_.store(storage_owner_.get());
  LOG(INFO) << "storage in " << opts_.storage.dir << " recovered in "
            << absl::ToInt64Milliseconds(recovery_time_) << " ms";
  return absl::OkStatus();
}

absl::Status Node::StartGrpc() {
  const ApiBackend backend = Backend();
  ingest_service_ = std::make_unique<IngestService>(backend);
  // Real time: the service compares it with the client's (real) deadline.
  query_service_ = std::make_unique<QueryService>(backend, opts_.http.default_query_timeout,
                                                  RealClock::Get());
  admin_service_ = std::make_unique<AdminService>([this] {
    const storage::Stats st = tsdb_.load()->GetStats();
    vigil::v1::StatusResponse r;
    r.set_version(opts_.version);
    r.set_node_id(opts_.node_id);
    r.set_uptime_ms(absl::ToInt64Milliseconds(opts_.storage.clock->Now() - start_time_));
    r.set_series(st.series);
    r.set_head_series(st.head_series);
    r.set_samples_appended_total(st.samples_appended_total);
    r.set_bytes_on_disk(st.bytes_on_disk);
    r.set_recovery_ms(absl::ToInt64Milliseconds(recovery_time_));
    return r;
  });
  grpc::ServerBuilder builder;
  builder.AddListeningPort(opts_.grpc_addr, grpc::InsecureServerCredentials(), &grpc_port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(opts_.http.max_request_bytes));
  builder.RegisterService(ingest_service_.get());
  builder.RegisterService(query_service_.get());
  builder.RegisterService(admin_service_.get());
  grpc_ = builder.BuildAndStart();
  if (grpc_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on gRPC address ", opts_.grpc_addr));
  }
  return absl::OkStatus();
}

void Node::RegisterMetrics() {
  metrics::Gauge* series = metrics_.GetGauge("vigil_series", "Series in the index.");
  metrics::Gauge* head_series =
      metrics_.GetGauge("vigil_head_series", "Series with an open head chunk.");
  metrics::Gauge* head_samples =
      metrics_.GetGauge("vigil_head_samples", "Samples in open head chunks.");
  metrics::Gauge* bytes = metrics_.GetGauge("vigil_storage_bytes_on_disk",
                                            "Bytes of RocksDB SST and WAL files.");
  metrics::Gauge* partitions = metrics_.GetGauge("vigil_storage_partitions", "Time partitions.");
  metrics::Gauge* recovery = metrics_.GetGauge(
      "vigil_storage_recovery_seconds", "How long opening storage took at start.");
  metrics::Gauge* rss = metrics_.GetGauge("process_resident_memory_bytes",
                                          "Resident memory size in bytes.");
  metrics::Gauge* ready = metrics_.GetGauge("vigil_ready", "1 once storage has recovered.");
  metrics_.GetGauge("vigil_build_info", "Build information.", {{"version", opts_.version}})
      ->Set(1);
  metrics_.AddCollectHook([=, this] {
    rss->Set(static_cast<double>(ProcessRssBytes()));
    storage::TSDB* db = tsdb_.load();
    ready->Set(db != nullptr ? 1 : 0);
    if (db == nullptr) return;
    const storage::Stats st = db->GetStats();
    series->Set(static_cast<double>(st.series));
    head_series->Set(static_cast<double>(st.head_series));
    head_samples->Set(static_cast<double>(st.head_samples));
    bytes->Set(static_cast<double>(st.bytes_on_disk));
    partitions->Set(static_cast<double>(st.partitions));
    recovery->Set(absl::ToDoubleSeconds(recovery_time_));
  });
}

void Node::RetentionLoop() {
  metrics::Counter* dropped = metrics_.GetCounter(
      "vigil_retention_partitions_dropped_total", "Time partitions dropped by retention.");
  metrics::Counter* failures =
      metrics_.GetCounter("vigil_retention_failures_total", "Failed retention runs.");
  absl::MutexLock l(&mu_);
  while (!stopping_) {
    mu_.Unlock();
    absl::StatusOr<int> n = tsdb_.load()->ApplyRetention();
    if (n.ok()) {
      dropped->Inc(*n);
      if (*n > 0) LOG(INFO) << "retention dropped " << *n << " partitions";
    } else {
      failures->Inc();
      LOG(WARNING) << "retention failed: " << n.status();
    }
    mu_.Lock();
    // Real time on purpose: this is the I/O shell, and Stop() wakes it.
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), opts_.retention_interval);
  }
}

absl::Status Node::Stop() {
  if (stopped_) return absl::OkStatus();
  stopped_ = true;
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  // Stop accepting first; in-flight requests finish before the calls return.
  if (http_ != nullptr) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
  if (grpc_ != nullptr) {
    grpc_->Shutdown(absl::ToChronoTime(RealClock::Get()->Now() + absl::Seconds(10)));
  }
  if (retention_thread_.joinable()) retention_thread_.join();
  absl::Status s;
  if (storage_owner_ != nullptr) {
    s = storage_owner_->Flush();
    if (!s.ok()) LOG(ERROR) << "flush at shutdown failed: " << s;
  }
  tsdb_.store(nullptr);
  storage_owner_.reset();
  LOG(INFO) << "vigild node " << opts_.node_id << " stopped";
  return s;
}

}  // namespace vigil::server
