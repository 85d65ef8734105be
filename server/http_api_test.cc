// In-process tests of the HTTP API against a real Node: TSDB in a temp dir,
// HTTP on a free port.
#include "server/http_api.h"

#include <atomic>
#include <regex>
#include <thread>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "query/memory_source.h"
#include "server/testing/node_fixture.h"

namespace vigil::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vigil::server::testing::kNowMs;
using ::vigil::server::testing::NodeFixture;
using ::vigil::server::testing::RemoteSeries;
using ::vigil::server::testing::SerializeWrite;
using ::vigil::server::testing::Snappy;
using json = nlohmann::json;

const std::string kNowSec = absl::StrCat(kNowMs / 1000);

RemoteSeries Up(const std::string& instance, double v, int64_t t = kNowMs - 10'000) {
  return RemoteSeries{{{"__name__", "up"}, {"instance", instance}, {"job", "node"}}, {{t, v}}};
}

class HttpApiTest : public NodeFixture {
 protected:
  // Writes two `up` series that every bad-input test checks survive.
  void WriteBaseline() {
    httplib::Result r = Write({Up("a:9100", 1), Up("b:9100", 0)});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 204) << r->body;
  }
  // The number of `up` series an instant query at now sees.
  size_t UpSeriesCount() {
    json j = GetJson("/api/v1/query?query=up&time=" + kNowSec);
    return j["data"]["result"].size();
  }
};

TEST_F(HttpApiTest, RemoteWriteThenInstantQuery) {
  WriteBaseline();
  json j = GetJson("/api/v1/query?query=up&time=" + kNowSec);
  EXPECT_EQ(j["status"], "success");
  EXPECT_EQ(j["data"]["resultType"], "vector");
  ASSERT_EQ(j["data"]["result"].size(), 2u);
  const json& first = j["data"]["result"][0];
  EXPECT_EQ(first["metric"], json({{"__name__", "up"}, {"instance", "a:9100"}, {"job", "node"}}));
  EXPECT_EQ(first["value"][0].get<double>(), kNowMs / 1000.0);
  EXPECT_EQ(first["value"][1], "1");
  EXPECT_EQ(j["data"]["result"][1]["value"][1], "0");
}

TEST_F(HttpApiTest, QueryRangeReturnsMatrix) {
  std::vector<std::pair<int64_t, double>> samples;
  for (int i = 0; i < 5; ++i) samples.push_back({kNowMs - 60'000 + i * 15'000, i * 1.5});
  httplib::Result r = Write({{{{"__name__", "temp"}, {"room", "x"}}, samples}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 204) << r->body;
  json j = GetJson(absl::StrCat("/api/v1/query_range?query=temp&start=", kNowMs / 1000 - 60,
                                "&end=", kNowSec, "&step=15s"));
  EXPECT_EQ(j["data"]["resultType"], "matrix");
  ASSERT_EQ(j["data"]["result"].size(), 1u);
  const json& values = j["data"]["result"][0]["values"];
  ASSERT_EQ(values.size(), 5u);
  EXPECT_EQ(values[1][1], "1.5");
  EXPECT_EQ(values[4][1], "6");
  EXPECT_EQ(values[4][0].get<double>(), kNowMs / 1000.0);
}

TEST_F(HttpApiTest, FormPostQuery) {
  WriteBaseline();
  httplib::Params form = {{"query", "up{instance=\"b:9100\"}"}, {"time", kNowSec}};
  httplib::Result r = client_->Post("/api/v1/query", form);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  ASSERT_EQ(j["data"]["result"].size(), 1u);
  EXPECT_EQ(j["data"]["result"][0]["metric"]["instance"], "b:9100");
}

TEST_F(HttpApiTest, SeriesLabelsAndLabelValues) {
  WriteBaseline();
  ASSERT_EQ(Write({{{{"__name__", "temp"}, {"room", "x"}}, {{kNowMs, 20}}}})->status, 204);

  json series = GetJson("/api/v1/series?match[]=up");
  EXPECT_EQ(series["status"], "success");
  ASSERT_EQ(series["data"].size(), 2u);
  EXPECT_EQ(series["data"][1],
            json({{"__name__", "up"}, {"instance", "b:9100"}, {"job", "node"}}));

  json two = GetJson("/api/v1/series?match[]=up{instance=%22a:9100%22}&match[]=temp");
  EXPECT_EQ(two["data"].size(), 2u);

  json labels = GetJson("/api/v1/labels");
  EXPECT_EQ(labels["data"], json({"__name__", "instance", "job", "room"}));
  json up_labels = GetJson("/api/v1/labels?match[]=up");
  EXPECT_EQ(up_labels["data"], json({"__name__", "instance", "job"}));

  EXPECT_EQ(GetJson("/api/v1/label/__name__/values")["data"], json({"temp", "up"}));
  EXPECT_EQ(GetJson("/api/v1/label/instance/values?match[]=up")["data"],
            json({"a:9100", "b:9100"}));
  EXPECT_EQ(GetJson("/api/v1/label/nope/values")["data"], json::array());
}

TEST_F(HttpApiTest, SmallEndpoints) {
  EXPECT_EQ(GetJson("/api/v1/metadata")["data"], json::object());
  EXPECT_EQ(GetJson("/api/v1/query_exemplars?query=up")["data"], json::array());
  EXPECT_EQ(GetJson("/api/v1/status/buildinfo")["data"]["version"], "0.1.0");
  httplib::Result healthy = client_->Get("/-/healthy");
  ASSERT_TRUE(healthy);
  EXPECT_EQ(healthy->status, 200);
  httplib::Result ready = client_->Get("/-/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  httplib::Result missing = client_->Get("/api/v1/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(HttpApiTest, QueryParameterErrorsAreBadData) {
  const struct {
    std::string path;
    int status;
    std::string error;
  } cases[] = {
      {"/api/v1/query?query=up&time=yesterday", 400,
       "invalid parameter \"time\": cannot parse \"yesterday\" to a valid timestamp"},
      {"/api/v1/query?query=up&timeout=soon", 400, "invalid parameter \"timeout\""},
      {"/api/v1/query?query=up{", 400, "parse error"},
      {"/api/v1/query_range?query=up&start=10&end=5&step=1", 400,
       "end timestamp must not be before start time"},
      {"/api/v1/query_range?query=up&start=0&end=5&step=0", 400,
       "zero or negative query resolution step widths are not accepted"},
      {"/api/v1/query_range?query=up&start=0&end=100000&step=1", 400,
       "exceeded maximum resolution of 11,000 points per timeseries"},
      {"/api/v1/query_range?query=up&end=5&step=1", 400, "invalid parameter \"start\""},
      {"/api/v1/series", 400, "no match[] parameter provided"},
      {"/api/v1/series?match[]=up{", 400, ""},
      {"/api/v1/labels?start=x", 400, "invalid parameter \"start\""},
      {"/api/v1/label/bad-name/values", 400, "invalid label name: \"bad-name\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    json j = GetJson(c.path, c.status);
    EXPECT_EQ(j["status"], "error");
    EXPECT_EQ(j["errorType"], "bad_data");
    EXPECT_THAT(j["error"].get<std::string>(), HasSubstr(c.error));
  }
}

// Every bad remote-write body of the issue's list gets a 4xx naming the problem;
// what was acked before is still there and the node keeps serving.
TEST_F(HttpApiTest, BadRemoteWritesAreRefusedAndEarlierDataKept) {
  WriteBaseline();
  const RemoteSeries valid{{{"__name__", "fresh"}, {"job", "x"}}, {{kNowMs, 1}}};
  const std::string oversized(options().http.max_request_bytes + 1, 'x');
  std::string huge_header("\x80\x80\x80\x80\x08", 5);  // claims 2 GiB uncompressed
  const struct {
    std::string name;
    std::string body;
    const char* encoding;
    int status;
    std::string error;
  } cases[] = {
      {"malformed protobuf", Snappy(std::string("\x0a\x05\x0a\x01", 4)), "snappy", 400,
       "malformed remote-write protobuf"},
      {"bad wire type", Snappy(std::string("\x0f", 1)), "snappy", 400, "invalid wire type"},
      {"bad snappy", "definitely not snappy", "snappy", 400, "bad snappy"},
      {"gzip", Snappy(SerializeWrite({valid})), "gzip", 400, "Content-Encoding"},
      {"decompressed over limit", huge_header, "snappy", 400, "exceeds the limit"},
      {"body over limit", oversized, "snappy", 413, "exceeds the limit"},
      {"invalid metric name",
       Snappy(SerializeWrite({valid, {{{"__name__", "1bad"}, {"job", "x"}}, {{kNowMs, 1}}}})),
       "snappy", 400, "1bad"},
      {"invalid label name",
       Snappy(SerializeWrite({valid, {{{"__name__", "m"}, {"bad-label", "x"}}, {{kNowMs, 1}}}})),
       "snappy", 400, "bad-label"},
      {"invalid utf8 value",
       Snappy(SerializeWrite({valid, {{{"__name__", "m"}, {"job", "\xff\xfe"}}, {{kNowMs, 1}}}})),
       "snappy", 400, "UTF-8"},
      {"unsorted labels",
       Snappy(SerializeWrite({valid, {{{"job", "x"}, {"__name__", "m"}}, {{kNowMs, 1}}}})),
       "snappy", 400, "not sorted"},
      {"duplicate labels",
       Snappy(SerializeWrite(
           {valid, {{{"__name__", "m"}, {"job", "x"}, {"job", "y"}}, {{kNowMs, 1}}}})),
       "snappy", 400, "duplicate label name \"job\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    httplib::Result r = PostWrite(c.body, c.encoding);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, c.status);
    EXPECT_THAT(r->body, HasSubstr(c.error));
    // Nothing of a refused request was applied, not even its valid series.
    EXPECT_EQ(GetJson("/api/v1/query?query=fresh&time=" + kNowSec)["data"]["result"].size(), 0u);
    EXPECT_EQ(UpSeriesCount(), 2u);
  }
}

// A sample too far in the future is refused with 400 naming it, while the rest of
// the request is applied (as Prometheus does).
TEST_F(HttpApiTest, FutureSampleRejectedRestApplied) {
  WriteBaseline();
  const int64_t future = kNowMs + 24 * 3600 * 1000;
  httplib::Result r = Write({{{{"__name__", "fresh"}, {"job", "x"}}, {{kNowMs, 7}, {future, 8}}}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("1 of 2 samples rejected"));
  EXPECT_THAT(r->body, HasSubstr("fresh"));
  json j = GetJson("/api/v1/query?query=fresh&time=" + kNowSec);
  ASSERT_EQ(j["data"]["result"].size(), 1u);
  EXPECT_EQ(j["data"]["result"][0]["value"][1], "7");
  EXPECT_EQ(UpSeriesCount(), 2u);
}

TEST_F(HttpApiTest, AckedWritesSurviveRestart) {
  WriteBaseline();
  RestartNode();
  EXPECT_EQ(UpSeriesCount(), 2u);
  EXPECT_GT(node_->recovery_time(), absl::ZeroDuration());
}

TEST_F(HttpApiTest, MetricsExpositionParses) {
  WriteBaseline();
  GetJson("/api/v1/query?query=up&time=" + kNowSec);
  httplib::Result r = client_->Get("/metrics");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  // Every line is a comment or `name{labels} value` in the text format.
  const std::regex sample_line(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? )"
      R"(([-+]?[0-9.eE+-]+|\+Inf|-Inf|NaN)$)");
  std::map<std::string, double> values;
  for (absl::string_view line : absl::StrSplit(r->body, '\n', absl::SkipEmpty())) {
    if (line.front() == '#') {
      EXPECT_TRUE(absl::StartsWith(line, "# HELP ") || absl::StartsWith(line, "# TYPE "))
          << line;
      continue;
    }
    EXPECT_TRUE(std::regex_match(std::string(line), sample_line)) << line;
    const size_t space = line.rfind(' ');
    values[std::string(line.substr(0, space))] = std::stod(std::string(line.substr(space + 1)));
  }
  EXPECT_EQ(values["vigil_samples_appended_total"], 2);
  EXPECT_EQ(values["vigil_series"], 2);
  EXPECT_EQ(values["vigil_http_requests_total{handler=\"write\",code=\"204\"}"], 1);
  EXPECT_EQ(values["vigil_http_request_duration_seconds_count{handler=\"query\"}"], 1);
  EXPECT_GT(values["process_resident_memory_bytes"], 0);
  EXPECT_EQ(values["vigil_ready"], 1);
}

TEST_F(HttpApiTest, GrafanaHealthCheckScalar) {
  json j = GetJson("/api/v1/query?query=1%2B1&time=1.5");
  EXPECT_EQ(j["data"], json::parse(R"({"resultType":"scalar","result":[1.5,"2"]})"));
}

// HttpApi over a backend of our own: readiness and storage faults. Storage
// faults are retryable (5xx) unless the data itself is bad.
class HttpApiBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiBackend backend;
    backend.append = [this](const std::vector<storage::SeriesAppend>& b)
        -> absl::StatusOr<storage::AppendResult> {
      if (!append_status_.ok()) return append_status_;
      storage::AppendResult r;
      for (const auto& s : b) r.appended += static_cast<int64_t>(s.samples.size());
      return r;
    };
    backend.source = &source_;
    backend.engine = &engine_;
    backend.metrics = &metrics_;
    backend.ready = [this] { return ready_.load(); };
    api_ = std::make_unique<HttpApi>(backend, HttpApiOptions{});
    api_->Register(&server_);
    const int port = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port);
    client_->set_read_timeout(60, 0);
  }
  void TearDown() override {
    // stop() only takes effect once the accept loop runs.
    while (!server_.is_running()) std::this_thread::yield();
    server_.stop();
    thread_.join();
  }
  int WriteStatus() {
    httplib::Result r = client_->Post(
        "/api/v1/write", {{"Content-Encoding", "snappy"}},
        Snappy(SerializeWrite({Up("a", 1)})), "application/x-protobuf");
    return r ? r->status : -1;
  }

  std::atomic<bool> ready_{false};
  absl::Status append_status_;
  query::MemorySeriesSource source_;
  query::Engine engine_;
  metrics::Registry metrics_;
  std::unique_ptr<HttpApi> api_;
  httplib::Server server_;
  std::thread thread_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpApiBackendTest, ReadyOnlyOnceBackendIs) {
  httplib::Result r = client_->Get("/-/ready");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  ready_ = true;
  r = client_->Get("/-/ready");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpApiBackendTest, WriteStatusFollowsStorageOutcome) {
  EXPECT_EQ(WriteStatus(), 204);
  append_status_ = absl::UnavailableError("disk busy");
  EXPECT_EQ(WriteStatus(), 503);
  append_status_ = absl::InternalError("io error");
  EXPECT_EQ(WriteStatus(), 500);
  append_status_ = absl::InvalidArgumentError("bad labels");
  EXPECT_EQ(WriteStatus(), 400);
}

TEST_F(HttpApiBackendTest, QueriesReadTheGivenSource) {
  source_.Add(Labels{{"__name__", "m"}, {"k", "v"}}, {{kNowMs, 0.25}});
  httplib::Result r = client_->Get("/api/v1/query?query=m&time=" + kNowSec);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["data"]["result"][0]["value"][1], "0.25");
}

}  // namespace
}  // namespace vigil::server
