// raft/sim/invariants.h
//
// Invariants: the Raft safety properties (paper figure 3, plus LogCabin's
// RaftConsensusInvariants), checked incrementally as the simulator observes each node.
// Every method returns "" or a description of the violation. Thread-compatible.
#ifndef VIGIL_RAFT_SIM_INVARIANTS_H_
#define VIGIL_RAFT_SIM_INVARIANTS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "raft/core/raft.h"
#include "raft/core/types.h"

namespace vigil::raft::sim {

class Invariants {
 public:
  // Election safety: at most one leader per term. Leader completeness: a new leader of term T
  // holds every entry committed in a term < T. Call after every step for each leader.
  std::string CheckLeader(const Raft& r);
  // Commit index of a node never decreases (between crashes), and committed entries agree on
  // every node: index i committed with term t everywhere.
  std::string CheckCommit(const Raft& r, uint64_t* last_commit);
  // The durable commit index never decreases.
  std::string CheckPersistedCommit(uint64_t node, uint64_t old_commit, uint64_t new_commit);
  // Log matching (section 5.3): every persisted entry (index, term) has the same content and the
  // same predecessor term on every node; by induction whole prefixes match. `prev_term` is the
  // node's term at ents[0].index - 1, or nullopt-like ~0 if unknown.
  std::string CheckPersist(uint64_t node, const std::vector<Entry>& ents, uint64_t prev_term);
  // State machine safety: the state after applying index i is the same on every node.
  std::string CheckApplied(uint64_t node, uint64_t index, uint64_t chain);
  // Linearizable reads: a read index covers every entry committed before the read was issued.
  std::string CheckRead(uint64_t node, uint64_t read_index, uint64_t min_index) const;

  uint64_t max_commit() const { return committed_.size(); }

  static constexpr uint64_t kUnknownTerm = ~0ull;

 private:
  struct Committed {
    uint64_t term;         // of the entry
    uint64_t commit_term;  // of the first node seen committing it (its leader)
  };
  std::map<uint64_t, uint64_t> leaders_;  // term -> leader
  std::map<std::pair<uint64_t, uint64_t>, bool> leader_checked_;
  std::vector<Committed> committed_;  // committed_[i-1] is index i
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, uint64_t>> entries_;
  std::vector<uint64_t> applied_;  // applied_[i-1] is the chain after index i
};

}  // namespace vigil::raft::sim

#endif  // VIGIL_RAFT_SIM_INVARIANTS_H_
