"""SIGTERM stops vigild gracefully (exit 0, promptly, even with requests in
flight) and a restart on the same data directory serves all the data.

Usage: sigterm_test.py VIGILD VIGILCTL
"""

import http.client
import json
import threading
import time

import vigiltest
from vigiltest import log, series_labels

SERIES = 50
ROUNDS = 40


def test(argv):
    vigild_bin, vigilctl_bin = argv
    node = vigiltest.Vigild(vigild_bin)
    node.start()
    now = int(time.time() * 1000)
    base = now - ROUNDS * 15_000

    # Data from both ingest paths: remote-write and gRPC (vigilctl).
    for r in range(ROUNDS):
        series = [(series_labels("sigterm_test", i=str(i)), [(base + r * 15_000, float(r * i))])
                  for i in range(SERIES)]
        status, body = node.remote_write(series)
        assert status == 204, f"write failed: {status} {body[:300]!r}"
    lines = "".join(f'sigterm_grpc{{i="{i}"}} {i}.5 {base}\n' for i in range(10))
    res = vigiltest.vigilctl(vigilctl_bin, node.grpc_addr, "write", stdin=lines)
    assert res.returncode == 0, f"vigilctl write failed: {res.stderr}"
    assert "appended=10" in res.stdout, res.stdout

    # Keep a writer busy while SIGTERM arrives: the stop must still be clean.
    # Its samples are in a separate series; acked ones must survive.
    acked = []
    stop = threading.Event()

    def busy_writer():
        t = base
        while not stop.is_set() and t < now:
            try:
                status, _ = node.remote_write([(series_labels("sigterm_busy"), [(t, 1.0)])], timeout=10)
            except (OSError, http.client.HTTPException):
                return
            if status != 204:
                return
            acked.append(t)
            t += 1000

    writer = threading.Thread(target=busy_writer, daemon=True)
    writer.start()
    vigiltest.wait_until(lambda: len(acked) >= 5 or not writer.is_alive(),
                         vigiltest.Deadline(60), "waiting for the busy writer")
    t0 = time.monotonic()
    code = node.terminate(timeout=60)
    stop.set()
    writer.join(timeout=30)
    log(f"SIGTERM: exit code {code} after {time.monotonic() - t0:.2f}s; busy writer acked {len(acked)}")
    assert code == 0, f"vigild exited {code} on SIGTERM:\n{node.log_tail()}"

    ready_s = node.start()
    log(f"restart to ready: {ready_s:.2f}s")
    got = node.raw_samples("sigterm_test", now + 1000, ROUNDS * 15 + 60)
    assert len(got) == SERIES, f"{len(got)} of {SERIES} series after restart"
    for key, samples in got.items():
        i = int(dict(key)["i"])
        want = [(base + r * 15_000, float(r * i)) for r in range(ROUNDS)]
        assert samples == want, f"series {i}: {samples[:3]}... != {want[:3]}..."
    busy = node.raw_samples("sigterm_busy", now + 1000, (now - base) // 1000 + 60)
    busy_times = {t for samples in busy.values() for t, _ in samples}
    assert set(acked) <= busy_times, f"acked busy samples lost: {sorted(set(acked) - busy_times)[:5]}"

    res = vigiltest.vigilctl(vigilctl_bin, node.grpc_addr, "select", "sigterm_grpc",
                             f"--start={base}", f"--end={base}", "--format=json")
    assert res.returncode == 0, res.stderr
    grpc_series = json.loads(res.stdout)
    assert len(grpc_series) == 10, res.stdout
    for s in grpc_series:
        assert s["samples"] == [[base, f"{int(s['labels']['i'])}.5"]], s

    res = vigiltest.vigilctl(vigilctl_bin, node.grpc_addr, "status", "--format=json")
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    log(f"status after restart: {status}")
    assert status["series"] >= SERIES + 11, status
    assert status["recovery_ms"] >= 0, status
    assert node.terminate() == 0


if __name__ == "__main__":
    vigiltest.main(test)
