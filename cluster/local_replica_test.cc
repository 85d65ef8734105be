#include "cluster/local_replica.h"

#include "absl/strings/str_cat.h"
#include "cluster/testing/fake_nodes.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;
using ::vigil::testing::StatusIs;

constexpr uint32_t kShards = 4;

// A SeriesSource over fixed series that records nothing: Select returns all of them.
class FixedSource : public query::SeriesSource {
 public:
  explicit FixedSource(std::vector<Series> series) : series_(std::move(series)) {}
  absl::StatusOr<query::SelectResult> Select(const query::SelectHints&,
                                             const std::vector<LabelMatcher>& m) override {
    query::SelectResult r;
    for (const Series& s : series_) {
      if (MatchesAll(m, s.labels)) r.series.push_back(s);
    }
    r.warnings.push_back("from fixed");
    return r;
  }
  absl::StatusOr<std::vector<std::string>> LabelNames(const std::vector<LabelMatcher>&, int64_t,
                                                      int64_t) override {
    return std::vector<std::string>{"__name__", "i"};
  }
  absl::StatusOr<std::vector<std::string>> LabelValues(absl::string_view name,
                                                       const std::vector<LabelMatcher>&, int64_t,
                                                       int64_t) override {
    if (name == "bad") return absl::InvalidArgumentError("bad name");
    return std::vector<std::string>{std::string(name)};
  }

 private:
  std::vector<Series> series_;
};

Labels L(int i) { return Labels{{"__name__", "m"}, {"i", absl::StrCat(i)}}; }

TEST(LocalReplicaTest, ToSeriesAppendsViewsTheLabels) {
  std::vector<Series> series = {{L(7), {{1, 2}}}};
  std::vector<storage::SeriesAppend> a = ToSeriesAppends(series);
  ASSERT_THAT(a, SizeIs(1));
  ASSERT_THAT(a[0].labels, SizeIs(2));
  EXPECT_EQ(a[0].labels[1].name, "i");
  EXPECT_EQ(a[0].labels[1].value, "7");
  EXPECT_EQ(a[0].labels[1].value.data(), series[0].labels.labels()[1].value.data());
  EXPECT_EQ(a[0].samples[0].v, 2);
}

TEST(LocalReplicaTest, WritesOneAppendPerShardAndStopsAtTheFirstError) {
  std::vector<size_t> calls;
  int fail_at = -1;
  auto append = [&](const std::vector<storage::SeriesAppend>& b)
      -> absl::StatusOr<storage::AppendResult> {
    if (static_cast<int>(calls.size()) == fail_at) return absl::UnavailableError("disk");
    calls.push_back(b.size());
    storage::AppendResult r;
    r.appended = static_cast<int64_t>(b.size());
    return r;
  };
  LocalReplica local(append, nullptr, &ModShardOf, kShards);
  ReplicaWriteRequest req;
  req.shards.push_back(
      {0, ShardView{1, false},
       std::make_shared<const std::vector<Series>>(
           std::vector<Series>{{L(1), {{1, 1}}}, {L(2), {{1, 1}}}})});
  req.shards.push_back({1, ShardView{1, false},
                        std::make_shared<const std::vector<Series>>(
                            std::vector<Series>{{L(3), {{1, 1}}}})});
  absl::StatusOr<ReplicaWriteReply> reply;
  local.Write(1, req, absl::InfiniteFuture(), [&](auto r) { reply = std::move(r); });
  ASSERT_TRUE(reply.ok());
  ASSERT_THAT(reply->shards, SizeIs(2));
  EXPECT_EQ(reply->shards[0].appended, 2);
  EXPECT_EQ(reply->shards[1].appended, 1);
  EXPECT_THAT(calls, ElementsAre(2, 1));
  calls.clear();
  fail_at = 1;
  EXPECT_THAT(local.WriteNow(req), StatusIs(absl::StatusCode::kUnavailable));
}

TEST(LocalReplicaTest, SelectKeepsOnlyTheRequestedShards) {
  std::vector<Series> all;
  for (int i = 0; i < 20; ++i) all.push_back({L(i), {{1, 1}}});
  FixedSource source(all);
  LocalReplica local(nullptr, &source, &ModShardOf, kShards);
  ReplicaReadRequest req;
  req.matchers = {LabelMatcher::Equal("__name__", "m")};
  req.shards = {1, 3};
  ASSERT_OK_AND_ASSIGN(ReplicaReadReply reply, local.ReadNow(req));
  int expected = 0;
  for (const Series& s : all) {
    const uint32_t shard = ModShardOf(s.labels.Hash(), kShards);
    expected += shard == 1 || shard == 3;
  }
  EXPECT_GT(expected, 0);
  EXPECT_THAT(reply.series, SizeIs(expected));
  for (const Series& s : reply.series) {
    const uint32_t shard = ModShardOf(s.labels.Hash(), kShards);
    EXPECT_TRUE(shard == 1 || shard == 3);
  }
  EXPECT_THAT(reply.warnings, ElementsAre("from fixed"));
}

TEST(LocalReplicaTest, LabelCallsPassThroughWithTheirErrors) {
  FixedSource source({});
  LocalReplica local(nullptr, &source, &ModShardOf, kShards);
  ReplicaReadRequest req;
  req.kind = ReplicaReadRequest::Kind::kLabelNames;
  ASSERT_OK_AND_ASSIGN(ReplicaReadReply reply, local.ReadNow(req));
  EXPECT_THAT(reply.strings, ElementsAre("__name__", "i"));
  req.kind = ReplicaReadRequest::Kind::kLabelValues;
  req.label_name = "job";
  ASSERT_OK_AND_ASSIGN(reply, local.ReadNow(req));
  EXPECT_THAT(reply.strings, ElementsAre("job"));
  req.label_name = "bad";
  absl::StatusOr<ReplicaReadReply> r;
  local.Read(1, req, absl::InfiniteFuture(), [&](auto x) { r = std::move(x); });
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vigil::cluster
