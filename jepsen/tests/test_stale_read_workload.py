"""The stale-read scenario's driver against an in-process fake cluster.

The fake: three HTTP register servers on loopback sharing one linearizable
store, a leader (node 1, then the lowest node of the majority once the leader is
isolated) and a term. An isolated node either refuses reads (503, as vigild's
ReadIndex barrier does without a quorum) or, in the broken mode, answers them
from its state at the moment it was cut off: the checker must pass the first
and catch the second. The real scenario against vigild runs in jepsen/smoke.sh.
"""

import os
import tempfile
import threading
import unittest

from harness import history, nemesis, workloads
from tests import fake_http


class FakeCluster:
    def __init__(self, stale_when_isolated):
        self.lock = threading.Lock()
        self.stale = stale_when_isolated
        self.regs = {}  # key -> (value, version)
        self.leader, self.term = 1, 1
        self.isolated = None
        self.isolated_view = {}  # what the isolated node holds

    def apply_grudge(self, grudge):
        with self.lock:
            (victim,) = [i for i, cut in grudge.items() if len(cut) == len(grudge) - 1]
            self.isolated = victim
            self.isolated_view = dict(self.regs)
            if victim == self.leader:
                self.leader = min(i for i in grudge if i != victim)
                self.term += 1

    def heal(self):
        with self.lock:
            self.isolated = None

    def status(self, node):
        with self.lock:
            if node == self.isolated:  # still believes in its old term
                return {"leader": node, "term": self.term - 1, "bootstrapped": True,
                        "members": [1, 2, 3]}
            return {"leader": self.leader, "term": self.term, "bootstrapped": True,
                    "members": [1, 2, 3]}

    def read(self, node, key):
        with self.lock:
            if node == self.isolated:
                if not self.stale:
                    return None
                return self.isolated_view.get(key, (None, 0))
            return self.regs.get(key, (None, 0))

    def write(self, node, key, value):
        with self.lock:
            if node == self.isolated:
                return None
            version = self.regs.get(key, (None, 0))[1] + 1
            self.regs[key] = (value, version)
            return version


def make_handler(cluster, node):
    class Handler(fake_http.RegisterHandler):
        def do_GET(self):
            got = cluster.read(node, self._key()[0])
            if got is None:
                return self._reply(503, {"error": "read barrier: no quorum"})
            self._reply(200, {"value": got[0], "version": got[1]})

        def do_PUT(self):
            version = cluster.write(node, self._key()[0], self._body()["value"])
            if version is None:
                return self._reply(503, {"error": "no leader"})
            self._reply(200, {"version": version})
    return Handler


class FakeCfg:
    seed = 3
    nodes = 3
    probe_rounds = 3
    op_timeout = 5.0
    cluster_timeout = 10.0
    check_timeout = 60.0


class FakeRun:
    """What StaleReadWorkload uses of a Run (see harness/runner.py)."""

    def __init__(self, cluster, ports, path):
        self.cfg = FakeCfg()
        self.tag = "vjtest1"
        self.cluster = cluster
        self.clustered = True
        self.nodes = {i + 1: fake_http.FakeNode(p) for i, p in enumerate(ports)}
        self.history = history.History(path)
        self.stopping = threading.Event()
        self.notes, self.errors = [], []
        self.net = cluster
        self.faketime = None
        self.nemesis = nemesis.make(self, "none", 1)  # records the windows

    def now(self):
        return self.history.now()

    def cluster_status(self, ids=None):
        return {i: self.cluster.status(i) for i in (ids or sorted(self.nodes))}

    def find_leader(self, ids=None):
        best = max(self.cluster_status(ids).values(), key=lambda d: d["term"])
        return best["leader"]

    def wait_cluster(self, timeout, ids=None):
        return {"leader": self.cluster.leader, "term": self.cluster.term}


class StaleReadWorkloadTest(unittest.TestCase):

    def run_scenario(self, stale):
        cluster = FakeCluster(stale)
        ports = fake_http.serve(self, [make_handler(cluster, i) for i in (1, 2, 3)])
        run = FakeRun(cluster, ports, os.path.join(tempfile.mkdtemp(), "h.jsonl"))
        wl = workloads.StaleReadWorkload(run)
        wl.setup()
        wl.client_loop(0, deadline=600)
        wl.client_loop(1, deadline=600)  # only process 0 drives: this returns at once
        run.history.close()
        self.assertEqual(run.errors, [])
        self.assertIsNone(cluster.isolated, "healed at the end of every round")
        self.assertTrue(all(w[1] is not None for w in run.nemesis.windows))
        return wl.check(), run

    def test_refused_reads_from_the_isolated_leader_are_valid(self):
        result, run = self.run_scenario(stale=False)
        self.assertIs(result["valid"], True, result)
        self.assertEqual(len(run.nemesis.windows), FakeCfg.probe_rounds)
        self.assertGreater(result["info_ops"], 0)  # the refused reads: unknown
        self.assertIn("answered no read", run.notes[-1])

    def test_stale_read_from_the_isolated_leader_is_caught(self):
        result, run = self.run_scenario(stale=True)
        self.assertIs(result["valid"], False, result)
        self.assertEqual(len(run.nemesis.windows), 1)  # stops after the first answer
        stuck = result["failures"][0]["first_unlinearizable"]
        self.assertTrue(any(op["input"]["f"] == "read" and op["output"]["value"] == "r1-before"
                            for op in stuck), stuck)

    def test_needs_a_cluster(self):
        run = FakeRun(FakeCluster(False), [1, 2, 3], os.path.join(tempfile.mkdtemp(), "h.jsonl"))
        self.addCleanup(run.history.close)
        run.clustered = False
        with self.assertRaises(workloads.Unsupported):
            workloads.StaleReadWorkload(run).setup()


if __name__ == "__main__":
    unittest.main()
