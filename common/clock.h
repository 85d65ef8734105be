// common/clock.h
//
// Clock: the only way Vigil code reads the time, so tests can inject a FakeClock.
// Only RealClock calls absl::Now(). Thread-safe.
//
// Two clocks: Now() is the wall clock, for what is data (sample timestamps, alert
// times, retention). MonotonicNow() is for timeouts, deadlines and timers: it
// never goes back, and wall-clock steps (NTP, an operator's `date`, libfaketime in
// jepsen/'s clock nemeses) do not move it.
#ifndef VIGIL_COMMON_CLOCK_H_
#define VIGIL_COMMON_CLOCK_H_

#include <chrono>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vigil {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Milliseconds since the Unix epoch, the unit of sample timestamps.
  int64_t NowMillis() const { return absl::ToUnixMillis(Now()); }
  // The monotonic clock as an absl::Time with no calendar meaning: compare it and
  // subtract it only with other MonotonicNow() readings of the same Clock. (A
  // Clock that does not override it has only its wall clock.)
  virtual absl::Time MonotonicNow() const { return Now(); }
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // std::chrono::steady_clock (CLOCK_MONOTONIC).
  absl::Time MonotonicNow() const override {
    return absl::UnixEpoch() + absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
  }
  // A process-wide instance; never destroyed.
  static RealClock* Get() {
    static RealClock* clock = new RealClock;
    return clock;
  }
};

// Both clocks start at `start`. Advance() moves both; Set() steps the wall clock
// only (a jump back or forward), as NTP or libfaketime would.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch()) : now_(start), monotonic_(start) {}
  absl::Time Now() const override {
    absl::MutexLock l(&mu_);
    return now_;
  }
  absl::Time MonotonicNow() const override {
    absl::MutexLock l(&mu_);
    return monotonic_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&mu_);
    now_ += d;
    monotonic_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock l(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  absl::Time monotonic_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vigil

#endif  // VIGIL_COMMON_CLOCK_H_
