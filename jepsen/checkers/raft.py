"""The Raft history checker: election safety and log matching, from outside.

The harness polls every node's Raft debug endpoint during the run and records
each answer as an observation:
  {"node": id, "time": t, "term": T, "role": "leader"|"follower"|"candidate"|...,
   "leader": id or 0/None, "commit_index": c,
   "committed": [[index, term, digest], ...]}   (committed entries, any window)

Checked:
  election safety  at most one leader per term: every node that said it led
                   term T, and every leader id a node reported for term T,
                   must be the same node.
  log matching     committed entries identical everywhere: for each index, every
                   node (at every observation) reports the same (term, digest).
  durability       a node's term never decreases (terms are persisted), and
                   its commit index never decreases (reported, not an error:
                   a restarted node may learn its commit index again).

Membership changes (the membership nemesis): node ids are never reused, so a
node added mid-run simply has no observation before it started (its first ones
are "unstarted", then a learner catching up, perhaps from a snapshot: only the
entries it reports are compared), and a removed node none after it stopped.
Both are held to the same rules while they answer: a removed node that still
runs is a former member, and a leader it reports for a term must be the one
everyone else saw. With `members` ({node: {"added": t|None, "removed":
t|None}}) the result also lists, per node, when it was added and removed and
its observations, and counts the nodes that joined and left; an observation of
a node before it was added is impossible and reported as an error
(`observed_before_added`: the harness mixed nodes up).

An observation with term 0, commit 0 and no committed entries is a node that
answered before its Raft node started (vigild serves HTTP first, and its
/debug/raft then reports zeros): it is counted as "unstarted" and skipped, not
taken as a term regression. (A node that lost its persisted state would look
the same for that moment; the samples and linearizability checkers, and the
committed-entry comparison once it rejoins, are what catch that.)
"""

LIST_LIMIT = 20


def check(observations, members=None):
    leaders = {}  # term -> set of node ids claimed as leader
    committed = {}  # index -> {(term, digest): [node, ...]}
    last = {}  # node -> (term, commit)
    term_regressions, commit_regressions = [], []
    unstarted = 0
    seen = {}  # node -> [first time, last time, observations]
    for ob in sorted(observations, key=lambda o: (o["time"], str(o["node"]))):
        node = ob["node"]
        span = seen.setdefault(str(node), [ob["time"], ob["time"], 0])
        span[1] = ob["time"]
        span[2] += 1
        term = int(ob.get("term") or 0)
        if term == 0 and int(ob.get("commit_index") or 0) == 0 and not ob.get("committed"):
            unstarted += 1  # answered before its Raft node started: no state to check
            continue
        if ob.get("role") == "leader":
            leaders.setdefault(term, set()).add(str(node))
        if ob.get("leader") not in (None, 0, "", "0"):
            leaders.setdefault(term, set()).add(str(ob["leader"]))
        commit = int(ob.get("commit_index") or 0)
        for index, eterm, digest in ob.get("committed") or []:
            if int(index) > commit:
                continue  # not committed as far as this node knows
            committed.setdefault(int(index), {}).setdefault(
                (int(eterm), str(digest)), set()).add(str(node))
        if node in last:
            pterm, pcommit = last[node]
            if term < pterm:
                term_regressions.append({"node": node, "time": ob["time"],
                                         "from": pterm, "to": term})
            if commit < pcommit:
                commit_regressions.append({"node": node, "time": ob["time"],
                                           "from": pcommit, "to": commit})
        last[node] = (term, commit)
    multi_leader = [{"term": t, "leaders": sorted(ns)}
                    for t, ns in sorted(leaders.items()) if len(ns) > 1]
    divergent = [{"index": i, "versions": [{"term": t, "digest": d, "nodes": sorted(ns)}
                                            for (t, d), ns in sorted(vs.items())]}
                 for i, vs in sorted(committed.items()) if len(vs) > 1]
    result = {"valid": not multi_leader and not divergent and not term_regressions,
              "observations": len(observations), "unstarted": unstarted,
              "nodes": len(last), "terms_with_leader": len(leaders),
              "committed_indexes": len(committed),
              "multiple_leaders": len(multi_leader), "divergent_indexes": len(divergent),
              "term_regressions": len(term_regressions),
              "commit_regressions": len(commit_regressions),
              "multiple_leader_examples": multi_leader[:LIST_LIMIT],
              "divergent_examples": divergent[:LIST_LIMIT],
              "term_regression_examples": term_regressions[:LIST_LIMIT]}
    if members is not None:
        result.update(_membership(members, seen))
        result["valid"] = (result["valid"] and not result["observed_before_added"]
                           and not result["unknown_nodes"])
    return result


def _membership(members, seen):
    """Per node: when it was added and removed, and when it was observed."""
    per_node, before_added = {}, []
    for node, m in sorted(members.items(), key=lambda kv: str(kv[0])):
        first, last, count = seen.get(str(node), (None, None, 0))
        per_node[str(node)] = {"added": m.get("added"), "removed": m.get("removed"),
                               "first_seen": first, "last_seen": last, "observations": count}
        if m.get("added") is not None and first is not None and first < m["added"]:
            before_added.append(str(node))
    return {"joined": sum(1 for m in members.values() if m.get("added") is not None),
            "removed": sum(1 for m in members.values() if m.get("removed") is not None),
            "observed_before_added": before_added,
            "unknown_nodes": sorted(n for n in seen if n not in per_node),
            "members": per_node}
