// raft/raft_node_test_util.h
//
// Test helpers for RaftNode tests: a trivial replicated list and a polling wait. Test-only.
#ifndef VIGIL_RAFT_RAFT_NODE_TEST_UTIL_H_
#define VIGIL_RAFT_RAFT_NODE_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "raft/state_machine.h"

namespace vigil::raft {

inline constexpr absl::Duration kTimeout = absl::Seconds(30);

// Appends each command to a list; replies with the list's new length.
class ListMachine : public StateMachine {
 public:
  std::string Apply(uint64_t index, uint64_t term, absl::string_view data) override {
    absl::MutexLock l(&mu_);
    items_.emplace_back(data);
    return std::to_string(items_.size());
  }
  absl::StatusOr<std::string> Snapshot() override {
    absl::MutexLock l(&mu_);
    return absl::StrJoin(items_, "\n");
  }
  absl::Status Restore(absl::string_view data) override {
    absl::MutexLock l(&mu_);
    items_ = absl::StrSplit(data, '\n', absl::SkipEmpty());
    return absl::OkStatus();
  }
  std::vector<std::string> items() const {
    absl::MutexLock l(&mu_);
    return items_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> items_ ABSL_GUARDED_BY(mu_);
};

// Polls `cond` until true or the (generous) deadline.
template <typename F>
inline bool Eventually(F cond) {
  absl::Time deadline = absl::Now() + kTimeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return cond();
}

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_RAFT_NODE_TEST_UTIL_H_
