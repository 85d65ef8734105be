#include "tools/vigilctl_cluster.h"

#include <cstdint>
#include <iostream>
#include <map>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "common/status_macros.h"
#include "proto/vigil/v1/cluster.grpc.pb.h"

namespace vigil::tools {
namespace {

using nlohmann::json;

absl::Status FromGrpc(absl::string_view rpc, const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(rpc, " failed: ", s.error_message()));
}

absl::StatusOr<uint64_t> ParseId(absl::string_view s) {
  uint64_t id = 0;
  if (!absl::SimpleAtoi(s, &id) || id == 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad node id \"", s, "\""));
  }
  return id;
}

void PrintStatusText(const json& st) {
  std::cout << absl::StrFormat("node %d  leader %d  term %d  role %s  commit %d  applied %d\n",
                               st.value("node_id", 0), st.value("leader", 0), st.value("term", 0),
                               st.value("role", ""), st.value("commit_index", 0),
                               st.value("applied_index", 0));
  std::cout << absl::StrFormat("shards %d  rf %d  moving %d  voters [%s]  learners [%s]\n",
                               st.value("num_shards", 0), st.value("replication_factor", 0),
                               st.value("moving_shards", 0),
                               absl::StrJoin(st.value("voters", std::vector<uint64_t>{}), ","),
                               absl::StrJoin(st.value("learners", std::vector<uint64_t>{}), ","));
  std::map<uint64_t, int> replicas, pending;
  for (const json& s : st.value("shards", json::array())) {
    for (uint64_t r : s.value("replicas", std::vector<uint64_t>{})) ++replicas[r];
    for (uint64_t r : s.value("pending", std::vector<uint64_t>{})) ++pending[r];
  }
  std::cout << absl::StrFormat("%-6s %-8s %-22s %-22s %s\n", "ID", "STATE", "GRPC", "HTTP",
                               "SHARDS(+INCOMING)");
  for (const json& m : st.value("members", json::array())) {
    uint64_t id = m.value("id", uint64_t{0});
    std::cout << absl::StrFormat("%-6d %-8s %-22s %-22s %d(+%d)\n", id, m.value("state", ""),
                                 m.value("grpc_address", ""), m.value("http_address", ""),
                                 replicas[id], pending[id]);
  }
  // Shard streams of rebalancing run on the node that led when the move began.
  const json streams = st.value("streams", json::object());
  if (streams.empty()) return;
  std::cout << absl::StrFormat(
      "streams run by this node: %d running, %d queued, %d done, %d failed; %d series, "
      "%d samples, %.1f MB\n",
      streams.value("running", 0), streams.value("queued", 0), streams.value("done", 0),
      streams.value("failed", 0), streams.value("series", int64_t{0}),
      streams.value("samples", int64_t{0}), streams.value("bytes", int64_t{0}) / 1e6);
  for (const json& t : streams.value("recent", json::array())) {
    if (t.value("state", "") != "running" && t.value("state", "") != "queued") continue;
    std::cout << absl::StrFormat(
        "  shard %d  %d -> [%s]  %s  %d series  %d samples  %.1f MB  %.1fs\n",
        t.value("shard", 0), t.value("from", 0),
        absl::StrJoin(t.value("to", std::vector<uint64_t>{}), ","), t.value("state", ""),
        t.value("series", int64_t{0}), t.value("samples", int64_t{0}),
        t.value("bytes", int64_t{0}) / 1e6, t.value("seconds", 0.0));
  }
}

}  // namespace

absl::Status RunClusterCommand(const std::string& addr, absl::Duration timeout, bool json_out,
                               const std::vector<std::string>& args) {
  if (args.empty()) {
    return absl::InvalidArgumentError(
        "cluster needs a subcommand: status | add-node ID=GRPC_ADDR[,http=HTTP_ADDR] | "
        "remove-node ID | transfer-leader [ID]");
  }
  auto stub = vigil::v1::ClusterAdmin::NewStub(
      grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  const std::string& sub = args[0];
  if (sub == "status" && args.size() == 1) {
    vigil::v1::ClusterStatusResponse resp;
    grpc::Status s = stub->Status(&ctx, vigil::v1::ClusterStatusRequest(), &resp);
    if (!s.ok()) return FromGrpc("ClusterAdmin.Status", s);
    json st = json::parse(resp.json(), nullptr, false);
    if (json_out || !st.is_object()) {
      std::cout << resp.json() << "\n";
    } else {
      PrintStatusText(st);
    }
    return absl::OkStatus();
  }
  if (sub == "add-node" && args.size() == 2) {
    // ID=GRPC_ADDR[,http=HTTP_ADDR]
    std::vector<std::string> parts = absl::StrSplit(args[1], ',');
    std::pair<std::string, std::string> idaddr = absl::StrSplit(parts[0], absl::MaxSplits('=', 1));
    absl::StatusOr<uint64_t> id = ParseId(idaddr.first);
    if (!id.ok()) return id.status();
    vigil::v1::AddNodeRequest req;
    req.set_id(*id);
    req.set_grpc_address(idaddr.second);
    for (size_t i = 1; i < parts.size(); ++i) {
      if (!absl::StartsWith(parts[i], "http=")) {
        return absl::InvalidArgumentError(absl::StrCat("unknown option \"", parts[i], "\""));
      }
      req.set_http_address(parts[i].substr(5));
    }
    if (req.grpc_address().empty()) {
      return absl::InvalidArgumentError("add-node ID=GRPC_ADDR[,http=HTTP_ADDR]");
    }
    vigil::v1::AddNodeResponse resp;
    RETURN_IF_ERROR(FromGrpc("ClusterAdmin.AddNode", stub->AddNode(&ctx, req, &resp)));
    std::cout << "node " << *id << " added; it is promoted and takes shards once caught up\n";
    return absl::OkStatus();
  }
  if (sub == "remove-node" && args.size() == 2) {
    absl::StatusOr<uint64_t> id = ParseId(args[1]);
    if (!id.ok()) return id.status();
    vigil::v1::RemoveNodeRequest req;
    req.set_id(*id);
    vigil::v1::RemoveNodeResponse resp;
    RETURN_IF_ERROR(
        FromGrpc("ClusterAdmin.RemoveNode", stub->RemoveNode(&ctx, req, &resp)));
    std::cout << "node " << *id << " is leaving; it is removed once its shards moved\n";
    return absl::OkStatus();
  }
  if (sub == "transfer-leader" && args.size() <= 2) {
    vigil::v1::TransferLeaderRequest req;
    if (args.size() == 2) {
      absl::StatusOr<uint64_t> id = ParseId(args[1]);
      if (!id.ok()) return id.status();
      req.set_target(*id);
    }
    vigil::v1::TransferLeaderResponse resp;
    RETURN_IF_ERROR(
        FromGrpc("ClusterAdmin.TransferLeader", stub->TransferLeader(&ctx, req, &resp)));
    std::cout << "leader is now node " << resp.leader() << "\n";
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("bad cluster command: ", absl::StrJoin(args, " ")));
}

}  // namespace vigil::tools
