// alerting/testing/service_helpers.h
//
// Test helpers for AlertingService tests: an Alertmanager client that records what it is sent,
// and readers of GET /api/v1/alerts. Test-only; RecordingAlertmanager is thread-safe.
#ifndef VIGIL_ALERTING_TESTING_SERVICE_HELPERS_H_
#define VIGIL_ALERTING_TESTING_SERVICE_HELPERS_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "alerting/notifier.h"
#include "alerting/service.h"
#include "glog/logging.h"
#include "nlohmann/json.hpp"

namespace vigil::alerting {

// Records every alert posted to the Alertmanager.
class RecordingAlertmanager : public AlertmanagerClient {
 public:
  absl::Status Post(const std::string& url, const std::string& json) override {
    absl::MutexLock l(&mu_);
    for (const nlohmann::json& a : nlohmann::json::parse(json)) posted_.push_back(a);
    return absl::OkStatus();
  }
  std::vector<nlohmann::json> posted() {
    absl::MutexLock l(&mu_);
    return posted_;
  }

 private:
  absl::Mutex mu_;
  std::vector<nlohmann::json> posted_ ABSL_GUARDED_BY(mu_);
};

// The "alerts" of GET /api/v1/alerts on `s`.
inline std::vector<nlohmann::json> AlertsOf(AlertingService& s) {
  return nlohmann::json::parse(s.AlertsJSON())["alerts"].get<std::vector<nlohmann::json>>();
}

// The state of the first alert ("pending", "firing"), "inactive" without one.
inline std::string FirstAlertState(AlertingService& s) {
  std::vector<nlohmann::json> alerts = AlertsOf(s);
  return alerts.empty() ? "inactive" : alerts[0]["state"].get<std::string>();
}

// RFC 3339 as the API prints it; CHECK-fails on anything else.
inline absl::Time ParseApiTime(const std::string& s) {
  absl::Time t;
  std::string err;
  CHECK(absl::ParseTime(absl::RFC3339_full, s, &t, &err)) << s << ": " << err;
  return t;
}

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_TESTING_SERVICE_HELPERS_H_
