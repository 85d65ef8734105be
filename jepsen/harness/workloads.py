"""Workloads: client threads that write and read, and the final reads.

samples   clients write unique samples (gRPC Ingest.Write and remote-write, to
          random nodes); after healing and settling, every node is read back
          (Query.Select raw samples; HTTP range-vector query as a fallback).
register  read / write / compare-and-set on registers kept in the Raft state
          machine, through the admin HTTP API below (cluster/control_http.cc);
          "unsupported" when vigild does not serve it (no --peers):
            GET  /api/v1/admin/registers/KEY      200 {"value": s|null, "version": n}
            PUT  /api/v1/admin/registers/KEY      {"value": s} -> 200 {"version": n}
            POST /api/v1/admin/registers/KEY/cas  {"expected_value": s, "value": s}
                 -> 200 {"ok": true, "version": n} | 409 {"ok": false, "value", "version"}
          503 / timeouts are unknown outcomes; 4xx other than 409 are failures.
stale-read  the planted-bug scenario on registers (StaleReadWorkload below).
"""

import http.client
import json
import random
import threading
import time
import urllib.parse

from checkers import linearizable, samples as samples_checker
from harness import nemesis as nemesis_mod
from harness import wire

METRIC = "jepsen_samples"


class Unsupported(Exception):
    pass


def _bounded_loop(run, deadline, max_ops):
    """Yields op numbers until the deadline, the op budget or a stop request."""
    n = 0
    while n < max_ops and run.now() < deadline and not run.stopping.is_set():
        yield n
        n += 1


class SamplesWorkload:
    name = "samples"

    def __init__(self, run):
        self.run = run
        self.clients = {}
        self.lock = threading.Lock()
        self.first_ts = None
        self.last_ts = None

    def labels(self, p):
        return {"__name__": METRIC, "run": self.run.tag, "client": "c%d" % p}

    def client_for(self, p, node_id):
        key = (p, node_id)
        if key not in self.clients:
            node = self.run.nodes[node_id]
            self.clients[key] = wire.NodeClient(node.ip, node.http_port, node.grpc_port,
                                                self.run.cfg.op_timeout)
        return self.clients[key]

    def setup(self):
        pass

    def client_loop(self, p, deadline):
        cfg, hist = self.run.cfg, self.run.history
        rng = random.Random(cfg.seed * 1000 + p)
        seq, last_ts = 0, 0
        series = "c%d" % p
        for _ in _bounded_loop(self.run, deadline, cfg.max_ops_per_client):
            node = rng.choice(sorted(self.run.nodes))
            proto = rng.choice(["grpc", "remote-write"])
            rows = []
            for _ in range(rng.randint(1, cfg.batch)):
                last_ts = max(last_ts + 1, int(time.time() * 1000))
                seq += 1
                rows.append([series, last_ts, float(p * 1_000_000_000 + seq)])
            with self.lock:
                self.first_ts = rows[0][1] if self.first_ts is None else self.first_ts
                self.last_ts = max(self.last_ts or 0, rows[-1][1])
            hist.add(type="invoke", process=p, f="write", node=node, proto=proto,
                     workload=self.name, value={"samples": rows})
            client = self.client_for(p, node)
            pts = [(ts, v) for _, ts, v in rows]
            if proto == "grpc":
                out = client.write_grpc(self.labels(p), pts)
            else:
                out = client.write_remote(self.labels(p), pts)
            ev = dict(type=out.kind, process=p, f="write", node=node, proto=proto,
                      workload=self.name)
            if out.error:
                ev["error"] = out.error
            if out.value:
                ev["value"] = out.value
            hist.add(**ev)
            self.run.stopping.wait(cfg.op_interval if out.kind == "ok" else cfg.retry_interval)

    def read_node(self, node_id):
        """Every sample of this run on one node, or {"ok": False, "error"}."""
        node = self.run.nodes[node_id]
        if self.first_ts is None:
            return {"ok": True, "samples": []}
        start, end = self.first_ts - 120_000, self.last_ts + 120_000
        client = wire.NodeClient(node.ip, node.http_port, node.grpc_port,
                                 self.run.cfg.op_timeout)
        try:
            series = client.select({"__name__": METRIC, "run": self.run.tag}, start, end,
                                   timeout=60)
            via = "grpc-select"
        except Exception as e:  # fall back to the HTTP API
            grpc_error = repr(e)
            try:
                series = http_range_read(node, self.run.tag, start, end)
                via = "http-query"
            except Exception as e2:
                return {"ok": False, "error": "select: %s; http: %r" % (grpc_error, e2)}
        finally:
            client.close()
        rows = [[labels.get("client", "?"), ts, v] for labels, pts in series for ts, v in pts]
        return {"ok": True, "via": via, "samples": rows}

    def final_reads(self):
        reads = {}
        deadline = time.monotonic() + self.run.cfg.read_timeout
        for i in sorted(self.run.nodes):
            while True:
                r = self.read_node(i)
                if r["ok"] or time.monotonic() > deadline:
                    break
                time.sleep(1.0)
            self.run.history.add(type="info", process="reader", f="final-read", node=i,
                                 value={"ok": r["ok"], "samples": len(r.get("samples", [])),
                                        "via": r.get("via"), "error": r.get("error")})
            reads[str(i)] = r
        return reads

    def check(self):
        reads = self.final_reads()
        scope = "all" if self.run.clustered or len(self.run.nodes) == 1 else "per-node"
        return samples_checker.check(own_events(self.run, self.name), reads, scope=scope)

    def close(self):
        for c in self.clients.values():
            c.close()


def http_range_read(node, tag, start_ms, end_ms):
    """Raw samples via /api/v1/query with a range selector (exact points)."""
    window = max(1, (end_ms - start_ms) // 1000 + 1)
    q = urllib.parse.urlencode({"query": '%s{run="%s"}[%ds]' % (METRIC, tag, window),
                                "time": "%.3f" % (end_ms / 1000.0)})
    status, body = _http(node, "GET", "/api/v1/query?" + q, None, 60)
    if status != 200:
        raise RuntimeError("HTTP %d: %s" % (status, body[:200]))
    data = json.loads(body)["data"]
    return [(s["metric"], [(int(round(float(t) * 1000)), float(v)) for t, v in s["values"]])
            for s in data["result"]]


def own_events(run, workload):
    """The client events of one workload (several may share a run's history)."""
    return [e for e in run.history.events
            if isinstance(e.get("process"), int) and e.get("workload") == workload]


def _http(node, method, path, body, timeout):
    conn = http.client.HTTPConnection(node.ip, node.http_port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers=headers)
        res = conn.getresponse()
        return res.status, res.read().decode(errors="replace")
    finally:
        conn.close()


class RegisterWorkload:
    """Linearizable registers in the control state (see the module comment)."""

    name = "register"
    KEYS = 8

    def __init__(self, run):
        self.run = run

    def path(self, key):
        return "/api/v1/admin/registers/" + urllib.parse.quote(key, safe="")

    def setup(self):
        node = self.run.nodes[min(self.run.nodes)]
        try:
            status, body = _http(node, "GET", self.path("jepsen-probe"), None, 5)
        except OSError as e:
            raise Unsupported("register API probe failed: %r" % (e,))
        if status == 404 and "page not found" in body:
            raise Unsupported("vigild serves no register API (GET %s: 404); it comes with "
                              "the cluster (issue 5)" % self.path("KEY"))

    def _op(self, node, f, key, value, timeout=None):
        timeout = timeout or self.run.cfg.op_timeout
        try:
            if f == "read":
                status, body = _http(node, "GET", self.path(key), None, timeout)
            elif f == "write":
                status, body = _http(node, "PUT", self.path(key), {"value": value["value"]},
                                     timeout)
            else:
                status, body = _http(node, "POST", self.path(key) + "/cas",
                                     {"expected_value": value["from"], "value": value["to"]},
                                     timeout)
        except ConnectionRefusedError as e:
            return "fail", {"error": repr(e)}
        except (OSError, http.client.HTTPException) as e:
            return "info", {"error": repr(e)}
        if status == 200 or (status == 409 and f == "cas"):
            doc = json.loads(body)
            # Only what the server said goes into the output: the model checks
            # the fields that are present.
            if f == "read":
                out = {"value": doc.get("value")}
            elif f == "write":
                out = {}
            else:
                out = {"ok": bool(doc.get("ok"))}
                if not out["ok"] and "value" in doc:
                    out["value"] = doc["value"]
            if "version" in doc:
                out["version"] = doc["version"]
            return "ok", out
        # "control plane starting": a restarted node refuses before doing anything
        # (cluster/control_plane.cc checks started() first): certainly not applied.
        if 400 <= status < 500 or (status == 503 and "control plane starting" in body):
            return "fail", {"error": "HTTP %d: %s" % (status, body[:200])}
        return "info", {"error": "HTTP %d: %s" % (status, body[:200])}

    def client_loop(self, p, deadline):
        cfg, hist = self.run.cfg, self.run.history
        rng = random.Random(cfg.seed * 1000 + p)
        seen = {}  # key -> the last value this client saw there
        for n in _bounded_loop(self.run, deadline, cfg.max_ops_per_client):
            node_id = rng.choice(sorted(self.run.nodes))
            key = "jepsen-%s-%d" % (self.run.tag, rng.randrange(self.KEYS))
            f = rng.choice(["read", "read", "write", "cas"])
            # Unique values (process, op number): a read names the one write it
            # saw, which keeps the search small even with many unknown outcomes.
            # A CAS expects the last value this client saw on the key, so it
            # often succeeds; sometimes it expects a value never written.
            fresh = "p%dn%d" % (p, n)
            value = {}
            if f == "write":
                value = {"value": fresh}
            elif f == "cas":
                expect = seen.get(key) if rng.random() < 0.8 else "never"
                value = {"from": expect or "never", "to": fresh}
            kind, out = self.op(p, node_id, f, key, value)
            if kind == "ok":
                if f == "read" and out.get("value") is not None:
                    seen[key] = out["value"]
                elif f == "write" or (f == "cas" and out.get("ok")):
                    seen[key] = fresh
                elif f == "cas" and out.get("value") is not None:
                    seen[key] = out["value"]
            self.run.stopping.wait(cfg.op_interval if kind == "ok" else cfg.retry_interval)

    def op(self, p, node_id, f, key, value, timeout=None):
        """One operation, recorded as invoke + completion. Returns (kind, output)."""
        hist = self.run.history
        hist.add(type="invoke", process=p, f=f, key=key, node=node_id, value=value,
                 workload=self.name)
        kind, out = self._op(self.run.nodes[node_id], f, key, value, timeout)
        ev = dict(type=kind, process=p, f=f, key=key, node=node_id, workload=self.name)
        if "error" in out:
            ev["error"] = out.pop("error")
        ev["value"] = out
        hist.add(**ev)
        return kind, out

    def check(self):
        return linearizable.check(own_events(self.run, self.name),
                                  timeout_s=self.run.cfg.check_timeout)

    def close(self):
        pass


class StaleReadWorkload(RegisterWorkload):
    """A targeted register scenario for the planted stale-read bug.

    Round r (one client, one key): write "r<r>-before" through the leader L;
    isolate L (iptables, as partition-leader); wait until the majority has a
    newer leader; write "r<r>-after" through it until acknowledged; read the
    key from L; heal and wait for one agreed leader. The history is checked
    like any register history: a read from L that answers "before" after
    "after" was acknowledged is a linearizability violation. A correct vigild
    cannot answer that read (its ReadIndex barrier needs a quorum: 503 or a
    timeout, recorded as info), so the run is valid; with the test-only
    --unsafe_stale_register_reads it answers from L's stale state and the run
    must be invalid. The rounds stop after the first read L answered, or after
    --probe-rounds, or at --time.
    """

    name = "stale-read"
    STEP_TIMEOUT = 30.0  # for each wait inside a round (slow machines)

    def setup(self):
        if len(self.run.nodes) < 3:
            raise Unsupported("stale-read needs a cluster of at least 3 nodes")
        if not self.run.clustered:
            raise Unsupported("stale-read needs a clustered vigild (--peers)")
        super().setup()

    def client_loop(self, p, deadline):
        if p != 0:
            return  # one client drives the scenario
        key = "jepsen-%s-stale" % self.run.tag
        for r in range(1, self.run.cfg.probe_rounds + 1):
            if self.run.now() + 3 * self.STEP_TIMEOUT > deadline or self.run.stopping.is_set():
                self.run.notes.append("stale-read: stopped before round %d (time is up)" % r)
                return
            answered = self.round(p, key, r)
            if answered:
                self.run.notes.append("stale-read: the isolated leader answered a read in "
                                      "round %d" % r)
                return
        self.run.notes.append("stale-read: %d rounds, the isolated leader answered no read"
                              % self.run.cfg.probe_rounds)

    def _until(self, fn):
        """Polls fn() until it returns a true value or STEP_TIMEOUT passes."""
        end = time.monotonic() + self.STEP_TIMEOUT
        while time.monotonic() < end and not self.run.stopping.is_set():
            v = fn()
            if v:
                return v
            time.sleep(0.2)
        return None

    def _write_acked(self, p, node_id, key, value):
        return self._until(lambda: self.op(p, node_id, "write", key, {"value": value})[0] == "ok")

    def round(self, p, key, r):
        run = self.run
        leader = self._until(run.find_leader)
        if leader is None or not self._write_acked(p, leader, key, "r%d-before" % r):
            run.notes.append("stale-read round %d: no leader took the first write" % r)
            return False
        others = [i for i in sorted(run.nodes) if i != leader]
        old_term = int(run.cluster_status([leader]).get(leader, {}).get("term") or 0)
        run.net.apply_grudge(nemesis_mod.grudge_isolate(sorted(run.nodes), leader))
        window = run.nemesis.begin_window("partition-leader", "isolate leader %d" % leader)
        answered = False
        try:
            def new_leader():
                for i, doc in run.cluster_status(others).items():
                    nl = doc.get("leader")
                    if nl in others and int(doc.get("term") or 0) > old_term:
                        return nl
                return None
            nl = self._until(new_leader)
            if nl is None:
                run.notes.append("stale-read round %d: the majority elected no new leader" % r)
            elif self._write_acked(p, nl, key, "r%d-after" % r):
                kind, _ = self.op(p, leader, "read", key, {})
                answered = kind == "ok"
        finally:
            run.net.heal()
            run.nemesis.end_window(window, {"healed": True})
        if run.wait_cluster(run.cfg.cluster_timeout) is None:
            run.errors.append("stale-read round %d: no agreed leader after healing" % r)
        for i in sorted(run.nodes):  # every node must now see the last write
            self.op(p, i, "read", key, {})
        return answered


WORKLOADS = {"samples": SamplesWorkload, "register": RegisterWorkload,
             "stale-read": StaleReadWorkload}

# The alerts workload lives in its own module (it uses the helpers above).
from harness import alerts_workload  # noqa: E402

WORKLOADS["alerts"] = alerts_workload.AlertsWorkload
