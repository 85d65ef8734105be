// common/event.h
//
// Event: a one-shot signal (like absl::Notification) whose timed wait measures
// the monotonic clock. Use it for "sleep this long unless stopped" loops and for
// waiting on an answer with a timeout.
//
// Why not absl's timed waits: absl::Mutex::AwaitWithTimeout, CondVar::WaitWithTimeout
// and Notification::WaitForNotificationWithTimeout (Abseil 20220623) turn the timeout
// into an absolute deadline absl::Now() + timeout that the kernel checks against its
// own CLOCK_REALTIME. When the process' wall clock is off from the kernel's
// (libfaketime, as jepsen/'s clock nemeses run vigild) or steps while waiting, they
// return at once (a busy loop, or a timeout that never waited) or wait the offset
// too long. std::condition_variable's steady_clock waits use CLOCK_MONOTONIC.
//
// Thread-safe.
#ifndef VIGIL_COMMON_EVENT_H_
#define VIGIL_COMMON_EVENT_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/time/time.h"

namespace vigil {

class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // Wakes every waiter, now and later. Idempotent.
  void Notify() {
    {
      std::lock_guard<std::mutex> l(mu_);
      notified_ = true;
    }
    cv_.notify_all();
  }
  bool HasBeenNotified() const {
    std::lock_guard<std::mutex> l(mu_);
    return notified_;
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return notified_; });
  }
  // True once notified; false when `timeout` (monotonic) passed first. A zero or
  // negative timeout only looks.
  bool WaitWithTimeout(absl::Duration timeout) {
    std::unique_lock<std::mutex> l(mu_);
    if (timeout <= absl::ZeroDuration()) return notified_;
    if (timeout == absl::InfiniteDuration()) {
      cv_.wait(l, [this] { return notified_; });
      return true;
    }
    const auto deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
    return cv_.wait_until(l, deadline, [this] { return notified_; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;  // guarded by mu_
};

}  // namespace vigil

#endif  // VIGIL_COMMON_EVENT_H_
