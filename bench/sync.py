"""Full stock sync from ShipBob, end to end, against a local ShipBob-shaped server.

    .venv/bin/python bench/sync.py                       # 20,000 SKUs x 5 locations, 3 repeats
    .venv/bin/python bench/sync.py --skus 5000 --locations 3 --repeat 1
    .venv/bin/python bench/sync.py --page-size 1000      # a larger PageSize than the adapter's default
    .venv/bin/python bench/sync.py --profile             # + cProfile of the sync and of the write path

A threaded ``http.server`` on 127.0.0.1:<free port> serves
``GET /2026-01/inventory-level/locations?PageSize=N[&Cursor=...]`` shaped as
``Inventory.InventoryQuantityFcResponsePagedResponse`` (``items`` of
``inventory_id``/``name``/``sku``/``locations[]`` with the five quantity fields,
``first``/``prev``/``next``/``last`` links, an opaque base64 ``Cursor`` as in
tests/fixtures/shipbob/inventory_locations_page1.json). Page bodies are rendered
once and cached as bytes, so the server only copies bytes. The real adapter
(``ShipBobWarehouse`` on ``HttpClient``, pacing off: ``min_interval=0``) reads it.

Each measured phase runs in a fresh interpreter (``subprocess``) that reports its
own peak RSS (VmHWM; see ``maxrss_mb`` for why not ``ru_maxrss``):

* e2e    ``container.sync.sync_provider(store, shop, "sb")`` on a fresh SQLite file
         built with ``build(settings, warehouse_factory=...)`` + ``init_database()``;
         checks: COUNT(*) FROM stock == SKUs x locations, one ``ok`` sync run per node.
* fetch  ``list(adapter.list_inventory())`` alone (HTTP + JSON + records).
* write  the same rows, mapped as the sync maps them, written by
         ``store.replace_stock_for_nodes`` into a fresh database, and raw
         ``sqlite3`` ``executemany`` of the identical 100,000 tuples (the ones the
         store builds) into a fresh file with the same pragmas (WAL,
         synchronous=FULL) and the ``stock`` table's CREATE TABLE (same columns,
         NOT NULLs, primary key, any index), one transaction. Informative: the
         cost of building the tuples. The order store/raw alternates between
         repeats.

One uncounted warm-up e2e, then --repeat rounds of (e2e, fetch, write); medians
are reported. Time spent in the cyclic garbage collector during each timed call
is measured through ``gc.callbacks``.

Targets (issue): end to end >= 50,000 rows/s; raw_time / store_write_time >= 0.7;
peak RSS of the end-to-end process < 200 MB. When one is missed (or with
--profile) the end-to-end sync and the write path are profiled with cProfile, and
a what-if e2e with the collector disabled around ``sync_provider`` shows GC's share.
Production pacing (150 requests/min) is off here and reported as pages x 0.4 s.
"""
from __future__ import annotations

import argparse
import base64
import json
import math
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from _host import LocalServer, machine  # bench/ is on sys.path when a script runs
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parent.parent
SPEC = Path(os.environ.get("CONNECTOR_SPECS_DIR") or REPO.parent / "shared" / "specs") / "shipbob.json"
ENDPOINT = "/2026-01/inventory-level/locations"
TOKEN = "bench"
PROVIDER_ID = "sb"
BASE_INVENTORY_ID = 30_000_000
MAX_LOCATIONS = 5  # the sandbox shop has 5 nodes; node k is fed by ShipBob location "k"
PACED_INTERVAL = 60.0 / 150  # adapters.shipbob.RATE_LIMIT_PER_MINUTE

TARGET_ROWS_PER_S = 50_000
TARGET_WRITE_RATIO = 0.7
TARGET_RSS_MB = 200.0
CHILD_TIMEOUT_S = 180


def maxrss_mb() -> float:
    """Peak RSS of this process in MB: VmHWM of /proc/self/status (Linux).

    Not ``ru_maxrss`` alone: Linux carries the parent's RSS high-water mark at
    fork into the child's ``ru_maxrss`` across exec, so every child of this
    driver (which holds the server's pre-rendered pages) would report at least
    the driver's own RSS. VmHWM belongs to the exec'd image only.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return ru_maxrss_mb()


class GcTimer:
    """Wall time spent in the cyclic garbage collector while active (gc.callbacks)."""

    def __init__(self):
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._t = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._t
            self.collections[info["generation"]] += 1

    def __enter__(self) -> "GcTimer":
        import gc

        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc) -> None:
        import gc

        gc.callbacks.remove(self._callback)


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------- ShipBob-shaped server


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def _unb64(text: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


class Catalog:
    """``skus`` inventory items, each stocked at ``locations`` fulfillment centers,
    deterministic quantities; page bodies rendered on first request and cached."""

    def __init__(self, skus: int, locations: int, origin: str):
        self.skus = skus
        self.locations = locations
        self.origin = origin
        self._pages: dict[tuple[int, int], bytes] = {}
        self._lock = threading.Lock()
        self.requests = 0
        self.bytes_sent = 0

    def item(self, i: int) -> dict:
        locs = []
        for loc in range(1, self.locations + 1):
            h = (i * 2654435761 + loc * 40503) % 1_000_003
            on_hand = h % 400
            committed = min(on_hand, h % 37)
            locs.append({
                "location_id": loc,
                "name": f"Bench FC {loc}",
                "on_hand_quantity": on_hand,
                "committed_quantity": committed,
                "fulfillable_quantity": on_hand - committed,
                "awaiting_quantity": h % 90,
                "internal_transfer_quantity": h % 7,
            })
        return {"inventory_id": BASE_INVENTORY_ID + i, "name": f"Bench product {i} - Black / M",
                "sku": f"BENCH-{i:06d}", "locations": locs}

    def _url(self, page_size: int, start: int) -> str:
        url = f"{self.origin}{ENDPOINT}?PageSize={page_size}"
        if start > 0:  # "after the item before start", as ShipBob's lastId cursors read
            url += "&Cursor=" + _b64({"lastId": BASE_INVENTORY_ID + start - 1})
        return url

    def render(self, page_size: int, start: int) -> bytes:
        end = min(start + page_size, self.skus)
        last_start = max(0, (self.skus - 1) // page_size * page_size)
        body = {
            "first": None if start == 0 else self._url(page_size, 0),
            "prev": None if start == 0 else self._url(page_size, max(0, start - page_size)),
            "items": [self.item(i) for i in range(start, end)],
            "next": self._url(page_size, end) if end < self.skus else None,
            "last": None if end >= self.skus else self._url(page_size, last_start),
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def page(self, page_size: int, start: int) -> bytes:
        key = (page_size, start)
        body = self._pages.get(key)
        if body is None:
            body = self.render(page_size, start)
            with self._lock:
                self._pages[key] = body
        return body

    def prerender(self, page_size: int) -> int:
        total = 0
        for start in range(0, max(self.skus, 1), page_size):
            total += len(self.page(page_size, start))
        return total

    def count(self, nbytes: int) -> None:
        with self._lock:
            self.requests += 1
            self.bytes_sent += nbytes


def make_handler(catalog: Catalog):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like api.shipbob.com
        timeout = 60  # an idle keep-alive connection ends its thread

        def log_message(self, format, *args):  # noqa: A002 - quiet
            pass

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            catalog.count(len(body))

        def _problem(self, status: int, title: str) -> None:
            self._send(status, json.dumps({"type": "about:blank", "title": title, "status": status}).encode())

        def do_GET(self):  # noqa: N802
            parts = urlsplit(self.path)
            if parts.path != ENDPOINT:
                return self._problem(404, "Not Found")
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._problem(401, "Unauthorized")
            query = parse_qs(parts.query)
            try:
                page_size = int(query.get("PageSize", ["100"])[0])
                if page_size < 1:
                    raise ValueError
                start = 0
                if "Cursor" in query:
                    start = int(_unb64(query["Cursor"][0])["lastId"]) - BASE_INVENTORY_ID + 1
                if not 0 <= start <= catalog.skus:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return self._problem(400, "Bad Request")
            self._send(200, catalog.page(page_size, start))

    return Handler


class Server(LocalServer):
    def __init__(self, skus: int, locations: int):
        super().__init__("bench-shipbob")  # the handler needs the catalog, which needs the port
        self.catalog = Catalog(skus, locations, f"http://127.0.0.1:{self.port}")
        self.httpd.RequestHandlerClass = make_handler(self.catalog)


# ---------------------------------------------------------------- spec check


def spec_page_size(default: int) -> tuple[int, str]:
    """The largest PageSize the spec allows for the endpoint, or the adapter default when it states none."""
    try:
        spec = json.loads(SPEC.read_text())
        params = spec["paths"][ENDPOINT]["get"]["parameters"]
        param = next(p for p in params if p.get("name") == "PageSize")
    except (OSError, KeyError, StopIteration, ValueError) as exc:
        return default, f"spec not readable ({type(exc).__name__}); adapter default {default}"
    schema = param.get("schema") or {}
    maximum = schema.get("maximum")
    if maximum is not None:
        return int(maximum), f"spec maximum {maximum}"
    return default, (f"spec states no maximum for PageSize on GET {ENDPOINT} (schema {schema}, "
                     f"\"{param.get('description', '')[:70]}...\"); using the adapter's default "
                     f"inventory_page_size={default}, which is what production sends (build_warehouse)")


# ---------------------------------------------------------------- child phases (fresh interpreter each)


def _settings(db_path: str, locations: int):
    from datetime import datetime, timezone

    from connector import sandbox
    from connector.config import settings_from_dict

    config = sandbox.demo_config(datetime.now(timezone.utc), db_path, "bench-secret", "bench-woo-secret")
    config["web"] |= {"process_inbox": False}
    shop = config["shops"][sandbox.SHOPIFY_SHOP]
    shop["providers"] = {PROVIDER_ID: {"type": "shipbob", "token": TOKEN, "channel_id": "1"}}
    for k, node in enumerate(shop["nodes"][:locations], start=1):
        node.update(stock_source=PROVIDER_ID, provider_location=str(k))
    return settings_from_dict(config, source="bench"), sandbox.SHOPIFY_SHOP


def _adapter(port: int, page_size: int | None):
    from adapters.http import HttpClient, StaticToken
    from adapters.shipbob import ShipBobWarehouse

    client = HttpClient(base_url=f"http://127.0.0.1:{port}", auth=StaticToken(token=TOKEN), provider="shipbob",
                        min_interval=0.0)
    kw = {} if page_size is None else {"inventory_page_size": page_size}
    return ShipBobWarehouse(client=client, channel_id="1", **kw)


def _top(profile, limit: int = 22) -> list[str]:
    import pstats

    stats = pstats.Stats(profile)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][3], reverse=True)
    out = []
    for (filename, line, func), (cc, nc, tt, ct, _callers) in rows[:limit]:
        short = filename
        for prefix in (str(REPO) + "/", sys.prefix + "/", sys.base_prefix + "/"):
            if short.startswith(prefix):
                short = short[len(prefix):]
                break
        out.append(f"{ct:8.3f}s cum {tt:8.3f}s self {nc:>8} calls  {short}:{line}:{func}")
    return out


def child_baseline(args) -> dict:
    bare = maxrss_mb()
    import adapters.shipbob  # noqa: F401
    import connector.bootstrap  # noqa: F401
    import requests  # noqa: F401
    import sqlite_utils  # noqa: F401

    return {"bare_rss_mb": bare, "imported_rss_mb": maxrss_mb()}


def child_e2e(args) -> dict:
    import cProfile

    from connector.bootstrap import build

    settings, shop = _settings(str(Path(args.workdir) / "e2e.db"), args.locations)
    adapter = _adapter(args.port, args.page_size)
    container = build(settings, warehouse_factory=lambda config: adapter)
    container.init_database()
    store = container.open_store()
    try:
        profile = cProfile.Profile() if args.profile_child else None
        import gc

        with GcTimer() as gc_timer:
            if args.gc_off:  # what-if only: the product runs with the collector on
                gc.disable()
            t0 = time.perf_counter()
            if profile:
                profile.enable()
            outcome = container.sync.sync_provider(store, shop, PROVIDER_ID)
            if profile:
                profile.disable()
            elapsed = time.perf_counter() - t0
            gc.enable()
        count = store.conn.execute("SELECT COUNT(*) FROM stock WHERE shop_id = ?", (shop,)).fetchone()[0]
        runs = store.sync_runs(shop)
        result = {
            "seconds": elapsed, "gc_s": gc_timer.seconds, "gc_collections": gc_timer.collections,
            "rows": count, "ok": outcome.ok, "error": outcome.error,
            "outcome_rows": sum(outcome.rows.values()), "unmapped": outcome.unmapped_locations,
            "runs_ok": sum(1 for r in runs if r["outcome"] == "ok" and r["provider"] == PROVIDER_ID),
            "nodes": len(outcome.nodes), "rss_mb": maxrss_mb(), "ru_maxrss_mb": ru_maxrss_mb(),
        }
        if profile:
            result["profile"] = _top(profile)
        return result
    finally:
        store.close()
        adapter.client.close()


def child_fetch(args) -> dict:
    adapter = _adapter(args.port, args.page_size)
    try:
        with GcTimer() as gc_timer:
            t0 = time.perf_counter()
            records = list(adapter.list_inventory())
            elapsed = time.perf_counter() - t0
        return {"seconds": elapsed, "gc_s": gc_timer.seconds, "rows": len(records), "rss_mb": maxrss_mb(),
                "page_size": adapter.inventory_page_size}
    finally:
        adapter.client.close()


def child_write(args) -> dict:
    """The store's write path vs raw executemany of the identical tuples."""
    import cProfile
    from datetime import datetime, timezone

    from connector.bootstrap import build
    from connector.config import file_shops
    from connector.services import sync as sync_service
    from connector.store import ts

    settings, shop = _settings(str(Path(args.workdir) / "store.db"), args.locations)
    adapter = _adapter(args.port, args.page_size)
    try:
        records = list(adapter.list_inventory())
    finally:
        adapter.client.close()
    fed = [s for s in file_shops(settings)[shop].sources.values() if s.provider == PROVIDER_ID]
    # The exact mapping StockSync.sync_provider applies (a private helper, called read-only).
    per_node, _unmapped = sync_service._map_records(records, fed, file_shops(settings)[shop].providers[PROVIDER_ID].sku_map)
    del records
    now = datetime.now(timezone.utc)
    rows_total = sum(len(v) for v in per_node.values())

    container = build(settings, warehouse_factory=lambda config: None)
    container.init_database()
    store = container.open_store()
    schema = [r[0] for r in store.conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'stock' AND sql IS NOT NULL ORDER BY type DESC, name")]
    create_table = next(s for s in schema if s.upper().startswith("CREATE TABLE"))
    indexes = [s for s in schema if s.upper().startswith("CREATE INDEX")]  # none today; kept faithful if added

    # the tuples replace_node_stock inserts (same column order, stamp and source)
    t0 = time.perf_counter()
    stamp = ts(now)
    tuples = [(shop, sku, node_id, on_hand, committed, available, stamp, PROVIDER_ID)
              for node_id, rows in per_node.items() for sku, on_hand, committed, available in rows]
    build_s = time.perf_counter() - t0

    def raw_write(path: Path, indexes: list[str]) -> float:
        conn = sqlite3.connect(str(path))
        try:
            conn.isolation_level = None
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(create_table)
            for sql in indexes:
                conn.execute(sql)
            t = time.perf_counter()
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO stock (shop_id, sku, node_id, on_hand, committed, available, updated_at, "
                             "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tuples)
            conn.execute("COMMIT")
            elapsed = time.perf_counter() - t
            assert conn.execute("SELECT COUNT(*) FROM stock").fetchone()[0] == len(tuples)
            return elapsed
        finally:
            conn.close()

    def store_write() -> float:
        profile = cProfile.Profile() if args.profile_child else None
        with GcTimer() as gc_timer:
            t = time.perf_counter()
            if profile:
                profile.enable()
            written = store.replace_stock_for_nodes(shop, per_node, PROVIDER_ID, now)
            if profile:
                profile.disable()
            elapsed = time.perf_counter() - t
        result["store_gc_s"] = gc_timer.seconds
        assert sum(written.values()) == rows_total
        assert store.conn.execute("SELECT COUNT(*) FROM stock").fetchone()[0] == rows_total
        if profile:
            result["profile"] = _top(profile)
        return elapsed

    result: dict = {"rows": rows_total, "tuple_build_s": build_s}
    try:
        if args.rep % 2 == 0:
            result["store_s"] = store_write()
            result["raw_s"] = raw_write(Path(args.workdir) / "raw.db", indexes)
        else:
            result["raw_s"] = raw_write(Path(args.workdir) / "raw.db", indexes)
            result["store_s"] = store_write()
    finally:
        store.close()
    result["rss_mb"] = maxrss_mb()
    return result


CHILDREN = {"baseline": child_baseline, "e2e": child_e2e, "fetch": child_fetch, "write": child_write}


def run_child(phase: str, args, workdir: Path, rep: int = 0, profile: bool = False, gc_off: bool = False) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", phase, "--port", str(args.port),
           "--workdir", str(workdir), "--skus", str(args.skus), "--locations", str(args.locations),
           "--rep", str(rep)]
    if args.page_size is not None:
        cmd += ["--page-size", str(args.page_size)]
    if profile:
        cmd.append("--profile-child")
    if gc_off:
        cmd.append("--gc-off")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, cwd=str(REPO))
    if proc.returncode != 0:
        raise RuntimeError(f"child {phase} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    shutil.rmtree(workdir, ignore_errors=True)  # each phase's databases are fresh and thrown away
    return result


# ---------------------------------------------------------------- driver


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--locations", type=int, default=5, help=f"1..{MAX_LOCATIONS}")
    parser.add_argument("--page-size", type=int, default=None,
                        help="PageSize the adapter sends (default: the spec's maximum, else the adapter default)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile even when every target is met")
    # internal: a measured phase in a fresh interpreter
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--rep", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gc-off", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.locations <= MAX_LOCATIONS:
        parser.error(f"--locations must be 1..{MAX_LOCATIONS} (one sandbox node per location)")
    if not 1 <= args.skus <= 1_000_000 or not 1 <= args.repeat <= 10:
        parser.error("--skus 1..1,000,000 and --repeat 1..10")

    if args.child:
        sys.path.insert(0, str(REPO))
        print(json.dumps(CHILDREN[args.child](args)))
        return 0

    sys.path.insert(0, str(REPO))
    import inspect

    from adapters.shipbob import ShipBobWarehouse

    adapter_default = inspect.signature(ShipBobWarehouse.__init__).parameters["inventory_page_size"].default
    spec_size, spec_note = spec_page_size(adapter_default)
    if args.page_size is None:
        args.page_size = spec_size
    else:
        spec_note = f"--page-size {args.page_size} (informative; {spec_note.split('; using')[0]})"
    expected_rows = args.skus * args.locations
    pages = math.ceil(args.skus / args.page_size)

    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} (1 min) at start")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    try:
        head = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %ci"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "connector", "adapters"],
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
        dirty = [line[3:] for line in dirty if line.strip()]
        print(f"code: HEAD {head}" + (f"; uncommitted changes in {', '.join(dirty)}" if dirty else
                                      "; connector/ and adapters/ clean"))
    except (OSError, subprocess.SubprocessError):
        pass
    print(f"data: {args.skus:,} SKUs x {args.locations} locations = {expected_rows:,} rows; "
          f"PageSize {args.page_size} -> {pages} pages")
    print(f"page size: {spec_note}")

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    results: dict[str, list[dict]] = {"e2e": [], "fetch": [], "write": []}
    try:
        with Server(args.skus, args.locations) as server:
            args.port = server.port
            t0 = time.perf_counter()
            body_bytes = server.catalog.prerender(args.page_size)
            print(f"server: http://127.0.0.1:{server.port}{ENDPOINT} (threaded, keep-alive); {pages} pages, "
                  f"{body_bytes / 1e6:.1f} MB of JSON pre-rendered in {time.perf_counter() - t0:.2f}s")
            base = run_child("baseline", args, tmp / "baseline")
            print(f"baseline RSS: bare interpreter {base['bare_rss_mb']:.1f} MB, after importing connector + "
                  f"adapters + requests + sqlite_utils {base['imported_rss_mb']:.1f} MB")
            warm = run_child("e2e", args, tmp / "warm-up")
            print(f"warm-up e2e (not counted): {warm['seconds']:.3f}s")
            print()
            for rep in range(args.repeat):
                for phase in ("e2e", "fetch", "write"):
                    before = server.catalog.requests
                    r = run_child(phase, args, tmp / f"{phase}-{rep}", rep)
                    r["requests"] = server.catalog.requests - before
                    results[phase].append(r)
                e, f, w = results["e2e"][-1], results["fetch"][-1], results["write"][-1]
                if not (e["ok"] and e["rows"] == expected_rows and e["runs_ok"] == args.locations
                        and e["requests"] == pages):
                    raise RuntimeError(f"end-to-end sync did not land every row: {e}")
                if f["rows"] != expected_rows or w["rows"] != expected_rows:
                    raise RuntimeError(f"fetch/write saw {f['rows']}/{w['rows']} rows, expected {expected_rows}")
                print(f"run {rep + 1}: e2e {e['seconds']:.3f}s = {expected_rows / e['seconds']:,.0f} rows/s, "
                      f"GC {e['gc_s']:.3f}s, peak RSS {e['rss_mb']:.1f} MB (ru_maxrss {e['ru_maxrss_mb']:.1f}); "
                      f"{e['requests']} requests, {e['rows']:,} stock rows, {e['runs_ok']} ok sync runs")
                print(f"       fetch+parse {f['seconds']:.3f}s = {expected_rows / f['seconds']:,.0f} rows/s, "
                      f"GC {f['gc_s']:.3f}s, peak RSS {f['rss_mb']:.1f} MB")
                print(f"       store write {w['store_s']:.3f}s (GC {w['store_gc_s']:.3f}s), raw executemany "
                      f"{w['raw_s']:.3f}s, tuple build {w['tuple_build_s']:.3f}s; "
                      f"ratio raw/store {w['raw_s'] / w['store_s']:.2f}; write child peak RSS {w['rss_mb']:.1f} MB")

            med = statistics.median
            e2e_s = med(r["seconds"] for r in results["e2e"])
            e2e_rss = max(r["rss_mb"] for r in results["e2e"])
            fetch_s = med(r["seconds"] for r in results["fetch"])
            store_s = med(r["store_s"] for r in results["write"])
            raw_s = med(r["raw_s"] for r in results["write"])
            build_s = med(r["tuple_build_s"] for r in results["write"])
            ratio = med(r["raw_s"] / r["store_s"] for r in results["write"])
            rate = expected_rows / e2e_s
            print()
            print(f"median of {args.repeat}:")
            rows = [
                ("end to end: sync_provider", e2e_s,
                 f"GC {med(r['gc_s'] for r in results['e2e']):.3f}s; peak RSS {e2e_rss:.1f} MB (max of runs)"),
                ("fetch+parse: list(list_inventory())", fetch_s,
                 f"GC {med(r['gc_s'] for r in results['fetch']):.3f}s; "
                 f"peak RSS {max(r['rss_mb'] for r in results['fetch']):.1f} MB"),
                ("store write: replace_stock_for_nodes", store_s,
                 f"GC {med(r['store_gc_s'] for r in results['write']):.3f}s"),
                ("raw executemany (same table, same tuples)", raw_s, "baseline"),
                ("building the tuples", build_s, "informative"),
            ]
            for name, seconds, note in rows:
                print(f"  {name:<46} {seconds:7.3f}s {expected_rows / seconds:>10,.0f} rows/s  {note}")
            print(f"  ratio raw_time / store_write_time = {ratio:.2f}")
            print(f"  with production pacing (60/150 s between requests): {pages} pages x {PACED_INTERVAL:.1f} s "
                  f"= {pages * PACED_INTERVAL:.1f} s of rate-limit wait alone "
                  f"(~{expected_rows / max(pages * PACED_INTERVAL, e2e_s):,.0f} rows/s) [informative]")

            checks = [
                (f"end to end >= {TARGET_ROWS_PER_S:,} rows/s", rate >= TARGET_ROWS_PER_S, f"{rate:,.0f}"),
                (f"store write >= {TARGET_WRITE_RATIO}x raw executemany", ratio >= TARGET_WRITE_RATIO,
                 f"{ratio:.2f}"),
                (f"peak RSS < {TARGET_RSS_MB:.0f} MB", e2e_rss < TARGET_RSS_MB, f"{e2e_rss:.1f} MB"),
            ]
            print()
            for name, ok, value in checks:
                print(f"target {name}: {'MET' if ok else 'MISSED'} ({value})")

            if args.profile or not all(ok for _name, ok, _value in checks):
                print()
                what_if = [run_child("e2e", args, tmp / f"gc-off-{i}", i, gc_off=True) for i in range(args.repeat)]
                what_if_s = med(r["seconds"] for r in what_if)
                runs = ", ".join(f"{r['seconds']:.3f}" for r in what_if)
                print(f"what-if, cyclic GC disabled around sync_provider (not the product's behaviour): median "
                      f"{what_if_s:.3f}s = {expected_rows / what_if_s:,.0f} rows/s (runs {runs}), "
                      f"peak RSS {max(r['rss_mb'] for r in what_if):.1f} MB")
                prof = run_child("e2e", args, tmp / "profile-e2e", 0, profile=True)
                print(f"cProfile of sync_provider ({prof['seconds']:.3f}s under the profiler), top by cumulative:")
                for line in prof["profile"]:
                    print("  " + line)
                prof = run_child("write", args, tmp / "profile-write", 0, profile=True)
                print(f"cProfile of replace_stock_for_nodes ({prof['store_s']:.3f}s under the profiler):")
                for line in prof["profile"][:14]:
                    print("  " + line)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    leftovers = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print(f"\ntotal {time.perf_counter() - started:.1f}s; load average {os.getloadavg()[0]:.2f} at the end; "
          f"temp dir removed; threads left: {leftovers or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
