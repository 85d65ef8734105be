"""Nemeses: faults on a seeded schedule, every one healed before the final reads.

A fault is a pair of actions (start, stop) on chosen nodes. The schedule
alternates quiet periods and faults (lengths drawn from the seed's RNG) until
the run's time is up; stop() heals whatever is still active.

  kill            kill -9 one node (a minority on 3/5), restart it at heal
  kill-and-wipe   BROKEN ON PURPOSE: kill -9, delete the data dir, restart
                  (must make the samples checker find lost samples)
  pause           SIGSTOP a minority, SIGCONT at heal
  partition       one of the grudges below, at random per fault
  partition-halves | partition-one | partition-leader | partition-ring |
  partition-bridge  a specific grudge (ring: 5 nodes, each sees a majority)
  clock-skew      each node's wall clock offset by up to +-60 s (libfaketime)
  clock-strobe    a node's clock flips between +-20 s and 0 every ~1 s
  membership      add/remove/replace nodes with `vigilctl cluster`
  all             kill, pause, partition (and clock ones with --faketime)
  a,b,...         the listed ones in turn, one per fault (e.g. kill,partition)
"""

import random
import threading

from harness import nodes as nodes_mod

PARTITIONS = ["partition-halves", "partition-one", "partition-leader", "partition-ring",
              "partition-bridge"]
CLOCKS = ["clock-skew", "clock-strobe"]
SIMPLE = ["none", "kill", "kill-and-wipe", "pause", "partition", "membership", "all"]
ALL_NEMESES = SIMPLE + PARTITIONS + CLOCKS


class Unsupported(Exception):
    """A nemesis this build or cluster size cannot run (with the reason)."""


def minority(ids, rng):
    k = max(1, (len(ids) - 1) // 2)
    return sorted(rng.sample(ids, k))


def grudge_halves(ids, rng):
    shuffled = ids[:]
    rng.shuffle(shuffled)
    a = set(shuffled[:len(ids) // 2])
    b = set(ids) - a
    return {i: (b if i in a else a) for i in ids}, "halves %s | %s" % (sorted(a), sorted(b))


def grudge_isolate(ids, victim):
    others = set(ids) - {victim}
    g = {i: {victim} for i in others}
    g[victim] = others
    return g


def grudge_ring(ids):
    """Majorities ring: each node sees itself and its ring neighbours (a majority
    of 5), but no two nodes see the same majority."""
    n = len(ids)
    g = {}
    for k, i in enumerate(ids):
        visible = {ids[(k - 1) % n], i, ids[(k + 1) % n]}
        g[i] = set(ids) - visible
    return g


def grudge_bridge(ids, rng):
    """Two halves that cannot talk, and one node in the middle that sees both."""
    shuffled = ids[:]
    rng.shuffle(shuffled)
    middle = shuffled[0]
    rest = shuffled[1:]
    a, b = set(rest[:len(rest) // 2]), set(rest[len(rest) // 2:])
    g = {middle: set()}
    for i in a:
        g[i] = set(b)
    for i in b:
        g[i] = set(a)
    return g, "bridge %d between %s and %s" % (middle, sorted(a), sorted(b))


class Nemesis:
    def __init__(self, run, kind, rng):
        self.run = run
        self.kind = kind
        self.rng = rng
        self.ids = list(range(1, run.cfg.nodes + 1))
        self.windows = []  # [start, end, name]
        self.active = None  # (name, heal callable, window)
        self.skipped = []
        self._stop = threading.Event()
        self._thread = None
        self._strobe = None
        self.validate()

    # --- what can run here --------------------------------------------------

    def kinds(self):
        if self.kind == "all":
            ks = ["kill", "pause"]
            if len(self.ids) >= 2:
                ks.append("partition")
            if self.run.faketime:
                ks += CLOCKS
            return ks
        return self.kind.split(",")

    def validate(self):
        for k in self.kinds():
            if (k == "partition" or k in PARTITIONS) and len(self.ids) < 2:
                raise Unsupported("%s needs at least 2 nodes" % k)
            if k == "partition-ring" and len(self.ids) < 5:
                raise Unsupported("partition-ring needs 5 nodes")
            if k in CLOCKS and not self.run.faketime:
                raise Unsupported("%s needs libfaketime (apt-get install libfaketime)" % k)
            if k == "membership":
                reason = self.run.membership_unsupported()
                if reason:
                    raise Unsupported(reason)

    # --- schedule -------------------------------------------------------------

    def start(self, end_time):
        if self.kind == "none":
            return
        self._thread = threading.Thread(target=self._loop, args=(end_time,), daemon=True,
                                        name="nemesis")
        self._thread.start()

    def _loop(self, end_time):
        cfg = self.run.cfg
        try:
            while not self._stop.is_set():
                quiet = self.rng.uniform(cfg.quiet_min, cfg.quiet_max)
                if self._stop.wait(quiet) or self.run.now() + 1 >= end_time:
                    break
                kinds = self.kinds()
                if "," in self.kind:  # an explicit list: in turn, so each one runs
                    kind = kinds[len(self.windows) % len(kinds)]
                else:
                    kind = self.rng.choice(kinds)
                duration = min(self.rng.uniform(cfg.fault_min, cfg.fault_max),
                               max(0.5, end_time - self.run.now()))
                self._begin(kind)
                self._stop.wait(duration)
                self.heal()
        except Exception as e:  # recorded, then the run fails at its checks
            self.run.history.add(type="info", process="nemesis", f="error", value=repr(e))
            self.run.errors.append("nemesis: %r" % (e,))

    def halt(self):
        """Stops the schedule without healing (teardown removes everything)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
        self.heal()

    def _record(self, f, name, value):
        self.run.history.add(type="info", process="nemesis", f=f, name=name, value=value)

    def begin_window(self, name, desc):
        """For a workload that drives its own fault (stale-read): records the
        fault's start in the history and the timeline; end with end_window."""
        window = [self.run.now(), None, name]
        self.windows.append(window)
        self._record("start", name, desc)
        return window

    def end_window(self, window, desc):
        window[1] = self.run.now()
        self._record("stop", window[2], desc)

    def _begin(self, kind):
        if kind == "partition":
            kind = self.rng.choice([p for p in PARTITIONS
                                    if p != "partition-ring" or len(self.ids) >= 5])
        fn = getattr(self, "_start_" + kind.replace("-", "_"))
        res = fn()
        if res is None:
            return
        desc, heal = res
        window = [self.run.now(), None, kind]
        self.windows.append(window)
        self.active = (kind, heal, window)
        self._record("start", kind, desc)

    def heal(self):
        if self.active is None:
            return
        kind, heal, window = self.active
        self.active = None
        desc = heal()
        window[1] = self.run.now()
        self._record("stop", kind, desc)

    # --- faults ---------------------------------------------------------------

    def _start_kill(self, wipe=False):
        victims = minority(self.ids, self.rng)
        for i in victims:
            self.run.nodes[i].kill()

        def heal():
            for i in victims:
                node = self.run.nodes[i]
                if wipe:
                    node.wipe()
                node.start()
            for i in victims:
                self.run.nodes[i].wait_ready(self.run.cfg.ready_timeout)
            return {"restarted": victims, "wiped": wipe}
        return {"killed": victims}, heal

    def _start_kill_and_wipe(self):
        return self._start_kill(wipe=True)

    def _start_pause(self):
        victims = minority(self.ids, self.rng)
        for i in victims:
            self.run.nodes[i].pause()

        def heal():
            for i in victims:
                self.run.nodes[i].resume()
            return {"resumed": victims}
        return {"paused": victims}, heal

    def _partition(self, grudge, desc):
        self.run.net.apply_grudge(grudge)

        def heal():
            self.run.net.heal()
            return {"healed": True}
        return {"grudge": {str(k): sorted(v) for k, v in grudge.items()}, "desc": desc}, heal

    def _start_partition_halves(self):
        return self._partition(*grudge_halves(self.ids, self.rng))

    def _start_partition_one(self):
        victim = self.rng.choice(self.ids)
        return self._partition(grudge_isolate(self.ids, victim), "isolate %d" % victim)

    def _start_partition_leader(self):
        leader = self.run.find_leader()
        if leader is None:
            self.skipped.append([self.run.now(), "partition-leader: no leader endpoint answered"])
            self._record("skip", "partition-leader", "no leader endpoint (GET /api/v1/status/cluster)")
            return None
        return self._partition(grudge_isolate(self.ids, leader), "isolate leader %d" % leader)

    def _start_partition_ring(self):
        return self._partition(grudge_ring(self.ids), "majorities ring")

    def _start_partition_bridge(self):
        return self._partition(*grudge_bridge(self.ids, self.rng))

    def _start_clock_skew(self):
        offsets = {i: self.rng.randint(-60, 60) for i in self.ids}
        for i, off in offsets.items():
            self.run.nodes[i].set_clock_offset(off)

        def heal():
            for i in self.ids:
                self.run.nodes[i].set_clock_offset(0)
            return {"offsets": 0}
        return {"offsets": {str(k): v for k, v in offsets.items()}}, heal

    def _start_clock_strobe(self):
        victim = self.rng.choice(self.ids)
        delta = self.rng.choice([-20, 20])
        stop = threading.Event()
        node = self.run.nodes[victim]

        def strobe():
            on = False
            while not stop.wait(1.0):
                on = not on
                node.set_clock_offset(delta if on else 0)
        t = threading.Thread(target=strobe, daemon=True)
        t.start()

        def heal():
            stop.set()
            t.join(timeout=5)
            node.set_clock_offset(0)
            return {"node": victim, "offsets": 0}
        return {"node": victim, "strobe_s": delta}, heal

    def _start_membership(self):
        raise Unsupported(self.run.membership_unsupported() or "membership not implemented")


def faketime_available():
    return nodes_mod.faketime_lib()


def make(run, kind, seed):
    return Nemesis(run, kind, random.Random(seed))
