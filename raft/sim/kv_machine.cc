#include "raft/sim/kv_machine.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"

namespace vigil::raft::sim {

uint64_t Fnv1a(uint64_t h, const std::string& bytes) {
  if (h == 0) h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string Command::Encode() const { return absl::StrCat(client, " ", seq, " ", key); }

KvMachine::Result KvMachine::Apply(const Entry& e) {
  CHECK_EQ(e.index, applied_ + 1) << "apply out of order";
  applied_ = e.index;
  chain_ = Fnv1a(chain_, absl::StrCat(e.index, "/", e.term, "/", static_cast<int>(e.type), "/",
                                      e.data));
  Result r;
  if (e.type != EntryType::kNormal || e.data.empty()) return r;
  std::vector<std::string> parts = absl::StrSplit(e.data, ' ');
  CHECK_EQ(parts.size(), 3u) << "bad command " << e.data;
  CHECK(absl::SimpleAtoi(parts[0], &r.command.client));
  CHECK(absl::SimpleAtoi(parts[1], &r.command.seq));
  r.command.key = parts[2];
  r.is_command = true;
  std::string cached;
  if (sessions_.Check(r.command.client, r.command.seq, &cached) == SessionTable::Verdict::kApply) {
    int64_t v = ++counters_[r.command.key];
    sessions_.Record(r.command.client, r.command.seq, absl::StrCat(v));
    r.effective = true;
  }
  return r;
}

int64_t KvMachine::Get(const std::string& key) const {
  auto it = counters_.find(key);
  return it == counters_.end() ? 0 : it->second;
}

// Format: "<chain>\n<key>=<value>,...\n<sessions>".
std::string KvMachine::Serialize() const {
  std::string kv;
  for (const auto& [k, v] : counters_) absl::StrAppend(&kv, k, "=", v, ",");
  return absl::StrCat(chain_, "\n", kv, "\n", sessions_.Serialize());
}

absl::Status KvMachine::Restore(const std::string& data, uint64_t index) {
  std::vector<std::string> parts = absl::StrSplit(data, absl::MaxSplits('\n', 2));
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &chain_)) {
    return absl::DataLossError("malformed machine snapshot");
  }
  counters_.clear();
  for (absl::string_view kv : absl::StrSplit(parts[1], ',', absl::SkipEmpty())) {
    std::vector<std::string> p = absl::StrSplit(kv, '=');
    int64_t v;
    if (p.size() != 2 || !absl::SimpleAtoi(p[1], &v)) {
      return absl::DataLossError("malformed counter");
    }
    counters_[p[0]] = v;
  }
  absl::StatusOr<SessionTable> sessions = SessionTable::Parse(parts[2]);
  if (!sessions.ok()) return sessions.status();
  sessions_ = *std::move(sessions);
  applied_ = index;
  return absl::OkStatus();
}

}  // namespace vigil::raft::sim
