"""A real Alertmanager and a webhook receiver for the alerts workload.

Alertmanager (Debian's prometheus-alertmanager) runs on the host, listening on
the run bridge's host address (10.77.X.1), the one address every node's
namespace routes to; its webhook receiver is a small HTTP server in the
harness on 127.0.0.1 that appends every call, with its receive time, to the
run's history (process "alertmanager", f "notification"). The route groups by
alertname and episode with group_wait 1s, group_interval 2s and
repeat_interval 1h: a change to an episode's alert is notified within
seconds and an unchanged one never again during a run, so every webhook call
is one episode's firing or resolution, and a second firing call for one
episode is a real duplicate.

The process gets a pid file like the nodes' (`jepsen/run --cleanup` kills it
if the harness died) and is stopped in the run's teardown.
"""

import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from harness import nodes as nodes_mod

BINARIES = ["prometheus-alertmanager", "alertmanager"]


def find_binary():
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port(ip):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


def _trim(alert):
    return {k: alert.get(k) for k in ("status", "labels", "startsAt", "endsAt") if k in alert}


class Receiver:
    """The webhook sink: records each notification into the history."""

    def __init__(self, history):
        self.history = history
        self.lock = threading.Lock()
        self.notifications = []  # the history events, in receive order
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = {"status": "unparsable", "alerts": []}
                receiver.record(doc)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="webhook")
        self.thread.start()

    def record(self, doc):
        with self.lock:
            ev = self.history.add(
                type="info", process="alertmanager", f="notification", wall=time.time(),
                value={"status": doc.get("status"),
                       "alerts": [_trim(a) for a in doc.get("alerts") or []]})
            self.notifications.append(ev)

    def snapshot(self):
        with self.lock:
            return [{"time": ev["time"], "status": ev["value"]["status"],
                     "alerts": ev["value"]["alerts"]} for ev in self.notifications]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Proxy:
    """Between the nodes and Alertmanager: forwards every POST and records who sent
    what (process "alertmanager", f "sent", node from the source address), so a
    stale or duplicate notification can be traced to the node that sent it."""

    def __init__(self, history, listen_ip, target_port, node_of_ip):
        self.history = history
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    alerts = [_trim(a) for a in json.loads(body)]
                except (ValueError, TypeError, AttributeError):
                    alerts = None
                status, reply = proxy.forward(self.path, body, self.headers)
                proxy.history.add(type="info", process="alertmanager", f="sent",
                                  node=node_of_ip(self.client_address[0]),
                                  value={"alerts": alerts, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.target_port = target_port
        self.server = http.server.ThreadingHTTPServer((listen_ip, 0), Handler)
        self.ip, self.port = listen_ip, self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="am-proxy")
        self.thread.start()

    @property
    def url(self):
        return "http://%s:%d" % (self.ip, self.port)

    def forward(self, path, body, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=10)
        try:
            conn.request("POST", path, body=body,
                         headers={"Content-Type": headers.get("Content-Type",
                                                              "application/json")})
            res = conn.getresponse()
            return res.status, res.read()
        except (OSError, http.client.HTTPException) as e:
            return 502, repr(e).encode()
        finally:
            conn.close()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Alertmanager:
    def __init__(self, binary, listen_ip, state_dir, log_path, receiver_port):
        self.binary = binary
        self.ip = listen_ip
        self.port = free_port(listen_ip)
        self.dir = os.path.join(state_dir, "alertmanager")
        os.makedirs(self.dir, exist_ok=True)
        self.config = os.path.join(self.dir, "alertmanager.yml")
        with open(self.config, "w") as f:
            f.write("""route:
  receiver: sink
  group_by: ['alertname', 'episode']
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: http://127.0.0.1:%d/hook
        send_resolved: true
""" % receiver_port)
        self.log_path = log_path
        self.pid_file = os.path.join(state_dir, "pids", "alertmanager.pid")
        self.proc = None

    @property
    def url(self):
        return "http://%s:%d" % (self.ip, self.port)

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--config.file=" + self.config,
             "--storage.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=%s:%d" % (self.ip, self.port), "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        os.makedirs(os.path.dirname(self.pid_file), exist_ok=True)
        with open(self.pid_file, "w") as f:
            f.write("%d %s\n" % (self.proc.pid, os.path.realpath(self.binary)))

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if nodes_mod.http_get(self.ip, self.port, "/-/ready", timeout=1.0)[0] == 200:
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        return False

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
