"""Rebalance test: add a 4th node to a loaded 3-node cluster, then remove one, under writes.

Usage: e2e_rebalance_test.py VIGILD

Three vigild nodes bootstrap with --peers (RF=3, 16 shards). A history of
samples is written first, then a writer thread keeps sending rounds of samples
(remote-write, rotating over the nodes) and records every acked round. Node 4
starts empty with --join=<node 1's gRPC address>: it asks the cluster to add
it, is promoted, and the leader streams it its shards (shard streaming, not
anti-entropy: anti-entropy runs only once an hour here). Then a node that is
not the Raft leader is removed (its shards stream to the others, it leaves the
member list and is killed). While shards move, every node answering queries
must return every sample acked so far (no query gap). At the end every
remaining node must answer every acked sample, and the old owners must have
dropped the shards they gave away. Last, with two of the three remaining nodes
killed, a query fails by default and answers with a warning with
partial_response=true.
"""

import http.client
import json
import threading
import time

import cluster_test
import vigiltest
from vigiltest import Deadline, log

NAME = "rebalance_test"
HISTORY_SERIES = 400
HISTORY_SAMPLES = 30
LIVE_SERIES = 20
SHARDS = 16


class Node(cluster_test.Node):
    """A vigild with fixed ports (vigiltest.FixedPortVigild.start), so its peers can find it."""

    def __init__(self, binary, node_id, ports, cluster_args):  # pylint: disable=super-init-not-called
        vigiltest.Vigild.__init__(self, binary, extra_args=[
            f"--node_id={node_id}", f"--num_shards={SHARDS}", "--anti_entropy_interval=1h",
            "--write_timeout=5s", *cluster_args])
        self.node_id = node_id
        self.http_port, self.grpc_port = ports

    def status(self):
        status, body = vigiltest.http("GET", self.http_url + "/api/v1/status/cluster", timeout=10)
        if status != 200:
            raise AssertionError(f"node {self.node_id}: cluster status {status}: {body[:300]!r}")
        return json.loads(body)


class Writer(threading.Thread):
    """Sends rounds of LIVE_SERIES samples, rotating over `targets`; records acks."""

    def __init__(self, base_ms):
        super().__init__(daemon=True)
        self.base_ms = base_ms
        self.lock = threading.Lock()
        self.targets = []
        self.acked = []  # (series, t_ms, value)
        self.failed_rounds = 0
        self.rounds = 0
        self.stop = threading.Event()

    def set_targets(self, nodes):
        with self.lock:
            self.targets = list(nodes)

    def snapshot(self):
        with self.lock:
            return list(self.acked)

    def run(self):
        r = 0
        while not self.stop.is_set():
            with self.lock:
                node = self.targets[r % len(self.targets)]
            t = self.base_ms + r * 100
            series = [(vigiltest.series_labels(NAME, series=f"live{j}"), [(t, r * 100.0 + j)])
                      for j in range(LIVE_SERIES)]
            try:
                status, _ = node.remote_write(series, timeout=20)
            except (OSError, http.client.HTTPException):
                status = -1
            with self.lock:
                self.rounds += 1
                if status == 204:
                    self.acked += [(f"live{j}", t, r * 100.0 + j) for j in range(LIVE_SERIES)]
                else:
                    self.failed_rounds += 1
            r += 1
            time.sleep(0.03)


def read_all(node, end_ms, window_s):
    """{(series, t_ms): value} of every raw sample of NAME in (end - window, end]."""
    status, doc = node.api("/api/v1/query", query=f"{NAME}[{window_s}s]",
                           time=f"{end_ms / 1000:.3f}")
    if status != 200 or doc.get("status") != "success":
        raise AssertionError(f"node {node.node_id}: query failed: {status} {str(doc)[:300]}")
    out = {}
    for s in doc["data"]["result"]:
        for t, v in s["values"]:
            out[(s["metric"]["series"], round(float(t) * 1000))] = float(v)
    return out


def missing_from(node, acked, end_ms, window_s):
    got = read_all(node, end_ms, window_s)
    return [(j, t) for j, t, v in acked if got.get((j, t)) != v]


class GapChecker:
    """Reads every acked sample back from one node after another while shards move."""

    def __init__(self, writer, history, end_ms, window_s):
        self.writer, self.history = writer, history
        self.end_ms, self.window_s = end_ms, window_s
        self.checks = 0
        self.gaps = []
        self.i = 0

    def check(self, nodes):
        node = nodes[self.i % len(nodes)]
        self.i += 1
        acked = self.history + self.writer.snapshot()
        try:
            missing = missing_from(node, acked, self.end_ms, self.window_s)
        except (AssertionError, OSError, http.client.HTTPException) as e:
            self.gaps.append(f"node {node.node_id}: {e}")
            return
        self.checks += 1
        if missing:
            self.gaps.append(f"node {node.node_id} lacked {len(missing)} of {len(acked)} acked "
                             f"samples, e.g. {missing[:3]}")


def settled(status, want_members):
    """True once membership is `want_members`, all active, and no shard is moving."""
    members = {m["id"]: m["state"] for m in status["members"]}
    return (set(members) == set(want_members) and all(s == "active" for s in members.values())
            and status["moving_shards"] == 0)


def wait_settled(node, want, deadline, checker, live, what):
    """Waits until `node` reports `want` settled with stable epochs; checks reads meanwhile."""
    last_epochs = None
    while True:
        checker.check(live)
        st = node.status()
        epochs = [s["epoch"] for s in st["shards"]]
        if settled(st, want) and epochs == last_epochs:
            return st
        last_epochs = epochs if settled(st, want) else None
        deadline.check(what)
        time.sleep(1.0)


def holders(status, node_id):
    return [s["shard"] for s in status["shards"] if node_id in s["replicas"]]


def streamed(nodes):
    """Totals of the rebalancing streams over every node (the leaders ran them)."""
    total = {"bytes": 0, "series": 0, "samples": 0, "done": 0, "failed": 0}
    for n in nodes:
        if not n.alive():
            continue
        s = n.status().get("streams", {})
        for k in total:
            total[k] += s.get(k, 0)
    return total


def test(argv):
    vigild = argv[0]
    deadline = Deadline(170)
    ports = {i: (vigiltest.free_port(), vigiltest.free_port()) for i in (1, 2, 3, 4)}
    peers = ",".join(f"{i}=127.0.0.1:{g}/127.0.0.1:{h}" for i, (h, g) in ports.items() if i < 4)
    nodes = {i: Node(vigild, i, ports[i], [f"--peers={peers}"]) for i in (1, 2, 3)}
    for n in nodes.values():
        n.start()
    log("3 nodes ready:", peers)
    vigiltest.wait_accepting_writes(nodes.values(), deadline, NAME + "_probe")

    # History: older samples every shard holds before node 4 exists.
    now_s = int(time.time())
    hist_base = (now_s - 1200) * 1000
    history = []
    for k in range(0, HISTORY_SERIES, 100):
        series = []
        for j in range(k, k + 100):
            samples = [(hist_base + i * 10_000, float(j * 1000 + i)) for i in range(HISTORY_SAMPLES)]
            series.append((vigiltest.series_labels(NAME, series=f"h{j}"), samples))
            history += [(f"h{j}", t, v) for t, v in samples]
        status, body = nodes[1 + k // 100 % 3].remote_write(series, timeout=30)
        if status != 204:
            raise AssertionError(f"history write: HTTP {status}: {body[:300]!r}")
    log(f"{len(history)} history samples acked")

    writer = Writer((now_s - 600) * 1000)
    writer.set_targets([nodes[1], nodes[2], nodes[3]])
    writer.start()
    end_ms = (now_s + 60) * 1000  # past every sample the test writes
    window_s = 1500
    checker = GapChecker(writer, history, end_ms, window_s)
    try:
        # Add node 4: it starts empty and joins through node 1.
        nodes[4] = Node(vigild, 4, ports[4], [f"--join={nodes[1].grpc_addr}"])
        t_add = time.monotonic()
        nodes[4].start()
        log("node 4 started with --join; waiting for the rebalance")
        st = wait_settled(nodes[1], {1, 2, 3, 4}, deadline, checker,
                          [nodes[1], nodes[2], nodes[3]], "adding node 4")
        add_s = time.monotonic() - t_add
        got4 = holders(st, 4)
        log(f"node 4 holds {len(got4)} of {SHARDS} shards {add_s:.1f}s after it started; "
            f"streams so far: {streamed(nodes.values())}")
        if not got4:
            raise AssertionError("node 4 took no shard")
        writer.set_targets([nodes[1], nodes[2], nodes[3], nodes[4]])
        checker.check([nodes[4]])
        # Node 4 got its shards' data, and the old owners dropped what they gave
        # away (after the drop delay): every series is stored 3 times in all.
        all_series = HISTORY_SERIES + LIVE_SERIES + 1  # + the probe

        def series_stored():
            return [int(nodes[i].metric("vigil_series") or 0) for i in (1, 2, 3, 4)]

        vigiltest.wait_until(lambda: sum(series_stored()) <= 3 * all_series, deadline,
                             "the old owners dropping the shards they gave away", interval=0.5)
        log(f"series per node after the drops: {series_stored()} (3 x {all_series} in all)")
        if series_stored()[3] == 0 or sum(series_stored()) != 3 * all_series:
            raise AssertionError(f"series per node: {series_stored()}")

        # Remove a node that does not lead the control plane; stop writing through it first.
        leader = st["leader"]
        gone = next(i for i in (3, 2, 1) if i != leader)
        keep = [nodes[i] for i in (1, 2, 3, 4) if i != gone]
        writer.set_targets(keep)
        time.sleep(0.5)  # the writer's round in flight through it finishes
        status, body = vigiltest.http(
            "POST", keep[0].http_url + "/api/v1/admin/cluster/remove-node",
            json.dumps({"id": gone}).encode(), {"Content-Type": "application/json"})
        if status != 200:
            raise AssertionError(f"remove-node {gone}: HTTP {status}: {body[:300]!r}")
        t_remove = time.monotonic()
        log(f"removing node {gone} (leader is {leader})")
        st = wait_settled(keep[0], {i for i in (1, 2, 3, 4) if i != gone}, deadline, checker,
                          keep, f"removing node {gone}")
        log(f"node {gone} removed {time.monotonic() - t_remove:.1f}s after remove-node")
        nodes[gone].kill9()
        for _ in range(3):
            checker.check(keep)
    finally:
        writer.stop.set()
        writer.join(timeout=30)

    acked = history + writer.snapshot()
    log(f"writer: {writer.rounds} rounds, {writer.failed_rounds} not acked; "
        f"{len(acked)} samples acked in all; {checker.checks} reads during the moves")
    if checker.gaps:
        raise AssertionError(f"{len(checker.gaps)} reads during the moves lacked acked samples: "
                             f"{checker.gaps[:3]}")
    if checker.checks < 3:
        raise AssertionError(f"only {checker.checks} reads during the moves")
    for n in keep:
        missing = missing_from(n, acked, end_ms, window_s)
        if missing:
            raise AssertionError(f"node {n.node_id} lacks {len(missing)} of {len(acked)} acked "
                                 f"samples, e.g. {missing[:5]}")
        log(f"node {n.node_id}: all {len(acked)} acked samples present")
    totals = streamed(keep)
    log(f"rebalancing streams (surviving nodes): {totals}")
    if totals["done"] == 0 or totals["bytes"] == 0:
        raise AssertionError(f"no shard was streamed: {totals}")

    # partial_response per request: with two of three nodes gone no shard has a
    # read quorum; by default the query fails, with partial_response=true the
    # survivor answers what it has, with a warning.
    survivor = keep[-1]
    for n in keep[:-1]:
        n.kill9()
    query = {"query": f"count_over_time({NAME}[{window_s}s])", "time": f"{end_ms / 1000:.3f}"}
    status, doc = survivor.api("/api/v1/query", **query)
    if status == 200:
        raise AssertionError(f"query without a quorum succeeded: {str(doc)[:300]}")
    status, doc = survivor.api("/api/v1/query", partial_response="true", **query)
    if status != 200 or not doc.get("warnings") or not doc["data"]["result"]:
        raise AssertionError(f"partial_response=true: {status} {str(doc)[:300]}")
    log(f"partial_response=true on node {survivor.node_id}: {len(doc['data']['result'])} series, "
        f"warning: {doc['warnings'][0][:100]}")
    status, doc = survivor.api("/api/v1/query", partial_response="maybe", **query)
    if status != 400:
        raise AssertionError(f"partial_response=maybe: want 400, got {status}")


if __name__ == "__main__":
    vigiltest.main(test)
