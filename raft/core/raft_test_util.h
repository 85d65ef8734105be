// raft/core/raft_test_util.h
//
// TestNetwork: a few Raft cores over MemoryStorage, connected by a synchronous in-memory network
// that delivers every message until quiescence (etcd raft_test.go's `network`), with isolate/cut/
// recover and message filters. Each node's Ready is handled the way the shell does: persist, send,
// apply, Advance. Test-only; not thread-safe.
#ifndef VIGIL_RAFT_CORE_RAFT_TEST_UTIL_H_
#define VIGIL_RAFT_CORE_RAFT_TEST_UTIL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "glog/logging.h"
#include "raft/core/raft.h"
#include "raft/core/storage.h"

namespace vigil::raft {

// A successful AppendEntries response, as `from` would send it to `to`.
inline Message AppendAck(uint64_t from, uint64_t to, uint64_t term, uint64_t index) {
  Message ack;
  ack.type = MessageType::kAppendResponse;
  ack.from = from;
  ack.to = to;
  ack.term = term;
  ack.index = index;
  return ack;
}

struct TestNode {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<Raft> raft;
  std::vector<Entry> applied;  // normal entries with data, in apply order
  std::vector<ReadState> reads;
  uint64_t snapshots_installed = 0;
};

// The data of `n`'s applied entries, in apply order.
inline std::vector<std::string> AppliedData(const TestNode& n) {
  std::vector<std::string> out;
  for (const Entry& e : n.applied) out.push_back(e.data);
  return out;
}

class TestNetwork {
 public:
  // Founding members `ids`, all bootstrapped with the same configuration.
  explicit TestNetwork(const std::vector<uint64_t>& ids,
                       std::function<void(Config&)> tweak = nullptr)
      : tweak_(std::move(tweak)) {
    for (uint64_t id : ids) {
      auto storage = std::make_unique<MemoryStorage>();
      storage->Bootstrap(ids);
      AddNode(id, std::move(storage));
    }
  }

  // A node with the given (possibly empty) storage.
  void AddNode(uint64_t id, std::unique_ptr<MemoryStorage> storage) {
    TestNode& n = nodes_[id];
    n.storage = std::move(storage);
    Config c;
    c.id = id;
    c.storage = n.storage.get();
    c.seed = id;
    if (tweak_) tweak_(c);
    n.raft = std::make_unique<Raft>(c);
  }

  Raft& raft(uint64_t id) { return *nodes_.at(id).raft; }
  TestNode& node(uint64_t id) { return nodes_.at(id); }

  void Isolate(uint64_t id) {
    for (auto& [other, n] : nodes_) {
      if (other != id) Cut(id, other);
    }
  }
  void Cut(uint64_t a, uint64_t b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void Recover() {
    cut_.clear();
    filter_ = nullptr;
  }
  // Messages for which `drop` returns true are lost.
  void SetFilter(std::function<bool(const Message&)> drop) { filter_ = std::move(drop); }
  // Every message that was delivered or dropped, for assertions.
  const std::vector<Message>& sent() const { return sent_; }

  // As if `ids` had not heard from a leader for an election timeout.
  void ExpireLeases(const std::vector<uint64_t>& ids) {
    for (uint64_t id : ids) raft(id).ExpireLeaseForTesting();
  }
  void Campaign(uint64_t id) {
    raft(id).Campaign();
    Drain();
  }
  void Tick(uint64_t id, int n = 1) {
    for (int i = 0; i < n; ++i) {
      raft(id).Tick();
      Drain();
    }
  }
  void TickAll(int n = 1) {
    for (int i = 0; i < n; ++i) {
      for (auto& [id, node] : nodes_) node.raft->Tick();
      Drain();
    }
  }
  absl::StatusOr<LogPosition> Propose(uint64_t id, std::string data) {
    absl::StatusOr<LogPosition> pos = raft(id).Propose(std::move(data));
    Drain();
    return pos;
  }
  // Delivers `m` as if it came over the network.
  void Deliver(const Message& m) {
    raft(m.to).Step(m);
    Drain();
  }

  // Handles Readies and delivers messages until nothing is left to do.
  void Drain() {
    for (;;) {
      bool progress = false;
      for (auto& [id, n] : nodes_) {
        if (n.raft->HasReady()) {
          HandleReady(n);
          progress = true;
        }
      }
      while (!queue_.empty()) {
        Message m = std::move(queue_.front());
        queue_.pop_front();
        sent_.push_back(m);
        progress = true;
        if (cut_.count({m.from, m.to}) > 0 || nodes_.count(m.to) == 0) continue;
        if (filter_ && filter_(m)) continue;
        nodes_.at(m.to).raft->Step(m);
      }
      if (!progress) return;
    }
  }

  std::map<uint64_t, TestNode>& nodes() { return nodes_; }

 private:
  void HandleReady(TestNode& n) {
    Ready rd = n.raft->TakeReady();
    for (Message& m : rd.early_messages) queue_.push_back(std::move(m));
    if (!rd.snapshot.empty()) {
      CHECK(n.storage->ApplySnapshot(rd.snapshot).ok());
      ++n.snapshots_installed;
    }
    n.storage->Append(rd.entries);
    if (rd.hard_state) n.storage->SetHardState(*rd.hard_state);
    for (Message& m : rd.messages) queue_.push_back(std::move(m));
    for (const Entry& e : rd.committed_entries) {
      if (e.type == EntryType::kNormal && !e.data.empty()) n.applied.push_back(e);
    }
    for (const ReadState& r : rd.read_states) n.reads.push_back(r);
    n.raft->Advance(rd);
  }

  std::function<void(Config&)> tweak_;
  std::map<uint64_t, TestNode> nodes_;
  std::deque<Message> queue_;
  std::vector<Message> sent_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::function<bool(const Message&)> filter_;
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_CORE_RAFT_TEST_UTIL_H_
