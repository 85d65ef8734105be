// alerting/file_replicator.h
//
// FileReplicator: the Replicator of a vigild without the Raft control plane (a single node, or
// each node of a --static_cluster). The node is its own log: a payload is committed once it is
// on disk, one file per payload key (AlertingPayloadKey) in a small directory, each written to
// a temporary file, fsync'd, renamed over the previous version and the directory fsync'd; only
// then is it applied (AlertingService::OnCommitted) and acknowledged. Restore() hands the
// service everything on disk at startup, so a restart keeps the rule set and each alert's
// state: a pending alert keeps its activeAt (its `for` is not restarted), a firing one keeps
// firedAt and lastSentAt (it is not sent again before the resend delay). Format: FORMAT.md.
//
// Thread-safe: Propose may be called from any thread; payloads are applied in write order.
#ifndef VIGIL_ALERTING_FILE_REPLICATOR_H_
#define VIGIL_ALERTING_FILE_REPLICATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "alerting/service.h"

namespace vigil::alerting {

class FileReplicator final : public Replicator {
 public:
  // Opens `dir` (created if missing) and reads every payload in it; leftovers of interrupted
  // writes are removed. kDataLoss naming the file if one is corrupt (the node refuses to start
  // rather than forget alert state silently: delete the file to start that rule afresh);
  // kInternal on I/O errors.
  static absl::StatusOr<std::unique_ptr<FileReplicator>> Open(const std::string& dir);
  FileReplicator(const FileReplicator&) = delete;
  FileReplicator& operator=(const FileReplicator&) = delete;

  // Committed payloads go to `service` (not owned). Call once, before Restore() and Propose.
  void set_service(AlertingService* service) { service_ = service; }
  // Hands every stored payload to the service: the rule set first, then each rule's state.
  absl::Status Restore();

  // This node always leads, in one term.
  uint64_t LeaderTerm() override { return 1; }
  // Writes `bytes` durably, applies it, then calls `done`: OK, or kInternal (nothing written
  // or applied) if the write failed, kInvalidArgument for a payload without a key.
  void Propose(std::string bytes, std::function<void(absl::Status)> done) override;
  // As Propose; the term is always this node's.
  void ProposeFenced(uint64_t term, std::string bytes,
                     std::function<void(absl::Status)> done) override;

  // The payloads on disk, by key (tests).
  std::map<std::string, std::string> payloads() const;

 private:
  explicit FileReplicator(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Load();
  // Writes `payload` as `key`'s file, atomically and durably.
  absl::Status WriteFile(const std::string& key, const std::string& payload)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a rule set: removes the state of rules that are not in it any more.
  void DropStatesNotIn(const std::string& rule_set_payload) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  AlertingService* service_ = nullptr;

  mutable absl::Mutex mu_;
  std::map<std::string, std::string> payloads_ ABSL_GUARDED_BY(mu_);  // key -> payload
};

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_FILE_REPLICATOR_H_
