// query/test_script.h
//
// Runs Prometheus' PromQL test scripts (promql/testdata/*.test, the language of
// Prometheus 2.42's promql/test.go): `load <step>` blocks of series with
// expanding values (`0+10x10`, `1x5`, `_`, `_x3`, `stale`), `clear`, and
// `eval[_ordered|_fail] instant at <time> <expr>` followed by the expected
// result. Each instant eval is also run as a range query around its time, and
// the middle step must give the same result, as test.go does.
#ifndef VIGIL_QUERY_TEST_SCRIPT_H_
#define VIGIL_QUERY_TEST_SCRIPT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "query/engine.h"

namespace vigil::query {

struct ScriptCaseResult {
  int line = 0;  // 1-based line of the eval command
  std::string expr;
  bool passed = false;
  std::string error;  // why it failed: got vs want, or the evaluation error
};

// Runs every command of `script`. kInvalidArgument if the script itself cannot
// be parsed (bad load line or eval syntax), naming the line.
absl::StatusOr<std::vector<ScriptCaseResult>> RunTestScript(absl::string_view script,
                                                            const EngineOptions& opts);

// Prometheus test.go's float comparison: NaN equals NaN, else a relative
// difference below 1e-6 (absolute near zero).
bool AlmostEqual(double a, double b);

}  // namespace vigil::query

#endif  // VIGIL_QUERY_TEST_SCRIPT_H_
