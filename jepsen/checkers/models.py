"""Sequential models for the linearizability checker.

A model has init() -> state and step(state, input, output) -> (ok, new_state).
States must be hashable (they go into Lowe's cache). `output` None means the
outcome is unknown: any output is acceptable, but the effect still applies if
the operation is linearized (an unknown write linearized last changes nothing
anyone observed, which covers "it never happened").
"""


class VersionedRegister:
    """A register per key, as kept in Vigil's Raft state machine.

    State: (value, version); absent is (None, 0). Versions start at 1 on the
    first write and grow by one per successful write or compare-and-set.

    Inputs (dicts, "f" names the operation):
      {"f": "read"}                          output {"value": v[, "version": n]}
      {"f": "write", "value": v}             output {[ "version": n ]}
      {"f": "cas", "from": a, "to": b}       compare by value
      {"f": "cas", "from_version": n, "to": b}  compare by version
                                             output {"ok": bool[, "value": cur,
                                                     "version": n]}
    Optional output fields are checked when present.
    """

    def init(self):
        return (None, 0)

    def step(self, state, inp, out):
        value, version = state
        f = inp["f"]
        if f == "read":
            if out is None:
                return True, state
            if out.get("value") != value:
                return False, state
            if "version" in out and out["version"] != version:
                return False, state
            return True, state
        if f == "write":
            new = (inp["value"], version + 1)
            if out is not None and "version" in out and out["version"] != new[1]:
                return False, state
            return True, new
        if f == "cas":
            if "from_version" in inp:
                matches = version == inp["from_version"]
            else:
                matches = value is not None and value == inp["from"]
            if out is None:
                return True, ((inp["to"], version + 1) if matches else state)
            if out.get("ok") != matches:
                return False, state
            if matches:
                new = (inp["to"], version + 1)
                if "version" in out and out["version"] != new[1]:
                    return False, state
                return True, new
            # A refused CAS reports what it saw: that is a read.
            if "value" in out and out["value"] != value:
                return False, state
            if "version" in out and out["version"] != version:
                return False, state
            return True, state
        raise ValueError("unknown register operation %r" % (f,))
