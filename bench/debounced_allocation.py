"""The allocation a debounced push runs, in a large shop, against a full re-allocation.

    .venv/bin/python bench/debounced_allocation.py              # 20,000 SKUs, pushes of 3 SKUs
    .venv/bin/python bench/debounced_allocation.py --skus 5000 --named 50

After orders, the push is debounced and names only the orders' SKUs; the scheduler's
nightly and post-sync runs re-allocate the whole shop. A fresh SQLite file (init through
the container, the sandbox Shopify shop: 5 nodes, 5 regions) gets --skus synthetic SKUs
stocked at two nodes with a forecast in every region, on top of the sandbox's own.
Timed: ``Planning.allocate(store, shop)`` (every SKU, saved) and
``Planning.allocate(store, shop, named)`` for --named stocked SKUs (saved), each
repeated; the figure is the ratio of their medians in the same run.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _host import cpu_idle_percent, load_average, machine  # bench/ is on sys.path when a script runs
from routing import SHOP, fresh_container  # the same sandbox shop and fresh database as bench/routing


def seed_catalog(container, store, skus: int, rng: random.Random) -> list[str]:
    shop = container.shops.require(SHOP)
    nodes = sorted(shop.network.nodes)
    regions = sorted(shop.network.regions)
    now = container.clock()
    names = [f"BENCH-{i:05d}" for i in range(skus)]
    with store.db.atomic():
        for sku in names:
            for node in rng.sample(nodes, 2):
                units = rng.randrange(0, 60)
                store.set_stock(SHOP, node, sku, on_hand=units, committed=0, available=units, source="bench",
                                now=now)
    forecasts = [(r["sku"], r["region_id"], r["weekly"], r["sigma"], r["method"], r["weeks_of_history"])
                 for r in store.forecasts(SHOP)]
    forecasts += [(sku, region, round(rng.uniform(0.5, 12.0), 2), 1.5, "bench", 8) for sku in names for region in regions]
    store.save_forecasts(SHOP, forecasts, now)
    return names


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--named", type=int, default=3, help="SKUs a debounced push names (an order's lines)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"before start: CPU idle {cpu_idle_percent():.0f}% over 1 s, load average {load_average()}")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        container, _secret = fresh_container(Path(tmp), 1)
        store = container.open_store()
        try:
            names = seed_catalog(container, store, args.skus, rng)
            whole = container.planning.allocate(store, SHOP)  # warm (sku rules, arcs), and a saved baseline
            full = timed(lambda: container.planning.allocate(store, SHOP), max(2, args.repeat // 2))
            picks = [rng.sample(names, args.named) for _ in range(args.repeat * 10)]
            it = iter(picks)
            named = timed(lambda: container.planning.allocate(store, SHOP, next(it)), len(picks))
        finally:
            store.close()
    full_ms, named_ms = statistics.median(full) * 1e3, statistics.median(named) * 1e3
    print(f"shop {SHOP}: {args.skus} synthetic SKUs (+ the sandbox's), 2 stocked nodes each, "
          f"forecasts in every region; a full run re-allocates {whole.skus} SKUs")
    print(f"    full re-allocation (nightly / after a sync): median {full_ms:.0f} ms over {len(full)} runs")
    print(f"    debounced push's allocation of {args.named} SKUs: median {named_ms:.1f} ms, "
          f"p95 {statistics.quantiles(named, n=20)[-1] * 1e3:.1f} ms over {len(named)} runs")
    print(f"    ratio full / debounced: {full_ms / named_ms:.0f}x")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
