// raft/sim/kv_machine.h
//
// KvMachine: the simulator's replicated state machine. Commands are "<client> <seq> <key>" and
// increment a counter; client sessions make retried commands apply once. It keeps a hash chain
// over every applied entry so replicas can be compared in O(1). Thread-compatible.
#ifndef VIGIL_RAFT_SIM_KV_MACHINE_H_
#define VIGIL_RAFT_SIM_KV_MACHINE_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "raft/core/types.h"
#include "raft/session.h"

namespace vigil::raft::sim {

struct Command {
  uint64_t client = 0;
  uint64_t seq = 0;
  std::string key;
  std::string Encode() const;
};

class KvMachine {
 public:
  struct Result {
    bool is_command = false;
    Command command;
    // True if this entry changed the counters (first application of the command).
    bool effective = false;
  };

  // Applies committed entry `e`; CHECK-fails unless e.index == applied() + 1.
  Result Apply(const Entry& e);
  std::string Serialize() const;
  // Replaces the state by a snapshot taken at `index`. kDataLoss if malformed.
  absl::Status Restore(const std::string& data, uint64_t index);

  uint64_t applied() const { return applied_; }
  uint64_t chain() const { return chain_; }
  int64_t Get(const std::string& key) const;

 private:
  uint64_t applied_ = 0;
  uint64_t chain_ = 0;
  std::map<std::string, int64_t> counters_;
  SessionTable sessions_;
};

// FNV-1a, stable across processes (unlike absl::Hash).
uint64_t Fnv1a(uint64_t h, const std::string& bytes);

}  // namespace vigil::raft::sim

#endif  // VIGIL_RAFT_SIM_KV_MACHINE_H_
