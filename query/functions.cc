// PromQL functions over instant vectors and scalars (promql/functions.go), and
// how the evaluator calls every function.
#include "query/functions.h"

#include <algorithm>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/status_macros.h"

namespace vigil::query {
namespace {

// Go's math.Max / math.Min: NaN wins, and signed zeros order.
double GoMax(double a, double b) {
  if (std::isinf(a) && a > 0) return a;
  if (std::isinf(b) && b > 0) return b;
  if (std::isnan(a) || std::isnan(b)) return NAN;
  if (a == 0 && a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}
double GoMin(double a, double b) {
  if (std::isinf(a) && a < 0) return a;
  if (std::isinf(b) && b < 0) return b;
  if (std::isnan(a) || std::isnan(b)) return NAN;
  if (a == 0 && a == b) return std::signbit(a) ? a : b;
  return a < b ? a : b;
}

using MathFn = double (*)(double);

const absl::flat_hash_map<std::string, MathFn>& MathFunctions() {
  static const auto* m = new absl::flat_hash_map<std::string, MathFn>{
      {"abs", [](double v) { return std::fabs(v); }},
      {"ceil", [](double v) { return std::ceil(v); }},
      {"floor", [](double v) { return std::floor(v); }},
      {"exp", [](double v) { return std::exp(v); }},
      {"sqrt", [](double v) { return std::sqrt(v); }},
      {"ln", [](double v) { return std::log(v); }},
      {"log2", [](double v) { return std::log2(v); }},
      {"log10", [](double v) { return std::log10(v); }},
      {"sin", [](double v) { return std::sin(v); }},
      {"cos", [](double v) { return std::cos(v); }},
      {"tan", [](double v) { return std::tan(v); }},
      {"asin", [](double v) { return std::asin(v); }},
      {"acos", [](double v) { return std::acos(v); }},
      {"atan", [](double v) { return std::atan(v); }},
      {"sinh", [](double v) { return std::sinh(v); }},
      {"cosh", [](double v) { return std::cosh(v); }},
      {"tanh", [](double v) { return std::tanh(v); }},
      {"asinh", [](double v) { return std::asinh(v); }},
      {"acosh", [](double v) { return std::acosh(v); }},
      {"atanh", [](double v) { return std::atanh(v); }},
      {"deg", [](double v) { return v * 180 / M_PI; }},
      {"rad", [](double v) { return v * M_PI / 180; }},
      {"sgn", [](double v) { return v < 0 ? -1.0 : (v > 0 ? 1.0 : v); }},
  };
  return *m;
}

using DateFn = double (*)(absl::CivilSecond);

const absl::flat_hash_map<std::string, DateFn>& DateFunctions() {
  static const auto* m = new absl::flat_hash_map<std::string, DateFn>{
      {"day_of_month", [](absl::CivilSecond c) { return double(c.day()); }},
      {"day_of_week",
       [](absl::CivilSecond c) {
         // absl: Monday..Sunday; Go: Sunday = 0.
         return double((static_cast<int>(absl::GetWeekday(c)) + 1) % 7);
       }},
      {"day_of_year", [](absl::CivilSecond c) { return double(absl::GetYearDay(c)); }},
      {"hour", [](absl::CivilSecond c) { return double(c.hour()); }},
      {"minute", [](absl::CivilSecond c) { return double(c.minute()); }},
      {"month", [](absl::CivilSecond c) { return double(c.month()); }},
      {"year", [](absl::CivilSecond c) { return double(c.year()); }},
      {"days_in_month",
       [](absl::CivilSecond c) {
         absl::CivilDay first(c.year(), c.month(), 1);
         absl::CivilDay next = absl::CivilDay(absl::CivilMonth(first) + 1);
         return double(next - first);
       }},
  };
  return *m;
}

Vector SortVector(Vector& in, bool desc) {
  // sort.Sort(sort.Reverse(...)) in Prometheus: NaN last either way.
  std::stable_sort(in.begin(), in.end(), [desc](const VSample& a, const VSample& b) {
    if (std::isnan(b.v)) return !std::isnan(a.v);
    if (std::isnan(a.v)) return false;
    return desc ? a.v > b.v : a.v < b.v;
  });
  return std::move(in);
}

const absl::flat_hash_map<std::string, SampleFn>& SampleFunctions() {
  static const auto* m = [] {
    auto* m = new absl::flat_hash_map<std::string, SampleFn>;
    for (const auto& [name, f] : MathFunctions()) {
      MathFn fn = f;
      (*m)[name] = [fn](double v, int64_t, const std::vector<double>&) { return fn(v); };
    }
    for (const auto& [name, f] : DateFunctions()) {
      DateFn fn = f;
      (*m)[name] = [fn](double v, int64_t, const std::vector<double>&) {
        // Go's int64(v) on amd64: out-of-range and NaN become the minimum int64.
        int64_t secs = v >= -9.2e18 && v <= 9.2e18 ? static_cast<int64_t>(v) : INT64_MIN;
        absl::Time t = absl::FromUnixSeconds(secs);
        return fn(absl::ToCivilSecond(t, absl::UTCTimeZone()));
      };
    }
    (*m)["round"] = [](double v, int64_t, const std::vector<double>& s) {
      double inv = 1.0 / (s.empty() ? 1.0 : s[0]);
      return std::floor(v * inv + 0.5) / inv;
    };
    (*m)["clamp"] = [](double v, int64_t, const std::vector<double>& s) -> std::optional<double> {
      if (s[1] < s[0]) return std::nullopt;
      return GoMax(s[0], GoMin(s[1], v));
    };
    (*m)["clamp_max"] = [](double v, int64_t, const std::vector<double>& s) {
      return GoMin(s[0], v);
    };
    (*m)["clamp_min"] = [](double v, int64_t, const std::vector<double>& s) {
      return GoMax(s[0], v);
    };
    // Outside a plain selector a sample's time is its step's.
    (*m)["timestamp"] = [](double, int64_t ts, const std::vector<double>&) { return ts / 1000.0; };
    return m;
  }();
  return *m;
}

}  // namespace

const SampleFn* LookupSampleFunction(absl::string_view name) {
  auto it = SampleFunctions().find(std::string(name));
  return it == SampleFunctions().end() ? nullptr : &it->second;
}

Labels AbsentLabels(const Expr& arg) {
  const std::vector<LabelMatcher>* ms = nullptr;
  if (arg.kind == ExprKind::kVectorSelector) ms = &arg.matchers;
  if (arg.kind == ExprKind::kMatrixSelector) ms = &arg.args[0]->matchers;
  Labels out;
  if (ms == nullptr) return out;
  std::vector<std::string> empty;
  for (const LabelMatcher& m : *ms) {
    if (m.name() == kMetricNameLabel) continue;
    if (m.type() == MatchType::kEqual && !out.Has(m.name())) {
      out.Set(m.name(), m.value());
    } else {
      empty.push_back(m.name());
    }
  }
  for (const std::string& n : empty) out.Remove(n);
  return out;
}

absl::StatusOr<Vector> CallInstantFunction(const Expr& call, std::vector<StepArg>& args,
                                           const std::vector<std::string>& strs, int64_t ts) {
  const std::string& name = call.func->name;
  if (const SampleFn* f = LookupSampleFunction(name)) {
    // Date functions without an argument read vector(time()).
    Vector in = args.empty() ? Vector{VSample{Labels(), ts / 1000.0, ts}} : std::move(args[0].vec);
    std::vector<double> scalars;
    for (size_t i = 1; i < args.size(); ++i) scalars.push_back(args[i].scalar);
    Vector out;
    for (VSample& s : in) {
      std::optional<double> v = (*f)(s.v, ts, scalars);
      if (!v.has_value()) continue;
      s.labels.Remove(kMetricNameLabel);
      s.v = *v;
      out.push_back(std::move(s));
    }
    return out;
  }
  if (name == "absent") {
    if (!args[0].vec.empty()) return Vector{};
    return Vector{VSample{AbsentLabels(*call.args[0]), 1, ts}};
  }
  if (name == "scalar") {
    double v = args[0].vec.size() == 1 ? args[0].vec[0].v : NAN;
    return Vector{VSample{Labels(), v, ts}};
  }
  if (name == "vector") return Vector{VSample{Labels(), args[0].scalar, ts}};
  if (name == "time") return Vector{VSample{Labels(), ts / 1000.0, ts}};
  if (name == "pi") return Vector{VSample{Labels(), M_PI, ts}};
  if (name == "sort") return SortVector(args[0].vec, false);
  if (name == "sort_desc") return SortVector(args[0].vec, true);
  if (name == "label_replace") return LabelReplace(args[0].vec, strs);
  if (name == "label_join") return LabelJoin(args[0].vec, strs);
  if (name == "histogram_quantile") return HistogramQuantile(args[0].scalar, args[1].vec);
  if (name == "histogram_count" || name == "histogram_sum" || name == "histogram_fraction") {
    return Vector{};  // Only native histograms have these; Vigil stores none.
  }
  return absl::UnimplementedError(absl::StrCat("function ", name, " is not supported"));
}

absl::StatusOr<Value> Evaluator::EvalCall(const Expr& e) {
  for (size_t i = 0; i < e.args.size(); ++i) {
    if (e.args[i]->type() == ValueType::kMatrix) return EvalRangeFunction(e, static_cast<int>(i));
  }
  if (e.func->name == "timestamp" && Unwrap(*e.args[0]).kind == ExprKind::kVectorSelector) {
    // The samples' own times, which a selector's per-step points no longer carry.
    return EvalVectorSelector(Unwrap(*e.args[0]), /*sample_time=*/true);
  }
  const SampleFn* sample_fn = LookupSampleFunction(e.func->name);
  if (sample_fn != nullptr && !e.args.empty()) return EvalSampleFunction(e, *sample_fn);
  std::vector<Value> vals(e.args.size());
  std::vector<std::string> strs(e.args.size());
  std::vector<const Value*> range_args;
  for (size_t i = 0; i < e.args.size(); ++i) {
    ASSIGN_OR_RETURN(vals[i], Eval(*e.args[i]));
    if (vals[i].type == ValueType::kString) {
      strs[i] = vals[i].str;
    } else {
      range_args.push_back(&vals[i]);
    }
  }
  Value out;
  out.type = e.func->return_type;
  auto fn = [&](std::vector<StepArg>& a, int64_t ts) {
    return CallInstantFunction(e, a, strs, ts);
  };
  ASSIGN_OR_RETURN(out.matrix, RangeEval(range_args, fn));
  return out;
}

absl::StatusOr<Value> Evaluator::EvalSampleFunction(const Expr& e, const SampleFn& fn) {
  std::vector<Value> vals(e.args.size());
  for (size_t i = 0; i < e.args.size(); ++i) {
    ASSIGN_OR_RETURN(vals[i], Eval(*e.args[i]));
  }
  // Series by series: the output labels are computed once per series, not per sample.
  Value out;
  out.type = ValueType::kVector;
  std::vector<double> scalars(vals.size() - 1);
  for (Series& s : vals[0].matrix) {
    Series o{DropMetricName(s.labels), {}};
    for (const Sample& p : s.samples) {
      int64_t step = (p.t - start_) / interval_;
      for (size_t k = 1; k < vals.size(); ++k) scalars[k - 1] = ScalarAt(vals[k], step);
      std::optional<double> v = fn(p.v, p.t, scalars);
      if (v.has_value()) o.samples.push_back({p.t, *v});
    }
    if (!o.samples.empty()) out.matrix.push_back(std::move(o));
  }
  for (const Value& v : vals) ReleaseSamples(CountPoints(v.matrix));
  RETURN_IF_ERROR(AddSamples(CountPoints(out.matrix)));
  RETURN_IF_ERROR(MergeEqualLabels(&out.matrix));
  return out;
}

absl::StatusOr<Value> Evaluator::EvalRangeFunction(const Expr& e, int matrix_arg) {
  const std::string& name = e.func->name;
  std::vector<Value> scalars;
  for (size_t i = 0; i < e.args.size(); ++i) {
    if (static_cast<int>(i) == matrix_arg) continue;
    ASSIGN_OR_RETURN(Value v, Eval(*e.args[i]));
    scalars.push_back(std::move(v));
  }
  ASSIGN_OR_RETURN(RangeArg arg, EvalRangeArg(*e.args[matrix_arg]));
  Value out;
  out.type = ValueType::kVector;
  if (name == "absent_over_time") {
    Series s{AbsentLabels(*e.args[0]), {}};
    for (int64_t ts = start_; ts <= end_; ts += interval_) {
      bool any = false;
      for (const Series& in : arg.series) {
        if ((any = !Window(arg, in, ts).empty())) break;
      }
      if (!any) s.samples.push_back({ts, 1});
    }
    if (!s.samples.empty()) out.matrix.push_back(std::move(s));
    return out;
  }
  RangeFn fn = LookupRangeFunction(name);
  if (fn == nullptr) return absl::UnimplementedError(absl::StrCat("function ", name));
  bool keep_name = name == "last_over_time";
  RangeWindow w;
  w.range_ms = arg.range_ms;
  w.scalars.resize(scalars.size());
  for (Series& in : arg.series) {
    RETURN_IF_ERROR(CheckDeadline());
    Series o{keep_name ? std::move(in.labels) : DropMetricName(in.labels), {}};
    int64_t step = 0;
    // The window [ref - range, ref] only moves forward: slide its ends instead of
    // searching for them at every step.
    const std::vector<Sample>& pts = in.samples;
    size_t lo = 0, hi = 0;
    for (int64_t ts = start_; ts <= end_; ts += interval_, ++step) {
      w.range_end = RefTime(arg.at_kind, arg.at_ms, ts) - arg.offset_ms;
      w.range_start = w.range_end - arg.range_ms;
      while (hi < pts.size() && pts[hi].t <= w.range_end) ++hi;
      while (lo < hi && pts[lo].t < w.range_start) ++lo;
      if (lo == hi) continue;
      w.samples = absl::Span<const Sample>(pts.data() + lo, hi - lo);
      w.ts = ts;
      for (size_t k = 0; k < scalars.size(); ++k) w.scalars[k] = ScalarAt(scalars[k], step);
      ASSIGN_OR_RETURN(std::optional<double> v, fn(w));
      if (!v.has_value()) continue;
      o.samples.push_back({ts, *v});
      if (o.samples.size() % kSampleBatch == 0) RETURN_IF_ERROR(AddSamples(kSampleBatch));
    }
    if (o.samples.empty()) continue;
    RETURN_IF_ERROR(AddSamples(static_cast<int64_t>(o.samples.size() % kSampleBatch)));
    out.matrix.push_back(std::move(o));
  }
  for (const Value& v : scalars) ReleaseSamples(CountPoints(v.matrix));
  if (Unwrap(*e.args[matrix_arg]).kind == ExprKind::kSubquery) {
    ReleaseSamples(CountPoints(arg.series));
  }
  RETURN_IF_ERROR(CheckUniqueLabels(out.matrix));
  return out;
}

}  // namespace vigil::query
