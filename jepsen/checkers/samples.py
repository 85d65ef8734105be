"""The samples checker: nothing acknowledged is lost, nothing unwritten appears.

Input: the history of write operations, and the final read of every node.

A write's invoke event carries {"samples": [[series, ts_ms, value], ...]} in
"value" (series is a string naming the series, ts and value are numbers); its
completion is ok (acknowledged: every sample must be durable), fail (certainly
not applied, although with remote-write a 4xx may have applied part) or info
(unknown). A write with no completion at all counts as info.

Each node's final read is {"ok": bool, "error": str, "samples": [[series, ts,
value], ...]}. Per node:
  lost            acknowledged samples absent from the node (must be 0)
  unexpected      samples present that no client ever attempted, or present
                  with a value other than the one written (must be 0)
  unacked_present attempted but not acknowledged, yet present (reported only)
A node whose read failed makes the result invalid: nothing could be proven.

scope "all": every node must hold every acknowledged sample (a replicated
cluster). scope "per-node": each node must hold what it acknowledged itself
(independent nodes: no replication to check).

"Every node" is every node read: the harness reads the cluster's members at
the end. With the membership nemesis those are the final members: a node
removed during the run holds nothing it must keep and is not read, one added
during the run must hold every acknowledged sample, including those acked
before it joined (the shards it took were streamed to it). That the nodes
read are exactly the cluster's final members is checked by the nemesis's own
verdict (harness/nemesis.py membership_check).
"""

LIST_LIMIT = 20  # how many example samples each list in the result shows


def _key(series, ts):
    return (str(series), int(ts))


def collect_writes(history):
    """Returns (attempted {key: value}, acked {key: node}, op counts)."""
    attempted, acked = {}, {}
    pending = {}
    counts = {"invoke": 0, "ok": 0, "fail": 0, "info": 0}
    for ev in history:
        if ev.get("f") != "write":
            continue
        t = ev["type"]
        if t == "invoke":
            counts["invoke"] += 1
            pending[ev["process"]] = ev
            for series, ts, value in ev["value"]["samples"]:
                attempted[_key(series, ts)] = float(value)
            continue
        counts[t] += 1
        inv = pending.pop(ev["process"], None)
        if inv is None:
            raise ValueError("completion without invoke: %r" % (ev,))
        if t == "ok":
            for series, ts, _ in inv["value"]["samples"]:
                acked[_key(series, ts)] = inv.get("node")
    counts["info"] += len(pending)  # never completed: unknown
    return attempted, acked, counts


def _examples(keys):
    return [list(k) for k in sorted(keys)[:LIST_LIMIT]]


def check_node(node, read, attempted, expected):
    """Checks one node's read against the samples it must hold."""
    if not read.get("ok"):
        return {"node": node, "read_ok": False, "error": read.get("error", "read failed")}
    present = {}
    unexpected = set()
    for series, ts, value in read["samples"]:
        k = _key(series, ts)
        value = float(value)
        want = attempted.get(k)
        if want is None or not (want == value or (want != want and value != value)):
            unexpected.add(k)
        present[k] = value
    lost = [k for k in expected if k not in present]
    unacked_present = [k for k in present
                       if k in attempted and k not in expected and k not in unexpected]
    return {"node": node, "read_ok": True, "present": len(present),
            "expected": len(expected), "lost": len(lost),
            "unexpected": len(unexpected), "unacked_present": len(unacked_present),
            "lost_examples": _examples(lost), "unexpected_examples": _examples(unexpected)}


def check(history, reads, scope="all"):
    """Returns the checker result dict with "valid" and the counts."""
    attempted, acked, counts = collect_writes(history)
    nodes = []
    for node in sorted(reads, key=str):
        if scope == "all":
            expected = acked
        elif scope == "per-node":
            expected = {k: n for k, n in acked.items() if str(n) == str(node)}
        else:
            raise ValueError("unknown scope %r" % (scope,))
        nodes.append(check_node(node, reads[node], attempted, expected))
    read_failures = sum(1 for n in nodes if not n["read_ok"])
    lost = sum(n.get("lost", 0) for n in nodes)
    unexpected = sum(n.get("unexpected", 0) for n in nodes)
    valid = bool(nodes) and read_failures == 0 and lost == 0 and unexpected == 0
    return {"valid": valid, "scope": scope, "ops": counts,
            "attempted": len(attempted), "acked": len(acked),
            "lost": lost, "unexpected": unexpected,
            "unacked_present": sum(n.get("unacked_present", 0) for n in nodes),
            "read_failures": read_failures, "nodes": nodes}
