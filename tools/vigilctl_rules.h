// tools/vigilctl_rules.h
//
// `vigilctl rules ...`: offline rule-file tools, like promtool's.
//   rules check FILE...   validates rule files (YAML structure, PromQL, templates)
// Output per file, as promtool prints it:
//   Checking FILE
//     SUCCESS: N rules found
// or
//   Checking FILE
//     FAILED:
//   FILE:LINE: message
// No server is needed.
#ifndef VIGIL_TOOLS_VIGILCTL_RULES_H_
#define VIGIL_TOOLS_VIGILCTL_RULES_H_

#include <ostream>
#include <string>
#include <vector>

namespace vigil::tools {

// Runs `vigilctl rules args...`; returns the process exit code: 0 if every file
// is valid, 1 if any is invalid or unreadable, 2 on bad usage.
int RunRulesCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace vigil::tools

#endif  // VIGIL_TOOLS_VIGILCTL_RULES_H_
