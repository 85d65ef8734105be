"""One run: namespaces up, nodes up, clients + nemesis, heal, settle, check, report.

Exit codes: 0 valid; 1 a checker found a violation (or could not prove
validity); 2 usage; 3 unsupported (a nemesis this build cannot run, or a
workload with --require-supported); 4 the harness itself failed (setup).
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

from checkers import raft as raft_checker
from harness import history as history_mod
from harness import nemesis as nemesis_mod
from harness import net as net_mod
from harness import nodes as nodes_mod
from harness import report, wire, workloads

JEPSEN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(JEPSEN_DIR)
EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_UNSUPPORTED, EXIT_ERROR = 0, 1, 2, 3, 4
RAFT_PATH = "/debug/raft"
STATUS_PATH = "/api/v1/status/cluster"


def find_binary(explicit, name, sub):
    if explicit:
        return explicit
    for build in ("build-jepsen", "build"):
        path = os.path.join(REPO, build, sub, name)
        if os.access(path, os.X_OK):
            return path
    return None


def parse_args(argv):
    p = argparse.ArgumentParser(prog="jepsen/run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", default="samples",
                   help="one of %s, or several joined by commas (run side by side, "
                   "each with --clients clients)" % ", ".join(sorted(workloads.WORKLOADS)))
    p.add_argument("--nemesis", default="none",
                   help="one of %s, or several joined by commas (one at random per fault)"
                   % ", ".join(nemesis_mod.ALL_NEMESES))
    p.add_argument("--nodes", type=int, default=3, help="1 to 5")
    p.add_argument("--time", type=float, default=None,
                   help="seconds of load and faults (60; stale-read: at most 300, it ends itself)")
    p.add_argument("--seed", type=int, default=None, help="the nemesis schedule's seed")
    p.add_argument("--vigild", help="default: build-jepsen/ then build/ server/vigild")
    p.add_argument("--vigilctl", help="default: build-jepsen/ then build/ tools/vigilctl")
    p.add_argument("--vigild-arg", action="append", default=[], dest="vigild_args",
                   help="extra flag for every vigild (repeatable)")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--batch", type=int, default=5, help="max samples per write")
    p.add_argument("--op-interval", type=float, default=0.01, help="pause after an ok op")
    p.add_argument("--retry-interval", type=float, default=0.1, help="pause after a failed op")
    p.add_argument("--max-ops-per-client", type=int, default=100000)
    p.add_argument("--op-timeout", type=float, default=8.0,
                   help="client timeout (s); above vigild's 5 s write and Raft deadlines, so "
                   "their answers arrive as definite outcomes")
    p.add_argument("--quiet-min", type=float, default=2.0)
    p.add_argument("--quiet-max", type=float, default=5.0)
    p.add_argument("--fault-min", type=float, default=3.0)
    p.add_argument("--fault-max", type=float, default=8.0)
    p.add_argument("--settle", type=float, default=5.0, help="seconds between healing and reads")
    p.add_argument("--ready-timeout", type=float, default=60.0)
    p.add_argument("--cluster-timeout", type=float, default=120.0,
                   help="how long a clustered run waits for every node to agree on a leader "
                   "(at the start, and after healing)")
    p.add_argument("--membership-timeout", type=float, default=180.0,
                   help="membership nemesis: how long a change may take to settle (s)")
    p.add_argument("--membership-write-leaving", action="store_true",
                   help="membership nemesis: clients keep writing through a node being "
                   "removed until it stops (by default they stop first, as cluster/README "
                   "asks until replicas check write epochs)")
    p.add_argument("--membership-linger", type=float, default=0.0,
                   help="membership nemesis: a removed node keeps running, and clients keep "
                   "using it, for this many s while the schedule goes on (a removed node with "
                   "a stale shard map; see cluster/README's known limits)")
    p.add_argument("--probe-rounds", type=int, default=6,
                   help="stale-read workload: most isolate-the-leader rounds")
    p.add_argument("--read-timeout", type=float, default=60.0)
    p.add_argument("--check-timeout", type=float, default=120.0)
    p.add_argument("--faketime", action="store_true",
                   help="run nodes under libfaketime even without a clock nemesis")
    p.add_argument("--require-supported", action="store_true",
                   help="exit 3 when the workload is not supported by this vigild")
    p.add_argument("--store", default=os.path.join(JEPSEN_DIR, "store"))
    p.add_argument("--keep-data", action="store_true", help="keep the nodes' data dirs")
    p.add_argument("--cleanup", action="store_true",
                   help="remove leftovers of dead runs (namespaces, links, processes) and exit")
    args = p.parse_args(argv)
    if not args.cleanup and not 1 <= args.nodes <= 5:
        p.error("--nodes must be 1 to 5")
    args.workloads = args.workload.split(",")
    for w in args.workloads:
        if w not in workloads.WORKLOADS:
            p.error("unknown workload %r (one of %s)" % (w, ", ".join(sorted(workloads.WORKLOADS))))
    if len(set(args.workloads)) != len(args.workloads):
        p.error("--workload lists a workload twice")
    for n in args.nemesis.split(","):
        if n not in nemesis_mod.ALL_NEMESES:
            p.error("unknown nemesis %r (one of %s)" % (n, ", ".join(nemesis_mod.ALL_NEMESES)))
    if args.time is None:
        args.time = 300.0 if "stale-read" in args.workloads else 60.0
    if "stale-read" in args.workloads and (args.nemesis != "none" or len(args.workloads) > 1):
        p.error("the stale-read workload drives its own partitions: use it alone, "
                "with --nemesis none")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 31)
    return args


def cleanup():
    """Removes what dead runs left: processes (by pid file), namespaces, links."""
    live = set()
    root = nodes_mod.STATE_ROOT
    for tag in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        state = os.path.join(root, tag)
        if _owner_alive(state):
            live.add(tag)
            print("cleanup: run %s is live (harness pid running); left alone" % tag)
            continue
        for pid in nodes_mod.kill_recorded(state):
            print("cleanup: killed pid %d of run %s" % (pid, tag))
        shutil.rmtree(state, ignore_errors=True)
    netns, links = net_mod.remove_leftovers(live)
    for name in netns + links:
        print("cleanup: removed %s" % name)
    print("cleanup: done")
    return EXIT_VALID


def _owner_alive(state):
    try:
        with open(os.path.join(state, "owner")) as f:
            pid, start = f.read().split()
        with open("/proc/%s/stat" % pid) as f:
            return f.read().split(")")[1].split()[19] == start
    except (OSError, ValueError, IndexError):
        return False


def _proc_start_time(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(")")[1].split()[19]


class Run:
    def __init__(self, cfg):
        self.cfg = cfg
        self.tag = net_mod.new_tag()
        self.stopping = threading.Event()
        self.errors = []
        self.notes = []
        self.cleanups = []  # run at teardown, last first (the alerts workload's Alertmanager)
        self.alerting = None  # the alerts workload's rig (harness/alerts_workload.py)
        self.all_nodes = {}  # every node the run started, by id
        self.nodes = nodes_mod.NodeMap({}, self.all_nodes)  # the members clients use
        self.vigilctl = None
        self.net = None
        self.history = None
        self.faketime = None
        self.peers_flag = ""
        self.clustered = False
        self.raft_obs = []
        self.raft_supported = None
        self.nemesis = None
        self.tearing_down = False
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.name = "%s-%s-%s-n%d-s%d-%s" % (stamp, cfg.workload.replace(",", "+"),
                                             cfg.nemesis.replace(",", "+"), cfg.nodes,
                                             cfg.seed, self.tag)
        self.out_dir = os.path.join(cfg.store, self.name)
        self.state_dir = os.path.join(nodes_mod.STATE_ROOT, self.tag)

    def now(self):
        return self.history.now() if self.history else 0.0

    # --- setup ----------------------------------------------------------------

    def setup(self):
        cfg = self.cfg
        os.makedirs(self.out_dir)
        os.makedirs(os.path.join(self.state_dir, "pids"))
        with open(os.path.join(self.state_dir, "owner"), "w") as f:
            f.write("%d %s\n" % (os.getpid(), _proc_start_time(os.getpid())))
        self.history = history_mod.History(os.path.join(self.out_dir, "history.jsonl"))
        # A private copy: a rebuild during the run must not change what restarts.
        binary = os.path.join(self.state_dir, "bin", "vigild")
        os.makedirs(os.path.dirname(binary))
        shutil.copy2(cfg.vigild, binary)
        cfg.vigild = binary
        wire.load_protos(os.path.join(self.state_dir, "gen"))
        helptext = subprocess.run([binary, "--helpfull"], capture_output=True, text=True,
                                  timeout=30).stdout
        kinds = set(cfg.nemesis.split(","))
        if cfg.faketime or kinds & set(nemesis_mod.CLOCKS + ["all"]):
            self.faketime = nodes_mod.faketime_lib()
            if self.faketime is None and kinds & set(nemesis_mod.CLOCKS):
                raise nemesis_mod.Unsupported("libfaketime is not installed")
        self.nemesis = nemesis_mod.make(self, cfg.nemesis, cfg.seed)  # Unsupported early
        # Not from the seed: parallel runs with one seed must not pick the same subnet.
        self.net = net_mod.Network(self.tag, net_mod.choose_subnet(random.SystemRandom()),
                                   self.nemesis.slots())  # spare slots for membership
        self.net.create()
        if cfg.nodes > 1:
            if "-peers" in helptext:
                self.clustered = True
                self.peers_flag = ",".join(
                    "%d=%s:%d/%s:%d" % (i, ip, nodes_mod.GRPC_PORT, ip, nodes_mod.HTTP_PORT)
                    for i, ip in sorted(self.net.ips.items()) if i <= cfg.nodes)
            else:
                self.notes.append("vigild has no --peers flag: %d independent nodes; the samples "
                                  "checker holds each node to what it acknowledged itself"
                                  % cfg.nodes)
        self.history.add(type="info", process="harness", f="network",
                         value={"tag": self.tag, "subnet": str(self.net.subnet),
                                "nodes": self.net.ips, "bridge": self.net.bridge})
        for w in cfg.workloads:  # e.g. alerts: Alertmanager up, flags for every vigild
            prepare = getattr(workloads.WORKLOADS[w], "prepare", None)
            if prepare is not None:
                cfg.vigild_args = list(cfg.vigild_args) + prepare(self)
        for i in range(1, cfg.nodes + 1):
            self.all_nodes[i] = nodes_mod.Node(self, i)
        self.set_targets(range(1, cfg.nodes + 1))
        for node in self.nodes.values():
            node.start()
        for node in self.nodes.values():
            if not node.wait_ready(cfg.ready_timeout):
                hint = " (under libfaketime: it may interfere)" if self.faketime else ""
                raise RuntimeError("node %d did not become ready in %.0fs%s; see %s"
                                   % (node.id, cfg.ready_timeout, hint, node.log_path))
        if self.clustered:
            status = self.wait_cluster(cfg.cluster_timeout)
            if status is None:
                raise RuntimeError("the %d nodes did not form a cluster (bootstrapped, one "
                                   "leader every node agrees on) in %.0fs; see %s/n*.log"
                                   % (cfg.nodes, cfg.cluster_timeout, self.out_dir))

    # --- helpers the nemeses use ---------------------------------------------------

    def set_targets(self, ids):
        """The members clients (and final reads) use from now on."""
        self.nodes = nodes_mod.NodeMap({i: self.all_nodes[i] for i in sorted(ids)},
                                       self.all_nodes)

    def join_address(self, exclude):
        """--join for a node added during the run: a running member's gRPC address."""
        ids = [i for i in sorted(self.nodes) if i != exclude and self.nodes[i].alive()]
        return self.nodes[random.choice(ids or sorted(self.nodes))].grpc_addr

    def cluster_status(self, ids=None, timeout=2.0):
        """{node id: GET /api/v1/status/cluster document} of the running nodes asked."""
        out = {}
        for i in sorted(self.nodes) if ids is None else ids:
            node = self.nodes[i]
            if not node.alive() or node.paused:
                continue
            doc = nodes_mod.http_get_json(node.ip, node.http_port, STATUS_PATH, timeout=timeout)
            if isinstance(doc, dict):
                out[i] = doc
        return out

    def find_leader(self, ids=None):
        """The leader of the highest term any answering node reports, or None."""
        best = None
        for doc in self.cluster_status(ids).values():
            leader = _leader_of(doc)
            if leader in self.nodes:
                term = int(doc.get("term") or 0)
                if best is None or term > best[0]:
                    best = (term, leader)
        return None if best is None else best[1]

    def wait_cluster(self, timeout, ids=None):
        """Polls until every node in `ids` (default all) runs, reports the cluster
        bootstrapped with all members, and names the same leader in the same
        term. Returns {"leader", "term", "waited_s"} or None at the timeout."""
        ids = sorted(self.nodes) if ids is None else sorted(ids)
        start = time.monotonic()
        deadline = start + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            docs = self.cluster_status(ids)
            views = {(_leader_of(d), int(d.get("term") or 0)) for d in docs.values()}
            if (len(docs) == len(ids) and len(views) == 1
                    and all(d.get("bootstrapped") is True
                            and sorted(int(m.get("id", 0)) for m in d.get("members") or [])
                            == sorted(self.nodes)
                            for d in docs.values())):
                leader, term = views.pop()
                if leader in self.nodes:
                    res = {"leader": leader, "term": term,
                           "waited_s": round(time.monotonic() - start, 3)}
                    self.history.add(type="info", process="harness", f="cluster", value=res)
                    return res
            time.sleep(0.25)
        return None

    def membership_unsupported(self):
        ctl = find_binary(self.cfg.vigilctl, "vigilctl", "tools")
        if ctl is None or not os.access(ctl, os.X_OK):
            return "membership: no vigilctl binary %s(build tools/vigilctl)" % (
                "at %s " % ctl if ctl else "")
        # Without a subcommand it lists them (no RPC is made).
        res = subprocess.run([ctl, "--addr=127.0.0.1:1", "cluster"], capture_output=True,
                             text=True, timeout=30)
        text = res.stdout + res.stderr
        if "add-node" not in text or "remove-node" not in text:
            return ("membership: vigilctl (%s) has no `cluster add-node` / `remove-node` "
                    "command" % ctl)
        helptext = subprocess.run([self.cfg.vigild, "--helpfull"], capture_output=True,
                                  text=True, timeout=30).stdout
        if "-join " not in helptext:
            return "membership: vigild has no --join flag"
        # A private copy, like vigild's: a rebuild during the run must not break it.
        self.vigilctl = os.path.join(self.state_dir, "bin", "vigilctl")
        shutil.copy2(ctl, self.vigilctl)
        return None

    # --- Raft observation -------------------------------------------------------

    def raft_poller(self):
        misses = 0
        while not self.stopping.wait(0.5):
            answered = polled = False
            for node in list(self.all_nodes.values()):  # joined and leaving ones too
                if not node.alive() or node.paused:
                    continue
                polled = True
                doc = nodes_mod.http_get_json(node.ip, node.http_port, RAFT_PATH, timeout=1.0)
                if isinstance(doc, dict):
                    answered = True
                    doc["node"] = node.id
                    doc["time"] = round(self.now(), 6)
                    self.raft_obs.append(doc)
            if answered:
                self.raft_supported = True
            elif self.raft_supported is None and polled:
                misses += 1  # 10 rounds in which running nodes had no endpoint
                if misses >= 10:
                    self.raft_supported = False
                    return

    # --- the run ------------------------------------------------------------------

    def execute(self):
        cfg = self.cfg
        wls = [workloads.WORKLOADS[w](self) for w in cfg.workloads]
        nemesis = self.nemesis
        for wl in wls:
            try:
                wl.setup()
            except workloads.Unsupported as e:
                return self.finish({wl.name: {"valid": "unsupported", "reason": str(e)}},
                                   nemesis, unsupported=True)
        poller = threading.Thread(target=self.raft_poller, daemon=True, name="raft")
        poller.start()
        end = self.now() + cfg.time
        clients = []
        for k, wl in enumerate(wls):  # processes k*clients .. k*clients+clients-1
            for p in range(k * cfg.clients, (k + 1) * cfg.clients):
                clients.append(threading.Thread(target=self._client, args=(wl, p, end),
                                                daemon=True, name="%s-%d" % (wl.name, p)))
        for t in clients:
            t.start()
        nemesis.start(end)
        # Until the time is up, or every client finished early (its op budget, or a
        # scenario like stale-read that ends itself).
        while (self.now() < end and not self.stopping.is_set()
               and any(t.is_alive() for t in clients)):
            time.sleep(0.2)
        nemesis.stop()
        for t in clients:
            t.join(timeout=cfg.op_timeout * 3 + 10)
        self.history.add(type="info", process="harness", f="healed",
                         value={"settle_s": cfg.settle})
        for node in self.nodes.values():
            if not node.alive():
                self.errors.append("node %d is not running after healing" % node.id)
        if self.clustered and self.wait_cluster(cfg.cluster_timeout) is None:
            self.errors.append("after healing, the nodes did not agree on one leader within "
                               "%.0fs" % cfg.cluster_timeout)
        time.sleep(cfg.settle)
        checks = {}
        for wl in wls:
            checks[wl.name] = wl.check()
            wl.close()
        self.stopping.set()
        poller.join(timeout=10)
        if nemesis.book is not None:
            checks["membership"] = nemesis.membership_check(checks)
        if self.raft_supported:
            checks["raft"] = raft_checker.check(
                self.raft_obs, members=nemesis.membership_intervals() if nemesis.book else None)
        else:
            checks["raft"] = {"valid": "skipped",
                              "reason": "no node answered GET %s" % RAFT_PATH}
        return self.finish(checks, nemesis)

    def _client(self, workload, p, end):
        try:
            workload.client_loop(p, end)
        except Exception as e:
            self.errors.append("client %d: %r" % (p, e))

    def finish(self, checks, nemesis, unsupported=False):
        cfg = self.cfg
        verdicts = [c.get("valid") for c in checks.values()
                    if c.get("valid") not in ("skipped", "unsupported")]
        valid = (all(v is True for v in verdicts) and bool(verdicts) and not self.errors)
        if unsupported:
            valid = "unsupported"
        ops = sum(1 for e in self.history.events if e["type"] == "invoke")
        results = {"run": self.name, "valid": valid, "command": " ".join(sys.argv),
                   "workload": cfg.workload, "nemesis": cfg.nemesis, "nodes": cfg.nodes,
                   "seed": cfg.seed, "time_s": cfg.time, "tag": self.tag,
                   "subnet": str(self.net.subnet), "clustered": self.clustered,
                   "faketime": bool(self.faketime), "client_ops": ops,
                   "fault_windows": [[round(a, 3), None if b is None else round(b, 3), n]
                                     for a, b, n in nemesis.windows],
                   "nemesis_skipped": nemesis.skipped, "notes": self.notes,
                   "errors": self.errors, "checkers": checks}
        self.history.close()
        err = report.timeline(self.history.events, nemesis.windows,
                              os.path.join(self.out_dir, "timeline.png"),
                              "%s  valid=%s" % (self.name, valid))
        if err:
            results["timeline_error"] = err
        with open(os.path.join(self.out_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
            f.write("\n")
        report.index_html(self.out_dir, results)
        if self.raft_obs:
            with open(os.path.join(self.out_dir, "raft.jsonl"), "w") as f:
                for ob in self.raft_obs:
                    f.write(json.dumps(ob, sort_keys=True) + "\n")
        return results

    # --- teardown -------------------------------------------------------------------

    def teardown(self):
        self.stopping.set()
        self.tearing_down = True  # nodes refuse to start from here on
        if self.nemesis is not None:
            self.nemesis.halt()
        try:
            nodes_mod.stop_all(list(self.all_nodes.values()))
        except Exception as e:  # keep going: the rest must still go
            print("teardown: stopping nodes: %r" % (e,), file=sys.stderr)
        nodes_mod.kill_recorded(self.state_dir)
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # keep going: the rest must still go
                print("teardown: %r" % (e,), file=sys.stderr)
        if self.net is not None:
            self.net.destroy()
        if self.cfg.keep_data:
            print("data kept in %s" % self.state_dir)
            os.remove(os.path.join(self.state_dir, "owner"))
        else:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def _leader_of(doc):
    leader = doc.get("leader_id", doc.get("leader"))
    if isinstance(leader, dict):
        leader = leader.get("id")
    try:
        return int(leader)
    except (TypeError, ValueError):
        return None


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main(argv):
    cfg = parse_args(argv)
    if os.geteuid() != 0:
        print("jepsen/run needs root (network namespaces, iptables)", file=sys.stderr)
        return EXIT_USAGE
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy",
                "all_proxy", "ALL_PROXY"):
        os.environ.pop(var, None)  # clients talk to the bridge directly, never via a proxy
    if cfg.cleanup:
        return cleanup()
    cfg.vigild = find_binary(cfg.vigild, "vigild", "server")
    if not cfg.vigild or not os.access(cfg.vigild, os.X_OK):
        print("no vigild binary (build it, or pass --vigild PATH)", file=sys.stderr)
        return EXIT_USAGE
    cfg.vigild = os.path.abspath(cfg.vigild)
    run = Run(cfg)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)
    print("run %s -> %s" % (run.tag, run.out_dir))
    results = None
    try:
        try:
            run.setup()
            results = run.execute()
        except nemesis_mod.Unsupported as e:
            print("unsupported: %s" % e, file=sys.stderr)
            _write_error(run, "unsupported", str(e))
            return EXIT_UNSUPPORTED
        except KeyboardInterrupt:
            print("interrupted: tearing down", file=sys.stderr)
            _write_error(run, "interrupted", "interrupted")
            return EXIT_ERROR
        except Exception as e:
            print("harness error: %r" % (e,), file=sys.stderr)
            _write_error(run, "error", repr(e))
            return EXIT_ERROR
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # teardown must finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        run.teardown()
    _print_summary(results, run.out_dir)
    if results["valid"] == "unsupported":
        return EXIT_UNSUPPORTED if cfg.require_supported else EXIT_VALID
    return EXIT_VALID if results["valid"] is True else EXIT_INVALID


def _write_error(run, valid, reason):
    if not os.path.isdir(run.out_dir):
        return
    with open(os.path.join(run.out_dir, "results.json"), "w") as f:
        json.dump({"run": run.name, "valid": valid, "error": reason,
                   "errors": run.errors, "command": " ".join(sys.argv)}, f, indent=2)
        f.write("\n")


def _print_summary(results, out_dir):
    print("valid: %s" % results["valid"])
    for name, res in results["checkers"].items():
        counts = {k: v for k, v in res.items() if isinstance(v, (int, float, str, bool))}
        print("  %-9s %s" % (name, json.dumps(counts, sort_keys=True)))
    for note in results["notes"]:
        print("  note: %s" % note)
    for err in results["errors"]:
        print("  error: %s" % err)
    print("results: %s" % os.path.join(out_dir, "index.html"))
