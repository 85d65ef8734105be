#include "raft/grpc_transport.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <thread>
#include <utility>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/event.h"
#include "common/grpc_deadline.h"
#include "glog/logging.h"
#include "xxhash.h"

namespace vigil::raft {

namespace pb = ::vigil::raft::v1;

pb::Message ToProto(const Message& m) {
  pb::Message out;
  out.set_type(static_cast<uint32_t>(m.type));
  out.set_to(m.to);
  out.set_from(m.from);
  out.set_term(m.term);
  out.set_log_term(m.log_term);
  out.set_index(m.index);
  for (const Entry& e : m.entries) {
    pb::Entry* pe = out.add_entries();
    pe->set_term(e.term);
    pe->set_index(e.index);
    pe->set_type(static_cast<uint32_t>(e.type));
    pe->set_data(e.data);
  }
  out.set_commit(m.commit);
  if (!m.snapshot.empty()) {
    pb::Snapshot* s = out.mutable_snapshot();
    s->set_index(m.snapshot.metadata.index);
    s->set_term(m.snapshot.metadata.term);
    for (uint64_t id : m.snapshot.metadata.conf_state.voters) {
      s->mutable_conf_state()->add_voters(id);
    }
    for (uint64_t id : m.snapshot.metadata.conf_state.learners) {
      s->mutable_conf_state()->add_learners(id);
    }
    s->set_data(m.snapshot.data);
  }
  out.set_reject(m.reject);
  out.set_reject_hint(m.reject_hint);
  out.set_context(m.context);
  return out;
}

Message FromProto(const pb::Message& in) {
  Message m;
  m.type = static_cast<MessageType>(in.type());
  m.to = in.to();
  m.from = in.from();
  m.term = in.term();
  m.log_term = in.log_term();
  m.index = in.index();
  for (const pb::Entry& pe : in.entries()) {
    m.entries.push_back(Entry{pe.term(), pe.index(), static_cast<EntryType>(pe.type()), pe.data()});
  }
  m.commit = in.commit();
  if (in.has_snapshot()) {
    const pb::Snapshot& s = in.snapshot();
    m.snapshot.metadata.index = s.index();
    m.snapshot.metadata.term = s.term();
    m.snapshot.metadata.conf_state.voters.assign(s.conf_state().voters().begin(),
                                                 s.conf_state().voters().end());
    m.snapshot.metadata.conf_state.learners.assign(s.conf_state().learners().begin(),
                                                   s.conf_state().learners().end());
    m.snapshot.data = s.data();
  }
  m.reject = in.reject();
  m.reject_hint = in.reject_hint();
  m.context = in.context();
  return m;
}

namespace {

constexpr int kMaxMessageBytes = 256 << 20;

// Roughly what a message costs in a queue.
uint64_t MessageBytes(const Message& m) {
  uint64_t n = 64 + m.context.size() + m.snapshot.data.size();
  for (const Entry& e : m.entries) n += 32 + e.data.size();
  return n;
}

uint64_t Checksum(absl::string_view data) { return XXH64(data.data(), data.size(), 0); }

}  // namespace

class GrpcTransport::Service final : public pb::RaftTransport::Service {
 public:
  Service(GrpcTransport* t, uint64_t max_snapshot_bytes)
      : t_(t), max_snapshot_bytes_(max_snapshot_bytes) {}

  grpc::Status Stream(grpc::ServerContext* ctx, grpc::ServerReader<pb::Message>* reader,
                      pb::StreamAck* ack) override {
    if (!Enter(ctx)) return grpc::Status(grpc::UNAVAILABLE, "raft transport closed");
    pb::Message m;
    while (reader->Read(&m)) t_->Deliver(FromProto(m));
    Leave(ctx);
    return grpc::Status::OK;
  }

  grpc::Status InstallSnapshot(grpc::ServerContext* ctx,
                               grpc::ServerReader<pb::SnapshotChunk>* reader,
                               pb::SnapshotAck* ack) override {
    if (!Enter(ctx)) return grpc::Status(grpc::UNAVAILABLE, "raft transport closed");
    absl::StatusOr<Message> m = Assemble(reader);
    Leave(ctx);
    if (!m.ok()) {
      snapshots_rejected_.fetch_add(1);
      LOG(WARNING) << "discarding a snapshot transfer: " << m.status();
      return grpc::Status(static_cast<grpc::StatusCode>(m.status().code()),
                          std::string(m.status().message()));
    }
    snapshots_received_.fetch_add(1);
    t_->Deliver(*std::move(m));
    return grpc::Status::OK;
  }

  InboundStats stats() const {
    return InboundStats{snapshots_received_.load(), snapshots_rejected_.load(),
                        snapshot_chunks_.load()};
  }

  // GrpcTransport::CloseInbound.
  void Close() {
    absl::MutexLock l(&mu_);
    closed_ = true;
    for (grpc::ServerContext* ctx : active_) ctx->TryCancel();
  }

 private:
  // Registers a running call so Close() can end it; false once closed.
  bool Enter(grpc::ServerContext* ctx) {
    absl::MutexLock l(&mu_);
    if (closed_) return false;
    active_.insert(ctx);
    return true;
  }
  void Leave(grpc::ServerContext* ctx) {
    absl::MutexLock l(&mu_);
    active_.erase(ctx);
  }

  // Reads chunks in order until the last one and verifies size and checksum.
  absl::StatusOr<Message> Assemble(grpc::ServerReader<pb::SnapshotChunk>* reader) {
    pb::SnapshotChunk chunk;
    if (!reader->Read(&chunk)) return absl::AbortedError("snapshot transfer without chunks");
    snapshot_chunks_.fetch_add(1);
    if (!chunk.has_header() || chunk.offset() != 0) {
      return absl::InvalidArgumentError("the first snapshot chunk must carry the header");
    }
    const uint64_t total = chunk.total_size();
    const uint64_t checksum = chunk.checksum();
    if (total > max_snapshot_bytes_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("snapshot of ", total, " bytes exceeds the limit of ", max_snapshot_bytes_));
    }
    Message m = FromProto(chunk.header());
    std::string& data = m.snapshot.data;
    data.reserve(total);
    for (;;) {
      if (chunk.offset() != data.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("snapshot chunk at offset ", chunk.offset(), ", expected ", data.size()));
      }
      if (chunk.data().size() > total - data.size()) {
        return absl::InvalidArgumentError("snapshot chunks exceed the announced size");
      }
      data.append(chunk.data());
      if (chunk.last()) break;
      if (!reader->Read(&chunk)) {
        return absl::AbortedError(
            absl::StrCat("torn snapshot transfer: ", data.size(), " of ", total, " bytes"));
      }
      snapshot_chunks_.fetch_add(1);
    }
    if (data.size() != total) {
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot ended at ", data.size(), " of ", total, " bytes"));
    }
    if (Checksum(data) != checksum) return absl::DataLossError("snapshot checksum mismatch");
    return m;
  }

  GrpcTransport* const t_;
  const uint64_t max_snapshot_bytes_;
  std::atomic<uint64_t> snapshots_received_{0};
  std::atomic<uint64_t> snapshots_rejected_{0};
  std::atomic<uint64_t> snapshot_chunks_{0};
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::set<grpc::ServerContext*> active_ ABSL_GUARDED_BY(mu_);
};

// One outbound stream to a peer, fed by a bounded queue and drained by its own thread; a second
// thread (the watchdog) cancels a stream write that outlives message_timeout.
class GrpcTransport::Peer {
 public:
  // `report` is told the outcome of each snapshot transfer, `unreachable` of each failed stream.
  Peer(std::string address, const GrpcTransportOptions& options,
       std::function<void(bool ok)> report, std::function<void()> unreachable)
      : address_(std::move(address)),
        options_(options),
        report_(std::move(report)),
        unreachable_(std::move(unreachable)) {
    thread_ = std::thread([this] { Run(); });
    watchdog_ = std::thread([this] { Watchdog(); });
  }
  ~Peer() {
    stopping_.Notify();
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
      if (ctx_ != nullptr) ctx_->TryCancel();
      if (snapshot_ctx_ != nullptr) snapshot_ctx_->TryCancel();
    }
    thread_.join();
    watchdog_.join();
  }

  void Enqueue(Message m) {
    uint64_t bytes = MessageBytes(m);
    absl::MutexLock l(&mu_);
    // A message larger than the byte bound (a big snapshot) still goes through an empty queue.
    if (queue_.size() >= options_.max_queued_messages ||
        (!queue_.empty() && stats_.queued_bytes + bytes > options_.max_queued_bytes)) {
      ++stats_.dropped;  // best effort: Raft retransmits
      return;
    }
    queue_.push_back(std::move(m));
    stats_.queued_bytes += bytes;
  }

  PeerStats stats() const {
    absl::MutexLock l(&mu_);
    PeerStats s = stats_;
    s.queued_messages = queue_.size();
    return s;
  }

 private:
  using Writer = std::unique_ptr<grpc::ClientWriter<pb::Message>>;

  void Run() {
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    auto channel = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
    auto stub = pb::RaftTransport::NewStub(channel);
    absl::Duration backoff = absl::Milliseconds(10);
    Writer writer;
    pb::StreamAck ack;
    for (;;) {
      std::deque<Message> batch;
      {
        absl::MutexLock l(&mu_);
        auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || !queue_.empty();
        };
        mu_.Await(absl::Condition(&wake));
        if (stop_) break;
        batch.swap(queue_);
        stats_.queued_bytes = 0;
      }
      size_t sent = 0;
      bool ok = true;
      for (Message& m : batch) {
        if (m.type == MessageType::kSnapshot) {
          SendSnapshot(*stub, std::move(m));
        } else if (!(ok = WriteToStream(*stub, writer, ack, m))) {
          break;
        }
        ++sent;
      }
      if (ok) {
        absl::MutexLock l(&mu_);
        stats_.sent += sent;
        backoff = absl::Milliseconds(10);
        continue;
      }
      // The stream broke or timed out: drop what is queued, tell Raft (the leader probes this
      // peer instead of pipelining into the void), back off, reconnect on the next message.
      if (writer != nullptr) writer->Finish();
      writer.reset();
      bool stopping;
      {
        absl::MutexLock l(&mu_);
        ctx_.reset();
        stats_.sent += sent;
        stats_.dropped += batch.size() - sent + queue_.size();
        queue_.clear();
        stats_.queued_bytes = 0;
        stopping = stop_;
        if (!stopping) ++stats_.send_failures;
      }
      if (!stopping) unreachable_();
      stopping_.WaitWithTimeout(backoff);
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
    if (writer != nullptr) {
      {
        absl::MutexLock l(&mu_);
        ctx_->TryCancel();  // stopping: do not wait for a slow peer to drain the stream
      }
      writer->Finish();
    }
  }

  // Opens the stream if needed and writes `m`, both under the watchdog. False if the stream
  // failed, timed out, or the peer is stopping.
  bool WriteToStream(pb::RaftTransport::Stub& stub, Writer& writer, pb::StreamAck& ack,
                     const Message& m) {
    if (writer == nullptr) {
      grpc::ClientContext* ctx;
      {
        absl::MutexLock l(&mu_);
        if (stop_) return false;
        ctx_ = std::make_unique<grpc::ClientContext>();
        ctx = ctx_.get();
      }
      BeginWrite();
      writer = stub.Stream(ctx, &ack);
      EndWrite();
    }
    BeginWrite();
    bool ok = writer->Write(ToProto(m));
    EndWrite();
    return ok;
  }

  void BeginWrite() {
    absl::MutexLock l(&mu_);
    writing_ = true;
    ++write_seq_;
  }
  void EndWrite() {
    absl::MutexLock l(&mu_);
    writing_ = false;
  }

  // Cancels the stream when one write (or the stream setup) lasts longer than message_timeout.
  // It looks every half timeout, so it never wakes per message, and cancels a write it has seen
  // in progress at three looks in a row: one that has lasted between 1 and 1.5 timeouts.
  void Watchdog() {
    const absl::Duration period = std::max(options_.message_timeout / 2, absl::Milliseconds(1));
    uint64_t seen_seq = 0;
    int looks = 0;
    while (!stopping_.WaitWithTimeout(period)) {
      absl::MutexLock l(&mu_);
      if (!writing_ || write_seq_ != seen_seq) {
        seen_seq = write_seq_;
        looks = writing_ ? 1 : 0;
        continue;
      }
      if (++looks < 3) continue;
      LOG(WARNING) << "raft peer " << address_ << ": a write took longer than "
                   << options_.message_timeout << "; cancelling the stream";
      ++stats_.timeouts;
      if (ctx_ != nullptr) ctx_->TryCancel();
      looks = 0;
    }
  }

  // One InstallSnapshot call: the message's metadata, then the data in chunks. Failures are
  // counted and otherwise ignored: Raft resends a snapshot that is not acknowledged.
  void SendSnapshot(pb::RaftTransport::Stub& stub, Message m) {
    std::string data = std::move(m.snapshot.data);
    m.snapshot.data.clear();
    grpc::ClientContext ctx;
    absl::Duration timeout =
        options_.snapshot_timeout +
        absl::Seconds(static_cast<double>(data.size()) /
                      static_cast<double>(std::max<uint64_t>(options_.snapshot_bytes_per_second, 1)));
    ctx.set_deadline(GrpcDeadline(timeout));
    {
      absl::MutexLock l(&mu_);
      if (stop_) return;
      snapshot_ctx_ = &ctx;
    }
    pb::SnapshotAck ack;
    std::unique_ptr<grpc::ClientWriter<pb::SnapshotChunk>> writer = stub.InstallSnapshot(&ctx, &ack);
    const size_t chunk_bytes = std::max<size_t>(options_.snapshot_chunk_bytes, 1);
    size_t offset = 0;
    bool ok = true;
    do {
      pb::SnapshotChunk chunk;
      if (offset == 0) {
        *chunk.mutable_header() = ToProto(m);
        chunk.set_total_size(data.size());
        chunk.set_checksum(Checksum(data));
      }
      size_t n = std::min(chunk_bytes, data.size() - offset);
      chunk.set_offset(offset);
      chunk.set_data(data.data() + offset, n);
      offset += n;
      chunk.set_last(offset == data.size());
      ok = writer->Write(chunk);
    } while (ok && offset < data.size());
    if (ok) writer->WritesDone();
    grpc::Status status = writer->Finish();
    {
      absl::MutexLock l(&mu_);
      snapshot_ctx_ = nullptr;
      if (status.ok()) {
        ++stats_.snapshots_sent;
      } else {
        ++stats_.snapshot_failures;
        LOG(WARNING) << "raft peer " << address_ << ": snapshot transfer failed: "
                     << status.error_message();
      }
    }
    report_(status.ok());
  }

  const std::string address_;
  const GrpcTransportOptions options_;
  const std::function<void(bool ok)> report_;
  const std::function<void()> unreachable_;
  std::thread thread_;
  std::thread watchdog_;
  // Notified when the peer is being destroyed: wakes the backoff and the watchdog (timed
  // waits on the monotonic clock, common/event.h).
  Event stopping_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Message> queue_ ABSL_GUARDED_BY(mu_);
  PeerStats stats_ ABSL_GUARDED_BY(mu_);
  // The open stream's context (null between streams) and the running snapshot call's.
  std::unique_ptr<grpc::ClientContext> ctx_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* snapshot_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The sender thread is inside a stream write (or stream setup); write_seq_ counts them.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t write_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

GrpcTransport::GrpcTransport(const GrpcTransportOptions& options)
    : options_(options),
      service_(std::make_unique<Service>(this, options.max_snapshot_bytes)) {}

absl::StatusOr<std::unique_ptr<GrpcTransport>> GrpcTransport::Create(
    const std::string& listen_address, const GrpcTransportOptions& options) {
  std::unique_ptr<GrpcTransport> t(new GrpcTransport(options));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen_address, grpc::InsecureServerCredentials(), &t->port_);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.RegisterService(t->service_.get());
  t->server_ = builder.BuildAndStart();
  if (t->server_ == nullptr || t->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen_address));
  }
  return t;
}

std::unique_ptr<GrpcTransport> GrpcTransport::CreateOn(grpc::ServerBuilder* builder,
                                                       const GrpcTransportOptions& options) {
  std::unique_ptr<GrpcTransport> t(new GrpcTransport(options));
  builder->RegisterService(t->service_.get());
  return t;
}

GrpcTransport::~GrpcTransport() {
  std::map<uint64_t, std::unique_ptr<Peer>> peers;
  {
    absl::MutexLock l(&mu_);
    peers.swap(peers_);
    handler_ = nullptr;
    reporter_ = nullptr;
    unreachable_reporter_ = nullptr;
  }
  peers.clear();  // joins the sender threads outside mu_
  if (server_ != nullptr) {
    CloseInbound();
    server_->Shutdown(GrpcDeadline(absl::Milliseconds(100)));
  }
}

void GrpcTransport::SetHandler(Handler handler) {
  absl::MutexLock l(&mu_);
  handler_ = std::move(handler);
}

void GrpcTransport::AddPeer(uint64_t id, const std::string& address) {
  auto peer = std::make_unique<Peer>(
      address, options_, [this, id](bool ok) { ReportSnapshot(id, ok); },
      [this, id] { ReportUnreachable(id); });
  std::unique_ptr<Peer> old;
  {
    absl::MutexLock l(&mu_);
    old = std::move(peers_[id]);
    peers_[id] = std::move(peer);
  }
}

void GrpcTransport::RemovePeer(uint64_t id) {
  std::unique_ptr<Peer> old;
  {
    absl::MutexLock l(&mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    old = std::move(it->second);
    peers_.erase(it);
  }
}

void GrpcTransport::Send(std::vector<Message> msgs) {
  absl::MutexLock l(&mu_);
  for (Message& m : msgs) {
    auto it = peers_.find(m.to);
    if (it != peers_.end()) it->second->Enqueue(std::move(m));
  }
}

PeerStats GrpcTransport::peer_stats(uint64_t id) const {
  absl::MutexLock l(&mu_);
  auto it = peers_.find(id);
  return it == peers_.end() ? PeerStats{} : it->second->stats();
}

InboundStats GrpcTransport::inbound_stats() const { return service_->stats(); }

void GrpcTransport::CloseInbound() { service_->Close(); }

void GrpcTransport::SetSnapshotReporter(SnapshotReporter reporter) {
  absl::MutexLock l(&mu_);
  reporter_ = std::move(reporter);
}

void GrpcTransport::SetUnreachableReporter(UnreachableReporter reporter) {
  absl::MutexLock l(&mu_);
  unreachable_reporter_ = std::move(reporter);
}

void GrpcTransport::ReportUnreachable(uint64_t peer) {
  absl::MutexLock l(&mu_);
  if (unreachable_reporter_) unreachable_reporter_(peer);
}

void GrpcTransport::ReportSnapshot(uint64_t peer, bool ok) {
  absl::MutexLock l(&mu_);
  if (reporter_) reporter_(peer, ok);
}

void GrpcTransport::Deliver(Message m) {
  // Called under mu_ so the handler cannot be reset (and its node freed) mid-call.
  absl::MutexLock l(&mu_);
  if (handler_) handler_(std::move(m));
}

}  // namespace vigil::raft
