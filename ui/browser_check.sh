#!/usr/bin/env bash
# Looks at vigild's UI as a person would: starts a throwaway vigild on free
# loopback ports, writes some data, and saves screenshots of the table, graph
# and error views to /tmp/vigil_ui_{table,graph,error}.png. Not run by ctest.
#   ui/browser_check.sh [BUILD_DIR]      (default: build)
# Needs chromium (tools/install-deps --ui); exits 77 without it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
VIGILD=$build/server/vigild
VIGILCTL=$build/tools/vigilctl
command -v chromium >/dev/null || { echo "chromium is not installed (tools/install-deps --ui)" >&2; exit 77; }
source "$here/browser_lib.sh"
ui_setup

shoot() {
  ui_chromium --screenshot="/tmp/vigil_ui_$1.png" "$UI_BASE/$2"
  echo "/tmp/vigil_ui_$1.png  <- $UI_BASE/$2"
}
shoot table '?g0.expr=room_temperature_celsius&g0.tab=1'
shoot graph '?g0.expr=room_temperature_celsius&g0.tab=0&g0.range_input=1h'
shoot up '?g0.expr=up&g0.tab=0&g0.range_input=1h'
shoot error '?g0.expr=sum(rate(up%5B5m%5D)&g0.tab=1'
