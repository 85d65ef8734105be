#include "cluster/hints.h"

#include <utility>

#include "glog/logging.h"

namespace vigil::cluster {

int64_t CountSamples(const std::vector<Series>& series) {
  int64_t n = 0;
  for (const Series& s : series) n += static_cast<int64_t>(s.samples.size());
  return n;
}

HintStore::HintStore(HintOptions opts, const Clock* clock) : opts_(opts), clock_(clock) {
  CHECK(clock_ != nullptr);
}

void HintStore::PopFront(Queue& q) {
  q.stats.samples -= CountSamples(*q.hints.front().series);
  --q.stats.hints;
  q.hints.pop_front();
}

void HintStore::Trim(Queue& q) {
  while (!q.hints.empty() && (q.hints.size() > opts_.max_hints_per_node ||
                              q.stats.samples > opts_.max_samples_per_node)) {
    PopFront(q);
    ++q.stats.dropped;
  }
}

void HintStore::Add(NodeId target, uint32_t shard, SharedSeries series) {
  CHECK(series != nullptr);
  const int64_t samples = CountSamples(*series);
  absl::MutexLock l(&mu_);
  Queue& q = queues_[target];
  ++q.stats.added;
  q.hints.push_back(Hint{shard, std::move(series), clock_->Now()});
  ++q.stats.hints;
  q.stats.samples += samples;
  Trim(q);
}

std::vector<Hint> HintStore::Take(NodeId target, size_t max_hints) {
  std::vector<Hint> out;
  const absl::Time oldest = clock_->Now() - opts_.max_age;
  absl::MutexLock l(&mu_);
  auto it = queues_.find(target);
  if (it == queues_.end()) return out;
  Queue& q = it->second;
  while (!q.hints.empty() && out.size() < max_hints) {
    Hint h = q.hints.front();
    PopFront(q);
    if (h.created < oldest) {
      ++q.stats.expired;
      continue;
    }
    ++q.stats.replayed;
    out.push_back(std::move(h));
  }
  return out;
}

void HintStore::Requeue(NodeId target, std::vector<Hint> hints) {
  absl::MutexLock l(&mu_);
  Queue& q = queues_[target];
  for (auto it = hints.rbegin(); it != hints.rend(); ++it) {
    q.stats.samples += CountSamples(*it->series);
    ++q.stats.hints;
    --q.stats.replayed;
    q.hints.push_front(std::move(*it));
  }
  Trim(q);
}

std::vector<NodeId> HintStore::Targets() const {
  std::vector<NodeId> out;
  absl::MutexLock l(&mu_);
  for (const auto& [node, q] : queues_) {
    if (!q.hints.empty()) out.push_back(node);
  }
  return out;
}

HintStats HintStore::Stats(NodeId target) const {
  absl::MutexLock l(&mu_);
  auto it = queues_.find(target);
  return it == queues_.end() ? HintStats() : it->second.stats;
}

}  // namespace vigil::cluster
