"""A fault-injecting HTTP proxy between AWS clients and moto's server, for flaky-network tests.

Point a client at it with AWS_ENDPOINT_URL. It forwards each request to the upstream endpoint,
except that a seeded share of them meets one fault, as AWS and networks produce them:

- `internal_error`: HTTP 500; `unavailable`: HTTP 503;
- `throttled`: the service's own throttling error in its own wire format;
- `dropped_before`: the connection closes before the request is forwarded (it never happened);
- `dropped_after`: the request is forwarded and takes effect, then the connection closes with
  no response, so the client retries a request that already landed.

Faults are counted by kind and service, and each is kept with its request for a test to inspect.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import http.client
import http.server
import json
import random
import re
import socket
import sys
import threading
import urllib.parse

INTERNAL_ERROR, UNAVAILABLE, THROTTLED = "internal_error", "unavailable", "throttled"
DROPPED_BEFORE, DROPPED_AFTER = "dropped_before", "dropped_after"
FAULT_KINDS = (INTERNAL_ERROR, UNAVAILABLE, THROTTLED, DROPPED_BEFORE, DROPPED_AFTER)

# (HTTP status, error code) of each injected answer, as each service sends it.
_ERRORS = {
    "s3": {INTERNAL_ERROR: (500, "InternalError"), UNAVAILABLE: (503, "ServiceUnavailable"),
           THROTTLED: (503, "SlowDown")},
    "dynamodb": {INTERNAL_ERROR: (500, "InternalServerError"), UNAVAILABLE: (503, "ServiceUnavailableException"),
                 THROTTLED: (400, "ThrottlingException")},
    "sqs": {INTERNAL_ERROR: (500, "InternalError"), UNAVAILABLE: (503, "ServiceUnavailable"),
            THROTTLED: (400, "RequestThrottled")},
    "sns": {INTERNAL_ERROR: (500, "InternalFailure"), UNAVAILABLE: (503, "ServiceUnavailable"),
            THROTTLED: (400, "Throttling")},
}
# The namespace in a JSON-protocol error's `__type`.
_JSON_NAMESPACES = {"dynamodb": "com.amazonaws.dynamodb.v20120810", "sqs": "com.amazonaws.sqs"}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "expect", "te", "upgrade",
               "proxy-connection"}
_SIGNING_SCOPE = re.compile(r"Credential=[^/,]+/[^/,]+/[^/,]+/([^/,]+)/aws4_request")

# Every socket wait is bounded. Upstream, a request may be an SQS long poll (20 s at most).
UPSTREAM_TIMEOUT_S = 60.0
IDLE_CONNECTION_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class Call:
    """One request, as the proxy sees it."""

    service: str  # the SigV4 signing name: s3, sqs, dynamodb, sns
    operation: str  # X-Amz-Target's or the query's action; for S3, method and target: PutObject, HeadBucket
    body: bytes

    @classmethod
    def parse(cls, method: str, path: str, headers, body: bytes) -> "Call":
        scope = _SIGNING_SCOPE.search(headers.get("Authorization", ""))
        service = scope.group(1) if scope else "unknown"
        target = headers.get("X-Amz-Target")
        if target:
            operation = target.rsplit(".", 1)[-1]
        elif service == "s3":
            has_key = "/" in urllib.parse.urlsplit(path).path.strip("/")
            operation = method.title() + ("Object" if has_key else "Bucket")
        else:
            operation = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", ["unknown"])[0]
        return cls(service, operation, body)

    def params(self) -> dict:
        """The request's parameters (JSON and query protocols), e.g. to find the job a Publish was for."""
        text = self.body.decode("utf-8", "replace")
        if text.startswith("{"):
            return json.loads(text)
        return {k: v[0] for k, v in urllib.parse.parse_qs(text).items()}


@dataclasses.dataclass(frozen=True)
class Fault:
    kind: str
    call: Call


class FaultPlan:
    """Which requests fail, and how: a seeded share at random, plus scheduled faults.

    Each scheduled (service, operation, kind) hits the first request that matches it, so a
    short run is sure to meet it. The random draws follow the order requests arrive in, which
    concurrent clients make vary a little from run to run.
    """

    def __init__(self, rate: float, seed: int = 0, kinds: tuple[str, ...] = FAULT_KINDS,
                 scheduled: tuple[tuple[str, str, str], ...] = ()):
        self._rate = rate
        self._kinds = kinds
        self._rng = random.Random(seed)
        self._scheduled = list(scheduled)
        self._lock = threading.Lock()

    def choose(self, call: Call) -> str | None:
        with self._lock:
            for planned in self._scheduled:
                service, operation, kind = planned
                if (call.service, call.operation) == (service, operation):
                    self._scheduled.remove(planned)
                    return kind
            if call.service in _ERRORS and self._rng.random() < self._rate:
                return self._rng.choice(self._kinds)
            return None


class FaultProxy:
    """A threaded forward proxy on 127.0.0.1: one thread per client connection, all joined at stop."""

    def __init__(self, upstream_url: str, plan: FaultPlan):
        upstream = urllib.parse.urlsplit(upstream_url)
        if upstream.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the fault proxy forwards to loopback only, not {upstream_url}")
        self._upstream = (upstream.hostname, upstream.port)
        self._plan = plan
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self.requests: collections.Counter[str] = collections.Counter()  # by service
        self.faults: list[Fault] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy")

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def counts(self) -> collections.Counter[tuple[str, str]]:
        """Faults injected, by (service, kind)."""
        with self._lock:
            return collections.Counter((f.call.service, f.kind) for f in self.faults)

    def faults_of(self, service: str, operation: str, kind: str) -> list[Fault]:
        with self._lock:
            return [f for f in self.faults if (f.call.service, f.call.operation, f.kind) == (service, operation, kind)]

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        with self._lock:
            for connection in self._connections:  # wakes handlers waiting on idle keep-alive connections
                with contextlib.suppress(OSError):  # the client may have closed it already
                    connection.shutdown(socket.SHUT_RDWR)
        self._server.server_close()  # joins every handler thread
        self._thread.join()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- called from handler threads ---------------------------------------------------------

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _decide(self, call: Call) -> str | None:
        kind = self._plan.choose(call)
        with self._lock:
            self.requests[call.service] += 1
            if kind:
                self.faults.append(Fault(kind, call))
        return kind

    def _forward(self, method: str, path: str, headers, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(*self._upstream, timeout=UPSTREAM_TIMEOUT_S)
        try:
            kept = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(method, path, body=body, headers=kept)
            response = upstream.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            upstream.close()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # so that server_close() joins the handler threads
    block_on_close = True
    proxy: FaultProxy

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that went away (killed) is no error
            super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3's connection pools expect
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.proxy._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.proxy._closed(self.connection)

    def log_message(self, format, *args) -> None:  # the proxy's own counts are its log
        pass

    def do_GET(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        call = Call.parse(self.command, self.path, self.headers, body)
        kind = proxy._decide(call)
        if kind == DROPPED_BEFORE:
            self.close_connection = True
            return
        if kind in (INTERNAL_ERROR, UNAVAILABLE, THROTTLED):
            self._reply(*_error_response(call, kind, json_protocol="X-Amz-Target" in self.headers))
            return
        status, headers, response_body = proxy._forward(self.command, self.path, self.headers, body)
        if kind == DROPPED_AFTER:
            self.close_connection = True
            return
        self._reply(status, headers, response_body)

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        # botocore sends a Content-Length with every request here (S3 uploads included: no chunked
        # transfer encoding over plain HTTP).
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if self.command == "HEAD":  # no body; the upstream's Content-Length describes the object
            length = next((v for k, v in headers if k.lower() == "content-length"), "0")
            self.send_header("Content-Length", length)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _error_response(call: Call, kind: str, json_protocol: bool) -> tuple[int, list[tuple[str, str]], bytes]:
    status, code = _ERRORS[call.service][kind]
    message = f"injected by the fault proxy: {kind}"
    fault = "Sender" if status < 500 else "Receiver"
    if json_protocol:
        body = json.dumps({"__type": f"{_JSON_NAMESPACES.get(call.service, call.service)}#{code}",
                           "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0")]
        if call.service == "sqs":  # SQS's JSON protocol carries its query-era code in this header
            headers.append(("x-amzn-query-error", f"{code};{fault}"))
        return status, headers, body
    if call.service == "s3":
        xml = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
    else:
        xml = (f'<ErrorResponse xmlns="http://{call.service}.amazonaws.com/doc/2010-03-31/"><Error>'
               f"<Type>{fault}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
               "<RequestId>fault-proxy</RequestId></ErrorResponse>")
    return status, [("Content-Type", "text/xml")], ('<?xml version="1.0" encoding="UTF-8"?>' + xml).encode()
