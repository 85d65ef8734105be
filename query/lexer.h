// query/lexer.h
//
// Lexer: splits a PromQL expression into tokens, as Prometheus' promql/parser/lex.go.
// Durations (`5m`, `1h30m`) are their own token kind; keywords are matched
// case-insensitively except inside `{...}`, where every word is a label name.
// Pure function, thread-safe.
#ifndef VIGIL_QUERY_LEXER_H_
#define VIGIL_QUERY_LEXER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vigil::query {

enum class Tok {
  kEOF,
  kIdentifier,
  kMetricIdentifier,  // an identifier with a ':' in it
  kNumber,
  kDuration,
  kString,
  kLeftParen,
  kRightParen,
  kLeftBrace,
  kRightBrace,
  kLeftBracket,
  kRightBracket,
  kComma,
  kColon,
  kAssign,  // '=' in matchers
  kAt,
  // Operators.
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kEql,
  kNeq,
  kLss,
  kLte,
  kGtr,
  kGte,
  kEqlRegex,
  kNeqRegex,
  kAnd,
  kOr,
  kUnless,
  kAtan2,
  // Aggregators.
  kSum,
  kAvg,
  kCount,
  kMin,
  kMax,
  kGroup,
  kStddev,
  kStdvar,
  kTopk,
  kBottomk,
  kCountValues,
  kQuantile,
  // Keywords.
  kBy,
  kWithout,
  kOn,
  kIgnoring,
  kGroupLeft,
  kGroupRight,
  kOffset,
  kBool,
  kStart,
  kEnd,
};

struct Token {
  Tok type = Tok::kEOF;
  std::string text;  // the source text (for strings: still quoted)
  int pos = 0;       // byte offset in the input
};

// Prometheus' description of a token kind for error messages ("number", "\"(\"").
std::string TokDescription(Tok t);
bool IsAggregatorTok(Tok t);
bool IsKeywordLikeTok(Tok t);  // words that may double as label names

// "line:col" (1-based) of byte offset `pos` in `input`.
std::string PositionString(absl::string_view input, int pos);

// Tokenizes `input`; always ends with kEOF. kInvalidArgument
// ("1:5: parse error: unterminated quoted string") on a lexical error.
absl::StatusOr<std::vector<Token>> Lex(absl::string_view input);

// Decodes a quoted PromQL string ("..." / '...' with Go escapes, `...` raw).
absl::StatusOr<std::string> Unquote(absl::string_view quoted);

}  // namespace vigil::query

#endif  // VIGIL_QUERY_LEXER_H_
