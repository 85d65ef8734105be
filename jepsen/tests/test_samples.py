"""Unit tests for the samples checker."""

import unittest

from checkers import samples


def write(history, p, node, rows, outcome):
    history.append({"type": "invoke", "process": p, "f": "write", "node": node,
                    "value": {"samples": rows}, "time": len(history)})
    if outcome is not None:
        history.append({"type": outcome, "process": p, "f": "write", "node": node,
                        "time": len(history)})


def read(rows):
    return {"ok": True, "samples": rows}


class SamplesTest(unittest.TestCase):

    def setUp(self):
        self.h = []
        write(self.h, 0, "n1", [["c0", 1, 1.0], ["c0", 2, 2.0]], "ok")
        write(self.h, 1, "n2", [["c1", 1, 3.0]], "ok")
        write(self.h, 1, "n2", [["c1", 2, 4.0]], "info")
        write(self.h, 0, "n1", [["c0", 3, 5.0]], "fail")
        write(self.h, 2, "n1", [["c2", 1, 6.0]], None)  # never completed

    def test_everything_acked_present_is_valid(self):
        rows = [["c0", 1, 1.0], ["c0", 2, 2.0], ["c1", 1, 3.0]]
        r = samples.check(self.h, {"n1": read(rows), "n2": read(rows)})
        self.assertTrue(r["valid"])
        self.assertEqual((r["attempted"], r["acked"], r["lost"], r["unexpected"]), (6, 3, 0, 0))
        self.assertEqual(r["ops"], {"invoke": 5, "ok": 2, "fail": 1, "info": 2})

    def test_lost_sample_is_found(self):
        full = [["c0", 1, 1.0], ["c0", 2, 2.0], ["c1", 1, 3.0]]
        r = samples.check(self.h, {"n1": read(full), "n2": read(full[:2])})
        self.assertFalse(r["valid"])
        self.assertEqual(r["lost"], 1)
        n2 = [n for n in r["nodes"] if n["node"] == "n2"][0]
        self.assertEqual(n2["lost_examples"], [["c1", 1]])

    def test_unexpected_sample_is_found(self):
        rows = [["c0", 1, 1.0], ["c0", 2, 2.0], ["c1", 1, 3.0], ["c9", 7, 1.0]]
        r = samples.check(self.h, {"n1": read(rows)})
        self.assertFalse(r["valid"])
        self.assertEqual(r["unexpected"], 1)

    def test_wrong_value_is_unexpected(self):
        rows = [["c0", 1, 1.0], ["c0", 2, 2.5], ["c1", 1, 3.0]]
        r = samples.check(self.h, {"n1": read(rows)})
        self.assertFalse(r["valid"])
        self.assertEqual(r["unexpected"], 1)

    def test_unacked_but_present_is_reported_not_an_error(self):
        rows = [["c0", 1, 1.0], ["c0", 2, 2.0], ["c1", 1, 3.0], ["c1", 2, 4.0],
                ["c0", 3, 5.0], ["c2", 1, 6.0]]
        r = samples.check(self.h, {"n1": read(rows)})
        self.assertTrue(r["valid"])
        self.assertEqual(r["unacked_present"], 3)

    def test_failed_read_is_invalid(self):
        r = samples.check(self.h, {"n1": {"ok": False, "error": "connection refused"}})
        self.assertFalse(r["valid"])
        self.assertEqual(r["read_failures"], 1)

    def test_no_reads_is_invalid(self):
        self.assertFalse(samples.check(self.h, {})["valid"])

    def test_per_node_scope(self):
        n1 = read([["c0", 1, 1.0], ["c0", 2, 2.0]])
        n2 = read([["c1", 1, 3.0]])
        self.assertTrue(samples.check(self.h, {"n1": n1, "n2": n2}, scope="per-node")["valid"])
        r = samples.check(self.h, {"n1": n1, "n2": n2}, scope="all")
        self.assertFalse(r["valid"])
        self.assertEqual(r["lost"], 3)


if __name__ == "__main__":
    unittest.main()
