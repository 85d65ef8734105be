// tools/vigilctl_rules.cc
#include "tools/vigilctl_rules.h"

#include <cstddef>

#include "absl/status/statusor.h"
#include "alerting/promql.h"
#include "alerting/rules.h"

namespace vigil::tools {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

size_t CountRules(const alerting::RuleSet& set) {
  size_t n = 0;
  for (const alerting::RuleGroup& g : set.groups) n += g.rules.size();
  return n;
}

int CheckRules(const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
  const alerting::ExprValidator validate = alerting::PromQLExprValidator();
  int code = kExitOk;
  for (const std::string& file : files) {
    out << "Checking " << file << "\n";
    absl::StatusOr<alerting::RuleSet> set = alerting::LoadRuleFiles({file}, validate);
    if (set.ok()) {
      out << "  SUCCESS: " << CountRules(*set) << " rules found\n\n";
      continue;
    }
    code = kExitFailed;
    err << "  FAILED:\n" << set.status().message() << "\n\n";
  }
  return code;
}

}  // namespace

int RunRulesCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] != "check" || args.size() < 2) {
    err << "usage: vigilctl rules check FILE...\n";
    return kExitUsage;
  }
  return CheckRules(std::vector<std::string>(args.begin() + 1, args.end()), out, err);
}

}  // namespace vigil::tools
