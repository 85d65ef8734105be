#include "cluster/hints.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

SharedSeries SeriesWith(int samples, const std::string& name = "m") {
  Series s{Labels{{"__name__", name}}, {}};
  for (int i = 0; i < samples; ++i) s.samples.push_back({i, 1.0});
  return std::make_shared<const std::vector<Series>>(std::vector<Series>{s});
}

std::vector<uint32_t> ShardsOf(const std::vector<Hint>& hints) {
  std::vector<uint32_t> out;
  for (const Hint& h : hints) out.push_back(h.shard);
  return out;
}

TEST(HintStoreTest, TakeReturnsOldestFirstPerNode) {
  FakeClock clock;
  HintStore store(HintOptions(), &clock);
  store.Add(2, 10, SeriesWith(1));
  store.Add(3, 11, SeriesWith(1));
  store.Add(2, 12, SeriesWith(1));
  EXPECT_THAT(store.Targets(), ElementsAre(2, 3));
  EXPECT_THAT(ShardsOf(store.Take(2, 1)), ElementsAre(10));
  EXPECT_THAT(ShardsOf(store.Take(2, 10)), ElementsAre(12));
  EXPECT_THAT(store.Take(2, 10), IsEmpty());
  EXPECT_THAT(store.Targets(), ElementsAre(3));
  EXPECT_EQ(store.Stats(2).replayed, 2);
  EXPECT_EQ(store.Stats(2).added, 2);
  EXPECT_THAT(store.Take(99, 10), IsEmpty());
}

TEST(HintStoreTest, BoundsDropTheOldestAndCountThem) {
  FakeClock clock;
  HintOptions opts;
  opts.max_hints_per_node = 3;
  opts.max_samples_per_node = 100;
  HintStore store(opts, &clock);
  for (uint32_t i = 0; i < 5; ++i) store.Add(1, i, SeriesWith(10));
  HintStats st = store.Stats(1);
  EXPECT_EQ(st.hints, 3);
  EXPECT_EQ(st.samples, 30);
  EXPECT_EQ(st.dropped, 2);
  store.Add(1, 5, SeriesWith(85));  // 4 hints, 115 samples: the two oldest go
  st = store.Stats(1);
  EXPECT_EQ(st.dropped, 4);
  EXPECT_EQ(st.samples, 95);
  EXPECT_THAT(ShardsOf(store.Take(1, 10)), ElementsAre(4, 5));
  store.Add(1, 6, SeriesWith(101));  // alone over the bound
  EXPECT_EQ(store.Stats(1).hints, 0);
  EXPECT_EQ(store.Stats(1).dropped, 5);
}

TEST(HintStoreTest, OldHintsExpire) {
  FakeClock clock;
  HintOptions opts;
  opts.max_age = absl::Minutes(10);
  HintStore store(opts, &clock);
  store.Add(1, 1, SeriesWith(1));
  clock.Advance(absl::Minutes(6));
  store.Add(1, 2, SeriesWith(1));
  clock.Advance(absl::Minutes(6));
  EXPECT_THAT(ShardsOf(store.Take(1, 10)), ElementsAre(2));
  EXPECT_EQ(store.Stats(1).expired, 1);
  EXPECT_EQ(store.Stats(1).replayed, 1);
}

TEST(HintStoreTest, RequeuePutsHintsBackInFront) {
  FakeClock clock;
  HintStore store(HintOptions(), &clock);
  for (uint32_t i = 0; i < 4; ++i) store.Add(1, i, SeriesWith(2));
  std::vector<Hint> taken = store.Take(1, 2);
  EXPECT_EQ(store.Stats(1).samples, 4);
  store.Requeue(1, std::move(taken));
  HintStats st = store.Stats(1);
  EXPECT_EQ(st.hints, 4);
  EXPECT_EQ(st.samples, 8);
  EXPECT_EQ(st.replayed, 0);
  EXPECT_THAT(ShardsOf(store.Take(1, 10)), ElementsAre(0, 1, 2, 3));
}

}  // namespace
}  // namespace vigil::cluster
