"""Regional allocation and transfer planning at catalogue scale, in process.

    .venv/bin/python bench/allocate.py                   # 20,000 SKUs x 10 nodes x 8 regions; LPs on all of them
    .venv/bin/python bench/allocate.py --sample 400      # quick: the generic LPs on a 400-SKU sample
    .venv/bin/python bench/allocate.py --sample 400 2000 8000 all    # how the ratio grows with size

(a) End to end: ``allocate`` (problem A with its dual prices, and problem B) for
    every SKU, then ``plan_transfers`` for every SKU, on one synthetic network:
    a central hub reaching 7 of 8 regions in 2-4 days, five regional nodes, a
    cold-storage node (the only one for cold-chain SKUs), a pop-up serving its
    event region inside its window, a degraded garage node. Demand is skewed
    (log-normal velocity, Dirichlet regional shares, a few launch SKUs); some SKUs
    have no stock at all. Arcs come from ``eligible_arcs`` (one call per SKU
    rule). Wall and CPU time per round (OR-Tools' min-cost flow is single-threaded).
(b) Same-sample baseline: problems A and B for the sampled SKUs as generic LPs
    (scipy.optimize.linprog, HiGHS), one LP per problem with every SKU a disjoint
    block, built from the formulations in allocation's docstring with sparse
    matrices, against ``allocate`` on the same SKUs. Per SKU, A's optimum must
    equal our ``expected_cost``, and B's optimum (in cents, with the same G as
    ``_availability``) must equal B's objective at our flows (``units``, tiers
    filled in order) with every unit placed; B's optimum need not be unique, so
    objectives are compared, not flows. Speed ratios are generic / ours, wall
    time, medians over --repeat rounds:
    - all of ``allocate`` (A + duals + B + result objects) against the generic
      LPs of A and B, build + solve: like for like, and what the >= 20x target
      is judged on;
    - problem A alone (batching + A's flow + duals, timed inside one
      ``allocate`` call) against the generic LP of A, and solve against solve;
    - one linprog call per SKU for A, for reference.

Sample size. The benchmark instance is the whole catalogue, and the ratio depends
on the instance size: HiGHS grows super-linearly with it, the flow solver about
linearly, and a small sample is dominated by our fixed per-call overhead. So the
default sample is the whole catalogue, which also checks every SKU's objectives.
A sample only exists because the generic LPs are expensive (A + B take 13-25 s
of build + solve per round for 20,000 SKUs): the default run takes about a
minute on a 2-core machine. --sample N gives a quicker, smaller-instance check; several sizes make a
sweep on nested samples (prefixes of one random order) with one line per size.

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

# B's costs are whole cents and its optimum is integral, so both optima are whole
# cents: any difference under half a cent is float noise, a real one is >= 1 cent.
B_TOLERANCE = 0.5
PER_CALL_SKUS = 400

def _linprog_blocks(name, costs, bounds, owner, n_skus, ub=None, eq=None):
    """Solve one LP made of disjoint per-SKU blocks with linprog (HiGHS); returns
    (per-SKU objectives, linprog result). ``ub`` and ``eq`` are (rows, columns,
    values, right-hand sides) of A_ub x <= b_ub and A_eq x = b_eq."""
    c = np.asarray(costs, dtype=float)

    def matrix(part):
        if part is None:
            return None, None
        rows, cols, values, rhs = part
        return sparse.csr_array((values, (rows, cols)), shape=(len(rhs), c.size)), np.asarray(rhs, dtype=float)

    a_ub, b_ub = matrix(ub)
    a_eq, b_eq = matrix(eq)
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"generic LP of problem {name}: {res.message}")
    return np.bincount(np.asarray(owner), weights=c * res.x, minlength=n_skus), res


def generic_lp(problems):
    """Problem A for all ``problems`` as one LP; returns (per-SKU objectives, linprog result)."""
    costs, bounds, owner, b_ub, constant = [], [], [], [], []
    ub_rows, ub_cols, eq_rows, eq_cols, eq_values = [], [], [], [], []
    col = row_ub = row_eq = 0
    for k, p in enumerate(problems):
        nodes = sorted({*p.stock, *(a.node_id for a in p.arcs)})
        regions = sorted({*p.demand, *(a.region_id for a in p.arcs)})
        n_at = {n: row_ub + i for i, n in enumerate(nodes)}
        r_at = {r: row_eq + j for j, r in enumerate(regions)}
        for a in p.arcs:
            costs.append(a.unit_cost)
            bounds.append((0, None))
            ub_cols.append(col); ub_rows.append(n_at[a.node_id])
            eq_cols.append(col); eq_rows.append(r_at[a.region_id]); eq_values.append(1.0)
            owner.append(k)
            col += 1
        for r in regions:
            d = p.demand.get(r, 0.0)
            q = d - math.floor(d)
            for cost, upper in ((-p.lost_sale_cost, math.floor(d)), (-p.lost_sale_cost * q, 1 if q > 0 else 0)):
                costs.append(cost)
                bounds.append((0, upper))
                eq_cols.append(col); eq_rows.append(r_at[r]); eq_values.append(-1.0)
                owner.append(k)
                col += 1
        b_ub.extend(p.stock.get(n, 0) for n in nodes)
        constant.append(p.lost_sale_cost * sum(p.demand.values()))
        row_ub += len(nodes)
        row_eq += len(regions)
    per_sku, res = _linprog_blocks("A", costs, bounds, owner, len(problems),
                                   ub=(ub_rows, ub_cols, np.ones(len(ub_cols)), b_ub),
                                   eq=(eq_rows, eq_cols, eq_values, np.zeros(row_eq)))
    return per_sku + np.array(constant), res


def availability_terms(p: SkuProblem):
    """What problem B is built from for one SKU, as ``allocation._availability``
    computes it: the stocked arcs (an arc from an empty node carries nothing, so
    the flow graph leaves it out), their costs in cents, and G. G's N counts every
    node of the SKU (stocked or not, with arcs or not) and its cost spread is over
    the stocked arcs: a different G would give a different optimal value."""
    arcs = [a for a in p.arcs if p.stock.get(a.node_id, 0) > 0]
    cents = allocation.to_cents([a.unit_cost for a in arcs]).tolist()
    n_nodes = len({*p.stock, *(a.node_id for a in p.arcs)})
    gap = n_nodes * (max(cents) - min(cents)) + 1 if cents else 1
    return arcs, cents, gap


def availability_tiers(demand: float, overflow_tiers: int) -> list[tuple[int | None, int]]:
    """(capacity or None for unlimited, reward in units of G) of a reached region's tier arcs."""
    forecast = math.ceil(demand)
    top = overflow_tiers + 1
    return [(forecast, top)] + [(max(forecast, 1), top - t) for t in range(1, top)] + [(None, 0)]


def generic_lp_b(problems, overflow_tiers: int = allocation.OVERFLOW_TIERS):
    """Problem B for all ``problems`` as one LP, in cents like the flow solver:
    sum c_nr f_nr - sum_(r,t) reward_t G y_rt, every stocked node with an arc
    placing all its units (sum_r f_nr = s_n), every reached region passing on what
    it gets to its tiers (sum_n f_nr = sum_t y_rt). Returns (per-SKU objectives,
    linprog result)."""
    costs, bounds, owner, rows, cols, values, rhs = [], [], [], [], [], [], []
    col = 0
    for k, p in enumerate(problems):
        arcs, cents, gap = availability_terms(p)
        node_row: dict[str, int] = {}
        region_row: dict[str, int] = {}
        for a, cost in zip(arcs, cents):
            n = node_row.setdefault(a.node_id, len(rhs))
            if n == len(rhs):
                rhs.append(p.stock[a.node_id])
            r = region_row.setdefault(a.region_id, len(rhs))
            if r == len(rhs):
                rhs.append(0)
            costs.append(cost)
            bounds.append((0, None))
            rows += (n, r); cols += (col, col); values += (1.0, 1.0)
            owner.append(k)
            col += 1
        for region, r in region_row.items():
            for upper, reward in availability_tiers(p.demand.get(region, 0.0), overflow_tiers):
                costs.append(-reward * gap)
                bounds.append((0, upper))
                rows.append(r); cols.append(col); values.append(-1.0)
                owner.append(k)
                col += 1
    return _linprog_blocks("B", costs, bounds, owner, len(problems), eq=(rows, cols, values, rhs))


def our_availability(p: SkuProblem, units, overflow_tiers: int = allocation.OVERFLOW_TIERS) -> tuple[int, bool]:
    """Problem B's objective in cents at our flows (``SkuAllocation.units``), and
    whether those flows are feasible for B. Our tier flows are not exposed; for a
    region's total the best tier split fills the tiers in order (rewards never
    rise), which is what an optimal flow does, so that is the objective of our flows."""
    arcs, cents, gap = availability_terms(p)
    cost_of = {(a.node_id, a.region_id): c for a, c in zip(arcs, cents)}
    if any(key not in cost_of or q < 0 for key, q in units.items()):
        return 0, False
    placed: dict[str, int] = {}
    served: dict[str, int] = {}
    for (n, r), q in units.items():
        placed[n] = placed.get(n, 0) + q
        served[r] = served.get(r, 0) + q
    feasible = all(placed.get(a.node_id, 0) == p.stock[a.node_id] for a in arcs)
    objective = sum(cost_of[key] * q for key, q in units.items())
    for r, x in served.items():
        for upper, reward in availability_tiers(p.demand.get(r, 0.0), overflow_tiers):
            take = x if upper is None else min(x, upper)
            objective -= take * reward * gap
            x -= take
    return objective, feasible


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


def per_sku_lp(problems, order) -> float:
    """Seconds per SKU of solving A with one linprog call per SKU, timed on the first
    PER_CALL_SKUS SKUs of ``order`` (the SKUs every sample starts with): that way is
    linear in SKUs, so it is timed once and scaled to each sample."""
    chosen = [problems[i] for i in order[:PER_CALL_SKUS]]
    t0 = time.perf_counter()
    for p in chosen:
        generic_lp([p])
    return (time.perf_counter() - t0) / max(len(chosen), 1)


def run_baseline(problems, order, sample: int, repeat: int, per_call: float) -> dict:
    """Generic LPs of A and of B against ``allocate`` on the first ``sample`` SKUs of
    ``order``; ``per_call`` is the time of one linprog call per SKU for A (``per_sku_lp``)."""
    chosen = [problems[i] for i in sorted(order[:sample])]
    ours, ours_a, flow_a, generic_a, generic_b, solve_a, solve_b = [], [], [], [], [], [], []
    # CPU time as well as wall: on a shared machine the wall ratio moves with other load,
    # the CPU ratio much less (both solvers run single-threaded here).
    ours_cpu, generic_cpu = [], []
    for _ in range(repeat):
        with StageClock(allocation, ("_batch", "_economic", "solve_min_cost_flow")) as clock:
            c0, t0 = time.process_time(), time.perf_counter()
            allocations = allocate(chosen)
            ours.append(time.perf_counter() - t0)
            ours_cpu.append(time.process_time() - c0)
        ours_a.append(clock.calls["_batch"][0] + clock.calls["_economic"][0])
        flow_a.append(clock.calls["solve_min_cost_flow"][0])  # allocate solves A first, then B
        with StageClock(sys.modules[__name__], ("linprog",)) as clock:
            c0, t0 = time.process_time(), time.perf_counter()
            objectives_a, res_a = generic_lp(chosen)
            t1 = time.perf_counter()
            objectives_b, res_b = generic_lp_b(chosen)
            generic_b.append(time.perf_counter() - t1)
            generic_cpu.append(time.process_time() - c0)
        generic_a.append(t1 - t0)
        solve_a.append(clock.calls["linprog"][0])
        solve_b.append(clock.calls["linprog"][1])
    mine_a = np.array([a.expected_cost for a in allocations])
    mine_b, feasible = zip(*(our_availability(p, a.units) for p, a in zip(chosen, allocations)))
    mine_b = np.array(mine_b, dtype=float)
    diff_a = float(np.max(np.abs(mine_a - objectives_a)))
    diff_b = float(np.max(np.abs(mine_b - objectives_b)))
    o, oa, fa = statistics.median(ours), statistics.median(ours_a), statistics.median(flow_a)
    ga, gb = statistics.median(generic_a), statistics.median(generic_b)
    sa, sb = statistics.median(solve_a), statistics.median(solve_b)
    g = statistics.median(a + b for a, b in zip(generic_a, generic_b))
    whole = " (the whole catalogue)" if len(chosen) == len(problems) else ""
    print(f"(b) sample of {len(chosen)} SKUs{whole}: LP A {res_a.x.size} columns, LP B {res_b.x.size} columns")
    print(f"    A objectives: ours {mine_a.sum():,.4f} vs generic {objectives_a.sum():,.4f}, "
          f"max per-SKU |difference| {diff_a:.2e}")
    print(f"    B objectives (cents): ours {mine_b.sum():,.0f} vs generic {objectives_b.sum():,.4f}, "
          f"max per-SKU |difference| {diff_b:.2e}; our B flows feasible for every SKU: "
          f"{'yes' if all(feasible) else 'NO'}")
    print(f"    generic LP, build+solve median: A {ga * 1000:.1f} ms (linprog call {sa * 1000:.1f} ms), "
          f"B {gb * 1000:.1f} ms (linprog call {sb * 1000:.1f} ms), A + B {g * 1000:.1f} ms")
    print(f"    ours, problem A alone (batch + flow + duals): median {oa * 1000:.1f} ms -> "
          f"{ga / oa:.1f}x faster than generic build+solve of A, {sa / oa:.1f}x than its solve alone; "
          f"of which the OR-Tools solve {fa * 1000:.1f} ms (solve vs solve: {sa / fa:.1f}x)")
    cpu_ratio = statistics.median(generic_cpu) / statistics.median(ours_cpu)
    print(f"    ours, all of allocate (A + duals + B + result objects): median {o * 1000:.1f} ms -> "
          f"{g / o:.1f}x faster than generic build+solve of A + B (CPU time: {cpu_ratio:.1f}x)")
    print(f"    one linprog call per SKU for A instead: ~{per_call * len(chosen):.1f} s, "
          f"{per_call * len(chosen) / oa:.0f}x ours for A alone")
    return {"sample": len(chosen), "ok": diff_a < 1e-6 and diff_b < B_TOLERANCE and all(feasible),
            "diff_a": diff_a, "diff_b": diff_b, "generic_a": ga, "generic": g, "ours_a": oa, "ours": o,
            "ratio_a": ga / oa, "ratio": g / o, "cpu_ratio": cpu_ratio}


def sample_size(text: str) -> int:
    """A --sample value: a number of SKUs, or 'all' / 0 for the whole catalogue (0 here)."""
    if text == "all":
        return 0
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("a sample size is a number of SKUs >= 0, or 'all'")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skus", type=int, default=20_000, help="SKUs in the catalogue (default 20000)")
    parser.add_argument("--sample", type=sample_size, nargs="+", default=[0], metavar="N|all",
                        help="(b) SKUs solved by the generic LPs, 'all' or 0 for the whole catalogue; several "
                             "sizes make a sweep on nested samples (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds of each part (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    started = time.perf_counter()
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

    # Nested samples (prefixes of one random order), so a sweep compares sizes on the same SKUs.
    order = np.random.default_rng(args.seed + 1).permutation(len(problems))
    sizes = [size if 0 < size <= len(problems) else len(problems) for size in args.sample]
    per_call = per_sku_lp(problems, order)
    print(f"(b) one linprog call per SKU for A: {per_call * 1000:.2f} ms per SKU (timed on "
          f"{min(len(problems), PER_CALL_SKUS)} SKUs)")
    runs = [run_baseline(problems, order, size, args.repeat, per_call) for size in sizes]
    if len(runs) > 1:
        print("    sweep  sample  generic A+B  ours allocate  all vs A+B  |  generic A    ours A  A vs A   "
              "max|dA|   max|dB| (cents)")
        for run in runs:
            print(f"    {run['sample']:13d}  {run['generic']:9.3f} s  {run['ours']:11.3f} s  "
                  f"{run['ratio']:9.1f}x  |  {run['generic_a']:7.3f} s  {run['ours_a']:6.3f} s  "
                  f"{run['ratio_a']:5.1f}x  {run['diff_a']:8.1e}  {run['diff_b']:8.1e}")
    ok = all(run["ok"] for run in runs)
    for run in runs:
        print(f"    sample {run['sample']}: objectives equal (A and B): {'yes' if run['ok'] else 'NO'}; "
              f"target ratio >= {TARGET_RATIO:.0f}x, judged on all of allocate vs generic A + B: {run['ratio']:.1f}x "
              f"{'met' if run['ratio'] >= TARGET_RATIO else 'MISSED'} (CPU time {run['cpu_ratio']:.1f}x; "
              f"problem A alone vs generic A: {run['ratio_a']:.1f}x)")
    print(f"load average after: {load_average()}; run time {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
