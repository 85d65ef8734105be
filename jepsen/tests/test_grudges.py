"""Unit tests for the partition shapes (pure functions, no namespaces)."""

import random
import unittest

from harness import nemesis


def symmetric(g):
    return all(i in g[j] for i in g for j in g[i])


class GrudgeTest(unittest.TestCase):
    ids = [1, 2, 3, 4, 5]

    def test_halves_split_everyone(self):
        g, _ = nemesis.grudge_halves(self.ids, random.Random(1))
        self.assertTrue(symmetric(g))
        sides = {frozenset(set(self.ids) - g[i]) for i in self.ids}
        self.assertEqual(len(sides), 2)
        self.assertEqual(sorted(len(s) for s in sides), [2, 3])

    def test_isolate_one(self):
        g = nemesis.grudge_isolate(self.ids, 3)
        self.assertEqual(g[3], {1, 2, 4, 5})
        self.assertEqual(g[1], {3})
        self.assertTrue(symmetric(g))

    def test_majorities_ring(self):
        g = nemesis.grudge_ring(self.ids)
        self.assertTrue(symmetric(g))
        majorities = {frozenset(set(self.ids) - g[i]) for i in self.ids}
        self.assertEqual(len(majorities), 5)  # every node sees a different majority
        self.assertTrue(all(len(m) == 3 for m in majorities))

    def test_bridge(self):
        g, _ = nemesis.grudge_bridge(self.ids, random.Random(2))
        self.assertTrue(symmetric(g))
        middle = [i for i in self.ids if not g[i]]
        self.assertEqual(len(middle), 1)
        for i in self.ids:
            if i != middle[0]:
                self.assertEqual(len(g[i]), 2)  # cut from the other half only

    def test_minority(self):
        rng = random.Random(3)
        self.assertEqual(len(nemesis.minority([1], rng)), 1)
        self.assertEqual(len(nemesis.minority([1, 2, 3], rng)), 1)
        self.assertEqual(len(nemesis.minority(self.ids, rng)), 2)


if __name__ == "__main__":
    unittest.main()
