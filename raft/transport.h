// raft/transport.h
//
// Transport: how a RaftNode exchanges raft::Message with its peers. Delivery is best effort:
// messages may be lost, duplicated or reordered and the core copes, so a transport never retries
// on its own and never blocks the caller on the network. Thread-safe.
#ifndef VIGIL_RAFT_TRANSPORT_H_
#define VIGIL_RAFT_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "raft/core/types.h"

namespace vigil::raft {

class Transport {
 public:
  // Receives every inbound message; called from transport threads, must not block for long
  // (RaftNode just posts to its inbox).
  using Handler = std::function<void(Message)>;

  virtual ~Transport() = default;

  // Installs the inbound handler; call once before Start()ing the node.
  virtual void SetHandler(Handler handler) = 0;
  // Where to reach node `id` (e.g. "host:port"); replaces a previous address.
  virtual void AddPeer(uint64_t id, const std::string& address) = 0;
  virtual void RemovePeer(uint64_t id) = 0;
  // Queues `msgs` for sending and returns at once. Messages to unknown peers are dropped.
  virtual void Send(std::vector<Message> msgs) = 0;

  // Told, from a transport thread, whether a snapshot sent to `peer` was accepted (true) or
  // failed (false), so the leader can retry at once instead of after an election timeout.
  using SnapshotReporter = std::function<void(uint64_t peer, bool ok)>;
  // Installs the reporter (null removes it). Transports that cannot tell ignore it.
  virtual void SetSnapshotReporter(SnapshotReporter reporter) {}

  // Told, from a transport thread, that messages to `peer` were lost because it could not be
  // reached (the stream failed or timed out), so the leader stops pipelining appends to it and
  // probes instead (Raft::ReportUnreachable). Null removes it; transports that cannot tell
  // ignore it.
  using UnreachableReporter = std::function<void(uint64_t peer)>;
  virtual void SetUnreachableReporter(UnreachableReporter reporter) {}
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_TRANSPORT_H_
