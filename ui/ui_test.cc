#include "ui/ui.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "ui/assets.h"

namespace vigil::ui {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The UI routes on a real server on a free loopback port.
class UiRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegisterUiRoutes(&server_);
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs; connections made before
    // then wait in the listen backlog, so this only guards TearDown.
    while (!server_.is_running()) std::this_thread::yield();
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Result Get(const std::string& path) {
    // On the heap, as elsewhere in Vigil: Debian's libcpp-httplib is built with
    // OpenSSL support, so its Client has a member (is_ssl_) that our headers'
    // layout lacks and its constructor writes past a stack object.
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client->set_connection_timeout(30);
    client->set_read_timeout(30);
    return client->Get(path.c_str());
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST_F(UiRoutesTest, RootServesIndexThatLoadsTheApp) {
  httplib::Result res = Get("/");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), StartsWith("text/html"));
  EXPECT_THAT(res->body, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(res->body, HasSubstr(R"(src="ui/app.js")"));
  EXPECT_THAT(res->body, HasSubstr(R"(href="ui/style.css")"));
  const EmbeddedAsset* index = FindAsset("index.html");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(res->body, std::string(reinterpret_cast<const char*>(index->data), index->size));
}

TEST_F(UiRoutesTest, RootWithQueryStringServesIndex) {
  httplib::Result res = Get("/?g0.expr=up&g0.tab=0");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->body, HasSubstr("ui/app.js"));
}

TEST_F(UiRoutesTest, AssetsHaveTheirContentTypes) {
  struct Case {
    std::string path;
    std::string content_type;
    std::string contains;
  };
  const Case cases[] = {
      {"/ui/app.js", "text/javascript", "api/v1/query_range"},
      {"/ui/style.css", "text/css", "{"},
      {"/ui/index.html", "text/html", "<canvas"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path);
    httplib::Result res = Get(c.path);
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 200);
    EXPECT_THAT(res->get_header_value("Content-Type"), StartsWith(c.content_type));
    EXPECT_EQ(res->get_header_value("Cache-Control"), "no-cache");
    EXPECT_THAT(res->body, HasSubstr(c.contains));
  }
}

TEST_F(UiRoutesTest, UnknownAssetIsNotFound) {
  for (const char* path : {"/ui/nope.js", "/ui/", "/ui/../ui.h", "/ui/static/app.js"}) {
    SCOPED_TRACE(path);
    httplib::Result res = Get(path);
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 404);
  }
}

TEST(UiAssetsTest, EmbeddedBytesMatchTheSourceFilesSizes) {
  ASSERT_EQ(kNumEmbeddedAssets, 3u);
  for (const char* name : {"index.html", "app.js", "style.css"}) {
    SCOPED_TRACE(name);
    const EmbeddedAsset* asset = FindAsset(name);
    ASSERT_NE(asset, nullptr);
    EXPECT_GT(asset->size, 100u);
    EXPECT_EQ(asset->data[asset->size], '\0');
    // Text assets: no NUL inside, so the embedding did not drop or pad bytes.
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(asset->data)).size(), asset->size);
  }
  EXPECT_EQ(FindAsset("missing.css"), nullptr);
}

TEST(UiAssetsTest, ContentTypeByExtension) {
  EXPECT_THAT(ContentTypeFor("a.html"), StartsWith("text/html"));
  EXPECT_THAT(ContentTypeFor("a.js"), StartsWith("text/javascript"));
  EXPECT_THAT(ContentTypeFor("a.css"), StartsWith("text/css"));
  EXPECT_STREQ(ContentTypeFor("a.bin"), "application/octet-stream");
}

}  // namespace
}  // namespace vigil::ui
