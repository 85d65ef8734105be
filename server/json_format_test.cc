#include "server/json_format.h"

#include <cmath>
#include <limits>
#include <string>

#include "common/sample.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vigil::server {
namespace {

// Expected strings are what Go's strconv.FormatFloat(v, 'f' or 'e', -1, 64) gives,
// as Prometheus' jsonutil.MarshalFloat writes them.
TEST(JsonFormatTest, ValuesFormatLikePrometheus) {
  const double inf = std::numeric_limits<double>::infinity();
  const struct {
    double v;
    const char* want;
  } cases[] = {
      {0, "0"},
      {-0.0, "-0"},
      {1, "1"},
      {-1, "-1"},
      {0.1, "0.1"},
      {1.5, "1.5"},
      {100, "100"},
      {1234567.891, "1234567.891"},
      {1e6, "1000000"},
      {1e20, "100000000000000000000"},
      {1e21, "1e+21"},
      {1.5e300, "1.5e+300"},
      {1e-6, "0.000001"},
      {1.5e-7, "1.5e-07"},
      {9.99e-7, "9.99e-07"},
      {0.30000000000000004, "0.30000000000000004"},
      {1.0 / 3, "0.3333333333333333"},
      {std::numeric_limits<double>::max(), "1.7976931348623157e+308"},
      {std::numeric_limits<double>::denorm_min(), "5e-324"},
      {inf, "+Inf"},
      {-inf, "-Inf"},
      {std::nan(""), "NaN"},
      {StaleNaN(), "NaN"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.want);
    EXPECT_EQ(FormatPromValue(c.v), c.want);
  }
}

TEST(JsonFormatTest, TimestampsAreSecondsWithMillis) {
  EXPECT_EQ(FormatPromTimestamp(1435781451781), "1435781451.781");
  EXPECT_EQ(FormatPromTimestamp(1435781451000), "1435781451");
  EXPECT_EQ(FormatPromTimestamp(1500), "1.500");
  EXPECT_EQ(FormatPromTimestamp(1005), "1.005");
  EXPECT_EQ(FormatPromTimestamp(1050), "1.050");
  EXPECT_EQ(FormatPromTimestamp(0), "0");
  EXPECT_EQ(FormatPromTimestamp(-1500), "-1.500");
}

TEST(JsonFormatTest, EscapesStringsLikeGo) {
  std::string out;
  AppendJsonString(&out, "a\"b\\c\n<&>\x01\t\xe2\x80\xa8\xff\xc3\xa9");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u003c\\u0026\\u003e\\u0001\\t\\u2028\\ufffd\xc3\xa9\"");
}

TEST(JsonFormatTest, VectorMatrixScalarStringEnvelopes) {
  query::QueryResult vec;
  vec.type = query::ValueType::kVector;
  vec.series.push_back(Series{Labels{{"__name__", "up"}, {"job", "a"}}, {{1000, 1}}});
  EXPECT_EQ(SuccessJson(QueryDataJson(vec)),
            R"({"status":"success","data":{"resultType":"vector","result":[)"
            R"({"metric":{"__name__":"up","job":"a"},"value":[1,"1"]}]}})");

  query::QueryResult mat;
  mat.type = query::ValueType::kMatrix;
  mat.series.push_back(Series{Labels{{"job", "a"}}, {{1000, 1}, {16500, 0.5}}});
  EXPECT_EQ(QueryDataJson(mat),
            R"({"resultType":"matrix","result":[)"
            R"({"metric":{"job":"a"},"values":[[1,"1"],[16.500,"0.5"]]}]})");

  query::QueryResult scalar;
  scalar.type = query::ValueType::kScalar;
  scalar.t = 2000;
  scalar.scalar = 2;
  EXPECT_EQ(QueryDataJson(scalar), R"({"resultType":"scalar","result":[2,"2"]})");

  query::QueryResult str;
  str.type = query::ValueType::kString;
  str.t = 2000;
  str.str = "hi";
  EXPECT_EQ(QueryDataJson(str), R"({"resultType":"string","result":[2,"hi"]})");

  query::QueryResult empty;
  EXPECT_EQ(SuccessJson(QueryDataJson(empty), {"w1"}),
            R"({"status":"success","data":{"resultType":"vector","result":[]},"warnings":["w1"]})");
}

TEST(JsonFormatTest, ErrorEnvelope) {
  const std::string e = ErrorJson("bad_data", "invalid parameter \"time\"");
  EXPECT_EQ(e, R"({"status":"error","errorType":"bad_data","error":"invalid parameter \"time\""})");
  EXPECT_EQ(nlohmann::json::parse(e)["errorType"], "bad_data");
}

}  // namespace
}  // namespace vigil::server
