// raft-bench: commit throughput/latency and failover time of three RaftNodes over loopback gRPC
// with RocksDB logs (fsync'd). Not a test; figures go to raft/README.md.
//
//   raft-bench --concurrency 1,64,256 --seconds 5 --failover_trials 50
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <unistd.h>

#include "absl/flags/flag.h"
#include "absl/strings/escaping.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "raft/grpc_transport.h"
#include "raft/raft_node.h"

ABSL_FLAG(std::string, concurrency, "1,64,256", "comma-separated proposer counts");
ABSL_FLAG(int32_t, seconds, 5, "seconds per concurrency level");
ABSL_FLAG(int32_t, failover_trials, 50, "leader kills to time");
ABSL_FLAG(int32_t, tick_ms, 100, "raft tick");
ABSL_FLAG(int32_t, election_ticks, 10, "election timeout in ticks");
ABSL_FLAG(std::string, dir, "/tmp/raft-bench", "scratch directory (wiped)");
ABSL_FLAG(bool, parallel_leader_write, true,
          "the leader sends appends while it fsyncs (RaftNodeOptions::parallel_leader_write)");
ABSL_FLAG(std::string, etcd, "",
          "if set (path to the etcd binary), run the same load against a 3-member etcd cluster "
          "(puts through its JSON gateway, 100-byte values) instead of Vigil's Raft");

namespace vigil::raft {
namespace {

class CountingMachine : public StateMachine {
 public:
  std::string Apply(uint64_t, uint64_t, absl::string_view) override { return ""; }
  absl::StatusOr<std::string> Snapshot() override { return std::string(); }
  absl::Status Restore(absl::string_view data) override { return absl::OkStatus(); }
};

class Cluster {
 public:
  Cluster() {
    std::filesystem::remove_all(absl::GetFlag(FLAGS_dir));
    for (uint64_t id = 1; id <= 3; ++id) {
      auto t = GrpcTransport::Create("127.0.0.1:0");
      CHECK(t.ok()) << t.status();
      transports_[id] = *std::move(t);
    }
    for (uint64_t id = 1; id <= 3; ++id) {
      for (uint64_t p = 1; p <= 3; ++p) {
        if (p != id) {
          transports_[id]->AddPeer(p, "127.0.0.1:" + std::to_string(transports_[p]->port()));
        }
      }
      Start(id);
    }
  }
  ~Cluster() {
    for (auto& n : nodes_) n.reset();
    std::filesystem::remove_all(absl::GetFlag(FLAGS_dir));
  }
  void Start(uint64_t id) {
    RaftNodeOptions o;
    o.id = id;
    o.dir = absl::GetFlag(FLAGS_dir) + "/" + std::to_string(id);
    std::filesystem::create_directories(o.dir);
    o.initial_voters = {1, 2, 3};
    o.tick = absl::Milliseconds(absl::GetFlag(FLAGS_tick_ms));
    o.election_ticks = absl::GetFlag(FLAGS_election_ticks);
    o.parallel_leader_write = absl::GetFlag(FLAGS_parallel_leader_write);
    auto n = RaftNode::Open(o, &machines_[id], transports_[id].get());
    CHECK(n.ok()) << n.status();
    nodes_[id] = *std::move(n);
  }
  void Kill(uint64_t id) { nodes_[id].reset(); }
  RaftNode* node(uint64_t id) { return nodes_[id].get(); }
  // Waits for a leader among the running nodes; kNone after 30 s.
  uint64_t Leader() {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      for (uint64_t id = 1; id <= 3; ++id) {
        if (nodes_[id] != nullptr && nodes_[id]->status().role == Role::kLeader) return id;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    return kNone;
  }

 private:
  std::unique_ptr<GrpcTransport> transports_[4];
  CountingMachine machines_[4];
  std::unique_ptr<RaftNode> nodes_[4];
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

// One proposer: returns true once its 100-byte entry is committed.
using ProposerFactory = std::function<std::function<bool()>()>;

void Throughput(const ProposerFactory& make_proposer, int concurrency) {
  absl::Time deadline = absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_seconds));
  absl::Mutex mu;
  std::vector<double> latencies_ms;
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> threads;
  absl::Time start = absl::Now();
  for (int i = 0; i < concurrency; ++i) {
    threads.emplace_back([&] {
      std::function<bool()> propose = make_proposer();
      std::vector<double> mine;
      while (absl::Now() < deadline) {
        absl::Time t0 = absl::Now();
        if (propose()) {
          mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
        } else {
          ++errors;
        }
      }
      absl::MutexLock l(&mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  size_t n = latencies_ms.size();
  std::printf("concurrency %4d: %8.0f commits/s  p50 %7.2f ms  p99 %7.2f ms  (%zu ok, %lld errors)\n",
              concurrency, n / secs, Percentile(latencies_ms, 0.5),
              Percentile(latencies_ms, 0.99), n, static_cast<long long>(errors.load()));
  std::fflush(stdout);
}

void Failover(Cluster& c, int trials) {
  std::vector<double> ms;
  for (int i = 0; i < trials; ++i) {
    uint64_t old = c.Leader();
    CHECK_NE(old, kNone);
    absl::Time t0 = absl::Now();
    c.Kill(old);
    for (;;) {
      uint64_t leader = c.Leader();
      if (leader != kNone && c.node(leader)->ProposeAndWait("f", absl::Seconds(5)).ok()) break;
    }
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
    c.Start(old);
    // Let the restarted node rejoin and the heartbeats settle before the next kill.
    while (c.node(old)->status().leader == kNone) absl::SleepFor(absl::Milliseconds(5));
    absl::SleepFor(absl::Milliseconds(200));
  }
  std::vector<double> copy = ms;
  std::printf("failover (%d trials, tick %d ms, election %d ticks): p50 %.0f ms  p99 %.0f ms  "
              "max %.0f ms\n",
              trials, absl::GetFlag(FLAGS_tick_ms), absl::GetFlag(FLAGS_election_ticks),
              Percentile(copy, 0.5), Percentile(copy, 0.99), Percentile(copy, 1.0));
}

// A minimal HTTP/1.1 keep-alive client for etcd's JSON gateway (POST only).
class HttpConn {
 public:
  explicit HttpConn(int port) : port_(port) {}
  ~HttpConn() { Close(); }
  // Returns the response body, or nullopt on any failure (the connection is then reset).
  std::optional<std::string> Post(const std::string& path, const std::string& body) {
    if (fd_ < 0 && !Connect()) return std::nullopt;
    std::string req = absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                                   "Content-Type: application/json\r\nContent-Length: ",
                                   body.size(), "\r\n\r\n", body);
    if (write(fd_, req.data(), req.size()) != static_cast<ssize_t>(req.size())) return Fail();
    std::string buf;
    size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore(&buf)) return Fail();
    }
    std::string headers = absl::AsciiStrToLower(buf.substr(0, header_end));
    size_t cl = headers.find("content-length:");
    if (cl == std::string::npos || headers.find(" 200 ") == std::string::npos) return Fail();
    size_t len = std::stoul(headers.substr(cl + 15));
    while (buf.size() < header_end + 4 + len) {
      if (!ReadMore(&buf)) return Fail();
    }
    return buf.substr(header_end + 4, len);
  }

 private:
  bool Connect() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port_);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      Close();
      return false;
    }
    return true;
  }
  bool ReadMore(std::string* buf) {
    char tmp[4096];
    ssize_t n = read(fd_, tmp, sizeof(tmp));
    if (n <= 0) return false;
    buf->append(tmp, n);
    return true;
  }
  std::optional<std::string> Fail() {
    Close();
    return std::nullopt;
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  const int port_;
  int fd_ = -1;
};

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A 3-member etcd cluster on loopback (default fsync settings), killed on destruction.
class EtcdCluster {
 public:
  explicit EtcdCluster(const std::string& binary) {
    std::string dir = absl::GetFlag(FLAGS_dir);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    int client[4], peer[4];
    std::string initial;
    for (int i = 1; i <= 3; ++i) {
      client[i] = FreePort();
      peer[i] = FreePort();
      absl::StrAppend(&initial, i > 1 ? "," : "", "n", i, "=http://127.0.0.1:", peer[i]);
    }
    for (int i = 1; i <= 3; ++i) {
      clients_.push_back(client[i]);
      std::vector<std::string> args = {
          binary, "--name", absl::StrCat("n", i), "--data-dir", absl::StrCat(dir, "/n", i),
          "--listen-client-urls", absl::StrCat("http://127.0.0.1:", client[i]),
          "--advertise-client-urls", absl::StrCat("http://127.0.0.1:", client[i]),
          "--listen-peer-urls", absl::StrCat("http://127.0.0.1:", peer[i]),
          "--initial-advertise-peer-urls", absl::StrCat("http://127.0.0.1:", peer[i]),
          "--initial-cluster", initial, "--initial-cluster-state", "new", "--log-level", "error"};
      pid_t pid = fork();
      if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        execv(argv[0], argv.data());
        _exit(127);
      }
      pids_.push_back(pid);
    }
  }
  ~EtcdCluster() {
    for (pid_t pid : pids_) kill(pid, SIGKILL);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
    std::filesystem::remove_all(absl::GetFlag(FLAGS_dir));
  }
  // The leader's client port, once the cluster has one.
  int LeaderPort() {
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      for (int port : clients_) {
        HttpConn conn(port);
        std::optional<std::string> res = conn.Post("/v3/maintenance/status", "{}");
        if (!res) continue;
        auto j = nlohmann::json::parse(*res, nullptr, false);
        if (j.is_discarded() || !j.contains("leader")) continue;
        if (j["leader"] == j["header"]["member_id"]) return port;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    LOG(FATAL) << "etcd cluster has no leader";
  }

 private:
  std::vector<int> clients_;
  std::vector<pid_t> pids_;
};

}  // namespace
}  // namespace vigil::raft

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  google::InitGoogleLogging(argv[0]);
  std::vector<int> levels;
  for (absl::string_view c : absl::StrSplit(absl::GetFlag(FLAGS_concurrency), ',')) {
    int n;
    CHECK(absl::SimpleAtoi(c, &n));
    levels.push_back(n);
  }
  const std::string payload(100, 'x');
  if (!absl::GetFlag(FLAGS_etcd).empty()) {
    vigil::raft::EtcdCluster etcd(absl::GetFlag(FLAGS_etcd));
    int port = etcd.LeaderPort();
    std::printf("etcd 3.4 (3 members, loopback, JSON gateway):\n");
    std::atomic<int64_t> key{0};
    for (int n : levels) {
      vigil::raft::Throughput([&] {
        auto conn = std::make_shared<vigil::raft::HttpConn>(port);
        return [conn, &key, &payload]() {
          nlohmann::json body = {{"key", absl::Base64Escape("k" + std::to_string(key++))},
                                 {"value", absl::Base64Escape(payload)}};
          return conn->Post("/v3/kv/put", body.dump()).has_value();
        };
      }, n);
    }
    return 0;
  }
  vigil::raft::Cluster cluster;
  std::printf("vigil raft (3 nodes, loopback gRPC, RocksDB fsync):\n");
  for (int n : levels) {
    vigil::raft::RaftNode* node = cluster.node(cluster.Leader());
    vigil::raft::Throughput([&] {
      return [node, &payload]() { return node->ProposeAndWait(payload, absl::Seconds(10)).ok(); };
    }, n);
  }
  if (absl::GetFlag(FLAGS_failover_trials) > 0) {
    vigil::raft::Failover(cluster, absl::GetFlag(FLAGS_failover_trials));
  }
  return 0;
}
