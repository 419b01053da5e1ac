"""What the automatic second look at exception lines costs, in a shop with many of them.

    .venv/bin/python bench/exceptions.py                # 1,000 exception orders
    .venv/bin/python bench/exceptions.py --orders 5000

A fresh SQLite file (the sandbox Shopify shop, its demo stock) gets --orders webhook
orders to New York City for more Cedar Hour candles than any node holds: each an
exception. Timed, each --repeat times:
- the periodic re-check when nothing changed (every order looked at without the write
  lock; the figure that matters: it must write nothing, and stay well under its minute);
- a hand count that brings the units for half of a change's batch (the hook routes, in
  the count's own transaction, the oldest orders it can and looks at the rest of the batch).
Printed: medians, the write-lock hold of the hand count, and the decision rows the
re-check wrote (must be 0).
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _host import cpu_idle_percent, load_average, machine  # bench/ is on sys.path when a script runs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector import sandbox  # noqa: E402
from connector.bootstrap import build  # noqa: E402
from connector.config import settings_from_dict  # noqa: E402
from connector.services.stock import set_manual_count  # noqa: E402

SHOP = sandbox.SHOPIFY_SHOP
SKU = "CANDLE-CEDAR"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}; load {load_average()}; CPU idle {cpu_idle_percent():.0f} %")
    with tempfile.TemporaryDirectory() as workdir:
        now = datetime.now(timezone.utc)
        secret = "bench-secret"
        container = build(settings_from_dict(sandbox.demo_config(now, str(Path(workdir) / "b.db"), secret, "w")))
        container.init_database()
        store = container.open_store()
        try:
            sandbox.seed_stock(store, now)
            for i in range(args.orders):
                order = sandbox.shopify_order(random.Random(i), 20_000 + i, 20_000 + i, now, lines=1)
                order["line_items"][0].update(sku=SKU, quantity=500, current_quantity=500)
                order["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
                hook = sandbox.shopify_webhook(secret, order)
                container.inbox.ingest(store, "shopify", hook.body, hook.headers)
            container.inbox.process(store)
            print(f"{len(store.open_exceptions(SHOP))} open exception lines; batch {container.exceptions.batch}")
            rows = lambda: store.conn.execute("SELECT count(*) FROM routing_decisions").fetchone()[0]  # noqa: E731

            rechecks, written = [], 0
            for _ in range(args.repeat):
                before, started = rows(), time.perf_counter()
                container.exceptions.recheck(store)
                rechecks.append((time.perf_counter() - started) * 1000)
                written += rows() - before
            print(f"re-check, nothing changed: median {statistics.median(rechecks):.0f} ms "
                  f"({statistics.median(rechecks) / args.orders:.2f} ms per order); decision rows written {written}")

            counts, routed = [], 0
            level = store.stock_level(SHOP, "central", SKU) or 0
            for _ in range(args.repeat):
                open_before = len(store.open_exceptions(SHOP))
                level += 500 * container.exceptions.batch // 2
                started = time.perf_counter()
                set_manual_count(store, SHOP, "central", SKU, level, container.clock(),
                                 routing=container.inbox.routing, stock_arrived=container.exceptions.stock_arrived)
                counts.append((time.perf_counter() - started) * 1000)
                routed += open_before - len(store.open_exceptions(SHOP))
            print(f"hand count routing the oldest of a batch (its write transaction): median "
                  f"{statistics.median(counts):.0f} ms; lines routed {routed} "
                  f"(expected {args.repeat * container.exceptions.batch // 2})")
        finally:
            store.close()


if __name__ == "__main__":
    main()
