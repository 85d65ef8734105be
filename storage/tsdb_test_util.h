// storage/tsdb_test_util.h
//
// Helpers for the storage tests: a temporary directory removed on destruction
// and builders for Append batches.
#ifndef VIGIL_STORAGE_TSDB_TEST_UTIL_H_
#define VIGIL_STORAGE_TSDB_TEST_UTIL_H_

#include <stdlib.h>

#include <deque>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common/labels.h"
#include "common/sample.h"
#include "glog/logging.h"
#include "gtest/gtest.h"
#include "storage/tsdb.h"

namespace vigil::storage {

// A fresh directory under the test temp dir, deleted with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "/vigil_storage_XXXXXX";
    CHECK(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Builds an Append batch that owns its label strings.
class BatchBuilder {
 public:
  using LabelPairs = std::vector<std::pair<std::string, std::string>>;
  BatchBuilder& Add(LabelPairs labels, std::vector<Sample> samples) {
    const LabelPairs& owned = storage_.emplace_back(std::move(labels));
    SeriesAppend a;
    for (const auto& [n, v] : owned) a.labels.push_back(LabelRef{n, v});
    a.samples = std::move(samples);
    batch_.push_back(std::move(a));
    return *this;
  }
  const std::vector<SeriesAppend>& batch() const { return batch_; }

 private:
  std::deque<LabelPairs> storage_;  // stable addresses for the LabelRefs
  std::vector<SeriesAppend> batch_;
};

}  // namespace vigil::storage

#endif  // VIGIL_STORAGE_TSDB_TEST_UTIL_H_
