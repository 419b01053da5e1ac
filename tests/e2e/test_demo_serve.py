"""``connector demo --serve``: the newcomer's way to the settings pages. The demo runs as
a real process, keeps its web server up, prints a one-time login link per sample shop,
and stops cleanly on Ctrl-C (or a plain kill); and the config ``--dir`` leaves behind
serves the other commands."""
from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from connector import sandbox
from connector.cli import main
from connector.secrets import KEYS_ENV
from tests.conftest import SHOPIFY_SHOP, WOO_SHOP

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"^\s+(?P<shop>\S+) \(\w+\): (?P<url>http://127\.0\.0\.1:(?P<port>\d+)/login/link/\S+)", re.M)
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class LoopbackBrowser:
    """Keeps cookies as a browser does for http://127.0.0.1, which it counts as a secure
    origin and sends Secure cookies to (requests' cookie jar holds them back over http)."""

    def __init__(self):
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        while True:
            response = requests.request(method, url, cookies=self.cookies, allow_redirects=False, timeout=10,
                                        **kwargs)
            self.cookies |= {c.name: c.value for c in response.cookies}
            if not response.is_redirect:
                return response
            method, url, kwargs = "GET", urljoin(url, response.headers["Location"]), {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    """``connector demo --serve`` in a child process, its output read as it comes."""

    def __init__(self, *args: str):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}  # a fresh machine: no key
        env |= {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "connector.cli", "demo", "--serve", *args],
                                        cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.output = ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_links(self, timeout: float = 90) -> dict[str, re.Match]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.output += line
            if line.startswith("Ctrl-C stops"):  # the last line before serving
                links = {m["shop"]: m for m in LINK.finditer(self.output)}
                assert {SHOPIFY_SHOP, WOO_SHOP} <= links.keys(), self.output
                return links
        self.stop(signal.SIGKILL)
        pytest.fail(f"no login links printed:\n{self.output}\n{self.process.stderr.read()}")

    def stop(self, signum) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        while (line := self._lines.get(timeout=10)) is not None:  # the rest, up to end of file
            self.output += line
        return code, self.process.stderr.read()


def _sign_in_with(link: str) -> LoopbackBrowser:
    browser = LoopbackBrowser()
    offer = browser.request("GET", link)
    assert offer.status_code == 200 and "Continue as" in offer.text
    signed_in = browser.request("POST", link, data={"csrf_token": _CSRF.search(offer.text).group(1)})
    assert signed_in.status_code == 200 and urlsplit(signed_in.url).path == "/", signed_in.url
    return browser


def _node_ids(shop_id: str) -> list[str]:
    config = sandbox.demo_config(datetime.now(timezone.utc), ":memory:", "x", "y")
    return [n["id"] for n in config["shops"][shop_id]["nodes"]]


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "terminate"])
def test_demo_serve_prints_login_links_to_each_shops_pages_and_stops_cleanly(tmp_path, stop_with):
    port = _free_port()
    demo = Demo("--orders", "20", "--port", str(port), "--dir", str(tmp_path / "demo"))
    links = demo.wait_for_links()
    try:
        for shop_id in (SHOPIFY_SHOP, WOO_SHOP):
            assert int(links[shop_id]["port"]) == port
            browser = _sign_in_with(links[shop_id]["url"])
            page = browser.request("GET", f"http://127.0.0.1:{port}/settings/")
            assert page.status_code == 200
            assert all(node in page.text for node in _node_ids(shop_id)), page.text
            other = WOO_SHOP if shop_id == SHOPIFY_SHOP else SHOPIFY_SHOP
            assert not any(f"/settings/nodes/{node}\"" in page.text for node in _node_ids(other))
            # one-time: the link signs in once only
            assert requests.get(links[shop_id]["url"], timeout=10).status_code == 404
    finally:
        code, stderr = demo.stop(stop_with)
    assert code == 0, stderr
    assert "Traceback" not in stderr + demo.output
    assert demo.output.rstrip().endswith("stopped serving")


def test_demo_serve_on_a_taken_port_says_so_before_running(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = Demo("--orders", "20", "--port", str(port), "--dir", str(tmp_path / "demo"))
        code = demo.process.wait(60)
    stderr = demo.process.stderr.read()
    assert code == 2
    assert stderr.strip() == f"port {port} on 127.0.0.1 is in use: stop what uses it or choose another with --port"
    assert not (tmp_path / "demo" / "connector.db").exists()  # said at once, before the demo ran


def test_ctrl_c_while_the_demo_runs_stops_it_with_one_line(tmp_path):
    demo = Demo("--orders", "5000", "--port", str(_free_port()), "--dir", str(tmp_path / "demo"))
    while not demo.output.startswith("sandbox:"):  # past the imports, into the run
        line = demo._lines.get(timeout=60)
        assert line is not None, demo.process.stderr.read()
        demo.output += line
    code, stderr = demo.stop(signal.SIGINT)
    assert code == 130, demo.output
    assert stderr.strip().splitlines()[-1] == "demo stopped" and "Traceback" not in stderr + demo.output
    assert "Ctrl-C stops the server." not in demo.output  # stopped before it served


def test_demo_serve_falls_back_when_the_default_port_is_taken(tmp_path):
    holder = socket.socket()
    try:
        try:
            holder.bind(("127.0.0.1", 8000))
            holder.listen()
        except OSError:
            pass  # something else holds 8000 already: taken either way
        demo = Demo("--orders", "20", "--dir", str(tmp_path / "demo"))
        links = demo.wait_for_links()
        code, stderr = demo.stop(signal.SIGINT)
    finally:
        holder.close()
    assert int(links[SHOPIFY_SHOP]["port"]) != 8000
    assert f"port 8000 is in use; serving on port {links[SHOPIFY_SHOP]['port']} instead" in demo.output
    assert code == 0 and "Traceback" not in stderr


@pytest.mark.parametrize("command", [
    ["nodes"],
    ["orders", "show", "#1001"],
    ["exceptions"],
    ["shops", "export", SHOPIFY_SHOP],
], ids=lambda c: " ".join(c))
def test_the_demo_dir_config_serves_other_commands(runner, tmp_path, monkeypatch, command):
    monkeypatch.delenv(KEYS_ENV)  # the key comes from the keys file the config names
    demo = runner.invoke(main, ["demo", "--orders", "20", "--dir", str(tmp_path / "demo")])
    assert demo.exit_code == 0, demo.output
    result = runner.invoke(main, ["--config", str(tmp_path / "demo" / "connector.toml"), *command])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and result.stdout.strip()


def test_the_demo_dir_config_issues_login_links_the_served_pages_accept(tmp_path):
    port = _free_port()
    demo = Demo("--orders", "20", "--port", str(port), "--dir", str(tmp_path / "demo"))
    links = demo.wait_for_links()
    try:
        email = re.search(rf"users link (\S+@\S+) --base-url http://127\.0\.0\.1:{port}", demo.output)
        assert email, demo.output
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")} | {"PYTHONPATH": str(REPO)}
        again = subprocess.run([sys.executable, "-m", "connector.cli", "--config",
                                str(tmp_path / "demo" / "connector.toml"), "users", "link", email.group(1),
                                "--base-url", f"http://127.0.0.1:{port}"],
                               cwd=str(REPO), env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        link = again.stdout.strip().splitlines()[0]
        assert link != links[SHOPIFY_SHOP]["url"]
        _sign_in_with(link)
    finally:
        demo.stop(signal.SIGINT)
