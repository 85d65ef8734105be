"""vigilctl against a live vigild: write (stdin and --generate), select, query,
query_range and status, and its errors and exit codes.

Usage: vigilctl_test.py VIGILD VIGILCTL
"""

import json
import time

import vigiltest
from vigiltest import log


def test(argv):
    vigild_bin, vigilctl_bin = argv
    node = vigiltest.Vigild(vigild_bin)
    node.start()

    def ctl(*args, stdin=None, addr=None):
        res = vigiltest.vigilctl(vigilctl_bin, addr or node.grpc_addr, *args, stdin=stdin)
        log(f"vigilctl {' '.join(args)} -> {res.returncode}")
        return res

    def ok(*args, stdin=None):
        res = ctl(*args, stdin=stdin)
        assert res.returncode == 0, f"vigilctl {args} failed ({res.returncode}): {res.stderr}"
        return res.stdout

    now = int(time.time() * 1000)
    t = now - 120_000
    lines = (
        "# HELP ctl_requests_total Requests.\n"
        "# TYPE ctl_requests_total counter\n"
        f'ctl_requests_total{{code="200",method="get"}} 10 {t}\n'
        f'ctl_requests_total{{code="200",method="get"}} 25 {t + 15000}\n'
        f'ctl_requests_total{{code="500",method="get"}} 1 {t}\n'
        "\n"
        'ctl_up{job="ctl"} 1\n'  # no timestamp: now
    )
    out = ok("write", stdin=lines)
    assert "appended=4 duplicate=0 rejected=0" in out, out
    # Writing the same samples again is idempotent.
    out = ok("write", stdin=lines.replace('ctl_up{job="ctl"} 1\n', ""))
    assert "appended=0 duplicate=3 rejected=0" in out, out

    # select, text and JSON.
    out = ok("select", 'ctl_requests_total{code=~"2..",method="get"}', f"--start={t}",
             f"--end={t + 15000}")
    assert out.splitlines() == [
        'ctl_requests_total{code="200", method="get"}', f"  {t} 10", f"  {t + 15000} 25"], out
    series = json.loads(ok("select", '{__name__=~"ctl_.*"}', f"--start={t}", "--end=now+1m",
                           "--format=json"))
    names = sorted((s["labels"]["__name__"], s["labels"].get("code", "")) for s in series)
    assert names == [("ctl_requests_total", "200"), ("ctl_requests_total", "500"), ("ctl_up", "")], names
    up = [s for s in series if s["labels"]["__name__"] == "ctl_up"][0]
    assert len(up["samples"]) == 1 and abs(up["samples"][0][0] - now) < 600_000, up

    # Generated node_exporter-like series.
    out = ok("write", "--generate", "--series=30", "--samples=4")
    assert "appended=120 duplicate=0 rejected=0" in out, out
    gen = json.loads(ok("select", '{job="node"}', "--start=now-10m", "--end=now+1m", "--format=json"))
    assert len(gen) == 30 and all(len(s["samples"]) == 4 for s in gen), \
        [(s["labels"], len(s["samples"])) for s in gen]

    # PromQL through the Query service.
    q = json.loads(ok("query", "sum(ctl_requests_total)", f"--time={t + 15000}", "--format=json"))
    assert q["resultType"] == "vector" and len(q["result"]) == 1, q
    assert q["result"][0]["samples"][0][1] == "26", q
    qr = json.loads(ok("query_range", 'ctl_requests_total{code="200"}', f"--start={t}",
                       f"--end={t + 30000}", "--step=15s", "--format=json"))
    assert qr["resultType"] == "matrix", qr
    assert [v for _, v in qr["result"][0]["samples"]] == ["10", "25", "25"], qr

    status = json.loads(ok("status", "--format=json"))
    assert status["series"] >= 33 and status["uptime_ms"] >= 0, status
    assert "series: " in ok("status")

    # Failures: clear message, non-zero exit, nothing half-written.
    res = ctl("write", stdin=f"ctl_bad 1 {t}\nctl_bad{{a=\"1\"}} 2 {t}\nctl_bad{{a=}} 3\n")
    assert res.returncode == 1 and "stdin line 3" in res.stderr, res.stderr
    assert json.loads(ok("select", "ctl_bad", "--format=json")) == [], "bad write half-applied"
    res = ctl("write", stdin=f"ctl_future 1 {now + 86_400_000}\n")
    assert res.returncode == 1 and "rejected" in res.stderr, (res.stdout, res.stderr)
    res = ctl("select", "ctl_requests_total{code=~\"(\"}")
    assert res.returncode == 1 and "vigilctl:" in res.stderr, res.stderr
    res = ctl("frobnicate")
    assert res.returncode != 0 and "unknown command" in res.stderr, res.stderr
    closed = f"127.0.0.1:{vigiltest.free_port()}"
    res = ctl("status", "--timeout=3s", addr=closed)
    assert res.returncode == 1 and "Admin.Status" in res.stderr, res.stderr
    assert node.terminate() == 0


if __name__ == "__main__":
    vigiltest.main(test)
