// alerting/file_replicator.cc
#include "alerting/file_replicator.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "alerting/evaluator.h"
#include "alerting/rules.h"
#include "common/status_macros.h"
#include "glog/logging.h"
#include "xxhash.h"

namespace vigil::alerting {
namespace {

constexpr char kMagic[] = "VAS1";  // Vigil alert state, version 1.
constexpr size_t kMagicSize = 4;
constexpr size_t kHeaderSize = kMagicSize + 8;
constexpr char kRuleSetKey[] = "alerting/rules";
constexpr char kStateKeyPrefix[] = "alerting/state/";
constexpr char kTmpSuffix[] = ".tmp";

// "rules" for the rule set, "state-<xxh64 of the key>" for a rule's state.
std::string FileNameOf(const std::string& key) {
  if (key == kRuleSetKey) return "rules";
  return absl::StrFormat("state-%016x", XXH64(key.data(), key.size(), 0));
}

// Magic, xxh64 of the payload (little endian), payload.
std::string Encode(const std::string& payload) {
  std::string out(kMagic, kMagicSize);
  uint64_t sum = XXH64(payload.data(), payload.size(), 0);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((sum >> (8 * i)) & 0xff));
  out += payload;
  return out;
}

absl::StatusOr<std::string> Decode(const std::string& data, const std::string& path) {
  if (data.size() < kHeaderSize || data.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    return absl::DataLossError(absl::StrCat("alert state file ", path, ": bad header"));
  }
  uint64_t sum = 0;
  for (int i = 0; i < 8; ++i) {
    sum |= static_cast<uint64_t>(static_cast<unsigned char>(data[kMagicSize + i])) << (8 * i);
  }
  std::string payload = data.substr(kHeaderSize);
  if (XXH64(payload.data(), payload.size(), 0) != sum) {
    return absl::DataLossError(absl::StrCat("alert state file ", path, ": checksum mismatch"));
  }
  return payload;
}

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("write", path);
    p += n;
    left -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : ErrnoError("fsync", dir);
}

// Whether the rule a state record names is in `set` (same group key, position and name).
bool RuleIn(const RuleSet& set, const RuleStateRecord& rec) {
  for (const RuleGroup& g : set.groups) {
    if (g.Key() != rec.group_key) continue;
    return rec.rule_index >= 0 && rec.rule_index < static_cast<int>(g.rules.size()) &&
           g.rules[rec.rule_index].name() == rec.rule_name;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FileReplicator>> FileReplicator::Open(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("alert state directory is required");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  std::unique_ptr<FileReplicator> r(new FileReplicator(dir));
  RETURN_IF_ERROR(r->Load());
  return r;
}

absl::Status FileReplicator::Load() {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir_, ": ", ec.message()));
  absl::MutexLock l(&mu_);
  for (const std::filesystem::path& path : files) {
    const std::string name = path.filename().string();
    if (absl::EndsWith(name, kTmpSuffix)) {  // An interrupted write: never acknowledged.
      std::filesystem::remove(path, ec);
      continue;
    }
    if (name != "rules" && !absl::StartsWith(name, "state-")) continue;
    std::ifstream in(path, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    if (in.bad()) return absl::InternalError(absl::StrCat("cannot read ", path.string()));
    ASSIGN_OR_RETURN(std::string payload, Decode(buf.str(), path.string()));
    absl::StatusOr<std::string> key = AlertingPayloadKey(payload);
    if (!key.ok()) {
      return absl::DataLossError(absl::StrCat("alert state file ", path.string(), ": ",
                                              key.status().message()));
    }
    payloads_[*key] = std::move(payload);
  }
  return absl::OkStatus();
}

absl::Status FileReplicator::Restore() {
  CHECK(service_ != nullptr) << "set_service() before Restore()";
  absl::MutexLock l(&mu_);
  auto rules = payloads_.find(kRuleSetKey);
  if (rules != payloads_.end()) RETURN_IF_ERROR(service_->OnCommitted(rules->second));
  for (const auto& [key, payload] : payloads_) {
    if (key != kRuleSetKey) RETURN_IF_ERROR(service_->OnCommitted(payload));
  }
  return absl::OkStatus();
}

void FileReplicator::Propose(std::string bytes, std::function<void(absl::Status)> done) {
  CHECK(service_ != nullptr) << "set_service() before Propose()";
  absl::StatusOr<std::string> key = AlertingPayloadKey(bytes);
  if (!key.ok()) return done(key.status());
  if (*key == kRuleSetKey) {  // Never store what Restore() could not apply.
    absl::Status valid = DeserializeRuleSet(absl::string_view(bytes).substr(1)).status();
    if (!valid.ok()) return done(valid);
  }
  absl::Status s;
  {
    // Under the lock: payloads apply in the order they were written.
    absl::MutexLock l(&mu_);
    s = WriteFile(*key, bytes);
    if (s.ok()) {
      s = service_->OnCommitted(bytes);
      if (*key == kRuleSetKey) DropStatesNotIn(bytes);
      payloads_[*key] = std::move(bytes);
    }
  }
  done(s);
}

void FileReplicator::ProposeFenced(uint64_t term, std::string bytes,
                                   std::function<void(absl::Status)> done) {
  Propose(std::move(bytes), std::move(done));
}

std::map<std::string, std::string> FileReplicator::payloads() const {
  absl::MutexLock l(&mu_);
  return payloads_;
}

absl::Status FileReplicator::WriteFile(const std::string& key, const std::string& payload) {
  const std::string path = absl::StrCat(dir_, "/", FileNameOf(key));
  const std::string tmp = path + kTmpSuffix;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("open", tmp);
  absl::Status s = WriteAll(fd, Encode(payload), tmp);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoError("fsync", tmp);
  ::close(fd);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoError("rename", tmp);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncDir(dir_);
}

void FileReplicator::DropStatesNotIn(const std::string& rule_set_payload) {
  absl::StatusOr<RuleSet> set = DeserializeRuleSet(absl::string_view(rule_set_payload).substr(1));
  if (!set.ok()) return;
  for (auto it = payloads_.begin(); it != payloads_.end();) {
    absl::StatusOr<RuleStateRecord> rec =
        absl::StartsWith(it->first, kStateKeyPrefix)
            ? DeserializeRuleState(absl::string_view(it->second).substr(1))
            : absl::StatusOr<RuleStateRecord>(absl::NotFoundError("not a state"));
    if (!rec.ok() || RuleIn(*set, *rec)) {
      ++it;
      continue;
    }
    // A leftover is harmless (ignored on restore), so a failed unlink is only logged.
    const std::string path = absl::StrCat(dir_, "/", FileNameOf(it->first));
    if (::unlink(path.c_str()) != 0) {
      LOG(WARNING) << "cannot remove " << path << ": " << std::strerror(errno);
    }
    it = payloads_.erase(it);
  }
}

}  // namespace vigil::alerting
