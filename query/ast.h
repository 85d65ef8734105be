// query/ast.h
//
// The PromQL syntax tree (Prometheus' promql/parser/ast.go) and the function
// signature table the parser type-checks calls against. Immutable after parsing;
// safe to share between threads.
#ifndef VIGIL_QUERY_AST_H_
#define VIGIL_QUERY_AST_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/matcher.h"
#include "query/engine.h"
#include "query/lexer.h"

namespace vigil::query {

enum class ExprKind {
  kNumber,
  kString,
  kVectorSelector,
  kMatrixSelector,  // args[0] is the kVectorSelector (holding offset and @)
  kSubquery,        // args[0] is the inner expression
  kParen,           // args[0]
  kUnary,           // args[0]; op is kSub or kAdd
  kBinary,          // args[0] op args[1]
  kCall,            // func(args...)
  kAggregate,       // agg_op(param, args[0])
};

// Which time an `@` modifier pins evaluation to.
enum class AtKind { kNone, kTimestamp, kStart, kEnd };

enum class Cardinality { kOneToOne, kManyToOne, kOneToMany, kManyToMany };

struct VectorMatching {
  Cardinality card = Cardinality::kOneToOne;
  bool on = false;                   // `on(...)` given (else `ignoring`, possibly empty)
  std::vector<std::string> labels;   // the on/ignoring labels
  std::vector<std::string> include;  // group_left/right extra labels
};

struct FunctionInfo {
  std::string name;
  std::vector<ValueType> arg_types;
  // 0: exactly arg_types; n > 0: the last n may be omitted; -1: the last may be
  // omitted or repeated.
  int variadic = 0;
  ValueType return_type = ValueType::kVector;
};

// nullptr if `name` is not a PromQL 2.42 function.
const FunctionInfo* LookupFunction(absl::string_view name);

struct Expr {
  ExprKind kind = ExprKind::kNumber;
  int pos = 0;  // byte offset of the node in the query

  double number = 0;  // kNumber
  std::string str;    // kString

  // kVectorSelector.
  std::string metric_name;
  std::vector<LabelMatcher> matchers;
  // kVectorSelector and kSubquery.
  int64_t offset_ms = 0;
  AtKind at_kind = AtKind::kNone;
  int64_t at_ms = 0;  // resolved for kStart/kEnd before evaluation

  int64_t range_ms = 0;  // kMatrixSelector, kSubquery
  int64_t step_ms = 0;   // kSubquery; 0 = the default evaluation interval

  Tok op = Tok::kEOF;  // kUnary, kBinary
  bool return_bool = false;
  std::optional<VectorMatching> matching;  // kBinary between two vectors

  Tok agg_op = Tok::kEOF;  // kAggregate
  std::vector<std::string> grouping;
  bool without = false;
  std::unique_ptr<Expr> param;

  const FunctionInfo* func = nullptr;  // kCall

  std::vector<std::unique_ptr<Expr>> args;

  int height = 1;  // of the subtree; the parser bounds it

  ValueType type() const;
};

// "scalar", "instant vector", "range vector", "string".
std::string ValueTypeName(ValueType t);

}  // namespace vigil::query

#endif  // VIGIL_QUERY_AST_H_
