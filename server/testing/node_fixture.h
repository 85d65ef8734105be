// server/testing/node_fixture.h
//
// NodeFixture: a real vigild Node (TSDB in a fresh temp dir, HTTP and gRPC on
// free loopback ports, a FakeClock) for in-process API tests, plus helpers to
// send remote-write requests.
#ifndef VIGIL_SERVER_TESTING_NODE_FIXTURE_H_
#define VIGIL_SERVER_TESTING_NODE_FIXTURE_H_

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "proto/prometheus/remote.pb.h"
#include "server/node.h"
#include "snappy.h"

namespace vigil::server::testing {

// 2023-11-14T22:13:20Z: the fake "now" of every fixture.
inline constexpr int64_t kNowMs = 1'700'000'000'000;

struct RemoteSeries {
  std::vector<std::pair<std::string, std::string>> labels;  // sent in this order
  std::vector<std::pair<int64_t, double>> samples;
};

inline std::string SerializeWrite(const std::vector<RemoteSeries>& series) {
  prometheus::WriteRequest req;
  for (const RemoteSeries& s : series) {
    prometheus::TimeSeries* ts = req.add_timeseries();
    for (const auto& [n, v] : s.labels) {
      prometheus::Label* l = ts->add_labels();
      l->set_name(n);
      l->set_value(v);
    }
    for (const auto& [t, v] : s.samples) {
      prometheus::Sample* p = ts->add_samples();
      p->set_timestamp(t);
      p->set_value(v);
    }
  }
  return req.SerializeAsString();
}

inline std::string Snappy(const std::string& raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

class NodeFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vigil-node-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    clock_.Set(absl::FromUnixMillis(kNowMs));
    StartNode();
  }

  void TearDown() override {
    if (node_ != nullptr) EXPECT_OK(node_->Stop());
    node_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Options for the node; tests may change them before RestartNode().
  NodeOptions& options() { return opts_; }

  void StartNode() {
    opts_.http_addr = "127.0.0.1:0";
    opts_.grpc_addr = "127.0.0.1:0";
    opts_.storage.dir = dir_;
    opts_.storage.clock = &clock_;
    opts_.http_threads = 4;
    opts_.retention_interval = absl::Hours(1);
    ASSERT_OK_AND_ASSIGN(node_, Node::Start(opts_));
    client_ = std::make_unique<httplib::Client>("127.0.0.1", node_->http_port());
    client_->set_read_timeout(60, 0);
  }

  void RestartNode() {
    ASSERT_OK(node_->Stop());
    node_.reset();
    StartNode();
  }

  // POSTs `body` to /api/v1/write with remote-write headers.
  httplib::Result PostWrite(const std::string& body, const char* encoding = "snappy") {
    httplib::Headers h = {{"X-Prometheus-Remote-Write-Version", "0.1.0"}};
    if (encoding != nullptr) h.emplace("Content-Encoding", encoding);
    return client_->Post("/api/v1/write", h, body, "application/x-protobuf");
  }
  httplib::Result Write(const std::vector<RemoteSeries>& series) {
    return PostWrite(Snappy(SerializeWrite(series)));
  }

  // GETs `path` and parses the JSON body; fails the test if it is not JSON.
  nlohmann::json GetJson(const std::string& path, int want_status = 200) {
    httplib::Result r = client_->Get(path);
    EXPECT_TRUE(r) << path;
    if (!r) return {};
    EXPECT_EQ(r->status, want_status) << path << ": " << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << path;
    return nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  }

  FakeClock clock_;
  std::string dir_;
  NodeOptions opts_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace vigil::server::testing

#endif  // VIGIL_SERVER_TESTING_NODE_FIXTURE_H_
