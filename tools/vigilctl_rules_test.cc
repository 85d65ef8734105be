#include "tools/vigilctl_rules.h"

#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::tools {
namespace {

using ::testing::HasSubstr;

const std::string kGood = std::string(ALERTING_TESTDATA_DIR) + "/rules.yml";
const std::string kBad = std::string(ALERTING_TESTDATA_DIR) + "/bad_rules.yml";

TEST(VigilctlRulesTest, ValidFileSucceedsWithCount) {
  std::ostringstream out, err;
  EXPECT_EQ(RunRulesCommand({"check", kGood}, out, err), 0);
  EXPECT_EQ(out.str(), "Checking " + kGood + "\n  SUCCESS: 4 rules found\n\n");
  EXPECT_EQ(err.str(), "");
}

TEST(VigilctlRulesTest, BadFileFailsWithLineNumbers) {
  std::ostringstream out, err;
  EXPECT_EQ(RunRulesCommand({"check", kBad}, out, err), 1);
  EXPECT_THAT(out.str(), HasSubstr("Checking " + kBad));
  EXPECT_THAT(err.str(), HasSubstr("FAILED:"));
  // Line 13 holds the unparsable expression `up ==`; line 14 the bad `for`.
  EXPECT_THAT(err.str(), HasSubstr(kBad + ":13:"));
  EXPECT_THAT(err.str(), HasSubstr(kBad + ":14:"));
}

TEST(VigilctlRulesTest, AnyBadFileFailsButAllAreChecked) {
  std::ostringstream out, err;
  EXPECT_EQ(RunRulesCommand({"check", kBad, kGood}, out, err), 1);
  EXPECT_THAT(out.str(), HasSubstr("SUCCESS: 4 rules found"));
}

TEST(VigilctlRulesTest, MissingFileFails) {
  std::ostringstream out, err;
  EXPECT_EQ(RunRulesCommand({"check", "/nonexistent/rules.yml"}, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("FAILED:"));
}

TEST(VigilctlRulesTest, Usage) {
  std::ostringstream out, err;
  EXPECT_EQ(RunRulesCommand({}, out, err), 2);
  EXPECT_EQ(RunRulesCommand({"check"}, out, err), 2);
  EXPECT_EQ(RunRulesCommand({"lint", kGood}, out, err), 2);
}

}  // namespace
}  // namespace vigil::tools
