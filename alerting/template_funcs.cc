// The template function table: Go's text/template builtins and Prometheus'
// template functions (template/template.go), plus Go's Sprintf.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "alerting/strutil.h"
#include "alerting/template_internal.h"
#include "common/status_macros.h"
#include "re2/re2.h"

namespace vigil::alerting::internal {
namespace {

using Kind = Value::Kind;
using Args = std::vector<Value>;

std::string BadVerb(char verb, const Value& v) {
  return absl::StrCat("%!", std::string(1, verb), "(", TypeName(v), "=", FormatValue(v), ")");
}

std::string Pad(std::string s, int width, bool left) {
  if (width <= static_cast<int>(s.size())) return s;
  std::string fill(width - s.size(), ' ');
  return left ? s + fill : fill + s;
}

std::string GoQuote(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\x%02x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

struct Spec {
  std::string flags;
  int width = -1;
  int prec = -1;
  char verb = 'v';
};

std::string CFormat(const Spec& spec, const char* length, char verb, auto value) {
  std::string f = "%" + spec.flags;
  if (spec.width >= 0) absl::StrAppend(&f, spec.width);
  if (spec.prec >= 0) absl::StrAppend(&f, ".", spec.prec);
  absl::StrAppend(&f, length, std::string(1, verb));
  char buf[512];
  std::snprintf(buf, sizeof buf, f.c_str(), value);
  return buf;
}

std::string FormatOne(const Spec& spec, const Value& v) {
  bool left = spec.flags.find('-') != std::string::npos;
  switch (spec.verb) {
    case 'v':
      return Pad(FormatValue(v), spec.width, left);
    case 's':
      if (v.kind == Kind::kInt || v.kind == Kind::kFloat || v.kind == Kind::kBool) {
        return BadVerb(spec.verb, v);
      }
      return Pad(spec.prec >= 0 ? FormatValue(v).substr(0, spec.prec) : FormatValue(v),
                 spec.width, left);
    case 'q':
      if (v.kind != Kind::kString) return BadVerb(spec.verb, v);
      return Pad(GoQuote(v.s), spec.width, left);
    case 't':
      if (v.kind != Kind::kBool) return BadVerb(spec.verb, v);
      return Pad(FormatValue(v), spec.width, left);
    case 'd':
      if (v.kind != Kind::kInt) return BadVerb(spec.verb, v);
      return CFormat(spec, "ll", 'd', static_cast<long long>(v.i));
    case 'x':
    case 'X':
      if (v.kind == Kind::kInt) return CFormat(spec, "ll", spec.verb, static_cast<long long>(v.i));
      if (v.kind != Kind::kString) return BadVerb(spec.verb, v);
      {
        std::string hex;
        for (unsigned char c : v.s) {
          absl::StrAppendFormat(&hex, spec.verb == 'x' ? "%02x" : "%02X", c);
        }
        return Pad(hex, spec.width, left);
      }
    case 'e': case 'E': case 'f': case 'F': case 'g': case 'G':
      if (v.kind != Kind::kFloat) return BadVerb(spec.verb, v);
      if (std::isnan(v.f) || std::isinf(v.f)) return Pad(GoFloatString(v.f), spec.width, left);
      if ((spec.verb == 'g' || spec.verb == 'G') && spec.prec < 0) {
        return Pad(GoFloatString(v.f), spec.width, left);
      }
      return CFormat(spec, "", spec.verb, v.f);
    default:
      return BadVerb(spec.verb, v);
  }
}

}  // namespace

std::string GoSprintf(absl::string_view format, const std::vector<Value>& args) {
  std::string out;
  size_t argi = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out.push_back(format[i]);
      continue;
    }
    Spec spec;
    ++i;
    while (i < format.size() && absl::string_view("-+# 0").find(format[i]) != absl::string_view::npos) {
      spec.flags.push_back(format[i++]);
    }
    auto read_int = [&](int* n) {
      *n = 0;
      while (i < format.size() && absl::ascii_isdigit(format[i])) *n = *n * 10 + (format[i++] - '0');
    };
    if (i < format.size() && absl::ascii_isdigit(format[i])) read_int(&spec.width);
    if (i < format.size() && format[i] == '.') {
      ++i;
      read_int(&spec.prec);
    }
    if (i >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    spec.verb = format[i];
    if (spec.verb == '%') {
      out.push_back('%');
      continue;
    }
    if (argi >= args.size()) {
      absl::StrAppend(&out, "%!", std::string(1, spec.verb), "(MISSING)");
      continue;
    }
    out += FormatOne(spec, args[argi++]);
  }
  if (argi < args.size()) {
    std::vector<std::string> extra;
    for (; argi < args.size(); ++argi) {
      extra.push_back(absl::StrCat(TypeName(args[argi]), "=", FormatValue(args[argi])));
    }
    absl::StrAppend(&out, "%!(EXTRA ", absl::StrJoin(extra, ", "), ")");
  }
  return out;
}

namespace {

absl::Status WantArgs(const Args& args, size_t n) {
  if (args.size() == n) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("wrong number of args: want ", n, " got ", args.size()));
}

absl::StatusOr<std::string> StringArg(const Value& v) {
  if (v.kind == Kind::kString) return v.s;
  return absl::InvalidArgumentError(
      absl::StrCat("wrong type for value; expected string; got ", TypeName(v)));
}

// Go's eq/lt: basic kinds only, and both sides of the same kind.
absl::StatusOr<int> Compare(const Value& a, const Value& b, bool ordered) {
  auto basic = [](const Value& v) {
    return v.kind == Kind::kBool || v.kind == Kind::kInt || v.kind == Kind::kFloat ||
           v.kind == Kind::kString;
  };
  if (!basic(a) || !basic(b) || (ordered && (a.kind == Kind::kBool || b.kind == Kind::kBool))) {
    return absl::InvalidArgumentError("invalid type for comparison");
  }
  if (a.kind != b.kind) return absl::InvalidArgumentError("incompatible types for comparison");
  switch (a.kind) {
    case Kind::kBool: return a.b == b.b ? 0 : 1;
    case Kind::kInt: return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
    case Kind::kFloat:
      if (a.f < b.f) return -1;
      return a.f > b.f ? 1 : (a.f == b.f ? 0 : 2);  // 2: unordered (NaN)
    default: return a.s < b.s ? -1 : (a.s > b.s ? 1 : 0);
  }
}

TemplateFunc CompareFunc(std::function<bool(int)> ok, bool ordered) {
  return [ok, ordered](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 2));
    ASSIGN_OR_RETURN(int c, Compare(args[0], args[1], ordered));
    return Value::Bool(ok(c));
  };
}

TemplateFunc FloatToString(std::function<absl::StatusOr<std::string>(double)> f) {
  return [f](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 1));
    ASSIGN_OR_RETURN(double v, ToFloat(args[0]));
    ASSIGN_OR_RETURN(std::string s, f(v));
    return Value::String(std::move(s));
  };
}

TemplateFunc StringToString(std::function<std::string(const std::string&)> f) {
  return [f](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 1));
    ASSIGN_OR_RETURN(std::string s, StringArg(args[0]));
    return Value::String(f(s));
  };
}

// Go's fmt.Sprint: a space between operands when neither is a string.
std::string GoSprint(const Args& args) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0 && args[i].kind != Kind::kString && args[i - 1].kind != Kind::kString) out += " ";
    out += FormatValue(args[i]);
  }
  return out;
}

// net.SplitHostPort, reduced to what stripPort/stripDomain need.
bool SplitHostPort(absl::string_view hp, std::string* host, std::string* port) {
  if (!hp.empty() && hp[0] == '[') {
    size_t close = hp.find(']');
    if (close == absl::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':') {
      return false;
    }
    absl::string_view p = hp.substr(close + 2);
    if (p.find_first_of("[]:") != absl::string_view::npos) return false;
    *host = std::string(hp.substr(1, close - 1));
    *port = std::string(p);
    return true;
  }
  size_t colon = hp.rfind(':');
  if (colon == absl::string_view::npos || hp.find(':') != colon) return false;
  *host = std::string(hp.substr(0, colon));
  *port = std::string(hp.substr(colon + 1));
  return true;
}

bool LooksLikeIP(absl::string_view host) {
  if (host.find(':') != absl::string_view::npos) return true;  // IPv6
  std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4) return false;
  for (absl::string_view p : parts) {
    int n;
    if (p.empty() || p.size() > 3 || !absl::SimpleAtoi(p, &n) || n > 255) return false;
  }
  return true;
}

// Go's regexp replacement syntax ($1, ${1}) to RE2's (\1).
std::string GoReplacementToRE2(absl::string_view repl) {
  std::string out;
  for (size_t i = 0; i < repl.size(); ++i) {
    char c = repl[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '$' && i + 1 < repl.size() && repl[i + 1] == '$') {
      out.push_back('$');
      ++i;
    } else if (c == '$') {
      size_t j = i + 1;
      bool braced = j < repl.size() && repl[j] == '{';
      if (braced) ++j;
      size_t start = j;
      while (j < repl.size() && absl::ascii_isdigit(repl[j])) ++j;
      if (j == start || (braced && (j >= repl.size() || repl[j] != '}'))) {
        out.push_back(c);
        continue;
      }
      absl::StrAppend(&out, "\\", repl.substr(start, j - start));
      i = braced ? j : j - 1;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<Value> SampleField(const Value& s, absl::string_view field) {
  if (s.kind != Kind::kObject || !s.obj->count(std::string(field))) {
    return absl::InvalidArgumentError(absl::StrCat("expected a sample, got ", TypeName(s)));
  }
  return s.obj->at(std::string(field));
}

using FuncTable = absl::flat_hash_map<std::string, TemplateFunc>;

void AddGoBuiltins(FuncTable& t) {
  t["eq"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    if (args.size() < 2) return absl::InvalidArgumentError("missing argument for comparison");
    for (size_t i = 1; i < args.size(); ++i) {
      ASSIGN_OR_RETURN(int c, Compare(args[0], args[i], false));
      if (c == 0) return Value::Bool(true);
    }
    return Value::Bool(false);
  };
  t["ne"] = CompareFunc([](int c) { return c != 0; }, false);
  t["lt"] = CompareFunc([](int c) { return c == -1; }, true);
  t["le"] = CompareFunc([](int c) { return c == -1 || c == 0; }, true);
  t["gt"] = CompareFunc([](int c) { return c == 1; }, true);
  t["ge"] = CompareFunc([](int c) { return c == 1 || c == 0; }, true);
  t["and"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    if (args.empty()) return absl::InvalidArgumentError("wrong number of args for and");
    for (const Value& a : args) {
      if (!Truth(a)) return a;
    }
    return args.back();
  };
  t["or"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    if (args.empty()) return absl::InvalidArgumentError("wrong number of args for or");
    for (const Value& a : args) {
      if (Truth(a)) return a;
    }
    return args.back();
  };
  t["not"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 1));
    return Value::Bool(!Truth(args[0]));
  };
  t["len"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 1));
    const Value& v = args[0];
    if (v.kind == Kind::kString) return Value::Int(v.s.size());
    if (v.kind == Kind::kStrMap) return Value::Int(v.smap->size());
    if (v.kind == Kind::kList) return Value::Int(v.list->size());
    return absl::InvalidArgumentError(absl::StrCat("len of type ", TypeName(v)));
  };
  t["index"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 2));
    const Value& v = args[0];
    if (v.kind == Kind::kStrMap && args[1].kind == Kind::kString) {
      auto it = v.smap->find(args[1].s);
      return Value::String(it == v.smap->end() ? "" : it->second);
    }
    if (v.kind == Kind::kList && args[1].kind == Kind::kInt) {
      if (args[1].i < 0 || args[1].i >= static_cast<int64_t>(v.list->size())) {
        return absl::InvalidArgumentError(absl::StrCat("index out of range: ", args[1].i));
      }
      return (*v.list)[args[1].i];
    }
    return absl::InvalidArgumentError(absl::StrCat("can't index item of type ", TypeName(v)));
  };
  t["print"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    return Value::String(GoSprint(args));
  };
  t["println"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    std::vector<std::string> parts;
    for (const Value& a : args) parts.push_back(FormatValue(a));
    return Value::String(absl::StrJoin(parts, " ") + "\n");
  };
  t["printf"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    if (args.empty()) return absl::InvalidArgumentError("wrong number of args for printf");
    ASSIGN_OR_RETURN(std::string format, StringArg(args[0]));
    return Value::String(GoSprintf(format, Args(args.begin() + 1, args.end())));
  };
  t["urlquery"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    return Value::String(QueryEscape(GoSprint(args)));
  };
  t["html"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    return Value::String(absl::StrReplaceAll(
        GoSprint(args), {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&#34;"},
                         {"'", "&#39;"}}));
  };
}

void AddPrometheusFormatting(FuncTable& t) {
  auto ok = [](std::string (*f)(double)) {
    return [f](double v) -> absl::StatusOr<std::string> { return f(v); };
  };
  t["humanize"] = FloatToString(ok(&Humanize));
  t["humanize1024"] = FloatToString(ok(&Humanize1024));
  t["humanizeDuration"] = FloatToString(ok(&HumanizeDuration));
  t["humanizePercentage"] = FloatToString(ok(&HumanizePercentage));
  t["humanizeTimestamp"] = FloatToString(&HumanizeTimestamp);
  t["toUpper"] = StringToString([](const std::string& s) { return absl::AsciiStrToUpper(s); });
  t["toLower"] = StringToString([](const std::string& s) { return absl::AsciiStrToLower(s); });
  t["title"] = StringToString([](const std::string& s) { return GoTitle(s); });
  t["safeHtml"] = StringToString([](const std::string& s) { return s; });
  t["graphLink"] = StringToString([](const std::string& s) { return GraphLinkForExpression(s); });
  t["tableLink"] = StringToString([](const std::string& s) { return TableLinkForExpression(s); });
  t["stripPort"] = StringToString([](const std::string& s) {
    std::string host, port;
    return SplitHostPort(s, &host, &port) ? host : s;
  });
  t["stripDomain"] = StringToString([](const std::string& s) {
    std::string host, port;
    if (!SplitHostPort(s, &host, &port)) host = s;
    if (LooksLikeIP(host)) return s;
    host = host.substr(0, host.find('.'));
    if (port.empty()) return host;
    return absl::StrCat(host.find(':') != std::string::npos ? "[" + host + "]" : host, ":", port);
  });
  t["match"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 2));
    ASSIGN_OR_RETURN(std::string pattern, StringArg(args[0]));
    ASSIGN_OR_RETURN(std::string text, StringArg(args[1]));
    RE2 re(pattern, RE2::Quiet);
    if (!re.ok()) return absl::InvalidArgumentError("error parsing regexp: " + re.error());
    return Value::Bool(RE2::PartialMatch(text, re));
  };
  t["reReplaceAll"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 3));
    ASSIGN_OR_RETURN(std::string pattern, StringArg(args[0]));
    ASSIGN_OR_RETURN(std::string repl, StringArg(args[1]));
    ASSIGN_OR_RETURN(std::string text, StringArg(args[2]));
    RE2 re(pattern, RE2::Quiet);
    if (!re.ok()) return absl::InvalidArgumentError("error parsing regexp: " + re.error());
    RE2::GlobalReplace(&text, re, GoReplacementToRE2(repl));
    return Value::String(text);
  };
  t["parseDuration"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 1));
    ASSIGN_OR_RETURN(std::string s, StringArg(args[0]));
    ASSIGN_OR_RETURN(absl::Duration d, ParsePromDuration(s));
    return Value::Float(absl::ToDoubleSeconds(d));
  };
  t["externalURL"] = [](const FuncContext& ctx, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 0));
    return Value::String(ctx.external_url);
  };
  t["pathPrefix"] = [](const FuncContext& ctx, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 0));
    absl::string_view url = ctx.external_url;
    size_t scheme = url.find("://");
    size_t path = url.find('/', scheme == absl::string_view::npos ? 0 : scheme + 3);
    return Value::String(path == absl::string_view::npos ? "" : std::string(url.substr(path)));
  };
}

void AddPrometheusQuery(FuncTable& t) {
  t["query"] = [](const FuncContext& ctx, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 1));
    ASSIGN_OR_RETURN(std::string expr, StringArg(args[0]));
    if (ctx.query == nullptr || !*ctx.query) {
      return absl::FailedPreconditionError("query is not available in this context");
    }
    ASSIGN_OR_RETURN(std::vector<Series> series, (*ctx.query)(expr));
    std::vector<Value> samples;
    for (const Series& s : series) {
      StrMap labels;
      for (const Label& l : s.labels) labels[l.name] = l.value;
      double v = s.samples.empty() ? 0 : s.samples.back().v;
      samples.push_back(
          Value::Struct({{"Labels", Value::Map(std::move(labels))}, {"Value", Value::Float(v)}}));
    }
    return Value::List(std::move(samples));
  };
  t["first"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 1));
    if (args[0].kind != Kind::kList) return absl::InvalidArgumentError("first() needs a vector");
    if (args[0].list->empty()) {
      return absl::InvalidArgumentError("first() called on vector with no elements");
    }
    return args[0].list->front();
  };
  t["value"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 1));
    return SampleField(args[0], "Value");
  };
  t["label"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 2));
    ASSIGN_OR_RETURN(std::string name, StringArg(args[0]));
    ASSIGN_OR_RETURN(Value labels, SampleField(args[1], "Labels"));
    auto it = labels.smap->find(name);
    return Value::String(it == labels.smap->end() ? "" : it->second);
  };
  t["strvalue"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 1));
    ASSIGN_OR_RETURN(Value labels, SampleField(args[0], "Labels"));
    auto it = labels.smap->find("__value__");
    return Value::String(it == labels.smap->end() ? "" : it->second);
  };
  t["sortByLabel"] = [](const FuncContext&, const Args& args) -> absl::StatusOr<Value> {
    RETURN_IF_ERROR(WantArgs(args, 2));
    ASSIGN_OR_RETURN(std::string name, StringArg(args[0]));
    if (args[1].kind != Kind::kList) return absl::InvalidArgumentError("sortByLabel needs a vector");
    std::vector<Value> v = *args[1].list;
    auto key = [&name](const Value& s) -> std::string {
      if (s.kind != Kind::kObject || !s.obj->count("Labels")) return "";
      const StrMap& m = *s.obj->at("Labels").smap;
      auto it = m.find(name);
      return it == m.end() ? "" : it->second;
    };
    std::stable_sort(v.begin(), v.end(),
                     [&key](const Value& a, const Value& b) { return key(a) < key(b); });
    return Value::List(std::move(v));
  };
}

const FuncTable& Funcs() {
  static const FuncTable* table = [] {
    auto* t = new FuncTable;
    AddGoBuiltins(*t);
    AddPrometheusFormatting(*t);
    AddPrometheusQuery(*t);
    return t;
  }();
  return *table;
}

}  // namespace

const TemplateFunc* LookupFunc(absl::string_view name) {
  auto it = Funcs().find(name);
  return it == Funcs().end() ? nullptr : &it->second;
}

}  // namespace vigil::alerting::internal
