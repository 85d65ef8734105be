// raft/session.h
//
// SessionTable: client sessions for a replicated state machine (Ongaro's dissertation, 6.3), so a
// command retried after a timeout or leader change is applied exactly once. Each client numbers
// its commands 1, 2, 3, ... and has at most one outstanding; the state machine, while applying a
// committed command, asks Check() and either applies it and Record()s the response or returns the
// recorded one.
//
// The table is part of the replicated state: every replica must make the same calls in log order
// (so expiry, if any, must also be driven by log entries, never by local clocks). Serialize() and
// Parse() put it in snapshots. Thread-compatible.
#ifndef VIGIL_RAFT_SESSION_H_
#define VIGIL_RAFT_SESSION_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vigil::raft {

class SessionTable {
 public:
  enum class Verdict {
    kApply,      // first time: apply, then Record()
    kDuplicate,  // the client's latest command, already applied: reply with *cached_response
    kStale,      // older than the client's latest: the client has moved on; ignore
  };

  // `seq` must be >= 1.
  Verdict Check(uint64_t client, uint64_t seq, std::string* cached_response) const;
  // Records that (client, seq) was applied with `response`. CHECK-fails if seq does not advance.
  void Record(uint64_t client, uint64_t seq, std::string response);
  // Forgets a client (e.g. on an explicit, logged, session close).
  void Close(uint64_t client) { sessions_.erase(client); }

  size_t size() const { return sessions_.size(); }
  std::string Serialize() const;
  // kDataLoss on malformed input.
  static absl::StatusOr<SessionTable> Parse(absl::string_view data);
  bool operator==(const SessionTable& o) const;

 private:
  struct Session {
    uint64_t last_seq = 0;
    std::string response;
  };
  std::map<uint64_t, Session> sessions_;  // ordered: Serialize() is deterministic
};

}  // namespace vigil::raft

#endif  // VIGIL_RAFT_SESSION_H_
