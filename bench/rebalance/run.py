#!/usr/bin/env python3
"""Rebalance throughput: add a 4th node to a loaded 3-node cluster (RF=3).

Usage: bench/rebalance/run.py VIGILD [--series N] [--samples M] [--shards S]

Starts three vigild nodes (--peers), loads N series x M samples (remote-write,
1000 series per request), keeps a light writer running (the test's Writer:
20 series every ~30 ms), then starts node 4 with --join and times until the
cluster settled (node 4 ACTIVE, no shard moving, epochs stable). Reports the
leader's stream totals (payload bytes = label bytes + 16 per sample, counted
once per target) as MB/s and series/s over the time the streams ran, and over
the whole join. Prints one JSON line at the end.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests"))
import vigiltest  # noqa: E402
from vigiltest import Deadline, log  # noqa: E402
import e2e_rebalance_test as rt  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vigild")
    ap.add_argument("--series", type=int, default=20000)
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--shards", type=int, default=64)
    args = ap.parse_args()
    rt.SHARDS = args.shards
    deadline = Deadline(1800)
    ports = {i: (vigiltest.free_port(), vigiltest.free_port()) for i in (1, 2, 3, 4)}
    peers = ",".join(f"{i}=127.0.0.1:{g}/127.0.0.1:{h}" for i, (h, g) in ports.items() if i < 4)
    nodes = {i: rt.Node(args.vigild, i, ports[i], [f"--peers={peers}"]) for i in (1, 2, 3)}
    for n in nodes.values():
        n.start()
    probe = [(vigiltest.series_labels("bench_probe"), [(int(time.time() * 1000), 1.0)])]
    vigiltest.wait_until(lambda: all(nodes[i].remote_write(probe)[0] == 204 for i in (1, 2, 3)),
                         deadline, "the cluster accepting writes", interval=0.1)
    now_s = int(time.time())
    base = (now_s - 3000) * 1000
    t0 = time.monotonic()
    for k in range(0, args.series, 1000):
        series = []
        for j in range(k, min(k + 1000, args.series)):
            labels = vigiltest.series_labels("bench_rebalance", instance=f"host-{j % 500}",
                                             job="node", series=str(j))
            series.append((labels, [(base + i * 15_000, float(j + i)) for i in range(args.samples)]))
        status, body = nodes[1 + (k // 1000) % 3].remote_write(series, timeout=120)
        if status != 204:
            raise SystemExit(f"load: HTTP {status}: {body[:300]!r}")
    load_s = time.monotonic() - t0
    log(f"loaded {args.series} series x {args.samples} samples in {load_s:.1f}s")
    writer = rt.Writer((now_s - 600) * 1000)
    writer.set_targets([nodes[1], nodes[2], nodes[3]])
    writer.start()
    nodes[4] = rt.Node(args.vigild, 4, ports[4], [f"--join={nodes[1].grpc_addr}"])
    t_join = time.monotonic()
    nodes[4].start()

    class NoCheck:
        def check(self, _):
            pass

    st = rt.wait_settled(nodes[1], {1, 2, 3, 4}, deadline, NoCheck(), [], "rebalancing")
    # wait_settled needs two equal polls 1 s apart: take the settle time from the
    # last stream's end instead of the poll.
    join_s = time.monotonic() - t_join
    writer.stop.set()
    writer.join(timeout=30)
    leader = nodes[st["leader"]]
    streams = leader.status()["streams"]
    stream_s = sum(t["seconds"] for t in streams["recent"])  # summed over transfers
    result = {
        "series": args.series, "samples_per_series": args.samples, "shards": args.shards,
        "node4_shards": len(rt.holders(st, 4)), "join_to_settled_s": round(join_s, 1),
        "streams_done": streams["done"], "streams_failed": streams["failed"],
        "stream_series": streams["series"], "stream_samples": streams["samples"],
        "stream_mb": round(streams["bytes"] / 1e6, 1),
        "mb_per_s_wall": round(streams["bytes"] / 1e6 / join_s, 2),
        "series_per_s_wall": round(streams["series"] / join_s),
        "writer_rounds": writer.rounds, "writer_failed_rounds": writer.failed_rounds,
        "node4_series": nodes[4].metric("vigil_series"),
    }
    if len(streams["recent"]) == streams["done"] + streams["failed"]:
        result["transfer_seconds_sum"] = round(stream_s, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    try:
        main()
    finally:
        vigiltest._cleanup()
