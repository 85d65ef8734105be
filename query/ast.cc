#include "query/ast.h"

#include "absl/container/flat_hash_map.h"

namespace vigil::query {
namespace {

using VT = ValueType;

absl::flat_hash_map<std::string, FunctionInfo>* BuildFunctions() {
  auto* m = new absl::flat_hash_map<std::string, FunctionInfo>;
  auto add = [m](std::string name, std::vector<VT> args, int variadic, VT ret) {
    (*m)[name] = FunctionInfo{name, std::move(args), variadic, ret};
  };
  const VT v = VT::kVector, s = VT::kScalar, r = VT::kMatrix, str = VT::kString;
  for (const char* f :
       {"abs", "ceil", "exp", "floor", "ln", "log10", "log2", "sqrt", "sgn", "sort", "sort_desc",
        "timestamp", "absent", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh",
        "tanh", "asinh", "acosh", "atanh", "deg", "rad", "histogram_count", "histogram_sum"}) {
    add(f, {v}, 0, v);
  }
  for (const char* f :
       {"rate", "irate", "increase", "delta", "idelta", "resets", "changes", "deriv",
        "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
        "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
        "absent_over_time"}) {
    add(f, {r}, 0, v);
  }
  for (const char* f : {"days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour",
                        "minute", "month", "year"}) {
    add(f, {v}, 1, v);
  }
  add("clamp", {v, s, s}, 0, v);
  add("clamp_max", {v, s}, 0, v);
  add("clamp_min", {v, s}, 0, v);
  add("round", {v, s}, 1, v);
  add("predict_linear", {r, s}, 0, v);
  add("holt_winters", {r, s, s}, 0, v);
  add("quantile_over_time", {s, r}, 0, v);
  add("histogram_quantile", {s, v}, 0, v);
  add("histogram_fraction", {s, s, v}, 0, v);
  add("label_replace", {v, str, str, str, str}, 0, v);
  add("label_join", {v, str, str, str}, -1, v);
  add("scalar", {v}, 0, s);
  add("vector", {s}, 0, v);
  add("time", {}, 0, s);
  add("pi", {}, 0, s);
  return m;
}

}  // namespace

const FunctionInfo* LookupFunction(absl::string_view name) {
  static const auto* functions = BuildFunctions();
  auto it = functions->find(std::string(name));
  return it == functions->end() ? nullptr : &it->second;
}

ValueType Expr::type() const {
  switch (kind) {
    case ExprKind::kNumber: return ValueType::kScalar;
    case ExprKind::kString: return ValueType::kString;
    case ExprKind::kVectorSelector: return ValueType::kVector;
    case ExprKind::kMatrixSelector:
    case ExprKind::kSubquery: return ValueType::kMatrix;
    case ExprKind::kParen:
    case ExprKind::kUnary: return args[0]->type();
    case ExprKind::kBinary:
      return args[0]->type() == ValueType::kScalar && args[1]->type() == ValueType::kScalar
                 ? ValueType::kScalar
                 : ValueType::kVector;
    case ExprKind::kCall: return func->return_type;
    case ExprKind::kAggregate: return ValueType::kVector;
  }
  return ValueType::kVector;
}

std::string ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kScalar: return "scalar";
    case ValueType::kString: return "string";
    case ValueType::kVector: return "instant vector";
    case ValueType::kMatrix: return "range vector";
  }
  return "unknown";
}

}  // namespace vigil::query
