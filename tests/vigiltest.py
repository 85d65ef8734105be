"""Shared helpers of Vigil's end-to-end tests: real vigild processes on loopback.

Vigild(binary).start() runs a node on free ports with its own temporary data
directory and waits for /-/ready by polling under a deadline. Every process a
test starts is killed when the test exits, however it exits: by atexit, and by
the kernel (PR_SET_PDEATHSIG) if the test process itself is killed.

Remote-write bodies are built here by hand (protobuf encoder + literal-only
snappy framing), so the tests need nothing beyond the Python standard library
and can also build the malformed bodies the bad-input test sends.
"""

import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

_PR_SET_PDEATHSIG = 1
_children = []  # every Popen started here, for the atexit cleanup
_tempdirs = []
_nodes = []  # every Vigild, to show their logs when a test fails


# Loaded once here, so that the forked child only makes the call (no dlopen
# between fork and exec while other threads may hold the loader's lock).
_prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl


def _die_with_parent():
    # The kernel sends this when the *thread* that forked exits: spawn from the
    # main thread only.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _cleanup():
    for p in _children:
        if p.poll() is None:
            p.kill()
            p.wait()
    for d in _tempdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
# ctest sends SIGTERM on timeout on some platforms: turn it into a normal exit
# so that atexit runs.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


class Deadline:
    """A point in time a test must not run past."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def expired(self):
        return self.left() <= 0

    def check(self, what):
        if self.expired():
            raise TimeoutError(f"deadline passed while {what}")


def temp_dir(prefix="vigiltest-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.append(d)
    return d


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args, **kwargs):
    """Popen that is killed with this process and at exit."""
    p = subprocess.Popen(args, preexec_fn=_die_with_parent, **kwargs)
    _children.append(p)
    return p


def wait_until(predicate, deadline, what, interval=0.05):
    """Polls predicate() until true; raises TimeoutError naming `what`."""
    while True:
        if predicate():
            return
        deadline.check(what)
        time.sleep(interval)


# ---- HTTP -------------------------------------------------------------------

def http(method, url, body=None, headers=None, timeout=30):
    """Returns (status, body bytes); never raises for HTTP error statuses."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ---- remote-write encoding ---------------------------------------------------

def _varint(n):
    n &= (1 << 64) - 1  # negative int64 as ten bytes, as protobuf does
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(num, data):
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def encode_label(name, value):
    if isinstance(name, str):
        name = name.encode()
    if isinstance(value, str):
        value = value.encode()
    return _field_bytes(1, name) + _field_bytes(2, value)


def encode_sample(t_ms, value):
    return _varint(1 << 3 | 1) + struct.pack("<d", value) + _varint(2 << 3) + _varint(t_ms)


def encode_write_request(series):
    """series: [(labels as [(name, value)] in the order to send, [(t_ms, value)])]."""
    out = bytearray()
    for labels, samples in series:
        ts = bytearray()
        for name, value in labels:
            ts += _field_bytes(1, encode_label(name, value))
        for t, v in samples:
            ts += _field_bytes(2, encode_sample(t, v))
        out += _field_bytes(1, bytes(ts))
    return bytes(out)


def snappy_block(data):
    """Snappy block format with literals only: valid, just not compressed."""
    out = bytearray(_varint(len(data)))
    for i in range(0, len(data), 65536):
        chunk = data[i:i + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        else:
            out.append(61 << 2)
            out += struct.pack("<H", n)
        out += chunk
    return bytes(out)


def series_labels(name, **labels):
    """Sorted label list for a series, as remote-write requires."""
    return sorted([("__name__", name)] + list(labels.items()))


# ---- vigild -----------------------------------------------------------------

class Vigild:
    """One vigild process on loopback, restartable on the same data directory."""

    def __init__(self, binary, data_dir=None, extra_args=()):
        self.binary = binary
        self.work_dir = temp_dir("vigild-")
        self.data_dir = data_dir or os.path.join(self.work_dir, "data")
        self.extra_args = list(extra_args)
        self.proc = None
        self.http_port = self.grpc_port = None
        self.log_path = None
        self.starts = 0
        _nodes.append(self)

    @property
    def http_url(self):
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_addr(self):
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout=90):
        """Starts and waits for /-/ready; returns seconds from spawn to ready."""
        deadline = Deadline(timeout)
        for attempt in range(3):
            # A free port can be taken between our probe and vigild's bind:
            # then vigild exits and we try other ports.
            self.http_port, self.grpc_port = free_port(), free_port()
            self.starts += 1
            self.log_path = os.path.join(self.work_dir, f"vigild-{self.starts}.log")
            args = [self.binary, f"--data_dir={self.data_dir}",
                    f"--http_addr=127.0.0.1:{self.http_port}",
                    f"--grpc_addr=127.0.0.1:{self.grpc_port}"] + self.extra_args
            t0 = time.monotonic()
            with open(self.log_path, "wb") as logf:
                self.proc = spawn(args, stdout=logf, stderr=subprocess.STDOUT)
            if self._wait_ready(deadline):
                return time.monotonic() - t0
            log(f"vigild exited with {self.proc.returncode} (attempt {attempt + 1}):\n{self.log_tail()}")
        raise RuntimeError("vigild did not start")

    def _wait_ready(self, deadline):
        while True:
            if self.proc.poll() is not None:
                return False
            try:
                status, _ = http("GET", self.http_url + "/-/ready", timeout=2)
                if status == 200:
                    return True
            except OSError:
                pass
            if deadline.expired():
                self.kill9()
                raise TimeoutError(f"vigild not ready in time:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_text(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_tail(self, lines=30):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def terminate(self, timeout=60):
        """SIGTERM and wait; returns the exit code (raises if it does not exit)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise TimeoutError(f"vigild did not exit {timeout}s after SIGTERM:\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- API helpers --

    def remote_write(self, series, timeout=30):
        body = snappy_block(encode_write_request(series))
        return self.post_write(body, timeout=timeout)

    def post_write(self, body, headers=None, timeout=30):
        h = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
             "X-Prometheus-Remote-Write-Version": "0.1.0"}
        h.update(headers or {})
        return http("POST", self.http_url + "/api/v1/write", body, h, timeout=timeout)

    def api(self, path, **params):
        """GET a Prometheus API endpoint; returns the decoded JSON envelope."""
        url = self.http_url + path + "?" + urllib.parse.urlencode(params, doseq=True)
        status, body = http("GET", url)
        try:
            doc = json.loads(body)
        except ValueError:
            raise AssertionError(f"GET {path} -> {status}: not JSON: {body[:300]!r}")
        return status, doc

    def metric(self, name_and_labels):
        """The value of one line of /metrics (`name` or `name{labels}`), or None if absent."""
        status, body = http("GET", self.http_url + "/metrics", timeout=10)
        if status != 200:
            return None
        for line in body.decode().splitlines():
            if line.startswith(name_and_labels + " "):
                return float(line.split()[-1])
        return None

    def raw_samples(self, selector, at_ms, window_s):
        """{labels tuple: [(t_ms, value)]} of `selector[window]` at `at_ms`."""
        status, doc = self.api("/api/v1/query", query=f"{selector}[{window_s}s]",
                               time=f"{at_ms / 1000:.3f}")
        if status != 200 or doc.get("status") != "success":
            raise AssertionError(f"query {selector} failed: {status} {doc}")
        out = {}
        for s in doc["data"]["result"]:
            key = tuple(sorted(s["metric"].items()))
            out[key] = [(round(float(t) * 1000), float(v)) for t, v in s["values"]]
        return out


class FixedPortVigild(Vigild):
    """A vigild whose ports stay the same across restarts (cluster peers know them)."""

    def __init__(self, binary, ports, extra_args=()):
        super().__init__(binary, extra_args=extra_args)
        self.http_port, self.grpc_port = ports

    def start(self, timeout=90):
        deadline = Deadline(timeout)
        self.starts += 1
        self.log_path = os.path.join(self.work_dir, f"vigild-{self.starts}.log")
        args = [self.binary, f"--data_dir={self.data_dir}",
                f"--http_addr=127.0.0.1:{self.http_port}",
                f"--grpc_addr=127.0.0.1:{self.grpc_port}"] + self.extra_args
        with open(self.log_path, "wb") as logf:
            self.proc = spawn(args, stdout=logf, stderr=subprocess.STDOUT)
        if not self._wait_ready(deadline):
            raise RuntimeError(f"vigild did not start:\n{self.log_tail()}")


def wait_accepting_writes(nodes, deadline, name):
    """Polls until every node acks a remote-write of one probe sample of series `name`.

    A cluster elects a Raft leader and bootstraps its shard map first: until then writes
    answer 503. The probe series is stored like any other (count it where series are counted).
    """
    probe = [(series_labels(name), [(int(time.time() * 1000), 1.0)])]
    wait_until(lambda: all(n.remote_write(probe)[0] == 204 for n in nodes), deadline,
               "the cluster accepting writes", interval=0.1)
    log("cluster accepts writes")


def vigilctl(binary, addr, *args, stdin=None, timeout=60):
    """Runs vigilctl; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run([binary, f"--addr={addr}", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=_die_with_parent)


def main(test_fn):
    """Runs test_fn(argv[1:]) and exits 0, or prints the failure and exits 1."""
    t0 = time.monotonic()
    try:
        test_fn(sys.argv[1:])
    except Exception:  # pylint: disable=broad-except
        import traceback
        traceback.print_exc()
        for n in _nodes:
            log(f"--- last lines of {n.log_path} ---\n{n.log_tail()}")
        log(f"FAIL after {time.monotonic() - t0:.1f}s")
        _cleanup()
        sys.exit(1)
    log(f"PASS in {time.monotonic() - t0:.1f}s")
    _cleanup()
    sys.exit(0)
