#include "raft/core/types.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vigil::raft {
namespace {

bool Contains(const std::vector<uint64_t>& v, uint64_t id) {
  return std::binary_search(v.begin(), v.end(), id);
}

void Insert(std::vector<uint64_t>& v, uint64_t id) {
  v.insert(std::lower_bound(v.begin(), v.end(), id), id);
}

void Erase(std::vector<uint64_t>& v, uint64_t id) {
  auto it = std::lower_bound(v.begin(), v.end(), id);
  if (it != v.end() && *it == id) v.erase(it);
}

}  // namespace

bool ConfState::IsVoter(uint64_t id) const { return Contains(voters, id); }
bool ConfState::IsLearner(uint64_t id) const { return Contains(learners, id); }

// Encoding: one type byte, the node id in decimal, ':', then the context bytes.
std::string ConfChange::Encode() const {
  return absl::StrCat(std::string(1, static_cast<char>('0' + static_cast<int>(type))), node_id,
                      ":", context);
}

absl::StatusOr<ConfChange> ConfChange::Decode(absl::string_view data) {
  if (data.size() < 3 || data[0] < '0' || data[0] > '3') {
    return absl::InvalidArgumentError("malformed conf change");
  }
  size_t colon = data.find(':');
  if (colon == absl::string_view::npos) return absl::InvalidArgumentError("malformed conf change");
  ConfChange cc;
  cc.type = static_cast<Type>(data[0] - '0');
  if (!absl::SimpleAtoi(data.substr(1, colon - 1), &cc.node_id) || cc.node_id == kNone) {
    return absl::InvalidArgumentError("malformed conf change node id");
  }
  cc.context = std::string(data.substr(colon + 1));
  return cc;
}

absl::StatusOr<ConfState> ConfChange::ApplyTo(const ConfState& cs) const {
  ConfState out = cs;
  bool voter = cs.IsVoter(node_id);
  bool learner = cs.IsLearner(node_id);
  switch (type) {
    case Type::kAddVoter:
      if (voter || learner) return absl::InvalidArgumentError("node already a member");
      Insert(out.voters, node_id);
      break;
    case Type::kAddLearner:
      if (voter || learner) return absl::InvalidArgumentError("node already a member");
      Insert(out.learners, node_id);
      break;
    case Type::kPromoteLearner:
      if (!learner) return absl::InvalidArgumentError("node is not a learner");
      Erase(out.learners, node_id);
      Insert(out.voters, node_id);
      break;
    case Type::kRemoveNode:
      if (!voter && !learner) return absl::InvalidArgumentError("node is not a member");
      if (voter && cs.voters.size() == 1) {
        return absl::InvalidArgumentError("cannot remove the last voter");
      }
      Erase(out.voters, node_id);
      Erase(out.learners, node_id);
      break;
  }
  return out;
}

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kAppend: return "App";
    case MessageType::kAppendResponse: return "AppResp";
    case MessageType::kVote: return "Vote";
    case MessageType::kVoteResponse: return "VoteResp";
    case MessageType::kPreVote: return "PreVote";
    case MessageType::kPreVoteResponse: return "PreVoteResp";
    case MessageType::kHeartbeat: return "Heartbeat";
    case MessageType::kHeartbeatResponse: return "HeartbeatResp";
    case MessageType::kSnapshot: return "Snapshot";
    case MessageType::kTimeoutNow: return "TimeoutNow";
    case MessageType::kReadIndex: return "ReadIndex";
    case MessageType::kReadIndexResponse: return "ReadIndexResp";
  }
  return "?";
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "?";
}

std::string DebugString(const Message& m) {
  std::string s = absl::StrCat(MessageTypeName(m.type), " ", m.from, "->", m.to, " t", m.term,
                               " lt", m.log_term, " i", m.index, " c", m.commit);
  if (!m.entries.empty()) {
    absl::StrAppend(&s, " ents[", m.entries.front().index, "..", m.entries.back().index, "]");
  }
  if (m.reject) absl::StrAppend(&s, " reject hint", m.reject_hint);
  if (!m.snapshot.empty()) {
    absl::StrAppend(&s, " snap@", m.snapshot.metadata.index, "t", m.snapshot.metadata.term);
  }
  if (!m.context.empty()) absl::StrAppend(&s, " ctx=", m.context);
  return s;
}

}  // namespace vigil::raft
