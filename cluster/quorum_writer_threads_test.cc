// QuorumWriter and FanoutSource with replies arriving on other threads.
#include <atomic>
#include <deque>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cluster/fanout_source.h"
#include "cluster/quorum_writer.h"
#include "cluster/testing/fake_nodes.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::SizeIs;

constexpr uint32_t kShards = 16;

// Answers every call from one of its worker threads; node `down` fails.
class ThreadedNodes final : public ReplicaClient, public ReplicaReader {
 public:
  ThreadedNodes(NodeId down, int threads) : down_(down) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~ThreadedNodes() override { Shutdown(); }

  // Runs every queued call, then stops the workers.
  void Shutdown() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  void Write(NodeId node, ReplicaWriteRequest req, absl::Time, WriteCallback done) override {
    Post([this, node, req = std::move(req), done = std::move(done)] {
      if (node == down_) return done(absl::UnavailableError("down"));
      ReplicaWriteReply reply;
      for (const ShardWrite& w : req.shards) {
        storage::AppendResult r;
        r.appended = CountSamples(*w.series);
        reply.shards.push_back(r);
      }
      done(std::move(reply));
    });
  }

  void Read(NodeId node, const ReplicaReadRequest& req, absl::Time, ReadCallback done) override {
    Post([this, node, req, done = std::move(done)] {
      if (node == down_) return done(absl::UnavailableError("down"));
      ReplicaReadReply reply;
      for (uint32_t s : req.shards) {
        reply.series.push_back(Series{Labels{{"__name__", "m"}, {"shard", absl::StrCat(s)}},
                                      {{static_cast<int64_t>(node), 1.0}}});
      }
      std::sort(reply.series.begin(), reply.series.end(),
                [](const Series& a, const Series& b) { return a.labels < b.labels; });
      done(std::move(reply));
    });
  }

 private:
  void Post(std::function<void()> task) {
    absl::MutexLock l(&mu_);
    tasks_.push_back(std::move(task));
  }
  void Work() {
    while (true) {
      std::function<void()> task;
      {
        absl::MutexLock l(&mu_);
        mu_.Await(absl::Condition(
            +[](ThreadedNodes* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t->mu_) {
              return t->stop_ || !t->tasks_.empty();
            },
            this));
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  const NodeId down_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

TEST(QuorumWriterThreadsTest, ConcurrentWritesWithOneNodeDownAllSucceed) {
  FakeClock clock;
  HintStore hints(HintOptions(), &clock);
  ThreadedNodes nodes(/*down=*/3, /*threads=*/3);
  QuorumWriterOptions opts;
  opts.shard_of = &ModShardOf;
  QuorumWriter writer(opts, &nodes, &clock, &hints);
  auto map = UniformMap(kShards, {1, 2, 3});
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 100; ++i) {
        std::vector<Series> batch;
        for (int k = 0; k < 5; ++k) {
          batch.push_back({Labels{{"__name__", "m"}, {"c", absl::StrCat(c, "-", i, "-", k)}},
                           {{1, 1.0}, {2, 2.0}}});
        }
        auto r = writer.WriteAndWait(map, std::move(batch));
        if (r.ok() && r->appended == 10) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 400);
  // Node 3's failures arrive on their own schedule; every one leaves a hint.
  nodes.Shutdown();
  EXPECT_EQ(writer.inflight(), 0u);
  EXPECT_EQ(hints.Stats(3).samples, 400 * 10);
}

TEST(QuorumWriterThreadsTest, ConcurrentFanoutReadsMergeEveryShard) {
  FakeClock clock;
  ThreadedNodes nodes(/*down=*/2, /*threads=*/3);
  auto map = UniformMap(kShards, {1, 2, 3});
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        FanoutOptions fo;
        fo.self = 1;
        FanoutSource src(map, &nodes, &clock, fo);
        auto r = src.Select({0, 10}, {LabelMatcher::Equal("__name__", "m")});
        // Nodes 1 and 3 answer every shard: two samples (t=1, t=3) per series.
        if (r.ok() && r->series.size() == kShards && r->series[0].samples.size() == 2) {
          ok.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 200);
}

}  // namespace
}  // namespace vigil::cluster
