// tools/vigilctl_rules.h
//
// `vigilctl rules ...`: rule-file tools, like promtool's, and applying rules.
//   rules check FILE...   validates rule files (YAML structure, PromQL, templates)
//   rules apply FILE      validates FILE, then commits it as the cluster's rule set
//                         (POST /api/v1/admin/rules on --http_addr) and prints it
// Output per file, as promtool prints it:
//   Checking FILE
//     SUCCESS: N rules found
// or
//   Checking FILE
//     FAILED:
//   FILE:LINE: message
// `check` needs no server. `apply` prints the same check first; a bad file is
// never sent, and the rules in force stay.
#ifndef VIGIL_TOOLS_VIGILCTL_RULES_H_
#define VIGIL_TOOLS_VIGILCTL_RULES_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace vigil::tools {

struct RulesCommandOptions {
  std::string http_addr;  // HOST:PORT of a vigild's HTTP API (apply).
  absl::Duration timeout = absl::Seconds(30);
};

// Runs `vigilctl rules args...`; returns the process exit code: 0 on success,
// 1 if a file is invalid or unreadable or the server refused or failed, 2 on bad
// usage.
int RunRulesCommand(const std::vector<std::string>& args, const RulesCommandOptions& opts,
                    std::ostream& out, std::ostream& err);
// `check` only (no server).
int RunRulesCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace vigil::tools

#endif  // VIGIL_TOOLS_VIGILCTL_RULES_H_
