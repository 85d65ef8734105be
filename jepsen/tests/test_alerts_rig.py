"""The alerts workload's parts without vigild or root: the episode schedule, and a
real Alertmanager with the harness's config, recording proxy and webhook receiver
(skipped when prometheus-alertmanager is not installed)."""

import http.client
import json
import os
import shutil
import tempfile
import time
import unittest
from datetime import datetime, timezone

from checkers import alerts as alerts_checker
from harness import alertmanager as am_mod
from harness import alerts_workload
from harness import history as history_mod

WAIT_S = 60.0  # generous: a loaded CI machine makes it slower, not flaky


def rfc3339(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ScheduleTest(unittest.TestCase):

    def test_seeded_episodes_fit_and_alternate(self):
        eps = alerts_workload.schedule(7, 3.0, 300.0)
        self.assertEqual(eps, alerts_workload.schedule(7, 3.0, 300.0))
        self.assertNotEqual(eps, alerts_workload.schedule(8, 3.0, 300.0))
        self.assertGreater(len(eps), 5)
        prev_end = 3.0
        for k, ep in enumerate(eps, 1):
            self.assertEqual(ep["episode"], k)
            self.assertGreaterEqual(ep["start"] - prev_end, 5.0 - 1e-6)  # a gap first
            length = ep["end"] - ep["start"]
            if ep["long"]:
                self.assertGreaterEqual(length, alerts_workload.FOR_S + 8 - 1e-3)
            else:
                self.assertLessEqual(length, alerts_workload.FOR_S - 5 + 1e-3)
            prev_end = ep["end"]
        self.assertLessEqual(prev_end, 300.0)
        self.assertTrue(any(e["long"] for e in eps) and any(not e["long"] for e in eps))


@unittest.skipIf(am_mod.find_binary() is None, "prometheus-alertmanager is not installed")
class AlertmanagerRigTest(unittest.TestCase):
    """One firing and one resolved webhook call per episode; a resend is no duplicate."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="jepsen-am-test-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.history = history_mod.History(os.path.join(self.dir, "history.jsonl"))
        self.addCleanup(self.history.close)
        self.receiver = am_mod.Receiver(self.history)
        self.addCleanup(self.receiver.close)
        self.am = am_mod.Alertmanager(am_mod.find_binary(), "127.0.0.1", self.dir,
                                      os.path.join(self.dir, "am.log"), self.receiver.port)
        self.am.start()
        self.addCleanup(self.am.stop)
        self.assertTrue(self.am.wait_ready(WAIT_S), self._log())
        # The nodes' way in: a recording proxy (a node id from the source address).
        self.proxy = am_mod.Proxy(self.history, "127.0.0.1", self.am.port,
                                  {"127.0.0.1": 7}.get)
        self.addCleanup(self.proxy.close)

    def _log(self):
        with open(os.path.join(self.dir, "am.log"), errors="replace") as f:
            return f.read()[-2000:]

    def post(self, episode, starts, ends):
        alert = {"labels": {"alertname": "JepsenSignal", "episode": str(episode)},
                 "startsAt": rfc3339(starts), "endsAt": rfc3339(ends)}
        conn = http.client.HTTPConnection(self.proxy.ip, self.proxy.port, timeout=10)
        try:
            conn.request("POST", "/api/v2/alerts", body=json.dumps([alert]),
                         headers={"Content-Type": "application/json"})
            self.assertEqual(conn.getresponse().status, 200)
        finally:
            conn.close()

    def calls(self, episode, status):
        return [n for n in self.receiver.snapshot()
                if n["status"] == status
                and any(a["labels"].get("episode") == str(episode) for a in n["alerts"])]

    def wait_for(self, fn, what):
        deadline = time.monotonic() + WAIT_S
        while not fn():
            self.assertLess(time.monotonic(), deadline, "%s; alertmanager log:\n%s"
                            % (what, self._log()))
            time.sleep(0.05)

    def test_one_firing_and_one_resolved_per_episode(self):
        fired = time.time()
        self.post(1, fired, fired + 60)
        self.wait_for(lambda: self.calls(1, "firing"), "episode 1 firing")
        self.post(1, fired, fired + 60)  # vigild's resend: no new notification
        self.post(2, fired + 0.5, fired + 60)
        self.wait_for(lambda: self.calls(2, "firing"), "episode 2 firing")
        resolved_at = time.time()
        self.post(1, fired, resolved_at)
        self.wait_for(lambda: self.calls(1, "resolved"), "episode 1 resolved")
        # The resolution is a later flush of episode 1's group: a duplicate firing
        # from the resend would have come before it.
        self.assertEqual(len(self.calls(1, "firing")), 1, self.receiver.snapshot())
        self.assertEqual(len(self.calls(2, "firing")), 1, self.receiver.snapshot())
        for n in self.receiver.snapshot():
            self.assertEqual(len(n["alerts"]), 1, n)  # grouped by episode
        sent = [e for e in self.history.events if e.get("f") == "sent"]
        self.assertEqual(len(sent), 4)  # every post, recorded with its sender and answer
        self.assertTrue(all(e["node"] == 7 and e["value"]["status"] == 200 for e in sent), sent)
        self.assertEqual(sent[0]["value"]["alerts"][0]["labels"]["episode"], "1")
        # The checker reads Alertmanager's own payloads (Go's time format) as they come.
        wall0 = time.time() - self.history.now()
        t_fire = fired - wall0
        writes = []
        for p, (t, v, kind) in enumerate([(t_fire - 15.5, 1, "ok"),
                                          (resolved_at - wall0 - 0.5, 0, "ok")]):
            writes += [{"type": "invoke", "process": p, "f": "write", "time": t,
                        "value": {"episode": 1, "v": v}},
                       {"type": kind, "process": p, "f": "write", "time": t + 0.01}]
        writes[2]["process"] = writes[3]["process"] = 0  # the same client's 0
        episodes = [{"episode": 1, "start": t_fire - 15.5, "end": resolved_at - wall0 - 0.5}]
        ep1 = [n for n in self.receiver.snapshot() if n["alerts"][0]["labels"]["episode"] == "1"]
        res = alerts_checker.check(writes, episodes, ep1, [],
                                   {"wall0": wall0, "observed_until": self.history.now()})
        self.assertEqual((res["firing_notifications"], res["resolved_notifications"]), (1, 1),
                         res)
        self.assertEqual((res["duplicate"], res["early"], res["late"]), (0, 0, 0), res)


if __name__ == "__main__":
    unittest.main()
