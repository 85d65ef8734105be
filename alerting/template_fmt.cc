// Go fmt formatting for templates: %v of values, %.4g, and Prometheus' humanize*.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "alerting/template_internal.h"

namespace vigil::alerting {

using internal::Value;
using Kind = internal::Value::Kind;

std::string GoFormatG(double v, int prec) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", prec, v);
  return buf;
}

std::string GoFloatString(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  // Shortest round-trip digits, then Go's %g layout: exponent form when the
  // decimal exponent is < -4 or >= 6 (strconv's choice for the shortest format).
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exp = std::stoi(sci.substr(e + 1));
  if (exp < -4 || exp >= 6) {
    std::string mant = digits.substr(0, 1);
    if (digits.size() > 1) absl::StrAppend(&mant, ".", digits.substr(1));
    return absl::StrFormat("%s%se%c%02d", sign, mant, exp < 0 ? '-' : '+', std::abs(exp));
  }
  if (exp < 0) return absl::StrCat(sign, "0.", std::string(-exp - 1, '0'), digits);
  if (static_cast<int>(digits.size()) <= exp + 1) {
    return absl::StrCat(sign, digits, std::string(exp + 1 - digits.size(), '0'));
  }
  return absl::StrCat(sign, digits.substr(0, exp + 1), ".", digits.substr(exp + 1));
}

namespace {

constexpr const char* kBigPrefixes[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
constexpr const char* kSmallPrefixes[] = {"m", "u", "n", "p", "f", "a", "z", "y"};

// Scales |v| < 1 up by thousands; returns the prefix.
std::string ScaleSmall(double* v) {
  std::string prefix;
  for (const char* p : kSmallPrefixes) {
    if (std::fabs(*v) >= 1) break;
    prefix = p;
    *v *= 1000;
  }
  return prefix;
}

}  // namespace

std::string Humanize(double v) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) return GoFormatG(v, 4);
  std::string prefix;
  if (std::fabs(v) >= 1) {
    for (const char* p : kBigPrefixes) {
      if (std::fabs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
  } else {
    prefix = ScaleSmall(&v);
  }
  return GoFormatG(v, 4) + prefix;
}

std::string Humanize1024(double v) {
  if (std::fabs(v) <= 1 || std::isnan(v) || std::isinf(v)) return GoFormatG(v, 4);
  constexpr const char* kPrefixes[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
  std::string prefix;
  for (const char* p : kPrefixes) {
    if (std::fabs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return GoFormatG(v, 4) + prefix;
}

std::string HumanizeDuration(double v) {
  if (std::isnan(v) || std::isinf(v)) return GoFormatG(v, 4);
  if (v == 0) return GoFormatG(v, 4) + "s";
  if (std::fabs(v) >= 1) {
    std::string sign;
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    int64_t whole = static_cast<int64_t>(v);
    int64_t seconds = whole % 60, minutes = (whole / 60) % 60, hours = (whole / 3600) % 24;
    int64_t days = whole / 86400;
    if (days != 0) return absl::StrFormat("%s%dd %dh %dm %ds", sign, days, hours, minutes, seconds);
    if (hours != 0) return absl::StrFormat("%s%dh %dm %ds", sign, hours, minutes, seconds);
    if (minutes != 0) return absl::StrFormat("%s%dm %ds", sign, minutes, seconds);
    return sign + GoFormatG(v, 4) + "s";
  }
  std::string prefix = ScaleSmall(&v);
  return GoFormatG(v, 4) + prefix + "s";
}

std::string HumanizePercentage(double v) { return GoFormatG(v * 100, 4) + "%"; }

absl::StatusOr<std::string> HumanizeTimestamp(double v) {
  if (std::isnan(v) || std::isinf(v)) return GoFormatG(v, 4);
  double ns = v * 1e9;
  if (ns > static_cast<double>(std::numeric_limits<int64_t>::max()) ||
      ns < static_cast<double>(std::numeric_limits<int64_t>::min())) {
    return absl::OutOfRangeError(absl::StrCat(
        GoFloatString(v), " cannot be represented as a nanoseconds timestamp since it overflows int64"));
  }
  // model.TimeFromUnixNano keeps milliseconds, truncating toward zero.
  int64_t ms = static_cast<int64_t>(ns) / 1000000;
  return absl::FormatTime("%Y-%m-%d %H:%M:%E*S +0000 UTC", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

std::string GoTitle(absl::string_view s) {
  std::string out(s);
  bool prev_sep = true;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    bool sep = u < 0x80 && !absl::ascii_isalnum(u) && u != '_';
    if (prev_sep && !sep) c = absl::ascii_toupper(u);
    prev_sep = sep;
  }
  return out;
}

namespace internal {

Value Value::Bool(bool v) {
  Value r;
  r.kind = Kind::kBool;
  r.b = v;
  return r;
}
Value Value::Int(int64_t v) {
  Value r;
  r.kind = Kind::kInt;
  r.i = v;
  return r;
}
Value Value::Float(double v) {
  Value r;
  r.kind = Kind::kFloat;
  r.f = v;
  return r;
}
Value Value::String(std::string v) {
  Value r;
  r.kind = Kind::kString;
  r.s = std::move(v);
  return r;
}
Value Value::Map(StrMap m) {
  Value r;
  r.kind = Kind::kStrMap;
  r.smap = std::make_shared<const StrMap>(std::move(m));
  return r;
}
Value Value::Struct(Object o) {
  Value r;
  r.kind = Kind::kObject;
  r.obj = std::make_shared<const Object>(std::move(o));
  return r;
}
Value Value::List(std::vector<Value> l) {
  Value r;
  r.kind = Kind::kList;
  r.list = std::make_shared<const std::vector<Value>>(std::move(l));
  return r;
}

std::string TypeName(const Value& v) {
  switch (v.kind) {
    case Kind::kNil: return "nil";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float64";
    case Kind::kString: return "string";
    case Kind::kStrMap: return "map[string]string";
    case Kind::kObject: return "struct";
    case Kind::kList: return "[]interface {}";
  }
  return "?";
}

std::string FormatValue(const Value& v) {
  switch (v.kind) {
    case Kind::kNil: return "<nil>";
    case Kind::kBool: return v.b ? "true" : "false";
    case Kind::kInt: return absl::StrCat(v.i);
    case Kind::kFloat: return GoFloatString(v.f);
    case Kind::kString: return v.s;
    case Kind::kStrMap:
      return absl::StrCat("map[", absl::StrJoin(*v.smap, " ", absl::PairFormatter(":")), "]");
    case Kind::kObject: {
      std::vector<std::string> parts;
      for (const auto& [k, f] : *v.obj) parts.push_back(FormatValue(f));
      return absl::StrCat("{", absl::StrJoin(parts, " "), "}");
    }
    case Kind::kList: {
      std::vector<std::string> parts;
      for (const Value& e : *v.list) parts.push_back(FormatValue(e));
      return absl::StrCat("[", absl::StrJoin(parts, " "), "]");
    }
  }
  return "";
}

bool Truth(const Value& v) {
  switch (v.kind) {
    case Kind::kNil: return false;
    case Kind::kBool: return v.b;
    case Kind::kInt: return v.i != 0;
    case Kind::kFloat: return v.f != 0;
    case Kind::kString: return !v.s.empty();
    case Kind::kStrMap: return !v.smap->empty();
    case Kind::kObject: return true;
    case Kind::kList: return !v.list->empty();
  }
  return false;
}

namespace {
// Go's strconv.ParseFloat spellings, which absl::SimpleAtod mostly shares.
absl::StatusOr<double> ParseGoFloat(absl::string_view s) {
  double d;
  absl::string_view t = s;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) t.remove_prefix(1);
  bool word = absl::EqualsIgnoreCase(t, "inf") || absl::EqualsIgnoreCase(t, "infinity") ||
              absl::EqualsIgnoreCase(t, "nan");
  bool numeric = !t.empty() && (absl::ascii_isdigit(t[0]) || t[0] == '.');
  if ((word || numeric) && absl::SimpleAtod(s, &d)) return d;
  return absl::InvalidArgumentError(
      absl::StrCat("strconv.ParseFloat: parsing \"", s, "\": invalid syntax"));
}
}  // namespace

absl::StatusOr<double> ToFloat(const Value& v) {
  switch (v.kind) {
    case Kind::kFloat: return v.f;
    case Kind::kInt: return static_cast<double>(v.i);
    case Kind::kString: return ParseGoFloat(v.s);
    default:
      return absl::InvalidArgumentError(absl::StrCat("can't convert ", TypeName(v), " to float"));
  }
}

}  // namespace internal
}  // namespace vigil::alerting
