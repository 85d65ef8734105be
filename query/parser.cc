#include "query/parser.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace vigil::query {
namespace {

int Precedence(Tok t) {
  switch (t) {
    case Tok::kOr: return 1;
    case Tok::kAnd:
    case Tok::kUnless: return 2;
    case Tok::kEql:
    case Tok::kNeq:
    case Tok::kLss:
    case Tok::kLte:
    case Tok::kGtr:
    case Tok::kGte: return 3;
    case Tok::kAdd:
    case Tok::kSub: return 4;
    case Tok::kMul:
    case Tok::kDiv:
    case Tok::kMod:
    case Tok::kAtan2: return 5;
    case Tok::kPow: return 6;
    default: return 0;
  }
}

bool IsComparison(Tok t) { return Precedence(t) == 3; }
bool IsSetOp(Tok t) { return t == Tok::kAnd || t == Tok::kOr || t == Tok::kUnless; }

// How Prometheus names a token in "unexpected ..." messages.
std::string Describe(const Token& t) {
  switch (t.type) {
    case Tok::kEOF: return "end of input";
    case Tok::kIdentifier: return absl::StrCat("identifier \"", t.text, "\"");
    case Tok::kMetricIdentifier: return absl::StrCat("metric identifier \"", t.text, "\"");
    case Tok::kNumber: return absl::StrCat("number \"", t.text, "\"");
    case Tok::kDuration: return absl::StrCat("duration \"", t.text, "\"");
    case Tok::kString: return absl::StrCat("string ", t.text);
    default: break;
  }
  if (IsAggregatorTok(t.type)) return absl::StrCat("<aggr:", t.text, ">");
  if (t.type == Tok::kAt) return "<op:@>";
  if (Precedence(t.type) > 0 && !IsSetOp(t.type) && t.type != Tok::kAtan2) {
    return absl::StrCat("<op:", t.text, ">");
  }
  if (IsKeywordLikeTok(t.type)) return absl::StrCat("<", t.text, ">");
  return TokDescription(t.type);
}

absl::StatusOr<int64_t> DurationMs(absl::string_view s) {
  int64_t total = 0;
  size_t i = 0;
  int64_t last_unit = INT64_MAX;  // units must strictly decrease: 1h30m, not 30m1h
  if (s.empty()) return absl::InvalidArgumentError("empty duration string");
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && absl::ascii_isdigit(s[j])) ++j;
    if (j == i || j == s.size()) {
      return absl::InvalidArgumentError(absl::StrCat("not a valid duration string: \"", s, "\""));
    }
    int64_t n = std::strtoll(std::string(s.substr(i, j - i)).c_str(), nullptr, 10);
    int64_t unit;
    size_t k = j + 1;
    switch (s[j]) {
      case 'm':
        if (k < s.size() && s[k] == 's') {
          unit = 1, ++k;
        } else {
          unit = 60'000;
        }
        break;
      case 's': unit = 1000; break;
      case 'h': unit = 3'600'000; break;
      case 'd': unit = 86'400'000; break;
      case 'w': unit = 7 * 86'400'000LL; break;
      case 'y': unit = 365 * 86'400'000LL; break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("not a valid duration string: \"", s, "\""));
    }
    if (unit >= last_unit) {
      return absl::InvalidArgumentError(absl::StrCat("not a valid duration string: \"", s, "\""));
    }
    if (j - i > 18 || n > (INT64_MAX - total) / unit) {
      return absl::InvalidArgumentError(absl::StrCat("duration out of range: \"", s, "\""));
    }
    last_unit = unit;
    total += n * unit;
    i = k;
  }
  return total;
}

// Parses a number token; false if it does not fit a double.
bool ParseNumberChecked(absl::string_view text, double* out);

double ParseNumber(absl::string_view text) {
  std::string s = absl::AsciiStrToLower(text);
  if (s == "inf") return std::numeric_limits<double>::infinity();
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (s.size() > 2 && s[0] == '0' && s[1] == 'x') {
    return static_cast<double>(std::strtoull(s.c_str() + 2, nullptr, 16));
  }
  return std::strtod(s.c_str(), nullptr);
}

bool ParseNumberChecked(absl::string_view text, double* out) {
  *out = ParseNumber(text);
  return !std::isinf(*out) || absl::StrContains(absl::AsciiStrToLower(text), "inf");
}

class Parser {
 public:
  Parser(absl::string_view input, std::vector<Token> toks) : in_(input), toks_(std::move(toks)) {}

  absl::StatusOr<std::unique_ptr<Expr>> ParseTop() {
    if (Peek().type == Tok::kEOF) return Error(Peek(), "no expression found in input");
    ASSIGN_OR_RETURN(auto e, ParseBinary(1));
    if (Peek().type != Tok::kEOF) return Unexpected("", "");
    return e;
  }

  absl::StatusOr<std::vector<LabelMatcher>> ParseSelectorOnly() {
    ASSIGN_OR_RETURN(auto e, ParseTop());
    if (e->kind != ExprKind::kVectorSelector) {
      return absl::InvalidArgumentError("1:1: parse error: expected vector selector");
    }
    return e->matchers;
  }

 private:
  const Token& Peek(int ahead = 0) const {
    size_t i = std::min(pos_ + ahead, toks_.size() - 1);
    return toks_[i];
  }
  const Token& Take() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }

  absl::Status Error(const Token& at, absl::string_view msg) const { return ErrorAt(at.pos, msg); }
  absl::Status ErrorAt(int pos, absl::string_view msg) const {
    return absl::InvalidArgumentError(
        absl::StrCat(PositionString(in_, pos), ": parse error: ", msg));
  }
  // "unexpected <tok>[ in <context>][, expected <want>]" at the next token.
  absl::Status Unexpected(absl::string_view context, absl::string_view want) const {
    std::string msg = absl::StrCat("unexpected ", Describe(Peek()));
    if (!context.empty()) absl::StrAppend(&msg, " in ", context);
    if (!want.empty()) absl::StrAppend(&msg, ", expected ", want);
    return Error(Peek(), msg);
  }
  absl::Status Expect(Tok t, absl::string_view context) {
    if (Peek().type != t) return Unexpected(context, TokDescription(t));
    Take();
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Expr>> ParseBinary(int min_prec);
  absl::StatusOr<std::unique_ptr<Expr>> ParseUnary();
  absl::StatusOr<std::unique_ptr<Expr>> ParseUnaryNested();
  absl::StatusOr<std::unique_ptr<Expr>> ParsePostfix(std::unique_ptr<Expr> e);
  absl::StatusOr<std::unique_ptr<Expr>> ParsePrimary();
  absl::StatusOr<std::unique_ptr<Expr>> ParseSelector(std::string name, int pos);
  absl::Status ParseMatchers(std::vector<LabelMatcher>* out);
  absl::StatusOr<std::unique_ptr<Expr>> ParseCall(const Token& name);
  absl::StatusOr<std::unique_ptr<Expr>> ParseAggregate();
  absl::StatusOr<std::vector<std::string>> ParseLabelList(absl::string_view context);
  absl::Status ParseBinaryModifiers(Expr* bin);
  absl::Status CheckBinary(Expr* bin);
  absl::Status ParseOffset(Expr* e);
  // Sets e->height from its children; kInvalidArgument past kMaxDepth, which
  // bounds the recursion of evaluation (and of the tree's destruction).
  absl::Status SetHeight(Expr* e) const;
  absl::Status ParseAt(Expr* e);
  absl::StatusOr<int64_t> TakeDuration(absl::string_view context);

  absl::string_view in_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  static constexpr int kMaxDepth = 500;
};

absl::Status Parser::SetHeight(Expr* e) const {
  int h = 0;
  for (const auto& a : e->args) h = std::max(h, a->height);
  if (e->param != nullptr) h = std::max(h, e->param->height);
  e->height = h + 1;
  if (e->height > kMaxDepth) return ErrorAt(e->pos, "expression nested too deeply");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Expr>> Parser::ParseBinary(int min_prec) {
  ASSIGN_OR_RETURN(auto lhs, ParseUnary());
  while (true) {
    Tok op = Peek().type;
    int prec = Precedence(op);
    if (prec == 0 || prec < min_prec) break;
    const Token& op_tok = Take();
    auto bin = std::make_unique<Expr>();
    bin->kind = ExprKind::kBinary;
    bin->op = op;
    bin->pos = op_tok.pos;  // errors point at the operator, as Prometheus'
    RETURN_IF_ERROR(ParseBinaryModifiers(bin.get()));
    int next = op == Tok::kPow ? prec : prec + 1;
    if (Peek().type == Tok::kEOF) return Unexpected("", "");
    ASSIGN_OR_RETURN(auto rhs, ParseBinary(next));
    bin->args.push_back(std::move(lhs));
    bin->args.push_back(std::move(rhs));
    RETURN_IF_ERROR(CheckBinary(bin.get()));
    bin->pos = bin->args[0]->pos;
    RETURN_IF_ERROR(SetHeight(bin.get()));
    lhs = std::move(bin);
  }
  return lhs;
}

absl::Status Parser::ParseBinaryModifiers(Expr* bin) {
  if (Peek().type == Tok::kBool) {
    if (!IsComparison(bin->op)) {
      return Error(Peek(), "bool modifier can only be used on comparison operators");
    }
    Take();
    bin->return_bool = true;
  }
  if (Peek().type != Tok::kOn && Peek().type != Tok::kIgnoring) return absl::OkStatus();
  VectorMatching m;
  m.on = Take().type == Tok::kOn;
  ASSIGN_OR_RETURN(m.labels, ParseLabelList("grouping opts"));
  if (Peek().type == Tok::kGroupLeft || Peek().type == Tok::kGroupRight) {
    m.card = Take().type == Tok::kGroupLeft ? Cardinality::kManyToOne : Cardinality::kOneToMany;
    if (Peek().type == Tok::kLeftParen) {
      ASSIGN_OR_RETURN(m.include, ParseLabelList("grouping opts"));
    }
  }
  bin->matching = std::move(m);
  return absl::OkStatus();
}

absl::Status Parser::CheckBinary(Expr* bin) {
  ValueType lt = bin->args[0]->type(), rt = bin->args[1]->type();
  auto ok_type = [](ValueType t) { return t == ValueType::kScalar || t == ValueType::kVector; };
  if (!ok_type(lt) || !ok_type(rt)) {
    return ErrorAt(bin->pos, "binary expression must contain only scalar and instant vector types");
  }
  bool both_vectors = lt == ValueType::kVector && rt == ValueType::kVector;
  if (bin->matching.has_value() && !both_vectors) {
    return ErrorAt(bin->pos, "vector matching only allowed between instant vectors");
  }
  if (IsComparison(bin->op) && lt == ValueType::kScalar && rt == ValueType::kScalar &&
      !bin->return_bool) {
    return ErrorAt(bin->pos, "comparisons between scalars must use BOOL modifier");
  }
  if (IsSetOp(bin->op)) {
    if (lt == ValueType::kScalar || rt == ValueType::kScalar) {
      return ErrorAt(bin->pos, absl::StrCat("set operator \"", TokDescription(bin->op),
                                            "\" not allowed in binary scalar expression"));
    }
    if (bin->matching.has_value() && bin->matching->card != Cardinality::kOneToOne) {
      return ErrorAt(bin->pos, absl::StrCat("no grouping allowed for \"",
                                            TokDescription(bin->op), "\" operation"));
    }
  }
  if (both_vectors && !bin->matching.has_value()) bin->matching = VectorMatching();
  if (both_vectors && IsSetOp(bin->op)) bin->matching->card = Cardinality::kManyToMany;
  if (bin->matching.has_value() && bin->matching->on) {
    for (const std::string& l : bin->matching->include) {
      for (const std::string& o : bin->matching->labels) {
        if (l == o) {
          return ErrorAt(bin->pos, absl::StrCat("label \"", l,
                                                "\" must not occur in ON and GROUP clause at once"));
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Expr>> Parser::ParseUnary() {
  // Bounds recursion here and in evaluation, so deep nesting cannot overflow the stack.
  if (++depth_ > kMaxDepth) return Error(Peek(), "expression nested too deeply");
  auto result = ParseUnaryNested();
  --depth_;
  return result;
}

absl::StatusOr<std::unique_ptr<Expr>> Parser::ParseUnaryNested() {
  Tok t = Peek().type;
  if (t != Tok::kAdd && t != Tok::kSub) {
    ASSIGN_OR_RETURN(auto p, ParsePrimary());
    return ParsePostfix(std::move(p));
  }
  int pos = Take().pos;
  ASSIGN_OR_RETURN(auto operand, ParseBinary(Precedence(Tok::kPow)));
  if (operand->kind == ExprKind::kNumber) {
    if (t == Tok::kSub) operand->number = -operand->number;
    operand->pos = pos;
    return operand;
  }
  ValueType ot = operand->type();
  if (ot != ValueType::kScalar && ot != ValueType::kVector) {
    return ErrorAt(pos, absl::StrCat("unary expression only allowed on expressions of type "
                                     "scalar or instant vector, got \"",
                                     ValueTypeName(ot), "\""));
  }
  auto u = std::make_unique<Expr>();
  u->kind = ExprKind::kUnary;
  u->op = t;
  u->pos = pos;
  u->args.push_back(std::move(operand));
  RETURN_IF_ERROR(SetHeight(u.get()));
  return u;
}

absl::StatusOr<int64_t> Parser::TakeDuration(absl::string_view context) {
  if (Peek().type != Tok::kDuration) return Unexpected(context, "duration");
  ASSIGN_OR_RETURN(int64_t d, DurationMs(Peek().text));
  Take();
  return d;
}

absl::StatusOr<std::unique_ptr<Expr>> Parser::ParsePostfix(std::unique_ptr<Expr> e) {
  while (true) {
    Tok t = Peek().type;
    if (t == Tok::kLeftBracket) {
      int pos = Take().pos;
      if (Peek().type == Tok::kRightBracket) {
        return Error(Peek(), "missing unit character in duration");
      }
      ASSIGN_OR_RETURN(int64_t range, TakeDuration("range"));
      if (range == 0) return ErrorAt(pos, "duration must be greater than 0");
      if (Peek().type == Tok::kRightBracket) {
        Take();
        if (e->kind != ExprKind::kVectorSelector) {
          return ErrorAt(pos, "ranges only allowed for vector selectors");
        }
        if (e->offset_ms != 0) return ErrorAt(pos, "no offset modifiers allowed before range");
        if (e->at_kind != AtKind::kNone) {
          return ErrorAt(pos, "no @ modifiers allowed before range");
        }
        auto m = std::make_unique<Expr>();
        m->kind = ExprKind::kMatrixSelector;
        m->pos = e->pos;
        m->range_ms = range;
        m->args.push_back(std::move(e));
        RETURN_IF_ERROR(SetHeight(m.get()));
        e = std::move(m);
        continue;
      }
      RETURN_IF_ERROR(Expect(Tok::kColon, "subquery or range"));
      int64_t step = 0;
      if (Peek().type == Tok::kDuration) {
        ASSIGN_OR_RETURN(step, TakeDuration("subquery"));
      }
      RETURN_IF_ERROR(Expect(Tok::kRightBracket, "subquery"));
      if (e->type() != ValueType::kVector) {
        return ErrorAt(pos, absl::StrCat("subquery is only allowed on instant vector, got ",
                                         ValueTypeName(e->type()), " instead"));
      }
      auto sq = std::make_unique<Expr>();
      sq->kind = ExprKind::kSubquery;
      sq->pos = e->pos;
      sq->range_ms = range;
      sq->step_ms = step;
      sq->args.push_back(std::move(e));
      RETURN_IF_ERROR(SetHeight(sq.get()));
      e = std::move(sq);
    } else if (t == Tok::kOffset) {
      RETURN_IF_ERROR(ParseOffset(e.get()));
    } else if (t == Tok::kAt) {
      RETURN_IF_ERROR(ParseAt(e.get()));
    } else {
      return e;
    }
  }
}

// The node an offset / @ modifier attaches to, or nullptr if none may.
Expr* ModifierTarget(Expr* e) {
  if (e->kind == ExprKind::kVectorSelector || e->kind == ExprKind::kSubquery) return e;
  if (e->kind == ExprKind::kMatrixSelector) return e->args[0].get();
  return nullptr;
}

absl::Status Parser::ParseOffset(Expr* e) {
  const Token& kw = Take();
  Expr* target = ModifierTarget(e);
  if (target == nullptr) {
    return ErrorAt(e->pos, "offset modifier must be preceded by an instant vector selector or "
                           "range vector selector or a subquery");
  }
  bool neg = false;
  if (Peek().type == Tok::kSub) {
    Take();
    neg = true;
  }
  ASSIGN_OR_RETURN(int64_t d, TakeDuration("offset"));
  if (target->offset_ms != 0) return Error(kw, "offset may not be set multiple times");
  target->offset_ms = neg ? -d : d;
  return absl::OkStatus();
}

absl::Status Parser::ParseAt(Expr* e) {
  const Token& kw = Take();
  Expr* target = ModifierTarget(e);
  if (target == nullptr) {
    return ErrorAt(e->pos, "@ modifier must be preceded by an instant vector selector or range "
                           "vector selector or a subquery");
  }
  if (target->at_kind != AtKind::kNone) return Error(kw, "@ <timestamp> may not be set multiple times");
  if (Peek().type == Tok::kStart || Peek().type == Tok::kEnd) {
    target->at_kind = Take().type == Tok::kStart ? AtKind::kStart : AtKind::kEnd;
    RETURN_IF_ERROR(Expect(Tok::kLeftParen, "@ modifier"));
    return Expect(Tok::kRightParen, "@ modifier");
  }
  bool neg = false;
  if (Peek().type == Tok::kSub || Peek().type == Tok::kAdd) neg = Take().type == Tok::kSub;
  if (Peek().type != Tok::kNumber) return Unexpected("@", "timestamp");
  double v = ParseNumber(Take().text);
  if (neg) v = -v;
  double ms = std::round(v * 1000);
  if (!std::isfinite(ms) || ms > 9.2e18 || ms < -9.2e18) {
    return Error(kw, "timestamp out of bounds for @ modifier");
  }
  target->at_kind = AtKind::kTimestamp;
  target->at_ms = static_cast<int64_t>(ms);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Expr>> Parser::ParsePrimary() {
  const Token& t = Peek();
  auto e = std::make_unique<Expr>();
  e->pos = t.pos;
  switch (t.type) {
    case Tok::kNumber:
      e->kind = ExprKind::kNumber;
      if (!ParseNumberChecked(t.text, &e->number)) {
        return Error(t, absl::StrCat("strconv.ParseFloat: parsing \"", t.text,
                                     "\": value out of range"));
      }
      Take();
      return e;
    case Tok::kString: {
      e->kind = ExprKind::kString;
      auto s = Unquote(t.text);
      if (!s.ok()) return Error(t, s.status().message());
      e->str = *std::move(s);
      Take();
      return e;
    }
    case Tok::kLeftParen: {
      Take();
      e->kind = ExprKind::kParen;
      ASSIGN_OR_RETURN(auto inner, ParseBinary(1));
      e->args.push_back(std::move(inner));
      RETURN_IF_ERROR(Expect(Tok::kRightParen, "paren expression"));
      RETURN_IF_ERROR(SetHeight(e.get()));
      return e;
    }
    case Tok::kLeftBrace:
      return ParseSelector("", t.pos);
    case Tok::kIdentifier:
      if (Peek(1).type == Tok::kLeftParen) return ParseCall(Take());
      return ParseSelector(Take().text, t.pos);
    case Tok::kMetricIdentifier:
      return ParseSelector(Take().text, t.pos);
    default:
      break;
  }
  if (IsAggregatorTok(t.type) &&
      (Peek(1).type == Tok::kLeftParen || Peek(1).type == Tok::kBy ||
       Peek(1).type == Tok::kWithout)) {
    return ParseAggregate();
  }
  if (IsAggregatorTok(t.type) || t.type == Tok::kBy || t.type == Tok::kWithout ||
      t.type == Tok::kAnd || t.type == Tok::kOr || t.type == Tok::kUnless ||
      t.type == Tok::kOffset || t.type == Tok::kStart || t.type == Tok::kEnd) {
    return ParseSelector(Take().text, t.pos);  // Prometheus' metric_identifier rule
  }
  return Unexpected("", "");
}

absl::StatusOr<std::unique_ptr<Expr>> Parser::ParseSelector(std::string name, int pos) {
  auto e = std::make_unique<Expr>();
  e->kind = ExprKind::kVectorSelector;
  e->pos = pos;
  e->metric_name = name;
  if (Peek().type == Tok::kLeftBrace) {
    Take();
    RETURN_IF_ERROR(ParseMatchers(&e->matchers));
  }
  if (!name.empty()) {
    for (const LabelMatcher& m : e->matchers) {
      if (m.name() == kMetricNameLabel) {
        return ErrorAt(pos, absl::StrCat("metric name must not be set twice: \"", name,
                                         "\" or \"", m.value(), "\""));
      }
    }
    e->matchers.push_back(LabelMatcher::Equal(kMetricNameLabel, name));
  }
  bool non_empty = false;
  for (const LabelMatcher& m : e->matchers) non_empty |= !m.MatchesEmpty();
  if (!non_empty) {
    return ErrorAt(pos, "vector selector must contain at least one non-empty matcher");
  }
  return e;
}

absl::Status Parser::ParseMatchers(std::vector<LabelMatcher>* out) {
  while (Peek().type != Tok::kRightBrace) {
    if (Peek().type != Tok::kIdentifier) return Unexpected("label matching", "identifier or \"}\"");
    std::string name = Take().text;
    MatchType type;
    switch (Peek().type) {
      case Tok::kAssign: type = MatchType::kEqual; break;
      case Tok::kNeq: type = MatchType::kNotEqual; break;
      case Tok::kEqlRegex: type = MatchType::kRegexMatch; break;
      case Tok::kNeqRegex: type = MatchType::kRegexNoMatch; break;
      default: return Unexpected("label matching", "label matching operator");
    }
    Take();
    if (Peek().type != Tok::kString) return Unexpected("label matching", "string");
    const Token& st = Take();
    auto value = Unquote(st.text);
    if (!value.ok()) return Error(st, value.status().message());
    auto m = LabelMatcher::Create(type, name, *value);
    if (!m.ok()) return Error(st, m.status().message());
    out->push_back(*std::move(m));
    if (Peek().type == Tok::kComma) {
      Take();
    } else if (Peek().type != Tok::kRightBrace) {
      return Unexpected("label matching", "\",\" or \"}\"");
    }
  }
  Take();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> Parser::ParseLabelList(absl::string_view context) {
  RETURN_IF_ERROR(Expect(Tok::kLeftParen, context));
  std::vector<std::string> labels;
  while (Peek().type != Tok::kRightParen) {
    Tok t = Peek().type;
    if (t != Tok::kIdentifier && !IsKeywordLikeTok(t)) return Unexpected(context, "label");
    labels.push_back(Take().text);
    if (Peek().type == Tok::kComma) {
      Take();
    } else if (Peek().type != Tok::kRightParen) {
      return Unexpected(context, "\",\" or \")\"");
    }
  }
  Take();
  return labels;
}

absl::StatusOr<std::unique_ptr<Expr>> Parser::ParseCall(const Token& name) {
  const FunctionInfo* f = LookupFunction(name.text);
  if (f == nullptr) return Error(name, absl::StrCat("unknown function with name \"", name.text, "\""));
  auto e = std::make_unique<Expr>();
  e->kind = ExprKind::kCall;
  e->pos = name.pos;
  e->func = f;
  RETURN_IF_ERROR(Expect(Tok::kLeftParen, "function call"));
  while (Peek().type != Tok::kRightParen) {
    ASSIGN_OR_RETURN(auto arg, ParseBinary(1));
    e->args.push_back(std::move(arg));
    if (Peek().type == Tok::kComma) {
      Take();
      if (Peek().type == Tok::kRightParen) {
        return Error(Peek(), "trailing commas not allowed in function call args");
      }
    } else if (Peek().type != Tok::kRightParen) {
      return Unexpected("function call", "\",\" or \")\"");
    }
  }
  Take();
  int n = static_cast<int>(e->args.size());
  int want = static_cast<int>(f->arg_types.size());
  auto quote = absl::StrCat("\"", f->name, "\"");
  if (f->variadic == 0 && n != want) {
    return Error(name, absl::StrCat("expected ", want, " argument(s) in call to ", quote, ", got ", n));
  }
  if (f->variadic > 0 && (n < want - f->variadic || n > want)) {
    if (n > want) {
      return Error(name, absl::StrCat("expected at most ", want, " argument(s) in call to ", quote,
                                      ", got ", n));
    }
    return Error(name, absl::StrCat("expected at least ", want - f->variadic,
                                    " argument(s) in call to ", quote, ", got ", n));
  }
  if (f->variadic < 0 && n < want - 1) {
    return Error(name, absl::StrCat("expected at least ", want - 1, " argument(s) in call to ", quote,
                                    ", got ", n));
  }
  for (int i = 0; i < n; ++i) {
    ValueType wt = f->arg_types[std::min(i, want - 1)];
    if (e->args[i]->type() != wt) {
      return ErrorAt(e->args[i]->pos,
                     absl::StrCat("expected type ", ValueTypeName(wt), " in call to function ",
                                  quote, ", got ", ValueTypeName(e->args[i]->type())));
    }
  }
  RETURN_IF_ERROR(SetHeight(e.get()));
  return e;
}

absl::StatusOr<std::unique_ptr<Expr>> Parser::ParseAggregate() {
  const Token& op = Take();
  auto e = std::make_unique<Expr>();
  e->kind = ExprKind::kAggregate;
  e->pos = op.pos;
  e->agg_op = op.type;
  bool have_grouping = false;
  auto parse_grouping = [&]() -> absl::Status {
    Tok t = Peek().type;
    if (t != Tok::kBy && t != Tok::kWithout) return absl::OkStatus();
    if (have_grouping) return Unexpected("aggregation", "");
    Take();
    e->without = t == Tok::kWithout;
    ASSIGN_OR_RETURN(e->grouping, ParseLabelList("grouping opts"));
    have_grouping = true;
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(parse_grouping());
  RETURN_IF_ERROR(Expect(Tok::kLeftParen, "aggregation"));
  std::vector<std::unique_ptr<Expr>> args;
  while (Peek().type != Tok::kRightParen) {
    ASSIGN_OR_RETURN(auto arg, ParseBinary(1));
    args.push_back(std::move(arg));
    if (Peek().type == Tok::kComma) {
      Take();
      if (Peek().type == Tok::kRightParen) {
        return Error(Peek(), "trailing commas not allowed in function call args");
      }
    } else if (Peek().type != Tok::kRightParen) {
      return Unexpected("aggregation", "\",\" or \")\"");
    }
  }
  Take();
  RETURN_IF_ERROR(parse_grouping());
  bool takes_param = op.type == Tok::kTopk || op.type == Tok::kBottomk ||
                     op.type == Tok::kQuantile || op.type == Tok::kCountValues;
  size_t want = takes_param ? 2 : 1;
  if (args.empty()) return Error(op, "no arguments for aggregate expression provided");
  if (args.size() != want) {
    return Error(op, absl::StrCat("wrong number of arguments for aggregate expression provided, "
                                  "expected ",
                                  want, ", got ", args.size()));
  }
  if (takes_param) {
    e->param = std::move(args[0]);
    ValueType pt = op.type == Tok::kCountValues ? ValueType::kString : ValueType::kScalar;
    if (e->param->type() != pt) {
      return ErrorAt(e->param->pos, absl::StrCat("expected type ", ValueTypeName(pt),
                                                 " in aggregation parameter, got ",
                                                 ValueTypeName(e->param->type())));
    }
  }
  e->args.push_back(std::move(args.back()));
  if (e->args[0]->type() != ValueType::kVector) {
    return ErrorAt(e->args[0]->pos,
                   absl::StrCat("expected type instant vector in aggregation expression, got ",
                                ValueTypeName(e->args[0]->type())));
  }
  RETURN_IF_ERROR(SetHeight(e.get()));
  return e;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Expr>> ParseExpr(absl::string_view input) {
  ASSIGN_OR_RETURN(auto toks, Lex(input));
  return Parser(input, std::move(toks)).ParseTop();
}

absl::StatusOr<std::vector<LabelMatcher>> ParseMetricSelector(absl::string_view input) {
  ASSIGN_OR_RETURN(auto toks, Lex(input));
  return Parser(input, std::move(toks)).ParseSelectorOnly();
}

absl::StatusOr<int64_t> ParseDurationMs(absl::string_view s) { return DurationMs(s); }

}  // namespace vigil::query
