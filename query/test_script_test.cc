#include "query/test_script.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::query {
namespace {

std::vector<ScriptCaseResult> RunScript(const std::string& script) {
  auto r = RunTestScript(script, EngineOptions());
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : std::vector<ScriptCaseResult>{};
}

TEST(TestScriptTest, ExpandsLoadValues) {
  auto results = RunScript(R"(
load 1m
  a{x="1"} 0+10x3 _ 5 stale _x2 1x2
  b 1 -2-1x2

eval instant at 3m a
  a{x="1"} 30

eval instant at 4m a
  a{x="1"} 30

eval instant at 5m a
  a{x="1"} 5

eval instant at 6m a

eval instant at 9m a
  a{x="1"} 1

eval instant at 10m count_over_time(a[1m])
  {x="1"} 2

eval instant at 3m b
  b -4
)");
  ASSERT_EQ(results.size(), 7u);
  for (const auto& r : results) EXPECT_TRUE(r.passed) << "line " << r.line << ": " << r.error;
}

TEST(TestScriptTest, ReportsWrongValuesLabelsOrderAndMissingErrors) {
  auto results = RunScript(R"(
load 1m
  m{i="a"} 1
  m{i="b"} 2

eval instant at 0m m
  m{i="a"} 1
  m{i="b"} 3

eval instant at 0m m
  m{i="a"} 1

eval_ordered instant at 0m sort_desc(m)
  m{i="a"} 1
  m{i="b"} 2

eval_fail instant at 0m m

eval_fail instant at 0m m + on() m

eval instant at 0m 1 + 1
  3
)");
  ASSERT_EQ(results.size(), 6u);
  EXPECT_FALSE(results[0].passed);
  EXPECT_THAT(results[0].error, ::testing::HasSubstr("got 2, want 3"));
  EXPECT_FALSE(results[1].passed);
  EXPECT_FALSE(results[2].passed);
  EXPECT_FALSE(results[3].passed);
  EXPECT_TRUE(results[4].passed) << results[4].error;
  EXPECT_FALSE(results[5].passed);
  EXPECT_EQ(results[5].line, 21);
}

TEST(TestScriptTest, RejectsMalformedScripts) {
  EXPECT_FALSE(RunTestScript("load 1m\n  a 1+x\n", EngineOptions()).ok());
  EXPECT_FALSE(RunTestScript("frobnicate\n", EngineOptions()).ok());
}

TEST(TestScriptTest, AlmostEqualFollowsPrometheus) {
  EXPECT_TRUE(AlmostEqual(NAN, NAN));
  EXPECT_TRUE(AlmostEqual(1.0, 1.0 + 1e-9));
  EXPECT_FALSE(AlmostEqual(1.0, 1.0001));
  EXPECT_FALSE(AlmostEqual(0.0, 1e-300));
  EXPECT_TRUE(AlmostEqual(INFINITY, INFINITY));
  EXPECT_FALSE(AlmostEqual(INFINITY, -INFINITY));
}

}  // namespace
}  // namespace vigil::query
