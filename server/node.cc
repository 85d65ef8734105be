// server/node.cc
#include "server/node.h"

#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "alerting/file_replicator.h"
#include "alerting/promql.h"
#include "common/grpc_deadline.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "cluster/control_http.h"
#include "httplib.h"
#include "ui/ui.h"

namespace vigil::server {

// The TSDB as a SeriesSource, answering kUnavailable until the node serves.
class Node::ReadySource final : public query::SeriesSource {
 public:
  // In cluster mode `cluster` is set (before `tsdb`) and reads fan out through it.
  ReadySource(std::atomic<storage::TSDB*>* tsdb, std::atomic<query::SeriesSource*>* cluster,
              const std::atomic<bool>* serving)
      : tsdb_(tsdb), cluster_(cluster), serving_(serving) {}

  absl::StatusOr<query::SelectResult> Select(const query::SelectHints& hints,
                                             const std::vector<LabelMatcher>& m) override {
    ASSIGN_OR_RETURN(query::SeriesSource * db, Get());
    return db->Select(hints, m);
  }
  absl::StatusOr<std::vector<std::string>> LabelNames(const std::vector<LabelMatcher>& m,
                                                      int64_t mint, int64_t maxt) override {
    ASSIGN_OR_RETURN(query::SeriesSource * db, Get());
    return db->LabelNames(m, mint, maxt);
  }
  absl::StatusOr<std::vector<std::string>> LabelValues(absl::string_view name,
                                                       const std::vector<LabelMatcher>& m,
                                                       int64_t mint, int64_t maxt) override {
    ASSIGN_OR_RETURN(query::SeriesSource * db, Get());
    return db->LabelValues(name, m, mint, maxt);
  }

  absl::StatusOr<query::SeriesSource*> Get() const {
    storage::TSDB* db = tsdb_->load();
    if (db == nullptr) return absl::UnavailableError("storage is still recovering");
    if (!serving_->load()) return absl::UnavailableError("the node is starting");
    query::SeriesSource* cluster = cluster_->load();
    if (cluster != nullptr) return cluster;
    return db;
  }

 private:
  std::atomic<storage::TSDB*>* const tsdb_;
  std::atomic<query::SeriesSource*>* const cluster_;
  const std::atomic<bool>* const serving_;
};

// Recording-rule results, ALERTS and ALERTS_FOR_STATE go in like any write
// (through the data plane in a cluster).
class Node::RuleAppender final : public alerting::SampleAppender {
 public:
  explicit RuleAppender(Node* node) : node_(node) {}
  absl::Status Append(const std::vector<Series>& series) override {
    std::vector<storage::SeriesAppend> batch;
    batch.reserve(series.size());
    for (const Series& s : series) {
      storage::SeriesAppend& a = batch.emplace_back();
      for (const Label& l : s.labels) a.labels.push_back({l.name, l.value});
      a.samples = s.samples;
    }
    return node_->Append(batch).status();
  }

 private:
  Node* const node_;
};

// Alerting payloads as control-plane registers (alerting::AlertingPayloadKey):
// they survive log compaction, and SubscribeRegisters hands them back in order.
class Node::CpReplicator final : public alerting::Replicator {
 public:
  explicit CpReplicator(cluster::ControlPlane* cp) : cp_(cp) {}
  // Once the leader applied its term's first entry it holds every state
  // committed before its term.
  uint64_t LeaderTerm() override {
    const raft::RaftStatus st = cp_->raft_status();
    return st.role == raft::Role::kLeader && st.leader_applied ? st.term : 0;
  }
  // A rule set may come in on any node (forwarded to the leader).
  void Propose(std::string bytes, std::function<void(absl::Status)> done) override {
    absl::StatusOr<std::string> key = alerting::AlertingPayloadKey(bytes);
    if (!key.ok()) return done(key.status());
    done(cp_->PutRegister(*key, bytes).status());
  }
  // Alert state only from the leader of `term`, and only in that term: a
  // deposed leader's late evaluation is never forwarded nor committed.
  void ProposeFenced(uint64_t term, std::string bytes,
                     std::function<void(absl::Status)> done) override {
    absl::StatusOr<std::string> key = alerting::AlertingPayloadKey(bytes);
    if (!key.ok()) return done(key.status());
    done(cp_->PutRegisterFenced(*key, bytes, term).status());
  }

 private:
  cluster::ControlPlane* const cp_;
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
  source_ = std::make_unique<ReadySource>(&tsdb_, &cluster_source_ptr_, &serving_);
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
  // After the control plane started: a bad --rule_files is an error here.
  if (s.ok()) s = node->alerting_->Start();
  if (!s.ok()) {
    node->Stop().IgnoreError();
    return s;
  }
  node->retention_thread_ = std::thread([n = node.get()] { n->RetentionLoop(); });
  node->serving_.store(true);
  LOG(INFO) << "vigild node " << opts.node_id << " serving HTTP on port " << node->http_port_
            << ", gRPC on port " << node->grpc_port_;
  return node;
}

Node::~Node() { Stop().IgnoreError(); }

absl::StatusOr<storage::AppendResult> Node::Append(
    const std::vector<storage::SeriesAppend>& batch) {
  storage::TSDB* db = tsdb_.load();
  if (db == nullptr) return absl::UnavailableError("storage is still recovering");
  if (!serving_.load()) return absl::UnavailableError("the node is starting");
  // Set before tsdb_, constant after: in a cluster every write is replicated.
  if (data_plane_ != nullptr) return data_plane_->Write(batch);
  return AppendLocal(db, batch);
}

absl::StatusOr<storage::AppendResult> Node::AppendLocal(
    storage::TSDB* db, const std::vector<storage::SeriesAppend>& batch) {
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
  backend.source_for = [this](bool partial) -> query::SeriesSource* {
    // Null (the default source) until the cluster's sources exist.
    if (cluster_source_ptr_.load() == nullptr) return nullptr;
    return partial ? partial_source_.get() : strict_source_.get();
  };
  backend.engine = &engine_;
  backend.metrics = &metrics_;
  backend.ready = [this] { return serving_.load(); };
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
  ui::RegisterUiRoutes(http_.get());
  if (!opts_.cluster.peers.empty() && !opts_.cluster.static_map) {
    RETURN_IF_ERROR(CreateControlPlane());
    cluster::RegisterControlRoutes(http_.get(), control_plane_.get());
  }
  RETURN_IF_ERROR(CreateAlerting());
  alerting_->RegisterRoutes(http_.get());
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
  if (!opts_.cluster.peers.empty()) RETURN_IF_ERROR(StartDataPlane());
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
  if (data_plane_ != nullptr) {
    storage::TSDB* db = storage_owner_.get();
    // Fences incoming writes with this node's shard map (cluster/fencing.h).
    replica_service_ = std::make_unique<cluster::ReplicaService>(
        [this, db](const std::vector<storage::SeriesAppend>& b) { return AppendLocal(db, b); },
        db, opts_.storage.num_shards, [dp = data_plane_.get()] { return dp->current_map(); });
    builder.RegisterService(replica_service_.get());
  }
  if (control_plane_ != nullptr) control_plane_->RegisterServices(&builder);
  grpc_ = builder.BuildAndStart();
  if (grpc_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on gRPC address ", opts_.grpc_addr));
  }
  if (control_plane_ != nullptr) RETURN_IF_ERROR(control_plane_->Start());
  return absl::OkStatus();
}

absl::Status Node::CreateControlPlane() {
  const ClusterNodeOptions& c = opts_.cluster;
  cluster::ControlPlaneOptions o;
  o.node_id = static_cast<cluster::NodeId>(opts_.node_id);
  o.peers = c.peers;
  o.data_dir = opts_.storage.dir + "/control";
  o.replication_factor = c.replication_factor;
  o.num_shards = opts_.storage.num_shards;
  o.metrics = &metrics_;
  o.join = !c.join.empty();
  o.join_via = c.join;
  o.stream_shard = [this](const cluster::Transfer& t, std::function<void(absl::Status)> done) {
    cluster::DataPlane* dp = stream_target_.load();
    if (dp == nullptr) return done(absl::UnavailableError("the data plane is not running"));
    dp->StreamShard(t, std::move(done));
  };
  o.stream_status = [this] {
    cluster::DataPlane* dp = stream_target_.load();
    return dp == nullptr ? nlohmann::json::object() : dp->StreamsJson();
  };
  ASSIGN_OR_RETURN(control_plane_, cluster::ControlPlane::Create(std::move(o)));
  return absl::OkStatus();
}

absl::Status Node::CreateAlerting() {
  rule_querier_ = std::make_unique<alerting::EngineRuleQuerier>(&engine_, source_.get());
  rule_appender_ = std::make_unique<RuleAppender>(this);
  alerting::FileReplicator* local = nullptr;
  if (control_plane_ != nullptr) {
    rule_replicator_ = std::make_unique<CpReplicator>(control_plane_.get());
  } else {
    // Without the Raft control plane this node is its own log, on disk.
    ASSIGN_OR_RETURN(std::unique_ptr<alerting::FileReplicator> r,
                     alerting::FileReplicator::Open(opts_.storage.dir + "/alerting"));
    local = r.get();
    rule_replicator_ = std::move(r);
  }
  alerting_ = std::make_unique<alerting::AlertingService>(
      opts_.alerting, opts_.storage.clock, rule_querier_.get(), rule_appender_.get(),
      rule_replicator_.get());
  if (local != nullptr) {
    local->set_service(alerting_.get());
    RETURN_IF_ERROR(local->Restore());
  }
  if (control_plane_ != nullptr) {
    // Before the control plane starts, so that its replay reaches the service.
    control_plane_->SubscribeRegisters(
        "alerting/", [a = alerting_.get()](absl::string_view key, absl::string_view value) {
          absl::Status s = a->OnCommitted(value);
          if (!s.ok()) LOG(WARNING) << "alerting register " << key << " ignored: " << s;
        });
  }
  alerting_->ExportMetrics(&metrics_);
  return absl::OkStatus();
}

absl::Status Node::StartDataPlane() {
  const ClusterNodeOptions& c = opts_.cluster;
  const cluster::NodeId self = static_cast<cluster::NodeId>(opts_.node_id);
  if (c.peers.find(self) == c.peers.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--peers does not list this node's id ", opts_.node_id));
  }
  std::function<std::shared_ptr<const cluster::ShardMap>()> current_map;
  if (c.static_map) {
    cluster::ClusterOptions co;
    co.num_shards = opts_.storage.num_shards;
    cluster::ClusterState state(co);
    cluster::v1::Command cmd;
    for (const auto& [id, addr] : c.peers) {
      cluster::v1::Member* m = cmd.mutable_bootstrap()->add_members();
      m->set_id(id);
      m->set_grpc_address(addr.grpc_address);
      m->set_http_address(addr.http_address);
    }
    cmd.mutable_bootstrap()->set_replication_factor(c.replication_factor);
    const cluster::v1::CommandResult r = state.Apply(1, cluster::EncodeCommand(cmd));
    if (r.code() != 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad cluster membership: ", r.message()));
    }
    current_map = [map = state.shard_map()] { return map; };
  } else {
    current_map = [cp = control_plane_.get()] { return cp->shard_map(); };
  }

  cluster::DataPlaneOptions o;
  o.self = self;
  o.num_shards = opts_.storage.num_shards;
  o.write_timeout = c.write_timeout;
  o.read_timeout = opts_.http.default_query_timeout;
  o.read_hedge_delay = c.read_hedge_delay;
  o.read_attempt_timeout = c.read_attempt_timeout;
  o.partial_response = c.partial_response;
  o.anti_entropy_interval = c.anti_entropy_interval;
  storage::TSDB* db = storage_owner_.get();
  cluster::AddressFn address;
  if (control_plane_ != nullptr) {
    // The committed member list: nodes added later are reachable too.
    address = [cp = control_plane_.get()](cluster::NodeId id) { return cp->MemberGrpcAddress(id); };
  } else {
    address = [peers = c.peers](cluster::NodeId id) {
      auto it = peers.find(id);
      return it == peers.end() ? std::string() : it->second.grpc_address;
    };
  }
  data_plane_ = std::make_unique<cluster::DataPlane>(
      o, db,
      [this, db](const std::vector<storage::SeriesAppend>& b) { return AppendLocal(db, b); },
      std::move(current_map), std::move(address));
  stream_target_.store(data_plane_.get());
  cluster_source_ = data_plane_->QuerySource();
  partial_source_ = data_plane_->QuerySource(true);
  strict_source_ = data_plane_->QuerySource(false);
  cluster_source_ptr_.store(cluster_source_.get());
  LOG(INFO) << "node " << opts_.node_id << " is one of " << c.peers.size()
            << " cluster members (" << (c.static_map ? "static shard map" : "Raft control plane")
            << ")";
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
  metrics::Gauge* ready = metrics_.GetGauge(
      "vigil_ready", "1 once the node serves (storage recovered, control plane started).");
  metrics_.GetGauge("vigil_build_info", "Build information.", {{"version", opts_.version}})
      ->Set(1);
  metrics_.AddCollectHook([=, this] {
    rss->Set(static_cast<double>(ProcessRssBytes()));
    storage::TSDB* db = tsdb_.load();
    ready->Set(serving_.load() ? 1 : 0);
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
  do {
    absl::StatusOr<int> n = tsdb_.load()->ApplyRetention();
    if (n.ok()) {
      dropped->Inc(*n);
      if (*n > 0) LOG(INFO) << "retention dropped " << *n << " partitions";
    } else {
      failures->Inc();
      LOG(WARNING) << "retention failed: " << n.status();
    }
    // Real (monotonic) time on purpose: this is the I/O shell, and Stop() wakes it.
  } while (!stopping_.WaitWithTimeout(opts_.retention_interval));
}

absl::Status Node::Stop() {
  if (stopped_) return absl::OkStatus();
  stopped_ = true;
  stopping_.Notify();
  // Stop accepting first; in-flight requests finish before the calls return.
  if (http_ != nullptr) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
  // No more evaluations or notifications; the object stays until the control
  // plane, whose apply thread hands it committed payloads, is gone.
  if (alerting_ != nullptr) alerting_->Stop();
  if (grpc_ != nullptr) {
    // Peers' Raft streams into this node never end by themselves: without this
    // Shutdown() waited for them until its deadline (10 s with peers up).
    if (control_plane_ != nullptr) control_plane_->CloseInbound();
    grpc_->Shutdown(GrpcDeadline(kGrpcShutdownGrace));
  }
  if (retention_thread_.joinable()) retention_thread_.join();
  // After gRPC: in-flight API writes still needed it.
  cluster_source_ptr_.store(nullptr);
  stream_target_.store(nullptr);
  if (data_plane_ != nullptr) data_plane_->Stop();
  cluster_source_.reset();
  partial_source_.reset();
  strict_source_.reset();
  // After the gRPC server its services were on, and before the data plane: its
  // reconcile loop may still be handing streams to the data plane.
  control_plane_.reset();
  data_plane_.reset();
  alerting_.reset();  // after the control plane
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
