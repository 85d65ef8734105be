// GrpcTransport: wire conversion, and three RaftNodes replicating over loopback gRPC.
#include "raft/grpc_transport.h"

#include <filesystem>
#include <memory>
#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "raft/raft_node.h"
#include "raft/raft_node_test_util.h"

namespace vigil::raft {
namespace {

using ::testing::ElementsAre;
using ::vigil::testing::IsOk;

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

TEST(GrpcTransportTest, ThreeNodesReplicateOverLoopback) {
  std::string root = std::filesystem::path(::testing::TempDir()) / "grpc_transport_three";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  std::unique_ptr<GrpcTransport> transports[4];
  std::unique_ptr<ListMachine> machines[4];
  std::unique_ptr<RaftNode> nodes[4];
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_OK_AND_ASSIGN(transports[id], GrpcTransport::Create("127.0.0.1:0"));
    machines[id] = std::make_unique<ListMachine>();
  }
  for (uint64_t id = 1; id <= 3; ++id) {
    for (uint64_t peer = 1; peer <= 3; ++peer) {
      if (peer != id) {
        transports[id]->AddPeer(peer, "127.0.0.1:" + std::to_string(transports[peer]->port()));
      }
    }
    RaftNodeOptions o;
    o.id = id;
    o.dir = (std::filesystem::path(root) / std::to_string(id)).string();
    o.initial_voters = {1, 2, 3};
    o.tick = absl::Milliseconds(10);
    ASSERT_OK_AND_ASSIGN(nodes[id],
                         RaftNode::Open(o, machines[id].get(), transports[id].get()));
  }
  uint64_t leader = kNone;
  ASSERT_TRUE(Eventually([&] {
    for (uint64_t id = 1; id <= 3; ++id) {
      if (nodes[id]->status().role == Role::kLeader) leader = id;
    }
    return leader != kNone;
  }));
  ASSERT_THAT(nodes[leader]->ProposeAndWait("over-grpc", kTimeout), IsOk());
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_TRUE(Eventually([&] { return machines[id]->items().size() == 1; })) << id;
    EXPECT_THAT(machines[id]->items(), ElementsAre("over-grpc"));
  }
  for (auto& n : nodes) n.reset();
  for (auto& t : transports) t.reset();
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace vigil::raft
