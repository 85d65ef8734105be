// server/json_format.cc
#include "server/json_format.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace vigil::server {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is invalid.
size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = byte(i);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) {
    n = 2, cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

void AppendSample(std::string* out, int64_t t, absl::string_view value) {
  absl::StrAppend(out, "[", FormatPromTimestamp(t), ",");
  AppendJsonString(out, value);
  out->push_back(']');
}

void AppendSeriesJson(std::string* out, const Series& s, bool matrix) {
  *out += "{\"metric\":";
  AppendLabelsJson(out, s.labels);
  if (!matrix) {
    *out += ",\"value\":";
    if (!s.samples.empty()) {
      AppendSample(out, s.samples.front().t, FormatPromValue(s.samples.front().v));
    }
  } else {
    *out += ",\"values\":[";
    for (size_t i = 0; i < s.samples.size(); ++i) {
      if (i > 0) out->push_back(',');
      AppendSample(out, s.samples[i].t, FormatPromValue(s.samples[i].v));
    }
    out->push_back(']');
  }
  out->push_back('}');
}

}  // namespace

std::string FormatPromValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  const double abs = std::fabs(v);
  const bool exponent = abs != 0 && (abs < 1e-6 || abs >= 1e21);
  char buf[400];  // fixed notation of values below 1e21 is short; this is ample.
  auto [end, ec] = std::to_chars(
      buf, buf + sizeof buf, v,
      exponent ? std::chars_format::scientific : std::chars_format::fixed);
  CHECK(ec == std::errc());
  return std::string(buf, end);
}

std::string FormatPromTimestamp(int64_t ms) {
  std::string out;
  uint64_t t = static_cast<uint64_t>(ms);
  if (ms < 0) {
    out.push_back('-');
    t = 0 - t;
  }
  absl::StrAppend(&out, t / 1000);
  const uint64_t frac = t % 1000;
  if (frac != 0) {
    absl::StrAppend(&out, ".", frac < 100 ? "0" : "", frac < 10 ? "0" : "", frac);
  }
  return out;
}

void AppendJsonString(std::string* out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const uint8_t c = static_cast<uint8_t>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        *out += "\\ufffd";
        ++i;
      } else if (n == 3 && c == 0xe2 && static_cast<uint8_t>(s[i + 1]) == 0x80 &&
                 (static_cast<uint8_t>(s[i + 2]) & 0xfe) == 0xa8) {
        *out += (static_cast<uint8_t>(s[i + 2]) == 0xa8) ? "\\u2028" : "\\u2029";
        i += 3;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20 || c == '<' || c == '>' || c == '&') {
          *out += "\\u00";
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xf]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void AppendLabelsJson(std::string* out, const Labels& labels) {
  out->push_back('{');
  bool first = true;
  for (const Label& l : labels) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(out, l.name);
    out->push_back(':');
    AppendJsonString(out, l.value);
  }
  out->push_back('}');
}

std::string StringListJson(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(&out, values[i]);
  }
  out.push_back(']');
  return out;
}

std::string QueryDataJson(const query::QueryResult& result) {
  std::string out = "{\"resultType\":";
  switch (result.type) {
    case query::ValueType::kScalar:
      out += "\"scalar\",\"result\":";
      AppendSample(&out, result.t, FormatPromValue(result.scalar));
      break;
    case query::ValueType::kString:
      out += "\"string\",\"result\":";
      AppendSample(&out, result.t, result.str);
      break;
    case query::ValueType::kVector:
    case query::ValueType::kMatrix: {
      const bool matrix = result.type == query::ValueType::kMatrix;
      out += matrix ? "\"matrix\",\"result\":[" : "\"vector\",\"result\":[";
      for (size_t i = 0; i < result.series.size(); ++i) {
        if (i > 0) out.push_back(',');
        AppendSeriesJson(&out, result.series[i], matrix);
      }
      out.push_back(']');
      break;
    }
  }
  out.push_back('}');
  return out;
}

std::string SuccessJson(absl::string_view data_json, const std::vector<std::string>& warnings) {
  std::string out = absl::StrCat("{\"status\":\"success\",\"data\":", data_json);
  if (!warnings.empty()) absl::StrAppend(&out, ",\"warnings\":", StringListJson(warnings));
  out.push_back('}');
  return out;
}

std::string ErrorJson(absl::string_view error_type, absl::string_view message) {
  std::string out = "{\"status\":\"error\",\"errorType\":";
  AppendJsonString(&out, error_type);
  out += ",\"error\":";
  AppendJsonString(&out, message);
  out.push_back('}');
  return out;
}

}  // namespace vigil::server
