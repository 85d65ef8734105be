#include "alerting/template.h"

#include <cmath>
#include <limits>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vigil::alerting {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::StatusIs;

struct FormatCase {
  double in;
  std::string want;
};

// Expected outputs from Prometheus' template/template_test.go.
TEST(TemplateFormatTest, HumanizeMatchesPrometheus) {
  const FormatCase cases[] = {
      {0, "0"},        {1, "1"},         {1234567, "1.235M"}, {0.12, "120m"},
      {-1, "-1"},      {0.12345, "123.5m"},
      {9223372036854775807.0, "9.223E"},
      {std::numeric_limits<double>::infinity(), "+Inf"},
      {-std::numeric_limits<double>::infinity(), "-Inf"},
      {std::nan(""), "NaN"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(Humanize(c.in), c.want);
  }
}

TEST(TemplateFormatTest, Humanize1024MatchesPrometheus) {
  const FormatCase cases[] = {{0, "0"},         {1, "1"},     {1048576, "1Mi"},
                              {0.12, "0.12"},   {-1, "-1"},   {1234567, "1.177Mi"},
                              {9223372036854775807.0, "8Ei"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(Humanize1024(c.in), c.want);
  }
}

TEST(TemplateFormatTest, HumanizeDurationMatchesPrometheus) {
  const FormatCase cases[] = {
      {0, "0s"},
      {1, "1s"},
      {60, "1m 0s"},
      {90, "1m 30s"},
      {3600, "1h 0m 0s"},
      {86400, "1d 0h 0m 0s"},
      {86400 + 3600, "1d 1h 0m 0s"},
      {-(86400 * 2 + 3600 * 3 + 60 * 4 + 5), "-2d 3h 4m 5s"},
      {899.99, "14m 59s"},
      {.1, "100ms"},
      {.0001, "100us"},
      {.12345, "123.5ms"},
      {60.1, "1m 0s"},
      {60.5, "1m 0s"},
      {1.2345, "1.234s"},
      {12.345, "12.35s"},
      {-1, "-1s"},
      {1234567, "14d 6h 56m 7s"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(HumanizeDuration(c.in), c.want);
  }
}

TEST(TemplateFormatTest, HumanizePercentageMatchesPrometheus) {
  const FormatCase cases[] = {{-0.22222, "-22.22%"}, {0, "0%"},        {0.1234567, "12.35%"},
                              {1.23456, "123.5%"},   {1234567, "1.235e+08%"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(HumanizePercentage(c.in), c.want);
  }
}

TEST(TemplateFormatTest, HumanizeTimestampMatchesPrometheus) {
  const FormatCase cases[] = {
      {0, "1970-01-01 00:00:00 +0000 UTC"},
      {-1, "1969-12-31 23:59:59 +0000 UTC"},
      {1234567, "1970-01-15 06:56:07 +0000 UTC"},
      {9223372036, "2262-04-11 23:47:16 +0000 UTC"},
      {1435065584.128, "2015-06-23 13:19:44.128 +0000 UTC"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    ASSERT_OK_AND_ASSIGN(std::string got, HumanizeTimestamp(c.in));
    EXPECT_EQ(got, c.want);
  }
  EXPECT_THAT(HumanizeTimestamp(-9.223372036854776e18),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("-9.223372036854776e+18 cannot be represented as a nanoseconds "
                                 "timestamp since it overflows int64")));
}

TEST(TemplateFormatTest, GoFloatStringIsShortestWithGoExponentRule) {
  const FormatCase cases[] = {{1, "1"},
                              {0.5, "0.5"},
                              {1.5, "1.5"},
                              {123456, "123456"},
                              {1234567, "1.234567e+06"},
                              {1e6, "1e+06"},
                              {0.0001, "0.0001"},
                              {0.00001, "1e-05"},
                              {-42.25, "-42.25"},
                              {100, "100"},
                              {0.1 + 0.2, "0.30000000000000004"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(GoFloatString(c.in), c.want);
  }
}

TEST(TemplateFormatTest, GoTitle) {
  EXPECT_EQ(GoTitle("aa bb CC"), "Aa Bb CC");
  EXPECT_EQ(GoTitle("disk_full-now"), "Disk_full-Now");
}

struct ExpandCase {
  std::string text;
  std::string want;
};

AlertTemplateData SampleData() {
  AlertTemplateData d;
  d.labels = {{"instance", "host1:9100"}, {"job", "node"}, {"severity", "page"}};
  d.external_labels = {{"cluster", "eu1"}};
  d.external_url = "http://vigil.example:9090/prefix";
  d.value = 0.91234;
  return d;
}

TEST(TemplateExpandTest, Table) {
  const ExpandCase cases[] = {
      {"plain text", "plain text"},
      {"{{ 1 }}", "1"},
      {"{{ $labels.instance }}", "host1:9100"},
      {"{{ .Labels.job }}", "node"},
      {"{{ $labels.missing }}", ""},
      {"{{ $value }}", "0.91234"},
      {"{{ .Value }}", "0.91234"},
      {"{{ $externalLabels.cluster }}", "eu1"},
      {"{{ .ExternalLabels.cluster }}", "eu1"},
      {"{{ $externalURL }}", "http://vigil.example:9090/prefix"},
      {"{{ $value | humanizePercentage }}", "91.23%"},
      {"{{ humanize $value }}", "912.3m"},
      {"{{ printf \"%.2f\" $value }}", "0.91"},
      {"{{ printf \"%s is %.1f%%\" $labels.instance 12.34 }}", "host1:9100 is 12.3%"},
      {"{{ printf \"%d\" 5 }}", "5"},
      {"{{ printf \"%v\" $value }}", "0.91234"},
      {"{{ printf \"%q\" \"a\" }}", "\"a\""},
      {"{{ printf \"%d\" 1.5 }}", "%!d(float64=1.5)"},
      {"{{ $labels.job | toUpper }}", "NODE"},
      {"{{ \"aA bB CC\" | toLower }}", "aa bb cc"},
      {"{{ \"aa bb CC\" | title }}", "Aa Bb CC"},
      {"{{ if gt $value 0.9 }}high{{ else }}low{{ end }}", "high"},
      {"{{ if lt $value 0.5 }}low{{ else if lt $value 0.95 }}mid{{ else }}high{{ end }}", "mid"},
      {"{{ if eq $labels.severity \"page\" }}P{{ end }}", "P"},
      {"{{ if ne $labels.severity \"page\" }}P{{ else }}N{{ end }}", "N"},
      {"{{ if eq $labels.job \"a\" \"node\" }}any{{ end }}", "any"},
      {"{{ if and (gt $value 0.5) (eq $labels.job \"node\") }}both{{ end }}", "both"},
      {"{{ if not (eq $labels.job \"x\") }}not{{ end }}", "not"},
      {"{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
       "instance=host1:9100;job=node;severity=page;"},
      {"{{ range $labels }}{{ . }},{{ end }}", "host1:9100,node,page,"},
      {"{{ with $labels.job }}job {{ . }}{{ end }}", "job node"},
      {"{{ with $labels.none }}x{{ else }}none{{ end }}", "none"},
      {"{{ $x := 5 }}{{ $x }}", "5"},
      {"{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2"},
      {"a  {{- \" b \" -}}  c", "a b c"},
      {"{{/* a comment */}}x", "x"},
      {"{{ \"foo.example.com:12345\" | stripPort }}", "foo.example.com"},
      {"{{ \"[2001:0DB8::1]:12345\" | stripPort }}", "2001:0DB8::1"},
      {"{{ \"[2001:0DB8::1]::12345\" | stripPort }}", "[2001:0DB8::1]::12345"},
      {"{{ \"foo.example.com:12345\" | stripDomain }}", "foo:12345"},
      {"{{ \"192.0.2.1:12345\" | stripDomain }}", "192.0.2.1:12345"},
      {"{{ reReplaceAll \"(a)b\" \"x$1\" \"ab\" }}", "xa"},
      {"{{ reReplaceAll \":[0-9]+\" \"\" $labels.instance }}", "host1"},
      {"{{ match \"a+\" \"aa\" }} {{ match \"a+\" \"b\" }}", "true false"},
      {"{{ graphLink \"up\" }}", "/graph?g0.expr=up&g0.tab=0"},
      {"{{ tableLink \"up\" }}", "/graph?g0.expr=up&g0.tab=1"},
      {"{{ pathPrefix }}", "/prefix"},
      {"{{ externalURL }}", "http://vigil.example:9090/prefix"},
      {"{{ printf \"%0.2f\" (parseDuration \"1h2m10ms\") }}", "3720.01"},
      {"{{ len $labels }}", "3"},
      {"{{ index $labels \"job\" }}", "node"},
      {"{{ print 1 2 \"x\" 3 }}", "1 2x3"},
      {"{{ \"1234567\" | humanize }}", "1.235M"},
      {"{{ 1435065584.128 | humanizeTimestamp }}", "2015-06-23 13:19:44.128 +0000 UTC"},
      {"{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}", "-22.22%:0%"},
      {"{{ $labels }}", "map[instance:host1:9100 job:node severity:page]"},
      {"{{ nil }}", "<no value>"},
      {"line1\n{{ $labels.job }}\nline3", "line1\nnode\nline3"},
  };
  AlertTemplateData data = SampleData();
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    ASSERT_OK_AND_ASSIGN(std::string got, ExpandAlertTemplate("test", c.text, data));
    EXPECT_EQ(got, c.want);
  }
}

TEST(TemplateExpandTest, QueryFunctions) {
  TemplateQueryFunc query = [](absl::string_view expr) -> absl::StatusOr<std::vector<Series>> {
    EXPECT_EQ(expr, "metric");
    return std::vector<Series>{{Labels{{"__name__", "metric"}, {"instance", "b"}}, {{0, 21}}},
                               {Labels{{"__name__", "metric"}, {"instance", "a"}}, {{0, 11}}}};
  };
  const ExpandCase cases[] = {
      {"{{ query \"metric\" | first | value }}", "21"},
      {"{{ query \"metric\" | first | label \"instance\" }}", "b"},
      {"{{ range query \"metric\" | sortByLabel \"instance\" }}{{.Labels.instance}}:{{.Value}}: {{end}}",
       "a:11: b:21: "},
      {"{{ $x := query \"metric\" | first }}{{ $x.Labels.foo }}", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    ASSERT_OK_AND_ASSIGN(std::string got, ExpandAlertTemplate("test", c.text, SampleData(), query));
    EXPECT_EQ(got, c.want);
  }
  EXPECT_THAT(ExpandAlertTemplate("test", "{{ query \"metric\" }}", SampleData()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("query is not available")));
}

TEST(TemplateParseTest, RejectsBadTemplatesAtParseTime) {
  const std::pair<std::string, std::string> cases[] = {
      {"{{ humanise $value }}", "template: t:1: function \"humanise\" not defined"},
      {"{{", "unclosed action"},
      {"{{ if true }}x", "unexpected EOF"},
      {"x{{ end }}", "unexpected {{end}}"},
      {"{{ $nope }}", "undefined variable \"$nope\""},
      {"a\nb\n{{ foo }}", "template: t:3: function \"foo\" not defined"},
      {"{{ define \"x\" }}{{ end }}", "not supported"},
      {"{{ (1 }}", "unclosed left paren"},
      {"{{ \xc2\xa0 }}", "unrecognized character in action"},
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    EXPECT_THAT(Template::Parse("t", text),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(want)));
  }
}

TEST(TemplateExecuteTest, ExecutionErrorsAreReported) {
  const std::pair<std::string, std::string> cases[] = {
      {"{{ humanize \"one\" }}",
       "error calling humanize: strconv.ParseFloat: parsing \"one\": invalid syntax"},
      {"{{ .Foo }}", "can't evaluate field Foo"},
      {"{{ gt $value 1 }}", "incompatible types for comparison"},
      {"{{ $value.x }}", "can't evaluate field x in type float64"},
      {"{{ toUpper $value }}", "expected string; got float64"},
      {"{{ 1 2 }}", "can't give argument to non-function"},
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    ASSERT_OK_AND_ASSIGN(Template t, Template::Parse("t", text));
    EXPECT_THAT(t.Execute(SampleData()),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(want)));
  }
}

}  // namespace
}  // namespace vigil::alerting
