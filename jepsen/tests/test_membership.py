"""Unit tests of the membership nemesis: its bookkeeping (which ids are members,
which slot each uses), the settled test, and the add / remove / replace flows
against a fake cluster (no namespaces, no vigild, no vigilctl, no sleeping);
and the raft checker with nodes that joined and left mid-run."""

import os
import random
import tempfile
import threading
import types
import unittest

from checkers import raft
from harness import history as history_mod
from harness import nemesis
from harness import nodes as nodes_mod


# --- the bookkeeping -------------------------------------------------------------

class BookTest(unittest.TestCase):

    def test_never_below_three_members(self):
        book = nemesis.MembershipBook([1, 2, 3], range(1, 6))
        for seed in range(50):
            op, victim = book.plan(random.Random(seed))
            self.assertIn(op, ("add", "replace"))  # 3 members: no plain remove
            self.assertEqual(victim is None, op == "add")

    def test_no_free_slot_means_no_add(self):
        book = nemesis.MembershipBook([1, 2, 3, 4, 5], range(1, 6))
        for seed in range(20):
            self.assertEqual(book.plan(random.Random(seed))[0], "remove")
        book = nemesis.MembershipBook([1, 2, 3], range(1, 4))
        self.assertIsNone(book.plan(random.Random(1)))
        self.assertIsNone(book.allocate())

    def test_fresh_ids_and_slots_never_used_first_then_least_recently_freed(self):
        book = nemesis.MembershipBook([1, 2, 3], range(1, 6))
        self.assertEqual(book.allocate(), (4, 4))
        book.joined(4, 4)
        book.released(2)  # slot 2 free, but slot 5 was never used
        self.assertEqual(book.allocate(), (5, 5))
        book.joined(5, 5)
        book.released(1)
        self.assertEqual(book.free_slots(), [1, 2])
        self.assertEqual(book.allocate(), (6, 2))  # freed before slot 1
        book.joined(6, 2)
        self.assertEqual(book.members(), [3, 4, 5, 6])
        self.assertEqual(book.slot_of, {3: 3, 4: 4, 5: 5, 6: 2})

    def test_reserved_slot_is_not_handed_out_twice(self):
        book = nemesis.MembershipBook([1, 2, 3], range(1, 5))
        self.assertEqual(book.allocate(), (4, 4))
        self.assertIsNone(book.allocate())
        book.abandon(4)
        self.assertEqual(book.allocate(), (5, 4))

    def test_random_walk_keeps_the_invariants(self):
        rng = random.Random(7)
        book = nemesis.MembershipBook([1, 2, 3, 4, 5], range(1, 8))
        ever = set(book.members())
        for _ in range(2000):
            op, victim = book.plan(rng)
            if op in ("add", "replace"):
                node_id, slot = book.allocate()
                self.assertNotIn(node_id, ever)
                ever.add(node_id)
                book.joined(node_id, slot)
            if op in ("remove", "replace"):
                self.assertIn(victim, book.members())
                book.released(victim)
            members = book.members()
            self.assertGreaterEqual(len(members), nemesis.MIN_MEMBERS)
            self.assertLessEqual(len(members), 7)
            slots = [book.slot_of[i] for i in members]
            self.assertEqual(len(set(slots)), len(slots))  # one member per slot


def doc(members, leader=1, term=2, moving=0, running=0, queued=0, placement=None, states=None):
    states = states or {}
    return {"bootstrapped": True, "leader": leader, "term": term,
            "members": [{"id": i, "state": states.get(i, "active")} for i in members],
            "moving_shards": moving, "streams": {"running": running, "queued": queued},
            "shards": placement if placement is not None else
            [{"shard": 0, "replicas": list(members)[:3], "epoch": 1}]}


class SettledTest(unittest.TestCase):

    def test_settled(self):
        docs = {i: doc([1, 2, 3]) for i in (1, 2, 3)}
        self.assertIsNone(nemesis.settled_reason(docs, [3, 1, 2]))

    def test_not_settled(self):
        want = [1, 2, 3]
        cases = {
            "no status": {1: doc(want), 2: doc(want)},
            "members [1, 2, 3, 4]": {i: doc([1, 2, 3, 4]) for i in want},
            "not active": {i: doc(want, states={3: "joining"}) for i in want},
            "shards moving": {i: doc(want, moving=2) for i in want},
            "streams running": {i: doc(want, running=1) for i in want},
            "views differ": {1: doc(want), 2: doc(want, leader=2, term=3), 3: doc(want)},
            "not a wanted member": {i: doc(want, leader=4) for i in want},
            "placements": {1: doc(want), 2: doc(want), 3: doc(want, placement=[
                {"shard": 0, "replicas": [1, 2, 3], "epoch": 2}])},
        }
        for why, docs in cases.items():
            reason = nemesis.settled_reason(docs, want)
            self.assertIsNotNone(reason, why)
            self.assertIn(why, reason)
        docs = {i: doc(want) for i in want}
        docs[2]["bootstrapped"] = False
        self.assertIn("not bootstrapped", nemesis.settled_reason(docs, want))
        docs = {i: doc(want, queued=3) for i in want}
        self.assertIn("queued", nemesis.settled_reason(docs, want))

    def test_classify_ctl(self):
        self.assertEqual(nemesis.classify_ctl(0, "node 4 is leaving"), "ok")
        self.assertEqual(nemesis.classify_ctl(1, "vigilctl: ClusterAdmin.RemoveNode failed: "
                                              "failed to connect to all addresses"), "fail")
        self.assertEqual(nemesis.classify_ctl(1, "vigilctl: ... failed: no member 9"), "fail")
        self.assertEqual(nemesis.classify_ctl(1, "vigilctl: ... failed: Deadline Exceeded"),
                         "info")


# --- the flows, against a fake cluster ---------------------------------------------

class FakeCluster:
    """Members as the status documents report them. A started --join node, or
    one added with add-node, is active from the next poll; a removed one is
    leaving for `move_polls` polls (shards moving), then gone."""

    def __init__(self, members):
        self.members = {i: "active" for i in members}
        self.leaving_polls = {}
        self.move_polls = 2
        self.remove_outcome = ("ok", "node is leaving")  # what vigilctl remove-node says
        self.apply_remove = True
        self.never_settle = False
        self.calls = []  # (args, client targets at the call)

    def poll(self):
        for i, left in list(self.leaving_polls.items()):
            if left <= 0:
                del self.members[i]
                del self.leaving_polls[i]
            else:
                self.leaving_polls[i] = left - 1
        for i, st in self.members.items():
            if st == "joining":
                self.members[i] = "active"

    def status(self, i):
        ids = sorted(self.members)
        moving = 1 if self.leaving_polls or self.never_settle else 0
        return doc(ids, leader=min(ids), moving=moving,
                   states=self.members, placement=[{"shard": 0, "replicas": ids[:3], "epoch": 1}])

    def ctl(self, run, via, args):
        self.calls.append((args, sorted(run.nodes)))
        if args[0] == "add-node":
            self.members.setdefault(int(args[1].split("=")[0]), "joining")
            return "ok", "added"
        victim = int(args[1])
        if self.apply_remove and self.remove_outcome[0] != "fail":
            self.members[victim] = "leaving"
            self.leaving_polls[victim] = self.move_polls
        return self.remove_outcome


class FakeNode:
    def __init__(self, run, i, slot=None, joined=False):
        self.run, self.id, self.slot, self.joined = run, i, i if slot is None else slot, joined
        self.ip, self.http_port, self.grpc_addr = "10.0.0.%d" % self.slot, 9401, "x:%d" % i
        self.paused = False
        self.running = False

    def start(self):
        self.running = True
        if self.joined:
            self.run.cluster.members.setdefault(self.id, "joining")

    def alive(self):
        return self.running

    def wait_ready(self, timeout):
        return True

    def stop(self, timeout=10):
        self.running = False
        self.run.stopped.append(self.id)

    def kill(self):
        self.running = False
        self.run.killed.append(self.id)


class FakeRun:
    def __init__(self, n, tmp, write_leaving=False):
        self.cfg = types.SimpleNamespace(nodes=n, quiet_min=0, quiet_max=0, fault_min=0,
                                         fault_max=0, ready_timeout=1, membership_timeout=5,
                                         op_timeout=0, membership_write_leaving=write_leaving)
        self.cluster = FakeCluster(range(1, n + 1))
        self.history = history_mod.History(os.path.join(tmp, "history.jsonl"))
        self.errors, self.stopped, self.killed = [], [], []
        self.stopping = threading.Event()
        self.faketime = None
        self.vigilctl = "vigilctl"
        self.all_nodes = {i: FakeNode(self, i) for i in range(1, n + 1)}
        for node in self.all_nodes.values():
            node.start()
        self.set_targets(range(1, n + 1))

    def now(self):
        return self.history.now()

    def set_targets(self, ids):
        self.nodes = nodes_mod.NodeMap({i: self.all_nodes[i] for i in ids}, self.all_nodes)

    def membership_unsupported(self):
        return None

    def cluster_status(self, ids=None, timeout=2.0):
        self.cluster.poll()
        return {i: self.cluster.status(i) for i in (ids or sorted(self.nodes))
                if self.all_nodes[i].alive()}


class FlowTest(unittest.TestCase):

    def make(self, n=3, write_leaving=False, kind="membership"):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        run = FakeRun(n, tmp.name, write_leaving)
        self.addCleanup(run.history.close)
        nem = nemesis.Nemesis(run, kind, random.Random(1))
        nem.poll_s = 0
        nem.node_factory = FakeNode
        nem._ctl = lambda via, *args: run.cluster.ctl(run, via, args)
        return run, nem

    def change(self, nem, plan=None):
        if plan is not None:
            nem.book.plan = lambda rng: plan
        nem._begin(nem.kind)
        nem.heal()

    def nemesis_events(self, run):
        return [(e["type"], e["f"]) for e in run.history.events
                if e["process"] == "nemesis" and e["f"] not in ("start", "stop", "skip")]

    def test_add_then_remove(self):
        run, nem = self.make()
        self.change(nem, ("add", None))
        self.assertEqual(sorted(run.nodes), [1, 2, 3, 4])
        self.assertEqual(sorted(run.cluster.members), [1, 2, 3, 4])
        self.assertTrue(run.all_nodes[4].joined)
        self.assertEqual(run.all_nodes[4].slot, 4)
        self.change(nem, ("remove", 2))
        self.assertEqual(sorted(run.nodes), [1, 3, 4])
        self.assertEqual(sorted(run.cluster.members), [1, 3, 4])
        self.assertEqual(run.stopped, [2])
        self.assertEqual(nem.book.free_slots(), [2, 5])
        self.assertEqual(self.nemesis_events(run), [("invoke", "add-node"), ("ok", "add-node"),
                                                    ("invoke", "remove-node"),
                                                    ("ok", "remove-node")])
        last = run.history.events[-2]  # the completion (then the window's stop)
        self.assertEqual(last["value"]["members"], [1, 3, 4])
        self.assertEqual([w[2] for w in nem.windows], ["membership-add", "membership-remove"])
        self.assertTrue(all(w[1] is not None for w in nem.windows))
        self.assertEqual(run.errors, [])
        ivals = nem.membership_intervals()
        self.assertEqual(ivals[2]["removed"], nem.membership_ops[1]["t_complete"])
        self.assertEqual(ivals[4]["added"], nem.membership_ops[0]["t_invoke"])

    def test_clients_stop_using_the_victim_before_remove_node(self):
        run, nem = self.make()
        self.change(nem, ("remove", 3))  # 3 members: the book would not plan it; forced here
        args, targets = run.cluster.calls[-1]
        self.assertEqual(args, ("remove-node", "3"))
        self.assertEqual(targets, [1, 2])
        self.assertEqual(run.stopped, [3])

    def test_write_leaving_keeps_the_victim_a_target_until_it_left(self):
        run, nem = self.make(write_leaving=True)
        self.change(nem, ("remove", 3))
        self.assertEqual(run.cluster.calls[-1][1], [1, 2, 3])
        self.assertEqual(sorted(run.nodes), [1, 2])

    def test_replace_adds_before_it_removes(self):
        run, nem = self.make()
        self.change(nem, ("replace", 1))
        self.assertEqual([c[0][0] for c in run.cluster.calls], ["add-node", "remove-node"])
        self.assertEqual(run.cluster.calls[1][1], [2, 3, 4])  # 4 in, 1 out, at remove-node
        self.assertEqual(sorted(run.nodes), [2, 3, 4])
        self.assertEqual(self.nemesis_events(run), [("invoke", "replace-node"),
                                                    ("ok", "replace-node")])
        ivals = nem.membership_intervals()
        self.assertIsNotNone(ivals[1]["removed"])
        self.assertIsNotNone(ivals[4]["added"])

    def test_refused_remove_is_a_fail_and_the_victim_stays(self):
        run, nem = self.make(n=4)
        run.cluster.remove_outcome = ("fail", "no member 2")
        self.change(nem, ("remove", 2))
        self.assertEqual(sorted(run.nodes), [1, 2, 3, 4])
        self.assertEqual(run.stopped, [])
        self.assertEqual(self.nemesis_events(run)[-1], ("fail", "remove-node"))
        self.assertEqual(run.errors, [])
        self.assertIsNone(nem.membership_broken)

    def test_unknown_remove_not_applied_stops_the_nemesis(self):
        run, nem = self.make(n=4)
        run.cluster.remove_outcome = ("info", "Deadline Exceeded")
        run.cluster.apply_remove = False
        self.change(nem, ("remove", 2))
        self.assertEqual(len([c for c in run.cluster.calls if c[0][0] == "remove-node"]), 3)
        self.assertEqual(self.nemesis_events(run)[-1], ("info", "remove-node"))
        self.assertEqual(len(run.errors), 1)
        self.assertIsNotNone(nem.membership_broken)
        self.assertEqual(sorted(run.nodes), [1, 2, 3, 4])
        self.change(nem, ("add", None))  # skipped from now on
        self.assertEqual(run.history.events[-1]["f"], "skip")

    def test_unknown_remove_that_applied_is_ok(self):
        run, nem = self.make(n=4)
        run.cluster.remove_outcome = ("info", "Deadline Exceeded")
        self.change(nem, ("remove", 2))
        self.assertEqual(self.nemesis_events(run)[-1], ("ok", "remove-node"))
        self.assertEqual(sorted(run.nodes), [1, 3, 4])

    def test_a_cluster_that_never_settles_is_an_error(self):
        run, nem = self.make()
        run.cfg.membership_timeout = 0.05
        run.cluster.never_settle = True
        self.change(nem, ("add", None))
        self.assertEqual(self.nemesis_events(run)[-1], ("info", "add-node"))
        self.assertIn("not settled", run.errors[0])

    def test_membership_kill_kills_a_member_while_shards_move(self):
        for seed in range(6):
            run, nem = self.make(n=4, kind="membership-kill")
            nem.rng = random.Random(seed)
            self.change(nem, ("remove", 2))
            self.assertEqual(len(run.killed), 1)
            killed = run.killed[0]
            self.assertIn(killed, [1, 2, 3, 4])
            self.assertEqual(nem.membership_ops[0]["killed"], killed)
            self.assertEqual(nem.windows[0][2], "membership-remove+kill")
            self.assertEqual(self.nemesis_events(run)[-1], ("ok", "remove-node"))
            self.assertEqual(run.stopped, [2])  # restarted if it was the victim, then stopped
            self.assertEqual(sorted(i for i, n in run.all_nodes.items() if n.alive()), [1, 3, 4])

    def test_membership_partition_isolates_a_member_while_shards_move(self):
        run, nem = self.make(n=4, kind="membership-partition")
        grudges, heals = [], []
        run.net = types.SimpleNamespace(apply_grudge=grudges.append,
                                        heal=lambda: heals.append(run.now()))
        self.change(nem, ("replace", 2))
        victim = nem.membership_ops[0]["isolated"]
        self.assertIn(victim, [1, 2, 3, 4, 5])
        slot = run.all_nodes[victim].slot
        self.assertEqual(len(grudges), 1)
        self.assertEqual(grudges[0][slot], {run.all_nodes[i].slot for i in [1, 2, 3, 4, 5]
                                            if i != victim})
        self.assertEqual(len(heals), 1)
        self.assertEqual(nem.windows[0][2], "membership-replace+partition")
        self.assertEqual(self.nemesis_events(run)[-1], ("ok", "replace-node"))
        self.assertEqual(sorted(run.nodes), [1, 3, 4, 5])

    def test_membership_kill_skips_the_kill_when_the_change_was_refused(self):
        run, nem = self.make(n=4, kind="membership-kill")
        run.cluster.remove_outcome = ("fail", "no member 2")
        self.change(nem, ("remove", 2))
        self.assertEqual(run.killed, [])

    def test_linger_keeps_a_removed_node_a_target_until_the_end(self):
        run, nem = self.make(n=4)
        run.cfg.membership_linger = 3600
        self.change(nem, ("remove", 2))
        self.assertEqual(self.nemesis_events(run)[-1], ("ok", "remove-node"))
        self.assertEqual(sorted(run.cluster.members), [1, 3, 4])
        self.assertEqual(sorted(run.nodes), [1, 2, 3, 4])  # removed, still used by clients
        self.assertEqual(nem.ids, [1, 3, 4])  # but no other fault picks it
        self.assertTrue(run.all_nodes[2].alive())
        self.assertEqual(nem.book.members(), [1, 3, 4])
        self.assertEqual(nem.book.free_slots(), [5, 6])  # slot 2 still taken
        self.change(nem, ("add", None))  # the schedule goes on meanwhile
        self.assertEqual(sorted(run.nodes), [1, 2, 3, 4, 5])
        nem.stop()  # the final heal cuts the lingering short
        self.assertEqual(sorted(run.nodes), [1, 3, 4, 5])
        self.assertEqual(run.stopped, [2])
        self.assertEqual(nem.book.free_slots(), [2, 6])
        self.assertEqual(run.history.events[-1]["f"], "linger-end")

    def test_membership_check(self):
        run, nem = self.make()
        self.change(nem, ("replace", 2))
        reads = lambda ids: {"samples": {"nodes": [{"node": str(i)} for i in ids]}}  # noqa
        ok = nem.membership_check(reads([1, 3, 4]))
        self.assertTrue(ok["valid"], ok)
        self.assertEqual((ok["replaces"], ok["ok"], ok["final_members"]), (1, 1, [1, 3, 4]))
        bad = nem.membership_check(reads([1, 2, 3]))  # read a removed node, missed node 4
        self.assertFalse(bad["valid"])
        run.cluster.members[9] = "active"  # the cluster lists a node the harness lost
        self.assertFalse(nem.membership_check(reads([1, 3, 4]))["valid"])

    def test_membership_needs_three_nodes(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        run = FakeRun(2, tmp.name)
        self.addCleanup(run.history.close)
        with self.assertRaises(nemesis.Unsupported):
            nemesis.Nemesis(run, "membership", random.Random(1))

    def test_partitions_name_slots(self):
        run, nem = self.make()
        self.change(nem, ("replace", 1))  # node 4 lives in slot 4, 1 is gone
        applied = []
        run.net = types.SimpleNamespace(apply_grudge=applied.append, heal=lambda: None)
        nem._partition(nemesis.grudge_isolate([2, 3, 4], 4), "isolate 4")
        self.assertEqual(applied, [{2: {4}, 3: {4}, 4: {2, 3}}])
        run.all_nodes[4].slot = 1  # as if it had reused slot 1
        nem._partition(nemesis.grudge_isolate([2, 3, 4], 4), "isolate 4")
        self.assertEqual(applied[1], {2: {1}, 3: {1}, 1: {2, 3}})


# --- the raft checker with membership --------------------------------------------

def ob(node, time, term, role="follower", leader=None, commit=0, committed=()):
    return {"node": node, "time": time, "term": term, "role": role, "leader": leader,
            "commit_index": commit, "committed": [list(e) for e in committed]}


class RaftMembershipTest(unittest.TestCase):
    members = {1: {"added": None, "removed": None}, 2: {"added": None, "removed": 5.0},
               3: {"added": None, "removed": None}, 4: {"added": 3.0, "removed": None}}

    def history(self):
        return [ob(1, 0, 1, "leader", 1, 2, [(1, 1, "a"), (2, 1, "b")]),
                ob(2, 0, 1, "follower", 1, 2, [(1, 1, "a"), (2, 1, "b")]),
                ob(4, 3.5, 0),  # joined: HTTP up before Raft
                ob(4, 4.0, 1, "learner", 1, 0),  # caught up from a snapshot: no entries yet
                ob(4, 4.5, 1, "follower", 1, 3, [(3, 1, "c")]),
                ob(2, 5.5, 1, "follower", 1, 3, [(3, 1, "c")]),  # removed, not yet stopped
                ob(1, 6, 1, "leader", 1, 3, [(2, 1, "b"), (3, 1, "c")])]

    def test_joined_and_removed_nodes(self):
        r = raft.check(self.history(), members=self.members)
        self.assertTrue(r["valid"], r)
        self.assertEqual((r["joined"], r["removed"], r["unstarted"]), (1, 1, 1))
        self.assertEqual(r["members"]["4"]["first_seen"], 3.5)
        self.assertEqual(r["members"]["3"]["observations"], 0)

    def test_a_joined_node_with_a_different_entry_is_caught(self):
        obs = self.history() + [ob(4, 7, 1, "follower", 1, 3, [(2, 1, "X")])]
        r = raft.check(obs, members=self.members)
        self.assertFalse(r["valid"])
        self.assertEqual(r["divergent_indexes"], 1)

    def test_a_removed_node_claiming_a_term_already_led_is_caught(self):
        obs = self.history() + [ob(2, 7, 1, "leader", 2)]
        self.assertEqual(raft.check(obs, members=self.members)["multiple_leaders"], 1)

    def test_observed_before_added_or_unknown(self):
        obs = self.history() + [ob(4, 1.0, 1, "follower", 1)]
        self.assertEqual(raft.check(obs, members=self.members)["observed_before_added"], ["4"])
        obs = self.history() + [ob(9, 1.0, 1, "follower", 1)]
        r = raft.check(obs, members=self.members)
        self.assertFalse(r["valid"])
        self.assertEqual(r["unknown_nodes"], ["9"])


if __name__ == "__main__":
    unittest.main()
