#include "ui/ui.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "ui/assets.h"

namespace vigil::ui {

const EmbeddedAsset* FindAsset(absl::string_view name) {
  for (size_t i = 0; i < kNumEmbeddedAssets; ++i) {
    if (name == kEmbeddedAssets[i].name) return &kEmbeddedAssets[i];
  }
  return nullptr;
}

const char* ContentTypeFor(absl::string_view name) {
  if (absl::EndsWith(name, ".html")) return "text/html; charset=utf-8";
  if (absl::EndsWith(name, ".js")) return "text/javascript; charset=utf-8";
  if (absl::EndsWith(name, ".css")) return "text/css; charset=utf-8";
  if (absl::EndsWith(name, ".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

namespace {

void ServeAsset(absl::string_view name, httplib::Response& res) {
  const EmbeddedAsset* asset = FindAsset(name);
  if (asset == nullptr) {
    res.status = 404;
    res.set_content(absl::StrCat("404 page not found: /ui/", name, "\n"), "text/plain");
    return;
  }
  // The assets change only with the binary; revalidation is cheap on loopback
  // and keeps a browser from running an old app.js against a new server.
  res.set_header("Cache-Control", "no-cache");
  res.set_content(reinterpret_cast<const char*>(asset->data), asset->size,
                  ContentTypeFor(asset->name));
}

}  // namespace

void RegisterUiRoutes(httplib::Server* server) {
  server->Get("/", [](const httplib::Request&, httplib::Response& res) {
    ServeAsset("index.html", res);
  });
  server->Get(R"(/ui/([A-Za-z0-9_.-]+))", [](const httplib::Request& req, httplib::Response& res) {
    ServeAsset(req.matches[1].str(), res);
  });
}

}  // namespace vigil::ui
