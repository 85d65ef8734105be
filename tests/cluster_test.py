"""Cluster test: three vigild nodes with --peers (RF=3), kill -9 one under writes.

Usage: cluster_test.py VIGILD

Rounds of samples go to node 1 through remote-write; a round is acked by a 204.
Node 3 is killed with SIGKILL after a few rounds and the writes go on (W=2 of
3). Then every acked sample must be readable from node 1 and from node 2 through
/api/v1/query_range (fanned out over the cluster). Node 3 restarts on the same
data and must converge (hinted handoff, anti-entropy): once its own storage
holds as many samples as were acked, nodes 1 and 2 are killed and node 3 alone
(started with --partial_response) must answer every acked sample.
"""

import http.client
import time

import vigiltest
from vigiltest import Deadline, log

SERIES = 10
ROUNDS = 30
KILL_AT = 8
NAME = "cluster_test"


class Node(vigiltest.FixedPortVigild):
    """A cluster member with fixed ports, so its peers can find it across restarts."""

    def __init__(self, binary, node_id, ports, peers, extra_args=()):
        super().__init__(binary, ports, extra_args=[f"--node_id={node_id}", f"--peers={peers}",
                                             "--num_shards=16", "--anti_entropy_interval=1s",
                                             "--write_timeout=5s", *extra_args])
        self.node_id = node_id


def read_all(node, start_ms, end_ms):
    """{series label: {t_ms: value}} from /api/v1/query_range at 1 s steps."""
    status, doc = node.api("/api/v1/query_range", query=f'{NAME}', start=f"{start_ms / 1000:.3f}",
                           end=f"{end_ms / 1000:.3f}", step="1s")
    if status != 200 or doc.get("status") != "success":
        raise AssertionError(f"node {node.node_id}: query_range failed: {status} {doc}")
    out = {}
    for s in doc["data"]["result"]:
        out[s["metric"]["series"]] = {round(float(t) * 1000): float(v) for t, v in s["values"]}
    return out


def check_acked(node, acked, start_ms, end_ms):
    got = read_all(node, start_ms, end_ms)
    missing = [(j, t) for j, t, v in acked if got.get(str(j), {}).get(t) != v]
    if missing:
        raise AssertionError(f"node {node.node_id} lacks {len(missing)} of {len(acked)} acked "
                             f"samples, e.g. {missing[:5]}")
    log(f"node {node.node_id}: all {len(acked)} acked samples present")


def test(argv):
    vigild = argv[0]
    deadline = Deadline(110)
    ports = {i: (vigiltest.free_port(), vigiltest.free_port()) for i in (1, 2, 3)}
    peers = ",".join(f"{i}=127.0.0.1:{g}/127.0.0.1:{h}" for i, (h, g) in ports.items())
    nodes = {i: Node(vigild, i, ports[i], peers,
                     ["--partial_response"] if i == 3 else []) for i in (1, 2, 3)}
    for n in nodes.values():
        n.start()
    log("3 nodes ready:", peers)
    vigiltest.wait_accepting_writes(nodes.values(), deadline, NAME + "_probe")

    base = (int(time.time()) - 120) * 1000
    acked = []
    latencies = []
    for r in range(ROUNDS):
        if r == KILL_AT:
            nodes[3].kill9()
            log("killed node 3")
        t = base + r * 1000
        series = [(vigiltest.series_labels(NAME, series=str(j)), [(t, j * 1000.0 + r)])
                  for j in range(SERIES)]
        t0 = time.monotonic()
        try:
            status, body = nodes[1].remote_write(series, timeout=20)
        except (OSError, http.client.HTTPException) as e:
            raise AssertionError(f"round {r}: write failed: {e}")
        latencies.append(time.monotonic() - t0)
        if status != 204:
            raise AssertionError(f"round {r}: HTTP {status}: {body[:300]!r}")
        acked += [(j, t, j * 1000.0 + r) for j in range(SERIES)]
        deadline.check("writing")
    latencies.sort()
    log(f"{len(acked)} samples acked; write latency median "
        f"{latencies[len(latencies) // 2] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    end = base + ROUNDS * 1000
    for i in (1, 2):
        check_acked(nodes[i], acked, base, end)

    t0 = time.monotonic()
    nodes[3].start()
    vigiltest.wait_until(lambda: (nodes[3].metric("vigil_head_samples") or 0) >= len(acked), deadline,
                         "node 3 catching up", interval=0.2)
    log(f"node 3 caught up {time.monotonic() - t0:.1f}s after its restart began")
    nodes[1].kill9()
    nodes[2].kill9()
    check_acked(nodes[3], acked, base, end)


if __name__ == "__main__":
    vigiltest.main(test)
