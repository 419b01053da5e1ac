"""Real HTTP servers on 127.0.0.1 that cut their answers the ways networks do.

``responses`` replaces the transport, so it cannot produce what a real socket does
when an answer is cut: requests' ChunkedEncodingError for a body shorter than its
Content-Length or its chunks, a reset, a close before the status line, a body that
stops mid-JSON on a close-delimited answer. These servers can.

``CUTS`` names every way an answer is cut *after the request arrived*; ``cut_answer``
writes one on a raw socket. ``Fake3pl`` is a 3PL that keeps orders by our reference
and answers lookups and creates in each vendor's documented shape, cutting the next
create's answer (after storing the order) when ``cut`` is set.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"

CUTS = (
    "closed-before-status",   # the connection closes once the request is read
    "reset",                  # an RST instead of an answer
    "headers-only",           # status and headers, then the connection closes
    "short-body",             # part of a Content-Length body
    "chunk-cut",              # a chunked body without its last chunk
    "close-delimited-json",   # no length: the body stops inside the JSON document
    "stalled-body",           # part of the body, then silence past the read timeout
)
STALL_LIMIT_SECONDS = 5.0  # "stalled-body" is silent until the client gives up and closes, at most this long


def cut_answer(sock: socket.socket, kind: str, body: bytes, status: str = "201 Created") -> None:
    """Write a cut answer carrying (part of) ``body`` on ``sock``; the caller closes it."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n".encode()
    half = body[: max(len(body) // 2, 1)]
    if kind == "closed-before-status":
        return
    if kind == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return
    if kind == "headers-only":
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body))
    elif kind == "short-body":
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + half)
    elif kind == "chunk-cut":
        sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + half)
    elif kind == "close-delimited-json":
        sock.sendall(head + b"Connection: close\r\n\r\n" + half)
    elif kind == "stalled-body":
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + half)
        sock.settimeout(STALL_LIMIT_SECONDS)
        try:
            sock.recv(1)  # returns when the client, past its read timeout, closes the connection
        except OSError:
            pass
    else:
        raise ValueError(f"unknown cut {kind!r}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class LoopbackServer:
    """A threaded HTTP server on an ephemeral port; ``handle(handler) -> (status, body) | None``
    answers a request (None: the handler already wrote a cut answer)."""

    def __init__(self, handle):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path))
                answer = handle(self)
                if answer is None:
                    self.close_connection = True
                    return
                status, payload = answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        self.requests: list[tuple[str, str]] = []
        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def _fixture(vendor: str, name: str):
    return json.loads((FIXTURES / vendor / name).read_text())


class Fake3pl:
    """One vendor's lookup-by-reference and create-order endpoints, from its fixtures."""

    VENDORS = ("shipbob", "shipmonk", "shiphero", "extensiv")

    def __init__(self, vendor: str, cut: str | None = None):
        self.vendor = vendor
        self.cut = cut  # cut the next create's answer this way (the order is stored first)
        self.orders: dict[str, str] = {}  # our reference -> the 3PL's order id
        self.creates = 0
        self.server = LoopbackServer(self._handle)

    def __enter__(self) -> "Fake3pl":
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)

    @property
    def url(self) -> str:
        return self.server.url

    def _handle(self, request: BaseHTTPRequestHandler):
        url = urlsplit(request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = json.loads(request.body) if request.body else {}
        if request.command == "POST" and url.path in ("/auth/refresh", "/AuthServer/api/Token"):
            return 200, _fixture(self.vendor, "auth_refresh.json" if self.vendor == "shiphero" else "token.json")
        creating = self._is_create(request.command, url.path, body)
        if not creating:
            return 200, self._lookup(self._asked_reference(url.path, query, body))
        reference = self._created_reference(body)
        self.creates += 1
        order_id = self.orders.setdefault(reference, str(900_000 + self.creates))
        answer = self._created(reference, order_id)
        if self.cut is None:
            return 200, answer
        kind, self.cut = self.cut, None
        cut_answer(request.connection, kind, json.dumps(answer).encode())
        return None

    def _is_create(self, method: str, path: str, body: dict) -> bool:
        if self.vendor == "shiphero":
            return "order_create" in body.get("query", "")
        return method == "POST"

    def _asked_reference(self, path: str, query: dict, body: dict) -> str:
        if self.vendor == "shipbob":
            return query["ReferenceIds"]
        if self.vendor == "shipmonk":
            return query["orderKey"]
        if self.vendor == "shiphero":
            return body["variables"]["partner_order_id"]
        return query["rql"].split("referenceNum==")[1]

    def _created_reference(self, body: dict) -> str:
        return {"shipbob": lambda: body["reference_id"], "shipmonk": lambda: body["order_key"],
                "shiphero": lambda: body["variables"]["data"]["partner_order_id"],
                "extensiv": lambda: body["referenceNum"]}[self.vendor]()

    def _lookup(self, reference: str):
        order_id = self.orders.get(reference)
        if self.vendor == "shipbob":
            if order_id is None:
                return []
            found = _fixture("shipbob", "orders_by_reference.json")[0]
            return [{**found, "id": int(order_id), "reference_id": reference}]
        if self.vendor == "shipmonk":
            if order_id is None:
                return {"status": 200, "data": None}
            found = _fixture("shipmonk", "order_detail.json")
            return {**found, "data": {**found["data"], "order_key": reference}}
        if self.vendor == "shiphero":
            if order_id is None:
                return _fixture("shiphero", "orders_empty.json")
            found = _fixture("shiphero", "orders_found.json")
            node = found["data"]["orders"]["data"]["edges"][0]["node"]
            node.update(id=order_id, partner_order_id=reference)
            return found
        if order_id is None:
            return _fixture("extensiv", "orders_empty.json")
        found = _fixture("extensiv", "orders_found.json")
        row = found["ResourceList"][0]
        row["readOnly"]["orderId"] = int(order_id)
        row["referenceNum"] = reference
        return found

    def _created(self, reference: str, order_id: str):
        if self.vendor == "shipbob":
            return {**_fixture("shipbob", "order_created.json"), "id": int(order_id), "reference_id": reference}
        if self.vendor == "shipmonk":
            return _fixture("shipmonk", "order_upserted.json")
        if self.vendor == "shiphero":
            created = _fixture("shiphero", "order_create.json")
            created["data"]["order_create"]["order"].update(id=order_id, partner_order_id=reference)
            return created
        created = _fixture("extensiv", "order_created.json")
        created["readOnly"]["orderId"] = int(order_id)
        created["referenceNum"] = reference
        return created


def warehouse(vendor: str, base_url: str, *, read_timeout: float = 0.3):
    """The real adapter for ``vendor`` pointed at ``base_url``, with a short read timeout
    (the stalled-body cut) and no real sleeping between attempts."""
    from adapters import extensiv, shipbob, shiphero, shipmonk
    from adapters.http import HttpClient, RefreshingToken, StaticToken

    def client(auth, **kw):
        return HttpClient(base_url=base_url, auth=auth, provider=vendor, timeout=(2.0, read_timeout),
                          sleep=lambda s: None, **kw)

    if vendor == "shipbob":
        return shipbob.ShipBobWarehouse("pat-loopback", "100102", base_url=base_url,
                                        client=client(StaticToken(token="pat-loopback")))
    if vendor == "shipmonk":
        return shipmonk.ShipMonkWarehouse("key-loopback", 48213, base_url=base_url,
                                          client=client(StaticToken("Api-Key", "", token="key-loopback")))
    if vendor == "shiphero":
        return shiphero.ShipHeroWarehouse(client=client(RefreshingToken(lambda: ("sh-token", None))),
                                          sleep=lambda s: None)
    return extensiv.ExtensivWarehouse(customer_id=12, carrier="UPS",
                                      client=client(RefreshingToken(lambda: ("ext-token", None))))


def recording_server(answer=(200, {"ok": True})) -> LoopbackServer:
    """A LoopbackServer that keeps each request (path, headers, body) in ``.received`` and
    answers ``answer`` (or ``answer(request)``): a receiver of the alerts' JSON POSTs."""
    received: list[dict] = []

    def handle(request):
        received.append({"path": request.path, "headers": dict(request.headers), "body": request.body})
        return answer(request) if callable(answer) else answer

    server = LoopbackServer(handle)
    server.received = received
    return server
