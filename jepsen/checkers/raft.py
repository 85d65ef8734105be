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

An observation with term 0, commit 0 and no committed entries is a node that
answered before its Raft node started (vigild serves HTTP first, and its
/debug/raft then reports zeros): it is counted as "unstarted" and skipped, not
taken as a term regression. (A node that lost its persisted state would look
the same for that moment; the samples and linearizability checkers, and the
committed-entry comparison once it rejoins, are what catch that.)
"""

LIST_LIMIT = 20


def check(observations):
    leaders = {}  # term -> set of node ids claimed as leader
    committed = {}  # index -> {(term, digest): [node, ...]}
    last = {}  # node -> (term, commit)
    term_regressions, commit_regressions = [], []
    unstarted = 0
    for ob in sorted(observations, key=lambda o: (o["time"], str(o["node"]))):
        node = ob["node"]
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
    valid = not multi_leader and not divergent and not term_regressions
    return {"valid": valid, "observations": len(observations), "unstarted": unstarted,
            "nodes": len(last), "terms_with_leader": len(leaders),
            "committed_indexes": len(committed),
            "multiple_leaders": len(multi_leader), "divergent_indexes": len(divergent),
            "term_regressions": len(term_regressions),
            "commit_regressions": len(commit_regressions),
            "multiple_leader_examples": multi_leader[:LIST_LIMIT],
            "divergent_examples": divergent[:LIST_LIMIT],
            "term_regression_examples": term_regressions[:LIST_LIMIT]}
