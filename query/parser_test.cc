#include "query/parser.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::query {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::StatusIs;

// A compact rendering of the tree, to check structure and precedence.
std::string Sexp(const Expr& e) {
  auto kids = [&e](std::string head) {
    for (const auto& a : e.args) absl::StrAppend(&head, " ", Sexp(*a));
    return absl::StrCat("(", head, ")");
  };
  switch (e.kind) {
    case ExprKind::kNumber: return absl::StrCat(e.number);
    case ExprKind::kString: return absl::StrCat("\"", e.str, "\"");
    case ExprKind::kVectorSelector: {
      std::vector<std::string> ms;
      for (const LabelMatcher& m : e.matchers) ms.push_back(m.ToString());
      std::string s = absl::StrCat("{", absl::StrJoin(ms, ","), "}");
      if (e.offset_ms != 0) absl::StrAppend(&s, " offset ", e.offset_ms);
      if (e.at_kind == AtKind::kTimestamp) absl::StrAppend(&s, " @", e.at_ms);
      if (e.at_kind == AtKind::kStart) absl::StrAppend(&s, " @start");
      if (e.at_kind == AtKind::kEnd) absl::StrAppend(&s, " @end");
      return s;
    }
    case ExprKind::kMatrixSelector: return kids(absl::StrCat("range ", e.range_ms));
    case ExprKind::kSubquery: {
      std::string head = absl::StrCat("subquery ", e.range_ms, ":", e.step_ms);
      if (e.offset_ms != 0) absl::StrAppend(&head, " offset ", e.offset_ms);
      if (e.at_kind == AtKind::kTimestamp) absl::StrAppend(&head, " @", e.at_ms);
      return kids(head);
    }
    case ExprKind::kParen: return kids("paren");
    case ExprKind::kUnary: return kids(TokDescription(e.op));
    case ExprKind::kBinary: {
      std::string head = TokDescription(e.op);
      if (e.return_bool) absl::StrAppend(&head, " bool");
      if (e.matching.has_value() && (e.matching->on || !e.matching->labels.empty())) {
        absl::StrAppend(&head, e.matching->on ? " on(" : " ignoring(",
                        absl::StrJoin(e.matching->labels, ","), ")");
      }
      if (e.matching.has_value() && e.matching->card == Cardinality::kManyToOne) {
        absl::StrAppend(&head, " group_left(", absl::StrJoin(e.matching->include, ","), ")");
      }
      if (e.matching.has_value() && e.matching->card == Cardinality::kOneToMany) {
        absl::StrAppend(&head, " group_right(", absl::StrJoin(e.matching->include, ","), ")");
      }
      return kids(head);
    }
    case ExprKind::kCall: return kids(e.func->name);
    case ExprKind::kAggregate: {
      std::string head = TokDescription(e.agg_op);
      if (!e.grouping.empty() || e.without) {
        absl::StrAppend(&head, e.without ? " without(" : " by(", absl::StrJoin(e.grouping, ","),
                        ")");
      }
      if (e.param != nullptr) absl::StrAppend(&head, " ", Sexp(*e.param));
      return kids(head);
    }
  }
  return "?";
}

struct GoodCase {
  const char* in;
  const char* want;
};

TEST(ParserTest, ParsesGrammar) {
  const GoodCase cases[] = {
      {"1 + 2 * 3", "(\"+\" 1 (\"*\" 2 3))"},
      {"2 ^ 3 ^ 2", "(\"^\" 2 (\"^\" 3 2))"},  // right-associative
      {"1 - 2 - 3", "(\"-\" (\"-\" 1 2) 3)"},
      {"-2 ^ 2", "(\"-\" (\"^\" 2 2))"},
      {"-a * b", "(\"*\" (\"-\" {__name__=\"a\"}) {__name__=\"b\"})"},
      {"1 - -1", "(\"-\" 1 -1)"},
      {"a or b and c unless d",
       "(or {__name__=\"a\"} (unless (and {__name__=\"b\"} {__name__=\"c\"}) "
       "{__name__=\"d\"}))"},
      {"a > bool 1", "(\">\" bool {__name__=\"a\"} 1)"},
      {"a * on(x, y) group_left(z) b",
       "(\"*\" on(x,y) group_left(z) {__name__=\"a\"} {__name__=\"b\"})"},
      {"a / ignoring(x) group_right b",
       "(\"/\" ignoring(x) group_right() {__name__=\"a\"} {__name__=\"b\"})"},
      {"a atan2 b", "(atan2 {__name__=\"a\"} {__name__=\"b\"})"},
      {R"({__name__=~"a.*", job!="x"})", "{__name__=~\"a.*\",job!=\"x\"}"},
      {R"(foo:bar{a='b'})", "{a=\"b\",__name__=\"foo:bar\"}"},
      {"foo[1h30m]", "(range 5400000 {__name__=\"foo\"})"},
      {"foo[5m] offset -1m", "(range 300000 {__name__=\"foo\"} offset -60000)"},
      {"foo offset 5m @ 10", "{__name__=\"foo\"} offset 300000 @10000"},
      {"foo @ start()", "{__name__=\"foo\"} @start"},
      {"foo @ end() offset 1s", "{__name__=\"foo\"} offset 1000 @end"},
      {"rate(foo[5m])[30m:1m] offset 1h",
       "(subquery 1800000:60000 offset 3600000 (rate (range 300000 {__name__=\"foo\"})))"},
      {"foo[10m:]", "(subquery 600000:0 {__name__=\"foo\"})"},
      {"sum by (job) (x)", "(sum by(job) {__name__=\"x\"})"},
      {"sum(x) without (a, b,)", "(sum without(a,b) {__name__=\"x\"})"},
      {"topk(3, x)", "(topk 3 {__name__=\"x\"})"},
      {"quantile without() (0.9, x)", "(quantile without() 0.9 {__name__=\"x\"})"},
      {R"(count_values("v", x))", "(count_values \"v\" {__name__=\"x\"})"},
      {"sum without(and, by, avg)(x)", "(sum without(and,by,avg) {__name__=\"x\"})"},
      {"foo * sum", "(\"*\" {__name__=\"foo\"} {__name__=\"sum\"})"},
      {"sum(sum)", "(sum {__name__=\"sum\"})"},
      {R"(offset{step="1s"}[5m])", "(range 300000 {step=\"1s\",__name__=\"offset\"})"},
      {"SUM BY (a) (x)", "(sum by(a) {__name__=\"x\"})"},
      {"round(x)", "(round {__name__=\"x\"})"},
      {"label_join(x, \"d\", \",\")", "(label_join {__name__=\"x\"} \"d\" \",\")"},
      {"day_of_week()", "(day_of_week)"},
      {R"("a\tb\x41\u00e9")", "\"a\tbA\xc3\xa9\""},
      {"`raw\\n`", "\"raw\\n\""},
      {"(1)", "(paren 1)"},
      {"# comment\n1", "1"},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE(c.in);
    auto e = ParseExpr(c.in);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(Sexp(**e), c.want);
  }
}

TEST(ParserTest, NumberForms) {
  struct Case {
    const char* in;
    double want;
  } cases[] = {{"0x1F", 31},  {"1e3", 1000},      {"-Inf", -INFINITY}, {"+inf", INFINITY},
               {".5", 0.5},   {"2.", 2},          {"12.34e-6", 12.34e-6}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    auto e = ParseExpr(c.in);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ((*e)->number, c.want);
  }
  auto nan = ParseExpr("NaN");
  ASSERT_TRUE(nan.ok());
  EXPECT_TRUE(std::isnan((*nan)->number));
}

struct BadCase {
  const char* in;
  const char* want;  // a substring of the error, position included where Prometheus checks it
};

TEST(ParserTest, ErrorsNamePositionAndExpectation) {
  const BadCase cases[] = {
      {"", "no expression found in input"},
      {"1+", "unexpected end of input"},
      {".", "unexpected character: '.'"},
      {"100..4", "unexpected number \".4\""},
      {"0deadbeef", "bad number or duration syntax: \"0de\""},
      {"*1", "unexpected <op:*>"},
      {"(1))", "unexpected right parenthesis ')'"},
      {"((1)", "unclosed left parenthesis"},
      {"1 and 1", "set operator \"and\" not allowed in binary scalar expression"},
      {"1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier"},
      {"1 !~ 1", "unexpected character after '!': '~'"},
      {"-\"string\"",
       "unary expression only allowed on expressions of type scalar or instant vector, got "
       "\"string\""},
      {"1 offset 1d",
       "1:1: parse error: offset modifier must be preceded by an instant vector selector"},
      {"foo offset 1s offset 2s", "offset may not be set multiple times"},
      {"a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>"},
      {"foo{", "unexpected end of input inside braces"},
      {"foo{a=}", "unexpected \"}\" in label matching, expected string"},
      {"foo{__name__ == \"bar\"}", "1:15: parse error: unexpected \"=\" in label matching, expected string"},
      {"foo{,}", "unexpected \",\" in label matching, expected identifier or \"}\""},
      {"foo{a=\"b\" lol}", "unexpected identifier \"lol\" in label matching, expected \",\" or \"}\""},
      {R"({a=""})", "vector selector must contain at least one non-empty matcher"},
      {R"(foo{__name__="bar"})", "metric name must not be set twice: \"foo\" or \"bar\""},
      {"foo[5mm]", "bad duration syntax: \"5mm\""},
      {"foo[5m1h]", "not a valid duration string: \"5m1h\""},
      {"foo[0m]", "duration must be greater than 0"},
      {"foo[99999999999999999999y]", "duration out of range"},
      {"foo[1]", "missing unit character in duration"},
      {"foo[5m] offset 1", "unexpected number \"1\" in offset, expected duration"},
      {"foo offset 1m[5m]", "1:14: parse error: no offset modifiers allowed before range"},
      {"foo[5m] @ 1m", "1:11: parse error: unexpected duration \"1m\" in @, expected timestamp"},
      {"(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors"},
      {"rate(foo[5m]) @ 1", "1:1: parse error: @ modifier must be preceded by"},
      {"sum without(==)(x)", "unexpected <op:==> in grouping opts, expected label"},
      {"sum (x) by test", "unexpected identifier \"test\" in grouping opts"},
      {"sum () by (test)", "no arguments for aggregate expression provided"},
      {"sum (x) without (a) by (a)", "unexpected <by>"},
      {"topk(x)", "wrong number of arguments for aggregate expression provided, expected 2, got 1"},
      {"topk(x,)", "trailing commas not allowed in function call args"},
      {"topk(x, y)", "1:6: parse error: expected type scalar in aggregation parameter, got instant vector"},
      {"floor()", "expected 1 argument(s) in call to \"floor\", got 0"},
      {"floor(1)", "expected type instant vector in call to function \"floor\", got scalar"},
      {"hour(a, b, c)", "expected at most 1 argument(s) in call to \"hour\", got 3"},
      {"nope()", "unknown function with name \"nope\""},
      {"rate(x)", "expected type range vector in call to function \"rate\", got instant vector"},
      {"a + on(b) group_left(b) c", "label \"b\" must not occur in ON and GROUP clause at once"},
      {"a and on(b) group_left c", "no grouping allowed for \"and\" operation"},
      {"1 + on(a) 2", "vector matching only allowed between instant vectors"},
      {"a + bool b", "bool modifier can only be used on comparison operators"},
      {"foo[5m] + 1", "binary expression must contain only scalar and instant vector types"},
      {"foo[5m][1m:]", "subquery is only allowed on instant vector, got range vector"},
      {R"("\c")", "unknown escape sequence U+0063 'c'"},
      {R"("\x.")", "illegal character U+002E '.' in escape sequence"},
      {"\"abc", "unterminated quoted string"},
      {"-=", "unexpected \"=\""},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_THAT(ParseExpr(c.in), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.want)));
  }
}

TEST(ParserTest, DeepNestingIsAnErrorNotACrash) {
  std::string deep(100'000, '(');
  EXPECT_THAT(ParseExpr(deep + "1" + std::string(100'000, ')')), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("nested too deeply")));
  std::string chain = "1";
  for (int i = 0; i < 100'000; ++i) chain += "+1";
  EXPECT_THAT(ParseExpr(chain), StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("nested too deeply")));
  std::string ok = std::string(100, '(') + "1" + std::string(100, ')');
  EXPECT_TRUE(ParseExpr(ok).ok());
}

TEST(ParserTest, MetricSelectorForApi) {
  auto ms = ParseMetricSelector(R"(up{job=~"a|b"})");
  ASSERT_TRUE(ms.ok()) << ms.status();
  ASSERT_EQ(ms->size(), 2u);
  EXPECT_THAT(ParseMetricSelector("sum(up)"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vigil::query
