"""The run's history: every invoke and completion, with times, as JSONL.

Events: {"index", "type": invoke|ok|fail|info, "process", "f", "time" (seconds
since the run started, monotonic clock), ...}. Nemesis events have process
"nemesis" and type "info". Thread-safe.
"""

import json
import threading
import time


class History:
    def __init__(self, path):
        self._lock = threading.Lock()
        self._f = open(path, "w")
        self.events = []
        self.t0 = time.monotonic()

    def now(self):
        return time.monotonic() - self.t0

    def add(self, **ev):
        with self._lock:
            ev["index"] = len(self.events)
            ev.setdefault("time", round(self.now(), 6))
            self.events.append(ev)
            self._f.write(json.dumps(ev, sort_keys=True) + "\n")
            return ev

    def close(self):
        with self._lock:
            self._f.close()


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
