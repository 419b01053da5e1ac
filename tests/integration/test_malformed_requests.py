"""No request of any shape gets a 500: malformed chunked bodies, bodies that are not
what Content-Length says and invalid headers, sent over a raw socket to the real
servers the README names (werkzeug's, as ``connector serve`` runs it, and gunicorn
with sync and gthread workers). A body the server cannot read is a 400 and one log
line, never a traceback."""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from werkzeug.serving import make_server

from connector import sandbox
from connector.bootstrap import build
from connector.config import settings_from_dict
from connector.web import create_app
from tests.conftest import (
    SHOPIFY_SECRET,
    START,
    WOO_SECRET,
    fixture_bytes,
    shopify_headers,
    to_toml,
    woo_headers,
)
from tests.integration.test_group_commit import REPO, _env, _free_port, _healthy, wait_until
from tests.support import MALFORMED_CHUNKED, chunked

UNREADABLE_LINE = re.compile(r"^(shopify|woocommerce) webhook from \S+: request body unreadable, answered 400: .+$")


def signed(platform: str) -> tuple[bytes, dict]:
    if platform == "shopify":
        body = fixture_bytes("shopify", "orders_create.json")
        return body, shopify_headers(body)
    body = fixture_bytes("woocommerce", "order_727.json")
    return body, woo_headers(body)


def send(port: int, head: list[str], raw_body: bytes) -> tuple[int, bytes]:
    """One request on its own connection; the write side is closed after the body,
    so a server waiting for more of it reads the end instead. (0, b"") when the
    server closed without answering."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + raw_body)
        sock.shutdown(socket.SHUT_WR)
        response = b""
        try:
            while chunk := sock.recv(65536):
                response += chunk
        except ConnectionResetError:
            pass
    match = re.match(rb"HTTP/1\.[01] (\d{3})", response)
    return (int(match.group(1)), response.partition(b"\r\n\r\n")[2]) if match else (0, b"")


def request_head(platform: str, headers: dict, *framing: str, method: str = "POST") -> list[str]:
    return [f"{method} /webhooks/{platform} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *framing,
            *(f"{k}: {v}" for k, v in headers.items())]


# ---------------------------------------------------------------- the servers


class Server:
    def __init__(self, name: str, port: int, log_text):
        self.name, self.port, self.log_text = name, port, log_text


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> tuple[Path, dict]:
    """The sandbox config as a file (for gunicorn) and as a dict, database initialised."""
    tmp = tmp_path_factory.mktemp("malformed")
    config = sandbox.demo_config(START, str(tmp / "t.db"), SHOPIFY_SECRET, WOO_SECRET)
    config["web"] |= {"process_inbox": False}
    build(settings_from_dict(config)).init_database()
    path = tmp / "connector.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    return path, config


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record) + (f"\nTraceback {record.exc_info}" if record.exc_info else ""))


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn-gthread", "gunicorn-sync"])
def server(request, config):
    config_path, config_dict = config
    if request.param == "werkzeug":
        # What `connector serve` runs (Flask's app.run: a threaded werkzeug server).
        app = create_app(build(settings_from_dict(config_dict)), start_worker=False)
        httpd = make_server("127.0.0.1", 0, app, threaded=True)
        records = _Records()
        for name in ("connector", "werkzeug"):  # the app's logger is "connector.web"
            logging.getLogger(name).addHandler(records)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield Server(request.param, httpd.server_port, lambda: "\n".join(records.lines))
        finally:
            httpd.shutdown()
            for name in ("connector", "werkzeug"):
                logging.getLogger(name).removeHandler(records)
        return
    port = _free_port()
    workers = ["-k", "gthread", "--threads", "4"] if request.param == "gunicorn-gthread" else []
    log_path = config_path.parent / f"{request.param}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "-w", "1", *workers, "-b", f"127.0.0.1:{port}",
             "connector.web:create_app()"],
            cwd=str(REPO), env={**_env(), "CONNECTOR_CONFIG": str(config_path)}, stdout=log_file, stderr=log_file,
            start_new_session=True)
    try:
        wait_until(lambda: _healthy(port) or process.poll() is not None, "gunicorn to answer", timeout=60)
        assert process.poll() is None, log_path.read_text(errors="replace")
        yield Server(request.param, port, lambda: log_path.read_text(errors="replace"))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


# ---------------------------------------------------------------- the malformed bodies the issue names


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_malformed_chunked_bodies_are_400_with_one_log_line_each(server, platform):
    body, headers = signed(platform)
    before = server.log_text()

    answers = {name: send(server.port, request_head(platform, headers, "Transfer-Encoding: chunked"), frame(body))
               for name, frame in MALFORMED_CHUNKED.items()}
    well_formed = send(server.port, request_head(platform, headers, "Transfer-Encoding: chunked"),
                       chunked(body) + b"0\r\n\r\n")

    assert {name: status for name, (status, _) in answers.items()} == {name: 400 for name in MALFORMED_CHUNKED}
    for name, (_, answer) in answers.items():
        assert json.loads(answer)["error"] == "bad_request", name
        assert "request body could not be read" in json.loads(answer)["detail"], name
    assert well_formed[0] == 200, well_formed  # the same body, framed right, is read whole
    logged = server.log_text()[len(before):]
    assert "Traceback" not in logged
    assert len([l for l in logged.splitlines() if UNREADABLE_LINE.search(l)]) == len(MALFORMED_CHUNKED), logged


def test_bodies_that_are_not_what_content_length_says_and_invalid_headers_are_never_500(server):
    body, headers = signed("shopify")
    shapes = {
        "fewer-bytes-than-content-length": ([f"Content-Length: {len(body) + 100}"], body),
        "more-bytes-than-content-length": ([f"Content-Length: {len(body) - 100}"], body),
        "content-length-not-a-number": (["Content-Length: lots"], body),
        "negative-content-length": (["Content-Length: -1"], body),
        "two-content-lengths": ([f"Content-Length: {len(body)}", "Content-Length: 3"], body),
        "content-length-and-chunked": ([f"Content-Length: {len(body)}", "Transfer-Encoding: chunked"],
                                       chunked(body) + b"0\r\n\r\n"),
        "unknown-transfer-encoding": (["Transfer-Encoding: gzip"], body),
        "header-without-colon": ([f"Content-Length: {len(body)}", "NoColonHere"], body),
        "header-with-nul": ([f"Content-Length: {len(body)}", "X-Evil: a\x00b"], body),
        "non-latin1-ish-header": ([f"Content-Length: {len(body)}", "X-Shopify-Topic: orders/cr\xe9ate"], body),
    }
    before = server.log_text()

    statuses = {name: send(server.port, request_head("shopify", headers, *framing), raw)[0]
                for name, (framing, raw) in shapes.items()}

    assert [name for name, status in statuses.items() if status >= 500] == [], statuses
    assert "Traceback" not in server.log_text()[len(before):]


# ---------------------------------------------------------------- any shape at all


@st.composite
def chunked_framings(draw, body: bytes) -> bytes:
    """A chunked stream of (some of) ``body``: sizes right, wrong or not hex, chunk
    terminators present or not, the final 0-chunk there or not, cut anywhere."""
    out, rest = b"", body
    while rest and draw(st.booleans()):
        size = draw(st.integers(1, max(1, len(rest))))
        declared = draw(st.sampled_from([b"%x" % size, b"%x" % (size + 3), b"%X" % max(size - 1, 0), b"-%x" % size,
                                         b"g1", b"", b"%x;ext=1" % size]))
        out += declared + b"\r\n" + rest[:size] + draw(st.sampled_from([b"\r\n", b"\n", b"", b"xx"]))
        rest = rest[size:]
    out += draw(st.sampled_from([b"0\r\n\r\n", b"0\r\n", b"", b"0"]))
    return out[:draw(st.integers(0, len(out)))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_request_shape_is_never_a_500(server, data):
    platform = data.draw(st.sampled_from(["shopify", "woocommerce"]), label="platform")
    body, headers = signed(platform)
    body = data.draw(st.sampled_from([body, body[:len(body) // 2], b"", b"\x80\xff{"]), label="body")
    if data.draw(st.booleans(), label="chunked"):
        framing, raw = ["Transfer-Encoding: chunked"], data.draw(chunked_framings(body), label="chunks")
    else:
        declared = data.draw(st.sampled_from([len(body), len(body) + 7, max(len(body) - 7, 0), "x", "-3"]))
        framing, raw = [f"Content-Length: {declared}"], body
    method = data.draw(st.sampled_from(["POST", "POST", "PUT", "GET"]), label="method")

    status, _ = send(server.port, request_head(platform, headers, *framing, method=method), raw)

    assert status < 500, (status, framing, raw[:200])
