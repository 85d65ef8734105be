"""The alerts checker: one firing notification per episode, on time, `for` never reset.

Input (all times in seconds since the run started, the history's clock):
  writes         the alerts workload's write events: an invoke carries
                 {"episode": k, "v": 1 | 0} in "value" (its samples are
                 vj_alert_signal{episode="k", client="c<p>"} = v); its
                 completion is ok / fail / info (pairs matched by process).
  episodes       [{"episode": k, "start": s, "end": e}]: the planned schedule
                 (the signal is 1 from s to e, 0 after).
  notifications  [{"time": receive time, "status": "firing" | "resolved",
                   "alerts": [{"status", "labels", "startsAt", "endsAt"}]}]:
                 every webhook call Alertmanager made to the receiver.
  windows        [[start, end, name]]: the nemesis' fault windows.
  params         {"for_s", "interval_s", "wall0" (wall clock at time 0),
                  and the bounds below}.

What the signal allows, per episode k (the rule is
`max by (episode) (vj_alert_signal) > 0` with `for: for_s`):
  first_attempt  the first invoke of a 1 write: before it, nothing is 1.
  first_ack      the first acknowledged 1 write: from it until the first 0
                 write (the episode's end) the signal is certainly 1.
  cleared        when every client that attempted a 1 has an acknowledged 0:
                 after it the signal is certainly 0 (never, if one has none).
  held_min = end - first_ack, held_max = cleared - first_attempt.
An episode is *required* to fire when held_min >= for + require_margin_s, and
*may* fire only when held_max >= for - tolerance_s.

Violations (each must be 0):
  missed          a required episode without a firing notification
  duplicate       an episode with more than one firing notification (Alertmanager
                  groups by episode and repeats after 1 h: a second one means the
                  alert resolved and fired again, or came back with a new startsAt)
  spurious        a firing notification for an episode that never held its
                  signal for `for`, or for no episode at all
  early           startsAt (vigild's firedAt) before first_attempt + for
  late            startsAt after first_ack + for + quiet_bound_s when no fault
                  overlapped [first_attempt, first_ack + for + quiet_bound_s];
                  with faults, after max(that, heal + heal_bound_s), heal being
                  the end of the last such fault. A failover that reset `for`
                  fires at failover + for or later, after both bounds as long as
                  for_s > the longest fault + heal_bound_s (see the README).
  late_delivery   the firing notification received more than notify_bound_s
                  after startsAt (after the end of a fault overlapping that
                  interval, when one does)
  resolved_missing  an episode that fired, ended, and got no resolved notification
                  (before the receiver's last look, `observed_until`)
  resolved_duplicate  more than one resolved notification for an episode
  resolved_early  a resolved notification whose endsAt is before the episode's
                  end: something saw the signal gone while it was held
  for_restarted   (with `views`: what nodes' GET /api/v1/alerts showed, [{"time",
                  "node", "episode", "state", "active_at" (run time)}]) an episode
                  shown with an activeAt more than interval + tolerance after one
                  shown before it, while its signal was still held: some leader
                  started `for` again (a failover that lost the alert's state)
"""

import re
from datetime import datetime, timezone

DEFAULTS = {
    "for_s": 15.0,
    "interval_s": 1.0,
    "quiet_bound_s": 3.0,
    "heal_bound_s": 5.0,
    "notify_bound_s": 10.0,
    "require_margin_s": 6.0,
    "tolerance_s": 0.5,
    "wall0": 0.0,
    "observed_until": None,
    "alertname": "JepsenSignal",
}
VIOLATIONS = ["missed", "duplicate", "spurious", "early", "late", "late_delivery",
              "resolved_missing", "resolved_duplicate", "resolved_early", "for_restarted"]
LIST_LIMIT = 20


def parse_time(s):
    """RFC 3339 with any number of fraction digits (Go prints nanoseconds) -> epoch s."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", s)
    if not m:
        raise ValueError("bad time %r" % (s,))
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    base = datetime.fromisoformat(m.group(1) + tz)
    frac = float("0." + m.group(2)) if m.group(2) else 0.0
    return base.astimezone(timezone.utc).timestamp() + frac


def _writes_by_episode(writes):
    """{episode: [(invoke time, completion time or None, kind, v, process)]}."""
    out, pending = {}, {}
    for ev in writes:
        if ev.get("f") != "write":
            continue
        if ev["type"] == "invoke":
            pending[ev["process"]] = ev
            continue
        inv = pending.pop(ev["process"], None)
        if inv is None:
            raise ValueError("completion without invoke: %r" % (ev,))
        val = inv["value"]
        out.setdefault(int(val["episode"]), []).append(
            (inv["time"], ev["time"], ev["type"], int(val["v"]), inv["process"]))
    for inv in pending.values():  # never completed: unknown
        val = inv["value"]
        out.setdefault(int(val["episode"]), []).append(
            (inv["time"], None, "info", int(val["v"]), inv["process"]))
    return out


def _signal(ops, planned_end):
    first_attempt = min((t for t, _, _, v, _ in ops if v == 1), default=None)
    first_ack = min((c for _, c, k, v, _ in ops if v == 1 and k == "ok"), default=None)
    end = min((t for t, _, _, v, _ in ops if v == 0), default=planned_end)
    writers = {p for _, _, _, v, p in ops if v == 1}
    cleared = 0.0
    for p in writers:
        acks = [c for _, c, k, v, q in ops if q == p and v == 0 and k == "ok"]
        cleared = max(cleared, min(acks)) if acks else float("inf")
    return first_attempt, first_ack, end, cleared


def _overlapping(windows, a, b):
    """Fault windows that were active at some point in [a, b] (open ones: until +inf)."""
    out = []
    for w in windows:
        start, end = w[0], (float("inf") if w[1] is None else w[1])
        if start <= b and end >= a:
            out.append(w)
    return out


def _notes_for(notifications, alertname, wall0):
    """{episode label: {"firing": [(receive, startsAt)], "resolved": [(receive, startsAt,
    endsAt)]}} in run time; one entry per webhook call that carries the episode."""
    out = {}
    for n in notifications:
        for a in n.get("alerts") or []:
            labels = a.get("labels") or {}
            if labels.get("alertname") != alertname:
                continue
            ep = labels.get("episode", "?")
            slot = out.setdefault(ep, {"firing": [], "resolved": []})
            starts = parse_time(a["startsAt"]) - wall0
            if a.get("status") == "firing":
                slot["firing"].append((n["time"], starts))
            else:
                ends = parse_time(a["endsAt"]) - wall0 if a.get("endsAt") else None
                slot["resolved"].append((n["time"], starts, ends))
    return out


def _restart(views, interval_s, tol, first_attempt, end):
    """The first view showing a later activeAt than an earlier view did, or None."""
    earliest = None
    for v in sorted(views, key=lambda v: v["time"]):
        a = v["active_at"]
        if a is None or (first_attempt is not None and a < first_attempt - tol):
            continue
        if earliest is not None and a > earliest + interval_s + tol and a < end + tol:
            return {"first_active_at": round(earliest, 3), "restarted_at": round(a, 3),
                    "node": v.get("node"), "seen_at": round(v["time"], 3)}
        earliest = a if earliest is None else min(earliest, a)
    return None


def check(writes, episodes, notifications, windows, params=None, views=None):
    p = dict(DEFAULTS)
    p.update(params or {})
    for_s, tol = p["for_s"], p["tolerance_s"]
    by_ep = _writes_by_episode(writes)
    notes = _notes_for(notifications, p["alertname"], p["wall0"])
    observed_until = p["observed_until"]
    violations = {k: [] for k in VIOLATIONS}
    table = []
    fire_delays = []
    planned = {int(e["episode"]): e for e in episodes}
    for k in sorted(planned):
        ep = planned[k]
        first_attempt, first_ack, end, cleared = _signal(by_ep.get(k, []), ep["end"])
        held_min = 0.0 if first_ack is None else max(0.0, end - first_ack)
        held_max = 0.0 if first_attempt is None else cleared - first_attempt
        required = held_min >= for_s + p["require_margin_s"]
        may_fire = held_max >= for_s - tol
        restart = _restart([v for v in views or [] if str(v["episode"]) == str(k)],
                           p["interval_s"], tol, first_attempt, end)
        if restart is not None:
            restart["episode"] = k
            violations["for_restarted"].append(restart)
        got = notes.pop(str(k), {"firing": [], "resolved": []})
        firing, resolved = got["firing"], got["resolved"]
        row = {"episode": k, "start": round(ep["start"], 3), "end": round(end, 3),
               "held_min": round(held_min, 3),
               "held_max": None if held_max == float("inf") else round(held_max, 3),
               "required": required, "firing": len(firing), "resolved": len(resolved)}
        table.append(row)
        if required and not firing:
            violations["missed"].append({"episode": k, "held_min": round(held_min, 3)})
        if len(firing) > 1:
            violations["duplicate"].append(
                {"episode": k, "received": [round(r, 3) for r, _ in firing],
                 "startsAt": [round(s, 3) for _, s in firing]})
        if firing and not may_fire:
            violations["spurious"].append(
                {"episode": k, "held_max": round(held_max, 3), "startsAt": round(firing[0][1], 3)})
        if not firing:
            continue
        received, fired = firing[0]
        row["fired"] = round(fired, 3)
        row["received"] = round(received, 3)
        if first_attempt is not None and fired < first_attempt + for_s - tol:
            violations["early"].append({"episode": k, "startsAt": round(fired, 3),
                                        "first_attempt": round(first_attempt, 3)})
        if first_ack is not None:
            quiet_by = first_ack + for_s + p["quiet_bound_s"]
            faults = _overlapping(windows, first_attempt, quiet_by)
            allowed = quiet_by
            if faults:
                heal = max(float("inf") if w[1] is None else w[1] for w in faults)
                allowed = max(quiet_by, heal + p["heal_bound_s"])
            row["fire_delay"] = round(fired - first_ack - for_s, 3)
            row["allowed_fire"] = round(allowed, 3)
            row["faults"] = [w[2] for w in faults]
            fire_delays.append(fired - first_ack - for_s)
            row["delayed_by_fault"] = quiet_by < fired <= allowed + 1e-9
            if fired > allowed + 1e-9:
                violations["late"].append(
                    {"episode": k, "startsAt": round(fired, 3), "allowed": round(allowed, 3),
                     "first_ack": round(first_ack, 3), "faults": row["faults"]})
        deliver_by = fired + p["notify_bound_s"]
        faults = _overlapping(windows, fired, deliver_by)
        if faults:
            heal = max(float("inf") if w[1] is None else w[1] for w in faults)
            deliver_by = max(deliver_by, heal + p["notify_bound_s"])
        if received > deliver_by + 1e-9:
            violations["late_delivery"].append(
                {"episode": k, "received": round(received, 3), "startsAt": round(fired, 3),
                 "allowed": round(deliver_by, 3)})
        expect_resolved_by = cleared + p["quiet_bound_s"] + p["notify_bound_s"]
        if (not resolved and observed_until is not None
                and expect_resolved_by <= observed_until):
            violations["resolved_missing"].append({"episode": k, "cleared": round(cleared, 3)})
        if len(resolved) > 1:
            violations["resolved_duplicate"].append(
                {"episode": k, "received": [round(r, 3) for r, _, _ in resolved]})
        for _, _, ends in resolved:
            if ends is not None and ends < end - tol:
                violations["resolved_early"].append(
                    {"episode": k, "endsAt": round(ends, 3), "end": round(end, 3)})
    for ep, got in sorted(notes.items()):  # episodes that never happened
        if got["firing"]:
            violations["spurious"].append({"episode": ep, "unknown_episode": True,
                                           "startsAt": round(got["firing"][0][1], 3)})
    counts = {k: len(v) for k, v in violations.items()}
    out = {
        "valid": not any(counts.values()),
        "episodes": len(table),
        "required": sum(1 for r in table if r["required"]),
        "fired": sum(1 for r in table if r["firing"]),
        "notifications": len(notifications),
        "firing_notifications": sum(r["firing"] for r in table),
        "resolved_notifications": sum(r["resolved"] for r in table),
        "max_fire_delay_s": round(max(fire_delays), 3) if fire_delays else None,
        # Fired after the quiet bound, within the heal bound (reported, not a violation).
        "delayed_by_fault": sum(1 for r in table if r.get("delayed_by_fault")),
        "bounds": {k: p[k] for k in ("for_s", "interval_s", "quiet_bound_s", "heal_bound_s",
                                     "notify_bound_s", "require_margin_s", "tolerance_s")},
        "per_episode": table,
    }
    out.update(counts)
    out["violations"] = {k: v[:LIST_LIMIT] for k, v in violations.items() if v}
    return out
