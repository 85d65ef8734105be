// common/matcher.h
//
// LabelMatcher: one `name op "value"` term of a PromQL selector. Regexes are RE2,
// fully anchored as in Prometheus (`=~"a.*"` must match the whole value). A label
// that is absent matches as the empty string, so `{foo=""}` selects series without
// `foo` and `{foo!=""}` those that have it. Immutable and thread-safe once built.
#ifndef VIGIL_COMMON_MATCHER_H_
#define VIGIL_COMMON_MATCHER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/labels.h"

namespace re2 {
class RE2;
}

namespace vigil {

enum class MatchType { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };

class LabelMatcher {
 public:
  // kInvalidArgument if a regex does not compile.
  static absl::StatusOr<LabelMatcher> Create(MatchType type, absl::string_view name,
                                             absl::string_view value);
  // Like Create for a type that cannot fail (kEqual / kNotEqual).
  static LabelMatcher Equal(absl::string_view name, absl::string_view value);

  MatchType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::string& value() const { return value_; }

  bool Matches(absl::string_view v) const;
  bool Matches(const Labels& labels) const { return Matches(labels.Get(name_)); }
  // True when the matcher selects series that lack the label ("" matches).
  bool MatchesEmpty() const { return Matches(absl::string_view()); }
  // For a kRegexMatch that is a plain alternation of literals ("a|b|c"), the
  // literals; empty otherwise. Lets an index turn `=~` into a union of lookups.
  const std::vector<std::string>& set_matches() const { return set_matches_; }

  // `name="value"`, `name=~"re"`, ... as PromQL prints it.
  std::string ToString() const;

 private:
  LabelMatcher(MatchType type, std::string name, std::string value)
      : type_(type), name_(std::move(name)), value_(std::move(value)) {}

  MatchType type_;
  std::string name_;
  std::string value_;
  std::shared_ptr<const re2::RE2> re_;  // Set for the regex types.
  std::vector<std::string> set_matches_;
};

// True if every matcher matches `labels`.
bool MatchesAll(const std::vector<LabelMatcher>& matchers, const Labels& labels);

}  // namespace vigil

#endif  // VIGIL_COMMON_MATCHER_H_
