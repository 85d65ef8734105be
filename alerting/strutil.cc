#include "alerting/strutil.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vigil::alerting {
namespace {

struct Unit {
  absl::string_view suffix;
  int64_t millis;
};
// In the order model.ParseDuration requires them.
constexpr Unit kUnits[] = {
    {"y", 365LL * 24 * 3600 * 1000}, {"w", 7LL * 24 * 3600 * 1000}, {"d", 24LL * 3600 * 1000},
    {"h", 3600LL * 1000},            {"m", 60LL * 1000},             {"s", 1000},
    {"ms", 1},
};

absl::Status BadDuration(absl::string_view s) {
  return absl::InvalidArgumentError(absl::StrFormat("not a valid duration string: \"%s\"", s));
}

}  // namespace

absl::StatusOr<absl::Duration> ParsePromDuration(absl::string_view s) {
  if (s == "0") return absl::ZeroDuration();
  if (s.empty()) return BadDuration(s);
  absl::string_view rest = s;
  size_t next_unit = 0;  // Units must appear in kUnits order, each at most once.
  int64_t total_ms = 0;
  while (!rest.empty()) {
    size_t n = 0;
    while (n < rest.size() && absl::ascii_isdigit(rest[n])) ++n;
    if (n == 0) return BadDuration(s);
    int64_t value;
    if (!absl::SimpleAtoi(rest.substr(0, n), &value)) return BadDuration(s);
    rest.remove_prefix(n);
    constexpr size_t kMs = 6;
    size_t u = kMs;
    if (!absl::StartsWith(rest, "ms")) {
      u = 0;
      while (u < kMs && !absl::StartsWith(rest, kUnits[u].suffix)) ++u;
      if (u == kMs) return BadDuration(s);
    }
    if (u < next_unit) return BadDuration(s);
    if (value > INT64_MAX / kUnits[u].millis ||
        total_ms > INT64_MAX - value * kUnits[u].millis) {
      return absl::InvalidArgumentError(absl::StrFormat("duration out of range: \"%s\"", s));
    }
    total_ms += value * kUnits[u].millis;
    rest.remove_prefix(kUnits[u].suffix.size());
    next_unit = u + 1;
  }
  return absl::Milliseconds(total_ms);
}

std::string FormatPromDuration(absl::Duration d) {
  int64_t ms = absl::ToInt64Milliseconds(d);
  if (ms == 0) return "0s";
  std::string out;
  for (const Unit& u : kUnits) {
    if (ms >= u.millis) {
      absl::StrAppend(&out, ms / u.millis, u.suffix);
      ms %= u.millis;
    }
  }
  return out;
}

std::string QueryEscape(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else if (c == ' ') {
      out.push_back('+');
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

std::string TableLinkForExpression(absl::string_view expr) {
  return absl::StrCat("/graph?g0.expr=", QueryEscape(expr), "&g0.tab=1");
}

std::string GraphLinkForExpression(absl::string_view expr) {
  return absl::StrCat("/graph?g0.expr=", QueryEscape(expr), "&g0.tab=0");
}

}  // namespace vigil::alerting
