#include "tools/text_format.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "common/status_macros.h"

namespace vigil::tools {
namespace {

bool IsNameStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == ':'; }
bool IsNameChar(char c) { return IsNameStart(c) || absl::ascii_isdigit(c); }

// A position in the input with error messages that point at it.
class Cursor {
 public:
  explicit Cursor(absl::string_view text) : text_(text) {}

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  void SkipSpaces() {
    while (!AtEnd() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
  }
  bool Consume(absl::string_view token) {
    if (text_.substr(pos_, token.size()) != token) return false;
    pos_ += token.size();
    return true;
  }
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("column ", pos_ + 1, ": ", what, " in \"", text_, "\""));
  }

  // A metric or label name ([a-zA-Z_:][a-zA-Z0-9_:]*); the caller checks
  // the stricter label-name rule.
  absl::StatusOr<std::string> Name() {
    size_t start = pos_;
    if (!IsNameStart(Peek())) return Error("expected a name");
    while (!AtEnd() && IsNameChar(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  // A quoted string; `quotes` lists the accepted opening quote characters.
  absl::StatusOr<std::string> Quoted(absl::string_view quotes) {
    char q = Peek();
    if (q == '\0' || quotes.find(q) == absl::string_view::npos) {
      return Error(absl::StrCat("expected a quoted value (", quotes, ")"));
    }
    ++pos_;
    std::string out;
    while (!AtEnd() && text_[pos_] != q) {
      char c = text_[pos_++];
      if (c != '\\' || q == '`') {
        out.push_back(c);
        continue;
      }
      if (AtEnd()) break;
      char e = text_[pos_++];
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case '\\': case '"': case '\'': out.push_back(e); break;
        default: return Error(absl::StrCat("unknown escape \\", std::string(1, e)));
      }
    }
    if (!Consume(absl::string_view(&q, 1))) return Error("unterminated string");
    return out;
  }

  // The rest of the current whitespace-delimited token.
  absl::string_view Token() {
    size_t start = pos_;
    while (!AtEnd() && text_[pos_] != ' ' && text_[pos_] != '\t') ++pos_;
    return text_.substr(start, pos_ - start);
  }

 private:
  absl::string_view text_;
  size_t pos_ = 0;
};

absl::StatusOr<std::string> LabelName(Cursor& c) {
  ASSIGN_OR_RETURN(std::string name, c.Name());
  if (!IsValidLabelName(name)) return c.Error(absl::StrCat("invalid label name \"", name, "\""));
  return name;
}

// `{a="b", c="d"}` after the opening brace; a trailing comma is allowed.
absl::Status ExpositionLabels(Cursor& c, std::vector<Label>& out) {
  for (;;) {
    c.SkipSpaces();
    if (c.Consume("}")) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string name, LabelName(c));
    c.SkipSpaces();
    if (!c.Consume("=")) return c.Error("expected '='");
    c.SkipSpaces();
    ASSIGN_OR_RETURN(std::string value, c.Quoted("\""));
    for (const Label& l : out) {
      if (l.name == name) return c.Error(absl::StrCat("duplicate label name \"", name, "\""));
    }
    out.push_back(Label{std::move(name), std::move(value)});
    c.SkipSpaces();
    if (c.Consume("}")) return absl::OkStatus();
    if (!c.Consume(",")) return c.Error("expected ',' or '}'");
  }
}

absl::StatusOr<MatchType> MatchOp(Cursor& c) {
  if (c.Consume("=~")) return MatchType::kRegexMatch;
  if (c.Consume("!~")) return MatchType::kRegexNoMatch;
  if (c.Consume("!=")) return MatchType::kNotEqual;
  if (c.Consume("=")) return MatchType::kEqual;
  return c.Error("expected one of = != =~ !~");
}

absl::Status SelectorMatchers(Cursor& c, std::vector<LabelMatcher>& out) {
  for (;;) {
    c.SkipSpaces();
    if (c.Consume("}")) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::string name, LabelName(c));
    c.SkipSpaces();
    ASSIGN_OR_RETURN(MatchType type, MatchOp(c));
    c.SkipSpaces();
    ASSIGN_OR_RETURN(std::string value, c.Quoted("\"'`"));
    absl::StatusOr<LabelMatcher> m = LabelMatcher::Create(type, name, value);
    if (!m.ok()) return c.Error(m.status().message());
    out.push_back(*std::move(m));
    c.SkipSpaces();
    if (c.Consume("}")) return absl::OkStatus();
    if (!c.Consume(",")) return c.Error("expected ',' or '}'");
  }
}

}  // namespace

absl::StatusOr<double> ParseValue(absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(text);
  if (lower == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (lower == "+inf" || lower == "inf") return std::numeric_limits<double>::infinity();
  if (lower == "-inf") return -std::numeric_limits<double>::infinity();
  double v;
  if (lower.empty() || !absl::SimpleAtod(text, &v) || std::isnan(v) || std::isinf(v)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid value \"", text, "\""));
  }
  return v;
}

absl::StatusOr<std::optional<ExpositionSample>> ParseExpositionLine(absl::string_view line) {
  line = absl::StripAsciiWhitespace(line);
  if (line.empty() || line[0] == '#') return std::nullopt;
  Cursor c(line);
  std::vector<Label> labels;
  if (c.Peek() != '{') {
    ASSIGN_OR_RETURN(std::string name, c.Name());
    labels.push_back(Label{std::string(kMetricNameLabel), std::move(name)});
  }
  c.SkipSpaces();
  if (c.Consume("{")) RETURN_IF_ERROR(ExpositionLabels(c, labels));
  Labels sorted(labels);
  if (sorted.MetricName().empty()) return c.Error("missing metric name");
  c.SkipSpaces();
  if (c.AtEnd()) return c.Error("expected a value");
  ExpositionSample s;
  absl::StatusOr<double> v = ParseValue(c.Token());
  if (!v.ok()) return c.Error(v.status().message());
  s.value = *v;
  c.SkipSpaces();
  if (!c.AtEnd()) {
    absl::string_view ts = c.Token();
    int64_t t;
    if (!absl::SimpleAtoi(ts, &t)) return c.Error(absl::StrCat("invalid timestamp \"", ts, "\""));
    s.timestamp_ms = t;
    c.SkipSpaces();
    if (!c.AtEnd()) return c.Error("unexpected text after the timestamp");
  }
  s.labels = std::move(sorted);
  return s;
}

absl::StatusOr<std::vector<LabelMatcher>> ParseSelector(absl::string_view selector) {
  selector = absl::StripAsciiWhitespace(selector);
  Cursor c(selector);
  std::vector<LabelMatcher> matchers;
  if (c.Peek() != '{') {
    ASSIGN_OR_RETURN(std::string name, c.Name());
    matchers.push_back(LabelMatcher::Equal(kMetricNameLabel, name));
  }
  c.SkipSpaces();
  if (c.Consume("{")) RETURN_IF_ERROR(SelectorMatchers(c, matchers));
  c.SkipSpaces();
  if (!c.AtEnd()) return c.Error("unexpected text after the selector");
  bool selective = false;
  for (const LabelMatcher& m : matchers) selective |= !m.MatchesEmpty();
  if (!selective) {
    return absl::InvalidArgumentError(
        absl::StrCat("selector \"", selector,
                     "\" needs at least one matcher that does not match the empty string"));
  }
  return matchers;
}

absl::StatusOr<int64_t> ParseTimeArg(absl::string_view text, int64_t now_ms) {
  absl::string_view rest = absl::StripAsciiWhitespace(text);
  int64_t ms;
  if (absl::SimpleAtoi(rest, &ms)) return ms;
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, rest, &t, &err)) return absl::ToUnixMillis(t);
  bool relative = absl::ConsumePrefix(&rest, "now");
  if (rest.empty() && relative) return now_ms;
  absl::Duration d;
  if ((rest.empty() || (rest[0] != '-' && rest[0] != '+')) || !absl::ParseDuration(rest, &d)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid time \"", text, "\": want milliseconds, RFC 3339, now, or now-DURATION"));
  }
  return now_ms + absl::ToInt64Milliseconds(d);
}

}  // namespace vigil::tools
