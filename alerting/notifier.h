// alerting/notifier.h
//
// Notifier: delivers alerts to Alertmanagers over API v2 (POST /api/v2/alerts),
// like Prometheus' notifier package: alerts get the external labels they lack
// and a generatorURL, wait in one bounded queue (the oldest are dropped and
// counted when it is full), and go out in batches of at most 64 to every
// Alertmanager. A failed POST is retried with exponential backoff; a 4xx answer
// or the last attempt gives the batch up for that Alertmanager.
//
// The core is deterministic: Pump() does the sending through an injected
// AlertmanagerClient and reads time from an injected Clock; NotifierRunner owns a
// thread that pumps. HttpAlertmanagerClient is the real client (cpp-httplib).
// Thread-safe: Send/Enqueue may be called from any thread while another pumps.
#ifndef VIGIL_ALERTING_NOTIFIER_H_
#define VIGIL_ALERTING_NOTIFIER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "alerting/evaluator.h"
#include "alerting/manager.h"
#include "common/clock.h"
#include "common/labels.h"

namespace vigil::alerting {

// One alert as Alertmanager's API v2 takes it (models.PostableAlert).
struct NotifierAlert {
  Labels labels;
  StringPairs annotations;
  absl::Time starts_at = absl::InfinitePast();  // Omitted when unset.
  absl::Time ends_at = absl::InfinitePast();    // Omitted when unset.
  std::string generator_url;
};

// Prometheus' sendAlerts (cmd/prometheus/main.go): startsAt = firedAt, endsAt =
// resolvedAt if resolved else validUntil, generatorURL = external URL + the
// expression's table link.
NotifierAlert ToNotifierAlert(const Alert& alert, absl::string_view expr,
                              absl::string_view external_url);

// The JSON body of POST /api/v2/alerts: a list of {labels, annotations,
// startsAt, endsAt, generatorURL}; times in RFC 3339 with milliseconds, UTC.
std::string EncodeAlertsJSON(const std::vector<NotifierAlert>& alerts);

// Does one HTTP POST. Implementations must be thread-safe.
class AlertmanagerClient {
 public:
  virtual ~AlertmanagerClient() = default;
  // POSTs `json` to `url`. OK for 2xx; kInvalidArgument for 4xx (not retried);
  // kUnavailable for connection errors, timeouts and 5xx (retried).
  virtual absl::Status Post(const std::string& url, const std::string& json) = 0;
};

// cpp-httplib client for http:// URLs.
class HttpAlertmanagerClient : public AlertmanagerClient {
 public:
  explicit HttpAlertmanagerClient(absl::Duration timeout = absl::Seconds(10)) : timeout_(timeout) {}
  absl::Status Post(const std::string& url, const std::string& json) override;

 private:
  const absl::Duration timeout_;
};

struct NotifierOptions {
  // Alertmanager base URLs ("http://am:9093"); alerts go to <url>/api/v2/alerts.
  std::vector<std::string> alertmanager_urls;
  std::map<std::string, std::string> external_labels;
  std::string external_url;
  size_t queue_capacity = 10000;  // Prometheus' --alertmanager.notification-queue-capacity.
  size_t max_batch = 64;          // Prometheus' maxBatchSize.
  int max_attempts = 3;           // POSTs per batch and Alertmanager.
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(10);
};

// Exported as vigil_notifications_{sent,errors,dropped}_total and
// vigil_notifications_queue_length.
struct NotifierMetrics {
  std::map<std::string, int64_t> sent;    // Alerts delivered, by Alertmanager URL.
  std::map<std::string, int64_t> errors;  // Alerts given up, by Alertmanager URL.
  int64_t dropped = 0;                    // Alerts dropped because the queue was full.
  int64_t queue_length = 0;
};

class Notifier : public AlertSink {
 public:
  // `clock` and `client` must outlive the notifier.
  Notifier(const Clock* clock, AlertmanagerClient* client, NotifierOptions opts);
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // AlertSink: converts (ToNotifierAlert) and enqueues.
  void Send(absl::string_view expr, const std::vector<Alert>& alerts) override;
  // Adds missing external labels and enqueues, dropping the oldest when full.
  void Enqueue(std::vector<NotifierAlert> alerts);

  // Sends what is due now: takes the next batch if none is in flight, and POSTs
  // it to every Alertmanager that has not taken it and whose backoff has passed.
  // Returns after at most one POST per Alertmanager. Call from one thread.
  void Pump();
  // When Pump has something to do: now if a batch can be sent, the earliest
  // retry if all are backing off, InfiniteFuture if idle.
  absl::Time NextPump() const;

  NotifierMetrics metrics() const;

  // Called (outside the notifier's lock) after alerts are enqueued; NotifierRunner
  // uses it to wake up. nullptr to unset.
  void SetWakeup(std::function<void()> fn);

 private:
  struct Target {
    int attempts = 0;
    absl::Time next_attempt = absl::InfinitePast();
  };

  absl::Duration Backoff(int attempts) const;

  const Clock* const clock_;
  AlertmanagerClient* const client_;
  const NotifierOptions opts_;

  mutable absl::Mutex mu_;
  std::deque<NotifierAlert> queue_ ABSL_GUARDED_BY(mu_);
  NotifierMetrics metrics_ ABSL_GUARDED_BY(mu_);
  // The batch in flight and the Alertmanagers that still have to take it.
  std::string batch_json_ ABSL_GUARDED_BY(mu_);
  size_t batch_size_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Target> pending_ ABSL_GUARDED_BY(mu_);
  std::function<void()> wakeup_ ABSL_GUARDED_BY(mu_);
};

// Owns a thread that pumps the notifier when it has work. Deadlines are real
// time, so give the notifier a RealClock. Destroy the runner before the notifier.
class NotifierRunner {
 public:
  explicit NotifierRunner(Notifier* notifier);
  ~NotifierRunner();  // Stops and joins.
  NotifierRunner(const NotifierRunner&) = delete;
  NotifierRunner& operator=(const NotifierRunner&) = delete;
  // Wakes the thread (call after Send/Enqueue).
  void Kick();
  void Stop();

 private:
  void Loop();
  bool Woken() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || kicked_; }

  Notifier* const notifier_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // Last: starts after the fields above exist.
};

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_NOTIFIER_H_
