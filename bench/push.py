"""Availability push to Shopify and WooCommerce, end to end, against local provider-shaped servers.

    .venv/bin/python bench/push.py                          # 20,000 SKUs x 2 locations, 5 % changed
    .venv/bin/python bench/push.py --skus 5000 --changed-share 0.2 --restore-rate 100
    .venv/bin/python bench/push.py --unknown-share 0.01     # + keys with no known value: read first (paced)
    .venv/bin/python bench/push.py --stale-share 0.1        # + orders the store took meanwhile: stale re-reads
    .venv/bin/python bench/push.py --variation-share 0.5    # Woo: half the SKUs are variations (per-parent batches)

One threaded ``http.server`` on 127.0.0.1:<free port> plays both storefronts, answering
from the in-memory fakes in ``adapters.fakes``:

* Shopify ``POST /admin/api/2026-04/graphql.json`` (``FakeShopifyAdmin``): a leaky cost
  bucket (maximumAvailable 1000, restoreRate --restore-rate points/s, real time). The
  requested cost is estimated like Shopify does: 10 per mutation, 1 per object in the
  selection, and for ``nodes(ids:)`` the per-item objects times the number of ids.
  Every answer carries ``extensions.cost``; a request the bucket cannot pay for is
  answered HTTP 200 ``{"errors": [{"extensions": {"code": "THROTTLED"}}]}``.
  ``inventorySetQuantities`` checks the 2026-04 shape (``@idempotent`` key,
  ``name: "available"``, ``changeFromQuantity`` on every quantity, <= 250), applies the
  compare-and-set (any stale quantity: nothing applied, ``CHANGE_FROM_QUANTITY_STALE``
  at its index) and replays the stored answer for a repeated idempotency key.
* WooCommerce (``FakeWooStore``) ``GET /wp-json/wc/v3/products?sku=``
  (``X-WP-TotalPages``) and ``POST /products/batch`` /
  ``/products/{parent}/variations/batch`` (413 above 100 items; per-item answers).

The real adapters and pushers (``ShopifyPusher``/``WooPusher`` over
``ShopifyInventory``/``WooCommerceStock`` on ``HttpClient``) run with real sleep and clock.
Shopify keys are SKU x location (2 locations by default); WooCommerce pushes one total
per SKU plus one meta figure per region (2 regions). Afterwards every changed value is
checked at the simulated store.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from _host import LocalServer, cpu_idle_percent, load_average, machine  # bench/ is on sys.path when a script runs
from adapters.fakes import FakeShopifyAdmin, FakeWooStore

REPO = Path(__file__).resolve().parent.parent
SHOP = "bench-shop.myshopify.com"
SHOPIFY_TOKEN = "shpat_bench_token_0000"
SHOPIFY_PATH = "/admin/api/2026-04/graphql.json"
WOO_PREFIX = "/wp-json/wc/v3"
WOO_KEY, WOO_SECRET = "ck_bench", "cs_bench"
ITEM_BASE = 40_000_000
PARENT_BASE = 9_000_000
REGIONS = ("nyc-metro", "us-rest")

def make_handler(shopify: FakeShopifyAdmin, woo: FakeWooStore):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 60

        def log_message(self, format, *args):  # noqa: A002 - quiet
            pass

        def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _woo(self, body: dict | None) -> None:
            parts = urlsplit(self.path)
            if not parts.path.startswith(WOO_PREFIX) or not self.headers.get("Authorization", "").startswith("Basic "):
                return self._send(404, b'{"code":"rest_no_route"}')
            status, headers, answer = woo.handle(self.command, parts.path[len(WOO_PREFIX):], parse_qs(parts.query),
                                                 body)
            self._send(status, answer, headers)

        def do_GET(self):  # noqa: N802
            self._woo(None)

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if urlsplit(self.path).path == SHOPIFY_PATH:
                if self.headers.get("X-Shopify-Access-Token") != SHOPIFY_TOKEN:
                    return self._send(401, b'{"errors":"[API] Invalid API key or access token"}')
                return self._send(200, shopify.handle(body))
            self._woo(body)

    return Handler


class Server(LocalServer):
    def __init__(self, shopify: FakeShopifyAdmin, woo: FakeWooStore):
        super().__init__("bench-push", make_handler(shopify, woo))


# ---------------------------------------------------------------- runs


def run_shopify(args, port: int, store: FakeShopifyAdmin, rng: random.Random) -> bool:
    from adapters.http import HttpClient, StaticToken
    from adapters.shopify_inventory import MAX_QUANTITIES_PER_CALL, ShopifyInventory
    from connector.services.storefront_push import ShopifyPusher

    locations = [f"gid://shopify/Location/{7000 + n}" for n in range(args.locations)]
    keys = [(f"gid://shopify/InventoryItem/{ITEM_BASE + i}", loc) for i in range(args.skus) for loc in locations]
    for n, key in enumerate(keys):
        store.levels[key] = (n * 2654435761) % 97
    changed = rng.sample(keys, round(len(keys) * args.changed_share))
    unknown = set(rng.sample(changed, round(len(changed) * args.unknown_share / max(args.changed_share, 1e-9))))
    stale = [k for k in changed if k not in unknown][:round(len(changed) * args.stale_share)]
    known = {k: v for k, v in store.levels.items() if k not in unknown}
    desired = dict(store.levels)
    for key in changed:
        desired[key] = store.levels[key] + rng.choice([-3, -2, -1, 1, 2, 3, 5]) if store.levels[key] >= 3 \
            else store.levels[key] + 4
    for key in stale:  # an order the store took that our inbox has not processed yet
        store.levels[key] -= 1
    stale_set = set(stale)
    # the reconciliation rule keeps the store's unexplained decrement of 1 off the store
    expected = {k: max(0, desired[k] - 1) if k in stale_set else desired[k] for k in changed}

    client = HttpClient(base_url=f"http://127.0.0.1:{port}", provider="shopify", min_interval=0.0,
                        auth=StaticToken("X-Shopify-Access-Token", "", token=SHOPIFY_TOKEN))
    inventory = ShopifyInventory(SHOP, client=client)
    before = dict(store.requests)
    started = time.perf_counter()
    outcome = ShopifyPusher(inventory).push(desired, known, {}, dry_run=False,
                                            reference_uri="gid://micro-fulfillment-connector/StockPush/bench")
    wall = time.perf_counter() - started
    client.close()
    served = {k: store.requests.get(k, 0) - before.get(k, 0) for k in store.requests}
    mutations = served.get("inventorySetQuantities", 0)
    target = math.ceil(len(changed) / MAX_QUANTITIES_PER_CALL)
    landed = sum(1 for k, v in expected.items() if store.levels[k] == v)
    print(f"Shopify: {args.skus:,} SKUs x {args.locations} locations = {len(keys):,} keys; {len(changed):,} changed "
          f"({args.changed_share:.1%}), {len(unknown):,} of them without a known value, {len(stale):,} decremented "
          f"at the store meanwhile; restoreRate {args.restore_rate:g}/s, bucket {store.maximum:g}")
    print(f"  inventorySetQuantities calls: {mutations} (ceil({len(changed):,}/{MAX_QUANTITIES_PER_CALL}) = "
          f"{target}{'' if mutations == target else '; more because of stale resends or throttled retries'})")
    print(f"  reads (nodes/inventoryLevels): {served.get('nodes', 0)}; inventoryActivate: "
          f"{served.get('inventoryActivate', 0)}; quantities sent {outcome.sent:,}; stale re-reads "
          f"{outcome.stale_rereads}")
    print(f"  throttled responses: {store.throttled}; client paced waits: {outcome.paced_waits} "
          f"({inventory.stats.paced_wait_s:.2f} s)")
    print(f"  failed calls: {store.errors} server errors, {len(outcome.failures)} keys failed; "
          f"landed {landed:,}/{len(expected):,} changed values")
    print(f"  wall time: {wall:.2f} s")
    return store.errors == 0 and not outcome.failures and landed == len(expected) and store.throttled == 0 and (
        mutations == target or bool(stale))


def run_woo(args, port: int, store: FakeWooStore, rng: random.Random) -> bool:
    from adapters.http import HttpClient
    from adapters.woocommerce_stock import BATCH_LIMIT, ConsumerKeyAuth, WooCommerceStock, WooItem, region_meta_key
    from connector.services.storefront_push import WooPusher

    skus = [f"BENCH-{i:06d}" for i in range(args.skus)]
    variations = set(rng.sample(range(args.skus), round(args.skus * args.variation_share)))
    items: dict[str, WooItem] = {}
    for i, sku in enumerate(skus):
        product_id = 100_000 + i
        parent = PARENT_BASE + i // 20 if i in variations else None  # up to 20 variations per parent
        stock = (i * 40503) % 89
        meta = {region_meta_key(r): str(stock // 2) for r in REGIONS}
        store.add_product(product_id, sku, stock, parent_id=parent, meta=meta)
        items[sku] = WooItem(product_id, parent, stock, True, meta)
    changed = rng.sample(skus, round(len(skus) * args.changed_share))
    known = {sku: item.stock_quantity for sku, item in items.items()}
    desired = dict(known)
    for sku in changed:
        desired[sku] = known[sku] + 3
    region_meta = {sku: {r: desired[sku] // 2 for r in REGIONS} for sku in skus}
    parents_touched = {items[s].parent_id for s in changed}
    target = sum(math.ceil(sum(1 for s in changed if items[s].parent_id == p) / BATCH_LIMIT) for p in parents_touched)

    client = HttpClient(base_url=f"http://127.0.0.1:{port}{WOO_PREFIX}", provider="woocommerce",
                        auth=ConsumerKeyAuth(WOO_KEY, WOO_SECRET), min_interval=0.0)
    started = time.perf_counter()
    outcome = WooPusher(WooCommerceStock(client=client)).push(desired, region_meta, known, {}, items, dry_run=False)
    wall = time.perf_counter() - started
    client.close()
    batches = store.requests.get("POST products/batch", 0) + store.requests.get("POST variations/batch", 0)
    landed = sum(1 for s in changed if store.products[store.by_sku[s]]["stock_quantity"] == desired[s])
    print(f"WooCommerce: {args.skus:,} SKUs ({len(variations):,} variations), {len(changed):,} changed "
          f"({args.changed_share:.1%}), {len(REGIONS)} region meta figures each")
    print(f"  batch calls: {batches} (ceil({len(changed):,}/{BATCH_LIMIT}) = {math.ceil(len(changed) / BATCH_LIMIT)}"
          + (f"; per parent: {target}" if variations else "") + ")")
    print(f"  reads (GET /products?sku=): {store.requests.get('GET products', 0)}")
    print(f"  failed calls: {store.errors}; items failed: {len(outcome.failures)}; "
          f"landed {landed:,}/{len(changed):,}")
    print(f"  wall time: {wall:.2f} s")
    return store.errors == 0 and not outcome.failures and landed == len(changed) and batches == target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--locations", type=int, default=2, help="Shopify locations per SKU (default 2)")
    parser.add_argument("--changed-share", type=float, default=0.05)
    parser.add_argument("--restore-rate", type=float, default=50.0, help="Shopify bucket restore, points/s")
    parser.add_argument("--unknown-share", type=float, default=0.0,
                        help="share of all keys (taken from the changed ones) with no known value: read first")
    parser.add_argument("--stale-share", type=float, default=0.0,
                        help="share of the changed keys the store decremented meanwhile (stale compare)")
    parser.add_argument("--variation-share", type=float, default=0.0, help="WooCommerce SKUs that are variations")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not (1 <= args.skus <= 1_000_000 and 0 < args.changed_share <= 1 and args.restore_rate > 0
            and 0 <= args.unknown_share <= args.changed_share and 0 <= args.stale_share <= 1
            and 0 <= args.variation_share <= 1 and 1 <= args.locations <= 20):
        parser.error("out of range: --skus 1..1e6, --changed-share (0,1], --unknown-share <= --changed-share, "
                     "shares in [0,1], --locations 1..20")
    sys.path.insert(0, str(REPO))

    print(f"machine: {machine()}")
    idle = cpu_idle_percent()
    print(f"before start: CPU idle {idle:.0f}% over 1 s, load average {load_average()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    try:
        head = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %ci"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        print(f"code: HEAD {head} (plus the working tree)")
    except (OSError, subprocess.SubprocessError):
        pass
    rng = random.Random(args.seed)
    shopify, woo = FakeShopifyAdmin(restore_rate=args.restore_rate), FakeWooStore()
    started = time.perf_counter()
    with Server(shopify, woo) as server:
        print(f"server: http://127.0.0.1:{server.port} (threaded, keep-alive)\n")
        ok = run_shopify(args, server.port, shopify, rng)
        print()
        ok = run_woo(args, server.port, woo, rng) and ok
    leftovers = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print(f"\n{'all checks passed' if ok else 'CHECKS FAILED'}; total {time.perf_counter() - started:.1f}s; "
          f"load average {os.getloadavg()[0]:.2f} at the end; threads left: {leftovers or 'none'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
