// raft/raft_node.h
//
// RaftNode: the shell around the deterministic core. One loop thread owns the core (etcd's
// node.run()): it drains the inbox (ticks, peer messages, client requests), then for each Ready
// persists (one fsync'd LogStore write), sends, applies to the StateMachine, and Advance()s.
// Every public method is thread-safe; they post into the inbox and, for the *AndWait variants,
// block the caller (never the loop) until the answer or the timeout.
#ifndef VIGIL_RAFT_RAFT_NODE_H_
#define VIGIL_RAFT_RAFT_NODE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "raft/core/raft.h"
#include "raft/log_store.h"
#include "raft/state_machine.h"
#include "raft/transport.h"

namespace vigil::raft {

struct RaftNodeOptions {
  uint64_t id = kNone;
  // RocksDB directory of this node's log.
  std::string dir;
  // Founding members, written to an empty log; empty when joining an existing cluster (the node
  // then waits to be added as a learner).
  std::vector<uint64_t> initial_voters;
  absl::Duration tick = absl::Milliseconds(100);
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  // Snapshot the state machine and compact the log every this many applied entries.
  uint64_t snapshot_every = 10000;
  // The leader sends its appends while it fsyncs its own log (dissertation 10.2.1) instead of
  // after; it counts itself toward commitment only once its write is durable either way.
  bool parallel_leader_write = true;
  // Drives ticks (its MonotonicNow()); RealClock if null. Not owned.
  Clock* clock = nullptr;
};

// The node's raft state for /metrics and health checks.
struct RaftStatus {
  uint64_t id = kNone;
  uint64_t term = 0;
  uint64_t leader = kNone;
  Role role = Role::kFollower;
  uint64_t commit = 0;
  uint64_t applied = 0;
  uint64_t leader_changes = 0;
  // Leader that has applied an entry of its own term (Raft::LeaderApplied): its state machine
  // holds everything committed before its term.
  bool leader_applied = false;
  ConfState conf;
};

class RaftNode {
 public:
  using ProposeCallback = std::function<void(absl::StatusOr<std::string>)>;

  // Opens the log (kDataLoss if corrupt: the node refuses to start), restores the state machine
  // from the latest snapshot, applies the committed entries after it (so the state machine is
  // at the persisted commit index when this returns), and starts the loop thread. `sm` and
  // `transport` are not owned and must outlive the node; the node installs itself as the
  // transport's handler.
  static absl::StatusOr<std::unique_ptr<RaftNode>> Open(const RaftNodeOptions& options,
                                                        StateMachine* sm, Transport* transport);
  RaftNode(const RaftNode&) = delete;
  RaftNode& operator=(const RaftNode&) = delete;
  // Stops the loop thread; pending callbacks get kUnavailable.
  ~RaftNode();

  // Proposes `command`. `done` runs on the loop thread with the StateMachine's reply once the
  // command is applied, or kFailedPrecondition ("not the leader; leader=<id>"), or kUnavailable
  // if the entry was lost to a leader change (retry; use raft/session.h for exactly-once).
  void Propose(std::string command, ProposeCallback done);
  // Propose and wait; kDeadlineExceeded after `timeout` (the command may still apply).
  absl::StatusOr<std::string> ProposeAndWait(std::string command, absl::Duration timeout);
  // A fenced proposal (Raft::ProposeFenced): accepted only while this node leads in `term`, never
  // forwarded. `done` gets the reply once applied; kFailedPrecondition if this node does not lead
  // in `term`, or if the entry was lost to a leader change (the leadership of `term` ended: the
  // command never applies, and retrying it is pointless: recompute under the new term).
  void ProposeFenced(uint64_t term, std::string command, ProposeCallback done);
  absl::StatusOr<std::string> ProposeFencedAndWait(uint64_t term, std::string command,
                                                   absl::Duration timeout);
  // A membership change (raft/core/types.h ConfChange), waited for until applied.
  absl::Status ProposeConfChangeAndWait(const ConfChange& cc, absl::Duration timeout);
  // Linearizable read barrier (ReadIndex): OK once this node has applied everything committed
  // before the call, so a read of the local state machine that follows is linearizable.
  absl::Status ReadBarrier(absl::Duration timeout);
  absl::Status TransferLeadership(uint64_t target);

  // Peer messages (the transport handler).
  void Receive(Message m);
  RaftStatus status() const;

 private:
  RaftNode(const RaftNodeOptions& options, std::unique_ptr<LogStore> store, StateMachine* sm,
           Transport* transport);
  void Post(std::function<void()> fn);
  void Run();
  void HandleReady();
  void ApplyEntry(const Entry& e);
  void ServeReads();
  void MaybeSnapshot();
  void PublishStatus();

  // Constant after construction.
  const RaftNodeOptions options_;
  Clock* const clock_;
  StateMachine* const sm_;
  Transport* const transport_;

  // Owned by the loop thread.
  std::unique_ptr<LogStore> store_;
  std::unique_ptr<Raft> core_;
  struct PendingProposal {
    uint64_t term;
    ProposeCallback done;
    bool fenced = false;
  };
  std::map<uint64_t, PendingProposal> proposals_;  // by log index
  struct PendingRead {
    uint64_t index = 0;
    bool ready = false;
    std::function<void(absl::Status)> done;
  };
  std::map<std::string, PendingRead> reads_;
  uint64_t next_read_ = 1;
  uint64_t last_leader_ = kNone;

  // The inbox is a std::mutex and condition variable, not absl's: the loop's timed wait for
  // the next tick must measure the monotonic clock (common/event.h says why).
  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::vector<std::function<void()>> inbox_;  // guarded by inbox_mu_
  bool stop_ = false;                         // guarded by inbox_mu_

  mutable absl::Mutex mu_;
  RaftStatus status_ ABSL_GUARDED_BY(mu_);

  std::thread loop_;
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_RAFT_NODE_H_
