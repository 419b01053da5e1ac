"""Routing throughput, in process (no HTTP).

    .venv/bin/python bench/routing.py                    # 50,000 route() calls; 5,000 inbox orders
    .venv/bin/python bench/routing.py --orders 20000 --inbox 2000 --repeat 3
    .venv/bin/python bench/routing.py --profile          # + cProfile of both parts

(a) Routing decisions/s: ``Router.route`` for the sandbox Shopify shop
    (aurora-candles: 5 nodes, 5 regions) over generated 3-line domain ``Order``s
    (SKUs that are in DEMO_STOCK, destinations from the sandbox's weighted list),
    with a fixed realistic ``sellable`` map (DEMO_STOCK) and ``orders_today``
    (each node at a third of its daily capacity). Each timed iteration resolves
    the region (``RegionIndex.resolve``) and routes. Same-run baseline: the same
    loop doing the region resolution only. Rounds alternate baseline / routing.
(b) Inbox -> routed + reserved: a fresh SQLite file (init through the
    container), DEMO_STOCK x --stock-multiplier seeded, N signed orders/create
    deliveries put in through ``container.inbox.ingest`` (timed: ingest/s), then
    ``container.inbox.process(store)`` timed (orders/s). Checks: every delivery
    processed, ``store.reservation_totals_drift()`` empty. Same-run baseline: raw
    sqlite3 ``executemany`` of as many rows as processing wrote (orders,
    order_lines, routing_decisions, reservations), in as many transactions as
    processing committed, into a scratch table in a database with the same pragmas.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from _host import load_average, cpu_idle_percent, machine  # bench/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connector import sandbox  # noqa: E402
from connector.bootstrap import build  # noqa: E402
from connector.config import file_shops, settings_from_dict  # noqa: E402
from connector.domain.model import Address, Order, OrderLine  # noqa: E402
from connector.domain.regions import RegionIndex  # noqa: E402
from connector.domain.routing import Router  # noqa: E402

SHOP = sandbox.SHOPIFY_SHOP
TARGET_DECISIONS = 20_000
TARGET_ORDERS = 2_000


def fixed_now() -> datetime:
    """10:00 in New York today: before every node's cutoff, inside the pop-up's window."""
    today = datetime.now(timezone.utc).date()
    return datetime(today.year, today.month, today.day, 15, 0, tzinfo=timezone.utc)


def make_settings(now: datetime, db_path: str, shopify_secret: str = "bench-secret"):
    config = sandbox.demo_config(now, db_path, shopify_secret, "bench-woo-secret")
    config["web"] |= {"process_inbox": False}
    return settings_from_dict(config, source="bench")


# ---------------------------------------------------------------- (a) Router.route


def stocked_skus() -> list[str]:
    return sorted({sku for skus in sandbox.DEMO_STOCK[SHOP].values() for sku in skus})


def make_orders(count: int, lines: int, seed: int, now: datetime) -> list[Order]:
    rng = random.Random(seed)
    skus = stocked_skus()
    titles = {sku: title for sku, title, _price, _grams in sandbox.SHOPIFY_CATALOG}
    destinations = sandbox.SHOPIFY_DESTINATIONS
    weights = [d[-1] for d in destinations]
    orders = []
    for i in range(count):
        country, province, _city, postcode = rng.choices(destinations, weights=weights)[0][:-1]
        picked = rng.sample(skus, lines)
        order_lines = tuple(
            OrderLine(line_id=str(i * 10 + j), sku=sku, quantity=rng.choices([1, 2, 3], weights=[75, 20, 5])[0],
                      title=titles.get(sku, sku))
            for j, sku in enumerate(picked)
        )
        orders.append(Order(shop_id=SHOP, order_id=str(10_000_000 + i), number=f"#{1001 + i}", platform="shopify",
                            created_at=now, updated_at=now, ship_to=Address(country, province, postcode),
                            lines=order_lines))
    return orders


def bench_routing(n_orders: int, lines: int, repeat: int, seed: int) -> dict:
    now = fixed_now()
    settings = make_settings(now, ":memory:")
    network = file_shops(settings)[SHOP].network
    router = Router(network)
    index = RegionIndex(network.regions.values())
    default_region = network.default_region
    sellable = {(node, sku): qty for node, skus in sandbox.DEMO_STOCK[SHOP].items() for sku, qty in skus.items()}
    orders_today = {n.id: (n.daily_capacity or 0) // 3 for n in network.nodes.values()}
    orders = make_orders(n_orders, lines, seed, now)
    print(f"(a) network {SHOP}: {len(network.nodes)} nodes, {len(network.regions)} regions, "
          f"rules {[r.value for r in network.routing.current.rules]}; {n_orders} orders x {lines} lines; "
          f"sellable {len(sellable)} (node, sku) entries")

    def resolve_only() -> float:
        resolve = index.resolve
        t0 = time.perf_counter()
        for order in orders:
            resolve(order.ship_to, default_region)
        return time.perf_counter() - t0

    def route_all() -> tuple[float, list]:
        resolve, route = index.resolve, router.route
        results = []
        append = results.append
        t0 = time.perf_counter()
        for order in orders:
            append(route(order, resolve(order.ship_to, default_region), sellable, orders_today, now))
        return time.perf_counter() - t0, results

    route_all()  # warm caches (sku rules, zoneinfo)
    base_times, route_times, results = [], [], []
    for _ in range(repeat):
        base_times.append(resolve_only())
        elapsed, results = route_all()
        route_times.append(elapsed)
    routed = sum(len(r.routed) for r in results)
    exceptions = sum(1 for r in results for d in r.decisions if d.node_id is None)
    rules: dict[str, int] = {}
    for r in results:
        for d in r.decisions:
            rules[d.rule] = rules.get(d.rule, 0) + 1
    for i, (b, t) in enumerate(zip(base_times, route_times), 1):
        print(f"    round {i}: resolve-only {n_orders / b:10.0f} orders/s   resolve+route {n_orders / t:8.0f} orders/s"
              f"   ratio route/resolve time {t / b:6.1f}x")
    best = min(route_times)
    median = statistics.median(route_times)
    rate_best, rate_median = n_orders / best, n_orders / median
    ratio = median / statistics.median(base_times)
    print(f"    routing decisions/s (one per order line, as routing_decisions stores them): "
          f"median {rate_median * lines:.0f}, best {rate_best * lines:.0f}")
    print(f"    orders routed/s ({lines} lines each): median {rate_median:.0f}, best {rate_best:.0f}; "
          f"{median / n_orders * 1e6:.1f} us per order")
    print(f"    baseline region resolution only: median {n_orders / statistics.median(base_times):.0f}/s; "
          f"routing costs {ratio:.1f}x the resolution loop")
    print(f"    outcome: {routed} lines routed, {exceptions} exception lines; deciding rules {dict(sorted(rules.items()))}")
    met = rate_median * lines >= TARGET_DECISIONS
    print(f"    target >= {TARGET_DECISIONS} decisions/s: {'met' if met else 'MISSED'} "
          f"(as orders/s it would be {'met' if rate_median >= TARGET_DECISIONS else 'MISSED'})")
    return {"orders": orders, "router": router, "index": index, "sellable": sellable,
            "orders_today": orders_today, "now": now, "met": met}


# ---------------------------------------------------------------- (b) inbox -> routed + reserved


def seed_stock(container, multiplier: int) -> None:
    store = container.open_store()
    try:
        sandbox.seed_stock(store, container.clock(), shops=container.shops, multiplier=multiplier)
    finally:
        store.close()


def make_deliveries(count: int, secret: str, lines: int, seed: int) -> list[tuple[bytes, dict]]:
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    base = 6_000_000_000_000 + rng.randrange(10**9) * 1000
    out = []
    for i in range(count):
        payload = sandbox.shopify_order(rng, base + i, 1001 + i, now, lines=lines)
        hook = sandbox.shopify_webhook(secret, payload, webhook_id=str(uuid.UUID(int=rng.getrandbits(128))))
        out.append((hook.body, hook.headers))
    return out


def fresh_container(workdir: Path, multiplier: int):
    secret = secrets.token_hex(16)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{workdir / 'connector.db'}{suffix}").unlink(missing_ok=True)
    container = build(make_settings(datetime.now(timezone.utc), str(workdir / "connector.db"), secret))
    container.init_database()
    seed_stock(container, multiplier)
    return container, secret


def raw_executemany_baseline(workdir: Path, rows: int, transactions: int) -> float:
    """Insert ``rows`` rows of ~10 short columns in ``transactions`` commits, WAL +
    synchronous=FULL like Store.open."""
    path = workdir / "baseline.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE scratch (shop_id TEXT, order_id TEXT, line_id TEXT, sku TEXT, quantity INTEGER, "
                     "node_id TEXT, rule TEXT, mode TEXT, region_id TEXT, explanation TEXT, decided_at TEXT, "
                     "PRIMARY KEY (shop_id, order_id, line_id))")
        stamp = datetime.now(timezone.utc).isoformat()
        data = [(SHOP, str(1_000_000 + i // 3), str(i), "CANDLE-FIG", 1, "central", "fastest", "normal", "us-rest",
                 "1 x CANDLE-FIG from central; 3d to us-rest within its 5d promise; decided by fastest", stamp)
                for i in range(rows)]
        per = max(1, -(-rows // max(transactions, 1)))
        t0 = time.perf_counter()
        for start in range(0, rows, per):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO scratch VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", data[start:start + per])
            conn.execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()


def bench_inbox(workdir: Path, n: int, lines: int, multiplier: int, seed: int) -> dict:
    container, secret = fresh_container(workdir, multiplier)
    deliveries = make_deliveries(n, secret, lines, seed)
    mean_body = statistics.mean(len(b) for b, _ in deliveries)
    print(f"(b) fresh SQLite file, DEMO_STOCK x {multiplier}, {n} signed orders/create x {lines} lines "
          f"(mean body {mean_body / 1024:.2f} KB), processing.batch_size {container.settings.processing.batch_size}")
    store = container.open_store()
    try:
        t0 = time.perf_counter()
        statuses: dict[int, int] = {}
        for body, headers in deliveries:
            outcome = container.inbox.ingest(store, "shopify", body, headers)
            statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
        ingest_s = time.perf_counter() - t0
        print(f"    ingest: {n / ingest_s:8.0f} deliveries/s ({ingest_s * 1000 / n:.3f} ms each, one persistent "
              f"connection, one synchronous=FULL commit each); answers {statuses}")

        # Inbox.process sleeps processing.pause_between_batches_ms between batches
        # (so webhook inserts get the write lock); count that time separately.
        paused = [0, 0.0]
        original_pause = getattr(container.inbox, "pause", None)
        if original_pause is not None:
            def counting_pause(seconds: float) -> None:
                t = time.perf_counter()
                original_pause(seconds)
                paused[0] += 1
                paused[1] += time.perf_counter() - t
            container.inbox.pause = counting_pause
        t0 = time.perf_counter()
        report = container.inbox.process(store)
        process_s = time.perf_counter() - t0
        pending = store.count_webhooks("pending")
        processed = store.count_webhooks("processed")
        drift = store.reservation_totals_drift()
        counts = {t: store.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("orders", "order_lines", "routing_decisions", "reservations")}
        order_statuses = dict(store.conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall())
    finally:
        store.close()
    rows = sum(counts.values())
    transactions = -(-n // container.settings.processing.batch_size)
    base_s = raw_executemany_baseline(workdir, rows, transactions)
    rate = report.processed / process_s
    print(f"    process: {rate:8.0f} orders/s ({process_s * 1000 / max(report.processed, 1):.3f} ms each); "
          f"report processed {report.processed}, failed {report.failed}, retrying {report.retrying}; "
          f"outcomes {report.statuses}")
    if paused[0]:
        print(f"    of which {paused[0]} pauses between batches "
              f"(processing.pause_between_batches_ms {container.settings.processing.pause_between_batches_ms}): "
              f"{paused[1] * 1000:.0f} ms; without them {report.processed / (process_s - paused[1]):.0f} orders/s")
    print(f"    rows written {counts} = {rows}; order statuses {order_statuses}")
    print(f"    baseline raw executemany of {rows} rows in {transactions} commits: {base_s * 1000:.0f} ms "
          f"({rows / base_s:.0f} rows/s); processing took {process_s / base_s:.1f}x the baseline")
    all_processed = processed == n and pending == 0
    print(f"    checks: all processed {'yes' if all_processed else f'NO ({processed} processed, {pending} pending)'}; "
          f"reservation drift {'none' if not drift else drift[:5]}")
    met = rate >= TARGET_ORDERS
    print(f"    target >= {TARGET_ORDERS} orders/s: {'met' if met else 'MISSED'}")
    return {"ok": all_processed and not drift, "met": met}


# ---------------------------------------------------------------- profiles


def _print_profile(profiler: cProfile.Profile, title: str, top: int = 25) -> None:
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(15)
    print(f"--- cProfile: {title}")
    print(buf.getvalue())


def profile_all(workdir: Path, ctx: dict, inbox_n: int, lines: int, multiplier: int, seed: int) -> None:
    router, index, orders = ctx["router"], ctx["index"], ctx["orders"][:10_000]
    default_region = router.network.default_region
    profiler = cProfile.Profile()
    profiler.enable()
    for order in orders:
        router.route(order, index.resolve(order.ship_to, default_region), ctx["sellable"], ctx["orders_today"],
                     ctx["now"])
    profiler.disable()
    _print_profile(profiler, f"Router.route x {len(orders)}")

    pdir = workdir / "profile"
    pdir.mkdir(exist_ok=True)
    container, secret = fresh_container(pdir, multiplier)
    store = container.open_store()
    try:
        for body, headers in make_deliveries(inbox_n, secret, lines, seed + 1):
            container.inbox.ingest(store, "shopify", body, headers)
        profiler = cProfile.Profile()
        profiler.enable()
        container.inbox.process(store)
        profiler.disable()
    finally:
        store.close()
    _print_profile(profiler, f"Inbox.process x {inbox_n}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=50_000, help="(a) orders to route per round (default 50000)")
    parser.add_argument("--repeat", type=int, default=3, help="(a) alternating rounds (default 3)")
    parser.add_argument("--lines", type=int, default=3, help="lines per order (default 3)")
    parser.add_argument("--inbox", type=int, default=5_000, help="(b) deliveries to ingest and process (default 5000)")
    parser.add_argument("--stock-multiplier", type=int, default=100,
                        help="(b) seed DEMO_STOCK x N: ample stock (default 100)")
    parser.add_argument("--profile", action="store_true", help="afterwards, cProfile (a) on 10k orders and (b)")
    parser.add_argument("--profile-inbox", type=int, default=1000, help="deliveries for the (b) profile")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    idle = cpu_idle_percent()
    print(f"before start: CPU idle {idle:.0f}% over 1 s, load average {load_average()}"
          + ("  (other work is running on this machine: figures will be lower and noisier)" if idle < 85 else ""))
    workdir = Path(tempfile.mkdtemp(prefix="bench-routing-"))
    exit_code = 0
    try:
        ctx = None
        if not args.skip_a:
            ctx = bench_routing(args.orders, args.lines, args.repeat, args.seed)
        if not args.skip_b:
            result = bench_inbox(workdir, args.inbox, args.lines, args.stock_multiplier, args.seed)
            if not result["ok"]:
                exit_code = 1
        if args.profile:
            if ctx is None:
                ctx = bench_routing(min(args.orders, 10_000), args.lines, 1, args.seed)
            print()
            profile_all(workdir, ctx, args.profile_inbox, args.lines, args.stock_multiplier, args.seed)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average after: {load_average()}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
