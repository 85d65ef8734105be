// ui/assets.h
//
// The UI's static files (ui/static/), embedded into the binary at build time by
// ui/embed_assets.cmake. Immutable; safe to read from any thread.
#ifndef VIGIL_UI_ASSETS_H_
#define VIGIL_UI_ASSETS_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace vigil::ui {

struct EmbeddedAsset {
  const char* name;  // file name, e.g. "app.js"
  const unsigned char* data;
  size_t size;  // bytes, without the NUL that ends `data`
};

// Defined in the generated ui_assets.cc.
extern const EmbeddedAsset kEmbeddedAssets[];
extern const size_t kNumEmbeddedAssets;

// The asset called `name`, or nullptr when there is none.
const EmbeddedAsset* FindAsset(absl::string_view name);

// The Content-Type for `name` by its extension; "application/octet-stream"
// for unknown ones.
const char* ContentTypeFor(absl::string_view name);

}  // namespace vigil::ui

#endif  // VIGIL_UI_ASSETS_H_
