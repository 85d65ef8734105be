"""Run output: timeline.png (latency and throughput, faults shaded) and index.html."""

import html
import json
import os

COLORS = {"ok": "#2a9d3f", "fail": "#d62728", "info": "#ff9f1c"}


def latencies(events):
    """[(completion time, latency s, type, f)] for every completed client op."""
    pending, out = {}, []
    for ev in events:
        p = ev.get("process")
        if not isinstance(p, int):
            continue
        if ev["type"] == "invoke":
            pending[p] = ev
        elif p in pending:
            inv = pending.pop(p)
            out.append((ev["time"], ev["time"] - inv["time"], ev["type"], inv.get("f")))
    return out


def timeline(events, windows, path, title):
    """Writes the PNG; returns None, or why it could not (matplotlib missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return "no timeline: %s (apt-get install python3-matplotlib)" % e
    lat = latencies(events)
    end = max([ev["time"] for ev in events] + [1.0])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    for kind, color in COLORS.items():
        pts = [(t, max(l * 1000, 0.01)) for t, l, k, _ in lat if k == kind]
        if pts:
            ax1.scatter([p[0] for p in pts], [p[1] for p in pts], s=4, c=color,
                        label="%s (%d)" % (kind, len(pts)), alpha=0.7)
    ax1.set_yscale("log")
    ax1.set_ylabel("latency (ms)")
    ax1.legend(loc="upper right", fontsize=8)
    ax1.set_title(title)
    buckets = int(end) + 1
    for kind, color in COLORS.items():
        counts = [0] * buckets
        for t, _, k, _ in lat:
            if k == kind:
                counts[min(int(t), buckets - 1)] += 1
        if any(counts):
            ax2.plot(range(buckets), counts, color=color, label=kind, drawstyle="steps-post")
    ax2.set_ylabel("ops / s")
    ax2.set_xlabel("time since start (s)")
    ax2.legend(loc="upper right", fontsize=8)
    shades = ["#bbbbbb", "#9ecae1", "#fdd0a2", "#c7e9c0", "#dadaeb"]
    names = sorted({w[2] for w in windows})
    for start, stop, name in windows:
        color = shades[names.index(name) % len(shades)]
        for ax in (ax1, ax2):
            ax.axvspan(start, stop if stop is not None else end, color=color, alpha=0.4, lw=0)
        ax1.text(start, ax1.get_ylim()[1], name, fontsize=7, va="top", rotation=90)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def _cls(valid):
    return "ok" if valid is True else ("bad" if valid in (False, None) else "")


def index_html(out_dir, results):
    rows = []
    for name, res in results.get("checkers", {}).items():
        valid = res.get("valid")
        counts = {k: v for k, v in res.items()
                  if isinstance(v, (int, float, str, bool)) and k != "valid"}
        rows.append("<tr><td>%s</td><td class=%s>%s</td><td><code>%s</code></td></tr>" % (
            html.escape(name), _cls(valid), html.escape(str(valid)),
            html.escape(json.dumps(counts, sort_keys=True))))
    logs = sorted(f for f in os.listdir(out_dir) if f.endswith(".log"))
    img = ('<img src="timeline.png" alt="timeline" style="max-width:100%">'
           if os.path.exists(os.path.join(out_dir, "timeline.png"))
           else "<p>%s</p>" % html.escape(results.get("timeline_error") or "no timeline"))
    page = """<!doctype html><html><head><meta charset="utf-8"><title>jepsen %(run)s</title>
<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px}
table{border-collapse:collapse}.ok{color:#2a9d3f;font-weight:bold}.bad{color:#d62728;font-weight:bold}
</style></head><body>
<h1>%(run)s: <span class=%(cls)s>valid = %(valid)s</span></h1>
<p><code>%(cmd)s</code></p>
<table><tr><th>checker</th><th>valid</th><th>counts</th></tr>%(rows)s</table>
%(notes)s
<h2>Timeline</h2>%(img)s
<h2>Files</h2><ul><li><a href="results.json">results.json</a></li>
<li><a href="history.jsonl">history.jsonl</a> (every invoke and completion)</li>%(logs)s</ul>
</body></html>
""" % {"run": html.escape(results["run"]), "valid": html.escape(str(results["valid"])),
       "cls": _cls(results["valid"]),
       "notes": "".join("<p>%s</p>" % html.escape(str(n)) for n in
                        results.get("notes", []) + results.get("errors", []) +
                        ["fault windows (s): %s" % results.get("fault_windows")]),
       "cmd": html.escape(results.get("command", "")), "rows": "".join(rows), "img": img,
       "logs": "".join('<li><a href="%s">%s</a></li>' % (html.escape(f), html.escape(f))
                       for f in logs)}
    with open(os.path.join(out_dir, "index.html"), "w") as f:
        f.write(page)
