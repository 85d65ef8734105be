// raft/state_machine.h
//
// StateMachine: what a Raft-replicated service (cluster/'s control state) implements. RaftNode
// calls it from its single loop thread only, in log order, after the entries are durable; so an
// implementation needs no locking against RaftNode (but must lock against its own readers).
#ifndef VIGIL_RAFT_STATE_MACHINE_H_
#define VIGIL_RAFT_STATE_MACHINE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "raft/core/types.h"

namespace vigil::raft {

class StateMachine {
 public:
  virtual ~StateMachine() = default;

  // Applies the committed command `data` at log `index`, appended by the leader of `term`, and
  // returns the reply for its proposer. Must be deterministic: every replica applies the same
  // commands in the same order and must reach the same state (use raft/session.h to make retried
  // commands apply once). Errors that depend only on the command (bad input) belong in the reply,
  // not in a crash. `term` completes a fenced proposal (Raft::ProposeFenced): a command that
  // names the term it was computed in is applied only if `term` is that term, i.e. only if the
  // leader of that term appended it (one leader per term), never a copy forwarded to or
  // re-proposed by a later leader; every replica sees the same `term`, so all decide alike.
  virtual std::string Apply(uint64_t index, uint64_t term, absl::string_view data) = 0;

  // Called for every committed entry (normal, no-op and membership change), in log order, just
  // before it is applied: for observability (e.g. a digest of the committed log). Default: nothing.
  virtual void OnCommitted(const Entry& entry) {}

  // A membership change committed at `index`; `conf` is the configuration after it. The
  // change's context carries whatever the proposer put there (e.g. the new node's address).
  virtual void ApplyConfChange(uint64_t index, const ConfChange& change, const ConfState& conf) {}

  // Serializes the whole state as of the last applied index, for log compaction and for
  // followers too far behind.
  virtual absl::StatusOr<std::string> Snapshot() = 0;

  // Replaces the whole state by `data` from Snapshot(). kDataLoss if it does not parse.
  virtual absl::Status Restore(absl::string_view data) = 0;
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_STATE_MACHINE_H_
