// Aggregation operators (sum, avg, topk, quantile, ...), following
// promql/engine.go aggregation() in Prometheus 2.42, including its heap-based
// topk/bottomk ordering.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "query/aggregations.h"
#include "query/evaluator.h"

namespace vigil::query {
namespace {

// Go's container/heap over a slice ordered by `less`, so ties break as in Prometheus.
template <typename Less>
class GoHeap {
 public:
  explicit GoHeap(Less less) : less_(less) {}
  std::vector<VSample>& items() { return items_; }
  void Push(VSample s) {
    items_.push_back(std::move(s));
    Up(items_.size() - 1);
  }
  void Pop() {
    size_t n = items_.size() - 1;
    std::swap(items_[0], items_[n]);
    Down(0, n);
    items_.pop_back();
  }

 private:
  bool L(size_t i, size_t j) const { return less_(items_[i].v, items_[j].v); }
  void Up(size_t j) {
    while (j > 0) {
      size_t i = (j - 1) / 2;
      if (!L(j, i)) break;
      std::swap(items_[i], items_[j]);
      j = i;
    }
  }
  void Down(size_t i, size_t n) {
    while (true) {
      size_t j = 2 * i + 1;
      if (j >= n) break;
      if (j + 1 < n && L(j + 1, j)) ++j;
      if (!L(j, i)) break;
      std::swap(items_[i], items_[j]);
      i = j;
    }
  }

  Less less_;
  std::vector<VSample> items_;
};

bool ByValue(double a, double b) { return std::isnan(a) || a < b; }
bool ByReverseValue(double a, double b) { return std::isnan(a) || a > b; }
using TopHeap = GoHeap<bool (*)(double, double)>;

struct Group {
  Labels labels;
  double value = 0;
  double mean = 0;
  int64_t count = 1;
  std::unique_ptr<TopHeap> heap;  // topk / bottomk
  std::vector<double> values;     // quantile
};

bool Listed(const std::vector<std::string>& names, absl::string_view n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

std::string GroupingKey(const Labels& l, const std::vector<std::string>& grouping, bool without) {
  std::string key;
  for (const Label& lb : l) {
    bool listed = Listed(grouping, lb.name);
    if (without ? (listed || lb.name == kMetricNameLabel) : !listed) continue;
    absl::StrAppend(&key, lb.name, "\xff", lb.value, "\xff");
  }
  return key;
}

Labels GroupLabels(const Labels& l, const std::vector<std::string>& grouping, bool without) {
  Labels out;
  for (const Label& lb : l) {
    bool listed = Listed(grouping, lb.name);
    if (without ? (!listed && lb.name != kMetricNameLabel) : listed) out.Set(lb.name, lb.value);
  }
  return out;
}

void Accumulate(Tok op, Group* g, VSample& s, int64_t k) {
  switch (op) {
    case Tok::kSum: g->value += s.v; break;
    case Tok::kAvg:
      ++g->count;
      if (std::isinf(g->mean)) {
        if (std::isinf(s.v) && (g->mean > 0) == (s.v > 0)) break;
        if (!std::isinf(s.v) && !std::isnan(s.v)) break;
      }
      g->mean += s.v / g->count - g->mean / g->count;
      break;
    case Tok::kMax:
      if (g->value < s.v || std::isnan(g->value)) g->value = s.v;
      break;
    case Tok::kMin:
      if (g->value > s.v || std::isnan(g->value)) g->value = s.v;
      break;
    case Tok::kCount:
    case Tok::kCountValues: ++g->count; break;
    case Tok::kStddev:
    case Tok::kStdvar: {
      ++g->count;
      double delta = s.v - g->mean;
      g->mean += delta / g->count;
      g->value += delta * (s.v - g->mean);
      break;
    }
    case Tok::kTopk:
    case Tok::kBottomk: {
      std::vector<VSample>& h = g->heap->items();
      bool top = op == Tok::kTopk;
      bool better = top ? h[0].v < s.v : h[0].v > s.v;
      if (static_cast<int64_t>(h.size()) < k || better || std::isnan(h[0].v)) {
        if (static_cast<int64_t>(h.size()) == k) {
          if (h.size() == 1) {
            h[0] = std::move(s);
            break;
          }
          g->heap->Pop();
        }
        g->heap->Push(std::move(s));
      }
      break;
    }
    case Tok::kQuantile: g->values.push_back(s.v); break;
    default: break;
  }
}

}  // namespace

double Quantile(double q, std::vector<double> values) {
  if (values.empty()) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  std::stable_sort(values.begin(), values.end(), ByValue);
  double n = static_cast<double>(values.size());
  double rank = q * (n - 1);
  double lower = std::max(0.0, std::floor(rank));
  double upper = std::min(n - 1, lower + 1);
  double weight = rank - std::floor(rank);
  return values[static_cast<size_t>(lower)] * (1 - weight) +
         values[static_cast<size_t>(upper)] * weight;
}

std::string FormatGoFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[400];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, res.ptr);
}

absl::StatusOr<Vector> Aggregate(Tok op, std::vector<std::string> grouping, bool without,
                                 double param, const std::string& str_param, Vector& in) {
  int64_t k = 0;
  if (op == Tok::kTopk || op == Tok::kBottomk) {
    if (!(param >= -9.2e18 && param <= 9.2e18)) {
      return absl::FailedPreconditionError(absl::StrCat("Scalar value ", param, " overflows int64"));
    }
    k = static_cast<int64_t>(param);
    if (k < 1) return Vector{};
  }
  if (op == Tok::kCountValues) {
    if (!IsValidLabelName(str_param)) {
      return absl::FailedPreconditionError(absl::StrCat("invalid label name \"", str_param, "\""));
    }
    if (!without) grouping.push_back(str_param);
  }
  std::vector<std::unique_ptr<Group>> ordered;
  absl::flat_hash_map<std::string, Group*> groups;
  for (VSample& s : in) {
    if (op == Tok::kCountValues) s.labels.Set(str_param, FormatGoFloat(s.v));
    std::string key = GroupingKey(s.labels, grouping, without);
    auto it = groups.find(key);
    if (it != groups.end()) {
      Accumulate(op, it->second, s, k);
      continue;
    }
    auto g = std::make_unique<Group>();
    g->labels = GroupLabels(s.labels, grouping, without);
    g->value = g->mean = s.v;
    if (op == Tok::kStddev || op == Tok::kStdvar) g->value = 0;
    if (op == Tok::kGroup) g->value = 1;
    if (op == Tok::kTopk || op == Tok::kBottomk) {
      g->heap = std::make_unique<TopHeap>(op == Tok::kTopk ? ByValue : ByReverseValue);
      g->heap->items().push_back(s);
    }
    if (op == Tok::kQuantile) g->values.push_back(s.v);
    groups[key] = g.get();
    ordered.push_back(std::move(g));
  }
  Vector out;
  for (auto& g : ordered) {
    switch (op) {
      case Tok::kAvg: g->value = g->mean; break;
      case Tok::kCount:
      case Tok::kCountValues: g->value = static_cast<double>(g->count); break;
      case Tok::kStdvar: g->value /= g->count; break;
      case Tok::kStddev: g->value = std::sqrt(g->value / g->count); break;
      case Tok::kQuantile: g->value = Quantile(param, g->values); break;
      case Tok::kTopk:
      case Tok::kBottomk: {
        std::vector<VSample>& h = g->heap->items();
        auto less = op == Tok::kTopk ? ByValue : ByReverseValue;
        // sort.Sort(sort.Reverse(heap)); insertion sort (stable) at these sizes.
        std::stable_sort(h.begin(), h.end(),
                         [less](const VSample& a, const VSample& b) { return less(b.v, a.v); });
        for (VSample& s : h) out.push_back(std::move(s));
        continue;
      }
      default: break;
    }
    out.push_back(VSample{std::move(g->labels), g->value, 0});
  }
  return out;
}

absl::StatusOr<Value> Evaluator::EvalAggregate(const Expr& e) {
  Value param;
  std::string str_param;
  std::vector<const Value*> args;
  if (e.param != nullptr) {
    ASSIGN_OR_RETURN(param, Eval(*e.param));
    if (param.type == ValueType::kString) {
      str_param = param.str;
    } else {
      args.push_back(&param);
    }
  }
  ASSIGN_OR_RETURN(Value body, Eval(*e.args[0]));
  args.push_back(&body);
  Value out;
  out.type = ValueType::kVector;
  bool has_scalar = args.size() == 2;
  auto fn = [&](std::vector<StepArg>& a, int64_t) -> absl::StatusOr<Vector> {
    double p = has_scalar ? a[0].scalar : 0;
    return Aggregate(e.agg_op, e.grouping, e.without, p, str_param, a.back().vec);
  };
  ASSIGN_OR_RETURN(out.matrix, RangeEval(args, fn));
  return out;
}

}  // namespace vigil::query
