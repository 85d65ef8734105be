// raft/local_transport.h
//
// LocalNetwork: an in-process Transport hub for tests of RaftNode and of services built on it
// (cluster/). Messages are handed to the receiver's handler synchronously on the sender's thread;
// a node can be disconnected to simulate a partition or a dead peer. Thread-safe.
#ifndef VIGIL_RAFT_LOCAL_TRANSPORT_H_
#define VIGIL_RAFT_LOCAL_TRANSPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "raft/transport.h"

namespace vigil::raft {

class LocalNetwork {
 public:
  // The transport of node `id`; the network must outlive it.
  std::unique_ptr<Transport> Connect(uint64_t id) { return std::make_unique<Endpoint>(this, id); }

  // While disconnected, every message from or to `id` is lost.
  void SetConnected(uint64_t id, bool connected) {
    absl::MutexLock l(&mu_);
    if (connected) {
      disconnected_.erase(id);
    } else {
      disconnected_.insert(id);
    }
  }

 private:
  class Endpoint final : public Transport {
   public:
    Endpoint(LocalNetwork* net, uint64_t id) : net_(net), id_(id) {}
    ~Endpoint() override { SetHandler(nullptr); }
    void SetHandler(Handler handler) override {
      absl::MutexLock l(&net_->mu_);
      if (handler) {
        net_->handlers_[id_] = std::move(handler);
      } else {
        net_->handlers_.erase(id_);
      }
    }
    void AddPeer(uint64_t id, const std::string& address) override {}
    void RemovePeer(uint64_t id) override {}
    void Send(std::vector<Message> msgs) override {
      absl::MutexLock l(&net_->mu_);
      for (Message& m : msgs) {
        if (net_->disconnected_.count(m.from) > 0 || net_->disconnected_.count(m.to) > 0) continue;
        auto it = net_->handlers_.find(m.to);
        if (it != net_->handlers_.end()) it->second(std::move(m));
      }
    }

   private:
    LocalNetwork* const net_;
    const uint64_t id_;
  };

  absl::Mutex mu_;
  std::map<uint64_t, Transport::Handler> handlers_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> disconnected_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_LOCAL_TRANSPORT_H_
