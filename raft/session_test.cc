#include "raft/session.h"

#include <string>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::raft {
namespace {

using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;

// Dissertation 6.3: a retried command is applied once and answered from the session.
TEST(SessionTableTest, RetriedCommandAppliedOnce) {
  SessionTable t;
  std::string cached;
  EXPECT_EQ(t.Check(7, 1, &cached), SessionTable::Verdict::kApply);
  t.Record(7, 1, "ok1");
  EXPECT_EQ(t.Check(7, 1, &cached), SessionTable::Verdict::kDuplicate);
  EXPECT_EQ(cached, "ok1");
  EXPECT_EQ(t.Check(7, 2, &cached), SessionTable::Verdict::kApply);
  t.Record(7, 2, "ok2");
  EXPECT_EQ(t.Check(7, 1, &cached), SessionTable::Verdict::kStale);
  EXPECT_EQ(t.Check(8, 1, &cached), SessionTable::Verdict::kApply);  // clients are independent
}

TEST(SessionTableTest, SerializeRoundTrip) {
  SessionTable t;
  t.Record(1, 3, "a b");
  t.Record(2, 1, "");
  absl::StatusOr<SessionTable> back = SessionTable::Parse(t.Serialize());
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(*back == t);
  std::string cached;
  EXPECT_EQ(back->Check(1, 3, &cached), SessionTable::Verdict::kDuplicate);
  EXPECT_EQ(cached, "a b");
}

TEST(SessionTableTest, ParseRejectsGarbage) {
  EXPECT_THAT(SessionTable::Parse("1 2 99 short"), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(SessionTable::Parse("x"), StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace vigil::raft
