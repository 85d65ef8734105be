"""Unit tests for the WGL linearizability checker, on hand-made histories."""

import random
import unittest

from checkers import linearizable, models


class H:
    """Builds a Jepsen-style history: h.invoke(p, f, ...) then h.ok/fail/info(p, ...)."""

    def __init__(self):
        self.events = []
        self.t = 0

    def _add(self, ev):
        self.t += 1
        ev["time"] = self.t
        ev["index"] = len(self.events)
        self.events.append(ev)
        return self

    def invoke(self, p, f, key="x", **value):
        return self._add({"type": "invoke", "process": p, "f": f, "key": key, "value": value})

    def ok(self, p, **value):
        return self._add({"type": "ok", "process": p, "value": value})

    def fail(self, p):
        return self._add({"type": "fail", "process": p})

    def info(self, p):
        return self._add({"type": "info", "process": p})


class LinearizableTest(unittest.TestCase):

    def check(self, h):
        return linearizable.check(h.events, timeout_s=30)

    def test_sequential_history_is_linearizable(self):
        h = H()
        h.invoke(0, "read").ok(0, value=None)
        h.invoke(0, "write", value=1).ok(0)
        h.invoke(1, "read").ok(1, value=1)
        h.invoke(1, "cas", **{"from": 1, "to": 2}).ok(1, ok=True)
        h.invoke(0, "read").ok(0, value=2)
        self.assertIs(self.check(h)["valid"], True)

    def test_concurrent_read_may_see_either_value(self):
        h = H()
        h.invoke(0, "write", value=1).ok(0)
        h.invoke(0, "write", value=2)
        h.invoke(1, "read").ok(1, value=1)  # concurrent with the write of 2
        h.invoke(2, "read").ok(2, value=2)
        h.ok(0)
        self.assertIs(self.check(h)["valid"], True)

    def test_stale_read_is_caught(self):
        h = H()
        h.invoke(0, "write", value=1).ok(0)
        h.invoke(0, "write", value=2).ok(0)
        h.invoke(1, "read").ok(1, value=1)  # after write 2 completed: stale
        result = self.check(h)
        self.assertIs(result["valid"], False)
        failure = result["failures"][0]
        self.assertEqual(failure["key"], "x")
        self.assertEqual(failure["first_unlinearizable"][0]["output"], {"value": 1})

    def test_read_going_back_in_time_is_caught(self):
        # Two reads concurrent with a write, but the later one sees the old value
        # after an earlier one already saw the new value.
        h = H()
        h.invoke(0, "write", value=1).ok(0)
        h.invoke(0, "write", value=2)
        h.invoke(1, "read").ok(1, value=2)
        h.invoke(2, "read").ok(2, value=1)
        h.ok(0)
        self.assertIs(self.check(h)["valid"], False)

    def test_info_write_that_happened(self):
        h = H()
        h.invoke(0, "write", value=1).ok(0)
        h.invoke(0, "write", value=2).info(0)  # timed out: unknown
        h.invoke(1, "read").ok(1, value=2)
        h.invoke(1, "read").ok(1, value=2)
        self.assertIs(self.check(h)["valid"], True)

    def test_info_write_that_never_happened(self):
        h = H()
        h.invoke(0, "write", value=1).ok(0)
        h.invoke(0, "write", value=2).info(0)
        h.invoke(1, "read").ok(1, value=1)
        h.invoke(1, "read").ok(1, value=1)
        self.assertIs(self.check(h)["valid"], True)

    def test_info_write_that_took_effect_late(self):
        # Unknown outcome: it may take effect long after the client gave up.
        h = H()
        h.invoke(0, "write", value=2).info(0)
        h.invoke(1, "read").ok(1, value=None)
        h.invoke(1, "read").ok(1, value=2)
        self.assertIs(self.check(h)["valid"], True)

    def test_info_write_cannot_be_seen_before_its_invocation(self):
        h = H()
        h.invoke(1, "read").ok(1, value=2)
        h.invoke(0, "write", value=2).info(0)
        self.assertIs(self.check(h)["valid"], False)

    def test_info_write_cannot_flicker(self):
        # Once seen and then overwritten, an unknown write cannot reappear.
        h = H()
        h.invoke(0, "write", value=2).info(0)
        h.invoke(1, "read").ok(1, value=2)
        h.invoke(1, "write", value=3).ok(1)
        h.invoke(1, "read").ok(1, value=2)
        self.assertIs(self.check(h)["valid"], False)

    def test_invoke_without_completion_is_unknown(self):
        h = H()
        h.invoke(0, "write", value=1).ok(0)
        h.invoke(0, "write", value=5)  # the client never heard back
        h.invoke(1, "read").ok(1, value=5)
        self.assertIs(self.check(h)["valid"], True)

    def test_failed_write_must_not_be_seen(self):
        h = H()
        h.invoke(0, "write", value=1).ok(0)
        h.invoke(0, "write", value=2).fail(0)  # certainly not applied
        h.invoke(1, "read").ok(1, value=2)
        self.assertIs(self.check(h)["valid"], False)

    def test_cas_outcomes(self):
        h = H()
        h.invoke(0, "write", value=1).ok(0)
        h.invoke(0, "cas", **{"from": 1, "to": 2}).ok(0, ok=True)
        h.invoke(1, "cas", **{"from": 1, "to": 3}).ok(1, ok=False, value=2)
        h.invoke(1, "read").ok(1, value=2)
        self.assertIs(self.check(h)["valid"], True)
        h = H()
        h.invoke(0, "write", value=1).ok(0)
        h.invoke(1, "cas", **{"from": 1, "to": 3}).ok(1, ok=False)  # but it held 1
        self.assertIs(self.check(h)["valid"], False)

    def test_versions_are_checked(self):
        h = H()
        h.invoke(0, "write", value="a").ok(0, version=1)
        h.invoke(0, "cas", from_version=1, to="b").ok(0, ok=True, version=2)
        h.invoke(1, "read").ok(1, value="b", version=2)
        self.assertIs(self.check(h)["valid"], True)
        h = H()
        h.invoke(0, "write", value="a").ok(0, version=1)
        h.invoke(0, "write", value="a").ok(0, version=2)
        h.invoke(1, "read").ok(1, value="a", version=1)  # same value, stale version
        self.assertIs(self.check(h)["valid"], False)

    def test_keys_are_independent(self):
        h = H()
        h.invoke(0, "write", key="x", value=1).ok(0)
        h.invoke(1, "read", key="y").ok(1, value=None)
        h.invoke(1, "read", key="x").ok(1, value=1)
        self.assertIs(self.check(h)["valid"], True)
        h.invoke(1, "read", key="y").ok(1, value=1)  # nobody wrote y
        result = self.check(h)
        self.assertIs(result["valid"], False)
        self.assertEqual([f["key"] for f in result["failures"]], ["y"])

    def test_random_linearizable_histories_pass_and_stale_reads_fail(self):
        for seed in range(20):
            events, stale = simulate(random.Random(seed), ops=120, procs=5)
            result = linearizable.check(events, timeout_s=30)
            self.assertIs(result["valid"], True, "seed %d: %s" % (seed, result))
            if stale is not None:
                self.assertIs(linearizable.check(stale, timeout_s=30)["valid"], False,
                              "seed %d" % seed)

    def test_search_gives_up_at_the_deadline(self):
        ops = [linearizable.Operation(i, "x", {"f": "write", "value": i}, None, 0,
                                      linearizable.INF) for i in range(40)]
        ops.append(linearizable.Operation(40, "x", {"f": "read"}, {"value": -1}, 1, 2))
        res = linearizable.check_partition(models.VersionedRegister(), ops, "x", deadline=0)
        self.assertIsNone(res.valid)
        self.assertTrue(res.timed_out)


def simulate(rng, ops, procs):
    """A linearizable history from a real register with overlapping calls.

    Each op takes effect at one random instant inside its [call, return]
    interval. Returns (events, events with one read made stale, or None).
    """
    value, timeline = None, []
    t = 0.0
    # Choose intervals first, then apply effects in linearization-point order.
    planned = []
    free_at = [0.0] * procs
    for i in range(ops):
        p = rng.randrange(procs)
        call = max(free_at[p], t) + rng.random()
        ret = call + rng.random() * 3
        free_at[p] = ret
        t = call
        point = call + (ret - call) * rng.random()
        f = rng.choice(["read", "read", "write", "cas"])
        planned.append((point, i, p, f, call, ret, rng.randrange(4)))
    results = {}
    history_values = []
    for point, i, p, f, call, ret, arg in sorted(planned):
        if f == "read":
            results[i] = ({}, {"value": value})
            history_values.append(value)
        elif f == "write":
            results[i] = ({"value": arg}, {})
            value = arg
        else:
            ok = value == arg
            results[i] = ({"from": arg, "to": arg + 1}, {"ok": ok})
            if ok:
                value = arg + 1
    events = []
    for point, i, p, f, call, ret, arg in planned:
        inp, out = results[i]
        events.append((call, 0, {"type": "invoke", "process": p, "f": f, "key": "k",
                                 "value": inp, "time": call}))
        events.append((ret, 1, {"type": "ok", "process": p, "f": f, "key": "k",
                                "value": out, "time": ret}))
    events.sort(key=lambda e: (e[0], e[1]))
    events = [e[2] for e in events]
    # Plant a stale read: a read, after everything else finished, of a value the
    # register held before the last completed write.
    end = max(e["time"] for e in events) + 1
    last_write = [e for e in events if e["type"] == "ok" and e["f"] == "write"]
    if not last_write:
        return events, None
    final = value
    old = [v for v in range(5) if v != final]
    stale = events + [
        {"type": "invoke", "process": procs, "f": "read", "key": "k", "value": {}, "time": end},
        {"type": "ok", "process": procs, "f": "read", "key": "k",
         "value": {"value": old[0]}, "time": end + 1}]
    return events, stale


if __name__ == "__main__":
    unittest.main()
