#include "common/labels.h"

#include "common/testing/status_matchers.h"
#include "gtest/gtest.h"

namespace vigil {
namespace {

using ::testing::HasSubstr;
using ::vigil::testing::IsOk;
using ::vigil::testing::StatusIs;

TEST(LabelsTest, SortsAndDropsEmptyValues) {
  Labels l({{"job", "a"}, {"__name__", "up"}, {"empty", ""}});
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l.labels()[0].name, "__name__");
  EXPECT_EQ(l.Get("job"), "a");
  EXPECT_EQ(l.Get("empty"), "");
  EXPECT_EQ(l.ToString(), "up{job=\"a\"}");
}

TEST(LabelsTest, SetReplacesAndEmptyRemoves) {
  Labels l({{"__name__", "up"}});
  l.Set("b", "1");
  l.Set("a", "2");
  EXPECT_EQ(l.ToString(), "up{a=\"2\", b=\"1\"}");
  l.Set("a", "");
  EXPECT_EQ(l.ToString(), "up{b=\"1\"}");
}

TEST(LabelsTest, HashIsStableAndDistinguishesBoundaries) {
  Labels a({{"__name__", "m"}, {"a", "bc"}});
  Labels b({{"__name__", "m"}, {"ab", "c"}});
  EXPECT_NE(a.Hash(), b.Hash());
  EXPECT_EQ(a.Hash(), Labels({{"a", "bc"}, {"__name__", "m"}}).Hash());
}

TEST(LabelsTest, ToStringEscapes) {
  Labels l({{"__name__", "m"}, {"a", "x\"y\\z\n"}});
  EXPECT_EQ(l.ToString(), "m{a=\"x\\\"y\\\\z\\n\"}");
}

TEST(ValidateLabelsTest, Cases) {
  LabelLimits limits;
  limits.max_label_value_length = 8;
  limits.max_labels_per_series = 3;
  struct Case {
    std::vector<Label> labels;
    bool sorted;
    absl::string_view error;  // empty = valid
  };
  const Case cases[] = {
      {{{"__name__", "up"}, {"job", "x"}}, true, ""},
      {{{"__name__", "a:b_c1"}}, true, ""},
      {{{"job", "x"}}, true, "no metric name"},
      {{{"__name__", "1up"}}, true, "invalid metric name"},
      {{{"__name__", "up"}, {"a-b", "x"}}, true, "invalid label name"},
      {{{"__name__", "up"}, {"a:b", "x"}}, true, "invalid label name"},
      {{{"__name__", "up"}, {"job", "x"}, {"job", "y"}}, true, "duplicate label name"},
      {{{"job", "x"}, {"__name__", "up"}}, true, "not sorted"},
      {{{"job", "x"}, {"__name__", "up"}}, false, ""},
      {{{"job", "x"}, {"__name__", "up"}, {"job", "z"}}, false, "duplicate"},
      {{{"__name__", "up"}, {"job", "123456789"}}, true, "longer than 8"},
      {{{"__name__", "up"}, {"a", "1"}, {"b", "2"}, {"c", "3"}}, true, "more than the limit"},
      {{{"__name__", "up"}, {"a", "\xff\xfe"}}, true, "UTF-8"},
      {{{"__name__", "up"}, {"a", "h\xc3\xa9"}}, true, ""},
      {{{"__name__", "up"}, {"a", ""}}, true, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(Labels(c.labels).ToString());
    absl::Status s = ValidateLabels(c.labels, limits, c.sorted);
    if (c.error.empty()) {
      EXPECT_THAT(s, IsOk());
    } else {
      EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(std::string(c.error))));
    }
  }
}

}  // namespace
}  // namespace vigil
