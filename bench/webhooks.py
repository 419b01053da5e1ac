"""Webhook ingest under load: the real app under gunicorn vs a trivial Flask app.

    .venv/bin/python bench/webhooks.py                  # 3000 requests each, background processing on
    .venv/bin/python bench/webhooks.py --no-processing  # ingest alone ([web] process_inbox = false)
    .venv/bin/python bench/webhooks.py --no-processing --threads 0  # sync workers (groups of one)
    .venv/bin/python bench/webhooks.py --no-processing --no-group-commit  # gthread, one commit per webhook
    .venv/bin/python bench/webhooks.py --count 10000 --concurrency 16 --duration 60
    .venv/bin/python bench/webhooks.py --profile 1000   # + cProfile of in-process ingest (no HTTP)
    .venv/bin/python bench/webhooks.py --profile-server # gunicorn workers under cProfile (diagnosis only)

What it does, all on 127.0.0.1, in a temp dir that is removed afterwards:

1. Writes the sandbox network (``connector.sandbox.demo_config``) as TOML, runs
   ``init`` through the container (migrations + network sync) and seeds
   ``DEMO_STOCK`` as ``connector demo`` does.
2. Starts ``gunicorn -w 2 -k gthread --threads 8 'connector.web:create_app()'``
   (the production command; ``--threads 0``: sync workers) with CONNECTOR_CONFIG
   pointing at that file, and the same gunicorn command (same worker class and
   threads) over a trivial Flask app (POST / reads the body, returns
   {"ok": true}) as the same-run baseline.
3. Sends the same number of signed Shopify ``orders/create`` deliveries (unique
   X-Shopify-Webhook-Id each) to both with a fixed number of client threads,
   closed loop (each thread sends its next request when the previous answer is
   in), bounded by --count and --duration. The two apps take turns in --rounds
   bursts (trivial, app, app, trivial, ...; with background processing on, each
   app burst is followed by a wait for its inbox to drain, so no trivial burst
   shares the machine with the app's workers). The ratio is the app's accepted/s
   over all its bursts to the trivial app's req/s over all of its: this
   machine's speed drifts by tens of percent within a minute (other tenants of
   the host), and short alternating bursts expose both apps to the drift alike.
   Server CPU per request is read from /proc for the gunicorn process group,
   split into main threads and other threads (sync workers: requests vs the
   inbox worker; gthread: the accept loop vs request threads, which also lead
   the group commits, and the inbox worker).
4. Waits (bounded) for the app's background workers to drain, stops gunicorn,
   opens the SQLite file and checks that every acknowledged (HTTP 200) webhook
   id is in webhook_inbox exactly once.

The load generator: raw sockets with the request bytes built before the clock
starts. gunicorn's sync worker answers ``Connection: close`` on every request,
so every request here asks for ``Connection: close`` and no worker class gets
keep-alive (the comparison stays like for like); a raw socket is the cheapest
way to open a connection, send, and read to EOF (no header parsing beyond the
status line), so the generator, which shares the 2 cores with the server, costs
as little as possible. Latency is measured from connect() to EOF.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

from _host import load_average, cpu_idle_percent, machine  # bench/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connector import sandbox  # noqa: E402
from connector.bootstrap import build  # noqa: E402
from connector.config import load_settings  # noqa: E402

TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0

TRIVIAL_APP = '''\
from flask import Flask, request

app = Flask(__name__)


@app.post("/")
def index():
    request.get_data(cache=False)
    return {"ok": True}


@app.get("/healthz")
def health():
    return {"ok": True}
'''


# Written to the temp dir and passed to the app's gunicorn with -c when --profile-server
# is given: every worker profiles its request thread and its inbox thread with
# cProfile (wall-clock timer: where each thread waits shows), and dumps both on exit.
PROFILE_HOOKS = '''\
import cProfile, os, time

_profiles = []


def post_fork(server, worker):
    import connector.worker as inbox_worker

    request = cProfile.Profile()
    _profiles.append(("request", request))
    request.enable()
    original = inbox_worker.InboxWorker._run

    def _run(self):
        profile = cProfile.Profile()
        _profiles.append(("inbox", profile))
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    inbox_worker.InboxWorker._run = _run


def worker_exit(server, worker):
    for label, profile in _profiles:
        profile.disable()
        profile.dump_stats(os.path.join({outdir!r}, f"prof-{{label}}-{{os.getpid()}}.out"))
'''


# ---------------------------------------------------------------- TOML


def _toml_key(key: str) -> str:
    return json.dumps(str(key))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON basic strings (with \\uXXXX escapes) are TOML basic strings
    if isinstance(value, datetime):
        return value.isoformat()  # RFC 3339 offset date-time when aware
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(data: dict) -> str:
    """Enough TOML for the demo_config shape: tables for nested dicts, inline
    tables inside arrays, None values left out."""
    out: list[str] = []

    def table(path: list[str], mapping: dict) -> None:
        scalars = [(k, v) for k, v in mapping.items() if v is not None and not isinstance(v, dict)]
        tables = [(k, v) for k, v in mapping.items() if isinstance(v, dict)]
        if path and (scalars or not tables):
            out.append("[" + ".".join(_toml_key(p) for p in path) + "]")
        for key, value in scalars:
            out.append(f"{_toml_key(key)} = {_toml_value(value)}")
        if scalars:
            out.append("")
        for key, value in tables:
            table(path + [key], value)

    table([], data)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- setup


def write_config(workdir: Path, process_inbox: bool, batch_size: int | None = None,
                 web: dict | None = None) -> tuple[Path, str, dict]:
    now = datetime.now(timezone.utc)
    shopify_secret = secrets.token_hex(16)
    config = sandbox.demo_config(now, str(workdir / "connector.db"), shopify_secret, secrets.token_hex(16))
    config["web"] |= {"process_inbox": process_inbox, **(web or {})}
    if batch_size is not None:
        config["processing"] = {"batch_size": batch_size}
    text = to_toml(config)
    if tomllib.loads(text) != config:  # the writer must round-trip this shape exactly
        raise SystemExit("TOML writer did not round-trip demo_config")
    path = workdir / "connector.toml"
    path.write_text(text, encoding="utf-8")
    return path, shopify_secret, config


def init_and_seed(config_path: Path, stock_multiplier: int) -> Path:
    container = build(load_settings(config_path))
    container.init_database()
    store = container.open_store()
    try:
        sandbox.seed_stock(store, container.clock(), shops=container.shops, multiplier=stock_multiplier)
    finally:
        store.close()
    return container.settings.database_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """One gunicorn master in its own process group; ``stop`` ends the group."""

    def __init__(self, app: str, workers: int, threads: int, env: dict, cwd: Path, log: Path,
                 extra: list[str] | None = None):
        self.port = free_port()
        self.log = log
        self._stopped = False
        self._log_file = open(log, "wb")
        worker_class = ["-k", "gthread", "--threads", str(threads)] if threads else []
        cmd = [str(Path(sys.executable).with_name("gunicorn")), "-w", str(workers), *worker_class,
               "-b", f"127.0.0.1:{self.port}", *(extra or []), app]
        self.proc = subprocess.Popen(cmd, cwd=str(cwd), env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def cpu_seconds(self) -> tuple[float, float]:
        """user+system CPU so far (Linux /proc) of the master and its workers:
        (main threads, which serve requests in sync workers and run the accept
        loop in gthread workers; all other threads: gthread's request threads,
        which also run the group commits, and the background inbox worker)."""
        tick = os.sysconf("SC_CLK_TCK")
        main = other = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                if int(entry.name) != self.proc.pid and int(fields[1]) != self.proc.pid:
                    continue
                tasks = list((entry / "task").iterdir())
            except OSError:
                continue
            for task in tasks:
                try:
                    tf = (task / "stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                # after the ")": [0] state, [1] ppid, ..., [11] utime, [12] stime
                ticks = int(tf[11]) + int(tf[12])
                if task.name == entry.name:
                    main += ticks
                else:
                    other += ticks
        return main / tick, other / tick

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log}:\n"
                                   + self.log.read_text(errors="replace")[-2000:])
            try:
                status, _ = http_request(self.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                                    b"Connection: close\r\n\r\n", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn on port {self.port} not healthy after {timeout}s")

    def stop(self, timeout: float = 15.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        else:  # master gone; make sure no orphaned worker of its group is left
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log_file.close()


# ---------------------------------------------------------------- load


def http_request(port: int, raw: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """Send one prebuilt request over a new connection and read to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks)
    status = int(response[9:12]) if response.startswith(b"HTTP/1.") else 0
    body = response.partition(b"\r\n\r\n")[2]
    return status, body


def build_request(path: str, host_port: str, headers: dict, body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host_port}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def make_deliveries(count: int, secret: str, lines: int, seed: int) -> list[tuple[str, dict, bytes]]:
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    base = 5_000_000_000_000 + rng.randrange(10**9) * 1000
    out = []
    for i in range(count):
        payload = sandbox.shopify_order(rng, base + i, 1001 + i, now, lines=lines)
        hook = sandbox.shopify_webhook(secret, payload, webhook_id=str(uuid.UUID(int=rng.getrandbits(128))))
        out.append((hook.headers["X-Shopify-Webhook-Id"], hook.headers, hook.body))
    return out


class LoadResult:
    def __init__(self, label: str):
        self.label = label
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.acknowledged: list[str] = []  # webhook ids answered 200
        self.duplicates_answered = 0
        self.errors: list[str] = []
        self.sent = 0
        self.elapsed = 0.0
        self.server_cpu = 0.0
        self.server_cpu_main = 0.0
        self.server_cpu_other = 0.0
        # CPU seconds of everything else on the machine meanwhile: other processes, and
        # kernel threads (journal commits of the fsyncs, loopback networking)
        self.others_cpu = 0.0

    @classmethod
    def combined(cls, label: str, parts: list["LoadResult"]) -> "LoadResult":
        """The bursts of several rounds as one phase: requests, time and CPU summed."""
        total = cls(label)
        for part in parts:
            total.latencies += part.latencies
            for status, n in part.statuses.items():
                total.statuses[status] = total.statuses.get(status, 0) + n
            total.acknowledged += part.acknowledged
            total.duplicates_answered += part.duplicates_answered
            total.errors += part.errors
            total.sent += part.sent
            total.elapsed += part.elapsed
            total.server_cpu += part.server_cpu
            total.server_cpu_main += part.server_cpu_main
            total.server_cpu_other += part.server_cpu_other
            total.others_cpu += part.others_cpu
        return total

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(round(q * (len(data) - 1))))] * 1000

    def line(self) -> str:
        errs = self.sent - self.ok
        return (f"{self.label:<22} requests {self.sent:>6}  ok {self.ok:>6}  {self.ok_per_s:8.0f} ok/s  "
                f"p50 {self.pct(0.50):6.1f} ms  p99 {self.pct(0.99):6.1f} ms  max {self.pct(1.0):7.1f} ms  "
                f"errors {errs}  server CPU {self.server_cpu / max(self.sent, 1) * 1000:.2f} ms/req "
                f"({self.server_cpu / self.elapsed * 100 if self.elapsed else 0:.0f}% of one core"
                + (f"; main threads {self.server_cpu_main / max(self.sent, 1) * 1000:.2f}, other threads "
                   f"{self.server_cpu_other / max(self.sent, 1) * 1000:.2f} ms/req" if self.server_cpu_other else "")
                + f"; rest of the machine {self.others_cpu / self.elapsed * 100 if self.elapsed else 0:.0f}% of one core)")


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (/proc/stat; idle and iowait excluded)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """This process (the load generator): user + system."""
    times = os.times()
    return times.user + times.system


def run_load(label: str, server: "Gunicorn", requests: list[tuple[str, bytes]], concurrency: int, duration: float,
             parse_json: bool) -> LoadResult:
    """Closed loop: ``concurrency`` threads take the next request from a shared index
    until all are sent or ``duration`` seconds have passed."""
    result = LoadResult(label)
    port = server.port
    lock = threading.Lock()
    next_index = [0]
    per_thread: list[list] = [[] for _ in range(concurrency)]
    start_gate = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def worker(slot: int) -> None:
        out = per_thread[slot]
        start_gate.wait()
        while True:
            with lock:
                i = next_index[0]
                if i >= len(requests) or time.perf_counter() >= deadline[0]:
                    return
                next_index[0] = i + 1
            key, raw = requests[i]
            t0 = time.perf_counter()
            try:
                status, body = http_request(port, raw)
                error = None
            except OSError as exc:
                status, body, error = 0, b"", f"{type(exc).__name__}: {exc}"
            out.append((key, status, time.perf_counter() - t0, body if parse_json else b"", error))

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(concurrency)]
    for t in threads:
        t.start()
    cpu_before = server.cpu_seconds()
    machine_before, self_before = machine_busy_seconds(), _own_cpu_seconds()
    started = time.perf_counter()
    deadline[0] = started + duration
    start_gate.wait()
    for t in threads:
        t.join(duration + 30)
    result.elapsed = time.perf_counter() - started
    cpu_after = server.cpu_seconds()
    machine_after, self_after = machine_busy_seconds(), _own_cpu_seconds()
    result.server_cpu_main = cpu_after[0] - cpu_before[0]
    result.server_cpu_other = cpu_after[1] - cpu_before[1]
    result.server_cpu = result.server_cpu_main + result.server_cpu_other
    result.others_cpu = max(0.0, (machine_after - machine_before) - result.server_cpu - (self_after - self_before))
    for rows in per_thread:
        for key, status, latency, body, error in rows:
            result.sent += 1
            result.latencies.append(latency)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if error:
                result.errors.append(error)
            elif status != 200 and len(result.errors) < 20:
                result.errors.append(f"HTTP {status}: {body[:200]!r}")
            if status == 200:
                result.acknowledged.append(key)
                if parse_json:
                    try:
                        if json.loads(body).get("duplicate"):
                            result.duplicates_answered += 1
                    except ValueError:
                        result.errors.append(f"unparseable 200 body: {body[:100]!r}")
    return result


# ---------------------------------------------------------------- checks


def count_pending(db_path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        pending = conn.execute("SELECT COUNT(*) FROM webhook_inbox WHERE status = 'pending'").fetchone()[0]
        processed = conn.execute("SELECT COUNT(*) FROM webhook_inbox WHERE status = 'processed'").fetchone()[0]
        return pending, processed
    finally:
        conn.close()


def check_inbox(db_path: Path, acknowledged: list[str]) -> dict:
    conn = sqlite3.connect(str(db_path), timeout=10)
    try:
        conn.execute("CREATE TEMP TABLE acked (webhook_id TEXT PRIMARY KEY)")
        conn.executemany("INSERT OR IGNORE INTO acked VALUES (?)", [(k,) for k in acknowledged])
        found_counts = dict(conn.execute(
            "SELECT a.webhook_id, COUNT(w.id) FROM acked a LEFT JOIN webhook_inbox w ON w.webhook_id = a.webhook_id "
            "GROUP BY a.webhook_id").fetchall())
        statuses = dict(conn.execute("SELECT status, COUNT(*) FROM webhook_inbox GROUP BY status").fetchall())
        order_statuses = dict(conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall())
        drift = conn.execute(
            "SELECT COUNT(*) FROM (SELECT t.shop_id FROM reserved_totals t LEFT JOIN reservations r "
            "ON r.shop_id = t.shop_id AND r.node_id = t.node_id AND r.sku = t.sku AND r.status = 'active' "
            "GROUP BY t.shop_id, t.node_id, t.sku HAVING t.quantity != COALESCE(SUM(r.quantity), 0))").fetchone()[0]
    finally:
        conn.close()
    found = sum(1 for n in found_counts.values() if n >= 1)
    return {
        "acknowledged": len(acknowledged),
        "acknowledged_unique": len(set(acknowledged)),
        "found": found,
        "lost": len(set(acknowledged)) - found,
        "duplicate_rows": sum(n - 1 for n in found_counts.values() if n > 1),
        "inbox_statuses": statuses,
        "order_statuses": order_statuses,
        "reservation_drift_rows": drift,
    }


# ---------------------------------------------------------------- profile


def profile_ingest(config_path: Path, deliveries: list[tuple[str, dict, bytes]], with_http_stack: bool) -> str:
    """cProfile of ingest in this process: through Flask's test client (the whole
    request path minus sockets/gunicorn), or straight into Inbox.ingest."""
    from connector.web import create_app

    container = build(load_settings(config_path))
    buf = io.StringIO()
    profiler = cProfile.Profile()
    if with_http_stack:
        app = create_app(container, start_worker=False)
        client = app.test_client()
        t0 = time.perf_counter()
        profiler.enable()
        for _key, headers, body in deliveries:
            client.post("/webhooks/shopify", data=body, headers=headers)
        profiler.disable()
    else:
        store = container.open_store()
        t0 = time.perf_counter()
        profiler.enable()
        for _key, headers, body in deliveries:
            container.inbox.ingest(store, "shopify", body, headers)
        profiler.disable()
        store.close()
    elapsed = time.perf_counter() - t0
    buf.write(f"{len(deliveries)} ingests in {elapsed:.2f}s under cProfile "
              f"({len(deliveries) / elapsed:.0f}/s, {'Flask test client' if with_http_stack else 'Inbox.ingest'})\n")
    stats = pstats.Stats(profiler, stream=buf)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(12)
    return buf.getvalue()


def print_server_profiles(outdir: Path, requests: int) -> None:
    for label in ("request", "inbox"):
        files = sorted(str(p) for p in outdir.glob(f"prof-{label}-*.out"))
        if not files:
            print(f"(no {label}-thread profile was written)")
            continue
        buf = io.StringIO()
        stats = pstats.Stats(files[0], stream=buf)
        for f in files[1:]:
            stats.add(f)
        total = stats.total_tt
        print(f"--- gunicorn workers, {label} threads ({len(files)} files): {total:.2f} s wall time in profiled functions, "
              f"{total / max(requests, 1) * 1000:.2f} ms per request")
        stats.strip_dirs().sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(15)
        print(buf.getvalue())


def time_fsync(workdir: Path, n: int = 200) -> float:
    """Mean seconds of one committed single-row insert with synchronous=FULL in WAL
    (what one acknowledged webhook costs the disk at minimum)."""
    path = workdir / "fsync-probe.db"
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
        blob = os.urandom(4096)
        t0 = time.perf_counter()
        for _ in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (body) VALUES (?)", (blob,))
            conn.execute("COMMIT")
        return (time.perf_counter() - t0) / n
    finally:
        conn.close()


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000, help="requests to each app (default 3000)")
    parser.add_argument("--rounds", type=int, default=6,
                        help="split them into this many interleaved bursts per app (default 6)")
    parser.add_argument("--duration", type=float, default=30.0, help="max seconds per burst (default 30)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers for each app (default 2)")
    parser.add_argument("--threads", type=int, default=8,
                        help="gthread workers with this many threads each, for both apps (default 8, the production "
                             "command); 0: gunicorn's sync workers")
    parser.add_argument("--no-group-commit", action="store_true",
                        help="[web] group_commit = false: one commit per webhook, in the request thread")
    parser.add_argument("--group-commit-max-wait-ms", type=float, default=None,
                        help="[web] group_commit_max_wait_ms (default: the product default)")
    parser.add_argument("--group-commit-max-rows", type=int, default=None,
                        help="[web] group_commit_max_rows (default: the product default)")
    parser.add_argument("--lines", type=int, default=3, help="line items per order (default 3: ~4.1 KB bodies)")
    parser.add_argument("--no-processing", action="store_true", help="[web] process_inbox = false: ingest only")
    parser.add_argument("--drain-timeout", type=float, default=45.0, help="max seconds to wait for the inbox to drain")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="[processing] batch_size in the config (default: the product default, 50)")
    parser.add_argument("--stock-multiplier", type=int, default=1, help="seed DEMO_STOCK x N (default 1, as the demo)")
    parser.add_argument("--gunicorn-arg", action="append", default=[],
                        help="extra gunicorn argument for both apps, e.g. --gunicorn-arg=--backlog=64")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="afterwards, cProfile N in-process ingests (Flask test client and bare Inbox.ingest)")
    parser.add_argument("--profile-server", action="store_true",
                        help="run the app's gunicorn workers under cProfile (wall clock) and print the "
                             "merged profiles of main and inbox threads (the main thread serves requests only in "
                             "sync workers: use with --threads 0); slows the app, figures not comparable")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (database, gunicorn logs)")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= args.count:
        parser.error("--rounds must be between 1 and --count")

    print(f"machine: {machine()}")
    idle = cpu_idle_percent()
    print(f"before start: CPU idle {idle:.0f}% over 1 s, load average {load_average()}"
          + ("  (other work is running on this machine: figures will be lower and noisier)" if idle < 85 else ""))
    web = {}
    if args.no_group_commit:
        web["group_commit"] = False
    if args.group_commit_max_wait_ms is not None:
        web["group_commit_max_wait_ms"] = args.group_commit_max_wait_ms
    if args.group_commit_max_rows is not None:
        web["group_commit_max_rows"] = args.group_commit_max_rows
    worker_class = f"gthread workers, {args.threads} threads each" if args.threads else "sync workers"
    print(f"gunicorn -w {args.workers} ({worker_class}{' ' + ' '.join(args.gunicorn_arg) if args.gunicorn_arg else ''}"
          f", both apps); {args.concurrency} client threads, closed loop, raw sockets, new connection per request; "
          f"background processing {'OFF' if args.no_processing else 'ON'}"
          + (f", batch_size {args.batch_size}" if args.batch_size else "")
          + f"; app [web] {web or 'defaults'}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    servers: list[Gunicorn] = []
    exit_code = 0
    try:
        config_path, secret, _ = write_config(workdir, process_inbox=not args.no_processing,
                                                batch_size=args.batch_size, web=web)
        db_path = init_and_seed(config_path, args.stock_multiplier)
        (workdir / "trivial_app.py").write_text(TRIVIAL_APP)
        fsync = time_fsync(workdir)
        print(f"disk: one synchronous=FULL WAL commit of a 4 KB row takes {fsync * 1000:.2f} ms "
              f"(floor for one writer: {1 / fsync:.0f} commits/s)")

        deliveries = make_deliveries(args.count, secret, args.lines, args.seed)
        mean_body = statistics.mean(len(b) for _, _, b in deliveries)
        print(f"bodies: {len(deliveries)} signed orders/create, {args.lines} lines each, mean {mean_body / 1024:.2f} KB "
              f"(min {min(len(b) for _, _, b in deliveries)} B, max {max(len(b) for _, _, b in deliveries)} B)")

        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CONNECTOR_") or k == "CONNECTOR_ENCRYPTION_KEYS"}
        env["CONNECTOR_CONFIG"] = str(config_path)
        env["PYTHONPATH"] = os.pathsep.join([str(workdir), str(REPO)])
        trivial = Gunicorn("trivial_app:app", args.workers, args.threads, env, workdir,
                           workdir / "gunicorn-trivial.log", args.gunicorn_arg)
        servers.append(trivial)
        app_extra = list(args.gunicorn_arg)
        if args.profile_server:
            (workdir / "profile_hooks.py").write_text(PROFILE_HOOKS.format(outdir=str(workdir)))
            app_extra += ["-c", str(workdir / "profile_hooks.py")]
        app = Gunicorn("connector.web:create_app()", args.workers, args.threads, env, REPO,
                       workdir / "gunicorn-app.log", app_extra)
        servers.append(app)
        trivial.wait_healthy()
        app.wait_healthy()

        trivial_requests = [(k, build_request("/", f"127.0.0.1:{trivial.port}", h, b)) for k, h, b in deliveries]
        app_requests = [(k, build_request("/webhooks/shopify", f"127.0.0.1:{app.port}", h, b))
                        for k, h, b in deliveries]

        def drain() -> float | None:
            """Wait (bounded) for the app's background workers to empty the inbox, so
            that no trivial burst shares the machine with them; seconds it took."""
            waited_from = time.perf_counter()
            deadline = time.monotonic() + args.drain_timeout
            while count_pending(db_path)[0]:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.1)
            return time.perf_counter() - waited_from

        per_round = -(-len(deliveries) // args.rounds)
        app_bursts: list[LoadResult] = []
        trivial_bursts: list[LoadResult] = []
        drains: list[float | None] = []
        pending_at_end = processed_at_end = 0
        for r in range(args.rounds):
            chunk = slice(r * per_round, (r + 1) * per_round)

            def app_burst() -> None:
                nonlocal pending_at_end, processed_at_end
                app_bursts.append(run_load(f"app, round {r + 1}", app, app_requests[chunk], args.concurrency,
                                           args.duration, True))
                pending_at_end, processed_at_end = count_pending(db_path)
                if not args.no_processing:
                    drains.append(drain())

            def trivial_burst() -> None:
                trivial_bursts.append(run_load(f"trivial, round {r + 1}", trivial, trivial_requests[chunk],
                                               args.concurrency, args.duration, False))

            # A B B A ...: a drift in the machine's speed (other tenants, clock
            # scaling) over the run weighs on both alike.
            for burst in ((trivial_burst, app_burst) if r % 2 == 0 else (app_burst, trivial_burst)):
                burst()
            print(f"round {r + 1}: trivial {trivial_bursts[-1].ok_per_s:5.0f}/s, app {app_bursts[-1].ok_per_s:5.0f} "
                  f"accepted/s, ratio {app_bursts[-1].ok_per_s / trivial_bursts[-1].ok_per_s:.2f}")
        base = LoadResult.combined("trivial", trivial_bursts)
        result = LoadResult.combined("connector app", app_bursts)
        print(base.line())
        print(result.line())
        trivial.stop()
        app.stop()
        check = check_inbox(db_path, result.acknowledged)
        if args.profile_server:
            print()
            print_server_profiles(workdir, result.sent)

        ratio = result.ok_per_s / base.ok_per_s if base.ok_per_s else float("nan")
        round_ratios = [a.ok_per_s / t.ok_per_s for a, t in zip(app_bursts, trivial_bursts) if t.ok_per_s]
        errors = result.sent - result.ok
        print()
        print(f"ratio accepted/s(app) / req/s(trivial), over {args.rounds} interleaved rounds: {ratio:.3f} "
              f"(rounds {min(round_ratios):.2f}-{max(round_ratios):.2f}, median {statistics.median(round_ratios):.2f})"
              f"   target >= {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}")
        print(f"app p99 {result.pct(0.99):.1f} ms   target < {TARGET_P99_MS:.0f} ms: "
              f"{'met' if result.pct(0.99) < TARGET_P99_MS else 'MISSED'}")
        print(f"acknowledged {check['acknowledged']} (unique {check['acknowledged_unique']}), found in webhook_inbox "
              f"{check['found']}, lost {check['lost']}, duplicate rows {check['duplicate_rows']}, "
              f"answered duplicate=true {result.duplicates_answered}   target 0 lost: "
              f"{'met' if check['lost'] == 0 else 'MISSED'}")
        print(f"errors: app {errors}, trivial {base.sent - base.ok}")
        for e in (result.errors + base.errors)[:5]:
            print(f"  e.g. {e}")
        if args.no_processing:
            print(f"background processing off: inbox {check['inbox_statuses']}")
        else:
            print(f"background processing: {processed_at_end} processed when the last app burst ended "
                  f"({pending_at_end} pending); "
                  + (f"the inbox drained within {max(drains):.1f}s of each app burst" if None not in drains
                     else f"NOT drained within {args.drain_timeout:.0f}s of an app burst")
                  + f"; final inbox {check['inbox_statuses']}")
            print(f"orders by status {check['order_statuses']}; reservation drift rows "
                  f"{check['reservation_drift_rows']}")
        if check["lost"] or errors:
            exit_code = 1
        if args.profile:
            (workdir / "profile").mkdir()
            prof_cfg, prof_secret, _ = write_config(workdir / "profile", process_inbox=False)
            init_and_seed(prof_cfg, 1)
            sample = make_deliveries(args.profile, prof_secret, args.lines, args.seed + 1)
            print()
            print(profile_ingest(prof_cfg, sample, with_http_stack=True))
            sample = make_deliveries(args.profile, prof_secret, args.lines, args.seed + 2)
            print(profile_ingest(prof_cfg, sample, with_http_stack=False))
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average after: {load_average()}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
