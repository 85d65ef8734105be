"""Unit tests for the alerts checker: synthetic histories, no vigild, no Alertmanager."""

import unittest
from datetime import datetime, timezone

from checkers import alerts

WALL0 = 1_700_000_000.0  # the wall clock at run time 0
FOR = 15.0


def rfc3339(run_time):
    t = datetime.fromtimestamp(WALL0 + run_time, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"  # Go prints nanoseconds


class History:
    """Builds the writes, episodes and notifications of one synthetic run."""

    def __init__(self):
        self.writes, self.episodes, self.notes = [], [], []

    def write(self, p, k, v, t, kind="ok", took=0.05):
        self.writes.append({"type": "invoke", "process": p, "f": "write", "time": t,
                            "value": {"episode": k, "v": v}})
        if kind is not None:
            self.writes.append({"type": kind, "process": p, "f": "write", "time": t + took})

    def episode(self, k, start, end, clients=(0, 1), step=0.5, until=None, kind=None):
        """Clients write 1 from start to end every `step`, then one 0 each (acked)."""
        self.episodes.append({"episode": k, "start": start, "end": end})
        t = start
        while t < end:
            for p in clients:
                outcome = kind(t) if kind else "ok"
                self.write(p, k, 1, t, outcome)
            t += step
        for p in clients:
            self.write(p, k, 0, end)

    def notify(self, status, k, starts, received, ends=None):
        alert = {"status": status, "startsAt": rfc3339(starts),
                 "labels": {"alertname": "JepsenSignal", "episode": str(k)}}
        if ends is not None:
            alert["endsAt"] = rfc3339(ends)
        self.notes.append({"time": received, "status": status, "alerts": [alert]})

    def fire_and_resolve(self, k, fired, end):
        self.notify("firing", k, fired, fired + 1.2)
        self.notify("resolved", k, fired, end + 2.5, ends=end + 0.8)

    def check(self, windows=(), views=None, **params):
        p = {"for_s": FOR, "wall0": WALL0, "observed_until": 1000.0}
        p.update(params)
        return alerts.check(self.writes, self.episodes, self.notes, list(windows), p, views)


class AlertsCheckerTest(unittest.TestCase):

    def test_one_firing_and_one_resolved_per_episode_is_valid(self):
        h = History()
        h.episode(1, 10.0, 40.0)
        h.fire_and_resolve(1, 10.05 + FOR + 0.9, 40.0)
        h.episode(2, 50.0, 54.0)  # short: must not fire, and did not
        r = h.check()
        self.assertTrue(r["valid"], r)
        self.assertEqual((r["episodes"], r["required"], r["fired"]), (2, 1, 1))
        self.assertEqual((r["firing_notifications"], r["resolved_notifications"]), (1, 1))
        self.assertAlmostEqual(r["max_fire_delay_s"], 0.9, places=3)
        self.assertEqual(r["delayed_by_fault"], 0)
        self.assertEqual(r["bounds"]["for_s"], FOR)

    def test_missing_firing_notification_is_a_violation(self):
        h = History()
        h.episode(1, 10.0, 40.0)
        r = h.check()
        self.assertFalse(r["valid"])
        self.assertEqual(r["missed"], 1)
        self.assertEqual(r["violations"]["missed"][0]["episode"], 1)

    def test_duplicate_firing_notification_is_a_violation(self):
        h = History()
        h.episode(1, 10.0, 40.0)
        h.fire_and_resolve(1, 26.0, 40.0)
        h.notify("firing", 1, 33.0, 34.0)  # resolved and fired again mid-episode
        r = h.check()
        self.assertFalse(r["valid"])
        self.assertEqual(r["duplicate"], 1)
        self.assertEqual(r["violations"]["duplicate"][0]["startsAt"], [26.0, 33.0])

    def test_for_reset_by_a_failover_fires_late(self):
        # A failover at 18 s restarts `for`: fires at 18 + 1 + 15 = 34 s. The kill
        # lasted 6 s (healed at 24 s): allowed max(10.05 + 15 + 3, 24 + 5) = 29 s.
        h = History()
        h.episode(1, 10.0, 45.0)
        h.fire_and_resolve(1, 34.0, 45.0)
        r = h.check(windows=[[18.0, 24.0, "kill"]])
        self.assertFalse(r["valid"])
        self.assertEqual(r["late"], 1)
        late = r["violations"]["late"][0]
        self.assertEqual((late["allowed"], late["faults"]), (29.0, ["kill"]))

    def test_the_same_fire_time_is_valid_when_the_fault_healed_late(self):
        # Not a reset: the leader was unavailable until 30 s; fired 4 s after healing.
        h = History()
        h.episode(1, 10.0, 45.0)
        h.fire_and_resolve(1, 34.0, 45.0)
        r = h.check(windows=[[18.0, 30.0, "pause"]])
        self.assertTrue(r["valid"], r)
        self.assertEqual(r["delayed_by_fault"], 1)

    def test_late_without_faults_is_a_violation(self):
        h = History()
        h.episode(1, 10.0, 45.0)
        h.fire_and_resolve(1, 10.05 + FOR + 3.5, 45.0)
        r = h.check(windows=[[40.0, 44.0, "kill"]])  # after the expected fire time
        self.assertEqual(r["late"], 1)
        self.assertEqual(r["violations"]["late"][0]["faults"], [])

    def test_firing_before_for_elapsed_is_early(self):
        h = History()
        h.episode(1, 10.0, 40.0)
        h.fire_and_resolve(1, 10.0 + FOR - 2.0, 40.0)
        r = h.check()
        self.assertEqual(r["early"], 1)
        self.assertFalse(r["valid"])

    def test_firing_for_a_short_episode_is_spurious(self):
        h = History()
        h.episode(1, 10.0, 18.0)  # held 8 s < for
        h.fire_and_resolve(1, 25.0, 18.0)
        r = h.check()
        self.assertEqual(r["spurious"], 1)
        self.assertFalse(r["valid"])

    def test_firing_for_an_episode_that_never_happened_is_spurious(self):
        h = History()
        h.episode(1, 10.0, 40.0)
        h.fire_and_resolve(1, 26.0, 40.0)
        h.notify("firing", 7, 30.0, 31.0)
        r = h.check()
        self.assertEqual(r["spurious"], 1)
        self.assertTrue(r["violations"]["spurious"][0]["unknown_episode"])

    def test_unacknowledged_zero_extends_what_may_fire(self):
        # The 0 writes fail until 27 s: the signal may have stayed 1 for 17 s, so a
        # firing is allowed (not required: held_min is 8 s).
        h = History()
        h.episode(1, 10.0, 18.0, clients=(0,))
        h.writes = [w for w in h.writes if not (w["time"] >= 18.0)]  # drop the acked 0
        h.write(0, 1, 0, 18.0, "info", took=8.0)
        h.write(0, 1, 0, 26.5, "ok", took=0.5)
        h.fire_and_resolve(1, 25.5, 27.0)
        r = h.check()
        self.assertTrue(r["valid"], r)
        self.assertEqual(r["per_episode"][0]["held_max"], 17.0)
        self.assertFalse(r["per_episode"][0]["required"])

    def test_unavailable_writes_delay_the_required_fire_time(self):
        # No 1 acknowledged until 20 s (every earlier write failed): fired at
        # 20.05 + 15 + 1 is on time.
        h = History()
        h.episode(1, 10.0, 45.0, kind=lambda t: "fail" if t < 20.0 else "ok")
        h.fire_and_resolve(1, 36.05, 45.0)
        r = h.check(windows=[[9.0, 20.0, "partition-leader"]])
        self.assertTrue(r["valid"], r)
        self.assertEqual(r["per_episode"][0]["fire_delay"], 1.0)

    def test_missing_and_early_resolution(self):
        h = History()
        h.episode(1, 10.0, 40.0)
        h.notify("firing", 1, 26.0, 27.0)
        self.assertEqual(h.check()["resolved_missing"], 1)
        self.assertEqual(h.check(observed_until=45.0)["resolved_missing"], 0)  # not yet due
        h.notify("resolved", 1, 26.0, 31.0, ends=30.0)  # resolved while held
        r = h.check()
        self.assertEqual((r["resolved_missing"], r["resolved_early"]), (0, 1))
        h.notify("resolved", 1, 26.0, 42.0, ends=40.5)
        self.assertEqual(h.check()["resolved_duplicate"], 1)

    def test_late_delivery(self):
        h = History()
        h.episode(1, 10.0, 40.0)
        h.notify("firing", 1, 26.0, 37.5)
        h.notify("resolved", 1, 26.0, 42.0, ends=40.5)
        self.assertEqual(h.check()["late_delivery"], 1)
        # A fault over the fire time: delivery within notify_bound of the heal is fine.
        self.assertEqual(h.check(windows=[[25.0, 30.0, "kill"]])["late_delivery"], 0)

    def test_for_restarted_after_a_failover_is_a_violation(self):
        # Fired at 26 (activeAt 11); a new leader shows it pending since 33 while
        # the signal is still 1 (until 45): it started `for` again.
        h = History()
        h.episode(1, 10.0, 45.0)
        h.fire_and_resolve(1, 26.0, 45.0)
        views = [view(12.0, 1, 1, "pending", 11.0), view(27.0, 2, 1, "firing", 11.0),
                 view(34.0, 3, 1, "pending", 33.0)]
        r = h.check(views=views)
        self.assertFalse(r["valid"])
        self.assertEqual(r["for_restarted"], 1)
        v = r["violations"]["for_restarted"][0]
        self.assertEqual((v["first_active_at"], v["restarted_at"], v["node"]), (11.0, 33.0, 3))

    def test_one_active_at_on_every_node_is_no_restart(self):
        h = History()
        h.episode(1, 10.0, 45.0)
        h.fire_and_resolve(1, 26.0, 45.0)
        views = [view(12.0 + n, n, 1, "pending", 11.0) for n in (1, 2, 3)]
        views.append(view(27.0, 1, 1, "firing", 11.0))
        views.append(view(27.5, 2, 1, "pending", 11.8))  # within one interval: evaluation jitter
        views.append(view(47.0, 1, 1, "pending", 46.5))  # after the end: not while held
        self.assertEqual(h.check(views=views)["for_restarted"], 0)


def view(t, node, k, state, active_at):
    return {"time": t, "node": node, "episode": str(k), "state": state, "active_at": active_at}


if __name__ == "__main__":
    unittest.main()
