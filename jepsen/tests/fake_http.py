"""In-process HTTP register servers for the workload tests (loopback only)."""

import http.server
import json
import re
import threading
import urllib.parse


class RegisterHandler(http.server.BaseHTTPRequestHandler):
    """JSON replies and the register API's paths; subclasses add do_GET etc."""

    def log_message(self, *args):
        pass

    def _reply(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _key(self):
        """(key, is the /cas path), or (None, False) for another path."""
        m = re.match(r"^/api/v1/admin/registers/([^/]+)(/cas)?$", self.path)
        return (urllib.parse.unquote(m.group(1)), bool(m.group(2))) if m else (None, False)

    def _body(self):
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))


class FakeNode:
    """What the workloads use of a harness Node: where its HTTP API is."""

    def __init__(self, port):
        self.ip, self.http_port = "127.0.0.1", port


def serve(test, handlers):
    """Starts one server per handler class; the test case shuts them down."""
    servers = []
    for handler in handlers:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    test.addCleanup(lambda: [s.shutdown() or s.server_close() for s in servers])
    return [s.server_address[1] for s in servers]
