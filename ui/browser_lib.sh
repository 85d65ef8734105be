# Shared by browser_check.sh and browser_test.sh: starts a throwaway vigild
# with a little known data and drives headless Chromium against its UI.
# Sourced, not run. Callers set VIGILD and VIGILCTL, then call ui_setup.
#
# VIGIL_UI_PROXY (optional): a program run as `PROXY UI_PORT VIGILD_HTTP_PORT`
# that serves the UI and forwards /api/ to vigild, for checking the UI against a
# vigild build that does not serve it itself.

UI_PIDS=()
UI_TMP=""

ui_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ui_cleanup() {
  local pid
  for pid in "${UI_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ -n "$UI_TMP" ] && rm -rf "$UI_TMP"
}

# Waits up to 60 s until URL answers at all (any HTTP status).
ui_wait_http() {
  local url=$1 i
  for i in $(seq 1 600); do
    curl -s -o /dev/null --max-time 2 "$url" && return 0
    sleep 0.1
  done
  echo "no answer from $url" >&2
  return 1
}

# Three temperatures (known last values) and two `up` series over the last hour.
ui_write_data() {
  python3 - <<'PY' | "$VIGILCTL" --addr="127.0.0.1:$UI_GRPC_PORT" write >/dev/null
import math, time
now = int(time.time())
last = {"kitchen": 21.5, "office": 23.25, "garage": 12.75}
for i in range(240):
    t = (now - (239 - i) * 15 - 15) * 1000
    for room, base in last.items():
        v = base if i == 239 else base + 3 * math.sin(i / 25 + base)
        print(f'room_temperature_celsius{{room="{room}",site="home"}} {v:.2f} {t}')
    for inst in ("a:9100", "b:9100"):
        down = inst == "b:9100" and 100 < i < 130
        print(f'up{{job="node",instance="{inst}"}} {0 if down else 1} {t}')
PY
}

# Starts vigild on ports the kernel picks (read back from its log), then the
# proxy if any, and writes the data. Sets UI_BASE and UI_GRPC_PORT.
ui_setup() {
  UI_TMP=$(mktemp -d)
  trap ui_cleanup EXIT
  "$VIGILD" --data_dir="$UI_TMP/data" --http_addr=127.0.0.1:0 --grpc_addr=127.0.0.1:0 \
    >"$UI_TMP/vigild.log" 2>&1 &
  local pid=$! line="" i
  UI_PIDS+=($pid)
  for i in $(seq 1 600); do
    line=$(grep -o 'serving HTTP on port [0-9]*, gRPC on port [0-9]*' "$UI_TMP/vigild.log" || true)
    [ -n "$line" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$line" ]; then
    echo "vigild did not start:" >&2
    cat "$UI_TMP/vigild.log" >&2
    return 1
  fi
  local http_port; http_port=$(echo "$line" | awk '{print $5}' | tr -d ,)
  UI_GRPC_PORT=$(echo "$line" | awk '{print $9}')
  UI_BASE="http://127.0.0.1:$http_port"
  if [ -n "${VIGIL_UI_PROXY:-}" ]; then
    local ui_port; ui_port=$(ui_free_port)
    "$VIGIL_UI_PROXY" "$ui_port" "$http_port" >"$UI_TMP/proxy.log" 2>&1 &
    UI_PIDS+=($!)
    UI_BASE="http://127.0.0.1:$ui_port"
    ui_wait_http "$UI_BASE/" || return 1
  fi
  ui_write_data
}

# ui_chromium ARGS... URL: headless Chromium with its own profile, bounded in time.
ui_chromium() {
  local profile; profile=$(mktemp -d -p "$UI_TMP")
  timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size=1280,800 --virtual-time-budget=5000 "$@" 2>/dev/null
}
