// tools/vigilctl_rules.cc
#include "tools/vigilctl_rules.h"

#include <cstddef>
#include <fstream>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/str_join.h"
#include "alerting/promql.h"
#include "alerting/rules.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace vigil::tools {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "usage: vigilctl rules check FILE...\n"
    "       vigilctl --http_addr=HOST:PORT rules apply FILE\n";

size_t CountRules(const alerting::RuleSet& set) {
  size_t n = 0;
  for (const alerting::RuleGroup& g : set.groups) n += g.rules.size();
  return n;
}

// Prints promtool's "Checking FILE / SUCCESS|FAILED" for one file.
absl::StatusOr<alerting::RuleSet> CheckFile(const std::string& file, std::ostream& out,
                                            std::ostream& err) {
  out << "Checking " << file << "\n";
  absl::StatusOr<alerting::RuleSet> set =
      alerting::LoadRuleFiles({file}, alerting::PromQLExprValidator());
  if (set.ok()) {
    out << "  SUCCESS: " << CountRules(*set) << " rules found\n\n";
  } else {
    err << "  FAILED:\n" << set.status().message() << "\n\n";
  }
  return set;
}

int CheckRules(const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
  int code = kExitOk;
  for (const std::string& file : files) {
    if (!CheckFile(file, out, err).ok()) code = kExitFailed;
  }
  return code;
}

int ApplyRules(const std::string& file, const RulesCommandOptions& opts, std::ostream& out,
               std::ostream& err) {
  if (opts.http_addr.empty()) {
    err << "vigilctl rules apply: --http_addr=HOST:PORT (a vigild's HTTP API) is required\n";
    return kExitUsage;
  }
  absl::StatusOr<alerting::RuleSet> set = CheckFile(file, out, err);
  if (!set.ok()) {
    err << "not applied: the rules in force are unchanged\n";
    return kExitFailed;
  }
  std::ifstream in(file, std::ios::binary);
  std::stringstream body;
  body << in.rdbuf();

  httplib::Client client("http://" + opts.http_addr);
  const auto secs = absl::ToInt64Seconds(opts.timeout);
  client.set_connection_timeout(secs, 0);
  client.set_read_timeout(secs, 0);
  client.set_write_timeout(secs, 0);
  httplib::Params params{{"file", file}};
  const std::string path = httplib::append_query_params("/api/v1/admin/rules", params);
  httplib::Result res = client.Post(path, body.str(), "application/yaml");
  if (!res) {
    err << "vigilctl rules apply: " << opts.http_addr << ": " << httplib::to_string(res.error())
        << "\n";
    return kExitFailed;
  }
  if (res->status != 200) {
    std::string message = res->body;
    nlohmann::json j = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("error")) message = j["error"].get<std::string>();
    err << "vigilctl rules apply: HTTP " << res->status << ": " << message
        << "\nnot applied: the rules in force are unchanged\n";
    return kExitFailed;
  }
  out << "Applied " << file << ": " << set->groups.size() << " groups, " << CountRules(*set)
      << " rules\n";
  for (const alerting::RuleGroup& g : set->groups) {
    out << "  group " << g.name;
    if (g.interval > absl::ZeroDuration()) out << " (interval " << absl::FormatDuration(g.interval) << ")";
    out << ":\n";
    for (const alerting::Rule& r : g.rules) {
      out << "    " << (r.is_alerting() ? "alert " : "record ") << r.name();
      if (r.for_duration > absl::ZeroDuration()) {
        out << " for " << absl::FormatDuration(r.for_duration);
      }
      out << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

int RunRulesCommand(const std::vector<std::string>& args, const RulesCommandOptions& opts,
                    std::ostream& out, std::ostream& err) {
  if (args.size() == 2 && args[0] == "apply") return ApplyRules(args[1], opts, out, err);
  if (args.size() < 2 || args[0] != "check") {
    err << kUsage;
    return kExitUsage;
  }
  return CheckRules(std::vector<std::string>(args.begin() + 1, args.end()), out, err);
}

int RunRulesCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return RunRulesCommand(args, RulesCommandOptions{}, out, err);
}

}  // namespace vigil::tools
