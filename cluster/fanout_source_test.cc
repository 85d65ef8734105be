#include "cluster/fanout_source.h"

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
