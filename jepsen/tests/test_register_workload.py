"""The register workload's client, end to end against in-process HTTP servers.

These run the real client loop and the linearizability checker against a
small register server on loopback speaking the API in harness/workloads.py
(vigild's is in cluster/control_http.cc; jepsen/smoke.sh runs against it):
a correct one (one shared store: linearizable) and a broken one whose nodes
answer reads from a stale copy, which the checker must catch.
"""

import http.server
import os
import tempfile
import threading
import unittest

from harness import history, workloads
from tests import fake_http


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.regs = {}  # key -> (value, version)
        self.snapshot = {}  # what a stale node serves reads from

    def read(self, key, stale):
        with self.lock:
            return (self.snapshot if stale else self.regs).get(key, (None, 0))

    def write(self, key, value):
        with self.lock:
            old = self.regs.get(key, (None, 0))
            self.snapshot[key] = old  # a stale replica lags one write behind
            self.regs[key] = (value, old[1] + 1)
            return old[1] + 1

    def cas(self, key, expected, value):
        with self.lock:
            cur = self.regs.get(key, (None, 0))
            if cur[0] is None or cur[0] != expected:
                return False, cur
            self.snapshot[key] = cur
            self.regs[key] = (value, cur[1] + 1)
            return True, self.regs[key]


def make_handler(store, stale):
    class Handler(fake_http.RegisterHandler):
        def do_GET(self):
            key, _ = self._key()
            if key is None:
                return self._reply(404, {})
            value, version = store.read(key, stale)
            self._reply(200, {"value": value, "version": version})

        def do_PUT(self):
            key, _ = self._key()
            self._reply(200, {"version": store.write(key, self._body()["value"])})

        def do_POST(self):
            key, is_cas = self._key()
            body = self._body()
            ok, (value, version) = store.cas(key, body["expected_value"], body["value"])
            if ok:
                return self._reply(200, {"ok": True, "version": version})
            self._reply(409, {"ok": False, "value": value, "version": version})
    return Handler


class FakeCfg:
    seed = 5
    max_ops_per_client = 150
    op_timeout = 5.0
    op_interval = 0.0
    retry_interval = 0.0
    check_timeout = 60.0


class FakeRun:
    """What RegisterWorkload uses of a Run, with nodes on loopback."""

    def __init__(self, ports, path):
        self.cfg = FakeCfg()
        self.tag = "vjtest0"
        self.nodes = {i + 1: fake_http.FakeNode(p) for i, p in enumerate(ports)}
        self.history = history.History(path)
        self.stopping = threading.Event()

    def now(self):
        return self.history.now()


class RegisterWorkloadTest(unittest.TestCase):

    def run_workload(self, stale_nodes):
        store = Store()
        ports = fake_http.serve(self, [make_handler(store, i in stale_nodes) for i in range(3)])
        run = FakeRun(ports, os.path.join(tempfile.mkdtemp(), "h.jsonl"))
        wl = workloads.RegisterWorkload(run)
        wl.setup()
        run.history.add(type="info", process="nemesis", f="start", value={})  # not a client op
        deadline = run.now() + 60  # bounded by the op budget long before this
        threads = [threading.Thread(target=wl.client_loop, args=(p, deadline)) for p in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        run.history.close()
        return wl.check(), run.history.events

    def test_linearizable_store_passes(self):
        result, events = self.run_workload(stale_nodes=())
        self.assertIs(result["valid"], True, result)
        self.assertEqual(result["ops"], 4 * FakeCfg.max_ops_per_client)
        self.assertTrue(any(e["type"] == "ok" and e["f"] == "cas" and e["value"]["ok"]
                            for e in events))

    def test_stale_reads_are_caught(self):
        result, _ = self.run_workload(stale_nodes=(1, 2))
        self.assertIs(result["valid"], False, result)
        self.assertTrue(result["failures"])

    def test_missing_api_is_unsupported(self):
        run = FakeRun(fake_http.serve(self, [NotFound]),
                      os.path.join(tempfile.mkdtemp(), "h.jsonl"))
        self.addCleanup(run.history.close)
        with self.assertRaises(workloads.Unsupported):
            workloads.RegisterWorkload(run).setup()


    def test_a_starting_control_plane_is_a_failure_other_503s_unknown(self):
        run = FakeRun(fake_http.serve(self, [Unavailable]),
                      os.path.join(tempfile.mkdtemp(), "h.jsonl"))
        self.addCleanup(run.history.close)
        wl = workloads.RegisterWorkload(run)
        kind, out = wl.op(0, 1, "write", "starting", {"value": "a"})
        self.assertEqual((kind, out), ("fail", {}))  # refused before anything was proposed
        kind, _ = wl.op(0, 1, "write", "busy", {"value": "b"})
        self.assertEqual(kind, "info")


class Unavailable(fake_http.RegisterHandler):
    """503 as vigild answers while its control plane starts, or without a leader."""

    def do_PUT(self):
        key, _ = self._key()
        msg = "control plane starting" if key == "starting" else "no raft leader"
        self._reply(503, {"error": msg})


class NotFound(http.server.BaseHTTPRequestHandler):
    """Answers like vigild's HTTP server does for a path it does not serve."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = ("404 page not found: %s\n" % self.path).encode()
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    unittest.main()
