"""vigild processes inside the namespaces: start, kill -9, pause, restart, wipe.

Every process the harness starts gets a pid file under
/tmp/vigil-jepsen/<tag>/pids/, holding "pid binary-path". `--cleanup` kills
only those pids, and only while /proc/<pid>/exe is still that binary.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import time

STATE_ROOT = "/tmp/vigil-jepsen"
HTTP_PORT = 9401
GRPC_PORT = 7401
FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/faketime/libfaketimeMT.so.1"]


def faketime_lib():
    for path in FAKETIME_LIBS:
        if os.path.exists(path):
            return path
    return None


def http_get(ip, port, path, timeout=2.0):
    """GET over a direct connection (never a proxy). Returns (status, body)."""
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def http_get_json(ip, port, path, timeout=2.0):
    """The JSON body of a 200 answer, or None for any other outcome."""
    try:
        status, body = http_get(ip, port, path, timeout)
        return json.loads(body) if status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


class NodeMap(dict):
    """The nodes clients may use now ({id: Node}); a node no longer in it (being
    removed) is still found by id, so a client that picked it a moment before
    the map changed finishes its operation instead of failing on a KeyError.
    Replaced whole, never mutated, so readers iterate a stable map."""

    def __init__(self, nodes, every):
        super().__init__(nodes)
        self.every = every  # {id: Node} of every node the run ever started

    def __missing__(self, key):
        return self.every[key]


class Node:
    def __init__(self, run, i, slot=None, joined=False):
        """Node `i` (its vigild --node_id) in namespace slot `slot` (default i).
        A joined node was added during the run: it starts (and restarts) with
        --join=<a current member> instead of --peers."""
        self.run = run
        self.id = i
        self.slot = i if slot is None else slot
        self.joined = joined
        self.ip = run.net.ips[self.slot]
        self.http_port = HTTP_PORT
        self.grpc_port = GRPC_PORT
        self.dir = os.path.join(run.state_dir, "n%d" % i)
        self.data_dir = os.path.join(self.dir, "data")
        self.clock_file = os.path.join(self.dir, "faketime")
        self.pid_file = os.path.join(run.state_dir, "pids", "n%d.pid" % i)
        self.log_path = os.path.join(run.out_dir, "n%d.log" % i)
        self.proc = None
        self.paused = False
        self.starts = 0
        os.makedirs(self.data_dir, exist_ok=True)
        self.set_clock_offset(0)

    @property
    def grpc_addr(self):
        return "%s:%d" % (self.ip, self.grpc_port)

    def set_clock_offset(self, seconds):
        with open(self.clock_file + ".tmp", "w") as f:
            f.write("%+ds\n" % int(seconds))
        os.replace(self.clock_file + ".tmp", self.clock_file)

    def command(self):
        cfg = self.run.cfg
        args = [cfg.vigild, "--data_dir=" + self.data_dir, "--node_id=%d" % self.id,
                "--http_addr=%s:%d" % (self.ip, self.http_port),
                "--grpc_addr=%s:%d" % (self.ip, self.grpc_port)]
        if self.joined:
            args.append("--join=" + self.run.join_address(self.id))
        elif self.run.peers_flag:
            args.append("--peers=" + self.run.peers_flag)
        args += cfg.vigild_args
        env = []
        if self.run.faketime:
            env = ["env", "LD_PRELOAD=" + self.run.faketime,
                   "FAKETIME_TIMESTAMP_FILE=" + self.clock_file,
                   "FAKETIME_CACHE_DURATION=1", "FAKETIME_DONT_FAKE_MONOTONIC=1"]
        return ["ip", "netns", "exec", self.run.net.netns(self.slot)] + env + args

    def start(self):
        assert self.proc is None or self.proc.poll() is not None
        if self.run.tearing_down:
            raise RuntimeError("node %d: not starting during teardown" % self.id)
        self.starts += 1
        cmd = self.command()
        log = open(self.log_path, "ab")
        log.write(("=== start %d at %.3f: %s\n" % (self.starts, self.run.now(),
                                                   " ".join(cmd))).encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        os.makedirs(os.path.dirname(self.pid_file), exist_ok=True)
        with open(self.pid_file, "w") as f:
            f.write("%d %s\n" % (self.proc.pid, os.path.realpath(self.run.cfg.vigild)))
        self.paused = False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            try:
                status, _ = http_get(self.ip, self.http_port, "/-/ready", timeout=1.0)
                if status == 200:
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        return False

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self):
        """kill -9 and reap."""
        if self.proc is None:
            return
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.paused = False

    def pause(self):
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.signal(signal.SIGCONT)
        self.paused = False

    def wipe(self):
        shutil.rmtree(self.data_dir, ignore_errors=True)
        os.makedirs(self.data_dir, exist_ok=True)

    def stop(self, timeout=10):
        """Graceful stop at the end (SIGCONT first: a paused process ignores TERM)."""
        stop_all([self], timeout)


def stop_all(nodes, timeout=10):
    """SIGTERM to every node at once (SIGCONT first: a paused process ignores TERM),
    then SIGKILL whichever has not exited `timeout` seconds later."""
    running = [n for n in nodes if n.alive()]
    for n in running:
        n.resume()
        n.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for n in running:
        try:
            n.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            n.kill()


def kill_recorded(state_dir):
    """Kills the processes whose pid files a run wrote, if still the same binary."""
    killed = []
    pid_dir = os.path.join(state_dir, "pids")
    if not os.path.isdir(pid_dir):
        return killed
    for name in os.listdir(pid_dir):
        try:
            with open(os.path.join(pid_dir, name)) as f:
                pid_s, binary = f.read().split(None, 1)
            pid = int(pid_s)
            if os.path.realpath("/proc/%d/exe" % pid) == binary.strip():
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        except (OSError, ValueError):
            pass
    return killed
