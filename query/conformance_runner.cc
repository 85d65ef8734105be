// promql-conformance: runs Prometheus 2.42's PromQL test scripts (*.test) against
// the engine and prints passed/failed/skipped per file and in total.
//
//   promql-conformance [DIR] [--skips=FILE] [--verbose]
//
// DIR defaults to <source>/../shared/conformance/promql; FILE to
// <source>/query/conformance_skips.txt, whose lines read `file.test:LINE reason`.
// Exits non-zero if a case fails that the skip list does not name, or if a case
// the skip list names passes (so the list only holds real failures).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "query/test_script.h"

#ifndef VIGIL_SOURCE_DIR
#define VIGIL_SOURCE_DIR "."
#endif

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

// "file.test:LINE" -> reason.
std::map<std::string, std::string> ReadSkips(const std::string& path) {
  std::map<std::string, std::string> skips;
  std::string text;
  if (!ReadFile(path, &text)) return skips;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#') continue;
    size_t sp = l.find_first_of(" \t");
    std::string key(l.substr(0, sp));
    skips[key] = sp == absl::string_view::npos ? "" : std::string(absl::StripAsciiWhitespace(l.substr(sp)));
  }
  return skips;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::string(VIGIL_SOURCE_DIR) + "/../shared/conformance/promql";
  std::string skips_path = std::string(VIGIL_SOURCE_DIR) + "/query/conformance_skips.txt";
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--skips=")) {
      skips_path = std::string(a);
    } else if (a == "--verbose") {
      verbose = true;
    } else {
      dir = std::string(a);
    }
  }
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".test") files.push_back(entry.path().string());
  }
  if (ec || files.empty()) {
    std::cerr << "no *.test files in " << dir << "\n";
    return 2;
  }
  std::sort(files.begin(), files.end());
  std::map<std::string, std::string> skips = ReadSkips(skips_path);
  std::map<std::string, bool> skip_used;
  int total_pass = 0, total_fail = 0, total_skip = 0, stale_skips = 0;
  std::vector<std::string> report;
  vigil::query::EngineOptions opts;
  for (const std::string& path : files) {
    std::string name = std::filesystem::path(path).filename().string();
    std::string text;
    if (!ReadFile(path, &text)) {
      std::cerr << "cannot read " << path << "\n";
      return 2;
    }
    auto results = vigil::query::RunTestScript(text, opts);
    if (!results.ok()) {
      std::cout << name << ": script error: " << results.status() << "\n";
      ++total_fail;
      continue;
    }
    int pass = 0, fail = 0, skip = 0;
    for (const auto& r : *results) {
      std::string key = absl::StrCat(name, ":", r.line);
      auto it = skips.find(key);
      bool skipped = it != skips.end();
      if (skipped) skip_used[key] = true;
      if (r.passed && !skipped) {
        ++pass;
      } else if (r.passed) {
        ++stale_skips;
        ++pass;
        report.push_back(absl::StrCat("NOW PASSES (remove from skip list) ", key, ": ", r.expr));
      } else if (skipped) {
        ++skip;
        if (verbose) report.push_back(absl::StrCat("skipped ", key, ": ", it->second));
      } else {
        ++fail;
        report.push_back(absl::StrCat("FAIL ", key, ": ", r.expr, "\n    ", r.error));
      }
    }
    std::cout << name << ": passed " << pass << ", failed " << fail << ", skipped " << skip
              << "\n";
    total_pass += pass;
    total_fail += fail;
    total_skip += skip;
  }
  for (const auto& [key, reason] : skips) {
    if (!skip_used[key]) {
      ++stale_skips;
      report.push_back(absl::StrCat("UNKNOWN skip entry (no such case) ", key));
    }
  }
  std::cout << "TOTAL: passed " << total_pass << ", failed " << total_fail << ", skipped "
            << total_skip << "\n";
  for (const std::string& r : report) std::cout << r << "\n";
  return total_fail > 0 || stale_skips > 0 ? 1 : 0;
}
