"""The alerts workload: a rule that must fire at a known time, under faults.

Before the nodes start (prepare), the harness starts a real Alertmanager on the
bridge's host address with a webhook receiver (harness/alertmanager.py) and
gives every vigild --alertmanager_url, --rule_files (one rule),
--evaluation_interval and --alert_resend_delay:

    alert: JepsenSignal
    expr:  max by (episode) (vj_alert_signal{run="<tag>"}) > 0
    for:   15s                       (group interval 1s)

A seeded schedule (Random(seed), independent of the nemesis') alternates
quiet gaps and episodes k = 1, 2, ...: most long enough to fire (for + 8 to
for + 14 s), some short (3 to for - 5 s: must not fire). Every client writes
vj_alert_signal{run, episode="k", client="c<p>"} = 1 during episode k (its own
series, strictly increasing timestamps, to a random node, gRPC or
remote-write, about every 0.2 s), then 0 until one 0 is acknowledged. The
alert fires once per long episode; its labels name the episode, so the
checker (checkers/alerts.py) can hold each webhook call to one episode.
"""

import os
import random
import threading
import time

from checkers import alerts as alerts_checker
from harness import alertmanager as am_mod
from harness import nemesis as nemesis_mod
from harness import nodes as nodes_mod
from harness import wire

METRIC = "vj_alert_signal"
ALERT = "JepsenSignal"
FOR_S = 15.0
INTERVAL_S = 1.0
RESEND_DELAY_S = 5.0
WRITE_PERIOD_S = 0.2
LEAD_IN_S = 3.0
TAIL_S = 3.0  # the last episode ends this long before --time
CLEAR_GRACE_S = 25.0  # clients keep writing 0s after --time until acknowledged
SETTLE_TIMEOUT_S = 45.0  # the check waits this long at most for resolutions


def schedule(seed, start, end):
    """[{"episode", "start", "end", "long"}] within [start, end]; Random(seed)."""
    rng = random.Random("alerts-%d" % seed)
    out, t, k = [], start, 0
    while True:
        t += rng.uniform(5.0, 10.0)
        long_ep = rng.random() < 0.75
        length = (rng.uniform(FOR_S + 8, FOR_S + 14) if long_ep
                  else rng.uniform(3.0, FOR_S - 5))
        if t + length > end:
            return out
        k += 1
        out.append({"episode": k, "start": round(t, 3), "end": round(t + length, 3),
                    "long": long_ep})
        t += length


def views_of(events, wall0):
    """The alerts poller's records as the checker's `views`."""
    out = []
    for ev in events:
        if ev.get("process") != "alerts-poll":
            continue
        for ep, state, active in ev["value"]["alerts"]:
            out.append({"time": ev["time"], "node": ev.get("node"), "episode": ep,
                        "state": state,
                        "active_at": (alerts_checker.parse_time(active) - wall0
                                      if active else None)})
    return out


class AlertsWorkload:
    name = "alerts"

    @classmethod
    def prepare(cls, run):
        """Before the nodes start: Alertmanager, the receiver, the rule file.
        Returns the flags every vigild gets."""
        if run.faketime:
            raise nemesis_mod.Unsupported(
                "alerts: the checker compares vigild's timestamps with the harness's "
                "clock; clock nemeses (libfaketime) would make that meaningless")
        binary = am_mod.find_binary()
        if binary is None:
            raise nemesis_mod.Unsupported(
                "alerts: prometheus-alertmanager is not installed (tools/install-deps)")
        receiver = am_mod.Receiver(run.history)
        run.cleanups.append(receiver.close)
        # Alertmanager on loopback; the nodes reach it through a recording proxy
        # on the bridge's host address (the only address their namespaces route to).
        am = am_mod.Alertmanager(binary, "127.0.0.1", run.state_dir,
                                 os.path.join(run.out_dir, "alertmanager.log"), receiver.port)
        run.cleanups.append(am.stop)
        am.start()
        if not am.wait_ready(60):
            raise RuntimeError("alertmanager did not become ready in 60s; see %s"
                               % am.log_path)
        ids = {ip: i for i, ip in run.net.ips.items()}
        proxy = am_mod.Proxy(run.history, run.net.host_ip, am.port, ids.get)
        run.cleanups.append(proxy.close)
        rules = os.path.join(run.state_dir, "alerts-rules.yml")
        with open(rules, "w") as f:
            f.write("""groups:
  - name: jepsen
    interval: %ds
    rules:
      - alert: %s
        expr: max by (episode) (%s{run="%s"}) > 0
        for: %ds
        labels:
          run: %s
""" % (INTERVAL_S, ALERT, METRIC, run.tag, FOR_S, run.tag))
        run.alerting = {"am": am, "proxy": proxy, "receiver": receiver, "rules": rules,
                        "wall0": time.time() - run.now()}
        run.history.add(type="info", process="harness", f="alertmanager",
                        value={"url": proxy.url, "alertmanager": am.url,
                               "receiver_port": receiver.port,
                               "wall0": run.alerting["wall0"], "for_s": FOR_S,
                               "interval_s": INTERVAL_S, "resend_delay_s": RESEND_DELAY_S})
        return ["--alertmanager_url=" + proxy.url, "--rule_files=" + rules,
                "--evaluation_interval=%ds" % INTERVAL_S,
                "--alert_resend_delay=%ds" % RESEND_DELAY_S,
                "--external_url=http://jepsen.invalid:9401"]

    def __init__(self, run):
        self.run = run
        self.rig = run.alerting
        self.episodes = []
        self.clients = {}
        self.poller = None
        self.poll_stop = threading.Event()

    def setup(self):
        from harness import workloads  # not at the top: workloads imports this module
        run = self.run
        deadline = time.monotonic() + run.cfg.cluster_timeout
        missing = sorted(run.nodes)
        while missing and time.monotonic() < deadline:
            missing = [i for i in missing if not self._has_rule(i)]
            time.sleep(0.25)
        if missing:
            raise workloads.Unsupported("GET /api/v1/rules on node(s) %s does not show the "
                                        "rule %s (vigild without alerting?)" % (missing, ALERT))
        start = run.now() + LEAD_IN_S
        self.episodes = schedule(run.cfg.seed, start, start + run.cfg.time - LEAD_IN_S - TAIL_S)
        for ep in self.episodes:
            run.history.add(type="info", process="harness", f="episode", value=ep)
        self.poller = threading.Thread(target=self._poll_alerts, daemon=True, name="alerts-poll")
        self.poller.start()

    def _poll_alerts(self):
        """Records each node's view of the alert (GET /api/v1/alerts: the leader's
        state, the committed state on followers) and the rule's health whenever
        they change: the diagnosis of a late or duplicate notification."""
        last = {}
        run = self.run
        while not self.poll_stop.wait(0.5):
            for i in sorted(run.nodes):
                node = run.nodes[i]
                if not node.alive() or node.paused:
                    continue
                doc = nodes_mod.http_get_json(node.ip, node.http_port, "/api/v1/alerts",
                                              timeout=1.0)
                rules = nodes_mod.http_get_json(node.ip, node.http_port, "/api/v1/rules",
                                                timeout=1.0)
                if doc is None:
                    continue
                view = sorted((a.get("labels", {}).get("episode", "?"), a.get("state"),
                               a.get("activeAt")) for a in doc["data"]["alerts"]
                              if a.get("labels", {}).get("alertname") == ALERT)
                health = None
                try:
                    health = [(r.get("health"), (r.get("lastError") or "")[:300] or None)
                              for g in rules["data"]["groups"] for r in g["rules"]
                              if r.get("name") == ALERT]
                except (TypeError, KeyError):
                    pass
                key = (tuple(view), str(health))
                if last.get(i) != key:
                    last[i] = key
                    run.history.add(type="info", process="alerts-poll", f="alerts", node=i,
                                    value={"alerts": view, "health": health})

    def _has_rule(self, i):
        node = self.run.nodes[i]
        doc = nodes_mod.http_get_json(node.ip, node.http_port, "/api/v1/rules")
        try:
            return any(r.get("name") == ALERT for g in doc["data"]["groups"]
                       for r in g["rules"])
        except (TypeError, KeyError):
            return False

    def client_for(self, p, node_id):
        key = (p, node_id)
        if key not in self.clients:
            node = self.run.nodes[node_id]
            self.clients[key] = wire.NodeClient(node.ip, node.http_port, node.grpc_port,
                                                self.run.cfg.op_timeout)
        return self.clients[key]

    def _due(self, now, wrote_one, cleared):
        """[(episode, value)] this client writes now."""
        out = []
        for ep in self.episodes:
            k = ep["episode"]
            if ep["start"] <= now < ep["end"]:
                out.append((k, 1))
            elif now >= ep["end"] and k in wrote_one and k not in cleared:
                out.append((k, 0))
        return out

    def client_loop(self, p, deadline):
        run, cfg = self.run, self.run.cfg
        rng = random.Random("alerts-client-%d-%d" % (cfg.seed, p))
        wrote_one, cleared, last_ts = set(), set(), {}
        while not run.stopping.is_set():
            now = run.now()
            due = self._due(now, wrote_one, cleared)
            if now >= deadline and (not due or now >= deadline + CLEAR_GRACE_S):
                return
            for k, v in due:
                ts = max(last_ts.get(k, 0) + 1, int(time.time() * 1000))
                last_ts[k] = ts
                if v == 1:
                    wrote_one.add(k)
                if self.write(p, rng, k, v, ts) == "ok" and v == 0:
                    cleared.add(k)
            run.stopping.wait(WRITE_PERIOD_S)

    def write(self, p, rng, k, v, ts):
        run = self.run
        node_id = rng.choice(sorted(run.nodes))
        proto = rng.choice(["grpc", "remote-write"])
        labels = {"__name__": METRIC, "run": run.tag, "episode": str(k), "client": "c%d" % p}
        run.history.add(type="invoke", process=p, f="write", node=node_id, proto=proto,
                        workload=self.name,
                        value={"episode": k, "v": v, "samples": [["e%d-c%d" % (k, p), ts, v]]})
        client = self.client_for(p, node_id)
        out = (client.write_grpc if proto == "grpc" else client.write_remote)(labels, [(ts, v)])
        ev = dict(type=out.kind, process=p, f="write", node=node_id, proto=proto,
                  workload=self.name)
        if out.error:
            ev["error"] = out.error
        run.history.add(**ev)
        return out.kind

    def check(self):
        from harness import workloads  # not at the top: workloads imports this module
        run = self.run
        receiver = self.rig["receiver"]
        writes = workloads.own_events(run, self.name)
        params = {"for_s": FOR_S, "interval_s": INTERVAL_S, "wall0": self.rig["wall0"],
                  "alertname": ALERT}
        # Wait until every episode that fired is resolved (or the timeout): the
        # resolution of the last one arrives seconds after its 0 was written.
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        last_end = max((ep["end"] for ep in self.episodes), default=0.0)
        while time.monotonic() < deadline:
            if run.now() < last_end + alerts_checker.DEFAULTS["notify_bound_s"]:
                time.sleep(0.5)
                continue
            params["observed_until"] = run.now()
            res = alerts_checker.check(writes, self.episodes, receiver.snapshot(),
                                       run.nemesis.windows, params, self._views())
            if res["resolved_missing"] == 0 and all(
                    r["resolved"] or not r["firing"] for r in res["per_episode"]):
                break
            time.sleep(0.5)
        params["observed_until"] = run.now()
        res = alerts_checker.check(writes, self.episodes, receiver.snapshot(),
                                   run.nemesis.windows, params, self._views())
        if not any(ep["long"] for ep in self.episodes):
            # Nothing that must fire was scheduled: a pass would prove nothing.
            res["valid"] = False
            res["error"] = ("no long episode fits in --time %.0f s (one needs about %.0f s)"
                            % (run.cfg.time, LEAD_IN_S + 10 + FOR_S + 14 + TAIL_S))
        res["ops"] = sum(1 for e in writes if e["type"] == "invoke")
        res["ops_ok"] = sum(1 for e in writes if e["type"] == "ok")
        res["resend_delay_s"] = RESEND_DELAY_S
        res["active_at_seen"] = self._active_at_seen()
        sent = {}
        for e in run.history.events:
            if e.get("process") == "alertmanager" and e.get("f") == "sent":
                sent[str(e.get("node"))] = sent.get(str(e.get("node")), 0) + 1
        res["posts_by_node"] = sent  # every POST to Alertmanager, by the node that sent it
        # Reported, not a verdict: a deposed leader's uncommitted state shows too.
        res["episodes_with_several_active_at"] = sum(
            1 for v in res["active_at_seen"].values() if len(v) > 1)
        return res

    def _views(self):
        """Every (node, episode, state, activeAt) the poller recorded, in run time."""
        return views_of(self.run.history.events, self.rig["wall0"])

    def _active_at_seen(self):
        """{episode: distinct activeAt values any node showed, in run time}: more
        than one means some node restarted `for` (or showed a deposed leader's
        uncommitted state); the late check decides whether that delayed firing."""
        out = {}
        for v in self._views():
            if v["active_at"] is not None:
                out.setdefault(v["episode"], set()).add(round(v["active_at"], 3))
        return {ep: sorted(v) for ep, v in sorted(out.items())}

    def close(self):
        self.poll_stop.set()
        if self.poller is not None:
            self.poller.join(timeout=30)
        for c in self.clients.values():
            c.close()


def recheck(events, windows, observed_until=None):
    """The checker over a stored run's history.jsonl events and results.json
    fault_windows (e.g. after the checker changed)."""
    rig = next(e["value"] for e in events
               if e.get("process") == "harness" and e.get("f") == "alertmanager")
    writes = [e for e in events
              if isinstance(e.get("process"), int) and e.get("workload") == AlertsWorkload.name]
    episodes = [e["value"] for e in events
                if e.get("process") == "harness" and e.get("f") == "episode"]
    notes = [{"time": e["time"], "status": e["value"]["status"], "alerts": e["value"]["alerts"]}
             for e in events
             if e.get("process") == "alertmanager" and e.get("f") == "notification"]
    params = {"for_s": rig["for_s"], "interval_s": rig["interval_s"], "wall0": rig["wall0"],
              "alertname": ALERT,
              "observed_until": observed_until or max(e["time"] for e in events)}
    return alerts_checker.check(writes, episodes, notes, windows, params,
                                views_of(events, rig["wall0"]))
