// alerting/template_internal.h
//
// Internals shared by template.cc (parser, executor) and template_funcs.cc (the
// function table). Not part of the alerting API.
#ifndef VIGIL_ALERTING_TEMPLATE_INTERNAL_H_
#define VIGIL_ALERTING_TEMPLATE_INTERNAL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "alerting/template.h"

namespace vigil::alerting::internal {

struct Value;
using StrMap = std::map<std::string, std::string>;
// A Go struct: accessing a field it lacks is an error (unlike a map).
using Object = std::map<std::string, Value>;

// A dynamically typed template value, standing in for Go's reflect.Value.
struct Value {
  enum class Kind { kNil, kBool, kInt, kFloat, kString, kStrMap, kObject, kList };
  Kind kind = Kind::kNil;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<const StrMap> smap;
  std::shared_ptr<const Object> obj;
  std::shared_ptr<const std::vector<Value>> list;

  static Value Bool(bool v);
  static Value Int(int64_t v);
  static Value Float(double v);
  static Value String(std::string v);
  static Value Map(StrMap m);
  static Value Struct(Object o);
  static Value List(std::vector<Value> l);
};

// Go's type name, for error messages ("float64", "map[string]string").
std::string TypeName(const Value& v);
// Go's fmt %v.
std::string FormatValue(const Value& v);
// Go template truthiness: false, 0, "", nil and empty collections are false.
bool Truth(const Value& v);
// Prometheus' convertToFloat: numbers and numeric strings.
absl::StatusOr<double> ToFloat(const Value& v);

struct FuncContext {
  const TemplateQueryFunc* query;  // May point to an empty function.
  std::string external_url;
};
using TemplateFunc =
    std::function<absl::StatusOr<Value>(const FuncContext& ctx, const std::vector<Value>& args)>;

// The function table; nullptr when `name` is not defined.
const TemplateFunc* LookupFunc(absl::string_view name);

// Go's fmt.Sprintf for the verbs templates use (%v %s %d %f %e %g %q %x %t %%).
std::string GoSprintf(absl::string_view format, const std::vector<Value>& args);

}  // namespace vigil::alerting::internal

#endif  // VIGIL_ALERTING_TEMPLATE_INTERNAL_H_
