#include "tools/vigilctl_rules.h"

#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"

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

// POST /api/v1/admin/rules on a free loopback port, answered by `handler`.
class FakeVigild {
 public:
  explicit FakeVigild(httplib::Server::Handler handler) {
    server_.Post("/api/v1/admin/rules", std::move(handler));
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeVigild() {
    while (!server_.is_running()) std::this_thread::yield();
    server_.stop();
    thread_.join();
  }
  RulesCommandOptions Options() const {
    RulesCommandOptions opts;
    opts.http_addr = "127.0.0.1:" + std::to_string(port_);
    return opts;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(VigilctlRulesTest, ApplyPostsTheFileAndPrintsWhatWasApplied) {
  std::string body, file;
  std::ostringstream out, err;
  int code;
  {
    FakeVigild server([&](const httplib::Request& req, httplib::Response& res) {
      body = req.body;
      file = req.get_param_value("file");
      res.set_content(R"({"status":"success","data":null})", "application/json");
    });
    code = RunRulesCommand({"apply", kGood}, server.Options(), out, err);
  }
  EXPECT_EQ(code, 0) << err.str();
  EXPECT_EQ(file, kGood);
  std::ifstream in(kGood);
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(body, want.str());
  EXPECT_THAT(out.str(), HasSubstr("SUCCESS: 4 rules found"));
  EXPECT_THAT(out.str(), HasSubstr("Applied " + kGood + ": "));
  EXPECT_THAT(out.str(), HasSubstr("    alert "));
}

TEST(VigilctlRulesTest, ApplyOfABadFileSendsNothing) {
  RulesCommandOptions opts;
  opts.http_addr = "127.0.0.1:1";  // Never contacted.
  std::ostringstream out, err;
  EXPECT_EQ(RunRulesCommand({"apply", kBad}, opts, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr(kBad + ":13:"));
  EXPECT_THAT(err.str(), HasSubstr("not applied"));
  EXPECT_THAT(err.str(), ::testing::Not(HasSubstr("HTTP")));
  EXPECT_THAT(err.str(), ::testing::Not(HasSubstr("127.0.0.1:1")));
}

TEST(VigilctlRulesTest, ApplyReportsTheServersRefusal) {
  FakeVigild server([](const httplib::Request&, httplib::Response& res) {
    res.status = 503;
    res.set_content(R"({"status":"error","errorType":"internal","error":"no leader"})",
                    "application/json");
  });
  std::ostringstream out, err;
  const int code = RunRulesCommand({"apply", kGood}, server.Options(), out, err);
  EXPECT_EQ(code, 1);
  EXPECT_THAT(err.str(), HasSubstr("HTTP 503: no leader"));
}

TEST(VigilctlRulesTest, Usage) {
  std::ostringstream out, err;
  EXPECT_EQ(RunRulesCommand({}, out, err), 2);
  EXPECT_EQ(RunRulesCommand({"check"}, out, err), 2);
  EXPECT_EQ(RunRulesCommand({"lint", kGood}, out, err), 2);
  EXPECT_EQ(RunRulesCommand({"apply", kGood}, out, err), 2);  // No --http_addr.
  EXPECT_EQ(RunRulesCommand({"apply"}, out, err), 2);
}

}  // namespace
}  // namespace vigil::tools
