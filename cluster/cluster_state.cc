#include "cluster/cluster_state.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace vigil::cluster {
namespace {

v1::CommandResult Result(absl::StatusCode code, std::string message) {
  v1::CommandResult r;
  r.set_code(static_cast<int>(code));
  r.set_message(std::move(message));
  return r;
}

v1::CommandResult Ok() { return v1::CommandResult(); }

std::string SerializeDeterministic(const google::protobuf::MessageLite& msg) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    msg.SerializeToCodedStream(&coded);
  }
  return out;
}

bool SameSet(std::vector<NodeId> a, std::vector<NodeId> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

bool Contains(const std::vector<NodeId>& v, NodeId n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

std::string ShardName(uint32_t s) { return absl::StrCat("shard ", s); }

}  // namespace

std::vector<NodeId> ShardPlacement::WriteSet() const {
  std::vector<NodeId> out = replicas;
  for (NodeId n : pending) {
    if (!Contains(out, n)) out.push_back(n);
  }
  return out;
}

int WriteQuorum(size_t n) { return static_cast<int>(n / 2 + 1); }

int ReadQuorum(size_t n) { return std::max(1, static_cast<int>(n) - WriteQuorum(n) + 1); }

std::string EncodeCommand(const v1::Command& cmd) { return SerializeDeterministic(cmd); }

absl::Status ResultStatus(const v1::CommandResult& result) {
  if (result.code() == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(result.code()), result.message());
}

const char* MemberStateName(v1::MemberState state) {
  switch (state) {
    case v1::JOINING: return "joining";
    case v1::ACTIVE: return "active";
    case v1::LEAVING: return "leaving";
    default: return "unspecified";
  }
}

ClusterState::ClusterState(ClusterOptions opts)
    : opts_(opts), replication_factor_(opts.replication_factor), shards_(opts.num_shards) {
  CHECK_GT(opts_.num_shards, 0u);
  CHECK_GT(opts_.replication_factor, 0u);
  CHECK_GT(opts_.max_sessions, 0u);
}

v1::CommandResult ClusterState::Apply(uint64_t index, absl::string_view command) {
  CHECK_GT(index, applied_index_) << "raft applied an index twice or out of order";
  applied_index_ = index;
  v1::Command cmd;
  if (!cmd.ParseFromArray(command.data(), static_cast<int>(command.size()))) {
    return Result(absl::StatusCode::kInvalidArgument, "unparsable cluster command");
  }
  if (cmd.client_id() != 0) {
    auto it = sessions_.find(cmd.client_id());
    if (it != sessions_.end()) {
      if (cmd.sequence() == it->second.last_sequence()) return it->second.last_result();
      if (cmd.sequence() < it->second.last_sequence()) {
        return Result(absl::StatusCode::kFailedPrecondition,
                      absl::StrCat("stale session sequence ", cmd.sequence(), " < ",
                                   it->second.last_sequence()));
      }
    }
  }
  v1::CommandResult result = ApplyOp(cmd);
  if (cmd.client_id() != 0) RememberSession(cmd.client_id(), cmd.sequence(), result);
  return result;
}

void ClusterState::RememberSession(uint64_t client_id, uint64_t sequence,
                                   const v1::CommandResult& r) {
  v1::Session& s = sessions_[client_id];
  s.set_client_id(client_id);
  s.set_last_sequence(sequence);
  s.set_last_index(applied_index_);
  *s.mutable_last_result() = r;
  if (sessions_.size() <= opts_.max_sessions) return;
  // Evict the least recently used; last_index is unique, so this is deterministic.
  auto oldest = sessions_.begin();
  for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
    if (it->second.last_index() < oldest->second.last_index()) oldest = it;
  }
  sessions_.erase(oldest);
}

v1::CommandResult ClusterState::ApplyOp(const v1::Command& cmd) {
  switch (cmd.op_case()) {
    case v1::Command::kBootstrap: return DoBootstrap(cmd.bootstrap());
    case v1::Command::kAddMember: return DoAddMember(cmd.add_member());
    case v1::Command::kRemoveMember: return DoRemoveMember(cmd.remove_member());
    case v1::Command::kMarkMemberState: return DoMarkMemberState(cmd.mark_member_state());
    case v1::Command::kBeginShardMove: return DoBeginShardMove(cmd.begin_shard_move());
    case v1::Command::kCompleteShardMove: return DoCompleteShardMove(cmd.complete_shard_move());
    case v1::Command::kAbortShardMove: return DoAbortShardMove(cmd.abort_shard_move());
    case v1::Command::kSetReplicationFactor:
      return DoSetReplicationFactor(cmd.set_replication_factor());
    case v1::Command::kPut: return DoPut(cmd.put());
    case v1::Command::kGet: return DoGet(cmd.get());
    case v1::Command::kDelete: return DoDelete(cmd.delete_());
    case v1::Command::kCompareAndSet: return DoCompareAndSet(cmd.compare_and_set());
    case v1::Command::OP_NOT_SET: break;
  }
  return Result(absl::StatusCode::kInvalidArgument, "cluster command without an operation");
}

// --- Members ---

v1::CommandResult ClusterState::DoBootstrap(const v1::Bootstrap& op) {
  if (bootstrapped_ || !members_.empty()) {
    return Result(absl::StatusCode::kFailedPrecondition, "cluster already bootstrapped");
  }
  if (op.members().empty()) {
    return Result(absl::StatusCode::kInvalidArgument, "bootstrap without members");
  }
  std::map<NodeId, v1::Member> members;
  for (const v1::Member& m : op.members()) {
    if (m.id() == 0) return Result(absl::StatusCode::kInvalidArgument, "member id 0");
    if (!members.emplace(m.id(), m).second) {
      return Result(absl::StatusCode::kInvalidArgument, absl::StrCat("duplicate member ", m.id()));
    }
    members[m.id()].set_state(v1::ACTIVE);
  }
  members_ = std::move(members);
  if (op.replication_factor() > 0) replication_factor_ = op.replication_factor();
  Ring ring(ActiveMembers(), opts_.tokens_per_node);
  for (uint32_t s = 0; s < opts_.num_shards; ++s) {
    shards_[s].replicas = ring.Place(s, opts_.num_shards, replication_factor_);
    shards_[s].pending.clear();
    shards_[s].epoch = 1;
  }
  bootstrapped_ = true;
  ShardsChanged();
  return Ok();
}

v1::CommandResult ClusterState::DoAddMember(const v1::AddMember& op) {
  v1::Member m = op.member();
  if (m.id() == 0) return Result(absl::StatusCode::kInvalidArgument, "member id 0");
  if (m.state() == v1::MEMBER_STATE_UNSPECIFIED) m.set_state(v1::JOINING);
  auto it = members_.find(m.id());
  if (it != members_.end()) {
    if (it->second.grpc_address() == m.grpc_address() &&
        it->second.http_address() == m.http_address()) {
      return Ok();  // a retried join
    }
    return Result(absl::StatusCode::kAlreadyExists,
                  absl::StrCat("member ", m.id(), " exists with other addresses"));
  }
  members_.emplace(m.id(), std::move(m));
  return Ok();
}

v1::CommandResult ClusterState::DoRemoveMember(const v1::RemoveMember& op) {
  if (members_.find(op.id()) == members_.end()) {
    return Result(absl::StatusCode::kNotFound, absl::StrCat("no member ", op.id()));
  }
  bool listed = false;
  for (const ShardPlacement& p : shards_) {
    listed = listed || Contains(p.replicas, op.id()) || Contains(p.pending, op.id());
  }
  if (listed && !op.force()) {
    return Result(absl::StatusCode::kFailedPrecondition,
                  absl::StrCat("member ", op.id(), " still holds shards; drain it or force"));
  }
  for (ShardPlacement& p : shards_) {
    auto drop = [&](std::vector<NodeId>& v) { std::erase(v, op.id()); };
    if (Contains(p.replicas, op.id())) {
      drop(p.replicas);
      ++p.epoch;
    }
    drop(p.pending);
  }
  members_.erase(op.id());
  if (listed) ShardsChanged();
  return Ok();
}

v1::CommandResult ClusterState::DoMarkMemberState(const v1::MarkMemberState& op) {
  auto it = members_.find(op.id());
  if (it == members_.end()) {
    return Result(absl::StatusCode::kNotFound, absl::StrCat("no member ", op.id()));
  }
  if (op.state() == v1::MEMBER_STATE_UNSPECIFIED || !v1::MemberState_IsValid(op.state())) {
    return Result(absl::StatusCode::kInvalidArgument, "bad member state");
  }
  it->second.set_state(op.state());
  return Ok();
}

std::vector<NodeId> ClusterState::ActiveMembers() const {
  std::vector<NodeId> out;
  for (const auto& [id, m] : members_) {
    if (m.state() == v1::ACTIVE) out.push_back(id);
  }
  return out;
}

const v1::Member* ClusterState::FindMember(NodeId id) const {
  auto it = members_.find(id);
  return it == members_.end() ? nullptr : &it->second;
}

// --- Shards ---

v1::CommandResult ClusterState::DoBeginShardMove(const v1::BeginShardMove& op) {
  if (op.shard() >= opts_.num_shards) {
    return Result(absl::StatusCode::kInvalidArgument, absl::StrCat("no shard ", op.shard()));
  }
  ShardPlacement& p = shards_[op.shard()];
  if (op.expected_epoch() != p.epoch) {
    return Result(absl::StatusCode::kFailedPrecondition,
                  absl::StrCat(ShardName(op.shard()), " is at epoch ", p.epoch, ", not ",
                               op.expected_epoch()));
  }
  if (p.moving()) {
    return Result(absl::StatusCode::kFailedPrecondition,
                  absl::StrCat(ShardName(op.shard()), " is already moving"));
  }
  std::vector<NodeId> target(op.target().begin(), op.target().end());
  if (target.empty()) return Result(absl::StatusCode::kInvalidArgument, "empty move target");
  std::set<NodeId> distinct(target.begin(), target.end());
  if (distinct.size() != target.size()) {
    return Result(absl::StatusCode::kInvalidArgument, "move target repeats a node");
  }
  for (NodeId n : target) {
    const v1::Member* m = FindMember(n);
    if (m == nullptr || m->state() != v1::ACTIVE) {
      return Result(absl::StatusCode::kFailedPrecondition,
                    absl::StrCat("move target ", n, " is not an active member"));
    }
  }
  p.pending = std::move(target);
  ShardsChanged();
  v1::CommandResult r;
  r.set_epoch(p.epoch);
  return r;
}

// The shard of a Complete/Abort if it is moving at `expected_epoch`, else why not.
ShardPlacement* ClusterState::MovingShard(uint32_t shard, uint64_t expected_epoch,
                                          v1::CommandResult* error) {
  if (shard >= opts_.num_shards) {
    *error = Result(absl::StatusCode::kInvalidArgument, absl::StrCat("no shard ", shard));
    return nullptr;
  }
  ShardPlacement& p = shards_[shard];
  if (expected_epoch != p.epoch || !p.moving()) {
    *error = Result(absl::StatusCode::kFailedPrecondition,
                    absl::StrCat(ShardName(shard), " has no move at epoch ", expected_epoch));
    return nullptr;
  }
  return &p;
}

v1::CommandResult ClusterState::DoCompleteShardMove(const v1::CompleteShardMove& op) {
  v1::CommandResult r;
  ShardPlacement* p = MovingShard(op.shard(), op.expected_epoch(), &r);
  if (p == nullptr) return r;
  p->replicas = std::move(p->pending);
  p->pending.clear();
  ++p->epoch;
  ShardsChanged();
  r.set_epoch(p->epoch);
  return r;
}

v1::CommandResult ClusterState::DoAbortShardMove(const v1::AbortShardMove& op) {
  v1::CommandResult r;
  ShardPlacement* p = MovingShard(op.shard(), op.expected_epoch(), &r);
  if (p == nullptr) return r;
  p->pending.clear();
  // A new epoch: the next move of this shard is a different move, and nothing
  // recorded for this one (a finished stream, a Complete) may count for it.
  ++p->epoch;
  ShardsChanged();
  r.set_epoch(p->epoch);
  return r;
}

v1::CommandResult ClusterState::DoSetReplicationFactor(const v1::SetReplicationFactor& op) {
  if (op.replication_factor() == 0) {
    return Result(absl::StatusCode::kInvalidArgument, "replication factor 0");
  }
  replication_factor_ = op.replication_factor();
  return Ok();
}

std::vector<PlannedMove> ClusterState::PlanMoves() const {
  std::vector<PlannedMove> out;
  const std::vector<NodeId> active = ActiveMembers();
  if (active.empty()) return out;
  Ring ring(active, opts_.tokens_per_node);
  for (uint32_t s = 0; s < opts_.num_shards; ++s) {
    const ShardPlacement& p = shards_[s];
    if (p.moving()) continue;
    std::vector<NodeId> want = ring.Place(s, opts_.num_shards, replication_factor_);
    if (SameSet(want, p.replicas)) continue;
    out.push_back(PlannedMove{s, p.epoch, p.replicas, std::move(want)});
  }
  return out;
}

std::shared_ptr<const ShardMap> ClusterState::shard_map() const {
  if (shard_map_cache_ == nullptr) {
    auto m = std::make_shared<ShardMap>();
    m->shards = shards_;
    shard_map_cache_ = std::move(m);
  }
  return shard_map_cache_;
}

// --- Registers ---

v1::CommandResult ClusterState::WriteRegister(const std::string& key, const std::string& value) {
  RegisterValue& r = registers_[key];
  r.value = value;
  ++r.version;
  v1::CommandResult out;
  out.set_value(r.value);
  out.set_version(r.version);
  return out;
}

v1::CommandResult ClusterState::DoPut(const v1::Put& op) {
  return WriteRegister(op.key(), op.value());
}

v1::CommandResult ClusterState::DoGet(const v1::Get& op) {
  v1::CommandResult out;
  auto it = registers_.find(op.key());
  if (it != registers_.end()) {
    out.set_value(it->second.value);
    out.set_version(it->second.version);
  }
  return out;
}

v1::CommandResult ClusterState::DoDelete(const v1::Delete& op) {
  registers_.erase(op.key());
  return Ok();
}

v1::CommandResult ClusterState::DoCompareAndSet(const v1::CompareAndSet& op) {
  auto it = registers_.find(op.key());
  const bool exists = it != registers_.end();
  const bool match = op.compare_value()
                         ? exists && it->second.value == op.expected_value()
                         : (exists ? it->second.version : 0) == op.expected_version();
  if (match) return WriteRegister(op.key(), op.value());
  v1::CommandResult out;
  if (exists) {
    out.set_value(it->second.value);
    out.set_version(it->second.version);
  }
  out.set_code(static_cast<int>(absl::StatusCode::kFailedPrecondition));
  out.set_message(absl::StrCat("compare-and-set mismatch on ", op.key()));
  return out;
}

std::optional<RegisterValue> ClusterState::GetRegister(absl::string_view key) const {
  auto it = registers_.find(key);
  if (it == registers_.end()) return std::nullopt;
  return it->second;
}

// --- Snapshots ---

std::string ClusterState::Snapshot() const {
  v1::Snapshot snap;
  snap.set_applied_index(applied_index_);
  snap.set_num_shards(opts_.num_shards);
  snap.set_replication_factor(replication_factor_);
  snap.set_tokens_per_node(opts_.tokens_per_node);
  snap.set_bootstrapped(bootstrapped_);
  for (const auto& [id, m] : members_) *snap.add_members() = m;
  for (uint32_t s = 0; s < opts_.num_shards; ++s) {
    v1::ShardAssignment* a = snap.add_shards();
    a->set_shard(s);
    a->mutable_replicas()->Add(shards_[s].replicas.begin(), shards_[s].replicas.end());
    a->mutable_pending()->Add(shards_[s].pending.begin(), shards_[s].pending.end());
    a->set_epoch(shards_[s].epoch);
  }
  for (const auto& [key, r] : registers_) {
    v1::Register* out = snap.add_registers();
    out->set_key(key);
    out->set_value(r.value);
    out->set_version(r.version);
  }
  for (const auto& [id, s] : sessions_) *snap.add_sessions() = s;
  return SerializeDeterministic(snap);
}

absl::Status ClusterState::Restore(absl::string_view snapshot) {
  v1::Snapshot snap;
  if (!snap.ParseFromArray(snapshot.data(), static_cast<int>(snapshot.size()))) {
    return absl::DataLossError("unparsable cluster snapshot");
  }
  if (snap.num_shards() != opts_.num_shards ||
      snap.shards_size() != static_cast<int>(opts_.num_shards)) {
    return absl::DataLossError(absl::StrCat("cluster snapshot has ", snap.shards_size(),
                                            " shards; this node is configured for ",
                                            opts_.num_shards));
  }
  if (snap.tokens_per_node() != static_cast<uint32_t>(opts_.tokens_per_node)) {
    return absl::DataLossError("cluster snapshot has another tokens_per_node");
  }
  std::vector<ShardPlacement> shards(opts_.num_shards);
  for (const v1::ShardAssignment& a : snap.shards()) {
    if (a.shard() >= opts_.num_shards) return absl::DataLossError("snapshot shard out of range");
    ShardPlacement& p = shards[a.shard()];
    p.replicas.assign(a.replicas().begin(), a.replicas().end());
    p.pending.assign(a.pending().begin(), a.pending().end());
    p.epoch = a.epoch();
  }
  applied_index_ = snap.applied_index();
  bootstrapped_ = snap.bootstrapped();
  replication_factor_ = snap.replication_factor();
  members_.clear();
  for (const v1::Member& m : snap.members()) members_[m.id()] = m;
  shards_ = std::move(shards);
  registers_.clear();
  for (const v1::Register& r : snap.registers()) registers_[r.key()] = {r.value(), r.version()};
  sessions_.clear();
  for (const v1::Session& s : snap.sessions()) sessions_[s.client_id()] = s;
  ShardsChanged();
  return absl::OkStatus();
}

nlohmann::json ClusterState::ToJson() const {
  nlohmann::json members = nlohmann::json::array();
  for (const auto& [id, m] : members_) {
    members.push_back({{"id", id},
                       {"grpc_address", m.grpc_address()},
                       {"http_address", m.http_address()},
                       {"state", MemberStateName(m.state())}});
  }
  nlohmann::json shards = nlohmann::json::array();
  int moving = 0;
  for (uint32_t s = 0; s < opts_.num_shards; ++s) {
    const ShardPlacement& p = shards_[s];
    nlohmann::json j = {{"shard", s}, {"replicas", p.replicas}, {"epoch", p.epoch}};
    if (p.moving()) {
      j["pending"] = p.pending;
      ++moving;
    }
    shards.push_back(std::move(j));
  }
  return {{"applied_index", applied_index_},
          {"bootstrapped", bootstrapped_},
          {"num_shards", opts_.num_shards},
          {"replication_factor", replication_factor_},
          {"members", std::move(members)},
          {"moving_shards", moving},
          {"shards", std::move(shards)}};
}

}  // namespace vigil::cluster
