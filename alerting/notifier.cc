#include "alerting/notifier.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "alerting/strutil.h"
#include "glog/logging.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace vigil::alerting {

NotifierAlert ToNotifierAlert(const Alert& alert, absl::string_view expr,
                              absl::string_view external_url) {
  NotifierAlert n;
  n.labels = alert.labels;
  n.annotations = alert.annotations;
  n.starts_at = alert.fired_at;
  n.ends_at = IsSet(alert.resolved_at) ? alert.resolved_at : alert.valid_until;
  n.generator_url = absl::StrCat(external_url, TableLinkForExpression(expr));
  return n;
}

namespace {

std::string FormatRFC3339Millis(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

}  // namespace

std::string EncodeAlertsJSON(const std::vector<NotifierAlert>& alerts) {
  nlohmann::json list = nlohmann::json::array();
  for (const NotifierAlert& a : alerts) {
    nlohmann::json j;
    j["labels"] = nlohmann::json::object();
    for (const Label& l : a.labels) j["labels"][l.name] = l.value;
    j["annotations"] = nlohmann::json::object();
    for (const auto& [k, v] : a.annotations) j["annotations"][k] = v;
    if (IsSet(a.starts_at)) j["startsAt"] = FormatRFC3339Millis(a.starts_at);
    if (IsSet(a.ends_at)) j["endsAt"] = FormatRFC3339Millis(a.ends_at);
    j["generatorURL"] = a.generator_url;
    list.push_back(std::move(j));
  }
  // Invalid UTF-8 in a label would make dump() throw; replace it instead.
  return list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status HttpAlertmanagerClient::Post(const std::string& url, const std::string& json) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat("only http:// Alertmanager URLs: ", url));
  }
  size_t slash = rest.find('/');
  std::string host(rest.substr(0, slash));
  std::string path = slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  httplib::Client client(absl::StrCat("http://", host));
  int64_t us = absl::ToInt64Microseconds(timeout_);
  client.set_connection_timeout(us / 1000000, us % 1000000);
  client.set_read_timeout(us / 1000000, us % 1000000);
  client.set_write_timeout(us / 1000000, us % 1000000);
  httplib::Result res = client.Post(path, json, "application/json");
  if (!res) {
    return absl::UnavailableError(
        absl::StrCat("POST ", url, ": ", httplib::to_string(res.error())));
  }
  if (res->status / 100 == 2) return absl::OkStatus();
  std::string msg = absl::StrCat("POST ", url, ": HTTP ", res->status, ": ", res->body.substr(0, 200));
  if (res->status / 100 == 4) return absl::InvalidArgumentError(msg);
  return absl::UnavailableError(msg);
}

Notifier::Notifier(const Clock* clock, AlertmanagerClient* client, NotifierOptions opts)
    : clock_(clock), client_(client), opts_(std::move(opts)) {
  CHECK(clock_ != nullptr);
  CHECK(client_ != nullptr);
  CHECK_GT(opts_.queue_capacity, 0);
  CHECK_GT(opts_.max_batch, 0);
  CHECK_GT(opts_.max_attempts, 0);
}

void Notifier::SetWakeup(std::function<void()> fn) {
  absl::MutexLock l(&mu_);
  wakeup_ = std::move(fn);
}

void Notifier::Send(absl::string_view expr, const std::vector<Alert>& alerts) {
  std::vector<NotifierAlert> out;
  out.reserve(alerts.size());
  for (const Alert& a : alerts) out.push_back(ToNotifierAlert(a, expr, opts_.external_url));
  Enqueue(std::move(out));
}

void Notifier::Enqueue(std::vector<NotifierAlert> alerts) {
  for (NotifierAlert& a : alerts) {
    for (const auto& [name, value] : opts_.external_labels) {
      if (!a.labels.Has(name)) a.labels.Set(name, value);
    }
  }
  std::function<void()> wakeup;
  {
    absl::MutexLock l(&mu_);
    for (NotifierAlert& a : alerts) queue_.push_back(std::move(a));
    if (queue_.size() > opts_.queue_capacity) {
      size_t drop = queue_.size() - opts_.queue_capacity;
      LOG(WARNING) << "alert notification queue full, dropping " << drop << " alerts";
      queue_.erase(queue_.begin(), queue_.begin() + drop);
      metrics_.dropped += drop;
    }
    metrics_.queue_length = queue_.size();
    wakeup = wakeup_;
  }
  if (wakeup) wakeup();
}

absl::Duration Notifier::Backoff(int attempts) const {
  absl::Duration d = opts_.initial_backoff;
  for (int i = 1; i < attempts && d < opts_.max_backoff; ++i) d *= 2;
  return std::min(d, opts_.max_backoff);
}

void Notifier::Pump() {
  std::string json;
  std::vector<std::string> targets;
  absl::Time now = clock_->Now();
  {
    absl::MutexLock l(&mu_);
    if (pending_.empty()) {
      if (queue_.empty() || opts_.alertmanager_urls.empty()) return;
      size_t n = std::min(opts_.max_batch, queue_.size());
      std::vector<NotifierAlert> batch(std::make_move_iterator(queue_.begin()),
                                       std::make_move_iterator(queue_.begin() + n));
      queue_.erase(queue_.begin(), queue_.begin() + n);
      metrics_.queue_length = queue_.size();
      batch_json_ = EncodeAlertsJSON(batch);
      batch_size_ = n;
      for (const std::string& url : opts_.alertmanager_urls) pending_[url] = Target{};
    }
    for (const auto& [url, t] : pending_) {
      if (t.next_attempt <= now) targets.push_back(url);
    }
    json = batch_json_;
  }
  std::vector<absl::Status> results;
  for (const std::string& url : targets) {
    std::string endpoint = absl::StrCat(absl::StripSuffix(url, "/"), "/api/v2/alerts");
    results.push_back(client_->Post(endpoint, json));
  }
  absl::MutexLock l(&mu_);
  for (size_t i = 0; i < targets.size(); ++i) {
    auto it = pending_.find(targets[i]);
    if (results[i].ok()) {
      metrics_.sent[targets[i]] += batch_size_;
      pending_.erase(it);
      continue;
    }
    ++it->second.attempts;
    bool give_up = results[i].code() == absl::StatusCode::kInvalidArgument ||
                   it->second.attempts >= opts_.max_attempts;
    LOG(WARNING) << "sending " << batch_size_ << " alerts failed (attempt " << it->second.attempts
                 << (give_up ? ", giving up" : "") << "): " << results[i];
    if (give_up) {
      metrics_.errors[targets[i]] += batch_size_;
      pending_.erase(it);
    } else {
      it->second.next_attempt = now + Backoff(it->second.attempts);
    }
  }
}

absl::Time Notifier::NextPump() const {
  absl::MutexLock l(&mu_);
  if (pending_.empty()) {
    return queue_.empty() || opts_.alertmanager_urls.empty() ? absl::InfiniteFuture()
                                                             : clock_->Now();
  }
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [url, t] : pending_) next = std::min(next, t.next_attempt);
  return std::max(next, clock_->Now());
}

NotifierMetrics Notifier::metrics() const {
  absl::MutexLock l(&mu_);
  return metrics_;
}

// ---- NotifierRunner ----

NotifierRunner::NotifierRunner(Notifier* notifier)
    : notifier_(notifier), thread_([this] { Loop(); }) {
  notifier_->SetWakeup([this] { Kick(); });
}

NotifierRunner::~NotifierRunner() { Stop(); }

void NotifierRunner::Kick() {
  absl::MutexLock l(&mu_);
  kicked_ = true;
}

void NotifierRunner::Stop() {
  {
    absl::MutexLock l(&mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  notifier_->SetWakeup(nullptr);
  if (thread_.joinable()) thread_.join();
}

void NotifierRunner::Loop() {
  while (true) {
    absl::Time next = notifier_->NextPump();
    {
      absl::MutexLock l(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(this, &NotifierRunner::Woken), next);
      if (stop_) return;
      kicked_ = false;
    }
    notifier_->Pump();
  }
}

}  // namespace vigil::alerting
