#include "raft/session.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace vigil::raft {

SessionTable::Verdict SessionTable::Check(uint64_t client, uint64_t seq,
                                          std::string* cached_response) const {
  auto it = sessions_.find(client);
  if (it == sessions_.end() || seq > it->second.last_seq) return Verdict::kApply;
  if (seq < it->second.last_seq) return Verdict::kStale;
  if (cached_response != nullptr) *cached_response = it->second.response;
  return Verdict::kDuplicate;
}

void SessionTable::Record(uint64_t client, uint64_t seq, std::string response) {
  Session& s = sessions_[client];
  CHECK_GT(seq, s.last_seq) << "client " << client << " sequence must advance";
  s.last_seq = seq;
  s.response = std::move(response);
}

// Format: per session "<client> <seq> <response length> <response bytes>", concatenated.
std::string SessionTable::Serialize() const {
  std::string out;
  for (const auto& [client, s] : sessions_) {
    absl::StrAppend(&out, client, " ", s.last_seq, " ", s.response.size(), " ", s.response);
  }
  return out;
}

namespace {

bool ReadNumber(absl::string_view& in, uint64_t* out) {
  size_t sp = in.find(' ');
  if (sp == absl::string_view::npos || !absl::SimpleAtoi(in.substr(0, sp), out)) return false;
  in.remove_prefix(sp + 1);
  return true;
}

}  // namespace

absl::StatusOr<SessionTable> SessionTable::Parse(absl::string_view in) {
  SessionTable t;
  while (!in.empty()) {
    uint64_t client, seq, len;
    if (!ReadNumber(in, &client) || !ReadNumber(in, &seq) || !ReadNumber(in, &len) ||
        len > in.size() || seq == 0) {
      return absl::DataLossError("malformed session table");
    }
    t.sessions_[client] = Session{seq, std::string(in.substr(0, len))};
    in.remove_prefix(len);
  }
  return t;
}

bool SessionTable::operator==(const SessionTable& o) const {
  if (sessions_.size() != o.sessions_.size()) return false;
  for (auto a = sessions_.begin(), b = o.sessions_.begin(); a != sessions_.end(); ++a, ++b) {
    if (a->first != b->first || a->second.last_seq != b->second.last_seq ||
        a->second.response != b->second.response) {
      return false;
    }
  }
  return true;
}

}  // namespace vigil::raft
