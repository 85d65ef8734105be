// GrpcTransport: wire conversion, three RaftNodes replicating over loopback gRPC, chunked
// snapshots (torn, corrupt and retried transfers), and a stuck peer that must cost nothing but
// its own bounded queue.
#include "raft/grpc_transport.h"

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "xxhash.h"

#include "common/clock.h"
#include "common/grpc_deadline.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "glog/logging.h"
#include "gtest/gtest.h"
#include "raft/raft_node.h"
#include "raft/raft_node_test_util.h"

namespace vigil::raft {
namespace {

using ::testing::ElementsAre;
using ::vigil::testing::IsOk;
namespace pb = ::vigil::raft::v1;

// An inbound handler that keeps what it receives.
class Inbox {
 public:
  Transport::Handler handler() {
    return [this](Message m) {
      absl::MutexLock l(&mu_);
      msgs_.push_back(std::move(m));
    };
  }
  std::vector<Message> msgs() const {
    absl::MutexLock l(&mu_);
    return msgs_;
  }
  size_t size() const {
    absl::MutexLock l(&mu_);
    return msgs_.size();
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Message> msgs_ ABSL_GUARDED_BY(mu_);
};

std::string Address(int port) { return "127.0.0.1:" + std::to_string(port); }

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

Message SnapshotMessage(std::string data) {
  Message m;
  m.type = MessageType::kSnapshot;
  m.from = 1;
  m.to = 2;
  m.term = 3;
  m.snapshot.metadata = SnapshotMetadata{500, 3, ConfState{{1, 2, 3}, {}}};
  m.snapshot.data = std::move(data);
  return m;
}

TEST(GrpcTransportTest, ProtoRoundTrip) {
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = 2;
  m.from = 1;
  m.term = 7;
  m.log_term = 6;
  m.index = 40;
  m.entries.push_back(Entry{6, 41, EntryType::kConfChange, "x"});
  m.commit = 39;
  m.snapshot.metadata = SnapshotMetadata{40, 6, ConfState{{1, 2}, {3}}};
  m.snapshot.data = std::string("\0bytes", 6);
  m.reject = true;
  m.reject_hint = 12;
  m.context = "ctx";
  Message back = FromProto(ToProto(m));
  EXPECT_EQ(DebugString(back), DebugString(m));
  EXPECT_EQ(back.entries, m.entries);
  EXPECT_EQ(back.snapshot.data, m.snapshot.data);
  EXPECT_EQ(back.snapshot.metadata.conf_state, m.snapshot.metadata.conf_state);
}

// Three RaftNodes (ids 1-3) over loopback gRPC with RocksDB logs in a fresh temporary
// directory; nodes start when the test says so.
class LoopbackCluster {
 public:
  explicit LoopbackCluster(const std::string& name, uint64_t snapshot_every = 10000)
      : root_(std::filesystem::path(::testing::TempDir()) / name) {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    for (uint64_t id = 1; id <= 3; ++id) {
      absl::StatusOr<std::unique_ptr<GrpcTransport>> t = GrpcTransport::Create("127.0.0.1:0");
      CHECK(t.ok()) << t.status();
      transports_[id] = *std::move(t);
      machines_[id] = std::make_unique<ListMachine>();
      options_[id].id = id;
      options_[id].dir = (std::filesystem::path(root_) / std::to_string(id)).string();
      options_[id].initial_voters = {1, 2, 3};
      options_[id].tick = absl::Milliseconds(10);
      options_[id].snapshot_every = snapshot_every;
    }
    for (uint64_t id = 1; id <= 3; ++id) {
      for (uint64_t peer = 1; peer <= 3; ++peer) {
        if (peer != id) transports_[id]->AddPeer(peer, Address(transports_[peer]->port()));
      }
    }
  }
  ~LoopbackCluster() {
    for (auto& n : nodes_) n.reset();
    for (auto& t : transports_) t.reset();
    std::filesystem::remove_all(root_);
  }

  absl::Status Start(uint64_t id) {
    absl::StatusOr<std::unique_ptr<RaftNode>> n =
        RaftNode::Open(options_[id], machines_[id].get(), transports_[id].get());
    if (!n.ok()) return n.status();
    nodes_[id] = *std::move(n);
    return absl::OkStatus();
  }
  // The leader among the started nodes, once there is one; kNone after the timeout.
  uint64_t WaitForLeader() {
    uint64_t leader = kNone;
    Eventually([&] {
      for (uint64_t id = 1; id <= 3; ++id) {
        if (nodes_[id] != nullptr && nodes_[id]->status().role == Role::kLeader) leader = id;
      }
      return leader != kNone;
    });
    return leader;
  }
  RaftNode& node(uint64_t id) { return *nodes_[id]; }
  const ListMachine& machine(uint64_t id) const { return *machines_[id]; }
  GrpcTransport& transport(uint64_t id) { return *transports_[id]; }

 private:
  const std::string root_;
  std::unique_ptr<GrpcTransport> transports_[4];
  std::unique_ptr<ListMachine> machines_[4];
  RaftNodeOptions options_[4];
  std::unique_ptr<RaftNode> nodes_[4];
};

TEST(GrpcTransportTest, ThreeNodesReplicateOverLoopback) {
  LoopbackCluster c("grpc_transport_three");
  for (uint64_t id = 1; id <= 3; ++id) ASSERT_THAT(c.Start(id), IsOk());
  uint64_t leader = c.WaitForLeader();
  ASSERT_NE(leader, kNone);
  ASSERT_THAT(c.node(leader).ProposeAndWait("over-grpc", kTimeout), IsOk());
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(Eventually([&] { return c.machine(id).items().size() == 1; })) << id;
    EXPECT_THAT(c.machine(id).items(), ElementsAre("over-grpc"));
  }
}

// Messages to a peer nobody answers for are dropped and the peer is reported unreachable
// (RaftNode then makes the leader probe it instead of pipelining); a live peer's messages are
// counted as sent.
TEST(GrpcTransportTest, UnreachablePeerIsReportedAndCounted) {
  ASSERT_OK_AND_ASSIGN(auto receiver, GrpcTransport::Create("127.0.0.1:0"));
  Inbox inbox;
  receiver->SetHandler(inbox.handler());
  int dead_port;
  {
    ASSERT_OK_AND_ASSIGN(auto gone, GrpcTransport::Create("127.0.0.1:0"));
    dead_port = gone->port();
  }
  ASSERT_OK_AND_ASSIGN(auto sender, GrpcTransport::Create("127.0.0.1:0"));
  absl::Mutex mu;
  std::vector<uint64_t> unreachable;
  sender->SetUnreachableReporter([&](uint64_t peer) {
    absl::MutexLock l(&mu);
    unreachable.push_back(peer);
  });
  sender->AddPeer(2, Address(receiver->port()));
  sender->AddPeer(3, Address(dead_port));
  Message m;
  m.type = MessageType::kHeartbeat;
  m.from = 1;
  m.term = 1;
  m.to = 2;
  Message to_dead = m;
  to_dead.to = 3;
  sender->Send({m, to_dead});
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock l(&mu);
    return !unreachable.empty() && inbox.size() == 1;
  }));
  {
    absl::MutexLock l(&mu);
    EXPECT_EQ(unreachable[0], 3u);
  }
  EXPECT_EQ(sender->peer_stats(2).sent, 1u);
  EXPECT_EQ(sender->peer_stats(2).send_failures, 0u);
  EXPECT_GE(sender->peer_stats(3).send_failures, 1u);
  EXPECT_GE(sender->peer_stats(3).dropped, 1u);
  EXPECT_EQ(sender->peer_stats(3).sent, 0u);
  sender.reset();  // the reporter's captures must outlive the transport
}

// A peer's stream never ends by itself: CloseInbound() ends it, so the server's Shutdown()
// returns at once instead of waiting for it until its deadline (vigild's stop with peers up).
TEST(GrpcTransportTest, CloseInboundEndsPeerStreamsSoShutdownIsPrompt) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  std::unique_ptr<GrpcTransport> receiver = GrpcTransport::CreateOn(&builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  Inbox inbox;
  receiver->SetHandler(inbox.handler());
  ASSERT_OK_AND_ASSIGN(auto sender, GrpcTransport::Create("127.0.0.1:0"));
  sender->AddPeer(2, Address(port));
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.to = 2;
  sender->Send({hb});
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 1; }));  // the stream is open

  receiver->CloseInbound();
  const absl::Time start = RealClock::Get()->MonotonicNow();
  server->Shutdown(GrpcDeadline(absl::Seconds(60)));
  EXPECT_LT(RealClock::Get()->MonotonicNow() - start, absl::Seconds(30));
}

// A snapshot larger than one chunk travels in 1 MiB chunks and arrives whole.
TEST(GrpcTransportSnapshotTest, LargerThanOneChunkArrivesWhole) {
  ASSERT_OK_AND_ASSIGN(auto sender, GrpcTransport::Create("127.0.0.1:0"));
  ASSERT_OK_AND_ASSIGN(auto receiver, GrpcTransport::Create("127.0.0.1:0"));
  Inbox inbox;
  receiver->SetHandler(inbox.handler());
  sender->AddPeer(2, Address(receiver->port()));
  const std::string data = RandomBytes((5 << 20) / 2 + 17, 1);  // 2.5 MiB: 3 chunks
  sender->Send({SnapshotMessage(data)});
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 1; }));
  Message got = inbox.msgs()[0];
  EXPECT_EQ(got.type, MessageType::kSnapshot);
  EXPECT_EQ(got.snapshot.metadata.index, 500u);
  EXPECT_EQ(got.snapshot.metadata.conf_state, (ConfState{{1, 2, 3}, {}}));
  EXPECT_TRUE(got.snapshot.data == data);
  EXPECT_EQ(receiver->inbound_stats().snapshot_chunks, 3u);
  EXPECT_EQ(receiver->inbound_stats().snapshots_received, 1u);
  EXPECT_TRUE(Eventually([&] { return sender->peer_stats(2).snapshots_sent == 1; }));
  // The stream for ordinary messages is unaffected.
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.to = 2;
  sender->Send({hb});
  EXPECT_TRUE(Eventually([&] { return inbox.size() == 2; }));
}

// A node that starts after the leader compacted its log catches up from a snapshot larger than
// one chunk (section 5: InstallSnapshot), over real gRPC and RocksDB.
TEST(GrpcTransportSnapshotTest, LateNodeCatchesUpFromChunkedSnapshot) {
  LoopbackCluster c("grpc_transport_late", /*snapshot_every=*/10);
  ASSERT_THAT(c.Start(1), IsOk());
  ASSERT_THAT(c.Start(2), IsOk());
  uint64_t leader = c.WaitForLeader();
  ASSERT_NE(leader, kNone);
  // 25 entries of 100 KiB, a snapshot every 10 applied entries: the snapshot the late node needs
  // holds at least 15 of them, 1.5 MiB or more, so it takes at least 2 chunks.
  for (int i = 0; i < 25; ++i) {
    ASSERT_THAT(c.node(leader).ProposeAndWait(absl::StrCat(i, std::string(100 << 10, 'v')),
                                              kTimeout),
                IsOk());
  }
  ASSERT_THAT(c.Start(3), IsOk());
  EXPECT_TRUE(Eventually([&] { return c.machine(3).items().size() == 25; }));
  EXPECT_EQ(c.machine(3).items(), c.machine(leader).items());
  EXPECT_GE(c.transport(3).inbound_stats().snapshots_received, 1u);
  EXPECT_GE(c.transport(3).inbound_stats().snapshot_chunks, 2u);
}

// The sender learns each transfer's outcome (Transport::SetSnapshotReporter), so the leader can
// retry a failed one at once.
TEST(GrpcTransportSnapshotTest, ReportsOutcomeToSender) {
  GrpcTransportOptions small;
  small.max_snapshot_bytes = 1000;
  ASSERT_OK_AND_ASSIGN(auto receiver, GrpcTransport::Create("127.0.0.1:0", small));
  Inbox inbox;
  receiver->SetHandler(inbox.handler());
  ASSERT_OK_AND_ASSIGN(auto sender, GrpcTransport::Create("127.0.0.1:0"));
  absl::Mutex mu;
  std::vector<std::pair<uint64_t, bool>> reports;
  sender->SetSnapshotReporter([&](uint64_t peer, bool ok) {
    absl::MutexLock l(&mu);
    reports.emplace_back(peer, ok);
  });
  sender->AddPeer(2, Address(receiver->port()));
  sender->Send({SnapshotMessage(std::string(1000, 's'))});
  sender->Send({SnapshotMessage(std::string(1001, 's'))});  // over the receiver's limit
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock l(&mu);
    return reports.size() == 2;
  }));
  {
    absl::MutexLock l(&mu);
    EXPECT_EQ(reports[0], std::make_pair(uint64_t{2}, true));
    EXPECT_EQ(reports[1], std::make_pair(uint64_t{2}, false));
  }
  EXPECT_EQ(inbox.size(), 1u);
  EXPECT_EQ(sender->peer_stats(2).snapshot_failures, 1u);
  sender.reset();  // the reporter's captures must outlive the transport
}

// Writes `chunks` to the receiver's InstallSnapshot directly and returns the call's status.
grpc::Status SendChunks(int port, const std::vector<pb::SnapshotChunk>& chunks) {
  auto stub = pb::RaftTransport::NewStub(
      grpc::CreateChannel(Address(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  pb::SnapshotAck ack;
  auto writer = stub->InstallSnapshot(&ctx, &ack);
  for (const pb::SnapshotChunk& c : chunks) {
    if (!writer->Write(c)) break;
  }
  writer->WritesDone();
  return writer->Finish();
}

// The chunks a sender would produce for `data`, `chunk` bytes each.
std::vector<pb::SnapshotChunk> Chunk(const std::string& data, size_t chunk) {
  std::vector<pb::SnapshotChunk> out;
  for (size_t off = 0; off < data.size(); off += chunk) {
    pb::SnapshotChunk c;
    if (off == 0) {
      Message header = SnapshotMessage("");
      *c.mutable_header() = ToProto(header);
      c.set_total_size(data.size());
      c.set_checksum(XXH64(data.data(), data.size(), 0));
    }
    c.set_offset(off);
    c.set_data(data.substr(off, chunk));
    c.set_last(off + chunk >= data.size());
    out.push_back(std::move(c));
  }
  return out;
}

// A transfer that breaks off after two of three chunks is discarded; Raft's resend of the
// snapshot then installs it whole.
TEST(GrpcTransportSnapshotTest, TornTransferIsDiscardedThenRetried) {
  ASSERT_OK_AND_ASSIGN(auto receiver, GrpcTransport::Create("127.0.0.1:0"));
  Inbox inbox;
  receiver->SetHandler(inbox.handler());
  const std::string data = RandomBytes(300000, 2);
  std::vector<pb::SnapshotChunk> chunks = Chunk(data, 100000);
  ASSERT_EQ(chunks.size(), 3u);
  chunks.pop_back();
  grpc::Status torn = SendChunks(receiver->port(), chunks);
  EXPECT_EQ(torn.error_code(), grpc::StatusCode::ABORTED) << torn.error_message();
  EXPECT_EQ(receiver->inbound_stats().snapshots_rejected, 1u);
  EXPECT_EQ(inbox.size(), 0u);

  GrpcTransportOptions options;
  options.snapshot_chunk_bytes = 100000;
  ASSERT_OK_AND_ASSIGN(auto sender, GrpcTransport::Create("127.0.0.1:0", options));
  sender->AddPeer(2, Address(receiver->port()));
  sender->Send({SnapshotMessage(data)});
  ASSERT_TRUE(Eventually([&] { return inbox.size() == 1; }));
  EXPECT_TRUE(inbox.msgs()[0].snapshot.data == data);
  EXPECT_EQ(receiver->inbound_stats().snapshots_received, 1u);
}

// Corrupt, reordered or overlong transfers are rejected and never delivered.
TEST(GrpcTransportSnapshotTest, BadTransfersAreRejected) {
  ASSERT_OK_AND_ASSIGN(auto receiver, GrpcTransport::Create("127.0.0.1:0"));
  Inbox inbox;
  receiver->SetHandler(inbox.handler());
  const std::string data = RandomBytes(3000, 3);
  struct Case {
    const char* name;
    std::function<void(std::vector<pb::SnapshotChunk>&)> mangle;
    grpc::StatusCode code;
  };
  const Case cases[] = {
      {"flipped byte", [](auto& c) { (*c[1].mutable_data())[5] ^= 1; },
       grpc::StatusCode::DATA_LOSS},
      {"reordered", [](auto& c) { std::swap(c[1], c[2]); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"gap", [](auto& c) { c.erase(c.begin() + 1); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"overlong", [](auto& c) { c[2].mutable_data()->append("x"); },
       grpc::StatusCode::INVALID_ARGUMENT},
      {"no header", [](auto& c) { c[0].clear_header(); }, grpc::StatusCode::INVALID_ARGUMENT},
  };
  uint64_t rejected = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<pb::SnapshotChunk> chunks = Chunk(data, 1000);
    ASSERT_EQ(chunks.size(), 3u);
    c.mangle(chunks);
    EXPECT_EQ(SendChunks(receiver->port(), chunks).error_code(), c.code);
    EXPECT_EQ(receiver->inbound_stats().snapshots_rejected, ++rejected);
  }
  // The unmangled transfer is accepted, so the cases above fail for the reason they name.
  EXPECT_TRUE(SendChunks(receiver->port(), Chunk(data, 1000)).ok());
  ASSERT_EQ(inbox.size(), 1u);
  EXPECT_TRUE(inbox.msgs()[0].snapshot.data == data);
}

// A peer whose server accepts the stream and then never reads: Raft's service, stuck.
class StuckService final : public pb::RaftTransport::Service {
 public:
  ~StuckService() override { Release(); }
  grpc::Status Stream(grpc::ServerContext* ctx, grpc::ServerReader<pb::Message>* reader,
                      pb::StreamAck* ack) override {
    while (!release_.WaitForNotificationWithTimeout(absl::Milliseconds(20)) &&
           !ctx->IsCancelled()) {
    }
    return grpc::Status::OK;
  }
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }

 private:
  absl::Notification release_;
};

// A stuck peer times out (message_timeout), keeps at most its byte bound queued, and does not
// delay messages to a healthy peer.
TEST(GrpcTransportDeadlineTest, StuckPeerDoesNotBlockOthers) {
  StuckService stuck;
  int stuck_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &stuck_port);
  builder.RegisterService(&stuck);
  std::unique_ptr<grpc::Server> stuck_server = builder.BuildAndStart();
  ASSERT_NE(stuck_server, nullptr);

  GrpcTransportOptions options;
  options.message_timeout = absl::Milliseconds(300);
  options.max_queued_bytes = 4 << 20;
  ASSERT_OK_AND_ASSIGN(auto sender, GrpcTransport::Create("127.0.0.1:0", options));
  ASSERT_OK_AND_ASSIGN(auto healthy, GrpcTransport::Create("127.0.0.1:0"));
  Inbox inbox;
  healthy->SetHandler(inbox.handler());
  sender->AddPeer(2, Address(stuck_port));
  sender->AddPeer(3, Address(healthy->port()));

  const std::string big(1 << 20, 'b');
  size_t sent_to_healthy = 0;
  uint64_t max_queued_bytes = 0;
  // Keep a 1 MiB append flowing to the stuck peer until its flow-control window is full and a
  // write outlives the deadline; a heartbeat goes to the healthy peer each round.
  ASSERT_TRUE(Eventually([&] {
    Message app;
    app.type = MessageType::kAppend;
    app.to = 2;
    app.entries.push_back(Entry{1, 1, EntryType::kNormal, big});
    Message hb;
    hb.type = MessageType::kHeartbeat;
    hb.to = 3;
    sender->Send({app, hb});
    ++sent_to_healthy;
    max_queued_bytes = std::max(max_queued_bytes, sender->peer_stats(2).queued_bytes);
    return sender->peer_stats(2).timeouts >= 1;
  }));
  EXPECT_TRUE(Eventually([&] { return inbox.size() == sent_to_healthy; }));
  EXPECT_LE(max_queued_bytes, options.max_queued_bytes);
  EXPECT_GT(sender->peer_stats(2).dropped, 0u);
  EXPECT_EQ(sender->peer_stats(3).timeouts, 0u);
  EXPECT_EQ(sender->peer_stats(3).dropped, 0u);
  stuck.Release();
  sender.reset();
  stuck_server->Shutdown();
}

}  // namespace
}  // namespace vigil::raft
