#include "storage/tsdb.h"

#include <atomic>
#include <cmath>
#include <thread>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/matcher.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/tsdb_test_util.h"

namespace vigil::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vigil::testing::StatusIs;

constexpr int64_t kStart = 1'700'000'000'000;  // ms; partition-aligned (2h)

class TSDBTest : public ::testing::Test {
 protected:
  TSDBTest() : clock_(absl::FromUnixMillis(kStart)) {
    opts_.dir = dir_.path();
    opts_.clock = &clock_;
    opts_.sync = false;  // durability has its own test (storage_crash_test)
    opts_.num_shards = 8;
  }

  void Open() {
    db_.reset();
    ASSERT_OK_AND_ASSIGN(db_, TSDB::Open(opts_));
  }

  AppendResult MustAppend(const BatchBuilder& b) {
    absl::StatusOr<AppendResult> r = db_->Append(b.batch());
    CHECK(r.ok()) << r.status();
    return *r;
  }

  // The samples of the single series selected by `matchers` over all time.
  std::vector<Sample> Samples(std::vector<LabelMatcher> matchers, int64_t mint = INT64_MIN,
                              int64_t maxt = INT64_MAX) {
    absl::StatusOr<query::SelectResult> r = db_->Select({mint, maxt}, matchers);
    CHECK(r.ok()) << r.status();
    if (r->series.empty()) return {};
    CHECK_EQ(r->series.size(), 1u);
    return r->series[0].samples;
  }

  std::vector<std::string> SelectNames(std::vector<LabelMatcher> matchers) {
    absl::StatusOr<query::SelectResult> r = db_->Select({INT64_MIN, INT64_MAX}, matchers);
    CHECK(r.ok()) << r.status();
    std::vector<std::string> out;
    for (const Series& s : r->series) out.push_back(s.labels.ToString());
    return out;
  }

  static LabelMatcher M(MatchType type, absl::string_view name, absl::string_view value) {
    absl::StatusOr<LabelMatcher> m = LabelMatcher::Create(type, name, value);
    CHECK(m.ok()) << m.status();
    return *m;
  }
  static LabelMatcher Eq(absl::string_view name, absl::string_view value) {
    return LabelMatcher::Equal(name, value);
  }

  TempDir dir_;
  FakeClock clock_;
  Options opts_;
  std::unique_ptr<TSDB> db_;
};

std::vector<int64_t> Times(const std::vector<Sample>& s) {
  std::vector<int64_t> out;
  for (const Sample& x : s) out.push_back(x.t);
  return out;
}

TEST_F(TSDBTest, AppendThenSelect) {
  Open();
  BatchBuilder b;
  b.Add({{"__name__", "up"}, {"job", "a"}}, {{kStart, 1}, {kStart + 15000, 0}});
  b.Add({{"job", "b"}, {"__name__", "up"}}, {{kStart, 1}});  // unsorted labels
  AppendResult r = MustAppend(b);
  EXPECT_EQ(r.appended, 3);
  EXPECT_EQ(r.rejected, 0);
  ASSERT_OK_AND_ASSIGN(query::SelectResult res, db_->Select({kStart, kStart + 60000}, {Eq("__name__", "up")}));
  ASSERT_EQ(res.series.size(), 2u);
  EXPECT_EQ(res.series[0].labels.ToString(), "up{job=\"a\"}");
  EXPECT_EQ(res.series[1].labels.ToString(), "up{job=\"b\"}");
  EXPECT_THAT(Times(res.series[0].samples), ElementsAre(kStart, kStart + 15000));
  EXPECT_EQ(res.series[0].samples[1].v, 0);
  // Time range is inclusive and series without samples in range are left out.
  ASSERT_OK_AND_ASSIGN(res, db_->Select({kStart + 15000, kStart + 15000}, {Eq("__name__", "up")}));
  ASSERT_EQ(res.series.size(), 1u);
  EXPECT_EQ(res.series[0].labels.ToString(), "up{job=\"a\"}");
}

TEST_F(TSDBTest, EmptyValueMeansAbsent) {
  Open();
  BatchBuilder b;
  b.Add({{"__name__", "up"}, {"job", "a"}, {"zone", ""}}, {{kStart, 1}});
  MustAppend(b);
  BatchBuilder b2;
  b2.Add({{"__name__", "up"}, {"job", "a"}}, {{kStart + 1, 2}});
  MustAppend(b2);
  EXPECT_THAT(SelectNames({Eq("__name__", "up")}), ElementsAre("up{job=\"a\"}"));
  EXPECT_EQ(Samples({Eq("job", "a")}).size(), 2u);
  EXPECT_EQ(db_->GetStats().series, 1);
}

TEST_F(TSDBTest, MatcherSemantics) {
  Open();
  BatchBuilder b;
  b.Add({{"__name__", "m"}, {"env", "prod"}, {"i", "1"}}, {{kStart, 1}});
  b.Add({{"__name__", "m"}, {"env", "dev"}, {"i", "2"}}, {{kStart, 1}});
  b.Add({{"__name__", "m"}, {"i", "3"}}, {{kStart, 1}});
  b.Add({{"__name__", "other"}, {"env", "production"}, {"i", "4"}}, {{kStart, 1}});
  MustAppend(b);
  struct Case {
    std::vector<LabelMatcher> matchers;
    std::vector<std::string> want_i;
  };
  const std::vector<Case> cases = {
      {{Eq("__name__", "m")}, {"1", "2", "3"}},
      {{Eq("env", "prod")}, {"1"}},
      {{Eq("__name__", "m"), Eq("env", "")}, {"3"}},  // absent label matches ""
      {{Eq("__name__", "m"), M(MatchType::kNotEqual, "env", "prod")}, {"2", "3"}},
      {{M(MatchType::kNotEqual, "env", "")}, {"1", "2", "4"}},
      {{M(MatchType::kRegexMatch, "env", "prod")}, {"1"}},  // anchored: not "production"
      {{M(MatchType::kRegexMatch, "env", "prod.*")}, {"1", "4"}},
      {{M(MatchType::kRegexMatch, "env", "prod|dev")}, {"1", "2"}},  // set lookups
      {{Eq("__name__", "m"), M(MatchType::kRegexMatch, "env", "prod|")}, {"1", "3"}},
      {{Eq("__name__", "m"), M(MatchType::kRegexNoMatch, "env", "d.v")}, {"1", "3"}},
      {{Eq("__name__", "m"), M(MatchType::kRegexNoMatch, "env", ".+")}, {"3"}},
      {{Eq("__name__", "m"), Eq("env", "staging")}, {}},
      {{Eq("nosuch", "x")}, {}},
      {{Eq("__name__", "m"), M(MatchType::kRegexMatch, "i", "[12]"), Eq("env", "dev")}, {"2"}},
  };
  for (size_t c = 0; c < cases.size(); c++) {
    std::string desc;
    for (const LabelMatcher& m : cases[c].matchers) desc += m.ToString() + " ";
    SCOPED_TRACE(desc);
    ASSERT_OK_AND_ASSIGN(query::SelectResult r, db_->Select({INT64_MIN, INT64_MAX}, cases[c].matchers));
    std::vector<std::string> got;
    for (const Series& s : r.series) got.push_back(std::string(s.labels.Get("i")));
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, cases[c].want_i);
  }
}

TEST_F(TSDBTest, SelectRefusesMatchersThatAllMatchEmpty) {
  Open();
  BatchBuilder b;
  b.Add({{"__name__", "m"}}, {{kStart, 1}});
  MustAppend(b);
  for (std::vector<LabelMatcher> ms :
       {std::vector<LabelMatcher>{}, std::vector<LabelMatcher>{M(MatchType::kRegexMatch, "foo", ".*")},
        std::vector<LabelMatcher>{Eq("foo", ""), M(MatchType::kNotEqual, "bar", "x")}}) {
    EXPECT_THAT(db_->Select({INT64_MIN, INT64_MAX}, ms),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-empty matcher")));
  }
}

TEST_F(TSDBTest, LabelNamesAndValues) {
  Open();
  BatchBuilder b;
  b.Add({{"__name__", "a"}, {"job", "x"}}, {{kStart, 1}});
  b.Add({{"__name__", "b"}, {"job", "y"}, {"zone", "z1"}}, {{kStart, 1}});
  MustAppend(b);
  ASSERT_OK_AND_ASSIGN(auto names, db_->LabelNames({}, INT64_MIN, INT64_MAX));
  EXPECT_THAT(names, ElementsAre("__name__", "job", "zone"));
  ASSERT_OK_AND_ASSIGN(names, db_->LabelNames({Eq("__name__", "a")}, INT64_MIN, INT64_MAX));
  EXPECT_THAT(names, ElementsAre("__name__", "job"));
  ASSERT_OK_AND_ASSIGN(auto values, db_->LabelValues("job", {}, INT64_MIN, INT64_MAX));
  EXPECT_THAT(values, ElementsAre("x", "y"));
  ASSERT_OK_AND_ASSIGN(values, db_->LabelValues("job", {Eq("zone", "z1")}, INT64_MIN, INT64_MAX));
  EXPECT_THAT(values, ElementsAre("y"));
  // Only series with samples at or after mint count.
  MustAppend(BatchBuilder().Add({{"__name__", "c"}, {"job", "w"}}, {{kStart + 60000, 1}}));
  ASSERT_OK_AND_ASSIGN(values, db_->LabelValues("job", {}, kStart + 1, kStart + 120000));
  EXPECT_THAT(values, ElementsAre("w"));
  ASSERT_OK_AND_ASSIGN(names, db_->LabelNames({}, kStart + 1, kStart + 120000));
  EXPECT_THAT(names, ElementsAre("__name__", "job"));
  // Nor series whose first sample is after maxt, also once sealed and reopened.
  for (int reopen = 0; reopen < 2; reopen++) {
    SCOPED_TRACE(reopen);
    ASSERT_OK_AND_ASSIGN(values, db_->LabelValues("job", {}, kStart - 1000, kStart + 59999));
    EXPECT_THAT(values, ElementsAre("x", "y"));
    ASSERT_OK_AND_ASSIGN(names, db_->LabelNames({}, kStart - 1000, kStart + 59999));
    EXPECT_THAT(names, ElementsAre("__name__", "job", "zone"));
    ASSERT_OK_AND_ASSIGN(values, db_->LabelValues("job", {Eq("job", "w")}, kStart, kStart + 59999));
    EXPECT_THAT(values, ElementsAre());
    ASSERT_OK_AND_ASSIGN(values, db_->LabelValues("job", {}, kStart + 60000, kStart + 60000));
    EXPECT_THAT(values, ElementsAre("w"));
    ASSERT_OK(db_->Flush());
    Open();
  }
}

TEST_F(TSDBTest, OutOfOrderWithinWindowIsMergedOnRead) {
  opts_.ooo_window = absl::Minutes(10);
  opts_.chunk_samples = 4;
  Open();
  const BatchBuilder::LabelPairs ls = {{"__name__", "m"}};
  for (int64_t t : {10, 20, 30, 40, 50, 60}) {
    MustAppend(BatchBuilder().Add(ls, {{kStart + t * 1000, static_cast<double>(t)}}));
  }
  AppendResult r = MustAppend(BatchBuilder().Add(ls, {{kStart + 25000, 25}, {kStart + 5000, 5}}));
  EXPECT_EQ(r.appended, 2);
  // Older than newest - window.
  r = MustAppend(BatchBuilder().Add(ls, {{kStart + 60000 - 11 * 60000, 1}}));
  EXPECT_EQ(r.rejected, 1);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("too old"));
  std::vector<Sample> got = Samples({Eq("__name__", "m")});
  EXPECT_THAT(Times(got), ElementsAre(kStart + 5000, kStart + 10000, kStart + 20000, kStart + 25000,
                                      kStart + 30000, kStart + 40000, kStart + 50000, kStart + 60000));
  EXPECT_EQ(got[3].v, 25);
  // Survives a flush (the out-of-order samples become their own chunk) and a reopen.
  ASSERT_OK(db_->Flush());
  Open();
  EXPECT_EQ(Samples({Eq("__name__", "m")}).size(), 8u);
  EXPECT_EQ(db_->GetStats().head_samples, 0);
}

TEST_F(TSDBTest, SelectSortsSeriesByLabels) {
  Open();
  // Byte order of the canonical encodings differs from label order here
  // ("a" < "ab" as names, but "a\xff" > "ab").
  const std::vector<BatchBuilder::LabelPairs> sets = {
      {{"__name__", "m"}, {"ab", "1"}},           {{"__name__", "m"}, {"a", "z"}},
      {{"__name__", "m"}, {"a", "z"}, {"b", ""}},  // same as the previous one
      {{"__name__", "m"}, {"a", "z"}, {"c", "1"}}, {{"__name__", "m"}, {"a", "z-"}},
      {{"__name__", "m"}, {"a", "!"}},        {{"__name__", "m2"}},
      {{"__name__", "m"}},
  };
  BatchBuilder b;
  for (const auto& ls : sets) b.Add(ls, {{kStart, 1}});
  MustAppend(b);
  ASSERT_OK_AND_ASSIGN(query::SelectResult res,
                       db_->Select({kStart, kStart}, {M(MatchType::kRegexMatch, "__name__", ".+")}));
  std::vector<std::string> got;
  for (const Series& s : res.series) got.push_back(s.labels.ToString());
  EXPECT_THAT(got, ElementsAre("m{}", "m{a=\"!\"}", "m{a=\"z\"}", "m{a=\"z\", c=\"1\"}",
                               "m{a=\"z-\"}", "m{ab=\"1\"}", "m2{}"));
}

// Reads of any window give exactly the samples of a read of everything in that
// window: in-order and out-of-order chunks, heads, partition boundaries, and
// before and after a reopen (which forgets which chunks were out of order).
TEST_F(TSDBTest, WindowedReadsAgreeWithFullReads) {
  opts_.ooo_window = absl::Hours(3);
  opts_.chunk_samples = 6;
  opts_.partition = absl::Minutes(10);
  Open();
  const BatchBuilder::LabelPairs in_order = {{"__name__", "a"}};
  const BatchBuilder::LabelPairs with_ooo = {{"__name__", "b"}};
  std::mt19937 rng(7);
  int64_t t = kStart;
  for (int i = 0; i < 150; i++) {
    t += 15000 + static_cast<int64_t>(rng() % 3) * 15000;
    clock_.Set(absl::FromUnixMillis(t));
    BatchBuilder b;
    b.Add(in_order, {{t, static_cast<double>(i)}});
    std::vector<Sample> bs = {{t, static_cast<double>(i)}};
    if (i % 2 == 1) {  // out-of-order chunks that span the newest in-order chunk's start
      bs.push_back({t - 1000 - static_cast<int64_t>(rng() % 600000), -1.0 * i});
      bs.push_back({t - 1000 - static_cast<int64_t>(rng() % 60000), -2.0 * i});
    }
    b.Add(with_ooo, bs);
    MustAppend(b);
    if (i == 100) {
      ASSERT_OK(db_->Flush());
    }
  }
  ASSERT_GT(Samples({Eq("__name__", "b")}).size(), Samples({Eq("__name__", "a")}).size() + 10);
  auto check_windows = [&] {
    for (const auto* ls : {&in_order, &with_ooo}) {
      const std::vector<Sample> all = Samples({Eq("__name__", (*ls)[0].second)});
      ASSERT_GE(all.size(), 150u);
      for (int64_t len : {0, 1000, 60000, 300000, 3600000}) {
        for (int64_t maxt = t + 1000; maxt > kStart; maxt -= 37000) {
          std::vector<Sample> want;
          for (const Sample& s : all) {
            if (s.t >= maxt - len && s.t <= maxt) want.push_back(s);
          }
          const std::vector<Sample> got = Samples({Eq("__name__", (*ls)[0].second)}, maxt - len, maxt);
          ASSERT_EQ(Times(got), Times(want)) << (*ls)[0].second << " [" << maxt - len << ", " << maxt << "]";
        }
      }
    }
  };
  check_windows();
  Open();
  check_windows();
  // After the reopen, newly sealed chunks make windowed reads cheap again; still the same answers.
  for (int i = 0; i < 20; i++) {
    t += 15000;
    clock_.Set(absl::FromUnixMillis(t));
    MustAppend(BatchBuilder().Add(in_order, {{t, 1.0}}).Add(with_ooo, {{t, 1.0}}));
  }
  check_windows();
}

TEST_F(TSDBTest, DuplicatesAcceptedConflictsRejected) {
  opts_.chunk_samples = 3;
  Open();
  const BatchBuilder::LabelPairs ls = {{"__name__", "m"}, {"job", "j"}};
  std::vector<Sample> samples;
  for (int i = 0; i < 10; i++) samples.push_back({kStart + i * 1000, i * 1.5});
  AppendResult r = MustAppend(BatchBuilder().Add(ls, samples));
  EXPECT_EQ(r.appended, 10);
  // A resend of everything (some sealed, some in the head) is idempotent.
  r = MustAppend(BatchBuilder().Add(ls, samples));
  EXPECT_EQ(r.appended, 0);
  EXPECT_EQ(r.duplicates, 10);
  EXPECT_EQ(r.rejected, 0);
  // Same timestamp, other value: rejected, naming the series and timestamp.
  r = MustAppend(BatchBuilder().Add(ls, {{kStart + 1000, 99}, {kStart + 9000, 99}, {kStart + 10000, 7}}));
  EXPECT_EQ(r.rejected, 2);
  EXPECT_EQ(r.appended, 1);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_THAT(r.errors[0], HasSubstr("m{job=\"j\"}"));
  EXPECT_THAT(r.errors[0], HasSubstr(absl::StrCat("t=", kStart + 1000)));
  EXPECT_THAT(r.errors[0], HasSubstr("conflicts"));
  std::vector<Sample> got = Samples({Eq("__name__", "m")});
  ASSERT_EQ(got.size(), 11u);
  EXPECT_EQ(got[1].v, 1.5);
  // Still true after a reopen (sealed marks and max_t are persisted).
  Open();
  r = MustAppend(BatchBuilder().Add(ls, {{kStart + 10000, 7}, {kStart + 2000, 3}, {kStart + 2000, 4}}));
  EXPECT_EQ(r.duplicates, 2);
  EXPECT_EQ(r.rejected, 1);
}

TEST_F(TSDBTest, FutureSamplesRejected) {
  Open();
  AppendResult r = MustAppend(BatchBuilder().Add(
      {{"__name__", "m"}}, {{kStart + 9 * 60000, 1}, {kStart + 11 * 60000, 2}}));
  EXPECT_EQ(r.appended, 1);
  EXPECT_EQ(r.rejected, 1);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr("future"));
  // The smallest int64 marks "no sample yet" and cannot be stored.
  r = MustAppend(BatchBuilder().Add({{"__name__", "n"}}, {{INT64_MIN, 0}, {INT64_MIN + 1, 0}}));
  EXPECT_EQ(r.rejected, 1);
  EXPECT_EQ(r.appended, 1);
}

TEST_F(TSDBTest, StaleMarkerKeptDistinct) {
  Open();
  const BatchBuilder::LabelPairs ls = {{"__name__", "m"}};
  MustAppend(BatchBuilder().Add(ls, {{kStart, std::nan("")}, {kStart + 1000, StaleNaN()}, {kStart + 2000, 1}}));
  // A stale marker conflicts with an ordinary NaN at the same time and vice versa.
  AppendResult r = MustAppend(BatchBuilder().Add(ls, {{kStart, StaleNaN()}, {kStart + 1000, std::nan("")}}));
  EXPECT_EQ(r.rejected, 2);
  EXPECT_THAT(r.errors[0], HasSubstr("stale marker"));
  r = MustAppend(BatchBuilder().Add(ls, {{kStart + 1000, StaleNaN()}}));
  EXPECT_EQ(r.duplicates, 1);
  for (int reopen = 0; reopen < 2; reopen++) {
    std::vector<Sample> got = Samples({Eq("__name__", "m")});
    ASSERT_EQ(got.size(), 3u);
    EXPECT_TRUE(std::isnan(got[0].v));
    EXPECT_FALSE(IsStaleNaN(got[0].v));
    EXPECT_TRUE(IsStaleNaN(got[1].v));
    ASSERT_OK(db_->Flush());
    Open();
  }
}

TEST_F(TSDBTest, BadLabelsRejectNothingApplied) {
  Open();
  const std::vector<BatchBuilder::LabelPairs> bad = {
      {{"job", "x"}},                                  // no metric name
      {{"__name__", "1up"}},                            // bad metric name
      {{"__name__", "up"}, {"bad-name", "x"}},          // bad label name
      {{"__name__", "up"}, {"a", "1"}, {"a", "2"}},     // duplicate name
      {{"__name__", "up"}, {"a", "\xff\xfe"}},          // not UTF-8
      {{"__name__", "up"}, {"a", std::string(5000, 'x')}},  // too long
  };
  for (const auto& labels : bad) {
    SCOPED_TRACE(labels.back().first);
    BatchBuilder b;
    b.Add({{"__name__", "good"}}, {{kStart, 1}});
    b.Add(labels, {{kStart, 1}});
    EXPECT_THAT(db_->Append(b.batch()), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  Stats st = db_->GetStats();
  EXPECT_EQ(st.series, 0);
  EXPECT_EQ(st.samples_appended_total, 0);
  EXPECT_TRUE(Samples({Eq("__name__", "good")}).empty());
  // Value bytes 0xff could forge another series' canonical encoding.
  MustAppend(BatchBuilder().Add({{"__name__", "up"}, {"a", "x"}, {"b", "y"}}, {{kStart, 1}}));
  EXPECT_THAT(db_->Append(BatchBuilder().Add({{"__name__", "up"}, {"a", "x\xff" "b\xffy"}}, {{kStart, 2}}).batch()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  opts_.limits.max_labels_per_series = 2;
  Open();
  EXPECT_THAT(db_->Append(BatchBuilder().Add({{"__name__", "up"}, {"a", "1"}, {"b", "2"}}, {{kStart, 1}}).batch()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit")));
}

TEST_F(TSDBTest, RecoversHeadAndSealedChunksAfterReopen) {
  opts_.chunk_samples = 5;
  Open();
  std::vector<Sample> want;
  for (int i = 0; i < 13; i++) {  // two sealed chunks and a head of 3
    want.push_back({kStart + i * 15000, static_cast<double>(i * i)});
    MustAppend(BatchBuilder().Add({{"__name__", "m"}, {"k", "v"}}, {want.back()}));
  }
  MustAppend(BatchBuilder().Add({{"__name__", "n"}}, {{kStart, 42}}));  // never sealed
  for (int reopen = 0; reopen < 2; reopen++) {
    SCOPED_TRACE(reopen);
    Open();
    std::vector<Sample> got = Samples({Eq("__name__", "m")});
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); i++) {
      EXPECT_EQ(got[i].t, want[i].t);
      EXPECT_EQ(got[i].v, want[i].v);
    }
    EXPECT_EQ(Samples({Eq("__name__", "n")}).size(), 1u);
    Stats st = db_->GetStats();
    EXPECT_EQ(st.series, 2);
    EXPECT_EQ(st.head_samples, 4);
    EXPECT_GT(st.recovery_time, absl::ZeroDuration());
  }
  // Continuing after recovery keeps the series' order rules.
  AppendResult r = MustAppend(BatchBuilder().Add({{"__name__", "m"}, {"k", "v"}},
                                                  {{kStart + 13 * 15000, 1}, {kStart + 12 * 15000, 144}}));
  EXPECT_EQ(r.appended, 1);
  EXPECT_EQ(r.duplicates, 1);
  // New series after recovery get fresh ids.
  MustAppend(BatchBuilder().Add({{"__name__", "o"}}, {{kStart, 1}}));
  Open();
  EXPECT_EQ(db_->GetStats().series, 3);
  EXPECT_EQ(Samples({Eq("__name__", "m")}).size(), 14u);
  EXPECT_EQ(Samples({Eq("__name__", "o")}).size(), 1u);
}

TEST_F(TSDBTest, ReplaySkipsSamplesSealedMidRecord) {
  opts_.chunk_samples = 5;
  Open();
  // One Append whose series is sealed twice within the record, the same series
  // repeated in the batch, and an out-of-order sample.
  std::vector<Sample> first, second;
  for (int i = 0; i < 8; i++) first.push_back({kStart + i * 1000, i * 0.25});
  for (int i = 8; i < 13; i++) second.push_back({kStart + i * 1000, i * 0.25});
  second.push_back({kStart + 500, 7});
  BatchBuilder b;
  b.Add({{"__name__", "m"}}, first);
  b.Add({{"__name__", "m"}}, second);
  AppendResult r = MustAppend(b);
  EXPECT_EQ(r.appended, 14);
  for (int reopen = 0; reopen < 3; reopen++) {
    SCOPED_TRACE(reopen);
    Open();
    std::vector<Sample> got = Samples({Eq("__name__", "m")});
    ASSERT_EQ(got.size(), 14u);
    EXPECT_EQ(got[1].t, kStart + 500);
    EXPECT_EQ(got[1].v, 7);
    EXPECT_EQ(got[13].v, 12 * 0.25);
    EXPECT_EQ(db_->GetStats().head_samples, 4);  // 3 in order + 1 out of order
  }
}

TEST_F(TSDBTest, WalSegmentsAreDeletedOnceSealed) {
  opts_.wal_segment_bytes = 4096;
  opts_.wal_max_bytes = 16384;
  opts_.chunk_samples = 20;
  Open();
  for (int i = 0; i < 400; i++) {
    BatchBuilder b;
    for (int s = 0; s < 10; s++) b.Add({{"__name__", "m"}, {"s", std::to_string(s)}}, {{kStart + i * 1000, i * 1.0}});
    MustAppend(b);
  }
  Stats st = db_->GetStats();
  EXPECT_LT(st.wal_bytes, 40000);
  Open();
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, db_->Select({INT64_MIN, INT64_MAX}, {Eq("__name__", "m")}));
  ASSERT_EQ(r.series.size(), 10u);
  for (const Series& s : r.series) {
    ASSERT_EQ(s.samples.size(), 400u);
    for (int i = 0; i < 400; i++) EXPECT_EQ(s.samples[i].v, i);
  }
}

TEST_F(TSDBTest, RetentionDropsWholePartitions) {
  opts_.retention = absl::Hours(4);
  opts_.partition = absl::Hours(2);
  opts_.ooo_window = absl::Hours(24);
  Open();
  const BatchBuilder::LabelPairs ls = {{"__name__", "m"}};
  for (int h = 0; h < 10; h++) {
    clock_.Set(absl::FromUnixMillis(kStart + h * 3600000LL));
    MustAppend(BatchBuilder().Add(ls, {{kStart + h * 3600000LL, static_cast<double>(h)}}));
  }
  ASSERT_OK(db_->Flush());
  EXPECT_EQ(db_->GetStats().partitions, 5);
  // now = start+9h: partitions ending at or before start+5h go (the first two).
  ASSERT_OK_AND_ASSIGN(int dropped, db_->ApplyRetention());
  EXPECT_EQ(dropped, 2);
  EXPECT_EQ(db_->GetStats().partitions, 3);
  EXPECT_THAT(Times(Samples({Eq("__name__", "m")})),
              ElementsAre(kStart + 4 * 3600000LL, kStart + 5 * 3600000LL, kStart + 6 * 3600000LL,
                          kStart + 7 * 3600000LL, kStart + 8 * 3600000LL, kStart + 9 * 3600000LL));
  ASSERT_OK_AND_ASSIGN(dropped, db_->ApplyRetention());
  EXPECT_EQ(dropped, 0);
  // Samples in dropped partitions are rejected, also after a reopen.
  Open();
  AppendResult r = MustAppend(BatchBuilder().Add({{"__name__", "other"}}, {{kStart + 1000, 1}}));
  EXPECT_EQ(r.rejected, 1);
  EXPECT_THAT(r.errors[0], HasSubstr("retention"));
  EXPECT_EQ(Samples({Eq("__name__", "m")}).size(), 6u);
}

TEST_F(TSDBTest, RetentionForgetsSeriesWithoutData) {
  opts_.retention = absl::Hours(4);
  Open();
  MustAppend(BatchBuilder().Add({{"__name__", "old"}}, {{kStart, 1}}));
  clock_.Set(absl::FromUnixMillis(kStart + 10 * 3600000LL));
  ASSERT_EQ(MustAppend(BatchBuilder().Add({{"__name__", "new"}}, {{kStart + 10 * 3600000LL, 1}})).appended, 1);
  ASSERT_OK(db_->ApplyRetention().status());
  // "old" still has its head in memory: kept until sealed.
  EXPECT_EQ(db_->GetStats().series, 2);
  ASSERT_OK(db_->Flush());
  ASSERT_OK(db_->ApplyRetention().status());  // nothing more to drop, but series are checked
  ASSERT_OK_AND_ASSIGN(auto values, db_->LabelValues("__name__", {}, INT64_MIN, INT64_MAX));
  EXPECT_THAT(values, ElementsAre("new"));
  EXPECT_EQ(db_->GetStats().series, 1);
  Open();
  EXPECT_EQ(db_->GetStats().series, 1);
}

TEST_F(TSDBTest, ShardExportImportDigestAndDrop) {
  opts_.chunk_samples = 4;
  Open();
  for (int i = 0; i < 40; i++) {
    BatchBuilder b;
    b.Add({{"__name__", "m"}, {"i", std::to_string(i)}}, {{kStart, 1.0 * i}, {kStart + 1000, 2.0 * i}});
    MustAppend(b);
  }
  std::vector<uint32_t> shards = db_->ListShards();
  ASSERT_GE(shards.size(), 2u);
  for (uint32_t s : shards) EXPECT_LT(s, opts_.num_shards);

  TempDir other_dir;
  Options other_opts = opts_;
  other_opts.dir = other_dir.path();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<TSDB> other, TSDB::Open(other_opts));
  const uint32_t shard = shards[0];
  int exported = 0;
  std::vector<std::string> order;
  ASSERT_OK(db_->ExportShard(shard, INT64_MIN, INT64_MAX, [&](std::vector<Series> batch) {
    std::vector<std::vector<std::pair<std::string, std::string>>> keep;
    BatchBuilder b;
    for (const Series& s : batch) {
      EXPECT_EQ(ShardOf(s.labels.Hash(), opts_.num_shards), shard);
      BatchBuilder::LabelPairs ls;
      for (const Label& l : s.labels) ls.emplace_back(l.name, l.value);
      b.Add(ls, s.samples);
      order.push_back(s.labels.ToString());
      exported++;
    }
    absl::StatusOr<AppendResult> r = other->Append(b.batch());
    if (!r.ok()) return r.status();
    return absl::OkStatus();
  }));
  EXPECT_GT(exported, 0);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  EXPECT_THAT(other->ListShards(), ElementsAre(shard));
  ASSERT_OK_AND_ASSIGN(uint64_t d1, db_->ShardDigest(shard, INT64_MIN, INT64_MAX));
  ASSERT_OK_AND_ASSIGN(uint64_t d2, other->ShardDigest(shard, INT64_MIN, INT64_MAX));
  EXPECT_EQ(d1, d2);
  ASSERT_OK_AND_ASSIGN(uint64_t d3, db_->ShardDigest(shards[1], INT64_MIN, INT64_MAX));
  EXPECT_NE(d1, d3);
  // A digest over part of the time range differs; one more sample changes it.
  ASSERT_OK_AND_ASSIGN(uint64_t d4, db_->ShardDigest(shard, kStart, kStart));
  EXPECT_NE(d1, d4);

  // The fn's error stops the export.
  EXPECT_THAT(db_->ExportShard(shard, INT64_MIN, INT64_MAX,
                               [](std::vector<Series>) { return absl::AbortedError("stop"); }),
              StatusIs(absl::StatusCode::kAborted));

  const int64_t before = db_->GetStats().series;
  EXPECT_EQ(db_->GetStats().head_samples, 80);  // 40 series x 2, none sealed yet
  EXPECT_EQ(db_->GetStats().head_series, 40);
  ASSERT_OK(db_->DropShard(shard));
  EXPECT_EQ(db_->GetStats().head_series, 0);  // dropped, the rest sealed by the flush
  EXPECT_EQ(db_->GetStats().head_samples, 0);
  EXPECT_EQ(db_->GetStats().series, before - exported);
  EXPECT_THAT(db_->ListShards(), ::testing::Not(::testing::Contains(shard)));
  ASSERT_OK_AND_ASSIGN(uint64_t d5, db_->ShardDigest(shard, INT64_MIN, INT64_MAX));
  EXPECT_EQ(d5, 0u);
  // The drop survives a reopen (the WAL cannot resurrect it) and the rest stays.
  Open();
  EXPECT_EQ(db_->GetStats().series, before - exported);
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, db_->Select({INT64_MIN, INT64_MAX}, {Eq("__name__", "m")}));
  EXPECT_EQ(static_cast<int>(r.series.size()), 40 - exported);
  for (const Series& s : r.series) {
    EXPECT_NE(ShardOf(s.labels.Hash(), opts_.num_shards), shard);
    EXPECT_EQ(s.samples.size(), 2u);
  }
  // Re-importing into the dropped shard works.
  MustAppend(BatchBuilder().Add({{"__name__", "m"}, {"i", "0"}}, {{kStart, 0}}));
}

TEST_F(TSDBTest, ConcurrentAppendersAllLand) {
  opts_.sync = true;
  Open();
  constexpr int kThreads = 4, kBatches = 30, kSeries = 20;
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; th++) {
    threads.emplace_back([&, th] {
      for (int b = 0; b < kBatches; b++) {
        BatchBuilder bb;
        for (int s = 0; s < kSeries; s++) {
          bb.Add({{"__name__", "m"}, {"th", std::to_string(th)}, {"s", std::to_string(s)}},
                 {{kStart + b * 1000, static_cast<double>(b)}});
        }
        absl::StatusOr<AppendResult> r = db_->Append(bb.batch());
        ASSERT_TRUE(r.ok());
        ASSERT_EQ(r->appended, kSeries);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(db_->GetStats().samples_appended_total, kThreads * kBatches * kSeries);
  Open();
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, db_->Select({INT64_MIN, INT64_MAX}, {Eq("__name__", "m")}));
  ASSERT_EQ(r.series.size(), static_cast<size_t>(kThreads * kSeries));
  for (const Series& s : r.series) EXPECT_EQ(s.samples.size(), static_cast<size_t>(kBatches));
}

TEST_F(TSDBTest, ReadersSeeContiguousPrefixesWhileWritingAndFlushing) {
  opts_.chunk_samples = 6;
  Open();
  constexpr int kWriters = 2, kSeries = 10, kRounds = 150;
  std::atomic<int> writers_done{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; w++) {
    threads.emplace_back([&, w] {
      for (int r = 0; r < kRounds; r++) {
        BatchBuilder b;
        for (int s = 0; s < kSeries; s++) {
          b.Add({{"__name__", "m"}, {"w", std::to_string(w)}, {"s", std::to_string(s)}},
                {{kStart + r * 1000, static_cast<double>(r)}});
        }
        absl::StatusOr<AppendResult> res = db_->Append(b.batch());
        ASSERT_TRUE(res.ok() && res->appended == kSeries);
      }
      writers_done++;
    });
  }
  threads.emplace_back([&] {  // flusher
    while (writers_done.load() < kWriters) ASSERT_OK(db_->Flush());
  });
  int checks = 0;
  while (writers_done.load() < kWriters || checks == 0) {
    absl::StatusOr<query::SelectResult> r = db_->Select({INT64_MIN, INT64_MAX}, {Eq("__name__", "m")});
    ASSERT_TRUE(r.ok()) << r.status();
    for (const Series& s : r->series) {
      for (size_t i = 0; i < s.samples.size(); i++) {
        ASSERT_EQ(s.samples[i].t, kStart + static_cast<int64_t>(i) * 1000) << s.labels.ToString();
        ASSERT_EQ(s.samples[i].v, i);
      }
    }
    checks++;
  }
  for (auto& t : threads) t.join();
  ASSERT_OK_AND_ASSIGN(query::SelectResult r, db_->Select({INT64_MIN, INT64_MAX}, {Eq("__name__", "m")}));
  ASSERT_EQ(r.series.size(), static_cast<size_t>(kWriters * kSeries));
  for (const Series& s : r.series) EXPECT_EQ(s.samples.size(), static_cast<size_t>(kRounds));
}

}  // namespace
}  // namespace vigil::storage
