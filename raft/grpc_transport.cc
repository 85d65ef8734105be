#include "raft/grpc_transport.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"

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
}  // namespace

class GrpcTransport::Service final : public pb::RaftTransport::Service {
 public:
  explicit Service(GrpcTransport* t) : t_(t) {}
  grpc::Status Stream(grpc::ServerContext* ctx, grpc::ServerReader<pb::Message>* reader,
                      pb::StreamAck* ack) override {
    pb::Message m;
    while (reader->Read(&m)) t_->Deliver(FromProto(m));
    return grpc::Status::OK;
  }

 private:
  GrpcTransport* const t_;
};

// One outbound stream to a peer, fed by a bounded queue and drained by its own thread.
class GrpcTransport::Peer {
 public:
  explicit Peer(std::string address) : address_(std::move(address)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Peer() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
      if (ctx_ != nullptr) ctx_->TryCancel();
    }
    thread_.join();
  }
  void Enqueue(Message m) {
    absl::MutexLock l(&mu_);
    if (queue_.size() >= kMaxQueued) return;  // best effort: Raft retransmits
    queue_.push_back(std::move(m));
  }

 private:
  void Run() {
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(kMaxMessageBytes);
    auto channel = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
    auto stub = pb::RaftTransport::NewStub(channel);
    absl::Duration backoff = absl::Milliseconds(10);
    std::unique_ptr<grpc::ClientWriter<pb::Message>> writer;
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
      }
      if (writer == nullptr) {
        absl::MutexLock l(&mu_);
        ctx_ = std::make_unique<grpc::ClientContext>();
        writer = stub->Stream(ctx_.get(), &ack);
      }
      bool ok = true;
      for (const Message& m : batch) {
        if (!(ok = writer->Write(ToProto(m)))) break;
      }
      if (ok) {
        backoff = absl::Milliseconds(10);
        continue;
      }
      // The stream broke: drop what is queued, back off, reconnect on the next message.
      writer->Finish();
      writer.reset();
      absl::MutexLock l(&mu_);
      ctx_.reset();
      queue_.clear();
      auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopped), backoff);
      backoff = std::min(backoff * 2, absl::Seconds(1));
    }
    if (writer != nullptr) {
      writer->WritesDone();
      writer->Finish();
    }
  }

  const std::string address_;
  std::thread thread_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Message> queue_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<grpc::ClientContext> ctx_ ABSL_GUARDED_BY(mu_);
};

GrpcTransport::GrpcTransport() : service_(std::make_unique<Service>(this)) {}

absl::StatusOr<std::unique_ptr<GrpcTransport>> GrpcTransport::Create(
    const std::string& listen_address) {
  std::unique_ptr<GrpcTransport> t(new GrpcTransport());
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

std::unique_ptr<GrpcTransport> GrpcTransport::CreateOn(grpc::ServerBuilder* builder) {
  std::unique_ptr<GrpcTransport> t(new GrpcTransport());
  builder->RegisterService(t->service_.get());
  return t;
}

GrpcTransport::~GrpcTransport() {
  {
    absl::MutexLock l(&mu_);
    peers_.clear();
    handler_ = nullptr;
  }
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  }
}

void GrpcTransport::SetHandler(Handler handler) {
  absl::MutexLock l(&mu_);
  handler_ = std::move(handler);
}

void GrpcTransport::AddPeer(uint64_t id, const std::string& address) {
  absl::MutexLock l(&mu_);
  peers_[id] = std::make_unique<Peer>(address);
}

void GrpcTransport::RemovePeer(uint64_t id) {
  absl::MutexLock l(&mu_);
  peers_.erase(id);
}

void GrpcTransport::Send(std::vector<Message> msgs) {
  absl::MutexLock l(&mu_);
  for (Message& m : msgs) {
    auto it = peers_.find(m.to);
    if (it != peers_.end()) it->second->Enqueue(std::move(m));
  }
}

void GrpcTransport::Deliver(Message m) {
  // Called under mu_ so the handler cannot be reset (and its node freed) mid-call.
  absl::MutexLock l(&mu_);
  if (handler_) handler_(std::move(m));
}

}  // namespace vigil::raft
