"""vigil-bench against a live vigild, over remote-write and gRPC: a small bounded
run stops by itself, reports its figures, and every sample it sent is stored.
It refuses targets that are not loopback.

Usage: vigil_bench_test.py VIGILD VIGIL_BENCH VIGILCTL
"""

import json
import re
import subprocess
import time

import vigiltest
from vigiltest import log

SERIES = 2000
ROUNDS = 5


def bench(binary, *args, timeout=120):
    res = subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout)
    log(f"vigil-bench {' '.join(args)} -> {res.returncode}\n{res.stdout}{res.stderr}")
    return res


def result_line(stdout):
    m = re.search(r"^RESULT (.*)$", stdout, re.M)
    assert m, f"no RESULT line in:\n{stdout}"
    return dict(kv.split("=") for kv in m.group(1).split())


def test(argv):
    vigild_bin, bench_bin, vigilctl_bin = argv
    node = vigiltest.Vigild(vigild_bin)
    node.start()
    common = [f"--series={SERIES}", f"--rounds={ROUNDS}", "--samples_per_request=500",
              "--concurrency=4", "--duration=60s"]

    res = bench(bench_bin, f"--url={node.http_url}/api/v1/write", *common)
    assert res.returncode == 0, "remote-write run failed"
    r = result_line(res.stdout)
    assert int(r["samples"]) == SERIES * ROUNDS and int(r["errors"]) == 0, r
    assert int(r["requests"]) == SERIES * ROUNDS // 500, r  # 4 x 500 series x 5 rounds
    assert float(r["p99_ms"]) >= float(r["p50_ms"]) > 0, r

    # The same series over gRPC with random values: later timestamps, so that
    # they do not conflict with the samples just written.
    now = int(time.time() * 1000)
    start = now - now % 15000 + 30000
    res = bench(bench_bin, f"--grpc={node.grpc_addr}", "--mode=random", "--max_requests=7",
                f"--start_ms={start}", *common)
    assert res.returncode == 0, "gRPC run failed"
    r = result_line(res.stdout)
    assert int(r["requests"]) == 7 and int(r["errors"]) == 0, r

    # Remote-write again, encoding each request just before it is sent.
    res = bench(bench_bin, f"--url={node.http_url}/api/v1/write", "--preencode_mb=0",
                "--max_requests=3", f"--start_ms={start + ROUNDS * 15000}", *common)
    assert res.returncode == 0 and "pre-encoded" not in res.stdout, "on-the-fly run failed"
    r = result_line(res.stdout)
    assert int(r["requests"]) == 3 and int(r["samples"]) == 1500 and int(r["errors"]) == 0, r

    # Every remote-written sample of one host's series is there.
    out = vigiltest.vigilctl(vigilctl_bin, node.grpc_addr, "select", '{instance="host-000003:9100"}',
                             "--start=now-1h", "--end=now+1m", "--format=json")
    assert out.returncode == 0, out.stderr
    series = json.loads(out.stdout)
    assert len(series) > 50, len(series)
    assert all(len(s["samples"]) >= ROUNDS for s in series), [len(s["samples"]) for s in series]

    # Only loopback targets, and bad flags are usage errors.
    for args in (["--url=http://10.1.2.3:9090/api/v1/write"], ["--grpc=example.com:443"],
                 ["--grpc=127.0.0.1.example.com:80"], ["--url=http://127.0.0.256:80/"],
                 ["--url=https://127.0.0.1:1/api/v1/write"], ["--url=x", "--grpc=y"]):
        res = bench(bench_bin, *args, "--max_requests=1", timeout=30)
        assert res.returncode == 2, f"{args} was not refused"
    res = bench(bench_bin, "--url=http://10.1.2.3:9090/api/v1/write", timeout=30)
    assert "loopback" in res.stderr, res.stderr
    assert node.terminate() == 0


if __name__ == "__main__":
    vigiltest.main(test)
