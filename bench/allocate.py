"""Regional allocation and transfer planning at catalogue scale, in process.

    .venv/bin/python bench/allocate.py                   # 20,000 SKUs x 10 nodes x 8 regions; 400-SKU LP sample
    .venv/bin/python bench/allocate.py --skus 5000 --sample 300 --repeat 5

(a) End to end: ``allocate`` (problem A with its dual prices, and problem B) for
    every SKU, then ``plan_transfers`` for every SKU, on one synthetic network:
    a central hub reaching 7 of 8 regions in 2-4 days, five regional nodes, a
    cold-storage node (the only one for cold-chain SKUs), a pop-up serving its
    event region inside its window, a degraded garage node. Demand is skewed
    (log-normal velocity, Dirichlet regional shares, a few launch SKUs); some SKUs
    have no stock at all. Arcs come from ``eligible_arcs`` (one call per SKU
    rule). Wall and CPU time per round (OR-Tools' min-cost flow is single-threaded).
(b) Same-sample baseline: problem A for --sample SKUs as one generic LP
    (scipy.optimize.linprog, HiGHS), built from the docstring formulation with
    sparse matrices, against ``allocate`` on the same SKUs. Objectives are
    compared per SKU. Speed ratios are generic / ours: against our share of
    ``allocate`` that is problem A (batching + A's flow + duals, timed inside one
    ``allocate`` call), against the OR-Tools solve alone, and against all of
    ``allocate`` (which also solves problem B and builds the result objects).
    Also one linprog call per SKU, for reference.

Money is in whole cents and demand in hundredths of a unit with whole-dollar
lost-sale costs, so the flow solver's cent rounding is exact and the objectives
must agree to float precision.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from _host import cpu_idle_percent, load_average, machine  # bench/ is on sys.path when a script runs

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connector.domain import allocation  # noqa: E402
from connector.domain.allocation import SkuProblem, allocate, eligible_arcs  # noqa: E402
from connector.domain.model import (  # noqa: E402
    Handling, Lane, Mode, ModePolicy, Network, Node, NodeStatus, Region, RoutingPolicy, Rule, SkuRule,
)
from connector.domain.rebalance import SkuPosition, TransferLane, plan_transfers  # noqa: E402

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
TARGET_SECONDS = 10.0
TARGET_RATIO = 20.0

REGIONS = {  # id: promise days
    "northeast": 2, "southeast": 3, "midwest": 3, "south": 3, "mountain": 4, "west": 2, "pacific-nw": 3, "canada": 5,
}
COLD = SkuRule("COLD-*", handling=frozenset({Handling.COLD_CHAIN}), max_transit_days=2)
FRAGILE = SkuRule("FRAG-*", handling=frozenset({Handling.FRAGILE}))
PLAIN = SkuRule("*")


def make_network() -> Network:
    def node(id, kind, lanes, caps=(), **kw):
        return Node(id, id, kind, "evergreen", {r: Lane(r, d, c) for r, (d, c) in lanes.items()},
                    capabilities=frozenset(caps), **kw)

    nodes = [
        node("hub", "central_warehouse", {"northeast": (2, 4.10), "southeast": (3, 4.60), "midwest": (2, 3.90),
                                          "south": (3, 4.40), "mountain": (4, 5.20), "west": (2, 5.80),
                                          "pacific-nw": (3, 5.50)}, caps={"fragile"}),
        node("ne-micro", "micro_warehouse", {"northeast": (1, 3.20), "southeast": (2, 4.80)}, caps={"fragile"}),
        node("west-3pl", "3pl", {"west": (1, 3.60), "pacific-nw": (2, 4.90), "mountain": (2, 5.10)}),
        node("south-3pl", "3pl", {"south": (1, 3.40), "southeast": (2, 4.20), "midwest": (3, 5.60)}),
        node("midwest-partner", "local_partner", {"midwest": (1, 3.30), "northeast": (2, 4.70), "mountain": (3, 6.10)}),
        node("pnw-micro", "micro_warehouse", {"pacific-nw": (1, 3.10), "west": (2, 4.40)}, caps={"fragile"}),
        node("canada-3pl", "3pl", {"canada": (2, 6.90), "northeast": (3, 7.40)}),
        node("cold-storage", "cold_storage", {"northeast": (1, 6.50), "midwest": (2, 7.20), "southeast": (2, 7.80)},
             caps={"cold_chain", "fragile"}),
        node("popup-nyc", "popup_hub", {"northeast": (0, 2.50)}, active_from=NOW - timedelta(days=2),
             active_until=NOW + timedelta(days=5)),
        node("garage", "garage", {"west": (2, 4.00), "mountain": (3, 4.50)}, status=NodeStatus.DEGRADED,
             status_note="stock counts typed in by hand, 3 days old"),
    ]
    regions = {r: Region(r, r, days) for r, days in REGIONS.items()}
    chain = (Rule.FASTEST, Rule.CHEAPEST)
    return Network("bench", "America/New_York", regions, {n.id: n for n in nodes}, (COLD, FRAGILE, PLAIN),
                   RoutingPolicy(Mode.NORMAL, {m: ModePolicy(chain) for m in Mode}))


def make_catalogue(n_skus: int, seed: int, network: Network):
    """SkuProblems and SkuPositions for ``n_skus`` synthetic SKUs, and the transfer lanes."""
    rng = np.random.default_rng(seed)
    arcs = {rule.pattern: eligible_arcs(network, rule, NOW) for rule in (COLD, FRAGILE, PLAIN)}
    regions = list(REGIONS)
    region_weight = np.array([0.30, 0.12, 0.14, 0.10, 0.05, 0.17, 0.08, 0.04])  # the big pocket is the northeast
    kind = rng.choice(["COLD", "FRAG", "SKU"], size=n_skus, p=[0.08, 0.22, 0.70])
    velocity = rng.lognormal(mean=1.6, sigma=1.2, size=n_skus)  # units per 4-week horizon, all regions
    shares = rng.dirichlet(region_weight * 6, size=n_skus)
    launch = rng.random(n_skus) < 0.02
    no_stock = rng.random(n_skus) < 0.05
    lost = rng.integers(8, 41, size=n_skus).astype(float)  # whole dollars: margin lost per missed sale
    stocked_at = {  # node -> (probability a SKU is stocked there, stock as a share of the SKU's demand)
        "hub": (0.95, 0.9), "ne-micro": (0.35, 0.35), "west-3pl": (0.35, 0.3), "south-3pl": (0.3, 0.25),
        "midwest-partner": (0.25, 0.25), "pnw-micro": (0.2, 0.2), "canada-3pl": (0.15, 0.15), "garage": (0.1, 0.2),
    }
    problems, positions = [], []
    for i in range(n_skus):
        sku = f"{kind[i]}-{i:06d}"
        rule = COLD if kind[i] == "COLD" else FRAGILE if kind[i] == "FRAG" else PLAIN
        demand = {r: round(float(velocity[i] * shares[i, j]), 2) for j, r in enumerate(regions)}
        if launch[i]:
            demand["northeast"] = round(demand["northeast"] * 4 + 20, 2)  # a drop with a live event in NYC
        total = sum(demand.values())
        stock: dict[str, int] = {}
        if not no_stock[i]:
            if rule is COLD:
                stock["cold-storage"] = int(rng.poisson(total * 1.1))
            else:
                for n, (p, share) in stocked_at.items():
                    if rng.random() < p:
                        stock[n] = int(rng.poisson(total * share))
                if launch[i]:
                    stock["popup-nyc"] = int(rng.poisson(40))
        problems.append(SkuProblem(sku, stock, arcs[rule.pattern], demand, float(lost[i])))
        # Rebalancing: each node's target is half its home regions' horizon demand (a two-week
        # lead time) plus a safety stock; the hub keeps a reserve floor.
        target, floor = {}, {}
        for n, node in network.nodes.items():
            if n == "hub" or n not in stock:
                continue
            home = sum(demand[r] for r, lane in node.lanes.items() if lane.transit_days <= 1)
            safety = math.ceil(0.2 * home)
            target[n], floor[n] = math.ceil(0.5 * home) + safety, safety
        if "hub" in stock:
            floor["hub"] = math.ceil(0.1 * total)
        positions.append(SkuPosition(sku, stock, target, floor, unit_value=float(lost[i]) * 1.5))
    lanes = [TransferLane("hub", n, 1.20 + 0.15 * k, 2 + k % 3) for k, n in enumerate(network.nodes) if n != "hub"]
    lanes += [TransferLane(a, b, 0.90, 1) for a, b in (("west-3pl", "pnw-micro"), ("pnw-micro", "west-3pl"),
                                                     ("ne-micro", "midwest-partner"), ("south-3pl", "midwest-partner"))]
    return problems, positions, lanes


# ---------------------------------------------------------------- (a) end to end


def run_end_to_end(problems, positions, lanes, repeat: int) -> dict:
    rounds = []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        allocations = allocate(problems)
        w1, c1 = time.perf_counter(), time.process_time()
        transfers = plan_transfers(positions, lanes, min_transfer_units=3, shortage_cost=6.0)
        w2, c2 = time.perf_counter(), time.process_time()
        rounds.append((w1 - w0, c1 - c0, w2 - w1, c2 - c1))
    for i, (wa, ca, wt, ct) in enumerate(rounds, 1):
        print(f"    round {i}: allocate {wa:6.2f} s wall {ca:6.2f} s CPU; plan_transfers {wt:5.2f} s wall "
              f"{ct:5.2f} s CPU; end to end {wa + wt:6.2f} s wall {ca + ct:6.2f} s CPU")
    wall = [wa + wt for wa, _, wt, _ in rounds]
    cpu = [ca + ct for _, ca, _, ct in rounds]
    return {"allocations": allocations, "transfers": transfers, "wall": statistics.median(wall),
            "cpu": statistics.median(cpu), "best": min(wall)}


def describe(problems, allocations, transfers) -> None:
    arcs = sum(len(p.arcs) for p in problems)
    units = sum(sum(p.stock.values()) for p in problems)
    demand = sum(sum(p.demand.values()) for p in problems)
    placed = sum(sum(a.by_region.values()) for a in allocations)
    unmet = sum(sum(a.unmet_demand.values()) for a in allocations)
    priced = sum(1 for a in allocations for v in a.opportunity_cost.values() if v > 0)
    prices = sum(len(a.opportunity_cost) for a in allocations)
    print(f"    instance: {len(problems)} SKUs, {arcs} eligible (SKU, node, region) arcs, {units} units in stock, "
          f"{demand:.0f} units of forecast")
    print(f"    outcome: B placed {placed} units ({units - placed} at nodes with no eligible arc); A leaves "
          f"{unmet:.0f} units of forecast unmet, expected cost {sum(a.expected_cost for a in allocations):,.2f}; "
          f"{priced} of {prices} (SKU, node) prices > 0")
    print(f"    transfers: {len(transfers)} planned, {sum(t.units for t in transfers)} units")


# ---------------------------------------------------------------- (b) generic LP baseline


def generic_lp(problems):
    """Problem A for all ``problems`` as one LP; returns (per-SKU objectives, linprog result)."""
    cols_c, cols_ub, cols_eq, ub_rows, eq_rows, bounds = [], [], [], [], [], []
    b_ub, constant, owner = [], [], []
    col = row_ub = row_eq = 0
    for k, p in enumerate(problems):
        nodes = sorted({*p.stock, *(a.node_id for a in p.arcs)})
        regions = sorted({*p.demand, *(a.region_id for a in p.arcs)})
        n_at = {n: row_ub + i for i, n in enumerate(nodes)}
        r_at = {r: row_eq + j for j, r in enumerate(regions)}
        for a in p.arcs:
            cols_c.append(a.unit_cost)
            bounds.append((0, None))
            cols_ub.append(col); ub_rows.append(n_at[a.node_id])
            cols_eq.append((col, 1.0)); eq_rows.append(r_at[a.region_id])
            owner.append(k)
            col += 1
        for r in regions:
            d = p.demand.get(r, 0.0)
            q = d - math.floor(d)
            for cost, upper in ((-p.lost_sale_cost, math.floor(d)), (-p.lost_sale_cost * q, 1 if q > 0 else 0)):
                cols_c.append(cost)
                bounds.append((0, upper))
                cols_eq.append((col, -1.0)); eq_rows.append(r_at[r])
                owner.append(k)
                col += 1
        b_ub.extend(p.stock.get(n, 0) for n in nodes)
        constant.append(p.lost_sale_cost * sum(p.demand.values()))
        row_ub += len(nodes)
        row_eq += len(regions)
    a_ub = sparse.csr_array((np.ones(len(cols_ub)), (ub_rows, cols_ub)), shape=(row_ub, col))
    a_eq = sparse.csr_array(([v for _, v in cols_eq], (eq_rows, [c for c, _ in cols_eq])), shape=(row_eq, col))
    res = linprog(np.array(cols_c), A_ub=a_ub, b_ub=np.array(b_ub, dtype=float), A_eq=a_eq, b_eq=np.zeros(row_eq),
                  bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"generic LP: {res.message}")
    per_sku = np.bincount(np.array(owner), weights=np.array(cols_c) * res.x, minlength=len(problems))
    return per_sku + np.array(constant), res


class StageClock:
    """Time spent in named module functions during a call (wrapped, then restored).
    How problem A alone is timed: allocate has no A-only entry point, and its
    batching (_batch, shared with B) plus _economic (A's graph, solve and duals)
    is exactly A's share of the work."""

    def __init__(self, module, names):
        self.module, self.names = module, names
        self.calls: dict[str, list[float]] = {n: [] for n in names}

    def __enter__(self):
        self.originals = {n: getattr(self.module, n) for n in self.names}
        for name, original in self.originals.items():
            def timed(*args, _name=name, _original=original, **kwargs):
                t0 = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.calls[_name].append(time.perf_counter() - t0)
            setattr(self.module, name, timed)
        return self

    def __exit__(self, *exc):
        for name, original in self.originals.items():
            setattr(self.module, name, original)


def run_baseline(problems, sample: int, seed: int, repeat: int) -> dict:
    rng = np.random.default_rng(seed + 1)
    chosen = [problems[i] for i in sorted(rng.choice(len(problems), size=min(sample, len(problems)), replace=False))]
    ours, ours_a, flow_a, generic, generic_solve = [], [], [], [], []
    for _ in range(repeat):
        with StageClock(allocation, ("_batch", "_economic", "solve_min_cost_flow")) as clock:
            t0 = time.perf_counter()
            allocations = allocate(chosen)
            ours.append(time.perf_counter() - t0)
        ours_a.append(clock.calls["_batch"][0] + clock.calls["_economic"][0])
        flow_a.append(clock.calls["solve_min_cost_flow"][0])  # allocate solves A first, then B
        with StageClock(sys.modules[__name__], ("linprog",)) as clock:
            t0 = time.perf_counter()
            objectives, res = generic_lp(chosen)
            generic.append(time.perf_counter() - t0)
        generic_solve.append(clock.calls["linprog"][0])
    t0 = time.perf_counter()
    for p in chosen:
        generic_lp([p])
    per_call = time.perf_counter() - t0
    mine = np.array([a.expected_cost for a in allocations])
    diff = float(np.max(np.abs(mine - objectives))) if len(chosen) else 0.0
    o, oa, fa = statistics.median(ours), statistics.median(ours_a), statistics.median(flow_a)
    g, gs = statistics.median(generic), statistics.median(generic_solve)
    print(f"(b) sample of {len(chosen)} SKUs: one LP with {res.x.size} columns; objectives ours "
          f"{mine.sum():,.4f} vs generic {objectives.sum():,.4f}, max per-SKU |difference| {diff:.2e}")
    print(f"    generic LP for A: build+solve median {g * 1000:.1f} ms (linprog call alone {gs * 1000:.1f} ms)")
    print(f"    ours, problem A alone (batch + flow + duals): median {oa * 1000:.1f} ms -> "
          f"{g / oa:.1f}x faster than generic build+solve, {gs / oa:.1f}x than its solve alone; "
          f"of which the OR-Tools solve {fa * 1000:.1f} ms (solve vs solve: {gs / fa:.1f}x)")
    print(f"    ours, all of allocate (A + duals + B + result objects): median {o * 1000:.1f} ms -> "
          f"{g / o:.1f}x faster than generic build+solve of A alone")
    print(f"    one linprog call per SKU instead: {per_call * 1000:.0f} ms ({per_call / oa:.0f}x ours for A alone)")
    return {"ok": diff < 1e-6, "ratio": g / oa}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=20_000, help="SKUs in the catalogue (default 20000)")
    parser.add_argument("--sample", type=int, default=400, help="(b) SKUs solved by the generic LP (default 400)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds of each part (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    idle = cpu_idle_percent()
    print(f"before start: CPU idle {idle:.0f}% over 1 s, load average {load_average()}"
          + ("  (other work is running on this machine: figures will be lower and noisier)" if idle < 85 else ""))
    network = make_network()
    t0 = time.perf_counter()
    problems, positions, lanes = make_catalogue(args.skus, args.seed, network)
    print(f"(a) {len(network.nodes)} nodes, {len(network.regions)} regions, {args.skus} SKUs "
          f"(generated in {time.perf_counter() - t0:.1f} s, not timed); {len(lanes)} transfer lanes")
    result = run_end_to_end(problems, positions, lanes, args.repeat)
    describe(problems, result["allocations"], result["transfers"])
    met = result["wall"] <= TARGET_SECONDS
    print(f"    end to end median {result['wall']:.2f} s wall ({result['cpu']:.2f} s CPU), best {result['best']:.2f} s; "
          f"target <= {TARGET_SECONDS:.0f} s: {'met' if met else 'MISSED'}")
    baseline = run_baseline(problems, args.sample, args.seed, args.repeat)
    print(f"    objectives equal: {'yes' if baseline['ok'] else 'NO'}; target ratio >= {TARGET_RATIO:.0f}x: "
          f"{'met' if baseline['ratio'] >= TARGET_RATIO else 'MISSED'}")
    print(f"load average after: {load_average()}")
    return 0 if baseline["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
