"""Large orders: how long routing takes, how long processing holds the write lock,
and what a large order does to the webhooks arriving meanwhile.

    .venv/bin/python bench/large_order.py                 # defaults below
    .venv/bin/python bench/large_order.py --duration 6 --rounds 3 --big-lines 3300

(a) ``Router.route`` in process for one order of 1,000 and one of 3,300 lines
    (the sandbox Shopify shop: 5 nodes, its SKUs in turn, quantity 1, to New York;
    DEMO_STOCK x --stock-multiplier as sellable): median of --repeat runs after one
    warm-up. Target: 1,000 lines < 50 ms. Then ``Inbox.process`` of one stored
    delivery of each size on a fresh SQLite file: wall time and the longest time
    the write lock was held (time inside ``Store.write``).
(b) The production shape, all on 127.0.0.1: gunicorn (-w 2 -k gthread --threads 8)
    serving the app with ``[web] process_inbox = false``, and a separate drainer
    process (this script with --drain, the scheduler's role) calling
    ``Inbox.process`` every 50 ms. A closed loop of --concurrency clients posts
    small signed orders/create webhooks (1-4 lines) for --duration seconds per
    phase. Phases alternate: baseline (small webhooks only) and large (meanwhile
    this script stores a --big-lines order straight into the inbox every
    --big-every seconds, and the drainer processes it). Printed per phase: p50,
    p99 and max webhook latency (connect to EOF), errors; and the drainer's
    write-lock holds (count, p99, max) over the whole run.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

from _host import cpu_idle_percent, load_average, machine  # bench/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connector import sandbox  # noqa: E402
from connector.bootstrap import build  # noqa: E402
from connector.config import file_shops, load_settings  # noqa: E402
from connector.domain.model import Address, Order, OrderLine  # noqa: E402
from connector.domain.routing import Router  # noqa: E402
from connector.store import Store  # noqa: E402
from routing import SHOP, fixed_now, make_settings, stocked_skus  # noqa: E402
from webhooks import (  # noqa: E402
    Gunicorn, LoadResult, build_request, init_and_seed, make_deliveries, run_load, write_config,
)

TARGET_ROUTE_MS = 50.0
TARGET_P99_MS = 50.0


def timed_write_lock(holds: list[float]) -> None:
    """Record how long every ``Store.write`` transaction in this process lasts."""
    original = Store.write

    @contextlib.contextmanager
    def write(self):
        started = time.perf_counter()
        try:
            with original(self) as store:
                yield store
        finally:
            holds.append(time.perf_counter() - started)

    Store.write = write


def big_payload(rng: random.Random, lines: int, now: datetime) -> dict:
    """A valid Shopify orders/create body with ``lines`` minimal line items."""
    order_id = 8_000_000_000_000 + rng.randrange(10**9)
    payload = sandbox.shopify_order(rng, order_id, 90_000 + rng.randrange(9_000), now, lines=1)
    skus = stocked_skus()
    payload["line_items"] = [{"id": order_id * 10_000 + i, "sku": skus[i % len(skus)], "quantity": 1,
                              "current_quantity": 1, "title": "x", "requires_shipping": True}
                             for i in range(lines)]
    return payload


def p(values: list[float], q: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(round(q * (len(data) - 1))))] * 1000 if data else float("nan")


# ---------------------------------------------------------------- (a)


def bench_route(sizes: list[int], repeat: int, multiplier: int) -> bool:
    now = fixed_now()
    network = file_shops(make_settings(now, ":memory:"))[SHOP].network
    router = Router(network)
    sellable = {(node, sku): qty * multiplier for node, skus in sandbox.DEMO_STOCK[SHOP].items()
                for sku, qty in skus.items()}
    skus = stocked_skus()
    met = True
    for size in sizes:
        order = Order(SHOP, "1", "#1", "shopify", now, now, Address("US", "NY", "10012"),
                      tuple(OrderLine(str(i), skus[i % len(skus)], 1) for i in range(size)))
        router.route(order, "nyc-metro", sellable, {}, now)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = router.route(order, "nyc-metro", sellable, {}, now)
            times.append(time.perf_counter() - t0)
        median = statistics.median(times) * 1000
        line = (f"    Router.route {size:>5} lines: median {median:6.1f} ms, best {min(times) * 1000:6.1f} ms "
                f"({len(result.routed)} routed, {len(result.exceptions)} exceptions)")
        if size == 1000:
            met = median < TARGET_ROUTE_MS
            line += f"   target < {TARGET_ROUTE_MS:.0f} ms: {'met' if met else 'MISSED'}"
        print(line)
    return met


def bench_process(workdir: Path, sizes: list[int], multiplier: int) -> None:
    workdir.mkdir(parents=True)
    config_path, secret, _ = write_config(workdir, process_inbox=False)
    init_and_seed(config_path, multiplier)
    container = build(load_settings(config_path))
    holds: list[float] = []
    timed_write_lock(holds)
    store = container.open_store()
    rng = random.Random(7)
    try:
        for size in sizes:
            hook = sandbox.shopify_webhook(secret, big_payload(rng, size, container.clock()),
                                           webhook_id=str(uuid.UUID(int=rng.getrandbits(128))))
            container.inbox.ingest(store, "shopify", hook.body, hook.headers)
            holds.clear()
            t0 = time.perf_counter()
            report = container.inbox.process(store)
            elapsed = time.perf_counter() - t0
            print(f"    Inbox.process, one {size:>5}-line delivery ({len(hook.body) / 1024:.0f} KB): "
                  f"{elapsed * 1000:6.1f} ms, {report.statuses}; write lock held {len(holds)}x, "
                  f"longest {max(holds) * 1000:.1f} ms")
    finally:
        store.close()


# ---------------------------------------------------------------- (b)


def drain(config_path: Path, stop_file: Path, holds_file: Path) -> int:
    """The drainer process: Inbox.process every 50 ms until ``stop_file`` exists."""
    container = build(load_settings(config_path))
    holds: list[float] = []
    timed_write_lock(holds)
    store = container.open_store()
    try:
        while not stop_file.exists():
            container.inbox.process(store)
            time.sleep(0.05)
    finally:
        store.close()
        holds_file.write_text(json.dumps(holds))
    return 0


def bench_load(workdir: Path, args) -> bool:
    workdir.mkdir(parents=True)
    config_path, secret, _ = write_config(workdir, process_inbox=False)
    init_and_seed(config_path, args.stock_multiplier)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CONNECTOR_") or k == "CONNECTOR_ENCRYPTION_KEYS"}
    env["CONNECTOR_CONFIG"] = str(config_path)
    env["PYTHONPATH"] = str(REPO)
    stop_file, holds_file = workdir / "stop", workdir / "holds.json"
    app = Gunicorn("connector.web:create_app()", 2, 8, env, REPO, workdir / "gunicorn.log")
    drainer = None
    ingest_store = None
    try:
        app.wait_healthy()
        drainer = subprocess.Popen([sys.executable, __file__, "--drain", str(config_path), str(stop_file),
                                    str(holds_file)], env=env)
        container = build(load_settings(config_path))
        ingest_store = container.open_store()
        deliveries = make_deliveries(args.count, secret, 0, args.seed)  # 0: 1-4 lines each, as the demo
        requests = [(k, build_request("/webhooks/shopify", f"127.0.0.1:{app.port}", h, b)) for k, h, b in deliveries]
        rng = random.Random(args.seed)
        phases: dict[str, list[LoadResult]] = {"baseline": [], "large": []}
        big_stored = []
        cursor = 0
        for round_ in range(args.rounds):
            for phase in ("baseline", "large"):
                stop = threading.Event()

                def feed_big() -> None:
                    while not stop.wait(args.big_every if big_stored else 0.2):
                        hook = sandbox.shopify_webhook(secret, big_payload(rng, args.big_lines, container.clock()),
                                                       webhook_id=str(uuid.UUID(int=rng.getrandbits(128))))
                        outcome = container.inbox.ingest(ingest_store, "shopify", hook.body, hook.headers)
                        big_stored.append(outcome.status)

                feeder = threading.Thread(target=feed_big, daemon=True) if phase == "large" else None
                if feeder:
                    feeder.start()
                chunk = requests[cursor:cursor + args.count // (2 * args.rounds)]
                cursor += len(chunk)
                result = run_load(f"{phase} r{round_ + 1}", app, chunk, args.concurrency, args.duration, False)
                stop.set()
                if feeder:
                    feeder.join(30)
                phases[phase].append(result)
                print("    " + result.line())
                time.sleep(1.0)  # let the drainer finish the phase's work before the next one
        stop_file.write_text("stop")
        drainer.wait(120)
        holds = json.loads(holds_file.read_text())
        met = True
        print()
        for phase, parts in phases.items():
            total = LoadResult.combined(phase, parts)
            errors = total.sent - total.ok
            ok = total.pct(0.99) < TARGET_P99_MS and errors == 0
            met = met and ok
            print(f"    {phase:<9} all rounds: {total.sent} webhooks, p50 {total.pct(0.5):.1f} ms, "
                  f"p99 {total.pct(0.99):.1f} ms, max {total.pct(1.0):.1f} ms, errors {errors}"
                  f"   target p99 < {TARGET_P99_MS:.0f} ms: {'met' if ok else 'MISSED'}")
        print(f"    large orders stored meanwhile: {len(big_stored)} x {args.big_lines} lines "
              f"(answers {sorted(set(big_stored))})")
        print(f"    drainer write-lock holds: {len(holds)}, p50 {p(holds, 0.5):.1f} ms, p99 {p(holds, 0.99):.1f} ms, "
              f"max {p(holds, 1.0):.1f} ms")
        return met
    finally:
        if not stop_file.exists():
            stop_file.write_text("stop")
        if drainer is not None and drainer.poll() is None:
            try:
                drainer.wait(30)
            except Exception:  # noqa: BLE001 - the bench must not leave it running
                drainer.kill()
        if ingest_store is not None:
            ingest_store.close()
        app.stop()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--drain"]:
        return drain(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--stock-multiplier", type=int, default=100)
    parser.add_argument("--big-lines", type=int, default=3300)
    parser.add_argument("--big-every", type=float, default=1.0, help="seconds between large orders (phase large)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--count", type=int, default=8_000, help="small webhooks at most, over all phases")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}; load average {load_average()}; CPU idle {cpu_idle_percent():.0f}%")
    print("(a) routing and processing one large order")
    route_met = bench_route([1000, args.big_lines], args.repeat, args.stock_multiplier)
    workdir = Path(tempfile.mkdtemp(prefix="bench-large-"))
    try:
        bench_process(workdir / "a", [1000, args.big_lines], args.stock_multiplier)
        print(f"(b) small webhooks over HTTP while {args.big_lines}-line orders are processed (and without)")
        load_met = bench_load(workdir / "b", args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if route_met and load_met else 1


if __name__ == "__main__":
    sys.exit(main())
