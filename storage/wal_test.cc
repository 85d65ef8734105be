#include "storage/wal.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/tsdb_test_util.h"

namespace vigil::storage {
namespace {

using ::vigil::testing::StatusIs;

using Records = std::vector<std::pair<uint64_t, std::string>>;

absl::StatusOr<std::unique_ptr<Wal>> OpenWal(const std::string& dir, Records* replayed,
                                             uint64_t segment_bytes = 1 << 20) {
  WalOptions o;
  o.dir = dir;
  o.sync = false;
  o.segment_bytes = segment_bytes;
  return Wal::Open(o, [replayed](uint64_t lsn, absl::string_view payload) {
    replayed->emplace_back(lsn, std::string(payload));
    return absl::OkStatus();
  });
}

std::vector<std::filesystem::path> Segments(const std::string& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(WalTest, ReplaysRecordsInOrder) {
  TempDir dir;
  Records replayed;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, OpenWal(dir.path(), &replayed));
    EXPECT_EQ(wal->recovered_lsn(), 0u);
    wal->Enqueue(1, "one");
    wal->Enqueue(2, "");
    ASSERT_OK(wal->WaitDurable(2));
    wal->Enqueue(5, std::string(10000, 'x'));
    ASSERT_OK(wal->WaitDurable(5));
  }
  ASSERT_OK_AND_ASSIGN(auto wal, OpenWal(dir.path(), &replayed));
  EXPECT_EQ(wal->recovered_lsn(), 5u);
  ASSERT_EQ(replayed.size(), 3u);
  EXPECT_EQ(replayed[0], std::make_pair(uint64_t{1}, std::string("one")));
  EXPECT_EQ(replayed[1].second, "");
  EXPECT_EQ(replayed[2].second.size(), 10000u);
}

TEST(WalTest, TornTailIsCutOff) {
  TempDir dir;
  Records replayed;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, OpenWal(dir.path(), &replayed));
    wal->Enqueue(1, "first");
    wal->Enqueue(2, "second");
    ASSERT_OK(wal->WaitDurable(2));
  }
  const std::filesystem::path seg = Segments(dir.path()).front();
  std::filesystem::resize_file(seg, std::filesystem::file_size(seg) - 3);  // torn write
  {
    ASSERT_OK_AND_ASSIGN(auto wal, OpenWal(dir.path(), &replayed));
    ASSERT_EQ(replayed.size(), 1u);
    EXPECT_EQ(replayed[0].second, "first");
    wal->Enqueue(3, "third");  // goes to a new segment after the cut one
    ASSERT_OK(wal->WaitDurable(3));
  }
  replayed.clear();
  ASSERT_OK_AND_ASSIGN(auto wal, OpenWal(dir.path(), &replayed));
  ASSERT_EQ(replayed.size(), 2u);
  EXPECT_EQ(replayed[1].second, "third");
}

TEST(WalTest, CorruptOlderSegmentIsDataLoss) {
  TempDir dir;
  Records replayed;
  {
    ASSERT_OK_AND_ASSIGN(auto wal, OpenWal(dir.path(), &replayed));
    wal->Enqueue(1, "aaaaaaaa");
    ASSERT_OK(wal->Rotate());
    wal->Enqueue(2, "bbbbbbbb");
    ASSERT_OK(wal->WaitDurable(2));
  }
  const std::filesystem::path seg = Segments(dir.path()).front();
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(18);
    f.put('X');  // inside the payload of record 1
  }
  EXPECT_THAT(OpenWal(dir.path(), &replayed), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(WalTest, RotateAndDeleteSegments) {
  TempDir dir;
  Records replayed;
  ASSERT_OK_AND_ASSIGN(auto wal, OpenWal(dir.path(), &replayed, /*segment_bytes=*/100));
  for (uint64_t lsn = 1; lsn <= 10; lsn++) {
    wal->Enqueue(lsn, std::string(60, 'a'));
    ASSERT_OK(wal->WaitDurable(lsn));
  }
  EXPECT_EQ(wal->closed_segments(), 5);  // two records of 76 bytes per segment
  EXPECT_EQ(wal->oldest_segment_last_lsn(), 2u);
  ASSERT_OK(wal->DeleteSegmentsBefore(5));  // segments [1,2] and [3,4]
  EXPECT_EQ(wal->closed_segments(), 3);
  wal.reset();
  replayed.clear();
  ASSERT_OK_AND_ASSIGN(wal, OpenWal(dir.path(), &replayed, 100));
  ASSERT_EQ(replayed.size(), 6u);
  EXPECT_EQ(replayed.front().first, 5u);
}

TEST(WalTest, ConcurrentWritersShareSyncs) {
  TempDir dir;
  Records replayed;
  WalOptions o;
  o.dir = dir.path();
  o.sync = true;
  ASSERT_OK_AND_ASSIGN(auto wal, Wal::Open(o, [](uint64_t, absl::string_view) { return absl::OkStatus(); }));
  absl::Mutex order_mu;  // Enqueue order must match LSN order, as under the TSDB's lock
  uint64_t next = 1;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; i++) {
        uint64_t lsn;
        {
          absl::MutexLock l(&order_mu);
          lsn = next++;
          wal->Enqueue(lsn, "payload");
        }
        ASSERT_OK(wal->WaitDurable(lsn));
      }
    });
  }
  for (auto& t : threads) t.join();
  wal.reset();
  ASSERT_OK_AND_ASSIGN(wal, OpenWal(dir.path(), &replayed));
  ASSERT_EQ(replayed.size(), 200u);
  for (size_t i = 0; i < replayed.size(); i++) EXPECT_EQ(replayed[i].first, i + 1);
}

}  // namespace
}  // namespace vigil::storage
