"""Talking to vigild: remote-write (snappy + protobuf), gRPC Ingest/Query.

The Python protobuf classes are generated at run time with protoc from
proto/ into the run's state dir (no generated code is checked in). gRPC
calls use generic unary stubs, so grpc_tools is not needed.

Every outcome is classified the Jepsen way:
  ok    acknowledged (every sample durable, per the API contract)
  fail  certainly not applied (connection refused, 4xx / INVALID_ARGUMENT ...)
  info  unknown (timeout, reset, 5xx, UNAVAILABLE after sending, partial reject)
"""

import http.client
import importlib
import os
import socket
import subprocess
import sys

import snappy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_pb = {}


def load_protos(gen_dir):
    """Generates and imports remote_pb2 and vigil_pb2; returns them."""
    if _pb:
        return _pb["remote"], _pb["vigil"]
    os.makedirs(gen_dir, exist_ok=True)
    subprocess.run(["protoc", "--proto_path=" + os.path.join(ROOT, "proto"),
                    "--python_out=" + gen_dir, "prometheus/remote.proto",
                    "vigil/v1/vigil.proto"], check=True)
    sys.path.insert(0, gen_dir)
    _pb["remote"] = importlib.import_module("prometheus.remote_pb2")
    _pb["vigil"] = importlib.import_module("vigil.v1.vigil_pb2")
    return _pb["remote"], _pb["vigil"]


def _grpc():
    import grpc  # python3-grpcio; imported late so the checkers never need it
    return grpc


class Outcome:
    def __init__(self, kind, error=None, value=None):
        self.kind = kind
        self.error = error
        self.value = value or {}


class NodeClient:
    """One client's connections to one node (a gRPC channel, HTTP per request)."""

    def __init__(self, node_ip, http_port, grpc_port, timeout):
        self.ip, self.http_port, self.grpc_port, self.timeout = (node_ip, http_port, grpc_port,
                                                                 timeout)
        self.channel = None
        self._connect()

    def _connect(self):
        """A fresh channel: one that failed to connect sits in reconnect backoff,
        and a restarted node should be used as soon as it listens again."""
        grpc = _grpc()
        if self.channel is not None:
            self.channel.close()
        opts = [("grpc.enable_http_proxy", 0),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
                ("grpc.max_receive_message_length", 512 << 20)]
        self.channel = grpc.insecure_channel("%s:%d" % (self.ip, self.grpc_port), options=opts)
        vigil = _pb["vigil"]
        self._write = self.channel.unary_unary(
            "/vigil.v1.Ingest/Write", request_serializer=vigil.WriteRequest.SerializeToString,
            response_deserializer=vigil.WriteResponse.FromString)
        self._select = self.channel.unary_unary(
            "/vigil.v1.Query/Select", request_serializer=vigil.SelectRequest.SerializeToString,
            response_deserializer=vigil.SelectResponse.FromString)

    def close(self):
        self.channel.close()

    # --- writes -------------------------------------------------------------

    def write_grpc(self, labels, samples):
        grpc = _grpc()
        vigil = _pb["vigil"]
        req = vigil.WriteRequest()
        _fill_series(req.series.add(), labels, samples, "timestamp_ms")
        try:
            resp = self._write(req, timeout=self.timeout)
        except grpc.RpcError as e:
            code, details = e.code(), e.details() or ""
            if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                        grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNIMPLEMENTED):
                return Outcome("fail", "%s: %s" % (code.name, details))
            if code == grpc.StatusCode.UNAVAILABLE and _never_sent(details):
                self._connect()
                return Outcome("fail", "%s: %s" % (code.name, details))
            return Outcome("info", "%s: %s" % (code.name, details))
        value = {"appended": resp.samples_appended, "duplicate": resp.samples_duplicate}
        if resp.samples_rejected:
            return Outcome("info", "rejected %d: %s" % (resp.samples_rejected,
                                                        "; ".join(resp.errors[:2])), value)
        if resp.samples_appended + resp.samples_duplicate != len(samples):
            return Outcome("info", "OK but only %d of %d samples counted"
                           % (resp.samples_appended + resp.samples_duplicate, len(samples)), value)
        return Outcome("ok", value=value)

    def write_remote(self, labels, samples):
        remote = _pb["remote"]
        req = remote.WriteRequest()
        _fill_series(req.timeseries.add(), labels, samples, "timestamp")
        body = snappy.compress(req.SerializeToString())
        headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                   "X-Prometheus-Remote-Write-Version": "0.1.0"}
        conn = http.client.HTTPConnection(self.ip, self.http_port, timeout=self.timeout)
        sent = False
        try:
            conn.connect()
            sent = True
            conn.request("POST", "/api/v1/write", body=body, headers=headers)
            res = conn.getresponse()
            text = res.read()[:200].decode(errors="replace").strip()
        except ConnectionRefusedError as e:
            return Outcome("fail", "refused: %s" % e)
        except (OSError, http.client.HTTPException) as e:
            return Outcome("info" if sent else "fail", "%s: %s" % (type(e).__name__, e))
        finally:
            conn.close()
        if 200 <= res.status < 300:
            return Outcome("ok", value={"status": res.status})
        if 400 <= res.status < 500:
            return Outcome("fail", "HTTP %d: %s" % (res.status, text))
        return Outcome("info", "HTTP %d: %s" % (res.status, text))

    # --- reads --------------------------------------------------------------

    def select(self, matchers, start_ms, end_ms, timeout):
        """Raw samples via Query.Select: list of (labels dict, [(ts, value)])."""
        vigil = _pb["vigil"]
        req = vigil.SelectRequest(start_ms=start_ms, end_ms=end_ms)
        for name, value in matchers.items():
            req.matchers.add(type=vigil.EQUAL, name=name, value=value)
        resp = self._select(req, timeout=timeout)
        return [({l.name: l.value for l in s.labels},
                 [(p.timestamp_ms, p.value) for p in s.samples]) for s in resp.series]


def _fill_series(series, labels, samples, ts_field):
    for k, v in sorted(labels.items()):
        series.labels.add(name=k, value=v)
    for t, v in samples:
        series.samples.add(**{ts_field: t, "value": v})


def _never_sent(details):
    d = details.lower()
    return any(s in d for s in ("connection refused", "failed to connect",
                                "no route to host", "dns resolution failed"))


def port_open(ip, port, timeout=0.5):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False
