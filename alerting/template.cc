// Go text/template subset: splitting into text and actions, lexing and parsing
// actions, and executing the tree. The function table is in template_funcs.cc.
#include "alerting/template.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "alerting/template_internal.h"
#include "common/status_macros.h"

namespace vigil::alerting {

using internal::FormatValue;
using internal::Object;
using internal::StrMap;
using internal::Truth;
using internal::Value;

// ---- Parse tree ----

struct Pipeline;

struct Operand {
  enum class Kind { kDot, kField, kVariable, kFunc, kLiteral, kPipe };
  Kind kind = Kind::kDot;
  std::string name;                 // kVariable: "$x"; kFunc: function name.
  std::vector<std::string> fields;  // Field chain applied to the operand.
  Value literal;
  std::shared_ptr<Pipeline> pipe;
};

struct Command {
  std::vector<Operand> args;
};

struct Pipeline {
  std::vector<std::string> decl;  // Variables declared (:=) or assigned (=).
  bool assign = false;
  std::vector<Command> cmds;
};

struct TemplateNode {
  enum class Kind { kList, kText, kAction, kIf, kRange, kWith };
  Kind kind = Kind::kList;
  int line = 1;
  std::string text;
  Pipeline pipe;
  std::vector<TemplateNode> list;
  std::vector<TemplateNode> else_list;
};

namespace {

// ---- Splitting into text and actions ----

struct Segment {
  bool action = false;
  std::string text;  // Text, or the action's inside without delimiters and trim marks.
  int line = 1;
};

absl::StatusOr<std::vector<Segment>> Split(absl::string_view name, absl::string_view in) {
  std::vector<Segment> out;
  int line = 1;
  bool trim_next = false;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t open = in.find("{{", pos);
    std::string text(in.substr(pos, open == absl::string_view::npos ? in.size() - pos : open - pos));
    if (trim_next) text = std::string(absl::StripLeadingAsciiWhitespace(text));
    bool trim_left = open != absl::string_view::npos && in.substr(open).size() >= 4 &&
                     in[open + 2] == '-' && absl::ascii_isspace(in[open + 3]);
    if (trim_left) text = std::string(absl::StripTrailingAsciiWhitespace(text));
    line += std::count(in.begin() + pos, in.begin() + (open == absl::string_view::npos ? in.size() : open), '\n');
    if (!text.empty()) out.push_back({false, text, line});
    if (open == absl::string_view::npos) break;
    size_t i = open + (trim_left ? 3 : 2);
    int action_line = line;
    char quote = 0;
    bool in_comment = false;
    for (; i < in.size(); ++i) {
      char c = in[i];
      if (c == '\n') ++line;
      if (in_comment) {
        if (c == '*' && i + 1 < in.size() && in[i + 1] == '/') in_comment = false, ++i;
      } else if (quote != 0) {
        if (c == '\\' && quote != '`') {
          ++i;
        } else if (c == quote) {
          quote = 0;
        }
      } else if (c == '"' || c == '`' || c == '\'') {
        quote = c;
      } else if (c == '/' && i + 1 < in.size() && in[i + 1] == '*') {
        in_comment = true;
      } else if (c == '}' && i + 1 < in.size() && in[i + 1] == '}') {
        break;
      }
    }
    if (i >= in.size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("template: %s:%d: unclosed action", name, action_line));
    }
    std::string inside(in.substr(open + (trim_left ? 3 : 2), i - open - (trim_left ? 3 : 2)));
    trim_next = inside.size() >= 2 && inside.back() == '-' &&
                absl::ascii_isspace(inside[inside.size() - 2]);
    if (trim_next) inside.pop_back();
    absl::string_view body = absl::StripAsciiWhitespace(inside);
    bool comment = absl::StartsWith(body, "/*") && absl::EndsWith(body, "*/");
    if (!comment) out.push_back({true, inside, action_line});
    pos = i + 2;
  }
  return out;
}

// ---- Lexing an action ----

enum class Tok { kString, kNumber, kIdent, kField, kVar, kDot, kLParen, kRParen, kPipe, kDeclare,
                 kAssign, kComma };

struct Token {
  Tok type;
  std::string text;
  bool adjacent = false;  // No space before this token.
  Value literal;          // kString, kNumber.
};

bool IsIdentChar(char c) { return absl::ascii_isalnum(c) || c == '_'; }

absl::StatusOr<Value> ParseNumber(absl::string_view s) {
  int64_t i;
  double d;
  bool is_float = s.find_first_of(".eEpP") != absl::string_view::npos &&
                  !absl::StartsWithIgnoreCase(absl::StripPrefix(s, "-"), "0x");
  if (!is_float && absl::SimpleAtoi(s, &i)) return Value::Int(i);
  if (absl::StartsWithIgnoreCase(absl::StripPrefix(s, "-"), "0x") && absl::SimpleHexAtoi(s, &i)) {
    return Value::Int(i);
  }
  if (absl::SimpleAtod(s, &d)) return Value::Float(d);
  return absl::InvalidArgumentError(absl::StrCat("bad number syntax: \"", s, "\""));
}

absl::StatusOr<std::string> Unquote(absl::string_view s, size_t* i) {
  char q = s[(*i)++];
  std::string out;
  while (*i < s.size() && s[*i] != q) {
    char c = s[(*i)++];
    if (c == '\\' && q != '`' && *i < s.size()) {
      char e = s[(*i)++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        default: out += e;
      }
    } else {
      out += c;
    }
  }
  if (*i >= s.size()) return absl::InvalidArgumentError("unterminated quoted string");
  ++*i;
  return out;
}

absl::StatusOr<std::vector<Token>> Lex(absl::string_view s) {
  std::vector<Token> toks;
  bool space = true;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (absl::ascii_isspace(c)) {
      space = true;
      ++i;
      continue;
    }
    Token t{Tok::kIdent, "", !space, Value()};
    space = false;
    size_t start = i;
    bool signed_num = (c == '-' || c == '+') && i + 1 < s.size() &&
                      (absl::ascii_isdigit(s[i + 1]) || s[i + 1] == '.');
    if (c == '"' || c == '`') {
      t.type = Tok::kString;
      ASSIGN_OR_RETURN(std::string str, Unquote(s, &i));
      t.literal = Value::String(str);
    } else if (c == '\'') {
      ASSIGN_OR_RETURN(std::string str, Unquote(s, &i));
      if (str.size() != 1) return absl::InvalidArgumentError("malformed character constant");
      t.type = Tok::kNumber;
      t.literal = Value::Int(static_cast<unsigned char>(str[0]));
    } else if (absl::ascii_isdigit(c) || signed_num ||
               (c == '.' && i + 1 < s.size() && absl::ascii_isdigit(s[i + 1]))) {
      ++i;
      while (i < s.size() && (IsIdentChar(s[i]) || s[i] == '.' ||
                              ((s[i] == '-' || s[i] == '+') && (s[i - 1] == 'e' || s[i - 1] == 'E')))) {
        ++i;
      }
      t.type = Tok::kNumber;
      ASSIGN_OR_RETURN(t.literal, ParseNumber(s.substr(start, i - start)));
    } else if (c == '.' || c == '$') {
      ++i;
      while (i < s.size() && IsIdentChar(s[i])) ++i;
      t.type = c == '$' ? Tok::kVar : (i == start + 1 ? Tok::kDot : Tok::kField);
    } else if (absl::ascii_isalpha(c) || c == '_') {
      while (i < s.size() && IsIdentChar(s[i])) ++i;
    } else if (c == ':' && i + 1 < s.size() && s[i + 1] == '=') {
      t.type = Tok::kDeclare;
      i += 2;
    } else if (c == '=' || c == '(' || c == ')' || c == '|' || c == ',') {
      t.type = c == '=' ? Tok::kAssign
                        : c == '(' ? Tok::kLParen
                                   : c == ')' ? Tok::kRParen : c == '|' ? Tok::kPipe : Tok::kComma;
      ++i;
    } else {
      return absl::InvalidArgumentError(absl::StrFormat(
          "unrecognized character in action: U+%04X", static_cast<unsigned char>(c)));
    }
    t.text = std::string(s.substr(start, i - start));
    toks.push_back(std::move(t));
  }
  return toks;
}

// ---- Parsing ----

class Parser {
 public:
  Parser(absl::string_view name, std::vector<Segment> segs) : name_(name), segs_(std::move(segs)) {
    vars_ = {"$", "$labels", "$externalLabels", "$externalURL", "$value"};
  }

  absl::StatusOr<TemplateNode> Run() {
    TemplateNode root;
    std::string end;
    ASSIGN_OR_RETURN(root.list, ParseList(&end));
    if (!end.empty()) return Error(line_, absl::StrCat("unexpected {{", end, "}}"));
    return root;
  }

 private:
  absl::Status Error(int line, absl::string_view msg) const {
    return absl::InvalidArgumentError(absl::StrFormat("template: %s:%d: %s", name_, line, msg));
  }

  // Parses nodes until {{end}} or {{else ...}}; `end` gets "end", "else" or "" at EOF.
  // For "else", rest_ holds the tokens after the keyword.
  absl::StatusOr<std::vector<TemplateNode>> ParseList(std::string* end) {
    std::vector<TemplateNode> list;
    while (pos_ < segs_.size()) {
      const Segment& seg = segs_[pos_++];
      line_ = seg.line;
      if (!seg.action) {
        TemplateNode n;
        n.kind = TemplateNode::Kind::kText;
        n.text = seg.text;
        n.line = seg.line;
        list.push_back(std::move(n));
        continue;
      }
      auto toks = Lex(seg.text);
      if (!toks.ok()) return Error(seg.line, toks.status().message());
      if (toks->empty()) return Error(seg.line, "missing value for command");
      const Token& first = toks->front();
      std::string kw = first.type == Tok::kIdent ? first.text : "";
      if (kw == "end" || kw == "else") {
        *end = kw;
        rest_.assign(toks->begin() + 1, toks->end());
        return list;
      }
      ASSIGN_OR_RETURN(TemplateNode n, ParseAction(kw, *std::move(toks), seg.line));
      list.push_back(std::move(n));
    }
    end->clear();
    return list;
  }

  absl::StatusOr<TemplateNode> ParseAction(const std::string& kw, std::vector<Token> toks, int line) {
    if (kw == "define" || kw == "template" || kw == "block" || kw == "break" || kw == "continue") {
      return Error(line, absl::StrCat("{{", kw, "}} is not supported"));
    }
    TemplateNode n;
    n.line = line;
    if (kw == "if" || kw == "range" || kw == "with") {
      toks.erase(toks.begin());
      return ParseControl(kw, std::move(toks), line);
    }
    n.kind = TemplateNode::Kind::kAction;
    ASSIGN_OR_RETURN(n.pipe, ParsePipelineTokens(toks, line, /*allow_decl=*/true));
    return n;
  }

  absl::StatusOr<TemplateNode> ParseControl(const std::string& kw, std::vector<Token> toks,
                                            int line) {
    TemplateNode n;
    n.line = line;
    n.kind = kw == "if" ? TemplateNode::Kind::kIf
                        : kw == "range" ? TemplateNode::Kind::kRange : TemplateNode::Kind::kWith;
    size_t mark = vars_.size();
    ASSIGN_OR_RETURN(n.pipe, ParsePipelineTokens(toks, line, /*allow_decl=*/true));
    std::string end;
    ASSIGN_OR_RETURN(n.list, ParseList(&end));
    if (end == "else") {
      std::vector<Token> rest = std::move(rest_);
      if (!rest.empty() && rest[0].type == Tok::kIdent && (rest[0].text == "if" || rest[0].text == "with")) {
        // {{else if ...}}: a nested control that consumes the shared {{end}}.
        std::string nested_kw = rest[0].text;
        rest.erase(rest.begin());
        ASSIGN_OR_RETURN(TemplateNode nested, ParseControl(nested_kw, std::move(rest), line_));
        n.else_list.push_back(std::move(nested));
        vars_.resize(mark);
        return n;
      }
      if (!rest.empty()) return Error(line_, "unexpected tokens after else");
      ASSIGN_OR_RETURN(n.else_list, ParseList(&end));
    }
    if (end != "end") return Error(line, absl::StrCat("unexpected EOF in ", kw));
    vars_.resize(mark);
    return n;
  }

  absl::StatusOr<Pipeline> ParsePipelineTokens(const std::vector<Token>& toks, int line,
                                               bool allow_decl) {
    size_t i = 0;
    auto p = ParsePipeline(toks, &i, allow_decl);
    if (!p.ok()) return Error(line, p.status().message());
    if (i != toks.size()) return Error(line, absl::StrCat("unexpected \"", toks[i].text, "\""));
    return p;
  }

  absl::StatusOr<Pipeline> ParsePipeline(const std::vector<Token>& t, size_t* i, bool allow_decl) {
    Pipeline p;
    // Declarations: $x := / $x = / $k, $v :=
    if (allow_decl && *i < t.size() && t[*i].type == Tok::kVar) {
      size_t j = *i;
      std::vector<std::string> names = {t[j].text};
      if (j + 2 < t.size() && t[j + 1].type == Tok::kComma && t[j + 2].type == Tok::kVar) {
        names.push_back(t[j + 2].text);
        j += 2;
      }
      if (j + 1 < t.size() && (t[j + 1].type == Tok::kDeclare || t[j + 1].type == Tok::kAssign)) {
        p.assign = t[j + 1].type == Tok::kAssign;
        for (const std::string& v : names) {
          if (p.assign && !Declared(v)) return absl::InvalidArgumentError(absl::StrCat("undefined variable \"", v, "\""));
          if (!p.assign) vars_.push_back(v);
        }
        p.decl = std::move(names);
        *i = j + 2;
      }
    }
    while (true) {
      Command cmd;
      while (*i < t.size() && t[*i].type != Tok::kPipe && t[*i].type != Tok::kRParen) {
        ASSIGN_OR_RETURN(Operand o, ParseOperand(t, i));
        cmd.args.push_back(std::move(o));
      }
      if (cmd.args.empty()) return absl::InvalidArgumentError("missing value for command");
      p.cmds.push_back(std::move(cmd));
      if (*i < t.size() && t[*i].type == Tok::kPipe) {
        ++*i;
        continue;
      }
      return p;
    }
  }

  bool Declared(const std::string& v) const {
    return std::find(vars_.begin(), vars_.end(), v) != vars_.end();
  }

  absl::StatusOr<Operand> ParseOperand(const std::vector<Token>& t, size_t* i) {
    const Token& tok = t[(*i)++];
    Operand o;
    switch (tok.type) {
      case Tok::kString:
      case Tok::kNumber:
        o.kind = Operand::Kind::kLiteral;
        o.literal = tok.literal;
        break;
      case Tok::kDot:
        o.kind = Operand::Kind::kDot;
        break;
      case Tok::kField:
        o.kind = Operand::Kind::kField;
        o.fields.push_back(tok.text.substr(1));
        break;
      case Tok::kVar:
        if (!Declared(tok.text)) {
          return absl::InvalidArgumentError(absl::StrCat("undefined variable \"", tok.text, "\""));
        }
        o.kind = Operand::Kind::kVariable;
        o.name = tok.text;
        break;
      case Tok::kLParen: {
        o.kind = Operand::Kind::kPipe;
        ASSIGN_OR_RETURN(Pipeline inner, ParsePipeline(t, i, /*allow_decl=*/false));
        if (*i >= t.size() || t[*i].type != Tok::kRParen) {
          return absl::InvalidArgumentError("unclosed left paren");
        }
        ++*i;
        o.pipe = std::make_shared<Pipeline>(std::move(inner));
        break;
      }
      case Tok::kIdent:
        if (tok.text == "true" || tok.text == "false") {
          o.kind = Operand::Kind::kLiteral;
          o.literal = Value::Bool(tok.text == "true");
        } else if (tok.text == "nil") {
          o.kind = Operand::Kind::kLiteral;
        } else if (internal::LookupFunc(tok.text) != nullptr) {
          o.kind = Operand::Kind::kFunc;
          o.name = tok.text;
        } else {
          return absl::InvalidArgumentError(absl::StrCat("function \"", tok.text, "\" not defined"));
        }
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("unexpected \"", tok.text, "\" in operand"));
    }
    while (*i < t.size() && t[*i].type == Tok::kField && t[*i].adjacent) {
      o.fields.push_back(t[(*i)++].text.substr(1));
    }
    return o;
  }

  std::string name_;
  std::vector<Segment> segs_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> rest_;
  std::vector<std::string> vars_;  // Variables in scope, innermost last.
};

// ---- Execution ----

class Executor {
 public:
  Executor(const std::string& name, internal::FuncContext ctx) : name_(name), ctx_(std::move(ctx)) {}

  void Bind(std::string var, Value v) { vars_.emplace_back(std::move(var), std::move(v)); }

  absl::Status Walk(const Value& dot, const std::vector<TemplateNode>& list) {
    for (const TemplateNode& n : list) RETURN_IF_ERROR(WalkNode(dot, n));
    return absl::OkStatus();
  }

  std::string& out() { return out_; }

 private:
  absl::Status Error(int line, absl::string_view msg) const {
    return absl::InvalidArgumentError(
        absl::StrFormat("template: %s:%d: executing \"%s\": %s", name_, line, name_, msg));
  }

  absl::Status WalkNode(const Value& dot, const TemplateNode& n) {
    switch (n.kind) {
      case TemplateNode::Kind::kText:
        out_ += n.text;
        return absl::OkStatus();
      case TemplateNode::Kind::kAction: {
        auto v = EvalPipeline(dot, n.pipe);
        if (!v.ok()) return Error(n.line, v.status().message());
        if (n.pipe.decl.empty()) out_ += v->kind == Value::Kind::kNil ? "<no value>" : FormatValue(*v);
        return absl::OkStatus();
      }
      case TemplateNode::Kind::kList:
        return Walk(dot, n.list);
      default:
        return WalkControl(dot, n);
    }
  }

  absl::Status WalkControl(const Value& dot, const TemplateNode& n) {
    size_t mark = vars_.size();
    Pipeline head = n.pipe;
    std::vector<std::string> decl;  // range's loop variables, bound per element.
    if (n.kind == TemplateNode::Kind::kRange) decl = std::exchange(head.decl, {});
    auto v = EvalPipeline(dot, head);
    if (!v.ok()) return Error(n.line, v.status().message());
    absl::Status s;
    if (n.kind == TemplateNode::Kind::kIf) {
      s = Walk(dot, Truth(*v) ? n.list : n.else_list);
    } else if (n.kind == TemplateNode::Kind::kWith) {
      s = Truth(*v) ? Walk(*v, n.list) : Walk(dot, n.else_list);
    } else {
      s = WalkRange(*v, decl, n);
    }
    vars_.resize(mark);
    return s;
  }

  absl::Status WalkRange(const Value& v, const std::vector<std::string>& decl, const TemplateNode& n) {
    std::vector<std::pair<Value, Value>> items;
    if (v.kind == Value::Kind::kStrMap) {
      for (const auto& [k, e] : *v.smap) items.emplace_back(Value::String(k), Value::String(e));
    } else if (v.kind == Value::Kind::kList) {
      for (size_t i = 0; i < v.list->size(); ++i) items.emplace_back(Value::Int(i), (*v.list)[i]);
    } else if (v.kind != Value::Kind::kNil) {
      return Error(n.line, absl::StrCat("range can't iterate over ", FormatValue(v)));
    }
    if (items.empty()) return Walk(v, n.else_list);
    size_t mark = vars_.size();
    for (const auto& [key, elem] : items) {
      vars_.resize(mark);
      if (decl.size() == 1) Bind(decl[0], elem);
      if (decl.size() == 2) {
        Bind(decl[0], key);
        Bind(decl[1], elem);
      }
      RETURN_IF_ERROR(Walk(elem, n.list));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Value> EvalPipeline(const Value& dot, const Pipeline& p) {
    Value v;
    bool have = false;
    for (const Command& c : p.cmds) {
      ASSIGN_OR_RETURN(v, EvalCommand(dot, c, have ? &v : nullptr));
      have = true;
    }
    for (const std::string& name : p.decl) {
      if (p.assign) {
        for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
          if (it->first == name) {
            it->second = v;
            break;
          }
        }
      } else {
        Bind(name, v);
      }
    }
    return v;
  }

  absl::StatusOr<Value> EvalCommand(const Value& dot, const Command& c, const Value* piped) {
    const Operand& head = c.args[0];
    if (head.kind == Operand::Kind::kFunc) {
      std::vector<Value> args;
      for (size_t i = 1; i < c.args.size(); ++i) {
        ASSIGN_OR_RETURN(Value a, EvalOperand(dot, c.args[i]));
        args.push_back(std::move(a));
      }
      if (piped != nullptr) args.push_back(*piped);
      auto r = (*internal::LookupFunc(head.name))(ctx_, args);
      if (!r.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("error calling ", head.name, ": ", r.status().message()));
      }
      return ApplyFields(*r, head.fields);
    }
    if (c.args.size() > 1 || piped != nullptr) {
      return absl::InvalidArgumentError("can't give argument to non-function");
    }
    return EvalOperand(dot, head);
  }

  absl::StatusOr<Value> EvalOperand(const Value& dot, const Operand& o) {
    Value base;
    switch (o.kind) {
      case Operand::Kind::kDot:
      case Operand::Kind::kField:
        base = dot;
        break;
      case Operand::Kind::kLiteral:
        base = o.literal;
        break;
      case Operand::Kind::kVariable:
        for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
          if (it->first == o.name) {
            base = it->second;
            break;
          }
        }
        break;
      case Operand::Kind::kPipe: {
        ASSIGN_OR_RETURN(base, EvalPipeline(dot, *o.pipe));
        break;
      }
      case Operand::Kind::kFunc: {
        Command c;
        c.args.push_back(o);
        return EvalCommand(dot, c, nullptr);
      }
    }
    return ApplyFields(base, o.fields);
  }

  static absl::StatusOr<Value> ApplyFields(Value v, const std::vector<std::string>& fields) {
    for (const std::string& f : fields) {
      if (v.kind == Value::Kind::kStrMap) {
        auto it = v.smap->find(f);
        v = Value::String(it == v.smap->end() ? "" : it->second);  // missingkey=zero
      } else if (v.kind == Value::Kind::kObject && v.obj->count(f)) {
        v = v.obj->at(f);
      } else if (v.kind == Value::Kind::kNil) {
        return absl::InvalidArgumentError(absl::StrCat("nil pointer evaluating .", f));
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("can't evaluate field ", f, " in type ", internal::TypeName(v)));
      }
    }
    return v;
  }

  const std::string& name_;
  internal::FuncContext ctx_;
  std::vector<std::pair<std::string, Value>> vars_;
  std::string out_;
};

Value AlertData(const AlertTemplateData& d) {
  return Value::Struct({{"Labels", Value::Map(StrMap(d.labels.begin(), d.labels.end()))},
                        {"ExternalLabels",
                         Value::Map(StrMap(d.external_labels.begin(), d.external_labels.end()))},
                        {"ExternalURL", Value::String(d.external_url)},
                        {"Value", Value::Float(d.value)}});
}

}  // namespace

absl::StatusOr<Template> Template::Parse(absl::string_view name, absl::string_view text) {
  ASSIGN_OR_RETURN(std::vector<Segment> segs, Split(name, text));
  Parser parser(name, std::move(segs));
  ASSIGN_OR_RETURN(TemplateNode root, parser.Run());
  Template t;
  t.name_ = std::string(name);
  t.root_ = std::make_shared<const TemplateNode>(std::move(root));
  return t;
}

absl::StatusOr<std::string> Template::Execute(const AlertTemplateData& data,
                                              const TemplateQueryFunc& query) const {
  Executor exec(name_, internal::FuncContext{&query, data.external_url});
  Value dot = AlertData(data);
  const Object& fields = *dot.obj;
  exec.Bind("$", dot);
  exec.Bind("$labels", fields.at("Labels"));
  exec.Bind("$externalLabels", fields.at("ExternalLabels"));
  exec.Bind("$externalURL", fields.at("ExternalURL"));
  exec.Bind("$value", fields.at("Value"));
  RETURN_IF_ERROR(exec.Walk(dot, root_->list));
  return std::move(exec.out());
}

absl::StatusOr<std::string> ExpandAlertTemplate(absl::string_view name, absl::string_view text,
                                                const AlertTemplateData& data,
                                                const TemplateQueryFunc& query) {
  if (text.find("{{") == absl::string_view::npos) return std::string(text);
  ASSIGN_OR_RETURN(Template t, Template::Parse(name, text));
  return t.Execute(data, query);
}

}  // namespace vigil::alerting
