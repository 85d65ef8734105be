// alerting/rules.h
//
// Rule files in Prometheus 2.42's format (rulefmt): groups with `name`,
// `interval`, `limit` and `rules`; alerting rules (`alert`, `expr`, `for`,
// `keep_firing_for`, `labels`, `annotations`) and recording rules (`record`,
// `expr`, `labels`). Loading validates like `promtool check rules` and reports
// every problem with the file name and line ("rules.yml:12: ...").
//
// A RuleSet has a deterministic binary encoding so that it can be committed
// through Raft. Value types; not synchronized.
#ifndef VIGIL_ALERTING_RULES_H_
#define VIGIL_ALERTING_RULES_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace vigil::alerting {

// Name/value pairs sorted by name, names unique (rule labels and annotations).
using StringPairs = std::vector<std::pair<std::string, std::string>>;

struct Rule {
  std::string alert;   // Alerting rule name; empty for recording rules.
  std::string record;  // Recording rule metric name; empty for alerting rules.
  std::string expr;
  absl::Duration for_duration = absl::ZeroDuration();
  absl::Duration keep_firing_for = absl::ZeroDuration();
  StringPairs labels;       // Label templates (alerting) or values (recording).
  StringPairs annotations;  // Annotation templates; alerting rules only.
  int line = 0;             // 1-based line of the rule in its file; 0 if unknown.

  bool is_alerting() const { return !alert.empty(); }
  const std::string& name() const { return is_alerting() ? alert : record; }
  friend bool operator==(const Rule& a, const Rule& b);
};

struct RuleGroup {
  std::string name;
  std::string file;
  absl::Duration interval = absl::ZeroDuration();  // Zero: use the default interval.
  int limit = 0;                                   // Zero: no limit.
  std::vector<Rule> rules;

  // Prometheus' GroupKey: "<file>;<name>". Identifies the group everywhere.
  std::string Key() const { return file + ";" + name; }
  friend bool operator==(const RuleGroup& a, const RuleGroup& b);
};

struct RuleSet {
  std::vector<RuleGroup> groups;  // Files in load order, groups in file order.
  // RuleSetContentHash of every --rule_files content seeded into the cluster,
  // oldest first, at most kMaxSeededHashes: a node whose files were seeded
  // before does not apply them again over a set applied through the API since.
  // Carried over by every rule-set write; not part of the rules (operator==).
  std::vector<uint64_t> seeded;
  friend bool operator==(const RuleSet& a, const RuleSet& b) { return a.groups == b.groups; }
};

inline constexpr size_t kMaxSeededHashes = 16;

// Checks a PromQL expression; returns kInvalidArgument with the parse error.
// Injected so that rule loading does not depend on the query engine
// (alerting/promql_validator.h adapts query::ParseExpr).
using ExprValidator = std::function<absl::Status(absl::string_view expr)>;

// Parses and validates one rule file. `file_name` is used in messages and as
// RuleGroup::file. A null `validate` skips expression parsing (only emptiness
// is checked). kInvalidArgument listing every problem, one per line, each as
// "<file>:<line>: <message>"; nothing is returned unless the whole file is valid.
absl::StatusOr<std::vector<RuleGroup>> ParseRuleFile(absl::string_view file_name,
                                                     absl::string_view content,
                                                     const ExprValidator& validate);

// Parses several files into one RuleSet (groups keep file order). Group names
// must be unique per file, as in Prometheus. kInvalidArgument as above, with
// the problems of all files.
absl::StatusOr<RuleSet> ParseRuleFiles(
    const std::vector<std::pair<std::string, std::string>>& files_and_contents,
    const ExprValidator& validate);

// Reads files from disk and parses them. kNotFound / kPermissionDenied for
// unreadable files.
absl::StatusOr<RuleSet> LoadRuleFiles(const std::vector<std::string>& paths,
                                      const ExprValidator& validate);

// Deterministic encoding (alerting.proto RuleSetProto): equal sets give equal bytes.
std::string SerializeRuleSet(const RuleSet& rules);
// kDataLoss if `bytes` is not a RuleSetProto.
absl::StatusOr<RuleSet> DeserializeRuleSet(absl::string_view bytes);
// A stable hash (xxh64 of the encoding) of the groups only, not of `seeded`:
// identifies the content of a set of rule files.
uint64_t RuleSetContentHash(const RuleSet& rules);

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_RULES_H_
