// PromQL functions over range vectors (rate, *_over_time, deriv, holt_winters,
// ...), as promql/functions.go in Prometheus 2.42.
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "query/aggregations.h"
#include "query/functions.h"

namespace vigil::query {
namespace {

using Result = absl::StatusOr<std::optional<double>>;

// Prometheus' extrapolatedRate: the increase over the window, extrapolated to
// its edges unless the series starts or ends well inside it.
Result ExtrapolatedRate(const RangeWindow& w, bool is_counter, bool is_rate) {
  absl::Span<const Sample> s = w.samples;
  if (s.size() < 2) return std::nullopt;
  double result = s.back().v - s.front().v;
  if (is_counter) {
    double last = 0;
    for (const Sample& p : s) {
      if (p.v < last) result += last;
      last = p.v;
    }
  }
  double to_start = static_cast<double>(s.front().t - w.range_start) / 1000;
  double to_end = static_cast<double>(w.range_end - s.back().t) / 1000;
  double sampled = static_cast<double>(s.back().t - s.front().t) / 1000;
  double avg_between = sampled / static_cast<double>(s.size() - 1);
  if (is_counter && result > 0 && s.front().v >= 0) {
    // A counter cannot go below zero: extrapolate at most to where it would be 0.
    double to_zero = sampled * (s.front().v / result);
    if (to_zero < to_start) to_start = to_zero;
  }
  double threshold = avg_between * 1.1;
  double interval = sampled;
  interval += to_start < threshold ? to_start : avg_between / 2;
  interval += to_end < threshold ? to_end : avg_between / 2;
  result = result * (interval / sampled);
  if (is_rate) result /= static_cast<double>(w.range_ms) / 1000;
  return result;
}

Result InstantValue(const RangeWindow& w, bool is_rate) {
  absl::Span<const Sample> s = w.samples;
  if (s.size() < 2) return std::nullopt;
  const Sample& last = s[s.size() - 1];
  const Sample& prev = s[s.size() - 2];
  double result = is_rate && last.v < prev.v ? last.v : last.v - prev.v;
  int64_t interval = last.t - prev.t;
  if (interval == 0) return std::nullopt;
  if (is_rate) result /= static_cast<double>(interval) / 1000;
  return result;
}

// Least-squares fit of the samples against time (seconds from intercept_ms).
std::pair<double, double> LinearRegression(absl::Span<const Sample> s, int64_t intercept_ms) {
  double n = 0, sum_x = 0, sum_y = 0, sum_xy = 0, sum_x2 = 0;
  double init_y = s[0].v;
  bool const_y = true;
  for (size_t i = 0; i < s.size(); ++i) {
    if (const_y && i > 0 && s[i].v != init_y) const_y = false;
    n += 1;
    double x = static_cast<double>(s[i].t - intercept_ms) / 1e3;
    sum_x += x;
    sum_y += s[i].v;
    sum_xy += x * s[i].v;
    sum_x2 += x * x;
  }
  if (const_y) {
    if (std::isinf(init_y)) return {NAN, NAN};
    return {0, init_y};
  }
  double cov_xy = sum_xy - sum_x * sum_y / n;
  double var_x = sum_x2 - sum_x * sum_x / n;
  double slope = cov_xy / var_x;
  return {slope, sum_y / n - slope * sum_x / n};
}

Result HoltWinters(const RangeWindow& w) {
  double sf = w.scalars[0], tf = w.scalars[1];
  if (!(sf > 0 && sf < 1)) {
    return absl::FailedPreconditionError(
        absl::StrCat("invalid smoothing factor. Expected: 0 < sf < 1, got: ", sf));
  }
  if (!(tf > 0 && tf < 1)) {
    return absl::FailedPreconditionError(
        absl::StrCat("invalid trend factor. Expected: 0 < tf < 1, got: ", tf));
  }
  absl::Span<const Sample> s = w.samples;
  if (s.size() < 2) return std::nullopt;
  double s0 = 0, s1 = s[0].v, b = s[1].v - s[0].v;
  for (size_t i = 1; i < s.size(); ++i) {
    double x = sf * s[i].v;
    if (i > 1) b = tf * (s1 - s0) + (1 - tf) * b;
    double y = (1 - sf) * (s1 + b);
    s0 = s1;
    s1 = x + y;
  }
  return s1;
}

Result AvgOverTime(const RangeWindow& w) {
  double mean = 0, count = 0;
  for (const Sample& p : w.samples) {
    count += 1;
    if (std::isinf(mean)) {
      if (std::isinf(p.v) && (mean > 0) == (p.v > 0)) continue;
      if (!std::isinf(p.v) && !std::isnan(p.v)) continue;
    }
    mean += p.v / count - mean / count;
  }
  return mean;
}

double StdVar(absl::Span<const Sample> s) {
  double count = 0, mean = 0, aux = 0;
  for (const Sample& p : s) {
    count += 1;
    double delta = p.v - mean;
    mean += delta / count;
    aux += delta * (p.v - mean);
  }
  return aux / count;
}

Result Changes(const RangeWindow& w, bool resets) {
  absl::Span<const Sample> s = w.samples;
  double n = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    double cur = s[i].v, prev = s[i - 1].v;
    if (resets ? cur < prev : !(cur == prev || (std::isnan(cur) && std::isnan(prev)))) n += 1;
  }
  return n;
}

const absl::flat_hash_map<std::string, RangeFn>& RangeFunctions() {
  static const auto* m = new absl::flat_hash_map<std::string, RangeFn>{
      {"rate", [](const RangeWindow& w) { return ExtrapolatedRate(w, true, true); }},
      {"increase", [](const RangeWindow& w) { return ExtrapolatedRate(w, true, false); }},
      {"delta", [](const RangeWindow& w) { return ExtrapolatedRate(w, false, false); }},
      {"irate", [](const RangeWindow& w) { return InstantValue(w, true); }},
      {"idelta", [](const RangeWindow& w) { return InstantValue(w, false); }},
      {"changes", [](const RangeWindow& w) { return Changes(w, false); }},
      {"resets", [](const RangeWindow& w) { return Changes(w, true); }},
      {"deriv",
       [](const RangeWindow& w) -> Result {
         if (w.samples.size() < 2) return std::nullopt;
         return LinearRegression(w.samples, (w.samples)[0].t).first;
       }},
      {"predict_linear",
       [](const RangeWindow& w) -> Result {
         if (w.samples.size() < 2) return std::nullopt;
         auto [slope, intercept] = LinearRegression(w.samples, w.ts);
         return slope * w.scalars[0] + intercept;
       }},
      {"holt_winters", HoltWinters},
      {"avg_over_time", AvgOverTime},
      {"count_over_time",
       [](const RangeWindow& w) -> Result { return static_cast<double>(w.samples.size()); }},
      {"sum_over_time",
       [](const RangeWindow& w) -> Result {
         double sum = 0;
         for (const Sample& p : w.samples) sum += p.v;
         return sum;
       }},
      {"min_over_time",
       [](const RangeWindow& w) -> Result {
         double v = (w.samples)[0].v;
         for (const Sample& p : w.samples) {
           if (p.v < v || std::isnan(v)) v = p.v;
         }
         return v;
       }},
      {"max_over_time",
       [](const RangeWindow& w) -> Result {
         double v = (w.samples)[0].v;
         for (const Sample& p : w.samples) {
           if (p.v > v || std::isnan(v)) v = p.v;
         }
         return v;
       }},
      {"quantile_over_time",
       [](const RangeWindow& w) -> Result {
         std::vector<double> vals;
         for (const Sample& p : w.samples) vals.push_back(p.v);
         return Quantile(w.scalars[0], std::move(vals));
       }},
      {"stddev_over_time",
       [](const RangeWindow& w) -> Result { return std::sqrt(StdVar(w.samples)); }},
      {"stdvar_over_time", [](const RangeWindow& w) -> Result { return StdVar(w.samples); }},
      {"last_over_time", [](const RangeWindow& w) -> Result { return w.samples.back().v; }},
      {"present_over_time", [](const RangeWindow& w) -> Result { return 1.0; }},
  };
  return *m;
}

}  // namespace

RangeFn LookupRangeFunction(absl::string_view name) {
  auto it = RangeFunctions().find(std::string(name));
  return it == RangeFunctions().end() ? nullptr : it->second;
}

}  // namespace vigil::query
