#include "common/labels.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "xxhash.h"

namespace vigil {

Labels::Labels(std::vector<Label> labels) : labels_(std::move(labels)) {
  labels_.erase(std::remove_if(labels_.begin(), labels_.end(),
                               [](const Label& l) { return l.value.empty(); }),
                labels_.end());
  std::sort(labels_.begin(), labels_.end());
}

Labels::Labels(std::initializer_list<std::pair<absl::string_view, absl::string_view>> l) {
  labels_.reserve(l.size());
  for (const auto& [n, v] : l) {
    if (!v.empty()) labels_.push_back(Label{std::string(n), std::string(v)});
  }
  std::sort(labels_.begin(), labels_.end());
}

absl::string_view Labels::Get(absl::string_view name) const {
  auto it = std::lower_bound(labels_.begin(), labels_.end(), name,
                             [](const Label& l, absl::string_view n) { return l.name < n; });
  if (it != labels_.end() && it->name == name) return it->value;
  return "";
}

bool Labels::Has(absl::string_view name) const { return !Get(name).empty(); }

void Labels::Set(absl::string_view name, absl::string_view value) {
  auto it = std::lower_bound(labels_.begin(), labels_.end(), name,
                             [](const Label& l, absl::string_view n) { return l.name < n; });
  if (it != labels_.end() && it->name == name) {
    if (value.empty()) {
      labels_.erase(it);
    } else {
      it->value = std::string(value);
    }
    return;
  }
  if (value.empty()) return;
  labels_.insert(it, Label{std::string(name), std::string(value)});
}

void Labels::Remove(absl::string_view name) { Set(name, ""); }

namespace {

// Go's strconv.Quote for the characters label values realistically hold.
void AppendQuoted(std::string* out, absl::string_view s) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\t': out->append("\\t"); break;
      case '\r': out->append("\\r"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(out, "\\x%02x", c);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

}  // namespace

std::string Labels::ToString() const {
  std::string out;
  absl::string_view name = MetricName();
  out.append(name.data(), name.size());
  out.push_back('{');
  bool first = true;
  for (const Label& l : labels_) {
    if (l.name == kMetricNameLabel) continue;
    if (!first) out.append(", ");
    first = false;
    out.append(l.name);
    out.push_back('=');
    AppendQuoted(&out, l.value);
  }
  out.push_back('}');
  return out;
}

std::string Labels::Canonical() const {
  std::string out;
  for (const Label& l : labels_) {
    absl::StrAppend(&out, l.name, "\xff", l.value, "\xff");
  }
  return out;
}

uint64_t Labels::Hash() const {
  std::string c = Canonical();
  return XXH64(c.data(), c.size(), 0);
}

namespace {

bool IsNameStart(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}
bool IsNameChar(char c, bool allow_colon) {
  return IsNameStart(c, allow_colon) || (c >= '0' && c <= '9');
}
bool IsValidName(absl::string_view s, bool allow_colon) {
  if (s.empty() || !IsNameStart(s[0], allow_colon)) return false;
  for (char c : s.substr(1)) {
    if (!IsNameChar(c, allow_colon)) return false;
  }
  return true;
}

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len;
    uint32_t cp;
    if (c < 0x80) { i++; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (int k = 1; k < len; k++) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

bool IsValidMetricName(absl::string_view name) { return IsValidName(name, true); }
bool IsValidLabelName(absl::string_view name) { return IsValidName(name, false); }

absl::Status ValidateLabels(const std::vector<Label>& labels, const LabelLimits& limits,
                            bool require_sorted) {
  if (labels.size() > limits.max_labels_per_series) {
    return absl::InvalidArgumentError(absl::StrCat("series has ", labels.size(),
                                                   " labels, more than the limit of ",
                                                   limits.max_labels_per_series));
  }
  bool has_name = false;
  for (size_t i = 0; i < labels.size(); i++) {
    const Label& l = labels[i];
    if (i > 0) {
      if (labels[i - 1].name == l.name) {
        return absl::InvalidArgumentError(absl::StrCat("duplicate label name \"", l.name, "\""));
      }
      if (require_sorted && labels[i - 1].name > l.name) {
        return absl::InvalidArgumentError(absl::StrCat("labels are not sorted: \"",
                                                       labels[i - 1].name, "\" before \"",
                                                       l.name, "\""));
      }
    }
    if (l.name.size() > limits.max_label_name_length) {
      return absl::InvalidArgumentError(absl::StrCat(
          "label name longer than ", limits.max_label_name_length, " bytes: \"",
          absl::string_view(l.name).substr(0, 64), "...\""));
    }
    if (l.value.size() > limits.max_label_value_length) {
      return absl::InvalidArgumentError(absl::StrCat("value of label \"", l.name,
                                                     "\" longer than ",
                                                     limits.max_label_value_length, " bytes"));
    }
    if (l.name == kMetricNameLabel) {
      if (!IsValidMetricName(l.value)) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid metric name \"", l.value, "\""));
      }
      has_name = true;
      continue;
    }
    if (!IsValidLabelName(l.name)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid label name \"", l.name, "\""));
    }
    if (!IsValidUtf8(l.value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("value of label \"", l.name, "\" is not valid UTF-8"));
    }
  }
  if (!has_name) return absl::InvalidArgumentError("series has no metric name (__name__)");
  if (!require_sorted) {
    // Unsorted input: check names are unique after sorting.
    std::vector<absl::string_view> names;
    for (const Label& l : labels) names.push_back(l.name);
    std::sort(names.begin(), names.end());
    for (size_t i = 1; i < names.size(); i++) {
      if (names[i] == names[i - 1]) {
        return absl::InvalidArgumentError(absl::StrCat("duplicate label name \"", names[i], "\""));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace vigil
