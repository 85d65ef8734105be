// server/api_params.cc
#include "server/api_params.h"

#include <cmath>
#include <iterator>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace vigil::server {
namespace {

// Go's strconv.ParseFloat accepts what absl::SimpleAtod does, minus surrounding
// whitespace, which Go rejects.
bool ParseGoFloat(absl::string_view s, double* out) {
  if (s.empty() || absl::ascii_isspace(s.front()) || absl::ascii_isspace(s.back())) return false;
  return absl::SimpleAtod(s, out);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool UrlDecode(absl::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out->push_back(' ');
    } else if (in[i] == '%') {
      const int hi = i + 1 < in.size() ? HexValue(in[i + 1]) : -1;
      const int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out->push_back(in[i]);
    }
  }
  return true;
}

}  // namespace

void ParseQueryString(absl::string_view query, ParamMap* out) {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::string name, value;
    if (!UrlDecode(pair.substr(0, eq), &name)) continue;
    if (eq != absl::string_view::npos && !UrlDecode(pair.substr(eq + 1), &value)) continue;
    out->emplace(std::move(name), std::move(value));
  }
}

absl::StatusOr<int64_t> ParseApiTime(absl::string_view s) {
  double secs;
  if (ParseGoFloat(s, &secs) && std::isfinite(secs)) {
    double whole;
    const double frac = std::modf(secs, &whole);
    const double ms = whole * 1000 + std::round(frac * 1000);
    if (ms >= static_cast<double>(kMinTimeMs) && ms <= static_cast<double>(kMaxTimeMs)) {
      return static_cast<int64_t>(ms);
    }
  }
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, s, &t, &err)) {
    return absl::ToUnixMillis(t);
  }
  return absl::InvalidArgumentError(absl::StrCat("cannot parse \"", s, "\" to a valid timestamp"));
}

absl::StatusOr<absl::Duration> ParsePromDuration(absl::string_view s) {
  const absl::Status bad =
      absl::InvalidArgumentError(absl::StrCat("cannot parse \"", s, "\" to a valid duration"));
  if (s == "0") return absl::ZeroDuration();
  if (s.empty()) return bad;
  // Units must appear in this order, each at most once (model.ParseDuration).
  static constexpr struct {
    absl::string_view unit;
    int64_t ms;
  } kUnits[] = {{"y", 365LL * 86400000}, {"w", 7LL * 86400000}, {"d", 86400000},
                {"h", 3600000},          {"m", 60000},          {"s", 1000},
                {"ms", 1}};
  int64_t total = 0;
  size_t next_unit = 0;
  while (!s.empty()) {
    size_t digits = 0;
    while (digits < s.size() && absl::ascii_isdigit(s[digits])) ++digits;
    if (digits == 0 || digits > 18) return bad;
    int64_t n;
    if (!absl::SimpleAtoi(s.substr(0, digits), &n)) return bad;
    s.remove_prefix(digits);
    size_t u = next_unit;
    // "ms" before "m": try the longest unit that matches at this position.
    while (u < std::size(kUnits)) {
      const bool match = absl::StartsWith(s, kUnits[u].unit) &&
                         !(kUnits[u].unit == "m" && absl::StartsWith(s, "ms"));
      if (match) break;
      ++u;
    }
    if (u == std::size(kUnits)) return bad;
    if (n > (INT64_MAX - total) / kUnits[u].ms) return bad;
    total += n * kUnits[u].ms;
    s.remove_prefix(kUnits[u].unit.size());
    next_unit = u + 1;
  }
  return absl::Milliseconds(total);
}

absl::StatusOr<absl::Duration> ParseApiDuration(absl::string_view s) {
  double secs;
  if (ParseGoFloat(s, &secs)) {
    if (std::isnan(secs) || std::fabs(secs * 1e9) >= 9.2e18) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot parse \"", s, "\" to a valid duration. It overflows int64"));
    }
    return absl::Nanoseconds(static_cast<int64_t>(secs * 1e9));
  }
  return ParsePromDuration(s);
}

}  // namespace vigil::server
