#include "common/matcher.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "re2/re2.h"

namespace vigil {

namespace {

// "a|b|c" with no regex metacharacters -> {"a","b","c"}.
std::vector<std::string> FindSetMatches(absl::string_view pattern) {
  static constexpr absl::string_view kMeta = "\\.+*?()[]{}^$";
  for (char c : pattern) {
    if (kMeta.find(c) != absl::string_view::npos) return {};
  }
  std::vector<std::string> out = absl::StrSplit(pattern, '|');
  return out;
}

}  // namespace

absl::StatusOr<LabelMatcher> LabelMatcher::Create(MatchType type, absl::string_view name,
                                                  absl::string_view value) {
  LabelMatcher m(type, std::string(name), std::string(value));
  if (type == MatchType::kRegexMatch || type == MatchType::kRegexNoMatch) {
    RE2::Options opts;
    opts.set_log_errors(false);
    opts.set_dot_nl(true);  // Go's regexp in Prometheus uses (?s).
    auto re = std::make_shared<RE2>(absl::StrCat("^(?:", value, ")$"), opts);
    if (!re->ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid regular expression \"", value, "\": ", re->error()));
    }
    m.re_ = std::move(re);
    if (type == MatchType::kRegexMatch) m.set_matches_ = FindSetMatches(value);
  }
  return m;
}

LabelMatcher LabelMatcher::Equal(absl::string_view name, absl::string_view value) {
  return LabelMatcher(MatchType::kEqual, std::string(name), std::string(value));
}

bool LabelMatcher::Matches(absl::string_view v) const {
  switch (type_) {
    case MatchType::kEqual:
      return v == value_;
    case MatchType::kNotEqual:
      return v != value_;
    case MatchType::kRegexMatch:
      return RE2::FullMatch(re2::StringPiece(v.data(), v.size()), *re_);
    case MatchType::kRegexNoMatch:
      return !RE2::FullMatch(re2::StringPiece(v.data(), v.size()), *re_);
  }
  return false;
}

std::string LabelMatcher::ToString() const {
  absl::string_view op;
  switch (type_) {
    case MatchType::kEqual: op = "="; break;
    case MatchType::kNotEqual: op = "!="; break;
    case MatchType::kRegexMatch: op = "=~"; break;
    case MatchType::kRegexNoMatch: op = "!~"; break;
  }
  std::string quoted;
  for (char c : value_) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    if (c == '\n') { quoted.append("\\n"); continue; }
    quoted.push_back(c);
  }
  return absl::StrCat(name_, op, "\"", quoted, "\"");
}

bool MatchesAll(const std::vector<LabelMatcher>& matchers, const Labels& labels) {
  for (const LabelMatcher& m : matchers) {
    if (!m.Matches(labels)) return false;
  }
  return true;
}

}  // namespace vigil
