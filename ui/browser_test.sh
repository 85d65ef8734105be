#!/usr/bin/env bash
# ctest ui_browser: loads vigild's UI in headless Chromium against a throwaway
# vigild with known data and checks the DOM its JavaScript rendered: table rows
# with labels and values, the graph's legend, the error box, the ?expr= alias.
#   ui/browser_test.sh VIGILD VIGILCTL
# Exits 77 (skipped) when chromium is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
VIGILD=$1
VIGILCTL=$2
command -v chromium >/dev/null || { echo "SKIP: chromium is not installed (tools/install-deps --ui)"; exit 77; }
source "$here/browser_lib.sh"
ui_setup
# Until server/ calls vigil::ui::RegisterUiRoutes, vigild answers / with 404.
if [ "$(curl -s -o /dev/null -w '%{http_code}' "$UI_BASE/")" = 404 ]; then
  echo "SKIP: this vigild does not serve the UI at / (RegisterUiRoutes not called)"
  exit 77
fi

failures=0
# page NAME QUERY: dumps the DOM of UI_BASE/QUERY after its JavaScript ran into
# $UI_TMP/NAME.html, split at each '<' so that each tag starts a line. A query
# is done when the stats line or the error box is filled in; a slow machine may
# miss the virtual-time budget, so an unfinished page is loaded again.
page() {
  local name=$1 query=$2 try
  for try in 1 2 3; do
    local rc=0
    ui_chromium --dump-dom "$UI_BASE/$query" >"$UI_TMP/$name.dom" || rc=$?
    tr '<' '\n' <"$UI_TMP/$name.dom" >"$UI_TMP/$name.html"
    grep -qE 'Load time: |^span class="kind">' "$UI_TMP/$name.html" && return 0
    [ "$rc" = 124 ] && break  # chromium hung: a retry would likely hang too
  done
  echo "FAIL $name: the query in $query did not finish (chromium exit $rc)"
  failures=$((failures + 1))
}
# check NAME PAGE PATTERN COUNT: PAGE has COUNT lines matching the extended regex.
check() {
  local name=$1 file=$UI_TMP/$2.html pattern=$3 want=$4 got
  got=$(grep -cE -- "$pattern" "$file" || true)
  if [ "$got" = "$want" ]; then
    echo "ok   $name"
  else
    echo "FAIL $name: $got lines match '$pattern' in $2, want $want"
    failures=$((failures + 1))
  fi
}

page table '?g0.expr=room_temperature_celsius&g0.tab=1'
check "table has one row per series" table '^tr class="series-row"' 3
check "table shows label values" table '^span class="label-value">"(kitchen|office|garage)"' 3
check "table shows the latest values" table '^td class="value">(21.5|23.25|12.75)$' 3
check "no error box on success" table '^div id="error" role="alert" hidden' 1
page sum '?expr=sum(room_temperature_celsius)'
check "?expr= alias runs an instant query" sum '^td class="value">57.5$' 1
page empty '?expr=no_such_metric'
check "empty result says so" empty '^p id="table-empty" class="empty">Empty query result' 1
check "empty result has no rows" empty '^tr class="series-row"' 0
page graph '?g0.expr=up&g0.tab=0&g0.range_input=1h'
check "graph legend has one item per series" graph '^li class="legend-item"' 2
check "graph stats count series" graph 'Result series: 2' 1
check "graph tab is selected" graph 'id="tab-graph" data-tab="graph" aria-selected="true"' 1
check "graph step comes from the range" graph '^span id="step-info">step 15s' 1
page error '?g0.expr=sum(rate(up%5B5m%5D)&g0.tab=1'
check "parse error shown with its type" error '^span class="kind">bad_data: ' 1
check "parse error hides the table" error '^table id="results" hidden' 1

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed; vigild log:"
  cat "$UI_TMP/vigild.log"
  exit 1
fi
echo "all UI browser checks passed"
