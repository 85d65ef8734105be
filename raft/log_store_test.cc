#include "raft/log_store.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"

namespace vigil::raft {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;

class LogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("log_store_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::vector<Entry> Ents(uint64_t from, uint64_t to, uint64_t term) {
    std::vector<Entry> out;
    for (uint64_t i = from; i <= to; ++i) {
      out.push_back(Entry{term, i, EntryType::kNormal, "data" + std::to_string(i)});
    }
    return out;
  }

  std::string dir_;
};

TEST_F(LogStoreTest, SurvivesReopen) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, LogStore::Open(dir_));
    ASSERT_THAT(store->Bootstrap({1, 2, 3}), IsOk());
    ASSERT_THAT(store->Save(HardState{2, 1, 5}, Ents(4, 6, 2), Snapshot()), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(auto store, LogStore::Open(dir_));
  EXPECT_EQ(store->LastIndex(), 6u);
  EXPECT_EQ(store->GetHardState(), (HardState{2, 1, 5}));
  EXPECT_EQ(*store->Term(5), 2u);
  EXPECT_EQ(*store->Term(3), 1u);  // bootstrap entries
}

// Only entries, snapshots, term and vote need an fsync; a commit-only hard state is written
// unsynced (it survives a process crash, not necessarily a power loss), and nothing is written
// for an empty Ready.
TEST_F(LogStoreTest, SyncsOnlyWhatMustBeDurable) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, LogStore::Open(dir_));
    ASSERT_THAT(store->Save(HardState{2, 1, 0}, Ents(1, 3, 2), Snapshot()), IsOk());
    EXPECT_EQ(store->synced_saves(), 1u);
    ASSERT_THAT(store->Save(HardState{2, 1, 3}, {}, Snapshot()), IsOk());
    EXPECT_EQ(store->synced_saves(), 1u);
    EXPECT_EQ(store->unsynced_saves(), 1u);
    ASSERT_THAT(store->Save(std::nullopt, {}, Snapshot()), IsOk());
    EXPECT_EQ(store->synced_saves() + store->unsynced_saves(), 2u);
    ASSERT_THAT(store->Save(HardState{2, 1, 3}, Ents(4, 4, 2), Snapshot()), IsOk());
    ASSERT_THAT(store->Save(HardState{3, 0, 4}, {}, Snapshot()), IsOk());  // new term
    ASSERT_THAT(store->Save(HardState{3, 2, 4}, {}, Snapshot()), IsOk());  // new vote
    EXPECT_EQ(store->synced_saves(), 4u);
    EXPECT_EQ(store->unsynced_saves(), 1u);
  }
  ASSERT_OK_AND_ASSIGN(auto store, LogStore::Open(dir_));
  EXPECT_EQ(store->GetHardState(), (HardState{3, 2, 4}));
  EXPECT_EQ(store->LastIndex(), 4u);
}

TEST_F(LogStoreTest, OverwriteTruncatesSuffixDurably) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, LogStore::Open(dir_));
    ASSERT_THAT(store->Save(HardState{2, 0, 0}, Ents(1, 6, 2), Snapshot()), IsOk());
    ASSERT_THAT(store->Save(HardState{3, 0, 0}, Ents(3, 4, 3), Snapshot()), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(auto store, LogStore::Open(dir_));
  EXPECT_EQ(store->LastIndex(), 4u);
  EXPECT_EQ(*store->Term(4), 3u);
}

TEST_F(LogStoreTest, SnapshotAndCompactionSurviveReopen) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, LogStore::Open(dir_));
    ASSERT_THAT(store->Save(HardState{2, 0, 10}, Ents(1, 12, 2), Snapshot()), IsOk());
    ASSERT_THAT(store->CreateSnapshotAndCompact(10, ConfState{{1, 2, 3}, {}}, "state", 10),
                IsOk());
  }
  ASSERT_OK_AND_ASSIGN(auto store, LogStore::Open(dir_));
  EXPECT_EQ(store->FirstIndex(), 11u);
  EXPECT_EQ(store->LastIndex(), 12u);
  EXPECT_EQ(store->GetSnapshot().data, "state");
  EXPECT_EQ(store->GetSnapshot().metadata.conf_state.voters, (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_TRUE(IsCompacted(store->Term(5).status()));
}

// A corrupt log must stop the node from starting (kDataLoss), never be served.
TEST_F(LogStoreTest, CorruptEntryIsDataLoss) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, LogStore::Open(dir_));
    ASSERT_THAT(store->Save(HardState{2, 0, 3}, Ents(1, 3, 2), Snapshot()), IsOk());
  }
  {
    // Flip a byte of entry 2's value behind the store's back.
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string key = std::string(1, 'e') + std::string(7, '\0') + std::string(1, '\2');
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), key, &value).ok());
    value[value.size() - 1] ^= 0x40;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, value).ok());
  }
  EXPECT_THAT(LogStore::Open(dir_).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

}  // namespace
}  // namespace vigil::raft
