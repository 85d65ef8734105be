"""Linearizability checking: the WGL algorithm with Lowe's memoization cache.

This is the algorithm Porcupine implements (Wing & Gong, refined by Lowe in
"Testing for linearizability", 2017): walk the history's call/return entries in
time order; at each call entry try to linearize that operation now (step the
sequential model); when a return entry is reached whose operation has not been
linearized yet, backtrack. A (set of linearized operations, model state) pair
that was already explored is never explored again (Lowe's cache), which is what
keeps the search tractable.

Operations whose outcome is unknown (a client timed out, a node died mid-call:
Jepsen's `info`) get an open-ended return time: they may be linearized anywhere
after their call, including after every other operation, where they affect no
observed result. That is exactly "may or may not have happened". Their output
is None, which the model must accept as any output.

Histories are checked per key (P-compositionality): registers are independent.
"""

import time

from checkers import models

INF = float("inf")


class Operation:
    """One operation: input, output (None = unknown), call and return times."""

    __slots__ = ("id", "key", "input", "output", "call", "ret", "meta")

    def __init__(self, op_id, key, inp, output, call, ret, meta=None):
        self.id = op_id
        self.key = key
        self.input = inp
        self.output = output
        self.call = call
        self.ret = ret
        self.meta = meta or {}

    def __repr__(self):
        return "Operation(%r, key=%r, in=%r, out=%r, [%s, %s])" % (
            self.id, self.key, self.input, self.output, self.call, self.ret)


class _Node:
    """A call or return entry in the doubly linked list the search walks."""

    __slots__ = ("op_index", "is_call", "match", "prev", "next")

    def __init__(self, op_index, is_call):
        self.op_index = op_index
        self.is_call = is_call
        self.match = None  # call -> its return entry
        self.prev = None
        self.next = None


def _build_list(ops):
    """Entries sorted by time; at equal times calls come first (concurrent)."""
    events = []
    for i, op in enumerate(ops):
        events.append((op.call, 0, i))
        events.append((op.ret, 1, i))
    events.sort()
    head = _Node(-1, False)
    prev = head
    calls = {}
    for _, kind, i in events:
        node = _Node(i, kind == 0)
        if kind == 0:
            calls[i] = node
        else:
            calls[i].match = node
        node.prev = prev
        prev.next = node
        prev = node
    return head


def _lift(entry):
    entry.prev.next = entry.next
    if entry.next is not None:
        entry.next.prev = entry.prev
    match = entry.match
    match.prev.next = match.next
    if match.next is not None:
        match.next.prev = match.prev


def _unlift(entry):
    match = entry.match
    match.prev.next = match
    if match.next is not None:
        match.next.prev = match
    entry.prev.next = entry
    if entry.next is not None:
        entry.next.prev = entry


class Result:
    """Outcome of checking one partition (one key)."""

    def __init__(self, key, valid, ops, explored, best, elapsed, timed_out=False):
        self.key = key
        self.valid = valid  # True, False, or None (unknown: search timed out)
        self.ops = ops
        self.explored = explored
        self.best = best  # indices of the longest linearized prefix found
        self.elapsed = elapsed
        self.timed_out = timed_out

    def stuck_ops(self):
        """Ops not in the best partial linearization, earliest return first."""
        done = set(self.best)
        rest = [op for i, op in enumerate(self.ops) if i not in done]
        return sorted(rest, key=lambda op: (op.ret, op.call))

    def to_json(self):
        out = {"key": self.key, "valid": self.valid, "ops": len(self.ops),
               "explored": self.explored, "elapsed_s": round(self.elapsed, 3)}
        if self.timed_out:
            out["timed_out"] = True
        if self.valid is False:
            out["linearized_prefix"] = len(self.best)
            out["first_unlinearizable"] = [
                {"id": op.id, "input": op.input, "output": op.output,
                 "call": op.call, "ret": None if op.ret == INF else op.ret}
                for op in self.stuck_ops()[:3]]
        return out


def check_partition(model, ops, key=None, deadline=None):
    """Runs WGL on one partition. Returns a Result."""
    start = time.monotonic()
    if not ops:
        return Result(key, True, ops, 0, [], 0.0)
    head = _build_list(ops)
    linearized = 0  # bitset over op indices
    cache = set()
    calls = []  # stack of (entry, state before it)
    state = model.init()
    entry = head.next
    explored = 0
    best = []
    while head.next is not None:
        explored += 1
        if deadline is not None and (explored & 0x3ff) == 0 and time.monotonic() > deadline:
            return Result(key, None, ops, explored, best, time.monotonic() - start, True)
        if entry.is_call:
            op = ops[entry.op_index]
            ok, new_state = model.step(state, op.input, op.output)
            if ok:
                new_linearized = linearized | (1 << entry.op_index)
                cache_key = (new_linearized, new_state)
                if cache_key not in cache:
                    cache.add(cache_key)
                    calls.append((entry, state))
                    state = new_state
                    linearized = new_linearized
                    _lift(entry)
                    if len(calls) > len(best):
                        best = [e.op_index for e, _ in calls]
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # A return entry whose call is still in the list: that op must be
            # linearized before this point, and no choice so far allows it.
            if not calls:
                return Result(key, False, ops, explored, best, time.monotonic() - start)
            entry, state = calls.pop()
            linearized &= ~(1 << entry.op_index)
            _unlift(entry)
            entry = entry.next
    return Result(key, True, ops, explored, [e.op_index for e, _ in calls],
                  time.monotonic() - start)


def ops_from_history(history):
    """Pairs invoke/completion events of a Jepsen-style history into Operations.

    Event: {"type": "invoke"|"ok"|"fail"|"info", "process": p, "f": ..., "key": k,
            "value": ..., "time": t}. A `fail` completion means the operation
    certainly did not take effect: it is dropped. An `info` completion, or an
    invoke with no completion at all, is an unknown outcome: open-ended return
    and output None. `ok` completions carry the output in "value".
    """
    pending = {}
    ops = []
    for ev in history:
        p = ev.get("process")
        t = ev["type"]
        if t == "invoke":
            if p in pending:
                raise ValueError("process %r invoked twice without completing" % (p,))
            pending[p] = ev
            continue
        inv = pending.pop(p, None)
        if inv is None:
            raise ValueError("completion without invoke: %r" % (ev,))
        if t == "fail":
            continue
        inp = dict(inv.get("value") or {})
        inp["f"] = inv["f"]
        if t == "ok":
            ops.append(Operation(len(ops), inv.get("key"), inp, ev.get("value") or {},
                                 inv["time"], ev["time"], {"index": inv.get("index")}))
        elif t == "info":
            ops.append(Operation(len(ops), inv.get("key"), inp, None, inv["time"], INF,
                                 {"index": inv.get("index")}))
        else:
            raise ValueError("unknown event type %r" % (t,))
    for inv in pending.values():
        inp = dict(inv.get("value") or {})
        inp["f"] = inv["f"]
        ops.append(Operation(len(ops), inv.get("key"), inp, None, inv["time"], INF,
                             {"index": inv.get("index")}))
    return ops


def check(history, model=None, timeout_s=60.0):
    """Checks a whole register history, key by key.

    Returns {"valid": True|False|None, "keys": n, "ops": n, "failures": [...],
    "unknown": [...]}; valid None means some key's search timed out.
    """
    model = model or models.VersionedRegister()
    ops = ops_from_history(history)
    by_key = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    deadline = time.monotonic() + timeout_s
    failures, unknown = [], []
    explored = 0
    for key in sorted(by_key, key=repr):
        part = by_key[key]
        for i, op in enumerate(part):
            op.id = i
        res = check_partition(model, part, key=key, deadline=deadline)
        explored += res.explored
        if res.valid is False:
            failures.append(res.to_json())
        elif res.valid is None:
            unknown.append(res.to_json())
    valid = False if failures else (None if unknown else True)
    return {"valid": valid, "keys": len(by_key), "ops": len(ops),
            "info_ops": sum(1 for op in ops if op.output is None),
            "explored": explored, "failures": failures, "unknown": unknown}
