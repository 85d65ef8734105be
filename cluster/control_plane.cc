#include "cluster/control_plane.h"

#include "cluster/control_plane_machine.h"

#include <deque>
#include <filesystem>
#include <random>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cluster/rebalancer.h"
#include "common/grpc_deadline.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "server/metrics.h"
#include "xxhash.h"

// TESTING ONLY: the planted bug of jepsen/ (issue 7), off by default; never set it
// on a real cluster.
DEFINE_bool(unsafe_stale_register_reads, false,
            "TESTING ONLY, breaks linearizability: register GETs answer from this node's "
            "local state without the ReadIndex barrier, so an isolated old leader serves "
            "stale values (jepsen/ proves its checker catches that).");

namespace vigil::cluster {

namespace {

// Metadata on calls one node forwards to the leader.
constexpr char kForwardedKey[] = "vigil-forwarded";

// Pause between attempts while leadership is unsettled.
constexpr absl::Duration kRetryPause = absl::Milliseconds(20);

// Leadership is moving: another attempt (perhaps at another node) may succeed.
bool Unsettled(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) || absl::IsUnavailable(s);
}

uint64_t FreshClientId() {
  static std::mt19937_64* rng = new std::mt19937_64(std::random_device{}());
  static absl::Mutex* mu = new absl::Mutex;
  absl::MutexLock l(mu);
  uint64_t id = 0;
  while (id == 0) id = (*rng)();
  return id;
}

}  // namespace

absl::StatusOr<std::map<NodeId, PeerAddress>> ParsePeers(absl::string_view flag) {
  std::map<NodeId, PeerAddress> peers;
  for (absl::string_view item : absl::StrSplit(flag, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    NodeId id = 0;
    if (!absl::SimpleAtoi(kv.first, &id) || id == 0 || kv.second.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("bad peer \"", item, "\": want ID=HOST:PORT"));
    }
    std::pair<absl::string_view, absl::string_view> addrs =
        absl::StrSplit(kv.second, absl::MaxSplits('/', 1));
    if (!peers.emplace(id, PeerAddress{std::string(addrs.first), std::string(addrs.second)})
             .second) {
      return absl::InvalidArgumentError(absl::StrCat("peer ", id, " listed twice"));
    }
  }
  return peers;
}

// ClusterAdmin. A call from a client (vigilctl) goes through the public,
// forwarding methods; a call another node forwarded (kForwardedKey metadata)
// runs the leader-only variant, so it never bounces on.
class ControlPlane::AdminService final : public vigil::v1::ClusterAdmin::Service {
 public:
  explicit AdminService(ControlPlane* cp) : cp_(cp) {}

  grpc::Status Status(grpc::ServerContext*, const vigil::v1::ClusterStatusRequest*,
                      vigil::v1::ClusterStatusResponse* resp) override {
    if (!cp_->started()) return grpc::Status(grpc::UNAVAILABLE, "starting");
    resp->set_json(cp_->StatusJson().dump());
    return grpc::Status::OK;
  }
  grpc::Status AddNode(grpc::ServerContext* ctx, const vigil::v1::AddNodeRequest* req,
                       vigil::v1::AddNodeResponse*) override {
    if (!cp_->started()) return grpc::Status(grpc::UNAVAILABLE, "starting");
    PeerAddress addr{req->grpc_address(), req->http_address()};
    return ToGrpcStatus(Forwarded(ctx) ? cp_->AddNodeLocal(req->id(), addr)
                                       : cp_->AddNode(req->id(), addr));
  }
  grpc::Status RemoveNode(grpc::ServerContext* ctx, const vigil::v1::RemoveNodeRequest* req,
                          vigil::v1::RemoveNodeResponse*) override {
    if (!cp_->started()) return grpc::Status(grpc::UNAVAILABLE, "starting");
    return ToGrpcStatus(Forwarded(ctx) ? cp_->RemoveNodeLocal(req->id(), false)
                                       : cp_->RemoveNode(req->id(), false));
  }
  grpc::Status TransferLeader(grpc::ServerContext* ctx, const vigil::v1::TransferLeaderRequest* req,
                              vigil::v1::TransferLeaderResponse* resp) override {
    if (!cp_->started()) return grpc::Status(grpc::UNAVAILABLE, "starting");
    absl::StatusOr<NodeId> leader = Forwarded(ctx) ? cp_->TransferLeaderLocal(req->target())
                                                   : cp_->TransferLeader(req->target());
    if (!leader.ok()) return ToGrpcStatus(leader.status());
    resp->set_leader(*leader);
    return grpc::Status::OK;
  }
  grpc::Status Propose(grpc::ServerContext* ctx, const vigil::v1::ProposeRequest* req,
                       vigil::v1::ProposeResponse* resp) override {
    if (!cp_->started()) return grpc::Status(grpc::UNAVAILABLE, "starting");
    absl::Duration timeout = std::min(cp_->options_.request_timeout, GrpcTimeLeft(*ctx));
    absl::StatusOr<std::string> r = cp_->raft_->ProposeAndWait(req->command(), timeout);
    if (!r.ok()) return ToGrpcStatus(r.status());
    resp->set_result(*r);
    return grpc::Status::OK;
  }

 private:
  static bool Forwarded(grpc::ServerContext* ctx) {
    return ctx->client_metadata().count(kForwardedKey) > 0;
  }

  ControlPlane* const cp_;
};

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Create(ControlPlaneOptions options) {
  if (options.node_id == 0) return absl::InvalidArgumentError("node id must be non-zero");
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data dir is required");
  if (!options.join && !options.peers.contains(options.node_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--peers must list this node (", options.node_id, ") to bootstrap"));
  }
  if (options.replication_factor == 0 || options.num_shards == 0) {
    return absl::InvalidArgumentError("replication factor and shard count must be positive");
  }
  std::unique_ptr<ControlPlane> cp(new ControlPlane(std::move(options)));
  ClusterOptions copts;
  copts.num_shards = cp->options_.num_shards;
  copts.replication_factor = cp->options_.replication_factor;
  cp->machine_ =
      std::make_unique<Machine>(cp->options_.node_id, copts, cp->options_.debug_entries);
  cp->admin_ = std::make_unique<AdminService>(cp.get());
  return cp;
}

void ControlPlane::CloseInbound() {
  if (transport_ != nullptr) transport_->CloseInbound();
}

void ControlPlane::RegisterServices(grpc::ServerBuilder* builder) {
  CHECK(transport_ == nullptr) << "RegisterServices() called twice";
  transport_ = raft::GrpcTransport::CreateOn(builder);
  machine_->set_transport(transport_.get());
  builder->RegisterService(admin_.get());
}

ControlPlane::ControlPlane(ControlPlaneOptions options) : options_(std::move(options)) {}

ControlPlane::~ControlPlane() {
  stop_loop_.Notify();
  if (loop_.joinable()) loop_.join();
  raft_.reset();
  transport_.reset();
}

absl::Status ControlPlane::Start() {
  CHECK(raft_ == nullptr) << "Start() called twice";
  CHECK(transport_ != nullptr) << "RegisterServices() must come before Start()";
  std::string dir = options_.data_dir + "/raft";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  for (const auto& [id, addr] : options_.peers) machine_->AddPeer(id, addr.grpc_address);
  raft::RaftNodeOptions ro;
  ro.id = options_.node_id;
  ro.dir = dir;
  if (!options_.join) {
    for (const auto& [id, addr] : options_.peers) ro.initial_voters.push_back(id);
  }
  ro.tick = options_.tick;
  ro.election_ticks = options_.election_ticks;
  ro.heartbeat_ticks = options_.heartbeat_ticks;
  ro.snapshot_every = options_.snapshot_every;
  absl::StatusOr<std::unique_ptr<raft::RaftNode>> node =
      raft::RaftNode::Open(ro, machine_.get(), transport_.get());
  if (!node.ok()) return node.status();
  raft_ = *std::move(node);
  started_.store(true, std::memory_order_release);
  loop_ = std::thread([this] { ReconcileLoop(); });
  return absl::OkStatus();
}

std::shared_ptr<const ShardMap> ControlPlane::shard_map() const { return machine_->map(); }

void ControlPlane::SubscribeShardMap(MapCallback cb) { machine_->Subscribe(std::move(cb)); }

void ControlPlane::SubscribeRegisters(absl::string_view prefix, RegisterCallback cb) {
  machine_->SubscribeRegisters(prefix, std::move(cb));
}

raft::RaftStatus ControlPlane::raft_status() const {
  if (!started()) return raft::RaftStatus{.id = options_.node_id};
  return raft_->status();
}

absl::StatusOr<NodeId> ControlPlane::WaitForLeader(absl::Time deadline) const {
  for (;;) {
    NodeId leader = raft_->status().leader;
    if (leader != raft::kNone) return leader;
    if (options_.clock->MonotonicNow() >= deadline) {
      return absl::UnavailableError("no raft leader");
    }
    absl::SleepFor(kRetryPause);
  }
}

std::string ControlPlane::GrpcAddressOf(NodeId id) const {
  auto it = options_.peers.find(id);
  if (it != options_.peers.end()) return it->second.grpc_address;
  return machine_->Read([id](const ClusterState& s) {
    const v1::Member* m = s.FindMember(id);
    return m == nullptr ? std::string() : m->grpc_address();
  });
}

std::string ControlPlane::MemberGrpcAddress(NodeId id) const {
  std::string address = machine_->Read([id](const ClusterState& s) {
    const v1::Member* m = s.FindMember(id);
    return m == nullptr ? std::string() : m->grpc_address();
  });
  if (!address.empty()) return address;
  auto it = options_.peers.find(id);
  return it == options_.peers.end() ? std::string() : it->second.grpc_address;
}

vigil::v1::ClusterAdmin::Stub* ControlPlane::StubFor(NodeId id) {
  std::string address = GrpcAddressOf(id);
  if (address.empty()) return nullptr;
  absl::MutexLock l(&stubs_mu_);
  std::unique_ptr<vigil::v1::ClusterAdmin::Stub>& stub = stubs_[address];
  if (stub == nullptr) {
    stub = vigil::v1::ClusterAdmin::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  return stub.get();
}

absl::Status ControlPlane::OnLeader(const LocalFn& local, const RemoteFn& remote) {
  if (!started()) return absl::UnavailableError("control plane starting");
  const Clock& clock = *options_.clock;
  absl::Time deadline = clock.MonotonicNow() + options_.request_timeout;
  absl::Status last = absl::UnavailableError("no raft leader");
  while (clock.MonotonicNow() < deadline) {
    absl::StatusOr<NodeId> leader = WaitForLeader(deadline);
    if (!leader.ok()) break;
    if (*leader == options_.node_id) {
      last = local(deadline);
    } else if (vigil::v1::ClusterAdmin::Stub* stub = StubFor(*leader); stub == nullptr) {
      last = absl::UnavailableError(absl::StrCat("no address for leader ", *leader));
    } else {
      grpc::ClientContext ctx;
      ctx.set_deadline(GrpcDeadline(deadline - clock.MonotonicNow()));
      ctx.AddMetadata(kForwardedKey, "1");
      last = FromGrpcStatus(remote(stub, &ctx));
    }
    if (!Unsettled(last)) return last;
    absl::SleepFor(kRetryPause);
  }
  if (absl::IsDeadlineExceeded(last) || absl::IsFailedPrecondition(last)) {
    return absl::UnavailableError(last.message());
  }
  return last;
}

absl::StatusOr<v1::CommandResult> ControlPlane::Propose(v1::Command cmd) {
  if (cmd.client_id() == 0) {
    cmd.set_client_id(FreshClientId());
    cmd.set_sequence(1);
  }
  const std::string bytes = EncodeCommand(cmd);
  std::string reply;
  absl::Status s = OnLeader(
      [&](absl::Time deadline) -> absl::Status {
        absl::StatusOr<std::string> r =
            raft_->ProposeAndWait(bytes, deadline - options_.clock->MonotonicNow());
        if (!r.ok()) return r.status();
        reply = *std::move(r);
        return absl::OkStatus();
      },
      [&](vigil::v1::ClusterAdmin::Stub* stub, grpc::ClientContext* ctx) {
        vigil::v1::ProposeRequest req;
        req.set_command(bytes);
        vigil::v1::ProposeResponse resp;
        grpc::Status gs = stub->Propose(ctx, req, &resp);
        if (gs.ok()) reply = resp.result();
        return gs;
      });
  if (absl::IsDeadlineExceeded(s)) return absl::UnavailableError("outcome unknown: " + s.ToString());
  if (!s.ok()) return s;
  v1::CommandResult result;
  if (!result.ParseFromString(reply)) return absl::InternalError("unparsable command result");
  return result;
}

absl::StatusOr<v1::CommandResult> ControlPlane::ProposeLocal(const v1::Command& cmd,
                                                             absl::Time deadline) {
  absl::StatusOr<std::string> r =
      raft_->ProposeAndWait(EncodeCommand(cmd), deadline - options_.clock->MonotonicNow());
  if (!r.ok()) return r.status();
  v1::CommandResult result;
  if (!result.ParseFromString(*r)) return absl::InternalError("unparsable command result");
  return result;
}

absl::StatusOr<RegisterValue> ControlPlane::GetRegister(absl::string_view key) {
  if (!started()) return absl::UnavailableError("control plane starting");
  if (FLAGS_unsafe_stale_register_reads) {  // the planted bug: no barrier
    return machine_->Read([key](const ClusterState& state) {
      return state.GetRegister(key).value_or(RegisterValue{});
    });
  }
  const Clock& clock = *options_.clock;
  absl::Time deadline = clock.MonotonicNow() + options_.request_timeout;
  const absl::Duration attempt = options_.tick * options_.election_ticks * 2;
  absl::Status s;
  while (clock.MonotonicNow() < deadline) {
    s = raft_->ReadBarrier(std::min(attempt, deadline - clock.MonotonicNow()));
    if (s.ok()) {
      return machine_->Read([key](const ClusterState& state) {
        return state.GetRegister(key).value_or(RegisterValue{});
      });
    }
    if (!absl::IsUnavailable(s) && !absl::IsDeadlineExceeded(s)) return s;
    absl::SleepFor(kRetryPause);
  }
  return absl::UnavailableError(absl::StrCat("read barrier: ", s.message()));
}

absl::StatusOr<uint64_t> ControlPlane::PutRegister(absl::string_view key,
                                                   absl::string_view value) {
  v1::Command cmd;
  cmd.mutable_put()->set_key(std::string(key));
  cmd.mutable_put()->set_value(std::string(value));
  absl::StatusOr<v1::CommandResult> r = Propose(std::move(cmd));
  if (!r.ok()) return r.status();
  if (absl::Status s = ResultStatus(*r); !s.ok()) return s;
  return r->version();
}

absl::StatusOr<uint64_t> ControlPlane::PutRegisterFenced(absl::string_view key,
                                                        absl::string_view value, uint64_t term) {
  if (!started()) return absl::UnavailableError("control plane starting");
  if (term == 0) return absl::InvalidArgumentError("a fenced write needs a term");
  v1::Command cmd;
  cmd.set_fence_term(term);
  cmd.mutable_put()->set_key(std::string(key));
  cmd.mutable_put()->set_value(std::string(value));
  absl::StatusOr<std::string> r =
      raft_->ProposeFencedAndWait(term, EncodeCommand(cmd), options_.request_timeout);
  if (absl::IsDeadlineExceeded(r.status())) {
    return absl::UnavailableError(absl::StrCat("outcome unknown: ", r.status().message()));
  }
  if (!r.ok()) return r.status();
  v1::CommandResult result;
  if (!result.ParseFromString(*r)) return absl::InternalError("unparsable command result");
  RETURN_IF_ERROR(ResultStatus(result));
  return result.version();
}

absl::StatusOr<uint64_t> ControlPlane::CompareAndSetRegister(absl::string_view key,
                                                             absl::string_view expected,
                                                             absl::string_view value,
                                                             RegisterValue* current) {
  v1::Command cmd;
  v1::CompareAndSet* cas = cmd.mutable_compare_and_set();
  cas->set_key(std::string(key));
  cas->set_compare_value(true);
  cas->set_expected_value(std::string(expected));
  cas->set_value(std::string(value));
  absl::StatusOr<v1::CommandResult> r = Propose(std::move(cmd));
  if (!r.ok()) return r.status();
  absl::Status s = ResultStatus(*r);
  if (absl::IsFailedPrecondition(s) && current != nullptr) {
    *current = RegisterValue{r->value(), r->version()};
  }
  if (!s.ok()) return s;
  return r->version();
}

}  // namespace vigil::cluster
