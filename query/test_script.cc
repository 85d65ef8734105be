#include "query/test_script.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "query/memory_source.h"
#include "query/parser.h"

namespace vigil::query {
namespace {

constexpr double kEpsilon = 0.000001;
constexpr int64_t kMinute = 60'000;

bool ParseFloat(absl::string_view s, double* out) {
  std::string str(s);
  if (str.empty()) return false;
  char* end = nullptr;
  *out = std::strtod(str.c_str(), &end);
  return end == str.c_str() + str.size();
}

// Splits "metric{a="b c"} rest" after the selector (quotes and braces respected).
std::pair<absl::string_view, absl::string_view> SplitSelector(absl::string_view line) {
  int depth = 0;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote != 0) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (c == '"' || c == '\'' || c == '`') {
      quote = c;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}') {
      --depth;
    } else if (depth == 0 && absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return {line.substr(0, i), absl::StripAsciiWhitespace(line.substr(i))};
    }
  }
  return {line, ""};
}

absl::StatusOr<Labels> ParseSeriesLabels(absl::string_view sel) {
  if (absl::StripAsciiWhitespace(sel) == "{}") return Labels();
  ASSIGN_OR_RETURN(std::vector<LabelMatcher> ms, ParseMetricSelector(sel));
  Labels l;
  for (const LabelMatcher& m : ms) {
    if (m.type() != MatchType::kEqual) {
      return absl::InvalidArgumentError(absl::StrCat("series must use '=': ", sel));
    }
    l.Set(m.name(), m.value());
  }
  return l;
}

// One value item of a load line; nullopt entries are omitted steps (`_`).
absl::Status ExpandItem(absl::string_view item, std::vector<std::optional<double>>* out) {
  int64_t times = -1;
  size_t x = item.rfind('x');
  if (x != absl::string_view::npos && x + 1 < item.size() &&
      absl::SimpleAtoi(item.substr(x + 1), &times)) {
    item = item.substr(0, x);
  } else {
    times = -1;
  }
  auto bad = [&] { return absl::InvalidArgumentError(absl::StrCat("bad series value: ", item)); };
  if (item == "_") {
    for (int64_t i = 0; i < std::max<int64_t>(times, 1); ++i) out->push_back(std::nullopt);
    return absl::OkStatus();
  }
  if (item == "stale") {
    out->push_back(StaleNaN());
    return absl::OkStatus();
  }
  double v;
  if (ParseFloat(item, &v)) {
    for (int64_t i = 0; i <= std::max<int64_t>(times, 0); ++i) out->push_back(v);
    return absl::OkStatus();
  }
  if (times < 0) return bad();
  // start[+-]increment: split at the last sign that is not leading or an exponent's.
  for (size_t i = item.size(); i-- > 1;) {
    if ((item[i] != '+' && item[i] != '-') || item[i - 1] == 'e' || item[i - 1] == 'E') continue;
    double start, incr;
    if (!ParseFloat(item.substr(0, i), &start) || !ParseFloat(item.substr(i), &incr)) return bad();
    out->push_back(start);
    for (int64_t k = 1; k <= times; ++k) {
      start += incr;  // accumulated, as Prometheus does
      out->push_back(start);
    }
    return absl::OkStatus();
  }
  return bad();
}

struct Expected {
  bool scalar = false;
  Labels labels;
  double value = 0;
};

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return absl::StrCat(v);
}

// Compares a vector (or scalar) result with the expectation; "" when equal.
std::string Compare(const QueryResult& r, const std::vector<Expected>& want, bool ordered) {
  if (r.type == ValueType::kScalar) {
    if (want.size() != 1 || !want[0].scalar) {
      return absl::StrCat("got scalar ", FormatValue(r.scalar), ", want ", want.size(),
                          " series");
    }
    if (!AlmostEqual(want[0].value, r.scalar)) {
      return absl::StrCat("got scalar ", FormatValue(r.scalar), ", want ",
                          FormatValue(want[0].value));
    }
    return "";
  }
  if (r.type != ValueType::kVector) return "received range result on instant evaluation";
  if (r.series.size() != want.size()) {
    std::string got;
    for (const Series& s : r.series) {
      absl::StrAppend(&got, " ", s.labels.ToString(), "=", FormatValue(s.samples[0].v));
    }
    return absl::StrCat("got ", r.series.size(), " series [", got, " ], want ", want.size());
  }
  for (size_t i = 0; i < r.series.size(); ++i) {
    const Series& s = r.series[i];
    const Expected* match = nullptr;
    for (size_t k = 0; k < want.size(); ++k) {
      if (!want[k].scalar && want[k].labels == s.labels) {
        match = &want[k];
        if (ordered && k != i) {
          return absl::StrCat(s.labels.ToString(), " at position ", i, ", want ", k);
        }
      }
    }
    if (match == nullptr) return absl::StrCat("unexpected series ", s.labels.ToString());
    if (!AlmostEqual(match->value, s.samples[0].v)) {
      return absl::StrCat(s.labels.ToString(), ": got ", FormatValue(s.samples[0].v), ", want ",
                          FormatValue(match->value));
    }
  }
  return "";
}

class ScriptRunner {
 public:
  explicit ScriptRunner(const EngineOptions& opts) : engine_(opts) {}

  absl::StatusOr<std::vector<ScriptCaseResult>> Run(absl::string_view script) {
    lines_ = absl::StrSplit(script, '\n');
    for (size_t i = 0; i < lines_.size();) {
      absl::string_view line = absl::StripAsciiWhitespace(lines_[i]);
      if (line.empty() || line[0] == '#') {
        ++i;
        continue;
      }
      if (line == "clear") {
        source_ = std::make_unique<MemorySeriesSource>();
        ++i;
      } else if (absl::StartsWith(line, "load ")) {
        ASSIGN_OR_RETURN(i, Load(i));
      } else if (absl::StartsWith(line, "eval")) {
        ASSIGN_OR_RETURN(i, Eval(i));
      } else {
        return LineError(i, "unknown command");
      }
    }
    return std::move(results_);
  }

 private:
  absl::Status LineError(size_t i, absl::string_view msg) const {
    return absl::InvalidArgumentError(absl::StrCat("line ", i + 1, ": ", msg, ": ", lines_[i]));
  }

  // The indented lines following command line `i`, up to a blank or unindented one.
  size_t BlockEnd(size_t i) const {
    size_t j = i + 1;
    while (j < lines_.size() && !lines_[j].empty() &&
           (lines_[j][0] == ' ' || lines_[j][0] == '\t') &&
           !absl::StripAsciiWhitespace(lines_[j]).empty()) {
      ++j;
    }
    return j;
  }

  absl::StatusOr<size_t> Load(size_t i) {
    absl::string_view step_text =
        absl::StripAsciiWhitespace(absl::StripPrefix(absl::StripAsciiWhitespace(lines_[i]), "load"));
    auto step = ParseDurationMs(step_text);
    if (!step.ok()) return LineError(i, "bad load step");
    size_t end = BlockEnd(i);
    for (size_t j = i + 1; j < end; ++j) {
      auto [sel, values] = SplitSelector(absl::StripAsciiWhitespace(lines_[j]));
      auto labels = ParseSeriesLabels(sel);
      if (!labels.ok()) return LineError(j, labels.status().message());
      std::vector<std::optional<double>> vals;
      for (absl::string_view item : absl::StrSplit(values, ' ', absl::SkipWhitespace())) {
        absl::Status s = ExpandItem(item, &vals);
        if (!s.ok()) return LineError(j, s.message());
      }
      std::vector<Sample> samples;
      for (size_t k = 0; k < vals.size(); ++k) {
        if (vals[k].has_value()) samples.push_back({static_cast<int64_t>(k) * *step, *vals[k]});
      }
      source_->Add(*labels, samples);
    }
    return end;
  }

  absl::StatusOr<size_t> Eval(size_t i) {
    absl::string_view line = absl::StripAsciiWhitespace(lines_[i]);
    std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(' ', 4));
    if (parts.size() < 5 || parts[1] != "instant" || parts[2] != "at") {
      return LineError(i, "bad eval command");
    }
    bool fail = parts[0] == "eval_fail", ordered = parts[0] == "eval_ordered";
    auto at = ParseDurationMs(parts[3]);
    if (!at.ok() && parts[3] != "0") return LineError(i, "bad eval time");
    int64_t t = at.ok() ? *at : 0;
    std::string expr(absl::StripAsciiWhitespace(parts[4]));
    size_t end = BlockEnd(i);
    std::vector<Expected> want;
    for (size_t j = i + 1; j < end; ++j) {
      absl::string_view l = absl::StripAsciiWhitespace(lines_[j]);
      Expected e;
      if (ParseFloat(l, &e.value)) {
        e.scalar = true;
      } else {
        auto [sel, value] = SplitSelector(l);
        auto labels = ParseSeriesLabels(sel);
        if (!labels.ok()) return LineError(j, labels.status().message());
        e.labels = *std::move(labels);
        if (!ParseFloat(value, &e.value)) return LineError(j, "bad expected value");
      }
      want.push_back(std::move(e));
    }
    ScriptCaseResult res{static_cast<int>(i + 1), expr, false, ""};
    res.error = Check(expr, t, want, fail, ordered);
    res.passed = res.error.empty();
    results_.push_back(std::move(res));
    return end;
  }

  std::string Check(const std::string& expr, int64_t t, const std::vector<Expected>& want,
                    bool fail, bool ordered) {
    absl::StatusOr<QueryResult> r = engine_.InstantQuery(source_.get(), expr, t);
    if (fail) return r.ok() ? "expected an error, got none" : "";
    if (!r.ok()) return absl::StrCat("error: ", r.status().ToString());
    std::string diff = Compare(*r, want, ordered);
    if (!diff.empty() || ordered) return diff;
    // The same at `t` when evaluated as a range query (test.go's range-mode check).
    absl::StatusOr<QueryResult> rr =
        engine_.RangeQuery(source_.get(), expr, t - kMinute, t + kMinute, kMinute);
    if (!rr.ok()) return absl::StrCat("range mode error: ", rr.status().ToString());
    QueryResult at_t;
    at_t.type = r->type;
    for (const Series& s : rr->series) {
      for (const Sample& p : s.samples) {
        if (p.t == t) at_t.series.push_back(Series{s.labels, {p}});
      }
    }
    if (r->type == ValueType::kScalar) {
      at_t.scalar = at_t.series.empty() ? NAN : at_t.series[0].samples[0].v;
    }
    diff = Compare(at_t, want, false);
    return diff.empty() ? "" : absl::StrCat("range mode: ", diff);
  }

  Engine engine_;
  std::unique_ptr<MemorySeriesSource> source_ = std::make_unique<MemorySeriesSource>();
  std::vector<absl::string_view> lines_;
  std::vector<ScriptCaseResult> results_;
};

}  // namespace

bool AlmostEqual(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  if (a == b) return true;
  constexpr double kMinNormal = std::numeric_limits<double>::min();
  double diff = std::fabs(a - b);
  if (a == 0 || b == 0 || diff < kMinNormal) return diff < kEpsilon * kMinNormal;
  return diff / (std::fabs(a) + std::fabs(b)) < kEpsilon;
}

absl::StatusOr<std::vector<ScriptCaseResult>> RunTestScript(absl::string_view script,
                                                            const EngineOptions& opts) {
  return ScriptRunner(opts).Run(script);
}

}  // namespace vigil::query
