#include "alerting/rules.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "alerting/alerting.pb.h"
#include "alerting/encoding.h"
#include "alerting/strutil.h"
#include "alerting/template.h"
#include "common/labels.h"
#include "glog/logging.h"
#include "xxhash.h"
#include "yaml-cpp/yaml.h"

namespace vigil::alerting {

bool operator==(const Rule& a, const Rule& b) {
  return a.alert == b.alert && a.record == b.record && a.expr == b.expr &&
         a.for_duration == b.for_duration && a.keep_firing_for == b.keep_firing_for &&
         a.labels == b.labels && a.annotations == b.annotations && a.line == b.line;
}

bool operator==(const RuleGroup& a, const RuleGroup& b) {
  return a.name == b.name && a.file == b.file && a.interval == b.interval &&
         a.limit == b.limit && a.rules == b.rules;
}

namespace {

bool IsValidUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : 4;
    if (n == 4 || i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n + 1;
  }
  return true;
}

// Collects "<file>:<line>: <message>" problems.
class Problems {
 public:
  explicit Problems(absl::string_view file) : file_(file) {}
  void Add(int line, absl::string_view msg) {
    list_.push_back(absl::StrCat(file_, ":", line, ": ", msg));
  }
  bool empty() const { return list_.empty(); }
  const std::vector<std::string>& list() const { return list_; }

 private:
  std::string file_;
  std::vector<std::string> list_;
};

int LineOf(const YAML::Node& n, int fallback) {
  if (!n.IsDefined() || n.Mark().line < 0) return fallback;
  return n.Mark().line + 1;
}

// Checks that a mapping has only `known` keys; reports the others Prometheus' way.
void CheckKeys(const YAML::Node& map, std::initializer_list<absl::string_view> known,
               absl::string_view go_type, Problems& p) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      p.Add(LineOf(it->first, 0), absl::StrFormat("field %s not found in type %s", key, go_type));
    }
  }
}

bool ScalarField(const YAML::Node& parent, const char* key, std::string* out, Problems& p) {
  YAML::Node n = parent[key];
  if (!n.IsDefined() || n.IsNull()) return false;
  if (!n.IsScalar()) {
    p.Add(LineOf(n, 0), absl::StrFormat("field %s must be a string", key));
    return false;
  }
  *out = n.Scalar();
  return true;
}

void DurationField(const YAML::Node& parent, const char* key, absl::Duration* out, Problems& p) {
  std::string s;
  if (!ScalarField(parent, key, &s, p)) return;
  auto d = ParsePromDuration(s);
  if (!d.ok()) {
    p.Add(LineOf(parent[key], 0), d.status().message());
    return;
  }
  *out = *d;
}

StringPairs StringMap(const YAML::Node& parent, const char* key, Problems& p) {
  StringPairs out;
  YAML::Node n = parent[key];
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsMap()) {
    p.Add(LineOf(n, 0), absl::StrFormat("field %s must be a map of strings", key));
    return out;
  }
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar() || !(it->second.IsScalar() || it->second.IsNull())) {
      p.Add(LineOf(it->first, 0), absl::StrFormat("field %s must be a map of strings", key));
      continue;
    }
    out.emplace_back(it->first.Scalar(), it->second.IsNull() ? "" : it->second.Scalar());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Rule.Validate() of Prometheus' rulefmt, plus template parsing.
void ValidateRule(const Rule& r, const YAML::Node& node, const ExprValidator& validate,
                  std::vector<std::pair<int, std::string>>* errs) {
  auto add = [&](const char* field, std::string msg) {
    errs->emplace_back(LineOf(node[field], r.line), std::move(msg));
  };
  if (!r.record.empty() && !r.alert.empty()) add("record", "only one of 'record' and 'alert' must be set");
  if (r.record.empty() && r.alert.empty()) add("record", "one of 'record' or 'alert' must be set");
  if (r.expr.empty()) {
    add("expr", "field 'expr' must be set in rule");
  } else if (validate) {
    absl::Status s = validate(r.expr);
    if (!s.ok()) add("expr", absl::StrCat("could not parse expression: ", s.message()));
  }
  if (!r.record.empty()) {
    if (!r.annotations.empty()) add("annotations", "invalid field 'annotations' in recording rule");
    if (r.for_duration != absl::ZeroDuration()) add("for", "invalid field 'for' in recording rule");
    if (r.keep_firing_for != absl::ZeroDuration()) {
      add("keep_firing_for", "invalid field 'keep_firing_for' in recording rule");
    }
    if (!IsValidMetricName(r.record)) add("record", absl::StrCat("invalid recording rule name: ", r.record));
  }
  for (const auto& [k, v] : r.labels) {
    if (!IsValidLabelName(k) || k == kMetricNameLabel) add("labels", absl::StrCat("invalid label name: ", k));
    if (!IsValidUtf8(v)) add("labels", absl::StrCat("invalid label value: ", v));
  }
  for (const auto& [k, v] : r.annotations) {
    if (!IsValidLabelName(k)) add("annotations", absl::StrCat("invalid annotation name: ", k));
  }
  if (!r.is_alerting()) return;
  std::string tmpl_name = "__alert_" + r.alert;
  for (const auto& [k, v] : r.labels) {
    auto t = Template::Parse(tmpl_name, v);
    if (!t.ok()) add("labels", absl::StrFormat("label %s: %s", k, t.status().message()));
  }
  for (const auto& [k, v] : r.annotations) {
    auto t = Template::Parse(tmpl_name, v);
    if (!t.ok()) add("annotations", absl::StrFormat("annotation %s: %s", k, t.status().message()));
  }
}

Rule ParseRule(const YAML::Node& node, Problems& p) {
  Rule r;
  r.line = LineOf(node, 0);
  CheckKeys(node, {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"},
            "rulefmt.RuleNode", p);
  ScalarField(node, "alert", &r.alert, p);
  ScalarField(node, "record", &r.record, p);
  ScalarField(node, "expr", &r.expr, p);
  DurationField(node, "for", &r.for_duration, p);
  DurationField(node, "keep_firing_for", &r.keep_firing_for, p);
  r.labels = StringMap(node, "labels", p);
  r.annotations = StringMap(node, "annotations", p);
  return r;
}

void ParseGroup(const YAML::Node& g, absl::string_view file, const ExprValidator& validate,
                std::set<std::string>& seen, std::vector<RuleGroup>& out, Problems& p) {
  int line = LineOf(g, 0);
  if (!g.IsMap()) {
    p.Add(line, "a group must be a map");
    return;
  }
  CheckKeys(g, {"name", "interval", "limit", "rules"}, "rulefmt.RuleGroup", p);
  RuleGroup group;
  group.file = std::string(file);
  ScalarField(g, "name", &group.name, p);
  if (group.name.empty()) p.Add(line, "Groupname must not be empty");
  if (!seen.insert(group.name).second) {
    p.Add(line, absl::StrFormat("groupname: \"%s\" is repeated in the same file", group.name));
  }
  DurationField(g, "interval", &group.interval, p);
  std::string limit;
  if (ScalarField(g, "limit", &limit, p) && !absl::SimpleAtoi(limit, &group.limit)) {
    p.Add(LineOf(g["limit"], line), absl::StrFormat("cannot unmarshal !!str `%s` into int", limit));
  }
  YAML::Node rules = g["rules"];
  if (rules.IsDefined() && !rules.IsNull() && !rules.IsSequence()) {
    p.Add(LineOf(rules, line), "field rules must be a list");
  } else if (rules.IsDefined() && rules.IsSequence()) {
    for (size_t i = 0; i < rules.size(); ++i) {
      const YAML::Node& rn = rules[i];
      if (!rn.IsMap()) {
        p.Add(LineOf(rn, line), "a rule must be a map");
        continue;
      }
      Rule r = ParseRule(rn, p);
      std::vector<std::pair<int, std::string>> errs;
      ValidateRule(r, rn, validate, &errs);
      for (const auto& [l, msg] : errs) {
        p.Add(l, absl::StrFormat("group \"%s\", rule %d, \"%s\": %s", group.name, i + 1,
                                 r.alert.empty() ? r.record : r.alert, msg));
      }
      group.rules.push_back(std::move(r));
    }
  }
  out.push_back(std::move(group));
}

absl::Status ProblemsStatus(const std::vector<std::string>& problems) {
  return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
}

void ToProto(const StringPairs& in, google::protobuf::RepeatedPtrField<v1::LabelPair>* out) {
  for (const auto& [k, v] : in) {
    v1::LabelPair* l = out->Add();
    l->set_name(k);
    l->set_value(v);
  }
}

StringPairs FromProto(const google::protobuf::RepeatedPtrField<v1::LabelPair>& in) {
  StringPairs out;
  for (const v1::LabelPair& l : in) out.emplace_back(l.name(), l.value());
  return out;
}

}  // namespace

absl::StatusOr<std::vector<RuleGroup>> ParseRuleFile(absl::string_view file_name,
                                                     absl::string_view content,
                                                     const ExprValidator& validate) {
  Problems p(file_name);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(content));
  } catch (const YAML::Exception& e) {
    p.Add(e.mark.line + 1, absl::StrCat("yaml: ", e.msg));
    return ProblemsStatus(p.list());
  }
  std::vector<RuleGroup> groups;
  if (!root.IsDefined() || root.IsNull()) return groups;  // An empty file has no groups.
  if (!root.IsMap()) {
    p.Add(LineOf(root, 1), "a rule file must be a map with a 'groups' list");
    return ProblemsStatus(p.list());
  }
  try {
    CheckKeys(root, {"groups"}, "rulefmt.RuleGroups", p);
    YAML::Node gs = root["groups"];
    std::set<std::string> seen;
    if (gs.IsDefined() && gs.IsSequence()) {
      for (size_t i = 0; i < gs.size(); ++i) ParseGroup(gs[i], file_name, validate, seen, groups, p);
    } else if (gs.IsDefined() && !gs.IsNull()) {
      p.Add(LineOf(gs, 1), "field groups must be a list");
    }
  } catch (const YAML::Exception& e) {  // A structure the checks above did not foresee.
    p.Add(e.mark.line + 1, absl::StrCat("yaml: ", e.msg));
  }
  if (!p.empty()) return ProblemsStatus(p.list());
  return groups;
}

absl::StatusOr<RuleSet> ParseRuleFiles(
    const std::vector<std::pair<std::string, std::string>>& files_and_contents,
    const ExprValidator& validate) {
  RuleSet set;
  std::vector<std::string> problems;
  for (const auto& [name, content] : files_and_contents) {
    auto groups = ParseRuleFile(name, content, validate);
    if (!groups.ok()) {
      problems.emplace_back(groups.status().message());
      continue;
    }
    for (RuleGroup& g : *groups) set.groups.push_back(std::move(g));
  }
  if (!problems.empty()) return ProblemsStatus(problems);
  return set;
}

absl::StatusOr<RuleSet> LoadRuleFiles(const std::vector<std::string>& paths,
                                      const ExprValidator& validate) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const std::string& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read rule file ", path));
    std::stringstream ss;
    ss << in.rdbuf();
    files.emplace_back(path, ss.str());
  }
  return ParseRuleFiles(files, validate);
}

std::string SerializeRuleSet(const RuleSet& rules) {
  v1::RuleSetProto proto;
  for (const RuleGroup& g : rules.groups) {
    v1::RuleGroupProto* gp = proto.add_groups();
    gp->set_name(g.name);
    gp->set_file(g.file);
    gp->set_interval_ms(absl::ToInt64Milliseconds(g.interval));
    gp->set_limit(g.limit);
    for (const Rule& r : g.rules) {
      v1::RuleProto* rp = gp->add_rules();
      rp->set_alert(r.alert);
      rp->set_record(r.record);
      rp->set_expr(r.expr);
      rp->set_for_ms(absl::ToInt64Milliseconds(r.for_duration));
      rp->set_keep_firing_for_ms(absl::ToInt64Milliseconds(r.keep_firing_for));
      ToProto(r.labels, rp->mutable_labels());
      ToProto(r.annotations, rp->mutable_annotations());
      rp->set_line(r.line);
    }
  }
  for (uint64_t h : rules.seeded) proto.add_seeded_hashes(h);
  return SerializeDeterministic(proto);
}

uint64_t RuleSetContentHash(const RuleSet& rules) {
  RuleSet groups_only;
  groups_only.groups = rules.groups;
  const std::string bytes = SerializeRuleSet(groups_only);
  return XXH64(bytes.data(), bytes.size(), 0);
}

absl::StatusOr<RuleSet> DeserializeRuleSet(absl::string_view bytes) {
  v1::RuleSetProto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("malformed rule set encoding");
  }
  RuleSet set;
  for (const v1::RuleGroupProto& gp : proto.groups()) {
    RuleGroup g;
    g.name = gp.name();
    g.file = gp.file();
    g.interval = absl::Milliseconds(gp.interval_ms());
    g.limit = gp.limit();
    for (const v1::RuleProto& rp : gp.rules()) {
      Rule r;
      r.alert = rp.alert();
      r.record = rp.record();
      r.expr = rp.expr();
      r.for_duration = absl::Milliseconds(rp.for_ms());
      r.keep_firing_for = absl::Milliseconds(rp.keep_firing_for_ms());
      r.labels = FromProto(rp.labels());
      r.annotations = FromProto(rp.annotations());
      r.line = rp.line();
      g.rules.push_back(std::move(r));
    }
    set.groups.push_back(std::move(g));
  }
  set.seeded.assign(proto.seeded_hashes().begin(), proto.seeded_hashes().end());
  return set;
}

}  // namespace vigil::alerting
