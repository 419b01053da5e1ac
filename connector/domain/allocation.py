"""Regional allocation: how many units of each SKU each region may sell.

A unit is never promised twice, a region only draws on eligible node -> region
lanes (``eligible_arcs``), and the split follows demand at minimum cost. Two
problems are solved per SKU, each for every SKU at once as one min-cost-flow
graph made of disjoint per-SKU components.

Notation for one SKU: nodes n with sellable stock s_n (integer >= 0); regions r
with forecast demand d_r >= 0, D_r = ceil(d_r), q_r = d_r - floor(d_r); arcs
(n, r) with unit cost c_nr; lost-sale cost L > 0 per unit of demand left unmet.

Problem A (economic; gives ``expected_cost``, ``planned``, ``unmet_demand`` and
the dual prices). The linear program

    min   sum_(n,r) c_nr f_nr + L * sum_r (d_r - g_r - q_r h_r)
    s.t.  sum_r f_nr <= s_n                       for every node n
          sum_n f_nr  = g_r + h_r                 for every region r
          0 <= g_r <= floor(d_r),  0 <= h_r <= (1 if q_r > 0 else 0),  f_nr >= 0

Rounding of fractional demand: a region may take at most D_r = ceil(d_r) units;
its first floor(d_r) units each avoid a full lost sale (g), the ceil unit avoids
only the fraction q_r of one (h). Its constraint matrix is a network matrix, so
it has an integral optimum, and at integral flows the objective is exactly
sum c f + L * sum_r max(0, d_r - sum_n f_nr): A is the integer problem "sell at
most ceil(d_r), pay L for every unit of the real forecast left unmet".
Leftover stock stays at its node at cost 0. As a flow: node n supplies s_n; arcs
n -> r (cost c_nr), n -> sink (leftover, cost 0), r -> sink (capacity
floor(d_r), cost -L) and r -> sink (capacity 1, cost -L q_r); the sink takes
sum s_n. That objective is A's minus the constant L * sum d_r.
``unmet_demand[r] = max(0, d_r - sum_n f_nr)``; ``expected_cost`` is A's
objective at the optimal flow, evaluated with the unrounded costs.

Dual prices. ``opportunity_cost[n] = OPT_A(s_n - 1) - OPT_A(s)``: how much the
optimum rises if one unit at n is lost (shipped elsewhere, damaged). It is a
right-derivative, so it is unique even where the LP's duals are not (degenerate
optima). Removing a unit at n and one unit of the sink's demand equals pushing
one unit from the sink back to n, so it is the shortest path from the SKU's sink
to n in the residual graph of an optimal flow (an optimal flow has no negative
residual cycle, and augmenting along a shortest path keeps it optimal). Those
paths are found for every SKU at once by a vectorised Bellman-Ford over the
batched residual graph with every sink at distance 0. It is >= 0 because spare
stock can always stay put at cost 0. A node with no stock has no unit to lose
and routing never ships from it, so its price is 0.

Problem B (availability; gives ``units`` and ``by_region``). Every unit at a node
with at least one eligible arc goes to exactly one region along an eligible
arc. Each region r reached by a stocked arc has tier arcs to the sink: tier 0
with capacity D_r (its forecast), tiers 1..K (K = ``overflow_tiers``, default 3)
of capacity max(D_r, 1) each, then an unlimited last tier. Tier t in 0..K earns
(K + 1 - t) * G per unit, the last tier 0, and lane cost c_nr is paid as in A;
the sink takes every unit at a node with an arc. So forecast demand is
served first, then the rest of the stock is spread over regions in
demand-sized rounds (a zero-demand region gets one unit per round), then
whatever is left goes by lane cost; a node that serves only zero-demand regions
still places all its stock there. G = N * (max c - min c) + 1 cent, where N counts
every node of the SKU's problem (stocked or not) and max c, min c are taken over
the lanes from stocked nodes (the only lanes in the graph): an exchange that moves a
unit to a better tier is a residual cycle through at most N nodes, changing lane
cost by at most N * (max c - min c) < G, so tiers always dominate and lane cost
only decides within a tier.

Why min-cost flow: both problems are network flows, so OR-Tools' cost-scaling
solver finds exact, integral optima (whole units, never a rounded-off LP),
several times faster than a generic LP solver on the same problem (see
bench/allocate.py), and the residual graph gives the exact right-derivative
prices.

Three shortcuts keep the solver's graphs small; none changes an optimum or a price.
- Pouring: a SKU with at most one node that can ship (stock and an eligible arc)
  is not given to the solver. From that node n every path to the sink is n's lane
  to a region r, then one of r's arcs to the sink, and n has one lane to r; so
  the flow fills those paths cheapest first, each up to its sink arc's capacity
  (a transportation problem with one source is solved greedily), in A only while
  the path costs less than 0 (a unit left at n). n's price is 0 while a unit stays
  behind, else minus the cost of the dearest path used: un-shipping that unit is
  the shortest residual path from the sink. A stocked node without an arc keeps
  its stock, price 0. On a catalogue where most SKUs sit at a hub and at most one
  regional node, this is about half the SKUs.
- B's tiers that no optimum uses are left out. An optimum fills a region's tiers
  in order. A region never receives more than the stock of the nodes with an arc
  to it, so a tier that starts beyond that stock carries nothing. And if region r
  fills into tier t >= 1 with a unit from node n, every region n reaches has its
  tiers 0..t-1 full (else moving that unit there gains at least G minus a lane
  cost difference, > 0); so tier t of r is needed only if some node with an arc
  to r has regions whose tiers 0..t-1 hold less than the SKU's stock that can
  ship. Tiers of capacity 0 go too. On the benchmark catalogue this leaves out
  two thirds of B's tier arcs.
- In A, a region's arc to the sink is left out where a unit through it cannot be
  worth more than staying at its node (its value, L or L * q_r, is at most the
  cheapest lane into the region), and the fractional arc where no more than
  floor(d_r) units can reach the region. At the given stock, and at any less (a
  price is OPT_A with one unit fewer), some optimum leaves such an arc empty, so
  OPT_A there, and with it every price, is the same without it.

Cost scaling: OR-Tools needs integer costs, so money is converted to cents and
rounded (``round(100 * x)``), including L and L * q_r. Results are exact for
costs given in whole cents; otherwise the flow is optimal for the rounded costs
(each rounded by at most half a cent per unit), ``expected_cost`` is evaluated
with the unrounded costs, and the dual prices are in whole cents.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Mapping, Sequence

import numpy as np
from ortools.graph.python import min_cost_flow as _mcf

from connector.domain.model import Network, NodeStatus, SkuRule
from connector.domain.routing import first_stage

CENTS = 100
# Routing ranks a degraded node below every healthy one; as a cost per unit this makes
# healthy stock go first while degraded stock still counts. The default of
# [shops.X.planning] degraded_penalty.
DEGRADED_PENALTY = 2.0
OVERFLOW_TIERS = 3


@dataclass(frozen=True)
class Arc:
    """One eligible node -> region lane for a SKU."""

    node_id: str
    region_id: str
    unit_cost: float


@dataclass(frozen=True)
class SkuProblem:
    sku: str
    stock: Mapping[str, int]  # node id -> sellable units (>= 0): available - reservations - safety buffer
    arcs: tuple[Arc, ...]
    demand: Mapping[str, float]  # region id -> forecast units over the planning horizon (>= 0)
    lost_sale_cost: float  # cost per unit of forecast demand left unmet (> 0)


@dataclass(frozen=True)
class SkuAllocation:
    sku: str
    units: Mapping[tuple[str, str], int]  # (node, region) -> units that region may sell from that node (problem B)
    by_region: Mapping[str, int]  # every region of the problem (demand or arc) -> units it may sell
    opportunity_cost: Mapping[str, float]  # node -> OPT_A(stock_n - 1) - OPT_A(stock), >= 0; 0 without stock
    expected_cost: float  # optimal objective of problem A
    unmet_demand: Mapping[str, float]  # region with a forecast -> forecast left unmet in problem A
    planned: Mapping[tuple[str, str], int]  # (node, region) -> units in problem A's optimal flow


# ---------------------------------------------------------------- eligibility


def eligible_arcs(
    network: Network, rule: SkuRule, now: datetime, *, degraded_penalty: float = DEGRADED_PENALTY
) -> tuple[Arc, ...]:
    """The node -> region lanes a SKU under ``rule`` may be sold through at ``now``,
    by routing's stage-0 rules: usable nodes (active or degraded, inside their
    window), lanes within the region's promise, or, when the current mode
    restricts a region, the restricted nodes with any lane to it (promise
    relaxed); the SKU's handling and max transit days. Degraded nodes cost
    ``degraded_penalty`` more per unit. Sorted by (node, region). Routing's later
    stages (backups, fallback regions) are left out: they rescue orders the
    promise cannot be kept for; they are not stock a region may advertise."""
    arcs = []
    for region in network.regions.values():
        for node, lane in first_stage(network, region.id)[1]:
            if not node.usable(now) or not rule.handled_by(node, lane):
                continue
            penalty = degraded_penalty if node.status is NodeStatus.DEGRADED else 0.0
            arcs.append(Arc(node.id, region.id, lane.cost_per_order + penalty))
    return tuple(sorted(arcs, key=lambda a: (a.node_id, a.region_id)))


# ---------------------------------------------------------------- solver plumbing


def to_cents(amounts) -> np.ndarray:
    """Money -> integer cents, rounded half to even (OR-Tools costs are integers)."""
    return np.rint(np.asarray(amounts, dtype=np.float64) * CENTS).astype(np.int64)


def solve_min_cost_flow(
    tails: np.ndarray, heads: np.ndarray, capacities: np.ndarray, unit_costs: np.ndarray,
    vertices: np.ndarray, supplies: np.ndarray,
) -> np.ndarray:
    """Flows of an optimal min-cost flow; raises if the instance has none."""
    if len(tails):
        # Numbered densely: the solver's passes run over every vertex number up to the
        # largest, and a batch leaves many vertices without arcs (empty nodes, poured SKUs).
        used = np.zeros(int(max(tails.max(), heads.max(), vertices.max(initial=0))) + 1, dtype=bool)
        used[tails] = used[heads] = used[vertices] = True
        number = np.cumsum(used) - 1
        tails, heads, vertices = number[tails], number[heads], number[vertices]
    solver = _mcf.SimpleMinCostFlow()
    solver.add_arcs_with_capacity_and_unit_cost(
        tails.astype(np.int32), heads.astype(np.int32), capacities.astype(np.int64), unit_costs.astype(np.int64)
    )
    solver.set_nodes_supplies(vertices.astype(np.int32), supplies.astype(np.int64))
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise RuntimeError(f"min-cost flow not solved to optimality: {status}")
    return np.asarray(solver.flows(np.arange(len(tails), dtype=np.int32)), dtype=np.int64)


def residual_distances(
    tails: np.ndarray, heads: np.ndarray, capacities: np.ndarray, unit_costs: np.ndarray, flows: np.ndarray,
    n_vertices: int, sources: np.ndarray, max_rounds: int,
) -> np.ndarray:
    """Shortest-path costs from the nearest of ``sources`` to every vertex in the
    residual graph of an optimal flow (inf where unreachable), by Bellman-Ford
    relaxing every residual arc at once per round. ``max_rounds`` is the largest
    component's vertex count: more rounds would mean a negative cycle, i.e. the
    flow was not optimal."""
    forward = flows < capacities
    backward = flows > 0
    r_tail = np.concatenate([tails[forward], heads[backward]])
    r_head = np.concatenate([heads[forward], tails[backward]])
    r_cost = np.concatenate([unit_costs[forward], -unit_costs[backward]]).astype(np.float64)
    dist = np.full(n_vertices, np.inf)
    dist[sources] = 0.0
    if len(r_head) == 0:
        return dist
    order = np.argsort(r_head)  # any order within a head: each round takes the minimum
    r_tail, r_head, r_cost = r_tail[order], r_head[order], r_cost[order]
    starts = np.flatnonzero(np.r_[True, r_head[1:] != r_head[:-1]])  # each head's first arc, heads sorted
    targets = r_head[starts]
    for _ in range(max_rounds + 1):
        best = np.minimum.reduceat(dist[r_tail] + r_cost, starts)
        improved = best < dist[targets]
        if not improved.any():
            return dist
        dist[targets[improved]] = best[improved]
    raise RuntimeError("residual graph has a negative cycle: the flow is not optimal")


# ---------------------------------------------------------------- allocation


@dataclass(frozen=True)
class _Layout:
    """A SKU's vertices and arcs by local index: its nodes (sorted), then its
    regions (sorted), then its sink. Shared by every SKU with the same arcs and
    the same nodes and regions outside them."""

    nodes: tuple[str, ...]
    regions: tuple[str, ...]
    tail: np.ndarray  # per arc: local node index
    head: np.ndarray  # per arc: local region index
    cost: np.ndarray
    keys: tuple[tuple[str, str], ...]  # per arc: (node, region)


def _layout(sku: str, arcs: Sequence[Arc], extra_nodes: Sequence[str], extra_regions: Sequence[str]) -> _Layout:
    if any(not math.isfinite(a.unit_cost) or a.unit_cost < 0 for a in arcs):
        raise ValueError(f"{sku}: arc costs must be finite and >= 0")
    keys = tuple((a.node_id, a.region_id) for a in arcs)
    if len(set(keys)) != len(keys):
        raise ValueError(f"{sku}: more than one arc for the same (node, region)")
    nodes = tuple(sorted({*extra_nodes, *(n for n, _ in keys)}))
    regions = tuple(sorted({*extra_regions, *(r for _, r in keys)}))
    n_index = {n: i for i, n in enumerate(nodes)}
    r_index = {r: j for j, r in enumerate(regions)}
    return _Layout(
        nodes, regions,
        tail=np.asarray([n_index[n] for n, _ in keys], dtype=np.int64),
        head=np.asarray([r_index[r] for _, r in keys], dtype=np.int64),
        cost=np.asarray([a.unit_cost for a in arcs], dtype=np.float64),
        keys=keys,
    )


def _ragged(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For consecutive runs of ``counts`` items: each item's run and its position in the run."""
    first = np.cumsum(counts) - counts
    owner = np.repeat(np.arange(len(counts)), counts)
    return owner, np.arange(int(counts.sum())) - first[owner]


@dataclass(frozen=True)
class _Batch:
    """Every SKU's layout numbered into one graph, SKU after SKU."""

    layouts: list[_Layout]
    layout: np.ndarray  # per SKU: index into layouts
    n_vertices: int
    size: np.ndarray  # per SKU: vertex count
    sink: np.ndarray  # per SKU: sink vertex
    lost: np.ndarray  # per SKU: lost-sale cost
    node_v: np.ndarray
    node_sku: np.ndarray
    node_stock: np.ndarray
    region_v: np.ndarray
    region_sku: np.ndarray
    region_demand: np.ndarray
    lane_tail: np.ndarray
    lane_head: np.ndarray
    lane_sku: np.ndarray
    lane_cost: np.ndarray
    lane_key: np.ndarray  # per lane: index into arc_keys
    arc_keys: list[tuple[str, str]]  # every layout's arc keys, layout after layout


def _batch(problems: Sequence[SkuProblem]) -> _Batch:
    # SKUs under one rule usually share one arcs tuple (eligible_arcs is per rule),
    # so a layout is built once per distinct (arcs, extra nodes, extra regions) and
    # per-SKU work is proportional to its nodes and regions, not its arcs. Arcs are
    # keyed by identity (the problems keep them alive): hashing them would cost
    # as much as building the layout. SKUs built the same way list the same stock
    # and demand keys in the same order, so the layout is first looked up by those
    # (cheaper than working out the extra nodes and regions for every SKU).
    arc_ends: dict[int, tuple[set[str], set[str]]] = {}
    layout_index: dict[tuple[int, tuple[str, ...], tuple[str, ...]], int] = {}
    shape_index: dict[tuple[int, tuple[str, ...], tuple[str, ...]], int] = {}
    layouts: list[_Layout] = []
    layout_of: list[int] = []
    node_stock: list = []
    region_demand: list = []
    zeros = itertools.repeat(0)
    for p in problems:
        shape = (id(p.arcs), tuple(p.stock), tuple(p.demand))
        li = shape_index.get(shape)
        if li is None:
            ends = arc_ends.get(id(p.arcs))
            if ends is None:
                ends = arc_ends[id(p.arcs)] = ({a.node_id for a in p.arcs}, {a.region_id for a in p.arcs})
            extra_nodes = tuple(sorted(n for n in p.stock if n not in ends[0]))
            extra_regions = tuple(sorted(r for r in p.demand if r not in ends[1]))
            key = (id(p.arcs), extra_nodes, extra_regions)
            li = layout_index.get(key)
            if li is None:
                li = layout_index[key] = len(layouts)
                layouts.append(_layout(p.sku, p.arcs, extra_nodes, extra_regions))
            shape_index[shape] = li
        layout_of.append(li)
        layout = layouts[li]
        node_stock.extend(map(p.stock.get, layout.nodes, zeros))
        region_demand.extend(map(p.demand.get, layout.regions, zeros))

    layout = np.asarray(layout_of, dtype=np.int64)
    n_nodes = np.asarray([len(l.nodes) for l in layouts], dtype=np.int64)[layout]
    n_regions = np.asarray([len(l.regions) for l in layouts], dtype=np.int64)[layout]
    arcs_per_layout = np.asarray([len(l.keys) for l in layouts], dtype=np.int64)
    size = n_nodes + n_regions + 1
    start = np.cumsum(size) - size
    node_sku, node_pos = _ragged(n_nodes)
    region_sku, region_pos = _ragged(n_regions)
    lane_sku, lane_pos = _ragged(arcs_per_layout[layout])
    lane_key = (np.cumsum(arcs_per_layout) - arcs_per_layout)[layout][lane_sku] + lane_pos
    first_region = start + n_nodes
    stock, demand, lost = _checked(problems, node_stock, node_sku, region_demand, region_sku)

    def joined(field: str, dtype) -> np.ndarray:
        return np.concatenate([getattr(l, field) for l in layouts]).astype(dtype)

    return _Batch(
        layouts=layouts, layout=layout, n_vertices=int(size.sum()), size=size, sink=start + size - 1,
        lost=lost,
        node_v=start[node_sku] + node_pos, node_sku=node_sku,
        node_stock=stock,
        region_v=first_region[region_sku] + region_pos, region_sku=region_sku,
        region_demand=demand,
        lane_tail=start[lane_sku] + joined("tail", np.int64)[lane_key],
        lane_head=first_region[lane_sku] + joined("head", np.int64)[lane_key],
        lane_sku=lane_sku, lane_cost=joined("cost", np.float64)[lane_key], lane_key=lane_key,
        arc_keys=[key for l in layouts for key in l.keys],
    )


def _checked(
    problems: Sequence[SkuProblem], stock: list, stock_sku: np.ndarray, demand: list, demand_sku: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stock, demand and lost-sale costs as arrays, checked all at once; the error
    names the first SKU at fault."""
    stock_a = np.asarray(stock)
    if len(stock) and stock_a.dtype.kind not in "iu":  # floats, None, text
        at = next((i for i, q in enumerate(stock) if isinstance(q, bool) or not isinstance(q, (int, np.integer))), 0)
        raise ValueError(f"{problems[stock_sku[at]].sku}: stock must be whole units >= 0")
    if (stock_a < 0).any():
        raise ValueError(f"{problems[stock_sku[np.argmax(stock_a < 0)]].sku}: stock must be whole units >= 0")
    demand_a = np.asarray(demand, dtype=np.float64)
    bad = ~(np.isfinite(demand_a) & (demand_a >= 0))
    if bad.any():
        raise ValueError(f"{problems[demand_sku[np.argmax(bad)]].sku}: demand must be finite and >= 0")
    lost = np.asarray([p.lost_sale_cost for p in problems], dtype=np.float64)
    bad = ~(np.isfinite(lost) & (lost > 0))
    if bad.any():
        raise ValueError(f"{problems[int(np.argmax(bad))].sku}: lost_sale_cost must be finite and > 0")
    return stock_a.astype(np.int64), demand_a, lost


def allocate(problems: Sequence[SkuProblem], *, overflow_tiers: int = OVERFLOW_TIERS) -> list[SkuAllocation]:
    """Solve problems A and B (see the module docstring) for every SKU at once;
    one allocation per problem, in the same order."""
    return _allocate(problems, overflow_tiers)


def _allocate(problems: Sequence[SkuProblem], overflow_tiers: int = OVERFLOW_TIERS, *,
              pour: bool = True) -> list[SkuAllocation]:
    """``allocate``; with ``pour=False`` every SKU that can ship goes to the flow
    solver (the tests check pouring against it)."""
    if overflow_tiers < 0:
        raise ValueError("overflow_tiers must be >= 0")
    if not problems:
        return []
    b = _batch(problems)
    stock_v = np.zeros(b.n_vertices, dtype=np.int64)
    stock_v[b.node_v] = b.node_stock
    # A lane never carries more than its node holds; lanes from empty nodes carry
    # nothing and have no residual arc either, so they are left out of both graphs.
    lane_cap = stock_v[b.lane_tail]
    stocked = lane_cap > 0
    b = replace(b, lane_tail=b.lane_tail[stocked], lane_head=b.lane_head[stocked], lane_sku=b.lane_sku[stocked],
                lane_cost=b.lane_cost[stocked], lane_key=b.lane_key[stocked])
    lane_cap = lane_cap[stocked]
    lane_cents = to_cents(b.lane_cost)
    # Per region: the stock with a lane to it, the most it can ever receive. Regions no
    # stocked lane reaches get no arcs to the sink: they could carry nothing.
    reach = np.bincount(b.lane_head, weights=lane_cap, minlength=b.n_vertices)[b.region_v].astype(np.int64)

    n_skus = len(problems)
    ship = _Shipping(b, pour)
    flow_a, price = _economic(b, lane_cents, lane_cap, reach, ship)
    flow_b = _availability(b, lane_cents, lane_cap, reach, overflow_tiers, ship)

    served_a = np.bincount(b.lane_head, weights=flow_a, minlength=b.n_vertices)[b.region_v]
    unmet = np.maximum(b.region_demand - served_a, 0.0)
    # bincount gives integers when there are no lanes at all
    cost = np.bincount(b.lane_sku, weights=flow_a * b.lane_cost, minlength=n_skus).astype(np.float64)
    cost += b.lost * np.bincount(b.region_sku, weights=unmet, minlength=n_skus)
    served_b = np.bincount(b.lane_head, weights=flow_b, minlength=b.n_vertices)[b.region_v].astype(np.int64)

    planned = _flows_by_sku(b, flow_a, n_skus)
    units = _flows_by_sku(b, flow_b, n_skus)
    # Each SKU's nodes and regions are consecutive entries, SKU after SKU, so one
    # iterator per array hands each SKU its share (zip stops at the shorter key
    # tuple before drawing from the iterator).
    prices, unmet_left, served = iter(price.tolist()), iter(unmet.tolist()), iter(served_b.tolist())
    result = []
    for p, layout, expected_cost, units_k, planned_k in zip(
        problems, map(b.layouts.__getitem__, b.layout.tolist()), cost.tolist(), units, planned
    ):
        regions = layout.regions
        left = zip(regions, unmet_left)
        result.append(SkuAllocation(
            sku=p.sku,
            units=units_k,
            by_region=dict(zip(regions, served)),
            opportunity_cost=dict(zip(layout.nodes, prices)),
            expected_cost=expected_cost,
            unmet_demand=dict(left) if len(p.demand) == len(regions) else {r: u for r, u in left if r in p.demand},
            planned=planned_k,
        ))
    return result


def _flows_by_sku(b: _Batch, flows: np.ndarray, n_skus: int) -> list[dict[tuple[str, str], int]]:
    by_sku: list[dict[tuple[str, str], int]] = [{} for _ in range(n_skus)]
    used = np.flatnonzero(flows)
    for k, key, q in zip(b.lane_sku[used].tolist(), b.lane_key[used].tolist(), flows[used].tolist()):
        by_sku[k][b.arc_keys[key]] = q
    return by_sku


class _Shipping:
    """The stock that can ship (at nodes with a lane; ``b`` holds only stocked
    lanes), and which SKUs go to the flow solver: those with two or more nodes that
    can ship. The others are poured (``_pour``): a stocked node without a lane only
    ever keeps its stock, at cost 0 and price 0."""

    def __init__(self, b: _Batch, pour: bool):
        ships = np.zeros(b.n_vertices, dtype=bool)
        ships[b.lane_tail] = True
        self.node_ships = ships[b.node_v] & (b.node_stock > 0)  # per node entry
        self.node_supply = np.where(self.node_ships, b.node_stock, 0)  # per node entry
        self.supply = np.bincount(b.node_sku, weights=self.node_supply,
                                  minlength=len(b.sink)).astype(np.int64)  # per SKU
        shipping_nodes = np.bincount(b.node_sku, weights=self.node_ships, minlength=len(b.sink))
        self.solved = shipping_nodes >= (2 if pour else 1)
        # A poured SKU reaches each region through one lane, from its one shipping node.
        poured = np.flatnonzero(~self.solved[b.lane_sku])
        self.lane_to = np.full(b.n_vertices, -1, dtype=np.int64)  # region vertex -> that lane
        self.lane_to[b.lane_head[poured]] = poured


def _pour(owner: np.ndarray, cost: np.ndarray, cap: np.ndarray, supply: np.ndarray) -> np.ndarray:
    """Units per arc when each owner's ``supply`` is poured into its arcs cheapest
    first, each arc taking up to ``cap``: the min-cost flow of a SKU with one node
    that can ship, its arcs being its paths to the sink (see "Pouring" in the module
    docstring). Ties between arcs of one cost may go either way; the objective is
    the same."""
    order = np.lexsort((cost, owner))
    sorted_owner, sorted_cap = owner[order], cap[order]
    before = np.cumsum(sorted_cap) - sorted_cap
    before -= before[np.searchsorted(sorted_owner, sorted_owner)]  # capacity of the owner's cheaper arcs
    fill = np.empty_like(sorted_cap)
    fill[order] = np.clip(supply[sorted_owner] - before, 0, sorted_cap)
    return fill


def _economic(
    b: _Batch, lane_cents: np.ndarray, lane_cap: np.ndarray, reach: np.ndarray, ship: _Shipping
) -> tuple[np.ndarray, np.ndarray]:
    """Problem A: lane flows, and the opportunity cost per node (in money, node order).
    SKUs marked ``ship.solved`` go to the flow solver; the others are poured."""
    solved = ship.solved
    whole = np.floor(b.region_demand).astype(np.int64)
    fraction = b.region_demand - whole
    lost_cents = to_cents(b.lost)
    part_cents = to_cents(b.lost[b.region_sku] * fraction)
    # Each region's arcs to the sink: its floor(d) whole units, then its fractional one;
    # those no optimum needs are left out (see the module docstring).
    cheapest = np.full(b.n_vertices, np.iinfo(np.int64).max)
    np.minimum.at(cheapest, b.lane_head, lane_cents)
    cheapest = cheapest[b.region_v]
    full = (reach > 0) & (whole > 0) & (lost_cents[b.region_sku] > cheapest)
    part = (fraction > 0) & (part_cents > cheapest) & (reach > whole)
    sink_tail = np.concatenate([b.region_v[full], b.region_v[part]])
    sink_sku = np.concatenate([b.region_sku[full], b.region_sku[part]])
    sink_cap = np.concatenate([whole[full], np.ones(int(part.sum()), dtype=np.int64)])
    sink_cost = np.concatenate([-lost_cents[b.region_sku[full]], -part_cents[part]])
    stock = np.bincount(b.node_sku, weights=b.node_stock, minlength=len(b.sink)).astype(np.int64)
    lane_flows = np.zeros(len(b.lane_tail), dtype=np.int64)
    node_cents = np.zeros(len(b.node_v))

    lanes, arcs = solved[b.lane_sku], solved[sink_sku]
    has = (b.node_stock > 0) & solved[b.node_sku]  # leftover arcs; a stocked node without lanes keeps its price 0
    if lanes.any() or has.any():
        tails = np.concatenate([b.lane_tail[lanes], b.node_v[has], sink_tail[arcs]])
        heads = np.concatenate([b.lane_head[lanes], b.sink[b.node_sku[has]], b.sink[sink_sku[arcs]]])
        caps = np.concatenate([lane_cap[lanes], b.node_stock[has], sink_cap[arcs]])
        costs = np.concatenate([lane_cents[lanes], np.zeros(int(has.sum()), dtype=np.int64), sink_cost[arcs]])
        vertices = np.concatenate([b.node_v[has], b.sink[solved]])
        supplies = np.concatenate([b.node_stock[has], -stock[solved]])
        flows = solve_min_cost_flow(tails, heads, caps, costs, vertices, supplies)
        dist = residual_distances(tails, heads, caps, costs, flows, b.n_vertices, b.sink[solved],
                                  int(b.size[solved].max()))
        lane_flows[lanes] = flows[: int(lanes.sum())]
        node_cents = np.where(has, dist[b.node_v], 0.0)

    # Poured: with one lane into each region, every arc left is a path costing less
    # than 0, the cost of a unit left where it is.
    lane = ship.lane_to[sink_tail[~arcs]]
    path_cost = sink_cost[~arcs] + lane_cents[lane]
    owner = sink_sku[~arcs]
    fill = _pour(owner, path_cost, sink_cap[~arcs], ship.supply)
    lane_flows += np.bincount(lane, weights=fill, minlength=len(lane_flows)).astype(np.int64)
    # Price of the one shipping node: losing a unit costs nothing while a unit stays
    # behind, else it un-ships the dearest unit shipped (the shortest residual path).
    used = fill > 0
    dearest = np.full(len(b.sink), -np.inf)
    np.maximum.at(dearest, owner[used], path_cost[used])
    shipped = np.bincount(owner, weights=fill, minlength=len(b.sink))
    sold_out = ~solved & (ship.supply > 0) & (shipped == ship.supply)
    priced = ship.node_ships & sold_out[b.node_sku]
    node_cents[priced] = -dearest[b.node_sku[priced]]
    return lane_flows, node_cents / CENTS


def _availability(
    b: _Batch, lane_cents: np.ndarray, lane_cap: np.ndarray, reach: np.ndarray, overflow_tiers: int,
    ship: _Shipping,
) -> np.ndarray:
    """Problem B: lane flows placing every reachable unit in exactly one region.
    SKUs marked ``ship.solved`` go to the flow solver; the others are poured."""
    n_skus, solved, total, supply = len(b.sink), ship.solved, ship.supply, ship.node_supply

    high = np.full(n_skus, np.iinfo(np.int64).min)
    low = np.full(n_skus, np.iinfo(np.int64).max)
    np.maximum.at(high, b.lane_sku, lane_cents)
    np.minimum.at(low, b.lane_sku, lane_cents)
    spread = np.where(high >= low, high - low, 0)
    nodes_per_sku = np.bincount(b.node_sku, minlength=n_skus)
    gap = nodes_per_sku * spread + 1

    reached = reach > 0
    rv, rk, reach = b.region_v[reached], b.region_sku[reached], reach[reached]
    forecast = np.ceil(b.region_demand[reached]).astype(np.int64)
    # Tiers no optimum can reach are left out (see the module docstring): the region's
    # reach bounds its inflow, and a node's regions' earlier tiers must all fit in the
    # SKU's supply. Per node: the forecast and the round (max(forecast, 1)) of its regions.
    at_vertex = np.zeros(b.n_vertices, dtype=np.int64)
    at_vertex[rv] = forecast
    node_forecast = np.bincount(b.lane_tail, weights=at_vertex[b.lane_head], minlength=b.n_vertices)[b.lane_tail]
    at_vertex[rv] = np.maximum(forecast, 1)
    node_round = np.bincount(b.lane_tail, weights=at_vertex[b.lane_head], minlength=b.n_vertices)[b.lane_tail]
    lane_supply = total[b.lane_sku]
    tiers = [(forecast, overflow_tiers + 1)]
    tiers += [(np.maximum(forecast, 1), overflow_tiers + 1 - t) for t in range(1, overflow_tiers + 1)]
    tiers += [(total[rk], 0)]
    tier_tail, tier_sku, tier_cap, tier_cost = [], [], [], []
    before = np.zeros(len(rv), dtype=np.int64)  # capacity of the region's earlier tiers
    for t, (capacity, reward) in enumerate(tiers):
        used = (reach > before) & (capacity > 0)
        if t > 0:
            fits = node_forecast + (t - 1) * node_round < lane_supply  # per lane, at its node
            used &= np.bincount(b.lane_head, weights=fits, minlength=b.n_vertices)[rv] > 0
        tier_tail.append(rv[used])
        tier_sku.append(rk[used])
        tier_cap.append(capacity[used])
        tier_cost.append(-reward * gap[rk[used]])
        before = before + capacity
    tier_tail, tier_sku = np.concatenate(tier_tail), np.concatenate(tier_sku)
    tier_cap, tier_cost = np.concatenate(tier_cap), np.concatenate(tier_cost)
    lane_flows = np.zeros(len(b.lane_tail), dtype=np.int64)

    lanes, arcs = solved[b.lane_sku], solved[tier_sku]
    if lanes.any():
        nodes = solved[b.node_sku]
        flows = solve_min_cost_flow(
            np.concatenate([b.lane_tail[lanes], tier_tail[arcs]]),
            np.concatenate([b.lane_head[lanes], b.sink[tier_sku[arcs]]]),
            np.concatenate([lane_cap[lanes], tier_cap[arcs]]),
            np.concatenate([lane_cents[lanes], tier_cost[arcs]]),
            np.concatenate([b.node_v[nodes], b.sink[solved]]),
            np.concatenate([supply[nodes], -total[solved]]),
        )
        lane_flows[lanes] = flows[: int(lanes.sum())]

    # Poured: every unit goes, down to the last tier (capacity: all the stock that can ship).
    lane = ship.lane_to[tier_tail[~arcs]]
    fill = _pour(tier_sku[~arcs], tier_cost[~arcs] + lane_cents[lane], tier_cap[~arcs], total)
    lane_flows += np.bincount(lane, weights=fill, minlength=len(lane_flows)).astype(np.int64)
    return lane_flows
