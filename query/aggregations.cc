// Aggregation operators (sum, avg, topk, quantile, count_values, ...), following
// promql/engine.go aggregation() in Prometheus 2.42, including its heap-based
// topk/bottomk ordering. The grouping of a series is the same at every step, so
// it is computed once per series rather than once per sample.
#include "query/aggregations.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "query/evaluator.h"

namespace vigil::query {
namespace {

// One sample fed to an aggregation: its value and which input it came from.
struct Entry {
  double v;
  int item;
};

bool ByValue(double a, double b) { return std::isnan(a) || a < b; }
bool ByReverseValue(double a, double b) { return std::isnan(a) || a > b; }
using LessFn = bool (*)(double, double);

// Go's container/heap Push/Pop over `h`, so ties break exactly as in Prometheus.
void HeapUp(std::vector<Entry>& h, size_t j, LessFn less) {
  while (j > 0) {
    size_t i = (j - 1) / 2;
    if (!less(h[j].v, h[i].v)) break;
    std::swap(h[i], h[j]);
    j = i;
  }
}
void HeapDown(std::vector<Entry>& h, size_t i, size_t n, LessFn less) {
  while (true) {
    size_t j = 2 * i + 1;
    if (j >= n) break;
    if (j + 1 < n && less(h[j + 1].v, h[j].v)) ++j;
    if (!less(h[j].v, h[i].v)) break;
    std::swap(h[i], h[j]);
    i = j;
  }
}
void HeapPush(std::vector<Entry>& h, Entry e, LessFn less) {
  h.push_back(e);
  HeapUp(h, h.size() - 1, less);
}
void HeapPop(std::vector<Entry>& h, LessFn less) {
  size_t n = h.size() - 1;
  std::swap(h[0], h[n]);
  HeapDown(h, 0, n, less);
  h.pop_back();
}

struct GroupState {
  double value = 0;
  double mean = 0;
  int64_t count = 0;
  std::vector<Entry> heap;     // topk / bottomk
  std::vector<double> values;  // quantile
};

// Aggregates one step: Add() samples into groups, then Finish() emits each group's
// result in the order the groups were first seen.
class StepAggregator {
 public:
  StepAggregator(Tok op, int64_t k, size_t num_groups) : op_(op), k_(k), states_(num_groups) {}

  void Add(int g, double v, int item) {
    GroupState& s = states_[g];
    if (s.count == 0) {
      order_.push_back(g);
      s.count = 1;
      s.value = s.mean = v;
      s.heap.clear();
      s.values.clear();
      if (op_ == Tok::kStddev || op_ == Tok::kStdvar) s.value = 0;
      if (op_ == Tok::kGroup) s.value = 1;
      if (op_ == Tok::kTopk || op_ == Tok::kBottomk) s.heap.push_back({v, item});
      if (op_ == Tok::kQuantile) s.values.push_back(v);
      return;
    }
    Accumulate(s, v, item);
  }

  // emit(group, item, value): item is the input for topk/bottomk, else -1.
  template <typename Emit>
  void Finish(double q, Emit emit) {
    for (int g : order_) {
      GroupState& s = states_[g];
      double c = static_cast<double>(s.count);
      switch (op_) {
        case Tok::kAvg: s.value = s.mean; break;
        case Tok::kCount:
        case Tok::kCountValues: s.value = c; break;
        case Tok::kStdvar: s.value /= c; break;
        case Tok::kStddev: s.value = std::sqrt(s.value / c); break;
        case Tok::kQuantile: s.value = Quantile(q, std::move(s.values)); break;
        case Tok::kTopk:
        case Tok::kBottomk: {
          LessFn less = op_ == Tok::kTopk ? ByValue : ByReverseValue;
          // sort.Sort(sort.Reverse(heap)): insertion sort, stable, at these sizes.
          std::stable_sort(s.heap.begin(), s.heap.end(),
                           [less](const Entry& a, const Entry& b) { return less(b.v, a.v); });
          for (const Entry& e : s.heap) emit(g, e.item, e.v);
          s.count = 0;
          continue;
        }
        default: break;
      }
      emit(g, -1, s.value);
      s.count = 0;
    }
    order_.clear();
  }

 private:
  void Accumulate(GroupState& s, double v, int item) {
    switch (op_) {
      case Tok::kSum: s.value += v; break;
      case Tok::kAvg:
        ++s.count;
        if (std::isinf(s.mean)) {
          if (std::isinf(v) && (s.mean > 0) == (v > 0)) break;
          if (!std::isinf(v) && !std::isnan(v)) break;
        }
        s.mean += v / s.count - s.mean / s.count;
        break;
      case Tok::kMax:
        if (s.value < v || std::isnan(s.value)) s.value = v;
        break;
      case Tok::kMin:
        if (s.value > v || std::isnan(s.value)) s.value = v;
        break;
      case Tok::kCount:
      case Tok::kCountValues: ++s.count; break;
      case Tok::kStddev:
      case Tok::kStdvar: {
        ++s.count;
        double delta = v - s.mean;
        s.mean += delta / s.count;
        s.value += delta * (v - s.mean);
        break;
      }
      case Tok::kTopk:
      case Tok::kBottomk: {
        LessFn less = op_ == Tok::kTopk ? ByValue : ByReverseValue;
        std::vector<Entry>& h = s.heap;
        bool better = op_ == Tok::kTopk ? h[0].v < v : h[0].v > v;
        if (static_cast<int64_t>(h.size()) < k_ || better || std::isnan(h[0].v)) {
          if (static_cast<int64_t>(h.size()) == k_) {
            if (h.size() == 1) {
              h[0] = {v, item};
              break;
            }
            HeapPop(h, less);
          }
          HeapPush(h, {v, item}, less);
        }
        break;
      }
      case Tok::kQuantile: s.values.push_back(v); break;
      default: break;
    }
  }

  Tok op_;
  int64_t k_;
  std::vector<GroupState> states_;
  std::vector<int> order_;
};

bool Listed(const std::vector<std::string>& names, absl::string_view n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

bool InGroup(absl::string_view name, const std::vector<std::string>& grouping, bool without) {
  bool listed = Listed(grouping, name);
  return without ? !listed && name != kMetricNameLabel : listed;
}

std::string GroupingKey(const Labels& l, const std::vector<std::string>& grouping, bool without) {
  std::string key;
  for (const Label& lb : l) {
    if (InGroup(lb.name, grouping, without)) absl::StrAppend(&key, lb.name, "\xff", lb.value, "\xff");
  }
  return key;
}

Labels GroupLabels(const Labels& l, const std::vector<std::string>& grouping, bool without) {
  Labels out;
  for (const Label& lb : l) {
    if (InGroup(lb.name, grouping, without)) out.Set(lb.name, lb.value);
  }
  return out;
}

// Output series by labels, created on first use.
class OutputSeries {
 public:
  explicit OutputSeries(Matrix* out) : out_(out) {}
  Series& Get(const Labels& l) {
    auto [it, inserted] = index_.try_emplace(l.Canonical(), out_->size());
    if (inserted) out_->push_back(Series{l, {}});
    return (*out_)[it->second];
  }

 private:
  Matrix* out_;
  absl::flat_hash_map<std::string, size_t> index_;
};

}  // namespace

double Quantile(double q, std::vector<double> values) {
  if (values.empty() || std::isnan(q)) return NAN;
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

absl::StatusOr<Value> Evaluator::EvalAggregate(const Expr& e) {
  Value param;
  if (e.param != nullptr) {
    ASSIGN_OR_RETURN(param, Eval(*e.param));
  }
  ASSIGN_OR_RETURN(Value body, Eval(*e.args[0]));
  const Matrix& in = body.matrix;
  Tok op = e.agg_op;
  std::vector<std::string> grouping = e.grouping;
  const std::string& value_label = param.str;
  if (op == Tok::kCountValues) {
    if (!IsValidLabelName(value_label)) {
      return absl::FailedPreconditionError(
          absl::StrCat("invalid label name \"", value_label, "\""));
    }
    if (!e.without) grouping.push_back(value_label);
  }
  // Except for count_values, whose groups depend on the value, a series' group
  // is fixed: compute it once.
  std::vector<int> group_of(in.size(), -1);
  std::vector<Labels> group_labels;
  absl::flat_hash_map<std::string, int> group_index;
  auto group_for = [&](const Labels& l) {
    auto [it, inserted] =
        group_index.try_emplace(GroupingKey(l, grouping, e.without), group_labels.size());
    if (inserted) group_labels.push_back(GroupLabels(l, grouping, e.without));
    return it->second;
  };
  if (op != Tok::kCountValues) {
    for (size_t i = 0; i < in.size(); ++i) group_of[i] = group_for(in[i].labels);
  }
  Value out;
  out.type = ValueType::kVector;
  OutputSeries outputs(&out.matrix);
  std::vector<size_t> cursor(in.size(), 0);
  int64_t step = 0;
  for (int64_t ts = start_; ts <= end_; ts += interval_, ++step) {
    RETURN_IF_ERROR(CheckDeadline());
    double p = param.type == ValueType::kScalar ? ScalarAt(param, step) : 0;
    int64_t k = 0;
    if (op == Tok::kTopk || op == Tok::kBottomk) {
      if (!(p >= -9.2e18 && p <= 9.2e18)) {
        return absl::FailedPreconditionError(absl::StrCat("Scalar value ", p, " overflows int64"));
      }
      k = static_cast<int64_t>(p);
      if (k < 1) continue;
    }
    if (op == Tok::kCountValues) {
      group_index.clear();
      group_labels.clear();
    }
    StepAggregator agg(op, k, op == Tok::kCountValues ? in.size() : group_labels.size());
    for (size_t i = 0; i < in.size(); ++i) {
      const std::vector<Sample>& pts = in[i].samples;
      size_t& c = cursor[i];
      while (c < pts.size() && pts[c].t < ts) ++c;
      if (c >= pts.size() || pts[c].t != ts) continue;
      int g = group_of[i];
      if (op == Tok::kCountValues) {
        Labels l = in[i].labels;
        l.Set(value_label, FormatGoFloat(pts[c].v));
        g = group_for(l);
      }
      agg.Add(g, pts[c].v, static_cast<int>(i));
    }
    agg.Finish(p, [&](int g, int item, double v) {
      outputs.Get(item >= 0 ? in[item].labels : group_labels[g]).samples.push_back({ts, v});
    });
  }
  ReleaseSamples(CountPoints(body.matrix) + CountPoints(param.matrix));
  RETURN_IF_ERROR(AddSamples(CountPoints(out.matrix)));
  return out;
}

}  // namespace vigil::query
