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
  membership      add, remove or replace a node with `vigilctl cluster` (spare
                  namespaces prepared at setup; never below 3 members); healed
                  = membership settled (see MembershipBook, settled_reason)
  membership-kill a membership change, and while its shards move, kill -9 one
                  member (the new node, the leaving one, the leader: any);
                  healed = restarted, then settled
  membership-partition  a membership change, and while its shards move, one
                  member (any) isolated from the others; healed = rules
                  flushed, then settled
  all             kill, pause, partition (and clock ones with --faketime)
  a,b,...         the listed ones in turn, one per fault (e.g. kill,partition)
"""

import random
import subprocess
import threading
import time

from harness import nodes as nodes_mod

PARTITIONS = ["partition-halves", "partition-one", "partition-leader", "partition-ring",
              "partition-bridge"]
CLOCKS = ["clock-skew", "clock-strobe"]
SIMPLE = ["none", "kill", "kill-and-wipe", "pause", "partition", "membership",
          "membership-kill", "membership-partition", "all"]
MEMBERSHIP = ["membership", "membership-kill", "membership-partition"]
ALL_NEMESES = SIMPLE + PARTITIONS + CLOCKS
MIN_MEMBERS = 3  # the replication factor: never fewer members than replicas
SPARE_SLOTS = 2  # namespaces prepared for nodes added during a membership run


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


# --- membership bookkeeping (pure: unit-tested in tests/test_membership.py) ----

class MembershipBook:
    """Which node ids are members and which namespace slot each one uses.

    Slots 1..N hold the founding nodes 1..N; slots N+1.. are spares. A node
    added during the run gets a fresh id (never reused: the raft and samples
    checkers see each incarnation as its own node) and a free slot, preferring
    one never used, else the one freed longest ago (its address is reused by
    the new node, as a replaced machine's would be). A removed node's slot is
    free once its process stopped.
    """

    def __init__(self, founders, slots, min_members=MIN_MEMBERS):
        self.slot_of = {i: i for i in founders}  # members: id -> slot
        self.slots = list(slots)
        self.min_members = min_members
        self.next_id = max(founders) + 1
        self.freed = {}  # slot -> sequence number of its release (never used: absent)
        self._seq = 0
        self.reserved = set()  # slots of nodes being added
        self.retired = {}  # removed, still running (lingering): id -> slot

    def members(self):
        return sorted(self.slot_of)

    def free_slots(self):
        used = set(self.slot_of.values()) | self.reserved | set(self.retired.values())
        return [s for s in self.slots if s not in used]

    def pick_slot(self):
        free = self.free_slots()
        if not free:
            return None
        never = [s for s in free if s not in self.freed]
        return min(never) if never else min(free, key=lambda s: self.freed[s])

    def allocate(self):
        """(new id, slot) for a node to add, or None with no free slot."""
        slot = self.pick_slot()
        if slot is None:
            return None
        node_id = self.next_id
        self.next_id += 1
        self.reserved.add(slot)
        return node_id, slot

    def joined(self, node_id, slot):
        self.reserved.discard(slot)
        self.slot_of[node_id] = slot

    def abandon(self, slot):
        """An add that never started: its slot is free again."""
        self.reserved.discard(slot)

    def retire(self, node_id):
        """Node removed from the cluster, its process still running: no longer a
        member, its slot still taken."""
        self.retired[node_id] = self.slot_of.pop(node_id)

    def released(self, node_id):
        """Node removed and its process stopped: its slot is free."""
        slot = self.retired.pop(node_id) if node_id in self.retired else self.slot_of.pop(node_id)
        self._seq += 1
        self.freed[slot] = self._seq
        return slot

    def plan(self, rng):
        """The next membership change: ("add", None), ("remove", victim),
        ("replace", victim) or None when none is allowed. Never below
        min_members (a replace adds first, then removes), never more members
        than slots."""
        members = self.members()
        ops = []
        if self.free_slots():
            ops += ["add", "replace"]
        if len(members) > self.min_members:
            ops.append("remove")
        if not ops:
            return None
        op = rng.choice(sorted(ops))
        return op, (rng.choice(members) if op != "add" else None)


def settled_reason(docs, want):
    """Why the cluster is not settled on members `want`, or None when it is.

    docs: {node id: GET /api/v1/status/cluster document, or None if it did not
    answer} for every node in `want`. Settled: every wanted node answers,
    bootstrapped, with the same leader (one of them) and term, the member list
    is exactly `want`, all active, no shard moving, no stream running or
    queued, and every node reports the same shard placement (replicas and
    epochs: they all applied the same map).
    """
    want = sorted(want)
    missing = [i for i in want if not isinstance(docs.get(i), dict)]
    if missing:
        return "no status from %s" % missing
    views = set()
    placements = set()
    for i in want:
        d = docs[i]
        if d.get("bootstrapped") is not True:
            return "node %d: not bootstrapped" % i
        members = {int(m.get("id", 0)): m.get("state") for m in d.get("members") or []}
        if sorted(members) != want:
            return "node %d: members %s, want %s" % (i, sorted(members), want)
        not_active = sorted(m for m, st in members.items() if st != "active")
        if not_active:
            return "node %d: members %s not active" % (i, not_active)
        if int(d.get("moving_shards") or 0):
            return "node %d: %d shards moving" % (i, d["moving_shards"])
        streams = d.get("streams") or {}
        busy = int(streams.get("running") or 0) + int(streams.get("queued") or 0)
        if busy:
            return "node %d: %d streams running or queued" % (i, busy)
        views.add((d.get("leader"), d.get("term")))
        placements.add(tuple((s.get("shard"), tuple(s.get("replicas") or []), s.get("epoch"))
                             for s in d.get("shards") or []))
    if len(views) != 1:
        return "leader/term views differ: %s" % sorted(views, key=str)
    leader = next(iter(views))[0]
    if leader not in want:
        return "leader %r is not a wanted member" % (leader,)
    if len(placements) != 1:
        return "nodes report different shard placements"
    return None


def classify_ctl(rc, text):
    """A vigilctl cluster command's outcome: ok, fail (certainly not applied)
    or info (unknown: the request may have been applied)."""
    if rc == 0:
        return "ok"
    low = text.lower()
    definite = ("failed to connect", "connection refused", "no member", "exists with other",
                "still holds shards", "invalid", "bad node id", "cannot remove the last")
    if any(d in low for d in definite):
        return "fail"
    return "info"


class Nemesis:
    def __init__(self, run, kind, rng):
        self.run = run
        self.kind = kind
        self.rng = rng
        self.founders = list(range(1, run.cfg.nodes + 1))
        self.windows = []  # [start, end, name]
        self.active = None  # (name, heal callable, window)
        self.skipped = []
        self._stop = threading.Event()
        self._thread = None
        self._strobe = None
        self.book = None  # MembershipBook, with the membership nemesis
        self.membership_ops = []  # {"f", "type", "node", "members", ...} per change
        self._op = None  # the change _start_membership began
        self._lock = threading.Lock()  # the book and the client targets (linger threads)
        self._excluded = set()  # members clients must not use (being removed)
        self._lingering = set()  # removed nodes clients still use (--membership-linger)
        self._linger_threads = []
        self.membership_broken = None  # why no further change is attempted
        self.poll_s = 0.5  # between membership status polls (tests: 0)
        self.node_factory = nodes_mod.Node  # (run, id, slot, joined=True) for added nodes
        self.validate()
        if set(MEMBERSHIP) & set(self.kinds()):
            # Lingering removed nodes hold their slots: 2 more for them.
            spares = SPARE_SLOTS * (2 if getattr(run.cfg, "membership_linger", 0) > 0 else 1)
            self.book = MembershipBook(self.founders, range(1, len(self.founders) + spares + 1))

    @property
    def ids(self):
        """The current members clients use (the founders before the nodes start);
        not a removed node lingering (restarting one could make it join again)."""
        return sorted(i for i in self.run.nodes if i not in self._lingering) or list(self.founders)

    def slots(self):
        """Namespaces the run prepares: spares too when membership may add nodes."""
        return len(self.book.slots) if self.book is not None else len(self.founders)

    # --- what can run here --------------------------------------------------

    def kinds(self):
        if self.kind == "all":
            ks = ["kill", "pause"]
            if len(self.founders) >= 2:
                ks.append("partition")
            if self.run.faketime:
                ks += CLOCKS
            return ks
        return self.kind.split(",")

    def validate(self):
        for k in self.kinds():
            if (k == "partition" or k in PARTITIONS) and len(self.founders) < 2:
                raise Unsupported("%s needs at least 2 nodes" % k)
            if k == "partition-ring" and len(self.founders) < 5:
                raise Unsupported("partition-ring needs 5 nodes")
            if k in CLOCKS and not self.run.faketime:
                raise Unsupported("%s needs libfaketime (apt-get install libfaketime)" % k)
            if k in MEMBERSHIP:
                if len(self.founders) < MIN_MEMBERS:
                    raise Unsupported("membership needs at least %d nodes (the replication "
                                      "factor; it never removes below that)" % MIN_MEMBERS)
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
        for t in self._linger_threads:  # _stop cut their lingering short
            t.join(timeout=120)

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
                                    if p != "partition-ring" or len(self.ids) == 5])
        fn = getattr(self, "_start_" + kind.replace("-", "_"))
        t0 = self.run.now()
        res = fn()
        if res is None:
            return
        desc, heal = res[0], res[1]
        if len(res) > 2:
            kind = res[2]  # a more specific name (membership-add, ...)
        window = [t0, None, kind]
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
        slot = lambda i: self.run.nodes[i].slot  # noqa: E731 (grudges name nodes; rules, slots)
        self.run.net.apply_grudge({slot(i): {slot(j) for j in js} for i, js in grudge.items()})

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

    # --- membership -----------------------------------------------------------
    #
    # One change at a time, on the seeded schedule: add (a spare slot starts
    # vigild --join=<member>, `vigilctl cluster add-node` through a member, wait
    # until the cluster lists it active, clients may use it), remove (clients
    # stop using the victim, `vigilctl cluster remove-node` through another
    # member; heal waits until the cluster settled without it, lets the
    # clients' operations in flight through it end, stops it and frees its
    # slot), replace (add, then remove). Heal = settled (settled_reason). Each
    # change is an invoke and a completion (ok / fail: refused / info: unknown or
    # never settled) of process "nemesis" in the history, with the members after.

    def _poll(self, fn, timeout):
        deadline = time.monotonic() + timeout
        while True:
            v = fn()
            if v or time.monotonic() >= deadline or self.run.stopping.is_set():
                return v
            time.sleep(self.poll_s)

    def _retarget(self):
        """Clients use the members not being removed, and lingering removed nodes."""
        with self._lock:
            ids = [i for i in self.book.members() if i not in self._excluded]
            self.run.set_targets(sorted(set(ids) | self._lingering))

    def _running(self, ids):
        return [i for i in ids if self.run.nodes[i].alive() and not self.run.nodes[i].paused]

    def _via(self, exclude=()):
        ids = self._running([i for i in self.book.members() if i not in exclude])
        return self.rng.choice(ids) if ids else None

    def _ctl(self, via, *args):
        """vigilctl --addr=<via's gRPC address> cluster ARGS: (ok|fail|info, output)."""
        if via is None:
            return "fail", "no running member to ask"
        cmd = [self.run.vigilctl, "--addr=" + self.run.nodes[via].grpc_addr, "--timeout=20s",
               "cluster"] + list(args)
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return "info", "vigilctl timed out"
        text = (res.stdout + res.stderr).strip()
        return classify_ctl(res.returncode, text), "via %d: %s" % (via, text)

    def members_view(self):
        """{id: state} of the member list the best-informed running node reports
        (the leader's own view first), or None when none answers."""
        ids = sorted(i for i, n in self.run.all_nodes.items() if n.alive() and not n.paused)
        best = None
        for i, d in self.run.cluster_status(ids).items():
            key = (d.get("leader") == i, int(d.get("term") or 0), int(d.get("applied_index") or 0))
            if best is None or key > best[0]:
                best = (key, d)
        if best is None:
            return None
        return {int(m.get("id", 0)): m.get("state") for m in best[1].get("members") or []}

    @staticmethod
    def _shards_per_member(docs):
        """{member: shard replicas it holds} in one settled node's view."""
        counts = {}
        for sh in next(iter(docs.values()), {}).get("shards") or []:
            for r in sh.get("replicas") or []:
                counts[str(r)] = counts.get(str(r), 0) + 1
        return counts

    def wait_settled(self, want, timeout):
        """Polls until settled_reason is None twice in a row, 2 polls apart (1 s),
        with the same shard placement (the leader plans moves every 200 ms: a
        new move would show). Returns (None, waited_s, docs) or (why not, waited_s, docs)."""
        want = sorted(want)
        start = time.monotonic()
        last, docs, reason = None, {}, "not polled"
        while not self.run.stopping.is_set():
            docs = self.run.cluster_status(want)
            reason = settled_reason(docs, want)
            if reason is None:
                placement = [(sh.get("replicas"), sh.get("epoch"))
                             for sh in docs[want[0]].get("shards") or []]
                if placement == last:
                    return None, round(time.monotonic() - start, 3), docs
                last = placement
            else:
                last = None
            if time.monotonic() - start >= timeout:
                break
            time.sleep(2 * self.poll_s)
        return reason or "stopping", round(time.monotonic() - start, 3), docs

    def _complete(self, op, kind, **value):
        op.update(value)
        op["type"] = kind
        op["t_complete"] = round(self.run.now(), 3)
        view = self.members_view()
        op["members_after"] = None if view is None else sorted(view)
        value["members"] = op["members_after"]
        value["member_states"] = None if view is None else {str(k): v for k, v in view.items()}
        self.run.history.add(type=kind, process="nemesis", f=op["f"], value=value)
        return dict(value, f=op["f"], type=kind)

    def _broken(self, op, why):
        self.membership_broken = why
        self.run.errors.append("membership %s: %s" % (op["f"], why))
        return self._complete(op, "info", error=why)

    def _add_node(self, op):
        """Starts a new node in a free slot with --join and asks a member to add it.
        Returns the new id, or None (op completed as info: broken)."""
        cfg = self.run.cfg
        with self._lock:
            node_id, slot = self.book.allocate()
        op["node" if op["f"] == "add-node" else "add"] = node_id
        node = self.node_factory(self.run, node_id, slot, joined=True)
        self.run.all_nodes[node_id] = node
        node.start()
        if not node.wait_ready(cfg.ready_timeout):
            self._broken(op, "node %d (slot %d) not ready in %.0fs; see %s"
                         % (node_id, slot, cfg.ready_timeout, node.log_path))
            return None
        kind, text = self._ctl(self._via(), "add-node", "%d=%s,http=%s:%d" % (
            node_id, node.grpc_addr, node.ip, node.http_port))
        op["add_node_cli"] = {"outcome": kind, "output": text[-300:]}
        # --join asks the cluster too; either way it must become an active member.
        timeout = cfg.membership_timeout
        if not self._poll(lambda: (self.members_view() or {}).get(node_id) == "active", timeout):
            self._broken(op, "node %d not an active member %.0fs after it started (add-node: "
                         "%s: %s)" % (node_id, timeout, kind, text[-200:]))
            return None
        with self._lock:
            self.book.joined(node_id, slot)
        op["active_after_s"] = round(self.run.now() - op["t_invoke"], 3)
        self._retarget()  # clients may use it now
        return node_id

    def _remove_node(self, op, victim):
        """remove-node through another member. Returns (kind, text, t_out): ok
        once the cluster marked it leaving (or already dropped it)."""
        if not self.run.cfg.membership_write_leaving:
            self._excluded.add(victim)  # the README's known limit: stop writing through it
            self._retarget()
        t_out = time.monotonic()
        kind, text = "info", ""
        for _ in range(3):
            kind, text = self._ctl(self._via(exclude={victim}), "remove-node", str(victim))
            if kind != "info":
                break
            state = (self.members_view() or {}).get(victim, "gone")
            if state in ("leaving", "gone"):
                kind = "ok"  # the unknown outcome was applied
                break
            time.sleep(2 * self.poll_s)
        if kind != "ok":
            self._excluded.discard(victim)
            self._retarget()
        return kind, text, t_out

    def _finish_removal(self, op, victim, t_out):
        """Heal of a removal: settled without the victim, then it stops."""
        cfg = self.run.cfg
        after = [i for i in self.book.members() if i != victim]
        reason, waited, docs = self.wait_settled(after, cfg.membership_timeout)
        if reason is not None:
            return self._broken(op, "not settled without node %d after %.0fs: %s"
                                % (victim, waited, reason))
        linger = getattr(cfg, "membership_linger", 0)
        with self._lock:
            self.book.retire(victim)
            self._excluded.discard(victim)
            if linger > 0:
                self._lingering.add(victim)
        self._retarget()
        if linger > 0:  # the next changes go on while it still takes client requests
            t = threading.Thread(target=self._linger, args=(op, victim, linger), daemon=True,
                                 name="linger-%d" % victim)
            self._linger_threads.append(t)
            t.start()
        else:
            self._stop_removed(victim, t_out if not cfg.membership_write_leaving
                               else time.monotonic())
        return self._complete(op, "ok", settled_s=waited, shards=self._shards_per_member(docs))

    def _stop_removed(self, victim, t_out):
        """Stops a removed node once the client requests sent through it before
        `t_out` (when clients stopped using it) ended, and frees its slot."""
        drain = t_out + self.run.cfg.op_timeout + 4 * self.poll_s - time.monotonic()
        if drain > 0:
            time.sleep(drain)
        self.run.all_nodes[victim].stop(timeout=5)
        with self._lock:
            self.book.released(victim)

    def _linger(self, op, victim, linger):
        """--membership-linger: a removed node keeps running, and clients keep
        using it, for `linger` s (cut short by the final heal), as if nobody
        told the load balancer; then it stops like any removed node."""
        t0 = time.monotonic()
        self._stop.wait(linger)
        with self._lock:
            self._lingering.discard(victim)
        self._retarget()
        self._stop_removed(victim, time.monotonic())
        self.run.history.add(type="info", process="nemesis", f="linger-end",
                             value={"node": victim, "lingered_s": round(time.monotonic() - t0, 3),
                                    "change": op["f"]})

    def _start_membership(self):
        if self.membership_broken:
            self._record("skip", "membership", "an earlier change failed: %s"
                         % self.membership_broken)
            return None
        plan = self.book.plan(self.rng)
        if plan is None:
            self._record("skip", "membership", "no change allowed with members %s"
                         % self.book.members())
            return None
        what, victim = plan
        f = {"add": "add-node", "remove": "remove-node", "replace": "replace-node"}[what]
        before = self.book.members()
        op = {"f": f, "t_invoke": round(self.run.now(), 3), "members_before": before}
        self.membership_ops.append(op)
        self._op = op
        value = {"members": before}
        if victim is not None:
            value["node" if what == "remove" else "remove"] = victim
            op["node" if what == "remove" else "remove"] = victim
        self.run.history.add(type="invoke", process="nemesis", f=f, value=value)
        name = "membership-" + what
        done = lambda: op  # noqa: E731 (a change that ended in begin heals nothing)
        if what in ("add", "replace") and self._add_node(op) is None:
            return op, done, name
        if what == "add":
            def heal():
                reason, waited, docs = self.wait_settled(self.book.members(),
                                                         self.run.cfg.membership_timeout)
                if reason is not None:
                    return self._broken(op, "not settled with node %d after %.0fs: %s"
                                        % (op["node"], waited, reason))
                return self._complete(op, "ok", node=op["node"], settled_s=waited,
                                      shards=self._shards_per_member(docs))
            return dict(value, node=op["node"]), heal, name
        kind, text, t_out = self._remove_node(op, victim)
        if kind != "ok":
            if kind == "info":
                self._broken(op, "remove-node %d: outcome unknown: %s" % (victim, text[-200:]))
            else:
                self._complete(op, "fail", error=text[-300:])
            return op, done, name
        desc = dict(value, add=op["add"]) if what == "replace" else value
        return desc, lambda: self._finish_removal(op, victim, t_out), name

    def _membership_with(self, label, fault):
        """A membership change, then fault(op, victim) -> (key, undo) on one
        running member while its shards move; heal = undo() (None, or why it
        failed), then settled. The window is named <change>+<label>."""
        res = self._start_membership()
        op = self._op if res is not None else None
        if op is None or "type" in op:  # skipped, or already over (refused, broken)
            return res
        desc, heal, name = res
        running = self._running(self.book.members())
        if not running:
            return res
        victim = self.rng.choice(running)
        what, undo = fault(op, victim)

        def undo_then_settle():
            why = undo()
            return self._broken(op, why) if why else heal()
        return dict(desc, **{what: victim}), undo_then_settle, "%s+%s" % (name, label)

    def _start_membership_kill(self):
        def kill(op, victim):
            node = self.run.nodes[victim]
            node.kill()
            op["killed"] = victim

            def restart():
                node.start()
                if not node.wait_ready(self.run.cfg.ready_timeout):
                    return "node %d not ready after its restart" % victim
                return None
            return "killed", restart
        return self._membership_with("kill", kill)

    def _start_membership_partition(self):
        def isolate(op, victim):
            others = [i for i in self.book.members() if i != victim]
            self._partition(grudge_isolate(others + [victim], victim), "isolate %d" % victim)
            op["isolated"] = victim
            return "isolated", self.run.net.heal  # returns None
        return self._membership_with("partition", isolate)

    def membership_intervals(self):
        """{node id: {"added": t or None (a founder), "removed": t or None}}."""
        out = {i: {"added": None, "removed": None} for i in self.founders}
        for op in self.membership_ops:
            new = op.get("node") if op["f"] == "add-node" else op.get("add")
            if new is not None:
                out.setdefault(new, {"added": None, "removed": None})["added"] = op["t_invoke"]
            gone = op.get("node") if op["f"] == "remove-node" else op.get("remove")
            if gone is not None and op.get("type") == "ok":
                out[gone]["removed"] = op["t_complete"]
        return out

    def membership_check(self, checks):
        """The membership nemesis's own verdict: every change completed (none left
        unknown or unsettled), the cluster's final member list is the members
        the harness ended with, and the samples checker read every one of them
        (and no removed node)."""
        ops = self.membership_ops
        final = sorted(self.run.nodes)
        view = self.members_view()
        problems = []
        if self.membership_broken:
            problems.append(self.membership_broken)
        if view is None:
            problems.append("no member answered the final status")
        elif sorted(view) != final or any(st != "active" for st in view.values()):
            problems.append("the cluster lists %s, the harness ended with members %s"
                            % (view, final))
        samples = checks.get("samples")
        if isinstance(samples, dict) and samples.get("nodes") is not None:
            read = sorted(int(n["node"]) for n in samples["nodes"])
            if read != final:
                problems.append("samples read from %s, the members are %s" % (read, final))
        count = lambda key, val: sum(1 for o in ops if o.get(key) == val)  # noqa: E731
        return {"valid": not problems, "changes": len(ops),
                "adds": count("f", "add-node"), "removes": count("f", "remove-node"),
                "replaces": count("f", "replace-node"), "ok": count("type", "ok"),
                "fail": count("type", "fail"), "info": count("type", "info"),
                "initial_members": list(self.founders), "final_members": final,
                "problems": problems, "history": ops}


def faketime_available():
    return nodes_mod.faketime_lib()


def make(run, kind, seed):
    return Nemesis(run, kind, random.Random(seed))
