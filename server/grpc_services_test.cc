// In-process tests of the vigil.v1 gRPC services against a real Node.
#include "server/grpc_services.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "query/engine.h"
#include "query/memory_source.h"
#include "server/testing/node_fixture.h"

namespace vigil::server {
namespace {

using ::testing::HasSubstr;
using ::vigil::server::testing::kNowMs;
using ::vigil::server::testing::NodeFixture;

// Select of every series named "up" in the last minute before kNowMs.
vigil::v1::SelectRequest SelectUp() {
  vigil::v1::SelectRequest sel;
  vigil::v1::LabelMatcher* m = sel.add_matchers();
  m->set_type(vigil::v1::EQUAL);
  m->set_name("__name__");
  m->set_value("up");
  sel.set_start_ms(kNowMs - 60'000);
  sel.set_end_ms(kNowMs);
  return sel;
}

class GrpcServicesTest : public NodeFixture {
 protected:
  void SetUp() override {
    NodeFixture::SetUp();
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(node_->grpc_port()),
                                       grpc::InsecureChannelCredentials());
    ingest_ = vigil::v1::Ingest::NewStub(channel);
    query_ = vigil::v1::Query::NewStub(channel);
    admin_ = vigil::v1::Admin::NewStub(channel);
  }

  // A context with a generous deadline, so a hung server fails the test.
  std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return ctx;
  }

  static void AddSeries(vigil::v1::WriteRequest* req, const std::string& instance,
                        std::initializer_list<std::pair<int64_t, double>> samples) {
    vigil::v1::TimeSeries* ts = req->add_series();
    // Order does not matter on this API.
    for (const auto& [n, v] : {std::pair<const char*, std::string>{"job", "node"},
                               {"__name__", "up"},
                               {"instance", instance}}) {
      vigil::v1::Label* l = ts->add_labels();
      l->set_name(n);
      l->set_value(v);
    }
    for (const auto& [t, v] : samples) {
      vigil::v1::Sample* s = ts->add_samples();
      s->set_timestamp_ms(t);
      s->set_value(v);
    }
  }

  std::unique_ptr<vigil::v1::Ingest::Stub> ingest_;
  std::unique_ptr<vigil::v1::Query::Stub> query_;
  std::unique_ptr<vigil::v1::Admin::Stub> admin_;
};

TEST_F(GrpcServicesTest, WriteSelectInstantAndRangeQuery) {
  vigil::v1::WriteRequest req;
  AddSeries(&req, "a", {{kNowMs - 30'000, 1}, {kNowMs - 15'000, 2}});
  AddSeries(&req, "b", {{kNowMs - 15'000, 5}});
  vigil::v1::WriteResponse wresp;
  grpc::Status s = ingest_->Write(Ctx().get(), req, &wresp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(wresp.samples_appended(), 3);
  EXPECT_EQ(wresp.samples_rejected(), 0);

  // Resending is idempotent.
  ASSERT_TRUE(ingest_->Write(Ctx().get(), req, &wresp).ok());
  EXPECT_EQ(wresp.samples_appended(), 0);
  EXPECT_EQ(wresp.samples_duplicate(), 3);

  vigil::v1::SelectRequest sel = SelectUp();
  vigil::v1::SelectResponse sresp;
  s = query_->Select(Ctx().get(), sel, &sresp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(sresp.series_size(), 2);
  EXPECT_EQ(sresp.series(0).labels(1).name(), "instance");  // sorted by name
  EXPECT_EQ(sresp.series(0).labels(1).value(), "a");
  ASSERT_EQ(sresp.series(0).samples_size(), 2);
  EXPECT_EQ(sresp.series(0).samples(1).value(), 2);

  vigil::v1::InstantQueryRequest iq;
  iq.set_expr("up{instance=\"b\"}");
  iq.set_time_ms(kNowMs);
  vigil::v1::QueryResponse qresp;
  s = query_->InstantQuery(Ctx().get(), iq, &qresp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(qresp.result_type(), vigil::v1::QueryResponse::VECTOR);
  ASSERT_EQ(qresp.series_size(), 1);
  EXPECT_EQ(qresp.series(0).samples(0).value(), 5);
  EXPECT_EQ(qresp.series(0).samples(0).timestamp_ms(), kNowMs);

  vigil::v1::RangeQueryRequest rq;
  rq.set_expr("up");
  rq.set_start_ms(kNowMs - 30'000);
  rq.set_end_ms(kNowMs);
  rq.set_step_ms(15'000);
  s = query_->RangeQuery(Ctx().get(), rq, &qresp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(qresp.result_type(), vigil::v1::QueryResponse::MATRIX);
  ASSERT_EQ(qresp.series_size(), 2);
  EXPECT_EQ(qresp.series(0).samples_size(), 3);

  vigil::v1::StatusResponse st;
  ASSERT_TRUE(admin_->Status(Ctx().get(), {}, &st).ok());
  EXPECT_EQ(st.node_id(), 1);
  EXPECT_EQ(st.series(), 2);
  EXPECT_EQ(st.samples_appended_total(), 3);
}

TEST_F(GrpcServicesTest, ErrorsMapToGrpcCodes) {
  vigil::v1::WriteRequest bad;
  vigil::v1::TimeSeries* ts = bad.add_series();
  vigil::v1::Label* l = ts->add_labels();
  l->set_name("__name__");
  l->set_value("0bad");
  ts->add_samples()->set_timestamp_ms(kNowMs);
  vigil::v1::WriteResponse wresp;
  grpc::Status s = ingest_->Write(Ctx().get(), bad, &wresp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("0bad"));

  vigil::v1::InstantQueryRequest iq;
  iq.set_expr("up{");
  vigil::v1::QueryResponse qresp;
  s = query_->InstantQuery(Ctx().get(), iq, &qresp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("parse error"));

  vigil::v1::SelectRequest sel;
  vigil::v1::LabelMatcher* m = sel.add_matchers();
  m->set_type(vigil::v1::REGEX_MATCH);
  m->set_name("job");
  m->set_value("(unclosed");
  vigil::v1::SelectResponse sresp;
  EXPECT_EQ(query_->Select(Ctx().get(), sel, &sresp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  vigil::v1::RangeQueryRequest rq;
  rq.set_expr("up");
  rq.set_step_ms(0);
  EXPECT_EQ(query_->RangeQuery(Ctx().get(), rq, &qresp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// The value of label "src" of the only series of `series`, or why not.
std::string OnlySource(const google::protobuf::RepeatedPtrField<vigil::v1::TimeSeries>& series) {
  if (series.size() != 1) return absl::StrCat(series.size(), " series");
  for (const vigil::v1::Label& l : series[0].labels()) {
    if (l.name() == "src") return l.value();
  }
  return "no src label";
}

// Which source the three query calls of `service` read, with `partial` set or not.
std::vector<std::string> SourcesRead(QueryService& service, std::optional<bool> partial) {
  grpc::ServerContext ctx;
  vigil::v1::InstantQueryRequest iq;
  iq.set_expr("up");
  iq.set_time_ms(kNowMs);
  vigil::v1::RangeQueryRequest rq;
  rq.set_expr("up");
  rq.set_start_ms(kNowMs - 10'000);
  rq.set_end_ms(kNowMs);
  rq.set_step_ms(5'000);
  vigil::v1::SelectRequest sel = SelectUp();
  if (partial.has_value()) {
    iq.set_partial_response(*partial);
    rq.set_partial_response(*partial);
    sel.set_partial_response(*partial);
  }
  vigil::v1::QueryResponse iresp, rresp;
  vigil::v1::SelectResponse sresp;
  std::vector<std::string> out;
  out.push_back(service.InstantQuery(&ctx, &iq, &iresp).ok() ? OnlySource(iresp.series()) : "error");
  out.push_back(service.RangeQuery(&ctx, &rq, &rresp).ok() ? OnlySource(rresp.series()) : "error");
  out.push_back(service.Select(&ctx, &sel, &sresp).ok() ? OnlySource(sresp.series()) : "error");
  return out;
}

// partial_response picks the source as on the HTTP API: absent -> the
// default, true/false -> ApiBackend::source_for(true/false).
TEST(QueryServiceTest, PartialResponsePicksTheSource) {
  std::map<std::string, query::MemorySeriesSource> sources;
  for (const char* name : {"default", "partial", "strict"}) {
    sources[name].Add(Labels{{"__name__", "up"}, {"src", name}}, {{kNowMs - 1000, 1}});
  }
  query::Engine engine;
  ApiBackend backend;
  backend.engine = &engine;
  backend.source = &sources["default"];
  backend.source_for = [&](bool partial) { return &sources[partial ? "partial" : "strict"]; };
  QueryService service(backend, absl::Seconds(30), RealClock::Get());
  using ::testing::Each;
  EXPECT_THAT(SourcesRead(service, std::nullopt), Each(std::string("default")));
  EXPECT_THAT(SourcesRead(service, true), Each(std::string("partial")));
  EXPECT_THAT(SourcesRead(service, false), Each(std::string("strict")));

  // A single node (no source_for) serves every request from its one source.
  backend.source_for = nullptr;
  QueryService single(backend, absl::Seconds(30), RealClock::Get());
  EXPECT_THAT(SourcesRead(single, true), Each(std::string("default")));
}

}  // namespace
}  // namespace vigil::server
