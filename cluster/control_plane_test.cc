// ControlPlane: three (and a fourth) nodes in one process over loopback gRPC,
// each with its own RocksDB Raft log. Everything is polled with generous
// deadlines; nothing waits a fixed time.
#include "cluster/control_plane.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "cluster/control_http.h"
#include "common/testing/status_matchers.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/metrics.h"

namespace vigil::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::vigil::testing::StatusIs;

constexpr absl::Duration kPatience = absl::Seconds(30);

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  CHECK_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

// Polls `pred` every 10 ms until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& pred, absl::Duration timeout = kPatience) {
  absl::Time deadline = absl::Now() + timeout;
  while (!pred()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<grpc::Server> server;
    std::unique_ptr<ControlPlane> cp;
  };

  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/control_plane_test_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    for (NodeId id = 1; id <= 3; ++id) {
      peers_[id] = PeerAddress{absl::StrCat("127.0.0.1:", PickFreePort()), ""};
    }
    for (NodeId id = 1; id <= 3; ++id) StartNode(id, /*join=*/false);
  }

  void TearDown() override {
    for (auto& [id, n] : nodes_) StopNode(id);
    std::filesystem::remove_all(dir_);
  }

  void StartNode(NodeId id, bool join) {
    ControlPlaneOptions o;
    o.node_id = id;
    o.peers = peers_;
    o.join = join;
    if (join && !join_via_.empty()) {
      // Knows only itself and the member it asks to add it.
      o.peers = {{id, peers_[id]}};
      o.join_via = join_via_;
    }
    o.data_dir = absl::StrCat(dir_, "/node", id);
    o.num_shards = 16;
    o.replication_factor = 3;
    o.reconcile_interval = absl::Milliseconds(50);
    o.stream_shard = [this](const Transfer& t, std::function<void(absl::Status)> done) {
      ++streams_;  // no data in these tests: the stream is empty
      done(absl::OkStatus());
    };
    o.metrics = &metrics_;
    o.snapshot_every = snapshot_every_;
    grpc::ServerBuilder builder;
    builder.AddListeningPort(peers_[id].grpc_address, grpc::InsecureServerCredentials());
    absl::StatusOr<std::unique_ptr<ControlPlane>> cp = ControlPlane::Create(o);
    ASSERT_OK(cp.status());
    Node& n = nodes_[id];
    n.cp = *std::move(cp);
    n.cp->RegisterServices(&builder);
    n.server = builder.BuildAndStart();
    ASSERT_NE(n.server, nullptr);
    {
      absl::MutexLock l(&seen_mu_);
      seen_[id].clear();
    }
    n.cp->SubscribeRegisters("sub/", [this, id](absl::string_view k, absl::string_view v) {
      absl::MutexLock l(&seen_mu_);
      seen_[id].emplace_back(std::string(k), std::string(v));
    });
    ASSERT_OK(n.cp->Start());
  }

  void StopNode(NodeId id) {
    Node& n = nodes_[id];
    if (n.server != nullptr) {
      n.server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    }
    n.cp.reset();
    n.server.reset();
  }

  ControlPlane* cp(NodeId id) { return nodes_[id].cp.get(); }

  // The leader every running node agrees on, or 0.
  NodeId AgreedLeader() {
    NodeId leader = 0;
    for (auto& [id, n] : nodes_) {
      if (n.cp == nullptr) continue;
      raft::RaftStatus st = n.cp->raft_status();
      if (st.leader == 0 || (leader != 0 && st.leader != leader)) return 0;
      leader = st.leader;
    }
    if (leader == 0 || nodes_[leader].cp == nullptr) return 0;
    return nodes_[leader].cp->raft_status().role == raft::Role::kLeader ? leader : 0;
  }

  NodeId WaitForLeader() {
    NodeId leader = 0;
    EXPECT_TRUE(Eventually([&] { return (leader = AgreedLeader()) != 0; }));
    return leader;
  }

  // Every shard has `rf` distinct replicas, drawn from `nodes`, with no move pending.
  static bool MapPlacedOn(const ShardMap& map, const std::set<NodeId>& nodes, size_t rf) {
    if (map.num_shards() == 0) return false;
    for (const ShardPlacement& p : map.shards) {
      std::set<NodeId> distinct(p.replicas.begin(), p.replicas.end());
      if (p.moving() || p.replicas.size() != rf || distinct.size() != rf) return false;
      for (NodeId r : p.replicas) {
        if (!nodes.contains(r)) return false;
      }
    }
    return true;
  }

  bool AllMapsPlacedOn(const std::set<NodeId>& nodes, size_t rf) {
    for (auto& [id, n] : nodes_) {
      if (n.cp != nullptr && !MapPlacedOn(*n.cp->shard_map(), nodes, rf)) return false;
    }
    return true;
  }

  // What each node's SubscribeRegisters("sub/") callback saw since it started.
  std::vector<std::pair<std::string, std::string>> Seen(NodeId id) {
    absl::MutexLock l(&seen_mu_);
    return seen_[id];
  }
  // The last value seen per key.
  std::map<std::string, std::string> LastSeen(NodeId id) {
    std::map<std::string, std::string> last;
    for (auto& [k, v] : Seen(id)) last[k] = v;
    return last;
  }

  uint64_t snapshot_every_ = 10000;
  absl::Mutex seen_mu_;
  std::map<NodeId, std::vector<std::pair<std::string, std::string>>> seen_
      ABSL_GUARDED_BY(seen_mu_);
  std::string dir_;
  std::map<NodeId, PeerAddress> peers_;
  std::string join_via_;  // set: StartNode(id, join=true) joins through it
  std::map<NodeId, Node> nodes_;
  std::atomic<int> streams_{0};
  metrics::Registry metrics_;
};

TEST(ParsePeersTest, ParsesIdsAndAddresses) {
  ASSERT_OK_AND_ASSIGN(auto peers, ParsePeers("1=a:1,2=b:2/b:9402"));
  EXPECT_EQ(peers.size(), 2u);
  EXPECT_EQ(peers[1].grpc_address, "a:1");
  EXPECT_EQ(peers[1].http_address, "");
  EXPECT_EQ(peers[2].http_address, "b:9402");
  EXPECT_THAT(ParsePeers("1=a:1,1=b:2").status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParsePeers("x=a:1").status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParsePeers("0=a:1").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(ControlPlaneTest, ElectsLeaderAndFormsShardMap) {
  NodeId leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(Eventually([&] { return AllMapsPlacedOn({1, 2, 3}, 3); }));
  nlohmann::json status = cp(1)->StatusJson();
  EXPECT_EQ(status["leader"], leader);
  EXPECT_EQ(status["bootstrapped"], true);
  ASSERT_EQ(status["members"].size(), 3u);
  for (const auto& m : status["members"]) EXPECT_EQ(m["state"], "active");
  EXPECT_EQ(status["voters"], nlohmann::json({1, 2, 3}));

  nlohmann::json debug = cp(leader)->DebugRaftJson();
  EXPECT_EQ(debug["role"], "leader");
  EXPECT_GE(debug["commit_index"].get<uint64_t>(), 4u);  // 3 founding entries + no-op + bootstrap
  EXPECT_FALSE(debug["committed"].empty());
  // Every node reports the same committed entries for the indexes they share.
  ASSERT_TRUE(Eventually([&] {
    return cp(1)->DebugRaftJson()["committed"] == cp(2)->DebugRaftJson()["committed"] &&
           cp(2)->DebugRaftJson()["committed"] == cp(3)->DebugRaftJson()["committed"];
  }));

  // Subscribers get the current map at once.
  std::shared_ptr<const ShardMap> seen;
  cp(2)->SubscribeShardMap([&](std::shared_ptr<const ShardMap> m) { seen = std::move(m); });
  ASSERT_NE(seen, nullptr);
  EXPECT_TRUE(MapPlacedOn(*seen, {1, 2, 3}, 3));
  EXPECT_THAT(metrics_.Expose(), ::testing::HasSubstr("vigil_raft_term"));
  // The reconcile loop exports the transport's counters per peer.
  const std::string peer = absl::StrCat("{peer=\"", leader == 1 ? 2 : 1, "\"}");
  EXPECT_TRUE(Eventually([&] {
    const std::string text = metrics_.Expose();
    return text.find("vigil_raft_transport_sent_total" + peer) != std::string::npos &&
           text.find("vigil_raft_transport_send_failures_total" + peer) != std::string::npos;
  }));
}

TEST_F(ControlPlaneTest, RegistersAreLinearizableThroughAnyNode) {
  ASSERT_NE(WaitForLeader(), 0u);
  ASSERT_OK_AND_ASSIGN(RegisterValue absent, cp(2)->GetRegister("k"));
  EXPECT_EQ(absent.version, 0u);
  for (NodeId writer = 1; writer <= 3; ++writer) {
    ASSERT_OK_AND_ASSIGN(uint64_t version, cp(writer)->PutRegister("k", absl::StrCat("v", writer)));
    EXPECT_EQ(version, writer);
    // A read through every node right after the write sees it.
    for (NodeId reader = 1; reader <= 3; ++reader) {
      ASSERT_OK_AND_ASSIGN(RegisterValue v, cp(reader)->GetRegister("k"));
      EXPECT_EQ(v.value, absl::StrCat("v", writer)) << "reader " << reader;
      EXPECT_EQ(v.version, writer);
    }
  }
  RegisterValue current;
  EXPECT_THAT(cp(1)->CompareAndSetRegister("k", "v1", "x", &current),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(current.value, "v3");
  EXPECT_EQ(current.version, 3u);
  ASSERT_OK_AND_ASSIGN(uint64_t version, cp(2)->CompareAndSetRegister("k", "v3", "x", &current));
  EXPECT_EQ(version, 4u);
  ASSERT_OK_AND_ASSIGN(RegisterValue v, cp(3)->GetRegister("k"));
  EXPECT_EQ(v.value, "x");
}

TEST_F(ControlPlaneTest, HttpRoutesOnAFollower) {
  NodeId leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  NodeId follower = leader == 1 ? 2 : 1;
  httplib::Server http;
  RegisterControlRoutes(&http, cp(follower));
  int port = http.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serve([&] { http.listen_after_bind(); });
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);

  auto get = c.Get("/api/v1/admin/registers/r");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(nlohmann::json::parse(get->body), nlohmann::json::parse(R"({"value":null,"version":0})"));
  auto put = c.Put("/api/v1/admin/registers/r", R"({"value":"a"})", "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 200);
  EXPECT_EQ(nlohmann::json::parse(put->body)["version"], 1);
  auto cas = c.Post("/api/v1/admin/registers/r/cas", R"({"expected_value":"z","value":"b"})",
                    "application/json");
  ASSERT_TRUE(cas);
  EXPECT_EQ(cas->status, 409);
  EXPECT_EQ(nlohmann::json::parse(cas->body),
            nlohmann::json::parse(R"({"ok":false,"value":"a","version":1})"));
  cas = c.Post("/api/v1/admin/registers/r/cas", R"({"expected_value":"a","value":"b"})",
               "application/json");
  ASSERT_TRUE(cas);
  EXPECT_EQ(cas->status, 200);
  EXPECT_EQ(nlohmann::json::parse(cas->body), nlohmann::json::parse(R"({"ok":true,"version":2})"));
  auto bad = c.Put("/api/v1/admin/registers/r", R"({"value":1})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  auto status = c.Get("/api/v1/status/cluster");
  ASSERT_TRUE(status);
  EXPECT_EQ(nlohmann::json::parse(status->body)["leader"], leader);
  auto debug = c.Get("/debug/raft");
  ASSERT_TRUE(debug);
  EXPECT_EQ(nlohmann::json::parse(debug->body)["role"], "follower");
  auto transfer = c.Post("/api/v1/admin/cluster/transfer-leader",
                         absl::StrCat(R"({"target":)", follower, "}"), "application/json");
  ASSERT_TRUE(transfer);
  EXPECT_EQ(transfer->status, 200) << transfer->body;
  EXPECT_EQ(nlohmann::json::parse(transfer->body)["leader"], follower);
  http.stop();
  serve.join();
}

TEST_F(ControlPlaneTest, StatusRoutesAnswer503UntilStarted) {
  ControlPlaneOptions o;
  o.node_id = 4;
  o.join = true;
  o.peers = {{4, PeerAddress{absl::StrCat("127.0.0.1:", PickFreePort()), ""}}};
  o.data_dir = absl::StrCat(dir_, "/node4");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ControlPlane> idle, ControlPlane::Create(o));
  httplib::Server http;
  RegisterControlRoutes(&http, idle.get());
  int port = http.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serve([&] { http.listen_after_bind(); });
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(10, 0);
  for (const char* path : {"/debug/raft", "/api/v1/status/cluster"}) {
    auto res = c.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 503) << path;
    EXPECT_THAT(nlohmann::json::parse(res->body)["error"].get<std::string>(),
                ::testing::HasSubstr("not running yet"))
        << path;
  }
  http.stop();
  serve.join();
}

TEST_F(ControlPlaneTest, RestartedMemberServesItsCommittedMapAtStart) {
  NodeId leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(Eventually([&] { return AllMapsPlacedOn({1, 2, 3}, 3); }));
  NodeId follower = leader == 3 ? 2 : 3;
  StopNode(follower);
  StartNode(follower, /*join=*/false);
  // No waiting: Start() applied the persisted log (the Bootstrap command), so the
  // restarted member never reports an unbootstrapped cluster.
  EXPECT_TRUE(MapPlacedOn(*cp(follower)->shard_map(), {1, 2, 3}, 3));
}

TEST_F(ControlPlaneTest, ClusterAdminGrpcOnAFollower) {
  NodeId leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  NodeId follower = leader == 1 ? 2 : 1;
  auto stub = vigil::v1::ClusterAdmin::NewStub(
      grpc::CreateChannel(peers_[follower].grpc_address, grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    vigil::v1::ClusterStatusResponse resp;
    ASSERT_TRUE(stub->Status(&ctx, {}, &resp).ok());
    nlohmann::json st = nlohmann::json::parse(resp.json());
    EXPECT_EQ(st["node_id"], follower);
    EXPECT_EQ(st["leader"], leader);
  }
  {
    // A call marked as forwarded by another node runs only on the leader.
    grpc::ClientContext ctx;
    ctx.AddMetadata("vigil-forwarded", "1");
    vigil::v1::TransferLeaderResponse resp;
    grpc::Status s = stub->TransferLeader(&ctx, {}, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(s.error_message(), ::testing::HasSubstr(absl::StrCat("leader=", leader)));
  }
  {
    // A client's call to a follower is forwarded to the leader, which hands over.
    grpc::ClientContext ctx;
    vigil::v1::TransferLeaderRequest req;
    req.set_target(follower);
    vigil::v1::TransferLeaderResponse resp;
    grpc::Status s = stub->TransferLeader(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.leader(), follower);
  }
  ASSERT_TRUE(Eventually([&] { return AgreedLeader() == follower; }));
}

// Fenced writes (PutRegisterFenced): applied in the leader's own term; refused on a
// follower (not forwarded), for another term, and after the leadership moved; and a copy of
// a fenced command that reaches the log through a later leader (the forwarding a deposed
// leader's write used to get) is refused at apply time on every node.
TEST_F(ControlPlaneTest, FencedWritesApplyOnlyInTheirTerm) {
  NodeId leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(Eventually([&] { return cp(leader)->raft_status().leader_applied; }));
  const uint64_t term = cp(leader)->raft_status().term;
  ASSERT_OK_AND_ASSIGN(uint64_t version, cp(leader)->PutRegisterFenced("f", "a", term));
  EXPECT_EQ(version, 1u);
  const NodeId follower = leader == 1 ? 2 : 1;
  EXPECT_THAT(cp(follower)->PutRegisterFenced("f", "b", term),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(cp(leader)->PutRegisterFenced("f", "b", term + 1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(cp(leader)->PutRegisterFenced("f", "b", 0),
              StatusIs(absl::StatusCode::kInvalidArgument));

  // The leadership moves: the old term is over for everyone.
  ASSERT_OK_AND_ASSIGN(NodeId next, cp(leader)->TransferLeader(follower));
  ASSERT_EQ(next, follower);
  EXPECT_THAT(cp(leader)->PutRegisterFenced("f", "late", term),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  // A copy of the old leader's write forwarded to the new leader commits in the
  // new term and changes nothing, on any node.
  v1::Command stale;
  stale.set_fence_term(term);
  stale.mutable_put()->set_key("f");
  stale.mutable_put()->set_value("stale");
  ASSERT_OK_AND_ASSIGN(v1::CommandResult r, cp(leader)->Propose(stale));
  EXPECT_THAT(ResultStatus(r), StatusIs(absl::StatusCode::kFailedPrecondition,
                                        ::testing::HasSubstr("refused in an entry of term")));
  for (NodeId id = 1; id <= 3; ++id) {
    ASSERT_OK_AND_ASSIGN(RegisterValue v, cp(id)->GetRegister("f"));
    EXPECT_EQ(v.value, "a") << id;
    EXPECT_EQ(v.version, 1u) << id;
  }
  ASSERT_TRUE(Eventually([&] { return cp(next)->raft_status().leader_applied; }));
  const uint64_t next_term = cp(next)->raft_status().term;
  ASSERT_GT(next_term, term);
  ASSERT_OK(cp(next)->PutRegisterFenced("f", "c", next_term).status());
  ASSERT_OK_AND_ASSIGN(RegisterValue v, cp(leader)->GetRegister("f"));
  EXPECT_EQ(v.value, "c");
}

TEST_F(ControlPlaneTest, LeaderFailoverAndRestartRecovers) {
  NodeId leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_OK(cp(leader)->PutRegister("k", "before").status());
  uint64_t old_term = cp(leader)->raft_status().term;

  absl::Time stopped = absl::Now();
  StopNode(leader);
  NodeId next = 0;
  ASSERT_TRUE(Eventually([&] {
    next = AgreedLeader();
    return next != 0 && cp(next)->raft_status().term > old_term;
  }));
  absl::Duration failover = absl::Now() - stopped;
  RecordProperty("failover_ms", static_cast<int>(absl::ToInt64Milliseconds(failover)));
  LOG(INFO) << "failover: node " << next << " leads after " << failover;
  EXPECT_LT(failover, absl::Seconds(10));

  NodeId survivor = 6 - leader - next;  // the remaining follower
  ASSERT_OK_AND_ASSIGN(uint64_t version, cp(survivor)->PutRegister("k", "after"));
  EXPECT_EQ(version, 2u);

  // The old leader restarts from its log and catches up.
  StartNode(leader, /*join=*/false);
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<RegisterValue> v = cp(leader)->GetRegister("k");
    return v.ok() && v->value == "after";
  }));
  EXPECT_TRUE(AllMapsPlacedOn({1, 2, 3}, 3));
  EXPECT_EQ(cp(leader)->StatusJson()["members"].size(), 3u);
}

TEST_F(ControlPlaneTest, SubscribeRegistersSeesCommittedWritesInOrder) {
  NodeId leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_OK(cp(leader)->PutRegister("sub/a", "1").status());
  ASSERT_OK(cp(leader)->PutRegister("other", "x").status());
  ASSERT_OK(cp(leader)->PutRegister("sub/b", "2").status());
  ASSERT_OK(cp(leader)->PutRegister("sub/a", "3").status());
  ASSERT_OK(cp(leader)->CompareAndSetRegister("sub/b", "2", "4", nullptr).status());
  EXPECT_THAT(cp(leader)->CompareAndSetRegister("sub/b", "zzz", "5", nullptr).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(cp(leader)->PutRegister("sub/c", "6").status());
  const std::vector<std::pair<std::string, std::string>> want = {
      {"sub/a", "1"}, {"sub/b", "2"}, {"sub/a", "3"}, {"sub/b", "4"}, {"sub/c", "6"}};
  for (NodeId id = 1; id <= 3; ++id) {
    EXPECT_TRUE(Eventually([&] { return Seen(id).size() >= want.size(); })) << id;
    EXPECT_EQ(Seen(id), want) << "node " << id;
  }
  // A late subscriber gets the registers already there, under its prefix only.
  auto late = std::make_shared<std::vector<std::string>>();
  cp(leader)->SubscribeRegisters("sub/b", [late](absl::string_view k, absl::string_view v) {
    late->push_back(absl::StrCat(k, "=", v));
  });
  EXPECT_THAT(*late, ElementsAre("sub/b=4"));
}

class ControlPlaneSnapshotTest : public ControlPlaneTest {
 protected:
  ControlPlaneSnapshotTest() { snapshot_every_ = 3; }
};

TEST_F(ControlPlaneSnapshotTest, SubscribeRegistersAfterSnapshotRestoreAndRestart) {
  NodeId leader = WaitForLeader();
  ASSERT_NE(leader, 0u);
  ASSERT_OK(cp(leader)->PutRegister("sub/a", "1").status());
  ASSERT_OK(cp(leader)->PutRegister("other", "x").status());
  const NodeId follower = leader % 3 + 1;
  ASSERT_TRUE(Eventually([&] { return LastSeen(follower).size() == 1; }));
  StopNode(follower);
  // Enough writes while it is down that the leader's log is compacted past it:
  // it catches up through a snapshot (Restore).
  for (int i = 0; i < 12; ++i) {
    ASSERT_OK(cp(leader)->PutRegister(absl::StrCat("sub/k", i % 4), absl::StrCat(i)).status());
  }
  ASSERT_OK(cp(leader)->PutRegister("other", "y").status());
  const std::map<std::string, std::string> want = {
      {"sub/a", "1"}, {"sub/k0", "8"}, {"sub/k1", "9"}, {"sub/k2", "10"}, {"sub/k3", "11"}};
  EXPECT_EQ(LastSeen(leader), want);
  StartNode(follower, /*join=*/false);
  EXPECT_TRUE(Eventually([&] { return LastSeen(follower) == want; }));
  EXPECT_EQ(LastSeen(follower), want);

  // A full restart replays (snapshot + log) into the subscribers again.
  for (NodeId id = 1; id <= 3; ++id) StopNode(id);
  for (NodeId id = 1; id <= 3; ++id) StartNode(id, /*join=*/false);
  for (NodeId id = 1; id <= 3; ++id) {
    EXPECT_TRUE(Eventually([&] { return LastSeen(id) == want; })) << id;
  }
}

TEST_F(ControlPlaneTest, JoinViaAMemberAddsTheNode) {
  ASSERT_NE(WaitForLeader(), 0u);
  ASSERT_TRUE(Eventually([&] { return AllMapsPlacedOn({1, 2, 3}, 3); }));
  peers_[4] = PeerAddress{absl::StrCat("127.0.0.1:", PickFreePort()), "127.0.0.1:9999"};
  join_via_ = peers_[2].grpc_address;
  StartNode(4, /*join=*/true);
  // Nobody calls AddNode: node 4 asks node 2, catches up, becomes a voter and
  // takes shards.
  ASSERT_TRUE(Eventually([&] {
    if (!cp(4)->raft_status().conf.IsVoter(4)) return false;
    for (const ShardPlacement& p : cp(4)->shard_map()->shards) {
      for (NodeId r : p.replicas) {
        if (r == 4) return true;
      }
    }
    return false;
  }));
  nlohmann::json st = cp(1)->StatusJson();
  ASSERT_EQ(st["members"].size(), 4u);
  EXPECT_EQ(st["members"][3]["state"], "active");
  EXPECT_EQ(st["members"][3]["http_address"], "127.0.0.1:9999");
  EXPECT_EQ(cp(1)->MemberGrpcAddress(4), peers_[4].grpc_address);
  EXPECT_EQ(cp(4)->MemberGrpcAddress(1), peers_[1].grpc_address);
  ASSERT_OK_AND_ASSIGN(uint64_t version, cp(4)->PutRegister("joined", "yes"));
  EXPECT_EQ(version, 1u);
}

TEST_F(ControlPlaneTest, AddAndRemoveNodeRebalances) {
  ASSERT_NE(WaitForLeader(), 0u);
  ASSERT_TRUE(Eventually([&] { return AllMapsPlacedOn({1, 2, 3}, 3); }));
  std::shared_ptr<const ShardMap> before = cp(1)->shard_map();

  peers_[4] = PeerAddress{absl::StrCat("127.0.0.1:", PickFreePort()), "127.0.0.1:9999"};
  StartNode(4, /*join=*/true);
  ASSERT_OK(cp(2)->AddNode(4, peers_[4]));  // through any node
  // Node 4 becomes a voter and ACTIVE, and some shards move to it: epochs bump.
  auto holds_some = [&](NodeId id) {
    for (const ShardPlacement& p : cp(id)->shard_map()->shards) {
      for (NodeId r : p.replicas) {
        if (r == 4) return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(Eventually([&] {
    return AllMapsPlacedOn({1, 2, 3, 4}, 3) && holds_some(1) && holds_some(4) &&
           cp(4)->raft_status().conf.IsVoter(4);
  }));
  std::shared_ptr<const ShardMap> after = cp(4)->shard_map();
  int moved = 0;
  for (uint32_t s = 0; s < after->num_shards(); ++s) {
    if (after->shards[s].replicas != before->shards[s].replicas) {
      ++moved;
      EXPECT_GT(after->shards[s].epoch, before->shards[s].epoch);
    } else {
      EXPECT_EQ(after->shards[s].epoch, before->shards[s].epoch);
    }
  }
  EXPECT_GT(moved, 0);
  EXPECT_GT(streams_.load(), 0);
  ASSERT_OK_AND_ASSIGN(uint64_t version, cp(4)->PutRegister("j", "via4"));
  EXPECT_EQ(version, 1u);

  // Remove node 1 (whichever role it has): its shards move away, then it leaves.
  ASSERT_OK(cp(3)->RemoveNode(1));
  ASSERT_TRUE(Eventually([&] {
    nlohmann::json st = cp(4)->StatusJson();
    return st["members"].size() == 3u && st["voters"] == nlohmann::json({2, 3, 4}) &&
           MapPlacedOn(*cp(4)->shard_map(), {2, 3, 4}, 3);
  }));
  ASSERT_OK_AND_ASSIGN(RegisterValue v, cp(2)->GetRegister("j"));
  EXPECT_EQ(v.value, "via4");
}

}  // namespace
}  // namespace vigil::cluster
