"""What bench/cluster-ingest, cluster-query and cluster-converge share.

Binaries (built like the other bench scripts unless --build_dir is given), a
vigild cluster of N nodes on loopback (free ports, --peers, RF given), runs of
vigil-bench parsed from its RESULT line, and the small statistics and table
printing the scripts report with. Process handling is tests/vigiltest.py's:
every vigild and vigil-bench is spawned with PR_SET_PDEATHSIG and killed by pid
at exit (call `cleanup()` in a finally).
"""

import json
import math
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import vigiltest  # noqa: E402  (process handling shared with the e2e tests)
from vigiltest import Deadline, log  # noqa: E402,F401  (re-exported for the scripts)

STOP_TIMEOUT = 120


def add_build_arg(parser):
    parser.add_argument("--build_dir", default="",
                        help="use vigild/vigil-bench from here (relative to the repo); no build")


def binaries(args):
    """(vigild, vigil-bench) paths; installs and builds into build/ without --build_dir."""
    if not args.build_dir:
        run([os.path.join(ROOT, "tools/install-deps"), "--bench"], timeout=1800)
        run([os.path.join(ROOT, "tools/build"), "vigild", "vigil-bench"], timeout=3600)
        args.build_dir = "build"
    build = os.path.join(ROOT, args.build_dir)
    return os.path.join(build, "server/vigild"), os.path.join(build, "tools/vigil-bench")


def run(cmd, timeout):
    """Runs cmd (killed with this process); its stdout, or RuntimeError on failure."""
    log("$ " + " ".join(cmd))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         preexec_fn=vigiltest._die_with_parent)  # pylint: disable=protected-access
    if res.returncode != 0:
        raise RuntimeError(f"{os.path.basename(cmd[0])} failed ({res.returncode}):\n"
                           f"{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return res.stdout


def cleanup():
    vigiltest._cleanup()  # pylint: disable=protected-access


# ---- the cluster -------------------------------------------------------------

class Node(vigiltest.FixedPortVigild):
    """One vigild; in a cluster its ports stay fixed across restarts."""

    def __init__(self, binary, node_id, ports, extra_args):
        super().__init__(binary, ports, extra_args=extra_args)
        self.node_id = node_id

    def stop(self):
        """SIGTERM (flushes) and wait; SIGKILL if it does not exit in time."""
        if not self.alive():
            return
        try:
            self.terminate(timeout=STOP_TIMEOUT)
        except TimeoutError as e:
            log(f"node {self.node_id}: {e}")

    def cpu_seconds(self):
        """User + system CPU time of the running process."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def disk_bytes(self):
        return dir_bytes(self.data_dir)

    def url(self, path):
        return self.http_url + path


def start_cluster(vigild, n, rf, extra_args=(), deadline=None, probe="bench_probe", plain=False):
    """Starts n nodes (ids 1..n) and waits until each acks a write.

    plain: one vigild without --peers (no data plane, no Raft). Otherwise every
    node gets --node_id, --peers (all n) and --replication_factor=rf.
    Returns {id: Node}.
    """
    deadline = deadline or Deadline(300)
    ports = {i: (vigiltest.free_port(), vigiltest.free_port()) for i in range(1, n + 1)}
    if plain:
        nodes = {1: Node(vigild, 1, ports[1], list(extra_args))}
    else:
        peers = ",".join(f"{i}=127.0.0.1:{g}/127.0.0.1:{h}" for i, (h, g) in ports.items())
        nodes = {i: Node(vigild, i, ports[i], [f"--node_id={i}", f"--peers={peers}",
                                                f"--replication_factor={rf}", *extra_args])
                 for i in ports}
    for node in nodes.values():
        node.start(timeout=max(10, deadline.left()))
    vigiltest.wait_accepting_writes(nodes.values(), deadline, probe)
    return nodes


def stop_cluster(nodes):
    for node in nodes.values():
        node.stop()


def cluster_status(node):
    status, body = vigiltest.http("GET", node.url("/api/v1/status/cluster"), timeout=10)
    if status != 200:
        raise RuntimeError(f"node {node.node_id}: cluster status {status}: {body[:300]!r}")
    return json.loads(body)


# ---- vigil-bench ---------------------------------------------------------------

def vigil_bench(bench_bin, target, flags, timeout):
    """Runs vigil-bench against `target` ("--url=..." or "--grpc=...").

    Returns its RESULT line as a dict of floats; raises if it did not print one.
    A run with failed requests still returns (errors > 0), so that it is reported.
    """
    cmd = [bench_bin, target, *flags]
    log("$ " + " ".join(cmd))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         preexec_fn=vigiltest._die_with_parent)  # pylint: disable=protected-access
    m = re.search(r"^RESULT (.*)$", res.stdout, re.M)
    if m is None:
        raise RuntimeError(f"vigil-bench printed no RESULT ({res.returncode}):\n"
                           f"{res.stdout[-2000:]}{res.stderr[-2000:]}")
    if res.stderr.strip():
        log(res.stderr.strip()[-1000:])
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


# ---- figures -------------------------------------------------------------------

def dir_bytes(path):
    """Allocated bytes of every file under path."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return total


def percentile(xs, q):
    """Nearest-rank percentile (q in [0, 1]); NaN for no data."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def median(xs):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def table(headers, rows):
    """A markdown table as a string."""
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)

