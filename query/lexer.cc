#include "query/lexer.h"

#include <algorithm>
#include <cctype>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vigil::query {
namespace {

const absl::flat_hash_map<std::string, Tok>& Keywords() {
  static const auto* kw = new absl::flat_hash_map<std::string, Tok>{
      {"and", Tok::kAnd},
      {"or", Tok::kOr},
      {"unless", Tok::kUnless},
      {"atan2", Tok::kAtan2},
      {"sum", Tok::kSum},
      {"avg", Tok::kAvg},
      {"count", Tok::kCount},
      {"min", Tok::kMin},
      {"max", Tok::kMax},
      {"group", Tok::kGroup},
      {"stddev", Tok::kStddev},
      {"stdvar", Tok::kStdvar},
      {"topk", Tok::kTopk},
      {"bottomk", Tok::kBottomk},
      {"count_values", Tok::kCountValues},
      {"quantile", Tok::kQuantile},
      {"by", Tok::kBy},
      {"without", Tok::kWithout},
      {"on", Tok::kOn},
      {"ignoring", Tok::kIgnoring},
      {"group_left", Tok::kGroupLeft},
      {"group_right", Tok::kGroupRight},
      {"offset", Tok::kOffset},
      {"bool", Tok::kBool},
      {"start", Tok::kStart},
      {"end", Tok::kEnd},
  };
  return *kw;
}

bool IsAlpha(char c) { return c == '_' || std::isalpha(static_cast<unsigned char>(c)); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(char c) { return IsAlpha(c) || IsDigit(c); }
bool IsDurationUnit(char c) {
  return c == 's' || c == 'm' || c == 'h' || c == 'd' || c == 'w' || c == 'y';
}

class Lexer {
 public:
  explicit Lexer(absl::string_view in) : in_(in) {}

  absl::StatusOr<std::vector<Token>> Run() {
    while (true) {
      SkipSpaceAndComments();
      if (pos_ >= in_.size()) break;
      absl::Status s = Next();
      if (!s.ok()) return s;
    }
    if (brace_depth_ > 0) return Error(in_.size(), "unexpected end of input inside braces");
    if (bracket_depth_ > 0) return Error(in_.size(), "unclosed left bracket");
    if (paren_depth_ > 0) return Error(in_.size(), "unclosed left parenthesis");
    out_.push_back(Token{Tok::kEOF, "", static_cast<int>(in_.size())});
    return std::move(out_);
  }

 private:
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < in_.size() ? in_[pos_ + ahead] : '\0';
  }
  void Emit(Tok t, size_t start) {
    out_.push_back(Token{t, std::string(in_.substr(start, pos_ - start)), static_cast<int>(start)});
  }
  absl::Status Error(size_t at, absl::string_view msg) {
    return absl::InvalidArgumentError(
        absl::StrCat(PositionString(in_, static_cast<int>(at)), ": parse error: ", msg));
  }

  void SkipSpaceAndComments() {
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < in_.size() && in_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  absl::Status Next() {
    size_t start = pos_;
    char c = in_[pos_];
    if (IsDigit(c) || (c == '.' && IsDigit(Peek(1)))) return LexNumberOrDuration();
    if (c == '"' || c == '\'' || c == '`') return LexString();
    if (IsAlpha(c) || (c == ':' && brace_depth_ == 0 && bracket_depth_ == 0)) {
      return LexWord();
    }
    auto two = [&](char a, char b) { return c == a && Peek(1) == b; };
    Tok t;
    size_t len = 1;
    if (brace_depth_ == 0 && (two('=', '~') || two('!', '~'))) {
      return Error(pos_, absl::StrCat("unexpected character after '", std::string(1, c), "': '~'"));
    }
    if (c == '!' && !two('!', '=') && !two('!', '~')) {
      return Error(pos_, absl::StrCat("unexpected character after '!': '",
                                      std::string(1, Peek(1)), "'"));
    }
    if (brace_depth_ > 0 && two('=', '=')) {
      t = Tok::kAssign;
    } else if (two('=', '=')) {
      t = Tok::kEql, len = 2;
    } else if (two('!', '=')) {
      t = Tok::kNeq, len = 2;
    } else if (two('=', '~')) {
      t = Tok::kEqlRegex, len = 2;
    } else if (two('!', '~')) {
      t = Tok::kNeqRegex, len = 2;
    } else if (two('<', '=')) {
      t = Tok::kLte, len = 2;
    } else if (two('>', '=')) {
      t = Tok::kGte, len = 2;
    } else {
      switch (c) {
        case '(': t = Tok::kLeftParen; ++paren_depth_; break;
        case ')':
          if (paren_depth_ == 0) return Error(pos_, "unexpected right parenthesis ')'");
          t = Tok::kRightParen;
          --paren_depth_;
          break;
        case '{':
          if (brace_depth_ > 0) return Error(pos_, "unexpected left brace '{'");
          t = Tok::kLeftBrace;
          ++brace_depth_;
          break;
        case '}':
          if (brace_depth_ == 0) return Error(pos_, "unexpected right brace '}'");
          t = Tok::kRightBrace;
          --brace_depth_;
          break;
        case '[':
          if (bracket_depth_ > 0) return Error(pos_, "unexpected left bracket '['");
          t = Tok::kLeftBracket;
          ++bracket_depth_;
          break;
        case ']':
          if (bracket_depth_ == 0) return Error(pos_, "unexpected right bracket ']'");
          t = Tok::kRightBracket;
          --bracket_depth_;
          break;
        case ',': t = Tok::kComma; break;
        case ':': t = Tok::kColon; break;
        case '=': t = Tok::kAssign; break;
        case '@': t = Tok::kAt; break;
        case '+': t = Tok::kAdd; break;
        case '-': t = Tok::kSub; break;
        case '*': t = Tok::kMul; break;
        case '/': t = Tok::kDiv; break;
        case '%': t = Tok::kMod; break;
        case '^': t = Tok::kPow; break;
        case '<': t = Tok::kLss; break;
        case '>': t = Tok::kGtr; break;
        default:
          return Error(pos_, absl::StrCat("unexpected character: '", std::string(1, c), "'"));
      }
    }
    pos_ += len;
    Emit(t, start);
    return absl::OkStatus();
  }

  absl::Status LexWord() {
    size_t start = pos_;
    while (pos_ < in_.size() && (IsAlnum(in_[pos_]) || in_[pos_] == ':')) ++pos_;
    std::string word(in_.substr(start, pos_ - start));
    if (brace_depth_ > 0) {
      Emit(Tok::kIdentifier, start);
      return absl::OkStatus();
    }
    std::string lower = absl::AsciiStrToLower(word);
    if (lower == "inf" || lower == "nan") {
      Emit(Tok::kNumber, start);
      return absl::OkStatus();
    }
    auto it = Keywords().find(lower);
    if (it != Keywords().end()) {
      Emit(it->second, start);
    } else if (word.find(':') != std::string::npos) {
      Emit(Tok::kMetricIdentifier, start);
    } else {
      Emit(Tok::kIdentifier, start);
    }
    return absl::OkStatus();
  }

  // Scans a duration like 1h30m5s500ms at pos_; false (pos_ unchanged) if none.
  bool ScanDuration() {
    size_t p = pos_;
    bool any = false;
    while (p < in_.size() && IsDigit(in_[p])) {
      size_t q = p;
      while (q < in_.size() && IsDigit(in_[q])) ++q;
      if (q + 1 < in_.size() && in_[q] == 'm' && in_[q + 1] == 's') {
        q += 2;
      } else if (q < in_.size() && IsDurationUnit(in_[q])) {
        ++q;
      } else {
        break;
      }
      any = true;
      p = q;
    }
    if (!any || (p < in_.size() && IsAlnum(in_[p]))) return false;
    pos_ = p;
    return true;
  }

  absl::Status LexNumberOrDuration() {
    size_t start = pos_;
    if (ScanDuration()) {
      Emit(Tok::kDuration, start);
      return absl::OkStatus();
    }
    if (bracket_depth_ > 0) {
      size_t end = pos_;
      while (end < in_.size() && (IsAlnum(in_[end]) || in_[end] == '.')) ++end;
      bool digits_only = true;
      for (size_t i = start; i < end; ++i) digits_only &= IsDigit(in_[i]);
      if (digits_only) return Error(start, "missing unit character in duration");
      return Error(start, absl::StrCat("bad duration syntax: \"", in_.substr(start, end - start),
                                       "\""));
    }
    if (Peek() == '0' && (Peek(1) == 'x' || Peek(1) == 'X')) {
      pos_ += 2;
      while (pos_ < in_.size() && std::isxdigit(static_cast<unsigned char>(in_[pos_]))) ++pos_;
    } else {
      while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
      if (Peek() == '.') {
        ++pos_;
        while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
      }
      if (Peek() == 'e' || Peek() == 'E') {
        size_t save = pos_;
        ++pos_;
        if (Peek() == '+' || Peek() == '-') ++pos_;
        if (!IsDigit(Peek())) {
          pos_ = save;
        } else {
          while (pos_ < in_.size() && IsDigit(in_[pos_])) ++pos_;
        }
      }
    }
    if (pos_ < in_.size() && IsAlnum(in_[pos_])) {
      // Like Prometheus, show up to the first character that cannot continue it.
      size_t end = pos_;
      while (end < in_.size() && (IsDigit(in_[end]) || IsDurationUnit(in_[end]))) ++end;
      end = std::min(end + 1, in_.size());
      return Error(start, absl::StrCat("bad number or duration syntax: \"",
                                       in_.substr(start, end - start), "\""));
    }
    Emit(Tok::kNumber, start);
    return absl::OkStatus();
  }

  absl::Status LexString() {
    size_t start = pos_;
    char q = in_[pos_++];
    while (true) {
      if (pos_ >= in_.size()) {
        return Error(start, q == '`' ? "unterminated raw string" : "unterminated quoted string");
      }
      char c = in_[pos_++];
      if (c == q) break;
      if (c == '\\' && q != '`') {
        absl::Status s = CheckEscape(q);
        if (!s.ok()) return s;
      } else if (c == '\n' && q != '`') {
        return Error(start, "unterminated quoted string");
      }
    }
    Emit(Tok::kString, start);
    return absl::OkStatus();
  }

  // Validates the escape sequence after a backslash (pos_ is past the '\\').
  absl::Status CheckEscape(char quote) {
    if (pos_ >= in_.size()) return Error(pos_, "escape sequence not terminated");
    char c = in_[pos_++];
    int digits = 0, base = 16;
    switch (c) {
      case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v': case '\\':
        return absl::OkStatus();
      case 'x': digits = 2; break;
      case 'u': digits = 4; break;
      case 'U': digits = 8; break;
      default:
        if (c == quote) return absl::OkStatus();
        if (c >= '0' && c <= '7') {
          digits = 2;
          base = 8;
          break;
        }
        return Error(pos_ - 1, absl::StrFormat("unknown escape sequence U+%04X '%c'", c, c));
    }
    for (int i = 0; i < digits; ++i) {
      if (pos_ >= in_.size()) return Error(pos_, "escape sequence not terminated");
      char d = in_[pos_];
      bool ok = base == 8 ? (d >= '0' && d <= '7') : std::isxdigit(static_cast<unsigned char>(d));
      if (!ok) {
        return Error(pos_, absl::StrFormat("illegal character U+%04X '%c' in escape sequence", d, d));
      }
      ++pos_;
    }
    return absl::OkStatus();
  }

  absl::string_view in_;
  size_t pos_ = 0;
  int paren_depth_ = 0;
  int brace_depth_ = 0;
  int bracket_depth_ = 0;
  std::vector<Token> out_;
};

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t r, std::string* out) {
  if (r < 0x80) {
    out->push_back(static_cast<char>(r));
  } else if (r < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (r >> 6)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else if (r < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (r >> 12)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (r >> 18)));
    out->push_back(static_cast<char>(0x80 | ((r >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((r >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (r & 0x3F)));
  }
}

}  // namespace

std::string PositionString(absl::string_view input, int pos) {
  int line = 1, col = 1;
  for (int i = 0; i < pos && i < static_cast<int>(input.size()); ++i) {
    if (input[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return absl::StrCat(line, ":", col);
}

absl::StatusOr<std::vector<Token>> Lex(absl::string_view input) { return Lexer(input).Run(); }

absl::StatusOr<std::string> Unquote(absl::string_view s) {
  if (s.size() < 2 || s.front() != s.back()) return absl::InvalidArgumentError("invalid string");
  char q = s.front();
  s = s.substr(1, s.size() - 2);
  if (q == '`') return std::string(s);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= s.size()) return absl::InvalidArgumentError("invalid escape");
    char e = s[i];
    switch (e) {
      case 'a': out.push_back('\a'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'v': out.push_back('\v'); break;
      case '\\': out.push_back('\\'); break;
      case '\'':
      case '"':
        if (e != q) return absl::InvalidArgumentError("invalid escape");
        out.push_back(e);
        break;
      case 'x':
      case 'u':
      case 'U': {
        int n = e == 'x' ? 2 : (e == 'u' ? 4 : 8);
        uint32_t v = 0;
        for (int k = 1; k <= n; ++k) {
          if (i + k >= s.size() || HexVal(s[i + k]) < 0) {
            return absl::InvalidArgumentError("invalid escape");
          }
          v = v * 16 + HexVal(s[i + k]);
        }
        i += n;
        if (e == 'x') {
          out.push_back(static_cast<char>(v));
        } else {
          AppendUtf8(v, &out);
        }
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          if (i + 2 >= s.size()) return absl::InvalidArgumentError("invalid escape");
          int v = 0;
          for (int k = 0; k < 3; ++k) {
            char d = s[i + k];
            if (d < '0' || d > '7') return absl::InvalidArgumentError("invalid escape");
            v = v * 8 + (d - '0');
          }
          if (v > 255) return absl::InvalidArgumentError("invalid escape");
          out.push_back(static_cast<char>(v));
          i += 2;
          break;
        }
        return absl::InvalidArgumentError("invalid escape");
    }
  }
  return out;
}

std::string TokDescription(Tok t) {
  switch (t) {
    case Tok::kEOF: return "end of input";
    case Tok::kIdentifier: return "identifier";
    case Tok::kMetricIdentifier: return "metric identifier";
    case Tok::kNumber: return "number";
    case Tok::kDuration: return "duration";
    case Tok::kString: return "string";
    case Tok::kLeftParen: return "\"(\"";
    case Tok::kRightParen: return "\")\"";
    case Tok::kLeftBrace: return "\"{\"";
    case Tok::kRightBrace: return "\"}\"";
    case Tok::kLeftBracket: return "\"[\"";
    case Tok::kRightBracket: return "\"]\"";
    case Tok::kComma: return "\",\"";
    case Tok::kColon: return "\":\"";
    case Tok::kAssign: return "\"=\"";
    case Tok::kAt: return "\"@\"";
    case Tok::kAdd: return "\"+\"";
    case Tok::kSub: return "\"-\"";
    case Tok::kMul: return "\"*\"";
    case Tok::kDiv: return "\"/\"";
    case Tok::kMod: return "\"%\"";
    case Tok::kPow: return "\"^\"";
    case Tok::kEql: return "\"==\"";
    case Tok::kNeq: return "\"!=\"";
    case Tok::kLss: return "\"<\"";
    case Tok::kLte: return "\"<=\"";
    case Tok::kGtr: return "\">\"";
    case Tok::kGte: return "\">=\"";
    case Tok::kEqlRegex: return "\"=~\"";
    case Tok::kNeqRegex: return "\"!~\"";
    case Tok::kAnd: return "and";
    case Tok::kOr: return "or";
    case Tok::kUnless: return "unless";
    case Tok::kAtan2: return "atan2";
    case Tok::kSum: return "sum";
    case Tok::kAvg: return "avg";
    case Tok::kCount: return "count";
    case Tok::kMin: return "min";
    case Tok::kMax: return "max";
    case Tok::kGroup: return "group";
    case Tok::kStddev: return "stddev";
    case Tok::kStdvar: return "stdvar";
    case Tok::kTopk: return "topk";
    case Tok::kBottomk: return "bottomk";
    case Tok::kCountValues: return "count_values";
    case Tok::kQuantile: return "quantile";
    case Tok::kBy: return "by";
    case Tok::kWithout: return "without";
    case Tok::kOn: return "on";
    case Tok::kIgnoring: return "ignoring";
    case Tok::kGroupLeft: return "group_left";
    case Tok::kGroupRight: return "group_right";
    case Tok::kOffset: return "offset";
    case Tok::kBool: return "bool";
    case Tok::kStart: return "start";
    case Tok::kEnd: return "end";
  }
  return "token";
}

bool IsAggregatorTok(Tok t) { return t >= Tok::kSum && t <= Tok::kQuantile; }

bool IsKeywordLikeTok(Tok t) { return t >= Tok::kAnd && t <= Tok::kEnd; }

}  // namespace vigil::query
