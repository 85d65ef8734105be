#include "raft/raft_node.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/event.h"
#include "glog/logging.h"

namespace vigil::raft {
namespace {

// Result slot shared between a waiting caller and the loop thread's callback.
template <typename T>
struct Waiter {
  Event done;
  T result;
};

template <typename T>
T WaitFor(const std::shared_ptr<Waiter<T>>& w, absl::Duration timeout, T on_timeout) {
  if (!w->done.WaitWithTimeout(timeout)) return on_timeout;
  return w->result;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RaftNode>> RaftNode::Open(const RaftNodeOptions& options,
                                                         StateMachine* sm, Transport* transport) {
  if (options.id == kNone) return absl::InvalidArgumentError("raft node id must be non-zero");
  absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(options.dir);
  if (!store.ok()) return store.status();
  if (!options.initial_voters.empty()) {
    absl::Status s = (*store)->Bootstrap(options.initial_voters);
    if (!s.ok()) return s;
  }
  Snapshot snap = (*store)->GetSnapshot();
  if (!snap.empty()) {
    absl::Status s = sm->Restore(snap.data);
    if (!s.ok()) return s;
  }
  std::unique_ptr<RaftNode> node(new RaftNode(options, *std::move(store), sm, transport));
  // The committed log after the snapshot, applied before anyone reads the state machine: a
  // restarted member serves its last committed state (its membership, its shard map) at once,
  // not only once the loop thread got to it.
  while (node->core_->HasReady()) node->HandleReady();
  node->PublishStatus();
  transport->SetHandler([n = node.get()](Message m) { n->Receive(std::move(m)); });
  transport->SetSnapshotReporter([n = node.get()](uint64_t peer, bool ok) {
    n->Post([n, peer, ok] { n->core_->ReportSnapshot(peer, ok); });
  });
  transport->SetUnreachableReporter([n = node.get()](uint64_t peer) {
    n->Post([n, peer] { n->core_->ReportUnreachable(peer); });
  });
  node->loop_ = std::thread([n = node.get()] { n->Run(); });
  return node;
}

RaftNode::RaftNode(const RaftNodeOptions& options, std::unique_ptr<LogStore> store,
                   StateMachine* sm, Transport* transport)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : RealClock::Get()),
      sm_(sm),
      transport_(transport),
      store_(std::move(store)) {
  Config c;
  c.id = options.id;
  c.storage = store_.get();
  c.election_ticks = options.election_ticks;
  c.heartbeat_ticks = options.heartbeat_ticks;
  c.applied = store_->GetSnapshot().metadata.index;
  c.seed = static_cast<uint64_t>(absl::ToUnixNanos(clock_->Now())) ^ options.id;
  core_ = std::make_unique<Raft>(c);
  PublishStatus();
}

RaftNode::~RaftNode() {
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    stop_ = true;
  }
  inbox_cv_.notify_one();
  loop_.join();
  transport_->SetHandler(nullptr);
  transport_->SetSnapshotReporter(nullptr);
  transport_->SetUnreachableReporter(nullptr);
  for (auto& [index, p] : proposals_) p.done(absl::UnavailableError("raft node stopped"));
  for (auto& [ctx, r] : reads_) r.done(absl::UnavailableError("raft node stopped"));
}

void RaftNode::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> l(inbox_mu_);
    inbox_.push_back(std::move(fn));
  }
  inbox_cv_.notify_one();
}

void RaftNode::Receive(Message m) {
  Post([this, m = std::move(m)] { core_->Step(m); });
}

void RaftNode::Propose(std::string command, ProposeCallback done) {
  Post([this, command = std::move(command), done = std::move(done)]() mutable {
    absl::StatusOr<LogPosition> pos = core_->Propose(std::move(command));
    if (!pos.ok()) {
      done(pos.status());
      return;
    }
    proposals_[pos->index] = PendingProposal{pos->term, std::move(done)};
  });
}

absl::StatusOr<std::string> RaftNode::ProposeAndWait(std::string command, absl::Duration timeout) {
  auto w = std::make_shared<Waiter<absl::StatusOr<std::string>>>();
  Propose(std::move(command), [w](absl::StatusOr<std::string> r) {
    w->result = std::move(r);
    w->done.Notify();
  });
  return WaitFor<absl::StatusOr<std::string>>(w, timeout,
                                              absl::DeadlineExceededError("proposal timed out"));
}

void RaftNode::ProposeFenced(uint64_t term, std::string command, ProposeCallback done) {
  Post([this, term, command = std::move(command), done = std::move(done)]() mutable {
    absl::StatusOr<LogPosition> pos = core_->ProposeFenced(term, std::move(command));
    if (!pos.ok()) {
      done(pos.status());
      return;
    }
    proposals_[pos->index] = PendingProposal{pos->term, std::move(done), /*fenced=*/true};
  });
}

absl::StatusOr<std::string> RaftNode::ProposeFencedAndWait(uint64_t term, std::string command,
                                                           absl::Duration timeout) {
  auto w = std::make_shared<Waiter<absl::StatusOr<std::string>>>();
  ProposeFenced(term, std::move(command), [w](absl::StatusOr<std::string> r) {
    w->result = std::move(r);
    w->done.Notify();
  });
  return WaitFor<absl::StatusOr<std::string>>(
      w, timeout, absl::DeadlineExceededError("fenced proposal timed out"));
}

absl::Status RaftNode::ProposeConfChangeAndWait(const ConfChange& cc, absl::Duration timeout) {
  auto w = std::make_shared<Waiter<absl::Status>>();
  Post([this, cc, w] {
    absl::StatusOr<LogPosition> pos = core_->ProposeConfChange(cc);
    if (!pos.ok()) {
      w->result = pos.status();
      w->done.Notify();
      return;
    }
    proposals_[pos->index] = PendingProposal{pos->term, [w](absl::StatusOr<std::string> r) {
                                                w->result = r.status();
                                                w->done.Notify();
                                              }};
  });
  return WaitFor<absl::Status>(w, timeout, absl::DeadlineExceededError("conf change timed out"));
}

absl::Status RaftNode::ReadBarrier(absl::Duration timeout) {
  auto w = std::make_shared<Waiter<absl::Status>>();
  Post([this, w] {
    std::string ctx = absl::StrCat(options_.id, "/", next_read_++);
    absl::Status s = core_->ReadIndex(ctx);
    if (!s.ok()) {
      w->result = absl::UnavailableError(s.message());
      w->done.Notify();
      return;
    }
    reads_[ctx].done = [w](absl::Status r) {
      w->result = r;
      w->done.Notify();
    };
  });
  return WaitFor<absl::Status>(w, timeout, absl::DeadlineExceededError("read barrier timed out"));
}

absl::Status RaftNode::TransferLeadership(uint64_t target) {
  auto w = std::make_shared<Waiter<absl::Status>>();
  Post([this, target, w] {
    w->result = core_->TransferLeadership(target);
    w->done.Notify();
  });
  return WaitFor<absl::Status>(w, absl::Seconds(10), absl::DeadlineExceededError("timed out"));
}

RaftStatus RaftNode::status() const {
  absl::MutexLock l(&mu_);
  return status_;
}

void RaftNode::Run() {
  // Ticks on the monotonic clock: a wall clock stepping back must not stop heartbeats and
  // elections, nor one stepping forward fire them all at once.
  absl::Time next_tick = clock_->MonotonicNow() + options_.tick;
  for (;;) {
    std::vector<std::function<void()>> work;
    {
      std::unique_lock<std::mutex> l(inbox_mu_);
      const absl::Duration wait = next_tick - clock_->MonotonicNow();
      if (wait > absl::ZeroDuration()) {
        inbox_cv_.wait_for(l, absl::ToChronoNanoseconds(wait),
                           [this] { return stop_ || !inbox_.empty(); });
      }
      if (stop_) return;
      work.swap(inbox_);
    }
    for (auto& fn : work) fn();
    absl::Time now = clock_->MonotonicNow();
    if (now >= next_tick) {
      core_->Tick();
      next_tick = std::max(next_tick + options_.tick, now);
    }
    while (core_->HasReady()) HandleReady();
    PublishStatus();
  }
}

void RaftNode::HandleReady() {
  Ready rd = core_->TakeReady();
  // 0. A leader's appends go out while it writes its own log (dissertation 10.2.1); the
  // transport's sender threads overlap the network with the fsync below.
  if (options_.parallel_leader_write && !rd.early_messages.empty()) {
    transport_->Send(std::move(rd.early_messages));
  }
  // 1. Persist. A failed fsync leaves the log in an unknown state: crash and recover from disk.
  absl::Status s = store_->Save(rd.hard_state, rd.entries, rd.snapshot);
  CHECK(s.ok()) << "raft log write failed: " << s;
  // 2. Send what depends on the persisted state.
  if (!options_.parallel_leader_write && !rd.early_messages.empty()) {
    transport_->Send(std::move(rd.early_messages));
  }
  if (!rd.messages.empty()) transport_->Send(std::move(rd.messages));
  // 3. Apply.
  if (!rd.snapshot.empty()) {
    s = sm_->Restore(rd.snapshot.data);
    CHECK(s.ok()) << "restoring a snapshot from the leader failed: " << s;
    for (auto it = proposals_.begin();
         it != proposals_.end() && it->first <= rd.snapshot.metadata.index;) {
      it->second.done(absl::UnavailableError("outcome unknown: replaced by a snapshot"));
      it = proposals_.erase(it);
    }
  }
  for (const Entry& e : rd.committed_entries) ApplyEntry(e);
  for (const ReadState& rs : rd.read_states) {
    auto it = reads_.find(rs.context);
    if (it == reads_.end()) continue;
    it->second.index = rs.index;
    it->second.ready = true;
  }
  // 4. Advance.
  if (rd.soft_state.leader != last_leader_) {
    last_leader_ = rd.soft_state.leader;
    absl::MutexLock l(&mu_);
    ++status_.leader_changes;
  }
  core_->Advance(rd);
  ServeReads();
  MaybeSnapshot();
}

void RaftNode::ApplyEntry(const Entry& e) {
  sm_->OnCommitted(e);
  std::string reply;
  if (e.type == EntryType::kNormal && !e.data.empty()) {
    reply = sm_->Apply(e.index, e.term, e.data);
  } else if (e.type == EntryType::kConfChange) {
    absl::StatusOr<ConfChange> cc = ConfChange::Decode(e.data);
    CHECK(cc.ok()) << cc.status();
    sm_->ApplyConfChange(e.index, *cc, core_->ConfStateAt(e.index));
  }
  auto it = proposals_.find(e.index);
  if (it == proposals_.end()) return;
  if (it->second.term == e.term) {
    it->second.done(std::move(reply));
  } else if (it->second.fenced) {
    it->second.done(absl::FailedPreconditionError(absl::StrCat(
        "fenced proposal of term ", it->second.term, " lost: the leadership of that term ended")));
  } else {
    it->second.done(absl::UnavailableError("proposal lost to a leader change; retry"));
  }
  proposals_.erase(it);
}

void RaftNode::ServeReads() {
  uint64_t applied = core_->log().applied();
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.ready && it->second.index <= applied) {
      it->second.done(absl::OkStatus());
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void RaftNode::MaybeSnapshot() {
  uint64_t applied = core_->log().applied();
  if (applied < store_->GetSnapshot().metadata.index + options_.snapshot_every) return;
  if (core_->log().unstable_snapshot().has_value()) return;
  absl::StatusOr<std::string> data = sm_->Snapshot();
  if (!data.ok()) {
    LOG(WARNING) << "state machine snapshot failed: " << data.status();
    return;
  }
  absl::Status s = store_->CreateSnapshotAndCompact(applied, core_->ConfStateAt(applied),
                                                    *std::move(data), applied);
  CHECK(s.ok()) << "raft log compaction failed: " << s;
}

void RaftNode::PublishStatus() {
  absl::MutexLock l(&mu_);
  status_.id = options_.id;
  status_.term = core_->term();
  status_.leader = core_->leader();
  status_.role = core_->role();
  status_.commit = core_->log().committed();
  status_.applied = core_->log().applied();
  status_.leader_applied = core_->LeaderApplied();
  status_.conf = core_->conf_state();
}

}  // namespace vigil::raft
