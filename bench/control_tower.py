"""The control tower's pages for a big shop: server time of the inventory page (first page,
filtered by SKU text, by category, by node, the at-risk rows, a deep page, a SKU's page)
and of the home page, beside a baseline measured in the same run. Target: p95 < 200 ms.

    .venv/bin/python bench/control_tower.py                      # the defaults (built once, then cached)
    .venv/bin/python bench/control_tower.py --fresh --requests 100
    .venv/bin/python bench/control_tower.py --skus 2000 --orders 10000   # a quick look

The shop (10 nodes, 8 regions, 40 SKU rules in 8 categories, 20,000 SKUs stocked at every
node: 200,000 stock rows) goes in as every shop does (``shop_config.import_documents``).
Then 100,000 orders over 90 days through the store's own writes, in batches of one
transaction each: the order and its lines (``upsert_order``), its routing decisions
(``save_decisions``, which also moves the metric counters), ``shipped`` orders' shipment
facts (``services.shipments.record_shipment``: shipped, most delivered, a few damaged,
lost or returned), the last two days' orders open with their reservations
(``reserve_many``, at a node with the units free, as routing reserves), one in a hundred
of those an exception. Then the nightly planning: forecasts
from those orders (each SKU × region's weekly units over the last eight weeks, saved as
the forecast saves them), the allocation (which saves the per node × SKU targets the
inventory page reads), and 400 transfers, approved or in transit.

The database is cached under the system temp dir, keyed by the parameters and the
migrations (``--fresh`` rebuilds it); the pages only read it.

Timing: a user of the shop signs in through the login form with Flask's test client, so
every figure is the app's own time for a request (routing, view, SQL, template,
session), with no network: one warm-up, then --requests timed GETs per page;
wall-clock p50/p95/max and the p95 of this process's CPU time per request.

Also measured: what keeping the per node × SKU table current costs a sync (one node's
20,000 rows replaced as the sync service replaces them, then settled; nothing, a tenth or
every SKU changed) and the allocation run that saves the targets.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from _host import cpu_idle_percent, load_average, machine  # bench/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connector import sandbox  # noqa: E402
from connector.bootstrap import build  # noqa: E402
from connector.config import settings_from_dict  # noqa: E402
from connector.domain.model import Address, ExceptionReason, LineDecision, Order, OrderLine  # noqa: E402
from connector.domain.shipments import ShipmentFact  # noqa: E402
from connector.inventory_store import Filters, InventoryStore  # noqa: E402
from connector.services.shipments import record_shipment  # noqa: E402
from connector.store import Store  # noqa: E402
from connector.web import create_app  # noqa: E402
from settings_pages import Times, percentile, sign_in, summary  # noqa: E402  (the same login and figures)

SHOP = "bench-big-shop"  # settings_pages.sign_in signs in its user: the same shop id and email
EMAIL = "owner@bench-big-shop.example"
PASSWORD = "bench password, long enough"
TARGET_P95_MS = 200.0
RULES = 40
CATEGORIES = 8
OPEN_DAYS = 2  # orders of the last two days are still open (reserved); older ones shipped
BATCH = 5_000  # orders per write transaction
CARRIERS = ["UPS", "USPS", "FedEx", "DHL"]


# ---------------------------------------------------------------- the shop


def shop_document(nodes: int, regions: int) -> dict:
    region_ids = [f"region-{i}" for i in range(regions)]
    node_ids = [f"node-{i:02d}" for i in range(nodes)]
    rng = random.Random(5)
    region_docs = [{"id": r, "name": f"Region {i}", "promise_days": 2 + i % 4,
                    "postal_prefixes": [f"US:{100 + i * 11 + k}" for k in range(4)], "fallback": region_ids[-1]}
                   for i, r in enumerate(region_ids[:-1])]
    region_docs.append({"id": region_ids[-1], "name": "Everywhere else", "promise_days": 7, "countries": ["US"]})
    node_docs = []
    for i, node in enumerate(node_ids):
        # The hub reaches every region; each other node two or three, its own first.
        served = region_ids if i == 0 else sorted({region_ids[i % regions], *rng.sample(region_ids, 2)})
        node_docs.append({
            "id": node, "name": "Central warehouse" if i == 0 else f"Node {i} ({['3PL', 'micro-warehouse', 'pop-up store', 'partner'][i % 4]})",
            "kind": "central_warehouse" if i == 0 else ["3pl", "micro_warehouse", "event_storage", "local_partner"][i % 4],
            "role": "evergreen", "capabilities": ["fragile"], "cutoff": "14:00", "priority": 10 + i,
            "lanes": [{"region": r, "transit_days": 1 + (0 if r == region_ids[i % regions] else rng.randrange(1, 4)),
                       "cost_per_order": round(rng.uniform(4, 12), 2)} for r in served],
        })
    rules = [{"pattern": f"CT-{i:02d}-*", "category": f"category-{i % CATEGORIES}",
              "unit_value": round(rng.uniform(8, 60), 2)} for i in range(RULES)]
    return {
        "platform": "shopify", "shop_domain": f"{SHOP}.myshopify.com", "webhook_secret": "bench-webhook-secret",
        "timezone": "America/New_York", "default_region": region_ids[-1],
        "regions": region_docs, "nodes": node_docs, "skus": rules,
        "planning": {"hub": node_ids[0], "lead_time_days": 7, "supplier_lead_time_days": 21, "horizon_weeks": 2},
        "rebalance": {"min_transfer_units": 6,
                      "lanes": [{"from_node": node_ids[0], "to_node": n, "cost_per_unit": 0.5, "lead_days": 3}
                                for n in node_ids[1:]]},
        "routing": {"mode": "normal", "modes": {"normal": {"rules": ["single_shipment", "fastest", "cheapest"]}}},
    }


def sku_name(i: int) -> str:
    return f"CT-{i % RULES:02d}-{i // RULES:05d}"


def build_database(path: Path, args) -> dict:
    """The shop, its stock, orders, shipments, plan and transfers; returns build timings."""
    timings: dict[str, float] = {}
    config = sandbox.demo_config(datetime.now(timezone.utc), str(path), "unused", "unused")
    del config["shops"]
    config["web"] |= {"process_inbox": False}
    container = build(settings_from_dict(config, source="bench"))
    container.init_database()
    document = shop_document(args.nodes, args.regions)
    store = container.open_store()
    rng = random.Random(args.seed)
    now = container.clock()
    try:
        container.shop_config.import_documents(store, {SHOP: document}, "bench", replace=False)
        container.users.add(store, EMAIL, PASSWORD, SHOP)
        shop = container.shops.require(SHOP)
        node_ids = sorted(shop.network.nodes)
        skus = [sku_name(i) for i in range(args.skus)]

        started = time.perf_counter()
        free: dict[tuple[str, str], int] = {}  # (node, sku) -> units not reserved yet
        with store.write():
            for node in node_ids:
                hub = node == node_ids[0]
                rows = []
                for sku in skus:
                    units = rng.randrange(50, 400) if hub else (0 if rng.random() < 0.15 else rng.randrange(1, 60))
                    rows.append((sku, units, 0, units))
                    free[(node, sku)] = units
                store.replace_node_stock(SHOP, node, rows, "bench", now)
                InventoryStore(store).stock_changed(SHOP, [node], synced={node: skus})  # as the sync service does
        timings["stock"] = time.perf_counter() - started

        # Popular SKUs sell far more than the long tail (a Zipf-like 1 / rank weight).
        weights = [1 / (rank + 1) ** 0.9 for rank in range(args.skus)]
        order_skus = rng.choices(skus, weights=weights, k=args.orders * 3)
        regions = sorted(shop.network.regions)
        home = {r: next((n for n in node_ids[1:] if r in shop.network.nodes[n].lanes), node_ids[0]) for r in regions}
        started = time.perf_counter()
        picked = iter(order_skus)
        recent: dict[tuple[str, str], int] = {}  # units sold per SKU × region in the last eight weeks
        for first in range(0, args.orders, BATCH):
            with store.write():
                for i in range(first, min(first + BATCH, args.orders)):
                    placed = now - timedelta(days=args.days) + timedelta(days=args.days * i / args.orders)
                    region = rng.choice(regions)
                    count = rng.choices([1, 2, 3], weights=[60, 30, 10])[0]
                    lines = tuple(OrderLine(str(n + 1), next(picked), rng.choice([1, 1, 1, 2])) for n in range(count))
                    if placed >= now - timedelta(weeks=8):
                        for line in lines:
                            recent[(line.sku, region)] = recent.get((line.sku, region), 0) + line.quantity
                    shipped = placed < now - timedelta(days=OPEN_DAYS)
                    order = Order(SHOP, str(100_000 + i), f"#{10_000 + i}", "shopify", placed, placed,
                                  Address("US", "NY", "10012"), lines, state="fulfilled" if shipped else "open")
                    store.upsert_order(order, region, placed)
                    # As routing would: the region's node when it has every line, else the hub;
                    # one open order in a hundred is an exception (older ones were resolved).
                    node = home[region] if rng.random() < 0.8 else node_ids[0]
                    if not shipped and any(free.get((node, l.sku), 0) < l.quantity for l in lines):
                        node = node_ids[0]
                    exception = not shipped and (rng.random() < 0.01 or any(
                        free.get((node, l.sku), 0) < l.quantity for l in lines))
                    decisions = [LineDecision(l.line_id, l.sku, l.quantity, None if exception else node,
                                              "exception" if exception else "fastest",
                                              "no node had it" if exception else "bench",
                                              ExceptionReason.PARTIAL_STOCK if exception else None) for l in lines]
                    store.save_decisions(SHOP, order.order_id, "normal", region, decisions, placed)
                    store.set_order_status(SHOP, order.order_id, "exception" if exception else "routed")
                    if exception:
                        continue
                    if shipped:
                        out = placed + timedelta(hours=rng.uniform(2, 40))
                        arrived = out + timedelta(days=rng.uniform(1, 6)) if out < now - timedelta(days=6) else None
                        record_shipment(store, SHOP, order.order_id, node, ShipmentFact(
                            source="shopify", shipped_at=out, delivered_at=arrived, carrier=rng.choice(CARRIERS),
                            tracking_number=f"1Z{i:010d}", first_attempt_ok=arrived and rng.random() > 0.03,
                            damaged=rng.random() < 0.005, lost=rng.random() < 0.002, returned=rng.random() < 0.01,
                            in_full=True), out)
                    else:
                        store.reserve_many(SHOP, order.order_id,
                                           [(l.line_id, node, l.sku, l.quantity) for l in lines], placed)
                        for line in lines:
                            free[(node, line.sku)] -= line.quantity
        timings["orders"] = time.perf_counter() - started

        # The forecast as the nightly job would save it, from the same orders: each SKU ×
        # region's units per week over the last eight weeks (Planning.forecast itself is not
        # run: its category reference is quadratic in a catalogue of new SKUs, see docs/BENCHMARKS.md).
        started = time.perf_counter()
        with store.write():
            store.save_forecasts(SHOP, ((sku, region, units / 8, math.sqrt(units / 8), "ewma", 13)
                                        for (sku, region), units in sorted(recent.items())), now)
        timings["forecast"] = time.perf_counter() - started
        timings["allocate"], timings["save_plans"], timings["save_plans_lock"] = timed_allocation(container, store)

        started = time.perf_counter()
        with store.write():
            for n in range(400):
                to_node = rng.choice(node_ids[1:])
                transfer_id = store.add_transfer(SHOP, sku=rng.choice(order_skus[:5000]), from_node=node_ids[0],
                                                 to_node=to_node, units=rng.randrange(6, 60), unit_cost=0.5,
                                                 lead_days=3, status="approved", emergency=False,
                                                 approval_reason="", now=now - timedelta(days=n % 5))
                if n % 2:
                    store.set_transfer_status(transfer_id, expected="approved", status="in_transit",
                                              now=now - timedelta(days=n % 3))
        timings["transfers"] = time.perf_counter() - started
    finally:
        store.close()
    return timings


def timed_allocation(container, store) -> tuple[float, float, float]:
    """(the whole allocation run, of which saving the per node × SKU targets, of which the
    write transaction that saves them held the write lock), seconds. (The allocation's own
    rows are saved in ``db.atomic()``, not ``store.write()``: only the targets' hold is counted.)"""
    spent, held = [], []
    save_plans, write = InventoryStore.save_plans, Store.write

    def timed(self, *a, **k):
        started = time.perf_counter()
        try:
            return save_plans(self, *a, **k)
        finally:
            spent.append(time.perf_counter() - started)

    @contextlib.contextmanager
    def timed_write(self):
        started = time.perf_counter()
        with write(self) as inner:
            yield inner
        held.append(time.perf_counter() - started)

    InventoryStore.save_plans, Store.write = timed, timed_write
    try:
        started = time.perf_counter()
        container.planning.allocate(store, SHOP)
        return time.perf_counter() - started, sum(spent), max(held, default=0.0)
    finally:
        InventoryStore.save_plans, Store.write = save_plans, write


def cached_database(args) -> tuple[Path, dict, bool]:
    """The database for these parameters: (path, build timings, built now?)."""
    # The schema is part of the key: a database of an older connector/store.py is rebuilt.
    schema = hashlib.sha256((REPO / "connector" / "store.py").read_bytes()).hexdigest()
    key = hashlib.sha256(json.dumps([args.skus, args.nodes, args.regions, args.orders, args.days, args.seed,
                                     schema]).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"bench-control-tower-{key}"
    done = folder / "built.json"
    if args.fresh and folder.exists():
        shutil.rmtree(folder)
    if done.exists():
        meta = json.loads(done.read_text())
        os.environ["CONNECTOR_ENCRYPTION_KEYS"] = meta["key"]  # the shop's secrets were stored with it
        return folder / "bench.db", meta["timings"], False
    if folder.exists():
        shutil.rmtree(folder)  # a build that did not finish
    folder.mkdir(parents=True)
    timings = build_database(folder / "bench.db", args)
    done.write_text(json.dumps({"key": os.environ["CONNECTOR_ENCRYPTION_KEYS"], "timings": timings}))
    return folder / "bench.db", timings, True


# ---------------------------------------------------------------- measuring


def container_for(path: Path):
    config = sandbox.demo_config(datetime.now(timezone.utc), str(path), "unused", "unused")
    del config["shops"]
    config["web"] |= {"process_inbox": False}
    return build(settings_from_dict(config, source="bench"))


def measure(client, url: str, n: int) -> tuple[Times | None, str]:
    first = client.get(url)
    if first.status_code != 200:
        return None, f"{first.status_code}"
    times = Times()
    for _ in range(n):
        response = times.timed(lambda: client.get(url))
        if response.status_code != 200:
            return None, f"{response.status_code}"
    return times, ""


def sync_cost(path: Path, node: str) -> list[tuple]:
    """(case, seconds to replace one node's stock rows as a sync does, seconds to settle the
    node × SKU table after it) on a copy of the database: nothing changed, a tenth of the
    SKUs changed, every SKU changed."""
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-control-tower-sync-") as tmp:
        copy = Path(tmp) / "copy.db"
        with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
            source.backup(target)
        container = container_for(copy)
        store = container.open_store()
        try:
            current = store.conn.execute("SELECT sku, available FROM stock WHERE shop_id = ? AND node_id = ? "
                                         "ORDER BY sku", (SHOP, node)).fetchall()
            for case, every in (("unchanged", 0), ("a tenth changed", 10), ("all changed", 1)):
                rows = [(sku, units + (1 if every and i % every == 0 else 0), 0,
                         units + (1 if every and i % every == 0 else 0)) for i, (sku, units) in enumerate(current)]
                with store.write():
                    started = time.perf_counter()
                    store.replace_node_stock(SHOP, node, rows, "bench", container.clock())
                    replaced = time.perf_counter()
                    InventoryStore(store).stock_changed(SHOP, [node], synced={node: [r[0] for r in rows]})
                    settled = time.perf_counter()
                results.append((case, replaced - started, settled - replaced))
                current = [(sku, units) for sku, units, _, _ in rows]
            results.append(("allocation again", *timed_allocation(container, store)))
        finally:
            store.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--regions", type=int, default=8)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page (at least 50 for a p95)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached database")
    args = parser.parse_args(argv)
    if args.skus < RULES or args.nodes < 2 or args.regions < 2 or args.orders < 1 or args.requests < 2:
        parser.error(f"at least {RULES} SKUs, 2 nodes, 2 regions, 1 order and 2 requests")

    print(f"machine: {machine()}; load {load_average()}; CPU idle {cpu_idle_percent():.0f}%")
    started = time.perf_counter()
    path, timings, built = cached_database(args)
    took = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
    print(f"shop {SHOP}: {args.nodes} nodes, {args.regions} regions, {args.skus:,} SKUs at every node "
          f"({args.skus * args.nodes:,} stock rows), {args.orders:,} orders over {args.days} days; "
          + (f"built in {time.perf_counter() - started:.1f} s ({took})" if built else f"cached at {path} ({took})"))

    container = container_for(path)
    store = container.open_store()
    try:
        counts = {t: store.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in (
            "orders", "order_lines", "routing_decisions", "reservations", "shipment_facts", "forecasts",
            "allocations", "node_sku_plans", "transfers")}
        shop = container.shops.require(SHOP)
        rows = InventoryStore(store).count(SHOP, Filters(), [])
        risky = store.conn.execute("SELECT sku FROM node_sku_plans WHERE shop_id = ? AND risk <= 1 "
                                   "ORDER BY cover_days LIMIT 1", (SHOP,)).fetchone()
        moving = store.conn.execute("SELECT sku FROM transfers WHERE shop_id = ? AND status = 'in_transit' "
                                    "ORDER BY id LIMIT 1", (SHOP,)).fetchone()
    finally:
        store.close()
    print("rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    last_page = max(1, -(-rows // 50))
    sku = (moving or risky)[0]
    node = sorted(shop.network.nodes)[3]
    pages = [
        ("baseline: /healthz", "/healthz"),
        ("baseline: /settings/ (status page)", "/settings/"),
        ("home /", "/"),
        ("inventory, first page", "/inventory"),
        ("inventory, SKU text filter", "/inventory?sku=-0042"),
        ("inventory, category filter", "/inventory?category=category-3"),
        ("inventory, node filter", f"/inventory?node={node}"),
        ("inventory, node filter + deep page", f"/inventory?node={node}&page=300"),
        ("inventory, only at risk", "/inventory?at_risk=1"),
        (f"inventory, deep page ({last_page:,} of {last_page:,})", f"/inventory?page={last_page}"),
        (f"inventory, one SKU ({sku})", f"/inventory/{sku}"),
    ]
    app = create_app(container, start_worker=False)
    client = app.test_client()
    sign_in(client)
    ok = True
    print(f"\n{'page (GET), ms':<52} {'p50':>8} {'p95':>8} {'max':>8} {'cpu p95':>8}  n={args.requests}")
    for label, url in pages:
        times, failed = measure(client, url, args.requests)
        if times is None:
            ok = False
            print(f"{label:<52} FAILED: {failed}  ({url})")
            continue
        late = not label.startswith("baseline") and percentile(times, 0.95) * 1000 >= TARGET_P95_MS
        ok &= not late
        print(f"{label:<52} {summary(times)}" + ("  over target" if late else ""))

    print(f"\nsync of one node ({args.skus:,} rows replaced), ms: replace, then settle the node × SKU table")
    *syncs, (_, allocate, save_plans, lock) = sync_cost(path, node)
    for case, replaced, settled in syncs:
        print(f"  {case:<18} {replaced * 1000:8.0f} {settled * 1000:8.0f}")
    print(f"allocation run again, nothing changed: {allocate:.2f} s, of which saving the node × SKU targets and "
          f"checking the shop's stock rows {save_plans:.2f} s, holding the write lock {lock * 1000:.0f} ms")
    if "save_plans" in timings:
        print(f"first allocation run (all {args.skus:,} SKUs, every target new): {timings['allocate']:.2f} s, "
              f"of which saving the targets {timings['save_plans']:.2f} s, holding the write lock "
              f"{timings['save_plans_lock']:.2f} s")
    print(f"\ntarget: p95 < {TARGET_P95_MS:.0f} ms for the home and every inventory page: {'met' if ok else 'NOT met'}")
    print(f"load after: {load_average()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
