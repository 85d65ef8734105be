"""Unit tests for the Raft history checker."""

import unittest

from checkers import raft


def ob(node, time, term, role="follower", leader=None, commit=0, committed=()):
    return {"node": node, "time": time, "term": term, "role": role, "leader": leader,
            "commit_index": commit, "committed": [list(e) for e in committed]}


class RaftTest(unittest.TestCase):

    def test_clean_history(self):
        obs = [ob(1, 0, 1, "leader", 1, 2, [(1, 1, "a"), (2, 1, "b")]),
               ob(2, 0, 1, "follower", 1, 1, [(1, 1, "a")]),
               ob(2, 1, 2, "leader", 2, 3, [(2, 1, "b"), (3, 2, "c")]),
               ob(1, 2, 2, "follower", 2, 3, [(3, 2, "c")])]
        r = raft.check(obs)
        self.assertTrue(r["valid"], r)
        self.assertEqual(r["committed_indexes"], 3)

    def test_two_leaders_in_one_term(self):
        obs = [ob(1, 0, 3, "leader", 1), ob(2, 1, 3, "leader", 2)]
        r = raft.check(obs)
        self.assertFalse(r["valid"])
        self.assertEqual(r["multiple_leader_examples"], [{"term": 3, "leaders": ["1", "2"]}])

    def test_follower_reporting_another_leader_counts(self):
        obs = [ob(1, 0, 3, "leader", 1), ob(3, 1, 3, "follower", 2)]
        self.assertEqual(raft.check(obs)["multiple_leaders"], 1)

    def test_divergent_committed_entry(self):
        obs = [ob(1, 0, 1, "leader", 1, 1, [(1, 1, "a")]),
               ob(2, 0, 1, "follower", 1, 1, [(1, 1, "x")])]
        r = raft.check(obs)
        self.assertFalse(r["valid"])
        self.assertEqual(r["divergent_indexes"], 1)

    def test_uncommitted_entries_may_differ(self):
        obs = [ob(1, 0, 1, "leader", 1, 1, [(1, 1, "a"), (2, 1, "b")]),
               ob(2, 0, 1, "follower", 1, 1, [(1, 1, "a"), (2, 1, "z")])]
        self.assertTrue(raft.check(obs)["valid"])

    def test_term_going_backwards(self):
        obs = [ob(1, 0, 5), ob(1, 1, 4)]
        r = raft.check(obs)
        self.assertFalse(r["valid"])
        self.assertEqual(r["term_regressions"], 1)

    def test_restarted_node_answering_before_raft_started_is_skipped(self):
        obs = [ob(2, 0, 3, "follower", 1, 7, [(7, 3, "a")]),
               ob(2, 1, 0),  # killed, restarted: HTTP up, Raft not yet
               ob(2, 2, 3, "follower", 1, 7, [(7, 3, "a")])]
        r = raft.check(obs)
        self.assertTrue(r["valid"], r)
        self.assertEqual(r["unstarted"], 1)

    def test_term_zero_with_state_is_still_a_regression(self):
        obs = [ob(1, 0, 5, commit=3), ob(1, 1, 0, commit=3)]
        self.assertEqual(raft.check(obs)["term_regressions"], 1)


if __name__ == "__main__":
    unittest.main()
