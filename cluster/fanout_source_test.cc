#include "cluster/fanout_source.h"

#include <functional>
#include <limits>

#include "absl/strings/str_cat.h"
#include "cluster/quorum_writer.h"
#include "cluster/testing/fake_nodes.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;
using Mode = FakeNodes::Mode;

constexpr uint32_t kShards = 8;

std::shared_ptr<const ShardMap> ThreeNodeMap() { return UniformMap(kShards, {1, 2, 3}); }

Labels L(int i) { return Labels{{"__name__", "m"}, {"i", absl::StrCat(i)}}; }

std::vector<LabelMatcher> MetricM() { return {LabelMatcher::Equal("__name__", "m")}; }

std::vector<int64_t> Times(const Series& s) {
  std::vector<int64_t> out;
  for (const Sample& x : s.samples) out.push_back(x.t);
  return out;
}

class FanoutSourceTest : public ::testing::Test {
 protected:
  FanoutSourceTest() : nodes_(&clock_, kShards) {}

  FanoutSource Source(bool partial = false, NodeId self = 1,
                      std::shared_ptr<const ShardMap> map = ThreeNodeMap()) {
    FanoutOptions o;
    o.self = self;
    o.timeout = absl::Seconds(10);
    o.partial_response = partial;
    return FanoutSource(std::move(map), &nodes_, &clock_, o);
  }

  // Series i on every node, each node missing some samples.
  void AddDivergent(int series) {
    for (int i = 0; i < series; ++i) {
      nodes_.Add(1, Series{L(i), {{10, 1}, {20, 2}}});
      nodes_.Add(2, Series{L(i), {{20, 2}, {30, 3}}});
      nodes_.Add(3, Series{L(i), {{30, 3}, {40, 4}}});
    }
  }

  FakeClock clock_;
  FakeNodes nodes_;
};

// FakeNodes' data behind a network with a latency per node, on the FakeClock:
// a read to `n` is answered latency(n) after it was sent, or fails with
// kDeadlineExceeded at its deadline if that comes first (as the gRPC client's
// would). An infinite latency is a silent node (SIGSTOPped, partitioned away).
// Nothing happens until Deliver() is called with the clock past an event.
class LatencyReader final : public ReplicaReader {
 public:
  LatencyReader(FakeClock* clock, FakeNodes* nodes) : clock_(clock), nodes_(nodes) {}

  void SetLatency(NodeId n, absl::Duration d) { latency_[n] = d; }
  void Read(NodeId n, const ReplicaReadRequest& req, absl::Time deadline,
            ReadCallback done) override {
    ++reads_[n];
    deadlines_[n].push_back(deadline - clock_->MonotonicNow());
    auto l = latency_.find(n);
    const absl::Duration latency = l == latency_.end() ? absl::ZeroDuration() : l->second;
    pending_.push_back({n, req, deadline, clock_->MonotonicNow() + latency, std::move(done)});
  }
  // The time of the next answer or expiry; InfiniteFuture if none.
  absl::Time NextEvent() const {
    absl::Time next = absl::InfiniteFuture();
    for (const Pending& p : pending_) next = std::min({next, p.answer_at, p.deadline});
    return next;
  }
  // Answers (or fails) every read whose time has come, in the order sent.
  void Deliver() {
    const absl::Time now = clock_->MonotonicNow();
    std::vector<Pending> due;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (std::min(it->answer_at, it->deadline) <= now) {
        due.push_back(std::move(*it));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    for (Pending& p : due) {
      if (p.answer_at <= p.deadline) {
        nodes_->Read(p.node, p.req, absl::InfiniteFuture(), std::move(p.done));
      } else {
        p.done(absl::DeadlineExceededError(absl::StrCat("node ", p.node, " timed out")));
      }
    }
  }
  int reads(NodeId n) { return reads_[n]; }
  // The timeout (deadline - sent) of every read sent to `n`.
  const std::vector<absl::Duration>& timeouts(NodeId n) { return deadlines_[n]; }
  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    NodeId node;
    ReplicaReadRequest req;
    absl::Time deadline;
    absl::Time answer_at;
    ReadCallback done;
  };
  FakeClock* const clock_;
  FakeNodes* const nodes_;
  std::map<NodeId, absl::Duration> latency_;
  std::map<NodeId, int> reads_;
  std::map<NodeId, std::vector<absl::Duration>> deadlines_;
  std::vector<Pending> pending_;
};

// Gather over a LatencyReader, as a discrete-event simulation: each time the
// query waits, the clock jumps to its wake-up time or the network's next event,
// whichever is first. Single-threaded and deterministic.
class HedgedReadTest : public ::testing::Test {
 protected:
  HedgedReadTest() : nodes_(&clock_, kShards), reader_(&clock_, &nodes_) {
    for (int i = 0; i < 10; ++i) {
      nodes_.Add(1, Series{L(i), {{10, 1}, {20, 2}}});
      nodes_.Add(2, Series{L(i), {{20, 2}, {30, 3}}});
      nodes_.Add(3, Series{L(i), {{30, 3}, {40, 4}}});
    }
  }

  FanoutOptions Options(bool partial = false) {
    FanoutOptions o;
    o.self = 1;
    o.timeout = absl::Seconds(10);
    o.hedge_delay = absl::Milliseconds(400);
    o.attempt_timeout = absl::Seconds(2);
    o.partial_response = partial;
    o.wait_for_testing = [this](Event* wake, absl::Time until) {
      ASSERT_LT(until, absl::InfiniteFuture());
      if (wake->HasBeenNotified()) return;
      const absl::Time to = std::min(until, reader_.NextEvent());
      if (to > clock_.MonotonicNow()) clock_.Advance(to - clock_.MonotonicNow());
      reader_.Deliver();
    };
    return o;
  }

  // Selects every series of the fixture; `elapsed` is the simulated time it took.
  absl::StatusOr<query::SelectResult> Select(const FanoutOptions& o, absl::Duration* elapsed) {
    const absl::Time start = clock_.MonotonicNow();
    FanoutSource src(ThreeNodeMap(), &reader_, &clock_, o);
    auto r = src.Select({0, 100}, MetricM());
    *elapsed = clock_.MonotonicNow() - start;
    return r;
  }

  static constexpr absl::Duration kSilent = absl::InfiniteDuration();
  FakeClock clock_;
  FakeNodes nodes_;
  LatencyReader reader_;
};

// Before hedging, a silent node held every query until the query timeout.
TEST_F(HedgedReadTest, SilentReplicaIsHedgedAfterTheDelay) {
  reader_.SetLatency(2, kSilent);
  absl::Duration elapsed;
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, Select(Options(), &elapsed));
  EXPECT_EQ(elapsed, absl::Milliseconds(400));
  EXPECT_THAT(r.warnings, IsEmpty());
  ASSERT_THAT(r.series, SizeIs(10));
  for (const Series& s : r.series) EXPECT_THAT(Times(s), ElementsAre(10, 20, 30, 40));
  // One coalesced hedge for all shards; node 3 is the last candidate, so it
  // gets the whole remaining query time, node 2 only an attempt's.
  EXPECT_EQ(reader_.reads(3), 1);
  EXPECT_THAT(reader_.timeouts(2), ElementsAre(absl::Seconds(2)));
  EXPECT_THAT(reader_.timeouts(3), ElementsAre(absl::Milliseconds(9600)));
  // The straggler's reply comes after the query returned: dropped safely.
  ASSERT_EQ(reader_.pending(), 1u);
  clock_.Advance(absl::Seconds(5));
  reader_.Deliver();
  EXPECT_EQ(reader_.pending(), 0u);
}

TEST_F(HedgedReadTest, SlowReplicaAnsweringAfterTheHedgeStillCounts) {
  reader_.SetLatency(2, absl::Milliseconds(700));
  reader_.SetLatency(3, kSilent);
  absl::Duration elapsed;
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, Select(Options(), &elapsed));
  EXPECT_EQ(elapsed, absl::Milliseconds(700));
  EXPECT_EQ(reader_.reads(3), 1);  // hedged at 400 ms, never answered
  ASSERT_THAT(r.series, SizeIs(10));
  EXPECT_THAT(Times(r.series[0]), ElementsAre(10, 20, 30));
}

// The hedge delay is at least twice the slowest answer so far: a query slow on
// every replica is not read from a third one.
TEST_F(HedgedReadTest, HedgeWaitsLongerWhenEveryReplicaIsSlow) {
  reader_.SetLatency(1, absl::Milliseconds(300));
  reader_.SetLatency(2, absl::Milliseconds(550));
  absl::Duration elapsed;
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, Select(Options(), &elapsed));
  EXPECT_EQ(elapsed, absl::Milliseconds(550));
  EXPECT_EQ(reader_.reads(3), 0);
  EXPECT_THAT(Times(r.series[0]), ElementsAre(10, 20, 30));
}

TEST_F(HedgedReadTest, AttemptTimeoutReplacesASilentReplicaWithoutHedging) {
  reader_.SetLatency(2, kSilent);
  FanoutOptions o = Options();
  o.hedge_delay = absl::InfiniteDuration();
  absl::Duration elapsed;
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, Select(o, &elapsed));
  EXPECT_EQ(elapsed, absl::Seconds(2));
  ASSERT_THAT(r.series, SizeIs(10));
  EXPECT_THAT(Times(r.series[0]), ElementsAre(10, 20, 30, 40));
}

TEST_F(HedgedReadTest, TwoSilentReplicasFailTheQueryAtItsDeadline) {
  reader_.SetLatency(2, kSilent);
  reader_.SetLatency(3, kSilent);
  absl::Duration elapsed;
  auto r = Select(Options(), &elapsed);
  EXPECT_EQ(elapsed, absl::Seconds(10));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("read quorum missed on 8")));
  EXPECT_THAT(r.status().message(), HasSubstr("shard 0: 1 of 2 replicas answered (node 2: "
                                              "DEADLINE_EXCEEDED: node 2 timed out; node 3: "));

  ASSERT_OK_AND_ASSIGN(query::SelectResult partial, Select(Options(/*partial=*/true), &elapsed));
  EXPECT_EQ(elapsed, absl::Seconds(10));
  ASSERT_THAT(partial.series, SizeIs(10));
  EXPECT_THAT(Times(partial.series[0]), ElementsAre(10, 20));
  EXPECT_THAT(partial.warnings, SizeIs(kShards));
}

// A node still in flight at the deadline (its transport's deadline not yet
// fired) is named as such.
TEST_F(HedgedReadTest, ReplicaStillInFlightAtTheDeadlineIsNamed) {
  reader_.SetLatency(2, kSilent);
  reader_.SetLatency(3, absl::Seconds(30));
  FanoutOptions o = Options();
  o.attempt_timeout = absl::Minutes(1);
  o.wait_for_testing = [this](Event* wake, absl::Time until) {
    // A transport whose deadline fires late: only the query's own wait ends it.
    if (wake->HasBeenNotified()) return;
    clock_.Advance(until - clock_.MonotonicNow());
  };
  absl::Duration elapsed;
  auto r = Select(o, &elapsed);
  EXPECT_EQ(elapsed, absl::Seconds(10));
  EXPECT_THAT(r.status().message(), HasSubstr("node 2: no answer within the query timeout of 10s; "
                                              "node 3: no answer within the query timeout"));
}

TEST_F(HedgedReadTest, FastReplicasGiveTheSameAnswerAsWithoutLatency) {
  for (NodeId n : {1, 2, 3}) reader_.SetLatency(n, absl::Milliseconds(50));
  absl::Duration elapsed;
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, Select(Options(), &elapsed));
  EXPECT_EQ(elapsed, absl::Milliseconds(50));
  EXPECT_EQ(reader_.reads(3), 0);
  FanoutOptions direct;
  direct.self = 1;
  ASSERT_OK_AND_ASSIGN(query::SelectResult want,
                       FanoutSource(ThreeNodeMap(), &nodes_, &clock_, direct)
                           .Select({0, 100}, MetricM()));
  ASSERT_EQ(r.series.size(), want.series.size());
  for (size_t i = 0; i < want.series.size(); ++i) {
    EXPECT_EQ(r.series[i].labels, want.series[i].labels);
    EXPECT_THAT(Times(r.series[i]), ::testing::ElementsAreArray(Times(want.series[i])));
  }
}

// While a node is silent only the first query per suspect TTL waits for it.
TEST_F(HedgedReadTest, SuspectNodeIsAskedLastUntilItsSuspicionExpires) {
  SuspectNodes suspects(&clock_, absl::Seconds(10));
  FanoutOptions o = Options();
  o.suspects = &suspects;
  reader_.SetLatency(2, kSilent);
  absl::Duration elapsed;
  ASSERT_OK(Select(o, &elapsed).status());
  EXPECT_EQ(elapsed, absl::Milliseconds(400));
  EXPECT_TRUE(suspects.IsSuspect(2));
  EXPECT_FALSE(suspects.IsSuspect(3));

  ASSERT_OK_AND_ASSIGN(query::SelectResult r, Select(o, &elapsed));
  EXPECT_EQ(elapsed, absl::ZeroDuration());
  EXPECT_EQ(reader_.reads(2), 1);  // not asked again
  EXPECT_EQ(reader_.reads(3), 2);
  EXPECT_THAT(Times(r.series[0]), ElementsAre(10, 20, 30, 40));

  clock_.Advance(absl::Seconds(10));
  EXPECT_FALSE(suspects.IsSuspect(2));
  ASSERT_OK(Select(o, &elapsed).status());
  EXPECT_EQ(elapsed, absl::Milliseconds(400));
  EXPECT_EQ(reader_.reads(2), 2);
}

TEST_F(HedgedReadTest, FailedNodesAreSuspectedAndAnswersClearSuspicion) {
  SuspectNodes suspects(&clock_);
  FanoutOptions o = Options();
  o.suspects = &suspects;
  suspects.Suspect(2);
  nodes_.SetMode(3, Mode::kDown);
  absl::Duration elapsed;
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, Select(o, &elapsed));
  EXPECT_EQ(reader_.reads(3), 1);  // asked before the suspect, failed
  EXPECT_EQ(reader_.reads(2), 1);
  EXPECT_THAT(Times(r.series[0]), ElementsAre(10, 20, 30));
  EXPECT_FALSE(suspects.IsSuspect(2));
  EXPECT_TRUE(suspects.IsSuspect(3));
}

// A query error from any replica ends the call at once, even with a silent one.
TEST_F(HedgedReadTest, QueryErrorEndsTheCallAtOnce) {
  reader_.SetLatency(2, kSilent);
  nodes_.SetMode(1, Mode::kReject);
  absl::Duration elapsed;
  EXPECT_THAT(Select(Options(), &elapsed), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(elapsed, absl::ZeroDuration());
}

TEST(ReadQuorumTest, ReadAndWriteQuorumsIntersect) {
  for (size_t n = 0; n <= 7; ++n) {
    SCOPED_TRACE(n);
    EXPECT_GE(ReadQuorum(n), 1);
    if (n > 0) {
      EXPECT_GT(ReadQuorum(n) + WriteQuorum(n), static_cast<int>(n));
      EXPECT_LE(ReadQuorum(n), static_cast<int>(n));
    }
  }
  EXPECT_EQ(ReadQuorum(3), 2);
  EXPECT_EQ(ReadQuorum(5), 3);
}

TEST(MergeSeriesTest, UnionsSamplesAndKeepsTheFirstOnConflicts) {
  std::vector<Series> a = {{L(1), {{1, 1}, {3, 3}}}, {L(3), {{5, 5}}}};
  std::vector<Series> b = {{L(1), {{2, 2}, {3, 99}, {4, 4}}}, {L(2), {{7, 7}}}};
  std::vector<Series> m = MergeSeries({a, b});
  ASSERT_THAT(m, SizeIs(3));
  EXPECT_EQ(m[0].labels, L(1));
  EXPECT_THAT(Times(m[0]), ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(m[0].samples[2].v, 3);
  EXPECT_EQ(m[1].labels, L(2));
  EXPECT_EQ(m[2].labels, L(3));
  EXPECT_THAT(MergeSeries({}), IsEmpty());
}

TEST_F(FanoutSourceTest, ReadsTwoReplicasPerShardAndMergesThem) {
  AddDivergent(30);
  FanoutSource src = Source();
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, src.Select({0, 100}, MetricM()));
  EXPECT_THAT(r.warnings, IsEmpty());
  ASSERT_THAT(r.series, SizeIs(30));
  for (const Series& s : r.series) {
    // Nodes 1 and 2 (this node first, then the shard's next replica).
    EXPECT_THAT(Times(s), ElementsAre(10, 20, 30)) << s.labels.ToString();
  }
  EXPECT_TRUE(std::is_sorted(r.series.begin(), r.series.end(),
                             [](const Series& a, const Series& b) { return a.labels < b.labels; }));
  // One coalesced request per node, two answers per shard.
  EXPECT_EQ(nodes_.reads(1), 1);
  EXPECT_EQ(nodes_.reads(2), 1);
  EXPECT_EQ(nodes_.reads(3), 0);
  EXPECT_EQ(nodes_.shards_read(1) + nodes_.shards_read(2), static_cast<int>(2 * kShards));
}

TEST_F(FanoutSourceTest, FailedReplicaIsReplacedByTheNext) {
  AddDivergent(10);
  nodes_.SetMode(1, Mode::kDown);
  FanoutSource src = Source();
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, src.Select({0, 100}, MetricM()));
  ASSERT_THAT(r.series, SizeIs(10));
  EXPECT_THAT(Times(r.series[0]), ElementsAre(20, 30, 40));
  EXPECT_EQ(nodes_.reads(3), 1);
}

TEST_F(FanoutSourceTest, SlowReplicaWithinTheDeadlineAnswers) {
  AddDivergent(10);
  nodes_.SetDelay(2, absl::Seconds(9));
  FanoutSource src = Source();
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, src.Select({0, 100}, MetricM()));
  EXPECT_THAT(Times(r.series[0]), ElementsAre(10, 20, 30));
}

// The deadline covers the whole query: once a replica used it up, there is no
// time left to ask another.
TEST_F(FanoutSourceTest, ReplicaPastTheDeadlineFailsItsShards) {
  AddDivergent(10);
  nodes_.SetDelay(2, absl::Seconds(11));
  FanoutSource src = Source();
  EXPECT_THAT(src.Select({0, 100}, MetricM()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("fake deadline")));
}

TEST_F(FanoutSourceTest, ShardsWithoutReadQuorumFailTheQuery) {
  AddDivergent(10);
  nodes_.SetMode(2, Mode::kDown);
  nodes_.SetMode(3, Mode::kDown);
  FanoutSource src = Source();
  auto r = src.Select({0, 100}, MetricM());
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("read quorum missed on 8")));
  EXPECT_THAT(r.status().message(), HasSubstr("shard 0: 1 of 2 replicas answered"));
  EXPECT_THAT(r.status().message(), HasSubstr("node 3 is down"));
  EXPECT_THAT(src.LabelNames({}, 0, 100), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(FanoutSourceTest, PartialResponseReturnsWhatThereIsWithAWarningPerShard) {
  AddDivergent(10);
  nodes_.SetMode(2, Mode::kDown);
  nodes_.SetMode(3, Mode::kDown);
  FanoutSource src = Source(/*partial=*/true);
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, src.Select({0, 100}, MetricM()));
  ASSERT_THAT(r.series, SizeIs(10));
  EXPECT_THAT(Times(r.series[0]), ElementsAre(10, 20));
  ASSERT_THAT(r.warnings, SizeIs(kShards));
  EXPECT_THAT(r.warnings[3], HasSubstr("shard 3: 1 of 2 replicas answered"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, src.LabelNames({}, 0, 100));
  EXPECT_THAT(names, ElementsAre("__name__", "i"));
  EXPECT_THAT(src.LabelWarnings(), SizeIs(kShards));
}

TEST_F(FanoutSourceTest, QueryErrorsPassThrough) {
  nodes_.SetMode(2, Mode::kReject);
  FanoutSource src = Source();
  EXPECT_THAT(src.Select({0, 100}, MetricM()), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(FanoutSourceTest, LabelNamesAndValuesAreUnioned) {
  nodes_.Add(1, Series{Labels{{"__name__", "a"}, {"x", "1"}}, {{10, 1}}});
  nodes_.Add(2, Series{Labels{{"__name__", "b"}, {"y", "2"}}, {{10, 1}}});
  nodes_.Add(2, Series{Labels{{"__name__", "a"}, {"x", "1"}}, {{10, 1}}});
  FanoutSource src = Source();
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> names, src.LabelNames({}, 0, 100));
  EXPECT_THAT(names, ElementsAre("__name__", "x", "y"));
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> values, src.LabelValues("__name__", {}, 0, 100));
  EXPECT_THAT(values, ElementsAre("a", "b"));
  ASSERT_OK_AND_ASSIGN(values, src.LabelValues("__name__", {}, 20, 100));
  EXPECT_THAT(values, IsEmpty());
}

TEST_F(FanoutSourceTest, MovingShardIsReadFromItsCurrentReplicas) {
  nodes_.Add(1, Series{L(1), {{10, 1}}});
  nodes_.Add(4, Series{L(1), {{99, 9}}});
  auto map = MapOf(std::vector<ShardPlacement>(kShards, ShardPlacement{{1, 2}, {1, 4}, 1}));
  FanoutSource src = Source(false, /*self=*/0, map);
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, src.Select({0, 100}, MetricM()));
  ASSERT_THAT(r.series, SizeIs(1));
  EXPECT_THAT(Times(r.series[0]), ElementsAre(10));
  EXPECT_EQ(nodes_.reads(4), 0);
}

// R + W > RF: whichever node missed a write and whichever node is down for a
// read, every acked sample is read back.
TEST_F(FanoutSourceTest, EveryAckedSampleIsReadWhateverSingleNodeFails) {
  QuorumWriterOptions wo;
  wo.shard_of = &ModShardOf;
  for (NodeId write_down : {1, 2, 3}) {
    for (NodeId read_down : {1, 2, 3}) {
      SCOPED_TRACE(::testing::Message() << "write down " << write_down << ", read down "
                                        << read_down);
      FakeNodes nodes(&clock_, kShards);
      QuorumWriter writer(wo, &nodes, &clock_, nullptr);
      nodes.SetMode(write_down, Mode::kDown);
      std::vector<Series> batch;
      for (int i = 0; i < 40; ++i) batch.push_back(Series{L(i), {{i, double(i)}}});
      ASSERT_OK(writer.WriteAndWait(ThreeNodeMap(), batch));
      nodes.SetMode(write_down, Mode::kUp);
      nodes.SetMode(read_down, Mode::kDown);
      FanoutOptions fo;
      fo.self = 1;
      FanoutSource src(ThreeNodeMap(), &nodes, &clock_, fo);
      ASSERT_OK_AND_ASSIGN(query::SelectResult r, src.Select({0, 100}, MetricM()));
      EXPECT_THAT(r.series, SizeIs(40));
    }
  }
}

}  // namespace
}  // namespace vigil::cluster
