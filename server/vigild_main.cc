// server/vigild_main.cc
//
// vigild: one Vigil node. Serves the Prometheus HTTP API (remote-write, PromQL)
// and the vigil.v1 gRPC API over the node's TSDB. SIGTERM or SIGINT stops it
// gracefully: stop accepting, drain in-flight requests, flush storage, exit 0.
#include <csignal>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "server/api_params.h"
#include "server/node.h"

DEFINE_string(data_dir, "", "Directory of the node's data (required).");
DEFINE_string(http_addr, "127.0.0.1:9401", "HOST:PORT of the Prometheus-compatible HTTP API.");
DEFINE_string(grpc_addr, "127.0.0.1:7401", "HOST:PORT of the vigil.v1 gRPC API.");
DEFINE_string(retention, "15d", "How long samples are kept (Prometheus duration: 15d, 12h).");
DEFINE_string(retention_interval, "5m", "How often expired partitions are dropped.");
DEFINE_int64(node_id, 1, "This node's id in the cluster.");
DEFINE_uint64(max_request_bytes, 32 << 20, "Largest request body accepted (413 above).");
DEFINE_uint64(max_decompressed_bytes, 64 << 20, "Largest uncompressed remote-write request.");
DEFINE_uint64(max_label_name_length, 1024, "Longest label name accepted.");
DEFINE_uint64(max_label_value_length, 4096, "Longest label value accepted.");
DEFINE_uint64(max_labels_per_series, 64, "Most labels a series may have.");
DEFINE_string(ooo_window, "1h", "How far behind a series' newest sample a sample may arrive.");
DEFINE_string(max_future, "10m", "How far ahead of the clock a sample may be.");
DEFINE_string(query_timeout, "2m", "Default PromQL query timeout.");
DEFINE_int64(query_max_samples, 50'000'000, "Most samples a query may hold in memory.");
DEFINE_uint32(num_shards, 64, "Shards series hash onto; fixed for the life of the data.");
DEFINE_int32(http_threads, 8, "HTTP worker threads.");
DEFINE_string(peers, "",
              "Cluster members as ID=GRPC_HOST:PORT[/HTTP_HOST:PORT],... including this node "
              "(--node_id); empty runs a single node.");
DEFINE_bool(static_cluster, false,
            "With --peers: place shards once from --peers without the Raft control plane "
            "(membership cannot change).");
DEFINE_uint32(replication_factor, 3, "Replicas per shard in a cluster (capped at the members).");
DEFINE_bool(partial_response, false,
            "Cluster queries return what reachable replicas have, with a warning, instead of "
            "failing when a shard has no read quorum.");
DEFINE_string(join, "",
              "GRPC_HOST:PORT of a running cluster member: start empty and ask the cluster to "
              "add this node (--node_id, announced at --grpc_addr and --http_addr). With "
              "--peers, its entry for --node_id is announced instead.");
DEFINE_string(write_timeout, "5s", "Cluster: how long a write waits for its replicas' quorum.");
DEFINE_string(anti_entropy_interval, "30s", "Cluster: how often replicas are compared.");
DEFINE_string(read_hedge_delay, "400ms",
              "Cluster: a replica that has not answered a query's read this long is hedged: its "
              "shards ask their next replica (at least twice the slowest answer so far); 0 "
              "disables hedging.");
DEFINE_string(read_attempt_timeout, "10s",
              "Cluster: the deadline of one replica read while the shards have another replica "
              "left (the query timeout bounds the whole query).");
DEFINE_string(alertmanager_url, "",
              "Alertmanager base URLs (http://HOST:PORT), comma-separated; alerts are POSTed to "
              "<url>/api/v2/alerts by the node that evaluates rules.");
DEFINE_string(rule_files, "",
              "Prometheus rule files, comma-separated; committed by this node the first time it "
              "leads the cluster after starting (unless they are already in force).");
DEFINE_string(external_url, "", "URL this cluster is reached at (alerts' generatorURL).");
DEFINE_string(external_labels, "",
              "NAME=VALUE,... added to alerts sent to Alertmanager (like Prometheus' "
              "global.external_labels).");
DEFINE_string(evaluation_interval, "1m", "Rule groups' evaluation interval unless set per group.");
DEFINE_string(alert_resend_delay, "1m", "How often a firing alert is resent to Alertmanager.");

namespace vigil::server {
namespace {

absl::Duration DurationFlag(const char* name, const std::string& value) {
  absl::StatusOr<absl::Duration> d = ParsePromDuration(value);
  if (!d.ok()) {
    LOG(ERROR) << "--" << name << ": " << d.status().message();
    std::exit(2);
  }
  return *d;
}

int Main() {
  if (FLAGS_data_dir.empty()) {
    LOG(ERROR) << "--data_dir is required";
    return 2;
  }
  NodeOptions opts;
  opts.node_id = FLAGS_node_id;
  opts.http_addr = FLAGS_http_addr;
  opts.grpc_addr = FLAGS_grpc_addr;
  opts.storage.dir = FLAGS_data_dir;
  opts.storage.num_shards = FLAGS_num_shards;
  opts.storage.retention = DurationFlag("retention", FLAGS_retention);
  opts.storage.ooo_window = DurationFlag("ooo_window", FLAGS_ooo_window);
  opts.storage.max_future = DurationFlag("max_future", FLAGS_max_future);
  opts.storage.limits.max_label_name_length = FLAGS_max_label_name_length;
  opts.storage.limits.max_label_value_length = FLAGS_max_label_value_length;
  opts.storage.limits.max_labels_per_series = FLAGS_max_labels_per_series;
  opts.retention_interval = DurationFlag("retention_interval", FLAGS_retention_interval);
  opts.http.max_request_bytes = FLAGS_max_request_bytes;
  opts.http.decode.max_decompressed_bytes = FLAGS_max_decompressed_bytes;
  opts.http.default_query_timeout = DurationFlag("query_timeout", FLAGS_query_timeout);
  opts.engine.timeout = opts.http.default_query_timeout;
  opts.engine.max_samples = FLAGS_query_max_samples;
  opts.http_threads = FLAGS_http_threads;
  if (!FLAGS_peers.empty() || !FLAGS_join.empty()) {
    absl::StatusOr<std::map<cluster::NodeId, cluster::PeerAddress>> peers =
        FLAGS_peers.empty() ? std::map<cluster::NodeId, cluster::PeerAddress>()
                            : cluster::ParsePeers(FLAGS_peers);
    if (!peers.ok()) {
      LOG(ERROR) << "--peers: " << peers.status().message();
      return 2;
    }
    if (!FLAGS_join.empty()) {
      if (FLAGS_static_cluster) {
        LOG(ERROR) << "--join needs the Raft control plane, not --static_cluster";
        return 2;
      }
      const auto self = static_cast<cluster::NodeId>(FLAGS_node_id);
      if (!peers->contains(self)) {
        (*peers)[self] = cluster::PeerAddress{FLAGS_grpc_addr, FLAGS_http_addr};
      }
      opts.cluster.join = FLAGS_join;
    }
    opts.cluster.peers = *std::move(peers);
    opts.cluster.static_map = FLAGS_static_cluster;
    opts.cluster.replication_factor = FLAGS_replication_factor;
    opts.cluster.partial_response = FLAGS_partial_response;
    opts.cluster.write_timeout = DurationFlag("write_timeout", FLAGS_write_timeout);
    opts.cluster.read_hedge_delay = DurationFlag("read_hedge_delay", FLAGS_read_hedge_delay);
    if (opts.cluster.read_hedge_delay == absl::ZeroDuration()) {
      opts.cluster.read_hedge_delay = absl::InfiniteDuration();
    }
    opts.cluster.read_attempt_timeout =
        DurationFlag("read_attempt_timeout", FLAGS_read_attempt_timeout);
    opts.cluster.anti_entropy_interval =
        DurationFlag("anti_entropy_interval", FLAGS_anti_entropy_interval);
  }

  for (absl::string_view url : absl::StrSplit(FLAGS_alertmanager_url, ',', absl::SkipWhitespace())) {
    opts.alerting.alertmanager_urls.emplace_back(absl::StripSuffix(url, "/"));
  }
  for (absl::string_view f : absl::StrSplit(FLAGS_rule_files, ',', absl::SkipWhitespace())) {
    opts.alerting.rule_files.emplace_back(f);
  }
  opts.alerting.external_url = FLAGS_external_url;
  for (absl::string_view kv : absl::StrSplit(FLAGS_external_labels, ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first.empty() || p.second.empty()) {
      LOG(ERROR) << "--external_labels: want NAME=VALUE, got \"" << kv << "\"";
      return 2;
    }
    opts.alerting.external_labels[p.first] = p.second;
  }
  opts.alerting.evaluation_interval = DurationFlag("evaluation_interval", FLAGS_evaluation_interval);
  opts.alerting.resend_delay = DurationFlag("alert_resend_delay", FLAGS_alert_resend_delay);

  // Block the stop signals in every thread (the servers' threads inherit this
  // mask) and take them synchronously here.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(opts);
  if (!node.ok()) {
    LOG(ERROR) << "vigild failed to start: " << node.status();
    return 1;
  }
  LOG(INFO) << "vigild ready: http=" << FLAGS_http_addr << " grpc=" << FLAGS_grpc_addr
            << " recovered in " << absl::ToInt64Milliseconds((*node)->recovery_time()) << " ms";
  int sig = 0;
  sigwait(&stop_signals, &sig);
  LOG(INFO) << "signal " << sig << ": stopping";
  const absl::Status s = (*node)->Stop();
  if (!s.ok()) {
    LOG(ERROR) << "stop: " << s;
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace vigil::server

int main(int argc, char** argv) {
  gflags::SetUsageMessage("vigild --data_dir=DIR [--http_addr=HOST:PORT] [--grpc_addr=HOST:PORT]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  return vigil::server::Main();
}
