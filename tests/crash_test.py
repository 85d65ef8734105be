"""Crash test: kill -9 vigild under concurrent remote-write load, restart it on
the same data directory, and check that every sample it acknowledged is there.

Usage: crash_test.py VIGILD VIGILCTL

Writers each own a few series and send rounds of samples with increasing
timestamps: four threads through remote-write (a round is acked by a 204) and
one through gRPC Ingest.Write (vigilctl write, acked by its exit status 0). The node is killed while
all writers are still sending, three times (each time after it has recovered
and taken more load, which also resends unacked rounds: idempotent repeats).
After each restart every acked sample must be readable, through gRPC
Query.Select (vigilctl) and through /api/v1/query, with exactly the value sent,
and the restart must report its recovery time.
"""

import http.client
import json
import subprocess
import threading
import time

import vigiltest
from vigiltest import Deadline, log

WRITERS = 4
SERIES_PER_WRITER = 10
SAMPLES_PER_ROUND = 5      # per series, 1 s apart
MAX_ROUNDS = 1500          # per writer: bounds the load by count
ACKED_ROUNDS_BEFORE_KILL = 200 # in total, per crash cycle
CYCLES = 3


def value(w, j, t):
    """The value writer w sends for its series j at time t: exact in float64."""
    return w * 1e6 + j * 1e3 + (t % 100000) / 8.0


class Rounds:
    """The rounds one writer sends and how far they are acked."""

    def __init__(self, w, base_ms, first_round):
        self.w, self.base_ms = w, base_ms
        self.next_round = first_round
        self.acked = first_round - 1  # highest round acked, all below it acked too
        self.failure = None

    def times(self, r):
        return [self.base_ms + (r * SAMPLES_PER_ROUND + k) * 1000 for k in range(SAMPLES_PER_ROUND)]


class Writer(Rounds, threading.Thread):
    """Remote-write, from its own thread."""

    def __init__(self, node, w, base_ms, first_round, deadline):
        Rounds.__init__(self, w, base_ms, first_round)
        threading.Thread.__init__(self, daemon=True)
        self.node, self.deadline = node, deadline
        self.stop = False

    def run(self):
        while not self.stop and self.next_round < MAX_ROUNDS and not self.deadline.expired():
            r = self.next_round
            series = [(vigiltest.series_labels("crash_test", writer=str(self.w), series=str(j)),
                       [(t, value(self.w, j, t)) for t in self.times(r)])
                      for j in range(SERIES_PER_WRITER)]
            try:
                status, body = self.node.remote_write(series, timeout=20)
            except (OSError, http.client.HTTPException):
                return  # the node is gone: this round is not acked
            if status != 204:
                self.failure = f"writer {self.w} round {r}: HTTP {status}: {body[:300]!r}"
                return
            self.acked = r
            self.next_round = r + 1


class GrpcWriter(Rounds):
    """gRPC Ingest.Write through vigilctl, one process at a time, driven from the
    main thread by poll() (processes are only spawned from the main thread)."""

    def __init__(self, vigilctl_bin, node, w, base_ms, first_round):
        super().__init__(w, base_ms, first_round)
        self.vigilctl_bin, self.node = vigilctl_bin, node
        self.proc = None

    def poll(self):
        """Collects a finished vigilctl and starts the next round."""
        if self.proc is not None:
            if self.proc.poll() is None:
                return
            self._collect(node_alive=True)
        if self.next_round < MAX_ROUNDS and self.failure is None:
            lines = "".join(
                f'crash_test{{series="{j}",writer="{self.w}"}} {value(self.w, j, t)!r} {t}\n'
                for j in range(SERIES_PER_WRITER) for t in self.times(self.next_round))
            self.proc = vigiltest.spawn(
                [self.vigilctl_bin, f"--addr={self.node.grpc_addr}", "--timeout=20s", "write"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            self.proc.stdin.write(lines)
            self.proc.stdin.close()

    def finish_after_kill(self):
        if self.proc is not None:
            self.proc.wait(timeout=60)
            self._collect(node_alive=False)

    def _collect(self, node_alive):
        out, err = self.proc.stdout.read(), self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        if self.proc.returncode == 0:
            self.acked = self.next_round
            self.next_round += 1
        elif node_alive:
            self.failure = f"gRPC writer round {self.next_round}: {out} {err}"
        self.proc = None


def run_load_and_kill(node, vigilctl_bin, writers_from, base_ms, deadline):
    """Starts writers, kills the node -9 mid-load; returns the writers."""
    writers = [Writer(node, w, base_ms, writers_from[w], deadline) for w in range(WRITERS)]
    grpc_writer = GrpcWriter(vigilctl_bin, node, WRITERS, base_ms, writers_from[WRITERS])
    for wr in writers:
        wr.start()
    start_acked = sum(wr.acked for wr in writers)
    start_grpc = grpc_writer.acked
    while not (sum(wr.acked for wr in writers) - start_acked >= ACKED_ROUNDS_BEFORE_KILL
               and grpc_writer.acked - start_grpc >= 3):
        if grpc_writer.failure or any(wr.failure or not wr.is_alive() for wr in writers):
            break
        deadline.check("waiting for write load")
        grpc_writer.poll()
        time.sleep(0.01)
    running = all(wr.is_alive() for wr in writers) and grpc_writer.failure is None
    node.kill9()
    grpc_writer.finish_after_kill()
    for wr in writers:
        wr.join(timeout=max(1, deadline.left()))
        assert not wr.is_alive(), "writer did not stop after the kill"
    for wr in writers + [grpc_writer]:
        assert wr.failure is None, wr.failure
    assert running, "a writer stopped before the kill: the kill was not under load"
    writers.append(grpc_writer)
    log("killed -9 under load; acked rounds per writer (last: gRPC):", [wr.acked for wr in writers])
    return writers


def check_acked(node, vigilctl_bin, writers, base_ms, end_ms):
    """Every acked sample is readable with its value, by Select and by HTTP."""
    res = vigiltest.vigilctl(vigilctl_bin, node.grpc_addr, "select", '{__name__="crash_test"}',
                             f"--start={base_ms}", f"--end={end_ms}", "--format=json")
    assert res.returncode == 0, f"vigilctl select failed: {res.stderr}"
    got = {}
    for s in json.loads(res.stdout):
        key = (int(s["labels"]["writer"]), int(s["labels"]["series"]))
        got[key] = {t: float(v) for t, v in s["samples"]}
    http_got = node.raw_samples('crash_test{writer="0"}', end_ms, (end_ms - base_ms) // 1000 + 1)
    total = 0
    for wr in writers:
        acked_times = [t for r in range(wr.acked + 1) for t in wr.times(r)]
        for j in range(SERIES_PER_WRITER):
            samples = got.get((wr.w, j), {})
            for t in acked_times:
                assert t in samples, f"acked sample lost: writer {wr.w} series {j} t={t}"
                assert samples[t] == value(wr.w, j, t), f"wrong value at writer {wr.w} series {j} t={t}"
            # Unacked rounds may or may not have been stored, but never wrongly.
            for t, v in samples.items():
                assert v == value(wr.w, j, t), f"unexpected value at writer {wr.w} series {j} t={t}"
            total += len(acked_times)
            if wr.w == 0:
                key = tuple(sorted({"__name__": "crash_test", "writer": "0", "series": str(j)}.items()))
                http_times = {t for t, _ in http_got.get(key, [])}
                missing = [t for t in acked_times if t not in http_times]
                assert not missing, f"/api/v1/query misses acked samples of series {j}: {missing[:5]}"
    log(f"all {total} acked samples present after restart")


def check_recovery_reported(node, vigilctl_bin):
    res = vigiltest.vigilctl(vigilctl_bin, node.grpc_addr, "status", "--format=json")
    assert res.returncode == 0, f"vigilctl status failed: {res.stderr}"
    status = json.loads(res.stdout)
    assert "recovery_ms" in status and status["recovery_ms"] >= 0, status
    assert status["samples_appended_total"] >= 0, status
    lines = [l for l in node.log_text().splitlines() if "recover" in l.lower()]
    assert lines, "vigild's log does not mention recovery"
    log(f"restart reports recovery_ms={status['recovery_ms']}; log: {lines[-1].strip()}")


def test(argv):
    vigild_bin, vigilctl_bin = argv
    deadline = Deadline(240)
    node = vigiltest.Vigild(vigild_bin)
    node.start()
    now_ms = int(time.time() * 1000)
    base_ms = now_ms - 3 * 3600 * 1000  # MAX_ROUNDS * 5 s stays behind "now"
    end_ms = base_ms + MAX_ROUNDS * SAMPLES_PER_ROUND * 1000
    first = [0] * (WRITERS + 1)
    for cycle in range(CYCLES):
        writers = run_load_and_kill(node, vigilctl_bin, first, base_ms, deadline)
        ready_s = node.start()
        log(f"cycle {cycle}: restart to ready in {ready_s:.2f}s")
        check_acked(node, vigilctl_bin, writers, base_ms, end_ms)
        check_recovery_reported(node, vigilctl_bin)
        # The next cycle resends from the first unacked round on: repeats of
        # samples stored before the crash must be accepted.
        first = [wr.acked + 1 for wr in writers]
    assert node.terminate() == 0


if __name__ == "__main__":
    vigiltest.main(test)
