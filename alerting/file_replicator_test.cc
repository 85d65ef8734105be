// FileReplicator: a single node's alert state on disk, across restarts (a real directory under
// the test's temp dir; that is what is tested).
#include "alerting/file_replicator.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "alerting/promql.h"
#include "alerting/testing/service_helpers.h"
#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "glog/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "query/engine.h"
#include "query/memory_source.h"

namespace vigil::alerting {
namespace {

using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::vigil::testing::StatusIs;

constexpr char kRules[] = R"(groups:
  - name: node
    interval: 30s
    rules:
      - alert: InstanceDown
        expr: up == 0
        for: 2m
)";

class FileReplicatorTest : public ::testing::Test {
 protected:
  // One vigild process: the replicator over `dir_` and the service it feeds.
  struct Node {
    std::unique_ptr<FileReplicator> replicator;
    std::unique_ptr<AlertingService> service;
  };

  FileReplicatorTest()
      : dir_(std::filesystem::path(::testing::TempDir()) /
             ("file_replicator_" +
              std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()))),
        clock_(absl::FromUnixSeconds(1700000000)),
        querier_(&engine_, &source_) {
    std::filesystem::remove_all(dir_);
    std::vector<Sample> samples;  // up{instance="x"} == 0 every 15 s around the test.
    const int64_t start_ms = absl::ToUnixMillis(clock_.Now()) - 600'000;
    for (int64_t t = start_ms; t < start_ms + 3'600'000; t += 15'000) samples.push_back({t, 0});
    source_.Add(Labels{{"__name__", "up"}, {"instance", "x"}}, samples);
  }
  ~FileReplicatorTest() override { std::filesystem::remove_all(dir_); }

  // Opens the directory and restores the service from it, as vigild's start does.
  Node Start() {
    Node n;
    absl::StatusOr<std::unique_ptr<FileReplicator>> r = FileReplicator::Open(dir_.string());
    CHECK(r.ok()) << r.status();
    n.replicator = *std::move(r);
    AlertingServiceOptions o;
    o.alertmanager_urls = {"http://am:9093"};
    o.resend_delay = absl::Minutes(10);
    n.service = std::make_unique<AlertingService>(o, &clock_, &querier_, nullptr,
                                                  n.replicator.get(), &am_);
    n.replicator->set_service(n.service.get());
    absl::Status restored = n.replicator->Restore();
    CHECK(restored.ok()) << restored;
    n.service->OnLeadershipChange(n.replicator->LeaderTerm());
    return n;
  }

  template <typename Pred>
  bool TickUntil(Node& n, absl::Duration limit, Pred pred) {
    for (const absl::Time end = clock_.Now() + limit; clock_.Now() < end;) {
      n.service->Tick();
      if (pred()) return true;
      clock_.Advance(absl::Seconds(1));
    }
    return false;
  }

  static std::vector<nlohmann::json> Alerts(AlertingService& s) { return AlertsOf(s); }
  static std::string StateOf(AlertingService& s) { return FirstAlertState(s); }
  std::vector<std::string> Files() {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  const std::filesystem::path dir_;
  FakeClock clock_;
  query::Engine engine_;
  query::MemorySeriesSource source_;
  EngineRuleQuerier querier_;
  RecordingAlertmanager am_;
};

// A restart in the middle of `for` keeps activeAt: the alert fires at activeAt + for, not a
// whole `for` after the restart.
TEST_F(FileReplicatorTest, PendingAlertKeepsActiveAtAcrossRestart) {
  absl::Time active_at;
  {
    Node n = Start();
    ASSERT_OK(n.service->ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status s) {
      EXPECT_OK(s);
    }));
    ASSERT_TRUE(TickUntil(n, absl::Minutes(1), [&] { return StateOf(*n.service) == "pending"; }));
    active_at = ParseApiTime(Alerts(*n.service)[0]["activeAt"].get<std::string>());
    clock_.Advance(absl::Minutes(1));  // Down for a minute.
  }
  Node n = Start();
  EXPECT_EQ(StateOf(*n.service), "pending");
  ASSERT_TRUE(TickUntil(n, absl::Minutes(3), [&] { return StateOf(*n.service) == "firing"; }));
  EXPECT_LT(clock_.Now(), active_at + absl::Minutes(2) + absl::Seconds(31));
  const std::vector<std::string> files = Files();
  ASSERT_THAT(files, SizeIs(2));
  EXPECT_EQ(files[0], "rules");
  EXPECT_TRUE(absl::StartsWith(files[1], "state-")) << files[1];
}

// A firing alert that was sent is not sent again right after a restart (lastSentAt is kept).
TEST_F(FileReplicatorTest, FiringAlertIsNotResentAfterRestart) {
  {
    Node n = Start();
    ASSERT_OK(n.service->ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
    ASSERT_TRUE(TickUntil(n, absl::Minutes(4), [&] { return StateOf(*n.service) == "firing"; }));
    TickUntil(n, absl::Seconds(5), [] { return false; });  // The notifier pumps.
    ASSERT_THAT(am_.posted(), SizeIs(1));
  }
  Node n = Start();
  EXPECT_EQ(StateOf(*n.service), "firing");
  TickUntil(n, absl::Minutes(3), [] { return false; });
  EXPECT_THAT(am_.posted(), SizeIs(1));
}

TEST_F(FileReplicatorTest, InterruptedWriteIsDiscardedAndCorruptFileRefused) {
  {
    Node n = Start();
    ASSERT_OK(n.service->ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  }
  {  // A write that crashed before its rename: never acknowledged, so dropped.
    std::ofstream torn(dir_ / "rules.tmp", std::ios::binary);
    torn << "VAS1 half";
  }
  {
    Node n = Start();
    EXPECT_THAT(nlohmann::json::parse(n.service->RulesJSON())["groups"], SizeIs(1));
  }
  EXPECT_EQ(Files(), std::vector<std::string>{"rules"});
  {
    std::fstream f(dir_ / "rules", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(20);
    f.put('\x7f');
  }
  EXPECT_THAT(FileReplicator::Open(dir_.string()).status(),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("checksum")));
}

// A new rule set drops the stored state of rules it no longer has; a bad payload is refused
// without being stored.
TEST_F(FileReplicatorTest, RuleSetChangeDropsStateOfRemovedRules) {
  Node n = Start();
  ASSERT_OK(n.service->ApplyRuleContents({{"node.yml", kRules}}, [](absl::Status) {}));
  ASSERT_TRUE(TickUntil(n, absl::Minutes(1), [&] { return StateOf(*n.service) == "pending"; }));
  ASSERT_THAT(n.replicator->payloads(), SizeIs(2));
  std::string renamed = kRules;
  renamed.replace(renamed.find("InstanceDown"), 12, "HostDown");
  ASSERT_OK(n.service->ApplyRuleContents({{"node.yml", renamed}}, [](absl::Status) {}));
  EXPECT_THAT(n.replicator->payloads(), SizeIs(1));
  EXPECT_EQ(Files(), std::vector<std::string>{"rules"});

  absl::Status bad;
  n.replicator->Propose(std::string("R\xff\xff", 3), [&](absl::Status s) { bad = s; });
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kDataLoss));
  Node reopened = Start();
  EXPECT_EQ(nlohmann::json::parse(reopened.service->RulesJSON())["groups"][0]["rules"][0]["name"],
            "HostDown");
  EXPECT_THAT(Alerts(*reopened.service), IsEmpty());
}

}  // namespace
}  // namespace vigil::alerting
