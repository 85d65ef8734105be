#include "common/clock.h"

#include <thread>

#include "common/event.h"
#include "gtest/gtest.h"

namespace vigil {
namespace {

TEST(FakeClockTest, WallClockStepsDoNotMoveTheMonotonicClock) {
  const absl::Time start = absl::FromUnixSeconds(1'700'000'000);
  FakeClock clock(start);
  const absl::Time deadline = clock.MonotonicNow() + absl::Seconds(5);
  clock.Set(start - absl::Hours(1));  // the wall clock jumps back
  EXPECT_LT(clock.MonotonicNow(), deadline);
  EXPECT_EQ(deadline - clock.MonotonicNow(), absl::Seconds(5));
  clock.Set(start + absl::Hours(1));  // and forward
  EXPECT_LT(clock.MonotonicNow(), deadline);
  EXPECT_EQ(clock.Now(), start + absl::Hours(1));
  clock.Advance(absl::Seconds(4));
  EXPECT_LT(clock.MonotonicNow(), deadline);
  EXPECT_EQ(clock.Now(), start + absl::Hours(1) + absl::Seconds(4));
  clock.Advance(absl::Seconds(1));
  EXPECT_GE(clock.MonotonicNow(), deadline);
}

TEST(RealClockTest, MonotonicNowNeverGoesBack) {
  absl::Time last = RealClock::Get()->MonotonicNow();
  for (int i = 0; i < 1000; ++i) {
    const absl::Time now = RealClock::Get()->MonotonicNow();
    ASSERT_GE(now, last);
    last = now;
  }
}

TEST(EventTest, TimedWaitSeesANotification) {
  Event e;
  EXPECT_FALSE(e.HasBeenNotified());
  EXPECT_FALSE(e.WaitWithTimeout(absl::ZeroDuration()));
  EXPECT_FALSE(e.WaitWithTimeout(absl::Milliseconds(1)));
  std::thread t([&e] { e.Notify(); });
  EXPECT_TRUE(e.WaitWithTimeout(absl::InfiniteDuration()));
  t.join();
  EXPECT_TRUE(e.HasBeenNotified());
  EXPECT_TRUE(e.WaitWithTimeout(absl::ZeroDuration()));
  e.Wait();
}

TEST(EventTest, TimeoutIsMeasuredOnTheMonotonicClock) {
  Event e;
  const absl::Time t0 = RealClock::Get()->MonotonicNow();
  EXPECT_FALSE(e.WaitWithTimeout(absl::Milliseconds(20)));
  EXPECT_GE(RealClock::Get()->MonotonicNow() - t0, absl::Milliseconds(20));
}

}  // namespace
}  // namespace vigil
