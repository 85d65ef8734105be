// alerting/template.h
//
// Template: the subset of Go's text/template that Prometheus alert labels and
// annotations use, with Prometheus' template functions (template/template.go in
// Prometheus 2.42): {{ $labels.x }}, {{ $value }}, {{ .Labels.x }}, pipelines,
// if/else if/else/end, range (over maps and lists), with, variables, and the
// functions humanize*, printf, toUpper, title, match, reReplaceAll, eq/ne/lt/le/
// gt/ge, and/or/not, len, index, print, query/first/label/value, ... Unknown
// functions are rejected by Parse, as Go's parser does. Not supported: define,
// template, block (rejected at parse time).
//
// Output follows Go's fmt %v: floats as the shortest representation, with an
// exponent from 1e6 up and below 1e-4 (`{{ $value }}` of 1234567 is "1.234567e+06"),
// a missing label is "" (Prometheus runs with missingkey=zero).
//
// A parsed Template is immutable and may be executed concurrently.
#ifndef VIGIL_ALERTING_TEMPLATE_H_
#define VIGIL_ALERTING_TEMPLATE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sample.h"

namespace vigil::alerting {

// What an alert template sees (Prometheus' template.AlertTemplateData):
// .Labels, .ExternalLabels, .ExternalURL, .Value and the variables $labels,
// $externalLabels, $externalURL, $value.
struct AlertTemplateData {
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> external_labels;
  std::string external_url;
  double value = 0;
};

// Runs an instant query for the template function `query` (at the rule's
// evaluation time). The result's series carry one sample each.
using TemplateQueryFunc =
    std::function<absl::StatusOr<std::vector<Series>>(absl::string_view expr)>;

struct TemplateNode;  // Internal parse tree.

class Template {
 public:
  // Parses `text`. kInvalidArgument for syntax errors and unknown functions, worded
  // like Go: `template: NAME:LINE: function "foo" not defined`.
  static absl::StatusOr<Template> Parse(absl::string_view name, absl::string_view text);

  // Executes with `data` as dot and the alert variables bound. `query` may be empty;
  // then the `query` function fails. kInvalidArgument for execution errors
  // (`template: NAME:LINE: executing "NAME": ...`).
  absl::StatusOr<std::string> Execute(const AlertTemplateData& data,
                                      const TemplateQueryFunc& query = nullptr) const;

  const std::string& name() const { return name_; }

 private:
  Template() = default;
  std::string name_;
  std::shared_ptr<const TemplateNode> root_;
};

// Parses and executes in one step, as Prometheus' rule evaluation does per alert.
absl::StatusOr<std::string> ExpandAlertTemplate(absl::string_view name, absl::string_view text,
                                                const AlertTemplateData& data,
                                                const TemplateQueryFunc& query = nullptr);

// Prometheus' formatting functions, exposed for direct use and tests.
std::string Humanize(double v);
std::string Humanize1024(double v);
std::string HumanizeDuration(double seconds);
std::string HumanizePercentage(double v);
// kOutOfRange if v*1e9 overflows int64 nanoseconds.
absl::StatusOr<std::string> HumanizeTimestamp(double unix_seconds);
// Go's fmt %v of a float64 ("1.234567e+06", "0.5", "+Inf", "NaN").
std::string GoFloatString(double v);
// Go's fmt %.<prec>g ("%.4g" with Go's +Inf/-Inf/NaN spellings).
std::string GoFormatG(double v, int prec);
// Go's strings.Title: upper-cases the first letter of each word.
std::string GoTitle(absl::string_view s);

}  // namespace vigil::alerting

#endif  // VIGIL_ALERTING_TEMPLATE_H_
