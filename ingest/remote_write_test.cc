#include "ingest/remote_write.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "common/sample.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/prometheus/remote.pb.h"
#include "snappy.h"

namespace vigil::ingest {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::StatusIs;

prometheus::WriteRequest MakeRequest(int num_series, int samples_per_series) {
  prometheus::WriteRequest req;
  for (int s = 0; s < num_series; ++s) {
    prometheus::TimeSeries* ts = req.add_timeseries();
    auto add = [&](const std::string& n, const std::string& v) {
      prometheus::Label* l = ts->add_labels();
      l->set_name(n);
      l->set_value(v);
    };
    add("__name__", "http_requests_total");
    add("instance", "host-" + std::to_string(s));
    add("job", "api");
    for (int i = 0; i < samples_per_series; ++i) {
      prometheus::Sample* sample = ts->add_samples();
      sample->set_timestamp(1'700'000'000'000 + i * 15'000);
      sample->set_value(s * 1000.0 + i + 0.5);
    }
  }
  return req;
}

std::string Compress(const std::string& raw) {
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

std::string Body(const prometheus::WriteRequest& req) { return Compress(req.SerializeAsString()); }

void ExpectMatches(const prometheus::WriteRequest& req, const DecodedWrite& got) {
  ASSERT_EQ(got.series().size(), static_cast<size_t>(req.timeseries_size()));
  for (int i = 0; i < req.timeseries_size(); ++i) {
    const prometheus::TimeSeries& want = req.timeseries(i);
    const storage::SeriesAppend& s = got.series()[i];
    ASSERT_EQ(s.labels.size(), static_cast<size_t>(want.labels_size()));
    for (int j = 0; j < want.labels_size(); ++j) {
      EXPECT_EQ(s.labels[j].name, want.labels(j).name());
      EXPECT_EQ(s.labels[j].value, want.labels(j).value());
    }
    ASSERT_EQ(s.samples.size(), static_cast<size_t>(want.samples_size()));
    for (int j = 0; j < want.samples_size(); ++j) {
      EXPECT_EQ(s.samples[j].t, want.samples(j).timestamp());
      EXPECT_EQ(DoubleBits(s.samples[j].v), DoubleBits(want.samples(j).value()));
    }
  }
}

TEST(RemoteWriteTest, RoundTripsGeneratedRequest) {
  prometheus::WriteRequest req = MakeRequest(20, 30);
  ASSERT_OK_AND_ASSIGN(DecodedWrite got, DecodeRemoteWrite(Body(req)));
  ExpectMatches(req, got);
  EXPECT_EQ(got.num_samples(), 600);
}

TEST(RemoteWriteTest, KeepsSpecialValuesBitExact) {
  prometheus::WriteRequest req = MakeRequest(1, 0);
  const double inf = std::numeric_limits<double>::infinity();
  for (double v : {StaleNaN(), std::nan(""), inf, -inf, -0.0, 1e308}) {
    prometheus::Sample* s = req.mutable_timeseries(0)->add_samples();
    s->set_value(v);
    s->set_timestamp(-5);  // negative timestamps are 10-byte varints
  }
  ASSERT_OK_AND_ASSIGN(DecodedWrite got, DecodeRemoteWrite(Body(req)));
  ExpectMatches(req, got);
  EXPECT_TRUE(IsStaleNaN(got.series()[0].samples[0].v));
  EXPECT_FALSE(IsStaleNaN(got.series()[0].samples[1].v));
}

TEST(RemoteWriteTest, LabelsPointIntoOwnedBufferAfterMove) {
  prometheus::WriteRequest req = MakeRequest(3, 1);
  ASSERT_OK_AND_ASSIGN(DecodedWrite first, DecodeRemoteWrite(Body(req)));
  DecodedWrite moved = std::move(first);
  ExpectMatches(req, moved);
}

TEST(RemoteWriteTest, EmptyRequestIsValid) {
  ASSERT_OK_AND_ASSIGN(DecodedWrite got, DecodeRemoteWrite(Compress("")));
  EXPECT_TRUE(got.series().empty());
}

TEST(RemoteWriteTest, SkipsMetadataExemplarsAndUnknownFields) {
  prometheus::WriteRequest req = MakeRequest(2, 2);
  prometheus::MetricMetadata* md = req.add_metadata();
  md->set_metric_family_name("http_requests_total");
  md->set_help("help text");
  prometheus::Exemplar* ex = req.mutable_timeseries(0)->add_exemplars();
  ex->add_labels()->set_name("trace_id");
  ex->set_value(1);
  std::string raw = req.SerializeAsString();
  // Unknown fields of every wire type at the top level: 9 varint, 10 fixed64,
  // 11 bytes, 12 fixed32, 13 a group holding a varint.
  raw += std::string("\x48\x96\x01", 3);
  raw += std::string("\x51", 1) + std::string(8, '\x01');
  raw += std::string("\x5a\x03xyz", 5);
  raw += std::string("\x65\x01\x02\x03\x04", 5);
  raw += std::string("\x6b\x08\x01\x6c", 4);
  ASSERT_OK_AND_ASSIGN(DecodedWrite got, DecodeRemoteWrite(Compress(raw)));
  req.clear_metadata();
  req.mutable_timeseries(0)->clear_exemplars();
  ExpectMatches(req, got);
}

TEST(RemoteWriteTest, RejectsMalformedProtobufWithReason) {
  struct Case {
    std::string raw;
    std::string reason;
  };
  const Case cases[] = {
      {std::string("\x0a", 1), "truncated varint"},
      {std::string("\x0a\x05\x0a\x01", 4), "runs past the end"},
      {std::string("\x0f", 1), "invalid wire type 7"},
      {std::string("\x0e", 1), "invalid wire type 6"},
      {std::string("\x00", 1), "field number 0"},
      {std::string("\x0c", 1), "unexpected end-group"},
      {std::string("\x0b\x08\x01", 3), "unterminated group"},
      {std::string("\x0b\x14", 2), "mismatched end-group"},
      {std::string("\x09\x01\x02", 3), "truncated fixed64"},
      {std::string("\x0d\x01", 2), "truncated fixed32"},
      {std::string("\x08") + std::string(10, '\xff') + "\x01", "varint"},
      {std::string("\x08") + std::string(9, '\xff') + "\x7f", "overflows 64 bits"},
      // A TimeSeries whose Sample has a truncated fixed64 value.
      {std::string("\x0a\x04\x12\x02\x09\x00", 6), "truncated fixed64"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reason);
    EXPECT_THAT(DecodeRemoteWrite(Compress(c.raw)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         ::testing::AllOf(HasSubstr("malformed remote-write protobuf"),
                                          HasSubstr(c.reason))));
  }
}

TEST(RemoteWriteTest, RejectsBadSnappy) {
  EXPECT_THAT(DecodeRemoteWrite("not snappy at all"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad snappy")));
  EXPECT_THAT(DecodeRemoteWrite(""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad snappy")));
  std::string body = Body(MakeRequest(5, 5));
  body.resize(body.size() / 2);
  EXPECT_THAT(DecodeRemoteWrite(body),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad snappy")));
}

TEST(RemoteWriteTest, ChecksUncompressedLengthBeforeDecompressing) {
  // A header claiming 2^31 bytes with no payload: must fail on the limit, without
  // allocating the claimed size.
  const std::string huge("\x80\x80\x80\x80\x08", 5);
  EXPECT_THAT(DecodeRemoteWrite(huge, {.max_decompressed_bytes = 1 << 20}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds the limit")));
  std::string body = Body(MakeRequest(10, 10));
  const size_t raw_size = MakeRequest(10, 10).ByteSizeLong();
  EXPECT_THAT(DecodeRemoteWrite(body, {.max_decompressed_bytes = raw_size - 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exceeds the limit")));
  EXPECT_OK(DecodeRemoteWrite(body, {.max_decompressed_bytes = raw_size}));
}

TEST(RemoteWriteTest, RejectsUnsortedAndDuplicateLabels) {
  prometheus::WriteRequest unsorted = MakeRequest(1, 1);
  unsorted.mutable_timeseries(0)->mutable_labels()->SwapElements(1, 2);
  EXPECT_THAT(DecodeRemoteWrite(Body(unsorted)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not sorted")));
  EXPECT_OK(DecodeRemoteWrite(Body(unsorted), {.require_sorted_labels = false}));

  prometheus::WriteRequest dup = MakeRequest(1, 1);
  dup.mutable_timeseries(0)->mutable_labels(2)->set_name("instance");
  dup.mutable_timeseries(0)->mutable_labels()->SwapElements(1, 2);
  EXPECT_THAT(DecodeRemoteWrite(Body(dup)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("duplicate label name \"instance\"")));
}

// Every prefix of a valid message and random byte corruptions must decode or
// fail cleanly, never crash or read out of bounds (run under ASan to be sure).
TEST(RemoteWriteTest, TruncationsAndCorruptionsNeverCrash) {
  const std::string raw = MakeRequest(4, 3).SerializeAsString();
  for (size_t n = 0; n < raw.size(); ++n) {
    std::vector<storage::SeriesAppend> out;
    (void)ParseWriteRequest(absl::string_view(raw.data(), n), &out);
  }
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937 rng(seed);
  int failures = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string bad = raw;
    const int flips = 1 + rng() % 4;
    for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] = static_cast<char>(rng());
    absl::StatusOr<DecodedWrite> got = DecodeRemoteWrite(Compress(bad));
    if (!got.ok()) {
      ++failures;
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    }
    std::string bad_snappy = Compress(raw);
    bad_snappy[rng() % bad_snappy.size()] = static_cast<char>(rng());
    (void)DecodeRemoteWrite(bad_snappy);
  }
  EXPECT_GT(failures, 0);  // the corruptions did reach the parser
}

}  // namespace
}  // namespace vigil::ingest
