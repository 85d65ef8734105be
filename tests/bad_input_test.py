"""Bad input end to end: every kind of broken remote-write request gets a 4xx
that names the problem, applies nothing it should not, loses nothing acked
before, and leaves the node serving.

Usage: bad_input_test.py VIGILD VIGILCTL
"""

import time

import vigiltest
from vigiltest import encode_write_request, log, series_labels, snappy_block

MAX_REQUEST_BYTES = 256 * 1024  # passed to vigild so the oversize case is cheap


def check_rejected(node, name, body, want_status, want_words, headers=None):
    status, text = node.post_write(body, headers=headers)
    text = text.decode(errors="replace")
    log(f"{name}: HTTP {status}: {text.strip()[:160]}")
    assert status == want_status, f"{name}: want HTTP {want_status}, got {status}: {text[:300]}"
    lower = text.lower()
    assert any(w in lower for w in want_words), \
        f"{name}: the error does not name the problem (want one of {want_words}): {text[:300]}"
    status, _ = vigiltest.http("GET", node.http_url + "/-/ready", timeout=10)
    assert status == 200, f"{name}: node not ready after the bad request"


def good(name, t, v, **labels):
    return (series_labels(name, **labels), [(t, v)])


def test(argv):
    vigild_bin, vigilctl_bin = argv
    node = vigiltest.Vigild(vigild_bin, extra_args=[f"--max_request_bytes={MAX_REQUEST_BYTES}"])
    node.start()
    now = int(time.time() * 1000)
    t0 = now - 60_000

    # Acked before the bad input: must survive all of it.
    acked = [good("bad_input_before", t0 + i * 1000, float(i), idx=str(i)) for i in range(20)]
    status, body = node.remote_write(acked)
    assert status == 204, f"good write failed: {status} {body[:300]!r}"

    def body_of(series):
        return snappy_block(encode_write_request(series))

    canary = lambda tag: good("bad_input_canary", t0, 1.0, case=tag)  # noqa: E731
    cases = [
        ("bad snappy", b"\xff\xff\xff\xff\xff\x00this is not snappy", 400, ["snappy"]),
        ("snappy length lies", snappy_block(b"\x0a\x05abc")[:-1], 400, ["snappy", "malformed"]),
        ("malformed protobuf", snappy_block(b"\x0a\xff\xff\xff\xff\x0f\x01"), 400,
         ["malformed", "protobuf"]),
        ("invalid wire type", snappy_block(b"\x0f\x01\x02"), 400, ["malformed", "wire type"]),
        ("invalid metric name",
         body_of([canary("name"), ([("__name__", "9starts_with_digit")], [(t0, 1.0)])]), 400,
         ["metric name", "9starts_with_digit"]),
        ("invalid label name",
         body_of([canary("label"), ([("__name__", "ok"), ("bad-label", "x")], [(t0, 1.0)])]), 400,
         ["label name", "bad-label"]),
        ("missing metric name", body_of([canary("noname"), ([("job", "x")], [(t0, 1.0)])]), 400,
         ["metric name", "__name__"]),
        ("invalid UTF-8 value",
         body_of([canary("utf8"), ([("__name__", "ok"), ("job", b"\xff\xfe")], [(t0, 1.0)])]), 400,
         ["utf-8", "utf8"]),
        ("unsorted labels",
         body_of([canary("unsorted"), ([("__name__", "ok"), ("b", "1"), ("a", "2")], [(t0, 1.0)])]),
         400, ["sorted"]),
        ("duplicate labels",
         body_of([canary("dup"), ([("__name__", "ok"), ("a", "1"), ("a", "2")], [(t0, 1.0)])]), 400,
         ["duplicate"]),
        ("oversize body", b"\x00" * (MAX_REQUEST_BYTES + 1024), 413, ["limit", "large", "exceed"]),
        ("unsupported encoding", body_of([canary("enc")]), 400, ["encoding"],
         {"Content-Encoding": "zstd"}),
    ]
    for case in cases:
        name, body, want_status, words = case[:4]
        check_rejected(node, name, body, want_status, words, headers=case[4] if len(case) > 4 else None)

    # A far-future sample is refused one by one; the API says the rest of the
    # request is applied.
    check_rejected(node, "far-future timestamp",
                   body_of([good("bad_input_future", now + 86_400_000, 1.0),
                            good("bad_input_partial", t0, 7.0)]),
                   400, ["future"])
    # The same timestamp with another value is refused too.
    check_rejected(node, "conflicting value",
                   body_of([good("bad_input_before", t0, 99.0, idx="0")]), 400,
                   ["value", "conflict", "duplicate"])

    at = now + 1000
    # Nothing of a request refused for bad labels was applied.
    leaked = node.raw_samples("bad_input_canary", at, 3600)
    assert not leaked, f"series from refused requests were stored: {list(leaked)}"
    assert not node.raw_samples("bad_input_future", at + 86_400_000, 3600), "far-future sample stored"
    partial = node.raw_samples("bad_input_partial", at, 3600)
    assert list(partial.values()) == [[(t0, 7.0)]], f"rest of the far-future request: {partial}"

    # Everything acked earlier is intact, and the node still takes writes.
    before = node.raw_samples("bad_input_before", at, 3600)
    assert len(before) == 20, f"acked series lost: {len(before)} of 20"
    for key, samples in before.items():
        i = int(dict(key)["idx"])
        assert samples == [(t0 + i * 1000, float(i))], f"acked sample changed: {key} {samples}"
    status, body = node.remote_write([good("bad_input_after", now, 1.0)])
    assert status == 204, f"write after bad input failed: {status} {body[:300]!r}"
    res = vigiltest.vigilctl(vigilctl_bin, node.grpc_addr, "select", "bad_input_after",
                             f"--start={now - 1}", f"--end={now + 1}")
    assert res.returncode == 0 and "bad_input_after" in res.stdout, res.stderr
    assert node.terminate() == 0


if __name__ == "__main__":
    vigiltest.main(test)
