"""The harness's Raft observation loop against HTTP servers on loopback."""

import http.server
import json
import threading
import time
import types
import unittest

from checkers import raft
from harness import runner


def serve(doc):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path != runner.RAFT_PATH or doc is None:
                body, status = b"404 page not found\n", 404
            else:
                body, status = json.dumps(doc).encode(), 200
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def fake_run(docs):
    servers = [serve(d) for d in docs]
    nodes = {i + 1: types.SimpleNamespace(id=i + 1, ip="127.0.0.1", http_port=s.server_address[1],
                                          paused=False, alive=lambda: True)
             for i, s in enumerate(servers)}
    t0 = time.monotonic()
    run = types.SimpleNamespace(stopping=threading.Event(), nodes=nodes, all_nodes=nodes,
                                raft_obs=[], raft_supported=None,
                                now=lambda: time.monotonic() - t0)
    return run, servers


class RaftPollerTest(unittest.TestCase):

    def poll(self, docs, until):
        run, servers = fake_run(docs)
        self.addCleanup(lambda: [s.shutdown() or s.server_close() for s in servers])
        t = threading.Thread(target=runner.Run.raft_poller, args=(run,))
        t.start()
        deadline = time.monotonic() + 30
        while not until(run) and time.monotonic() < deadline:
            time.sleep(0.05)
        run.stopping.set()
        t.join(timeout=30)
        return run

    def test_two_leaders_observed_in_one_term_are_caught(self):
        run = self.poll([{"term": 2, "role": "leader", "leader": 1, "commit_index": 1,
                          "committed": [[1, 1, "a"]]},
                         {"term": 2, "role": "leader", "leader": 2, "commit_index": 1,
                          "committed": [[1, 1, "a"]]}],
                        until=lambda r: len(r.raft_obs) >= 4)
        self.assertTrue(run.raft_supported)
        self.assertEqual({o["node"] for o in run.raft_obs}, {1, 2})
        result = raft.check(run.raft_obs)
        self.assertFalse(result["valid"])
        self.assertEqual(result["multiple_leaders"], 1)

    def test_no_endpoint_means_unsupported(self):
        run = self.poll([None], until=lambda r: r.raft_supported is False)
        self.assertIs(run.raft_supported, False)
        self.assertEqual(run.raft_obs, [])


if __name__ == "__main__":
    unittest.main()
