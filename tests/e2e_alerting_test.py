"""Alerting end to end: a 3-node vigild cluster, a real Alertmanager, a leader kill.

Usage: e2e_alerting_test.py VIGILD VIGILCTL

- Alertmanager 0.25 (Debian's prometheus-alertmanager) runs on loopback with a
  webhook receiver that posts to a small HTTP sink in this test. Its route has
  group_wait 1s, group_interval 2s and repeat_interval 1h: a change to the
  alert group is notified within seconds, an unchanged one not again during
  the test, so every webhook call is one episode's firing or resolution.
- Bad rule files (YAML syntax, unknown function, duplicate group names) are
  refused by `vigilctl rules apply` (line-numbered errors, nothing sent) and by
  the server itself (POST /api/v1/admin/rules answers 400); the rules in force
  stay on every node.
- `vigilctl rules apply` (on a follower) commits an alerting rule with `for: 8s`
  at a 1s group interval and a recording rule.
- The test writes e2e_metric=1: the alert goes pending; 3 s into `for` the Raft
  leader is killed with SIGKILL. The new leader must carry on: the same
  activeAt, firing at activeAt + 8s (before any reset alert could fire, that is
  before kill + 8s), exactly one firing notification at the sink.
- The killed node restarts and shows the same alert (its state comes back from
  the control plane's registers).
- The test writes e2e_metric=0: exactly one resolved notification, with the same
  startsAt as the firing one.
- A single vigild (no --peers) with --rule_files keeps its alert state on disk:
  killed with SIGKILL while an alert is pending, it restarts showing the same
  activeAt (its `for` is not restarted) and the alert then fires.
Every wait polls under a deadline; every process is killed by pid at exit.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
from datetime import datetime, timezone

import vigiltest
from vigiltest import Deadline, log

FOR_S = 8
KILL_INTO_FOR_S = 3
ALERT = "E2EHigh"

RULES = f"""groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: {ALERT}
        expr: e2e_metric > 0.5
        for: {FOR_S}s
        labels:
          severity: page
        annotations:
          summary: "e2e_metric is {{{{ $value }}}} on {{{{ $labels.instance }}}}"
      - record: e2e:metric:doubled
        expr: e2e_metric * 2
"""

BAD_RULES = {
    # name: (content, what the error must say)
    "syntax.yml": ("groups:\n  - name: bad\n    rules: [\n      - alert: X\n", "syntax.yml:"),
    "unknown_function.yml": (
        "groups:\n  - name: bad\n    rules:\n      - alert: X\n        expr: nosuchfunc(up)\n",
        "unknown_function.yml:5:"),
    "duplicate_groups.yml": (
        "groups:\n  - name: dup\n    rules:\n      - record: a\n        expr: up\n"
        "  - name: dup\n    rules:\n      - record: b\n        expr: up\n",
        "duplicate_groups.yml:6:"),
}


def find_alertmanager():
    for candidate in ("prometheus-alertmanager", "alertmanager"):
        path = shutil.which(candidate)
        if path:
            return path
    if os.path.exists("/usr/bin/prometheus-alertmanager"):
        return "/usr/bin/prometheus-alertmanager"
    raise AssertionError("prometheus-alertmanager is not installed: run tools/install-deps "
                         "(Debian package prometheus-alertmanager)")


def parse_time(s):
    """RFC 3339 with any number of fraction digits (Go prints nanoseconds) -> epoch seconds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", s)
    if not m:
        raise AssertionError(f"bad time {s!r}")
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return base.astimezone(timezone.utc).timestamp() + frac


class Sink:
    """The webhook receiver: records every notification Alertmanager posts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.posts = []  # (wall time, payload)
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink.lock:
                    sink.posts.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def notifications(self, status=None):
        with self.lock:
            return [p for _, p in self.posts if status is None or p["status"] == status]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Alertmanager:
    def __init__(self, binary, sink_port):
        self.dir = vigiltest.temp_dir("alertmanager-")
        self.port = vigiltest.free_port()
        config = os.path.join(self.dir, "alertmanager.yml")
        with open(config, "w") as f:
            f.write(f"""route:
  receiver: sink
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:{sink_port}/hook
        send_resolved: true
""")
        self.log_path = os.path.join(self.dir, "alertmanager.log")
        with open(self.log_path, "wb") as logf:
            self.proc = vigiltest.spawn(
                [binary, f"--config.file={config}", f"--storage.path={self.dir}/data",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
                stdout=logf, stderr=subprocess.STDOUT)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"alertmanager exited with {self.proc.returncode}:\n"
                                 f"{self.log_tail()}")
        try:
            return vigiltest.http("GET", self.url + "/-/ready", timeout=2)[0] == 200
        except OSError:
            return False

    def log_tail(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-3000:]


class Node(vigiltest.FixedPortVigild):
    """A cluster member."""

    def __init__(self, binary, node_id, ports, peers, extra_args):
        super().__init__(binary, ports, extra_args=[f"--node_id={node_id}", f"--peers={peers}",
                                                    "--num_shards=16", *extra_args])
        self.node_id = node_id

    def role(self):
        try:
            status, body = vigiltest.http("GET", self.http_url + "/debug/raft", timeout=2)
        except OSError:
            return None
        return json.loads(body).get("role") if status == 200 else None

    def alerts(self):
        """[alert] of GET /api/v1/alerts, or None if the node does not answer."""
        try:
            status, doc = self.api("/api/v1/alerts")
        except (OSError, AssertionError):
            return None
        return doc["data"]["alerts"] if status == 200 else None

    def rule_groups(self):
        status, doc = self.api("/api/v1/rules")
        assert status == 200, doc
        return [(g["file"], g["name"], [r["name"] for r in g["rules"]])
                for g in doc["data"]["groups"]]

    def instant(self, expr):
        status, doc = self.api("/api/v1/query", query=expr)
        assert status == 200 and doc["status"] == "success", doc
        return doc["data"]["result"]

    def metric(self, name_and_labels):
        status, body = vigiltest.http("GET", self.http_url + "/metrics", timeout=10)
        assert status == 200
        for line in body.decode().splitlines():
            if line.startswith(name_and_labels + " "):
                return float(line.split()[-1])
        return None


class SingleNode(vigiltest.FixedPortVigild):
    """A vigild without --peers."""

    alerts = Node.alerts


def vigilctl_apply(vigilctl, node, path):
    return subprocess.run([vigilctl, f"--http_addr=127.0.0.1:{node.http_port}", "rules", "apply",
                           path], capture_output=True, text=True, timeout=60)


def write_metric(nodes, value, deadline):
    """Writes e2e_metric{instance="a"}=value now through any live node; returns its time (s)."""
    t_ms = int(time.time() * 1000)
    series = [(vigiltest.series_labels("e2e_metric", instance="a"), [(t_ms, value)])]
    while True:
        for n in nodes:
            if not n.alive():
                continue
            try:
                if n.remote_write(series, timeout=10)[0] == 204:
                    return t_ms / 1000
            except OSError:
                pass
        deadline.check(f"writing e2e_metric={value}")
        time.sleep(0.1)


def one_alert(nodes, state):
    """(node, alert) from the first live node showing ALERT in `state`, else None."""
    for n in nodes:
        if not n.alive():
            continue
        for a in n.alerts() or []:
            if a["labels"].get("alertname") == ALERT and a["state"] == state:
                return n, a
    return None


def test(argv):
    vigild, vigilctl = argv[0], argv[1]
    deadline = Deadline(150)
    am_binary = find_alertmanager()
    sink = Sink()
    am = Alertmanager(am_binary, sink.port)

    ports = {i: (vigiltest.free_port(), vigiltest.free_port()) for i in (1, 2, 3)}
    peers = ",".join(f"{i}=127.0.0.1:{g}/127.0.0.1:{h}" for i, (h, g) in ports.items())
    common = [f"--alertmanager_url={am.url}", "--evaluation_interval=1s",
              "--external_labels=cluster=e2e", "--external_url=http://vigil.example:9401"]
    nodes = {i: Node(vigild, i, ports[i], peers, common) for i in (1, 2, 3)}
    for n in nodes.values():
        n.start()
    vigiltest.wait_until(am.ready, deadline, "alertmanager ready", interval=0.1)
    vigiltest.wait_until(lambda: sum(n.role() == "leader" for n in nodes.values()) == 1,
                         deadline, "a Raft leader", interval=0.1)
    leader = next(n for n in nodes.values() if n.role() == "leader")
    follower = next(n for n in nodes.values() if n is not leader)
    log(f"cluster up, node {leader.node_id} leads; alertmanager on {am.url}")

    work = vigiltest.temp_dir("alerting-rules-")
    rules_path = os.path.join(work, "e2e.yml")
    with open(rules_path, "w") as f:
        f.write(RULES)
    t0 = time.monotonic()
    r = vigilctl_apply(vigilctl, follower, rules_path)
    assert r.returncode == 0, f"rules apply failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    log(f"rules applied through node {follower.node_id} in {time.monotonic() - t0:.2f}s:\n"
        f"{r.stdout.strip()}")
    assert f"alert {ALERT} for 8s" in r.stdout, r.stdout
    want_groups = [(rules_path, "e2e", [ALERT, "e2e:metric:doubled"])]
    vigiltest.wait_until(lambda: all(n.rule_groups() == want_groups for n in nodes.values()),
                         deadline, "the rules on every node", interval=0.1)

    # Bad rule files change nothing, whether vigilctl or the server catches them.
    for name, (content, where) in BAD_RULES.items():
        path = os.path.join(work, name)
        with open(path, "w") as f:
            f.write(content)
        r = vigilctl_apply(vigilctl, follower, path)
        assert r.returncode == 1, f"{name}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert where in r.stderr and "not applied" in r.stderr, f"{name}: {r.stderr}"
        status, body = vigiltest.http(
            "POST", follower.http_url + "/api/v1/admin/rules?file=" + name, content.encode(),
            {"Content-Type": "application/yaml"})
        assert status == 400, f"{name}: server answered {status} {body[:300]!r}"
        assert json.loads(body)["status"] == "error"
    for n in nodes.values():
        assert n.rule_groups() == want_groups, (n.node_id, n.rule_groups())
    log("bad rule files (syntax, unknown function, duplicate groups) refused; rules unchanged")

    # The episode: pending, the leader dies 3 s into `for`, firing after `for`.
    live = list(nodes.values())
    write_metric(live, 1.0, deadline)
    found = None

    def pending():
        nonlocal found
        found = one_alert(live, "pending")
        return found is not None
    vigiltest.wait_until(pending, deadline, "the alert pending", interval=0.1)
    active_at = parse_time(found[1]["activeAt"])
    log(f"pending, activeAt {found[1]['activeAt']}")
    leader = next((n for n in live if n.role() == "leader"), leader)
    vigiltest.wait_until(lambda: time.time() >= active_at + KILL_INTO_FOR_S, deadline,
                         "the middle of `for`", interval=0.05)
    killed_at = time.time()
    leader.kill9()
    log(f"killed the leader, node {leader.node_id}, {killed_at - active_at:.2f}s after activeAt")
    survivors = [n for n in live if n is not leader]

    def firing():
        nonlocal found
        found = one_alert(survivors, "firing")
        return found is not None
    vigiltest.wait_until(firing, deadline, "the alert firing after the failover", interval=0.1)
    assert parse_time(found[1]["activeAt"]) == active_at, (found[1]["activeAt"], active_at)
    vigiltest.wait_until(lambda: sink.notifications("firing"), deadline,
                         "the firing notification at the webhook", interval=0.1)
    note = sink.notifications("firing")[0]
    assert len(note["alerts"]) == 1, note
    alert = note["alerts"][0]
    fired_at = parse_time(alert["startsAt"])
    log(f"firing notification: startsAt {alert['startsAt']} = activeAt + "
        f"{fired_at - active_at:.2f}s; the kill was at activeAt + {killed_at - active_at:.2f}s")
    assert alert["labels"]["alertname"] == ALERT and alert["labels"]["severity"] == "page", alert
    assert alert["labels"]["cluster"] == "e2e", alert  # external label
    assert alert["annotations"]["summary"] == "e2e_metric is 1 on a", alert
    assert alert["generatorURL"].startswith("http://vigil.example:9401/graph?"), alert
    # Fires at activeAt + for: the failover did not restart `for` (a reset alert
    # could not fire before kill + for).
    assert FOR_S - 0.01 <= fired_at - active_at <= FOR_S + 4, fired_at - active_at
    assert fired_at < killed_at + FOR_S, (fired_at, killed_at)

    # The recording rule and ALERTS are written through the cluster.
    survivor = survivors[0]
    vigiltest.wait_until(lambda: [float(s["value"][1]) for s in
                                  survivor.instant('e2e:metric:doubled{instance="a"}')] == [2.0],
                         deadline, "the recording rule's series", interval=0.2)
    vigiltest.wait_until(lambda: len(survivor.instant(
        f'ALERTS{{alertname="{ALERT}",alertstate="firing"}}')) == 1, deadline,
        "ALERTS{alertstate=\"firing\"}", interval=0.2)

    # The killed node comes back with the committed state.
    leader.start()
    live = list(nodes.values())

    def restarted_sees_firing():
        return any(a["state"] == "firing" and parse_time(a["activeAt"]) == active_at
                   for a in leader.alerts() or [])
    vigiltest.wait_until(restarted_sees_firing, deadline,
                         "the restarted node showing the firing alert", interval=0.2)
    log(f"node {leader.node_id} restarted and shows the alert firing since the same activeAt")

    # Give Alertmanager several group intervals to notify a second time (it must not).
    settle = time.time() + 5
    vigiltest.wait_until(lambda: time.time() >= settle, deadline, "settling", interval=0.2)
    firing_notes = sink.notifications("firing")
    assert len(firing_notes) == 1, f"{len(firing_notes)} firing notifications: {firing_notes}"

    # The condition clears: one resolved notification for the same episode.
    write_metric(live, 0.0, deadline)
    vigiltest.wait_until(lambda: sink.notifications("resolved"), deadline,
                         "the resolved notification", interval=0.1)
    settle = time.time() + 5
    vigiltest.wait_until(lambda: time.time() >= settle, deadline, "settling", interval=0.2)
    resolved = sink.notifications("resolved")
    assert len(resolved) == 1, resolved
    assert parse_time(resolved[0]["alerts"][0]["startsAt"]) == fired_at, resolved
    assert len(sink.notifications()) == 2, sink.notifications()
    log("one resolved notification with the same startsAt; 2 notifications in all")

    new_leader = next(n for n in live if n.role() == "leader")
    sent = new_leader.metric(f'vigil_notifications_sent_total{{alertmanager="{am.url}"}}')
    missed = new_leader.metric('vigil_rule_group_iterations_missed_total'
                               f'{{rule_group="{rules_path};e2e"}}')
    log(f"leader node {new_leader.node_id}: vigil_notifications_sent_total {sent}, "
        f"vigil_rule_group_iterations_missed_total {missed}")
    assert sent is not None and sent >= 1, sent
    assert missed is not None, "vigil_rule_group_iterations_missed_total not exported"
    sink.close()
    single_node_restart(vigild, work, deadline)


def single_node_restart(vigild, work, deadline):
    """A single node's pending alert keeps its activeAt across a SIGKILL and restart."""
    rules_path = os.path.join(work, "single.yml")
    with open(rules_path, "w") as f:
        f.write(RULES.replace("e2e_metric", "single_metric"))
    node = SingleNode(
        vigild, (vigiltest.free_port(), vigiltest.free_port()),
        extra_args=[f"--rule_files={rules_path}", "--evaluation_interval=1s"])
    node.start()
    series = [(vigiltest.series_labels("single_metric", instance="a"),
               [(int(time.time() * 1000), 1.0)])]
    assert node.remote_write(series, timeout=10)[0] == 204
    found = None

    def alert_in(states):
        nonlocal found
        found = next((a for a in node.alerts() or []
                      if a["labels"].get("alertname") == ALERT and a["state"] in states), None)
        return found is not None
    vigiltest.wait_until(lambda: alert_in(("pending",)), deadline, "single node: pending",
                         interval=0.1)
    active_at = found["activeAt"]
    node.kill9()
    node.start()
    assert alert_in(("pending", "firing")), f"no alert right after the restart: {node.alerts()}"
    assert found["activeAt"] == active_at, (found["activeAt"], active_at)
    vigiltest.wait_until(lambda: alert_in(("firing",)), deadline, "single node: firing",
                         interval=0.1)
    assert found["activeAt"] == active_at, (found["activeAt"], active_at)
    log(f"single node: restarted while pending, kept activeAt {active_at}, then fired")
    node.kill9()


if __name__ == "__main__":
    vigiltest.main(test)
