// raft/sim/simulation.h
//
// Simulation: one seeded, fully deterministic run of 3..7 Raft cores over a simulated network
// that drops, duplicates, reorders, delays and partitions messages, with crashes that lose
// whatever was not persisted, clients with sessions, ReadIndex reads, compaction, random
// membership changes and leadership transfers. Safety invariants are checked after every step
// (see invariants.h). The same seed always produces the same trace. Thread-compatible.
#ifndef VIGIL_RAFT_SIM_SIMULATION_H_
#define VIGIL_RAFT_SIM_SIMULATION_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "raft/core/raft.h"
#include "raft/core/storage.h"
#include "raft/sim/invariants.h"
#include "raft/sim/kv_machine.h"

namespace vigil::raft::sim {

enum class Scenario : uint8_t {
  // Random faults, membership changes, transfers and compaction; seeds cycle through a calm, a
  // normal and a stormy profile.
  kRandom,
  // Aimed at commitment rules (paper figure 8): 5 voters, one entry per AppendEntries and one
  // in flight (so a follower can acknowledge an old-term entry before the new leader's no-op),
  // short-lived leaders: the leader is often crashed, right after its commit index moves.
  kFigure8,
};

struct SimOptions {
  uint64_t seed = 1;
  Scenario scenario = Scenario::kRandom;
  int steps = 2000;
  // Keep the full trace (for printing); otherwise only the last kTraceTail lines.
  bool full_trace = false;
};

struct SimStats {
  int64_t commands_completed = 0;
  int64_t reads_served = 0;
  int64_t conf_changes = 0;
  int64_t snapshots_sent = 0;
  int64_t crashes = 0;
  uint64_t max_commit = 0;
};

class Simulation {
 public:
  static constexpr size_t kTraceTail = 60;

  explicit Simulation(const SimOptions& options);
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // Runs all steps; the first invariant violation stops the run and is returned as kInternal.
  absl::Status Run();
  const std::vector<std::string>& trace() const { return trace_; }
  const SimStats& stats() const { return stats_; }

 private:
  struct InFlight {
    Message msg;
    int deliver_at;  // step
  };
  struct PendingRead {
    uint64_t node;
    uint64_t min_index;  // the highest commit index anywhere when the read was issued
    uint64_t read_index = 0;
    bool ready = false;
  };
  struct Client {
    uint64_t id;
    uint64_t seq = 1;
    uint64_t target = 1;
    std::string key;
    uint64_t proposed_seq = 0;
    int proposed_at = 0;
  };
  struct Node {
    uint64_t id;
    bool up = true;
    bool removed = false;
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<Raft> raft;
    KvMachine machine;
    // The commit index last observed (reset to the durable one on restart).
    uint64_t last_commit = 0;
  };

  void Step();
  void Trace(std::string line);
  uint64_t Rand(uint64_t n) { return rng_() % n; }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  Node* RandomNode(bool want_up);
  Node* Leader();

  void StartNode(Node& n);
  void DeliverMessage();
  void TickAll();
  // Where a crash interrupts the handling of a Ready.
  enum class CrashPoint {
    kNone,
    // The leader's early messages left, nothing was persisted (the fsync they overlap was lost).
    kBeforePersist,
    // Persisted, but nothing sent or applied.
    kAfterPersist,
  };
  void ProcessReady(Node& n, CrashPoint crash);
  void SendAll(std::vector<Message>& msgs);
  void ApplyCommitted(Node& n, const std::vector<Entry>& committed);
  void ServeReads(Node& n);
  void ClientWrite();
  void ClientRead();
  void Crash(Node& n);
  void Shutdown(Node& n);
  void Partition();
  void ChangeMembership();
  void TransferLeader();
  // Figure-8 scenario: crash the leader (if any); after a step that moved a leader's commit
  // index, sometimes crash that leader at once.
  void CrashLeader();
  void MaybeCrashCommittingLeader(uint64_t leader, uint64_t commit_before);
  void Compact(Node& n);
  // Invariants that look at all nodes' current state.
  void CheckNodes();
  void Fail(const std::string& what);

  const SimOptions options_;
  std::mt19937_64 rng_;
  int step_ = 0;
  std::map<uint64_t, Node> nodes_;
  uint64_t next_node_id_;
  std::deque<InFlight> network_;  // in send order
  // partition_[id] = group; messages between different groups are lost.
  std::map<uint64_t, int> partition_;
  std::vector<Client> clients_;
  std::map<std::string, PendingRead> reads_;
  uint64_t next_read_ = 1;
  Invariants invariants_;
  SimStats stats_;
  std::vector<std::string> trace_;
  std::string violation_;
};

}  // namespace vigil::raft::sim

#endif  // VIGIL_RAFT_SIM_SIMULATION_H_
