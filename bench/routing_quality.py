"""Routing quality: a 90-day synthetic creator-brand trace through three policies.

    .venv/bin/python bench/routing_quality.py                  # seeds 1 2 3, 90 days, 60 orders/day
    .venv/bin/python bench/routing_quality.py --seed 1 --ablations
    .venv/bin/python bench/routing_quality.py --lp-only --ceiling   # the dual-price policy's ceiling
    .venv/bin/python bench/routing_quality.py --days 30 --orders-per-day 20 --lp-only

The trace (``make_trace``, seeded): 4 regions (ne 35% of orders, 2-day promise;
se 25%, 3d; mw 15%, 2d; west 25%, 3d), 5 nodes: ``hub`` (central, every lane
3-4 days: late everywhere; the other nodes' backup), ``east`` (ne 1d, se 2d),
``westnode`` (west 1d), ``partner`` (cheapest: mw 2d and se 2d; the only node
meeting mw's promise), ``cold`` (cold chain, the only node for the 6 cold SKUs);
30 SKUs (Zipf popularity, regional taste), orders of 1-3 lines of 1-3 units; a
viral spike (3 partner-stocked SKUs x2.5 in se for 4 days at day 30) and an
outage (east offline 6 days at day 54). 8 weeks of sales history before day 0
feed the forecast. Stock: initial + a fixed replenishment schedule per node
(weekly to biweekly), planned from *expected* demand at ``--fill`` (92%) of it,
hub keeping ``--hub-share`` of the regional nodes' supply as backup stock and
partner getting ``--partner-slack`` x the Midwest's demand.

What runs (every policy sees the same trace, the same stock, the same
replenishment schedule and the same outage, when it happens, and is charged by
the same cost function, ``order_cost``):

1. ``greedy``: Shopify's default routing (reference/shopify.md §4.6): minimise
   split fulfilments (a location with every item first; otherwise the fewest
   packages), then stay within the destination market (one market here: a
   no-op), then the closest location (Haversine). Implemented here, directly.
2. ``ours``: ``connector.domain.routing.Router`` with the rule chain of
   ``--rules`` and the allocation's per-unit dual prices, recomputed every
   night by ``connector.domain.allocation.allocate`` (arcs from its
   ``eligible_arcs``; stock + the brand's own inbound purchase orders within the
   horizon) from a demand forecast made by ``connector.domain.forecast`` out of
   the trailing sales only (no peeking). Also printed: the router without dual
   prices; with ``--ablations``, duals from a perfect forecast (the true future
   demand: NOT a policy), duals with the hub's backup lanes added to the
   allocation's arcs, duals from the stock on hand only (no inbound), and the
   other rule chain; with ``--ceiling`` (also part of ``--ablations``), the router
   with clairvoyant prices: each night the hindsight LP's own dual prices over the
   forecast horizon and over the rest of the trace, from that night's stock (peeks:
   NOT a policy; what the dual-price router does with perfectly informed prices).
3. ``hindsight``: one MILP over the whole trace (scipy HiGHS), knowing every
   order, the outage and the schedule: each order line shipped whole from one
   router-eligible node on its order day or lost, one shipment cost (+ late
   penalty) per (order, node) used, stock balance per node, SKU and day. Its LP
   relaxation is printed too (a lower bound on the MILP, and so on any policy).
   A second MILP, the non-idling hindsight, may not leave a line unfilled while
   an eligible node still has the units (greedy and the router never do): its
   bound says what routing alone, with perfect foresight, could reach.

The figure asked for: the share of the greedy-to-hindsight gap that ours closes,
(greedy - ours) / (greedy - hindsight), target >= 0.4.

Cost of an order (``order_cost``): for each shipment (distinct node used) the
lane's cost_per_order, plus ``--late-penalty`` when the lane's transit days
exceed the region's promise; plus ``--lost-sale`` per unit of a line nobody
ships. A line that cannot ship on its order day is lost (no backorders, for
every policy and for the hindsight model alike). The router does not see the
late penalty (it ranks lanes that miss the promise last instead), nor does greedy.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import random
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _host, also when imported from a test
from _host import cpu_idle_percent, load_average, machine  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connector.domain.model import (  # noqa: E402
    Address,
    Handling,
    Lane,
    Mode,
    ModePolicy,
    Network,
    Node,
    NodeStatus,
    Order,
    OrderLine,
    Region,
    RoutingPolicy,
    Rule,
    SkuRule,
)
from connector.domain.routing import Router  # noqa: E402

TZ = "America/New_York"
START = date(2026, 3, 2)  # a Monday; day 0 of the trace
TARGET_SHARE = 0.4


# ---------------------------------------------------------------- the trace's data


@dataclass(frozen=True)
class SimOrder:
    id: str
    day: int  # negative: history before the trace (only the forecast sees it)
    region: str
    lines: tuple[tuple[str, int], ...]  # (sku, quantity); SKUs distinct within an order


@dataclass
class Trace:
    network: Network
    days: int
    orders: list[list[SimOrder]]  # per day 0..days-1, in arrival order
    history: list[SimOrder]  # orders before day 0 (sales history for the forecast)
    initial: dict[tuple[str, str], int]  # (node, sku) -> units at the start of day 0
    replenishment: dict[int, dict[tuple[str, str], int]]  # day -> (node, sku) -> units arriving that morning
    outages: dict[str, frozenset[int]]  # node -> days it is offline
    coords: dict[str, tuple[float, float]]  # node and region ids -> (lat, lon), for greedy's "closest"
    markets: dict[str, str]  # node and region ids -> market, for greedy's "same market"
    skus: tuple[str, ...]
    category: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def offline(self, day: int) -> frozenset[str]:
        return frozenset(n for n, ds in self.outages.items() if day in ds)

    def now(self, day: int) -> datetime:
        """10:00 local on the trace's day (no node has a cutoff or capacity here)."""
        d = START + timedelta(days=day)
        return datetime(d.year, d.month, d.day, 10, 0, tzinfo=ZoneInfo(self.network.timezone))


# ---------------------------------------------------------------- the network


def network_for(network: Network, offline: Iterable[str]) -> Network:
    """The same network with these nodes marked offline (what the policies see that day)."""
    offline = set(offline)
    if not offline:
        return network
    nodes = {nid: (replace(n, status=NodeStatus.OFFLINE, status_note="outage") if nid in offline else n)
             for nid, n in network.nodes.items()}
    return replace(network, nodes=nodes)


def _rule_lookup(network: Network, sku: str) -> SkuRule:
    """The SKU's handling rule, matched as the router matches it (exact, then glob)."""
    for r in network.sku_rules:
        if r.pattern == sku:
            return r
    for r in network.sku_rules:
        if any(ch in r.pattern for ch in "*?[") and fnmatchcase(sku, r.pattern):
            return r
    return SkuRule(pattern="*")


def candidate_lanes(network: Network, region_id: str) -> list[tuple[str, Lane, int]]:
    """(node, lane, stage) that may ship to the region, as the router's stages see them:
    stage 0 lanes within the promise, stage 1 lanes of the serving nodes' backups.
    (This bench's network has no fallback regions and no mode restrictions.)"""
    region = network.regions[region_id]
    seen: dict[str, tuple[str, Lane, int]] = {}
    serving = sorted((n for n in network.nodes.values() if region_id in n.lanes), key=lambda n: n.id)
    for n in serving:
        lane = n.lanes[region_id]
        if lane.transit_days <= region.promise_days:
            seen.setdefault(n.id, (n.id, lane, 0))
    for n in serving:
        for b in n.backups:
            lane = network.nodes[b].lanes.get(region_id)
            if lane is not None:
                seen.setdefault(b, (b, lane, 1))
    return list(seen.values())


def handles(network: Network, node_id: str, lane: Lane, rule: SkuRule) -> bool:
    caps = network.nodes[node_id].capabilities
    if any(h.value not in caps for h in rule.handling):
        return False
    return rule.max_transit_days is None or lane.transit_days <= rule.max_transit_days


def eligible_nodes(network: Network, region_id: str, sku: str, offline: frozenset[str] = frozenset()) -> list[tuple[str, Lane]]:
    """Nodes that may ship ``sku`` to the region (lane, handling, not offline); stock not checked."""
    rule = _rule_lookup(network, sku)
    return [(nid, lane) for nid, lane, _stage in candidate_lanes(network, region_id)
            if nid not in offline and handles(network, nid, lane, rule)]


# ---------------------------------------------------------------- the creator brand


REGION_SPEC = {
    # id: (name, promise days, share of orders, centroid)
    "ne": ("US Northeast", 2, 0.35, (40.7, -74.0)),
    "se": ("US Southeast", 3, 0.25, (33.7, -84.4)),
    "mw": ("US Midwest", 2, 0.15, (41.9, -87.6)),
    "west": ("US West", 3, 0.25, (37.0, -120.0)),
}

NODE_SPEC = {
    # id: (kind, role, location, capabilities, lanes {region: (days, cost)}, backups)
    "hub": ("central_warehouse", "evergreen", (32.8, -96.8), frozenset({"fragile"}),
            {"ne": (4, 9.0), "se": (4, 9.0), "mw": (3, 8.5), "west": (4, 10.0)}, ()),
    "east": ("regional_hub", "regional_replenishment", (40.3, -76.9), frozenset({"fragile"}),
             {"ne": (1, 6.0), "se": (2, 7.0)}, ("hub",)),
    "westnode": ("regional_hub", "regional_replenishment", (39.5, -119.8), frozenset({"fragile"}),
                 {"west": (1, 6.0)}, ("hub",)),
    "partner": ("3pl_partner", "regional_replenishment", (36.2, -86.8), frozenset(),
                {"mw": (2, 4.5), "se": (2, 4.5)}, ("hub",)),
    "cold": ("cold_storage", "evergreen", (40.7, -74.2), frozenset({"cold_chain"}),
             {"ne": (1, 9.0), "se": (2, 10.0), "mw": (2, 10.0), "west": (3, 12.0)}, ()),
}

CATEGORIES = (("TEE", 8, False), ("PRINT", 6, False), ("CANDLE", 6, False), ("BOOK", 4, False),
              ("SERUM", 4, True), ("BALM", 2, True))


def build_network(rules: Sequence[Rule]) -> Network:
    regions = {rid: Region(rid, name, promise_days=p, countries=frozenset({"US"}))
               for rid, (name, p, _share, _c) in REGION_SPEC.items()}
    nodes = {}
    for nid, (kind, role, _loc, caps, lanes, backups) in NODE_SPEC.items():
        nodes[nid] = Node(id=nid, name=nid, kind=kind, role=role, capabilities=caps, backups=backups,
                          lanes={r: Lane(r, d, c) for r, (d, c) in lanes.items()})
    modes = {m: ModePolicy(tuple(rules)) for m in Mode}
    return Network(shop_id="creator", timezone=TZ, regions=regions, nodes=nodes,
                   sku_rules=(SkuRule("SERUM-*", frozenset({Handling.COLD_CHAIN}), max_transit_days=3),
                              SkuRule("BALM-*", frozenset({Handling.COLD_CHAIN}), max_transit_days=3)),
                   routing=RoutingPolicy(mode=Mode.NORMAL, modes=modes))


def make_trace(*, days: int = 90, orders_per_day: float = 60.0, seed: int = 1, rules: Sequence[Rule] = (),
               history_days: int = 56, spike_mult: float = 2.5, spike_days: int = 4, outage_days: int = 6,
               fill: float = 0.92, partner_slack: float = 1.3, hub_share: float = 0.15) -> Trace:
    """The synthetic creator brand (the module docstring says what it holds; ``describe``
    prints it). Deterministic for a seed."""
    rng = random.Random(seed)
    network = build_network(rules or (Rule.CHEAPEST, Rule.SINGLE_SHIPMENT, Rule.FASTEST))
    skus, category, cold = [], {}, set()
    for cat, count, is_cold in CATEGORIES:
        for i in range(1, count + 1):
            sku = f"{cat}-{i:02d}"
            skus.append(sku)
            category[sku] = cat
            if is_cold:
                cold.add(sku)
    ambient = [s for s in skus if s not in cold]
    # Popularity: Zipf over a seeded random ranking; cold SKUs are ~15% of demand.
    ranking = ambient[:]
    rng.shuffle(ranking)
    pop = {s: 1.0 / (i + 1) ** 0.8 for i, s in enumerate(ranking)}
    cold_ranked = sorted(cold)
    rng.shuffle(cold_ranked)
    amb_total = sum(pop.values())
    cold_w = [1.0 / (i + 1) ** 0.8 for i in range(len(cold_ranked))]
    for s, w in zip(cold_ranked, cold_w):
        pop[s] = w / sum(cold_w) * amb_total * 0.15 / 0.85
    # Regional taste: each region skews the popularity by a lognormal factor.
    taste = {r: {s: pop[s] * math.exp(rng.gauss(0.0, 0.4)) for s in skus} for r in REGION_SPEC}
    # Assortments: east and westnode carry the top 16 ambient SKUs, partner the top 12,
    # hub every ambient SKU, cold every cold SKU.
    assortment = {"hub": set(ambient), "east": set(ranking[:16]), "westnode": set(ranking[:16]),
                  "partner": set(ranking[:12]), "cold": set(cold)}

    region_ids = list(REGION_SPEC)
    region_w = [REGION_SPEC[r][2] for r in region_ids]
    weekday = [0.95, 0.95, 1.0, 1.0, 1.05, 1.15, 0.9]
    spike_region = "se"
    spike_skus = tuple(sorted(ranking[:12], key=lambda s: -taste[spike_region][s])[:3])  # partner-stocked
    spike_start = days // 3
    spike = set(range(spike_start, min(days, spike_start + spike_days)))
    outage_start = int(days * 0.6)
    outages = {"east": frozenset(range(outage_start, min(days, outage_start + outage_days)))} if outage_days else {}

    def draw_order(oid: str, day: int, region: str, first: str | None = None) -> SimOrder:
        n_lines = rng.choices((1, 2, 3), weights=(55, 30, 15))[0]
        picked = [first] if first else []
        weights = taste[region]
        while len(picked) < n_lines:
            s = rng.choices(skus, weights=[weights[x] for x in skus])[0]
            if s not in picked:
                picked.append(s)
        return SimOrder(oid, day, region, tuple((s, rng.choices((1, 2, 3), weights=(80, 15, 5))[0]) for s in picked))

    def poisson(lam: float) -> int:
        return int(np.random.default_rng(rng.getrandbits(63)).poisson(lam))

    counter = 0

    def day_orders(day: int) -> list[SimOrder]:
        nonlocal counter
        out = []
        n = poisson(orders_per_day * weekday[(START + timedelta(days=day)).weekday()])
        for _ in range(n):
            counter += 1
            out.append(draw_order(f"o{counter}", day, rng.choices(region_ids, weights=region_w)[0]))
        if day in spike:
            # Viral post: demand for the spike SKUs in the spike region x spike_mult, as
            # extra orders that start with one of them.
            base_region = orders_per_day * REGION_SPEC[spike_region][2]
            tw = sum(taste[spike_region].values())
            for s in spike_skus:
                extra = poisson((spike_mult - 1.0) * base_region * 1.6 * taste[spike_region][s] / tw)
                for _ in range(extra):
                    counter += 1
                    out.append(draw_order(f"o{counter}", day, spike_region, first=s))
            rng.shuffle(out)
        return out

    history = [o for d in range(-history_days, 0) for o in day_orders(d)]
    orders = [day_orders(d) for d in range(days)]

    # Replenishment plan, from *expected* demand (the brand's plan, not the realised trace):
    # ne and se from east, mw from partner, west from westnode, where they carry the SKU,
    # the rest from hub; cold from cold. Supply = fill x planned demand; of the regional
    # nodes' share, hub keeps hub_share as the central backup buffer; partner gets
    # partner_slack x the Midwest's demand (spare units that tempt a greedy router).
    lines_per_order = 0.55 * 1 + 0.30 * 2 + 0.15 * 3
    units_per_line = 0.80 * 1 + 0.15 * 2 + 0.05 * 3
    daily = defaultdict(float)  # (node, sku) -> planned units/day
    for r in region_ids:
        tw = sum(taste[r].values())
        for s in skus:
            units = orders_per_day * REGION_SPEC[r][2] * lines_per_order * units_per_line * taste[r][s] / tw
            if s in cold:
                daily[("cold", s)] += units * fill
            elif r == "mw" and s in assortment["partner"]:
                daily[("partner", s)] += units * partner_slack
            elif r in ("ne", "se") and s in assortment["east"]:
                daily[("east", s)] += units * fill * (1 - hub_share)
                daily[("hub", s)] += units * fill * hub_share
            elif r == "west" and s in assortment["westnode"]:
                daily[("westnode", s)] += units * fill * (1 - hub_share)
                daily[("hub", s)] += units * fill * hub_share
            else:
                daily[("hub", s)] += units * fill
    period = {"hub": 14, "east": 7, "westnode": 7, "partner": 14, "cold": 10}
    offset = {"hub": 7, "east": 3, "westnode": 5, "partner": 9, "cold": 4}
    initial, replenishment = {}, defaultdict(dict)
    for (n, s), per_day in daily.items():
        initial[(n, s)] = int(round(per_day * offset[n]))  # covers until the first delivery
        for d in range(offset[n], days, period[n]):
            replenishment[d][(n, s)] = int(round(per_day * period[n]))

    coords = {nid: spec[2] for nid, spec in NODE_SPEC.items()}
    coords.update({rid: spec[3] for rid, spec in REGION_SPEC.items()})
    markets = {k: "US" for k in coords}
    trace = Trace(network=network, days=days, orders=orders, history=history, initial=initial,
                  replenishment=dict(replenishment), outages=outages, coords=coords, markets=markets,
                  skus=tuple(skus), category=category)
    trace.notes = [
        f"spike: days {min(spike)}-{max(spike)} in {spike_region}, {', '.join(spike_skus)} x{spike_mult}" if spike else "no spike",
        "outage: " + (", ".join(f"{n} offline days {min(ds)}-{max(ds)}" for n, ds in outages.items() if ds) or "none"),
    ]
    return trace


def describe(trace: Trace, costs: "Costs") -> list[str]:
    net = trace.network
    n_orders = sum(len(d) for d in trace.orders)
    lines = sum(len(o.lines) for d in trace.orders for o in d)
    units = sum(q for d in trace.orders for o in d for _s, q in o.lines)
    supply = sum(trace.initial.values()) + sum(sum(r.values()) for r in trace.replenishment.values())
    by_region = defaultdict(int)
    for d in trace.orders:
        for o in d:
            by_region[o.region] += 1
    out = [f"trace: {trace.days} days, {n_orders} orders, {lines} lines, {units} units; "
           f"history {len(trace.history)} orders over the {len({o.day for o in trace.history})} days before day 0; "
           f"{len(trace.skus)} SKUs ({sum(1 for s in trace.skus if _rule_lookup(net, s).handling)} cold chain)",
           "  orders by region: " + ", ".join(f"{r} {by_region[r]} ({by_region[r] / max(n_orders, 1):.0%}, "
                                              f"promise {net.regions[r].promise_days}d)" for r in net.regions),
           f"  supply (initial + replenishment) {supply} units = {supply / max(units, 1):.0%} of demand; "
           + ", ".join(f"{n} {sum(v for (m, _s), v in trace.initial.items() if m == n)}+"
                       f"{sum(v for r in trace.replenishment.values() for (m, _s), v in r.items() if m == n)}"
                       for n in net.nodes)]
    for n in net.nodes.values():
        lanes = ", ".join(f"{r} {l.transit_days}d ${l.cost_per_order:g}"
                          + ("" if l.transit_days <= net.regions[r].promise_days else " (late)")
                          for r, l in n.lanes.items())
        out.append(f"  node {n.id} ({n.kind}; caps {sorted(n.capabilities) or '-'}; backups {list(n.backups) or '-'}): {lanes}")
    out.append("  " + "; ".join(trace.notes))
    out.append(f"  costs: lane cost_per_order per shipment, late penalty ${costs.late_penalty:g} per shipment "
               f"past the promise, lost sale ${costs.lost_sale:g} per unit")
    return out


# ---------------------------------------------------------------- cost


@dataclass(frozen=True)
class Costs:
    late_penalty: float = 10.0  # per shipment whose lane misses the region's promise
    lost_sale: float = 30.0  # per unit that nobody ships


@dataclass
class Tally:
    orders: int = 0
    shipping: float = 0.0
    late_cost: float = 0.0
    lost_cost: float = 0.0
    shipments: int = 0
    late_shipments: int = 0
    late_orders: int = 0
    split_orders: int = 0
    lost_lines: int = 0
    lost_units: int = 0
    orders_with_lost: int = 0
    units_shipped: int = 0

    @property
    def total(self) -> float:
        return self.shipping + self.late_cost + self.lost_cost


def order_cost(network: Network, order: SimOrder, assignment: Mapping[int, str | None], costs: Costs,
               tally: Tally | None = None) -> float:
    """The one cost function: per shipment (distinct node) its lane cost, + the late
    penalty if the lane misses the promise; + lost_sale per unit not shipped."""
    region = network.regions[order.region]
    used = sorted({n for n in assignment.values() if n is not None})
    shipping = sum(network.nodes[n].lanes[order.region].cost_per_order for n in used)
    late = [n for n in used if network.nodes[n].lanes[order.region].transit_days > region.promise_days]
    lost = [(s, q) for i, (s, q) in enumerate(order.lines) if assignment.get(i) is None]
    lost_units = sum(q for _s, q in lost)
    total = shipping + costs.late_penalty * len(late) + costs.lost_sale * lost_units
    if tally is not None:
        tally.orders += 1
        tally.shipping += shipping
        tally.late_cost += costs.late_penalty * len(late)
        tally.lost_cost += costs.lost_sale * lost_units
        tally.shipments += len(used)
        tally.late_shipments += len(late)
        tally.late_orders += bool(late)
        tally.split_orders += len(used) > 1
        tally.lost_lines += len(lost)
        tally.lost_units += lost_units
        tally.orders_with_lost += bool(lost)
        tally.units_shipped += sum(q for i, (_s, q) in enumerate(order.lines) if assignment.get(i) is not None)
    return total


# ---------------------------------------------------------------- simulation


@dataclass
class Day:
    """What a policy may know on a day: that day's network (outages as they happen),
    the stock, the sales up to the day before, and the replenishment schedule (the
    brand's own purchase orders)."""

    day: int
    now: datetime
    network: Network
    offline: frozenset[str]
    history: Sequence[SimOrder]  # every order placed before this day, history included
    replenishment: Mapping[int, Mapping[tuple[str, str], int]]


class Policy:
    name = "policy"

    def begin_day(self, ctx: Day, stock: Mapping[tuple[str, str], int]) -> None:
        pass

    def route(self, order: SimOrder, ctx: Day, stock: Mapping[tuple[str, str], int]) -> dict[int, str | None]:
        raise NotImplementedError


@dataclass
class Outcome:
    name: str
    tally: Tally
    assignments: dict[str, dict[int, str | None]]
    final_stock: dict[tuple[str, str], int]
    seconds: float
    notes: list[str] = field(default_factory=list)


def simulate(trace: Trace, policy: Policy, costs: Costs) -> Outcome:
    stock: dict[tuple[str, str], int] = defaultdict(int, trace.initial)
    history: list[SimOrder] = list(trace.history)
    tally = Tally()
    assignments: dict[str, dict[int, str | None]] = {}
    t0 = time.perf_counter()
    nets: dict[frozenset[str], Network] = {}
    for day in range(trace.days):
        for key, qty in trace.replenishment.get(day, {}).items():
            stock[key] += qty
        offline = trace.offline(day)
        net = nets.get(offline) or nets.setdefault(offline, network_for(trace.network, offline))
        ctx = Day(day, trace.now(day), net, offline, tuple(history), trace.replenishment)
        policy.begin_day(ctx, stock)
        for order in trace.orders[day]:
            assignment = policy.route(order, ctx, stock)
            eligible_by_sku = {}
            for i, (sku, qty) in enumerate(order.lines):
                node = assignment.get(i)
                if node is None:
                    continue
                ok = eligible_by_sku.get(sku)
                if ok is None:
                    ok = eligible_by_sku[sku] = {n for n, _l in eligible_nodes(trace.network, order.region, sku, offline)}
                if node not in ok:
                    raise AssertionError(f"{policy.name}: {order.id} line {i} to ineligible node {node}")
                if stock[(node, sku)] < qty:
                    raise AssertionError(f"{policy.name}: {order.id} line {i} takes {qty} {sku} from {node} "
                                         f"holding {stock[(node, sku)]}")
                stock[(node, sku)] -= qty
            assignments[order.id] = {i: assignment.get(i) for i in range(len(order.lines))}
            order_cost(trace.network, order, assignments[order.id], costs, tally)
        history.extend(trace.orders[day])
    outcome = Outcome(policy.name, tally, assignments, dict(stock), time.perf_counter() - t0)
    if isinstance(policy, RouterPolicy):
        outcome.notes.append("deciding rule per order: " + ", ".join(
            f"{rule} {n}" for rule, n in sorted(policy.deciding.items(), key=lambda kv: -kv[1])))
    return outcome


def check_conservation(trace: Trace, outcome: Outcome) -> list[str]:
    """Units in = units out + left, per (node, SKU); shipped + lost = demanded."""
    problems = []
    supplied = defaultdict(int, trace.initial)
    for r in trace.replenishment.values():
        for k, q in r.items():
            supplied[k] += q
    shipped = defaultdict(int)
    lost = demanded = 0
    for day in trace.orders:
        for o in day:
            a = outcome.assignments[o.id]
            for i, (s, q) in enumerate(o.lines):
                demanded += q
                if a.get(i) is None:
                    lost += q
                else:
                    shipped[(a[i], s)] += q
    for k in set(supplied) | set(shipped) | set(outcome.final_stock):
        if supplied[k] - shipped[k] != outcome.final_stock.get(k, 0) or outcome.final_stock.get(k, 0) < 0:
            problems.append(f"{outcome.name}: {k} supplied {supplied[k]} shipped {shipped[k]} "
                            f"left {outcome.final_stock.get(k, 0)}")
    if sum(shipped.values()) + lost != demanded:
        problems.append(f"{outcome.name}: shipped {sum(shipped.values())} + lost {lost} != demanded {demanded}")
    return problems


def dropped_on_purpose(trace: Trace, outcome: Outcome) -> tuple[int, int]:
    """(lines, units) left unfilled although an eligible node still held enough of the
    SKU at the end of that day. Greedy and the router never do this (0 for them: a
    check); the hindsight optimum does when the unit is worth more to a later order."""
    stock: dict[tuple[str, str], int] = defaultdict(int, trace.initial)
    lines = units = 0
    for day in range(trace.days):
        for key, q in trace.replenishment.get(day, {}).items():
            stock[key] += q
        for o in trace.orders[day]:
            for i, (s, q) in enumerate(o.lines):
                n = outcome.assignments[o.id][i]
                if n is not None:
                    stock[(n, s)] -= q
        off = trace.offline(day)
        for o in trace.orders[day]:
            for i, (s, q) in enumerate(o.lines):
                if outcome.assignments[o.id][i] is None and any(
                        stock[(n, s)] >= q for n, _l in eligible_nodes(trace.network, o.region, s, off)):
                    lines += 1
                    units += q
    return lines, units


# ---------------------------------------------------------------- policy 1: Shopify greedy


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


class ShopifyGreedy(Policy):
    """Shopify's default rules (shopify.md §4.6), in order: minimise split fulfilments
    (locations with every item in stock first; otherwise the fewest packages), stay in
    the destination market, the closest location (Haversine). Locations: the nodes
    with a lane to the region that the router would also consider, not offline, that
    handle the SKU. A line no location can ship is lost."""

    name = "greedy (Shopify)"

    def __init__(self, trace: Trace):
        self.trace = trace

    def _rank(self, node: str, region: str) -> tuple:
        t = self.trace
        return (t.markets[node] != t.markets[region], haversine_km(t.coords[node], t.coords[region]), node)

    def route(self, order, ctx, stock):
        net = self.trace.network
        options = [{n for n, _l in eligible_nodes(net, order.region, s, ctx.offline) if stock.get((n, s), 0) >= q}
                   for s, q in order.lines]
        assignment: dict[int, str | None] = {i: None for i in range(len(order.lines))}
        remaining = {i for i, opts in enumerate(options) if opts}
        while remaining:
            cover = defaultdict(list)
            for i in remaining:
                for n in options[i]:
                    cover[n].append(i)
            node = min(cover, key=lambda n: (-len(cover[n]), self._rank(n, order.region)))
            for i in cover[node]:
                assignment[i] = node
            remaining -= set(cover[node])
        return assignment


# ---------------------------------------------------------------- policy 2: our router


class RouterPolicy(Policy):
    """``Router.route`` per order, with the opportunity map a pricer gives each night."""

    def __init__(self, trace: Trace, name: str, pricer: Callable[[Day, Mapping], Mapping] | None = None):
        self.trace = trace
        self.name = name
        self.pricer = pricer
        self.routers: dict[frozenset[str], Router] = {}
        self.opportunity: Mapping[tuple[str, str], float] = {}
        self.orders_today: dict[str, int] = {}
        self.deciding: dict[str, int] = defaultdict(int)  # the router's deciding rule, per order

    def begin_day(self, ctx, stock):
        self.orders_today = defaultdict(int)
        if self.pricer is not None:
            self.opportunity = self.pricer(ctx, stock)

    def route(self, order, ctx, stock):
        router = self.routers.get(ctx.offline)
        if router is None:
            router = self.routers[ctx.offline] = Router(ctx.network)
        lines = tuple(OrderLine(str(i), s, q) for i, (s, q) in enumerate(order.lines))
        o = Order(shop_id=ctx.network.shop_id, order_id=order.id, number=order.id, platform="shopify",
                  created_at=ctx.now, updated_at=ctx.now, ship_to=Address("US", None, None), lines=lines)
        result = router.route(o, order.region, stock, self.orders_today, ctx.now, self.opportunity or None)
        assignment: dict[int, str | None] = {i: None for i in range(len(order.lines))}
        for d in result.decisions:
            assignment[int(d.line_id)] = d.node_id
        routed = [d.rule for d in result.decisions if d.node_id is not None]
        self.deciding[routed[0] if routed else "exception"] += 1
        for n in {n for n in assignment.values() if n}:
            self.orders_today[n] += 1
        return assignment


# ---------------------------------------------------------------- dual prices (allocation + forecast)


def known_inbound(ctx: Day, horizon_days: int) -> dict[tuple[str, str], int]:
    """Units of the brand's own purchase orders arriving in the next ``horizon_days``
    (after today's, which are already in stock)."""
    out: dict[tuple[str, str], int] = defaultdict(int)
    for d in range(ctx.day + 1, ctx.day + horizon_days):
        for k, q in ctx.replenishment.get(d, {}).items():
            out[k] += q
    return out


class DualPricer:
    """Nightly: forecast demand per (SKU, region) over the horizon from the trailing
    sales, then ``allocate`` one problem per SKU (stock + known inbound within the
    horizon, the router-eligible arcs of that day's network, the forecast, the
    lost-sale cost), and hand the router each (node, SKU)'s opportunity cost.

    ``perfect``: the demand is the trace's true demand over the horizon (an
    ablation that peeks; not a policy). ``backup_arcs``: also give the allocation
    the router's stage-1 lanes (the serving nodes' backups, here hub, which
    ``eligible_arcs`` leaves out because they miss the promise) at their lane cost
    (an ablation of the allocation's inputs; knows nothing more about the future)."""

    def __init__(self, trace: Trace, costs: Costs, horizon_days: int = 14, weeks: int = 8,
                 perfect: bool = False, include_inbound: bool = True, backup_arcs: bool = False):
        importlib.import_module("connector.domain.allocation")  # fail early (ImportError) if it is missing
        self.trace = trace
        self.costs = costs
        self.horizon = horizon_days
        self.weeks = weeks
        self.perfect = perfect
        self.include_inbound = include_inbound
        self.backup_arcs = backup_arcs
        self.calls = 0
        self.seconds = 0.0

    def demand(self, ctx: Day) -> dict[tuple[str, str], float]:
        """(sku, region) -> units expected over the horizon."""
        if self.perfect:
            out: dict[tuple[str, str], float] = defaultdict(float)
            for d in range(ctx.day, min(ctx.day + self.horizon, self.trace.days)):
                for o in self.trace.orders[d]:
                    for s, q in o.lines:
                        out[(s, o.region)] += q
            return out
        return forecast_horizon(self.trace, ctx, self.horizon, self.weeks)

    def __call__(self, ctx: Day, stock: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], float]:
        from connector.domain.allocation import Arc, SkuProblem, allocate, eligible_arcs
        t0 = time.perf_counter()
        demand = self.demand(ctx)
        inbound = known_inbound(ctx, self.horizon) if self.include_inbound else {}
        router = Router(ctx.network)
        problems = []
        for sku in self.trace.skus:
            arcs = tuple(eligible_arcs(ctx.network, router.sku_rule(sku), ctx.now))
            if self.backup_arcs:
                have = {(a.node_id, a.region_id) for a in arcs}
                extra = [Arc(n, r, lane.cost_per_order) for r in ctx.network.regions
                         for n, lane in eligible_nodes(ctx.network, r, sku, ctx.offline) if (n, r) not in have]
                arcs = tuple(sorted((*arcs, *extra), key=lambda a: (a.node_id, a.region_id)))
            nodes = {a.node_id for a in arcs}
            problems.append(SkuProblem(
                sku=sku,
                stock={n: int(stock.get((n, sku), 0) + inbound.get((n, sku), 0)) for n in sorted(nodes)},
                arcs=arcs,
                demand={r: float(demand.get((sku, r), 0.0)) for r in ctx.network.regions},
                lost_sale_cost=self.costs.lost_sale,
            ))
        prices = {}
        for a in allocate(problems):
            for n, v in a.opportunity_cost.items():
                if v:
                    prices[(n, a.sku)] = float(v)
        self.calls += 1
        self.seconds += time.perf_counter() - t0
        return prices


class ClairvoyantPricer:
    """NOT a policy (it peeks): each night, ``stock_prices`` of the hindsight LP over the
    rest of the trace (or the next ``horizon_days``) from that night's stock, knowing
    every later order, delivery and outage. Prices as well informed as prices can be:
    what the router makes of them is the mark any forecast-driven pricing would have to
    beat (a ceiling in that sense, not a proof that no price vector does better)."""

    def __init__(self, trace: Trace, costs: Costs, horizon_days: int | None = None):
        self.trace = trace
        self.costs = costs
        self.horizon = horizon_days
        self.calls = 0
        self.seconds = 0.0

    def rest_of_trace(self, ctx: Day, stock: Mapping[tuple[str, str], int]) -> Trace:
        """The trace from ``ctx.day`` on, renumbered from day 0, starting from ``stock``
        (which already holds today's delivery)."""
        t, start = self.trace, ctx.day
        end = t.days if self.horizon is None else min(t.days, start + self.horizon)
        return replace(
            t, days=end - start, history=[],
            orders=[[replace(o, day=o.day - start) for o in t.orders[d]] for d in range(start, end)],
            initial={k: v for k, v in stock.items() if v > 0},
            replenishment={d - start: r for d, r in t.replenishment.items() if start < d < end},
            outages={n: frozenset(d - start for d in ds if start <= d < end) for n, ds in t.outages.items()},
        )

    def __call__(self, ctx: Day, stock: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], float]:
        t0 = time.perf_counter()
        prices = stock_prices(self.rest_of_trace(ctx, stock), self.costs)
        self.calls += 1
        self.seconds += time.perf_counter() - t0
        return prices


def forecast_horizon(trace: Trace, ctx: Day, horizon_days: int, weeks: int) -> dict[tuple[str, str], float]:
    """``connector.domain.forecast`` over the trailing sales only (every order placed
    before today, at noon local of its day) -> units per (sku, region) over the
    horizon: the baseline weekly forecast x horizon / 7 (no launch uplifts: the
    spike is not announced)."""
    from connector.domain.forecast import ForecastPolicy, forecast_demand, weekly_buckets
    tz = ZoneInfo(trace.network.timezone)

    def noon(day: int) -> datetime:
        d = START + timedelta(days=day)
        return datetime(d.year, d.month, d.day, 12, 0, tzinfo=tz)

    stamps: dict[int, datetime] = {}
    sales = []
    for o in ctx.history:
        if o.day >= ctx.day:
            raise AssertionError("the forecast was handed a sale from today or later")
        at = stamps.get(o.day) or stamps.setdefault(o.day, noon(o.day))
        sales.extend((s, o.region, at, q) for s, q in o.lines)
    buckets = weekly_buckets(sales, as_of=ctx.now, weeks=weeks)
    forecasts = forecast_demand(buckets, skus=trace.skus, regions=trace.network.regions, policy=ForecastPolicy(),
                                category_of=trace.category.get, prior_weekly=lambda _sku: None)
    return {key: f.weekly * horizon_days / 7.0 for key, f in forecasts.items()}


# ---------------------------------------------------------------- policy 3: hindsight MILP / LP


@contextlib.contextmanager
def _quiet_stdout():
    """HiGHS's MIP solver prints debug lines to fd 1 even with disp off; keep the report clean."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


@dataclass
class Hindsight:
    kind: str  # "MILP" or "LP relaxation"
    status: str
    optimal: bool
    objective: float
    bound: float  # a lower bound on the optimum (MILP dual bound, or the LP objective)
    seconds: float
    variables: int
    constraints: int
    outcome: Outcome | None = None  # the MILP's integral plan, costed by order_cost


@dataclass
class _Model:
    """The hindsight model's arrays (``_hindsight_model``): minimise c @ v + const subject
    to lo <= A v <= hi, 0 <= v <= ub."""

    c: np.ndarray
    const: float
    A: object  # scipy.sparse CSR matrix
    lo: np.ndarray
    hi: np.ndarray
    ub: np.ndarray
    integrality: np.ndarray  # 1 for the binary x, y (and z) variables, 0 for stock
    x_keys: list[tuple[SimOrder, int, str]]  # x's columns come first
    opening_rows: dict[tuple[str, str], int]  # (node, sku) -> the row of its day-0 stock balance


def _hindsight_model(trace: Trace, costs: Costs, non_idling: int = 0) -> _Model:
    """The model ``hindsight`` documents, built once for its MILP, its LP relaxation and
    ``stock_prices``."""
    from scipy.sparse import coo_matrix

    net = trace.network
    carried = set(trace.initial) | {k for r in trace.replenishment.values() for k in r}
    x_keys: list[tuple[SimOrder, int, str]] = []
    y_index: dict[tuple[str, str], int] = {}
    y_cost: list[float] = []
    elig_cache: dict[tuple[str, str, frozenset], list[tuple[str, Lane]]] = {}
    orders = [o for day in trace.orders for o in day]
    for o in orders:
        off = trace.offline(o.day)
        for i, (s, q) in enumerate(o.lines):
            key = (o.region, s, off)
            el = elig_cache.get(key)
            if el is None:
                el = elig_cache[key] = eligible_nodes(net, o.region, s, off)
            for n, lane in el:
                if (n, s) not in carried:
                    continue
                x_keys.append((o, i, n))
                if (o.id, n) not in y_index:
                    y_index[(o.id, n)] = len(y_cost)
                    late = lane.transit_days > net.regions[o.region].promise_days
                    y_cost.append(lane.cost_per_order + (costs.late_penalty if late else 0.0))
    inv_keys = sorted(carried)
    opening_rows: dict[tuple[str, str], int] = {}
    inv_index = {k: j for j, k in enumerate(inv_keys)}
    D = trace.days
    nx, ny, ni = len(x_keys), len(y_cost), len(inv_keys) * D
    ox, oy, oi = 0, nx, nx + ny
    nvar = nx + ny + ni
    c = np.zeros(nvar)
    const = 0.0
    for o in orders:
        const += costs.lost_sale * sum(q for _s, q in o.lines)
    for k, (o, i, n) in enumerate(x_keys):
        c[ox + k] = -costs.lost_sale * o.lines[i][1]
    c[oy:oy + ny] = y_cost

    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0
    # (1) each line at most once
    line_vars: dict[tuple[str, int], list[int]] = defaultdict(list)
    for k, (o, i, n) in enumerate(x_keys):
        line_vars[(o.id, i)].append(k)
    for ks in line_vars.values():
        for k in ks:
            rows.append(r); cols.append(ox + k); vals.append(1.0)
        lo.append(-np.inf); hi.append(1.0); r += 1
    # (2) x <= y
    for k, (o, i, n) in enumerate(x_keys):
        rows += [r, r]; cols += [ox + k, oy + y_index[(o.id, n)]]; vals += [1.0, -1.0]
        lo.append(-np.inf); hi.append(0.0); r += 1
    # (3) stock balance per (node, sku, day)
    use: dict[tuple[int, int], list[tuple[int, float]]] = defaultdict(list)
    for k, (o, i, n) in enumerate(x_keys):
        s, q = o.lines[i]
        use[(inv_index[(n, s)], o.day)].append((ox + k, float(q)))
    for j, key in enumerate(inv_keys):
        for d in range(D):
            arrivals = trace.replenishment.get(d, {}).get(key, 0) + (trace.initial.get(key, 0) if d == 0 else 0)
            rows.append(r); cols.append(oi + j * D + d); vals.append(1.0)
            if d > 0:
                rows.append(r); cols.append(oi + j * D + d - 1); vals.append(-1.0)
            else:
                opening_rows[key] = r
            for col, q in use.get((j, d), ()):
                rows.append(r); cols.append(col); vals.append(q)
            lo.append(float(arrivals)); hi.append(float(arrivals)); r += 1
    nz = 0
    if non_idling:
        supply_to_date: dict[tuple[str, str], list[float]] = {}
        for key in inv_keys:
            run, series = 0.0, []
            for d in range(D):
                run += trace.replenishment.get(d, {}).get(key, 0) + (trace.initial.get(key, 0) if d == 0 else 0)
                series.append(run)
            supply_to_date[key] = series
        z_index: dict[tuple[int, int], int] = {}
        for (_oid, i), ks in line_vars.items():
            o = x_keys[ks[0]][0]
            s, q = o.lines[i]
            if q > non_idling:
                continue
            for k in ks:
                key = (inv_index[(x_keys[k][2], s)], o.day, q)
                big = supply_to_date[inv_keys[key[0]]][o.day]
                if big < q:
                    continue  # never q units there by that day: no constraint
                z = z_index.get(key)
                if z is None:
                    z = z_index[key] = nvar + len(z_index)
                    rows += [r, r]; cols += [oi + key[0] * D + key[1], z]; vals += [1.0, -big]
                    lo.append(-np.inf); hi.append(float(q - 1)); r += 1
                rows.append(r); cols.append(z); vals.append(1.0)
                for k2 in ks:
                    rows.append(r); cols.append(ox + k2); vals.append(-1.0)
                lo.append(-np.inf); hi.append(0.0); r += 1
        nz = len(z_index)
        c = np.concatenate([c, np.zeros(nz)])
    nvar += nz
    A = coo_matrix((vals, (rows, cols)), shape=(r, nvar)).tocsr()
    ub = np.concatenate([np.ones(nx + ny), np.full(ni, np.inf), np.ones(nz)])
    integrality = np.concatenate([np.ones(nx + ny), np.zeros(ni), np.ones(nz)])
    return _Model(c, const, A, np.array(lo), np.array(hi), ub, integrality, x_keys, opening_rows)


def hindsight(trace: Trace, costs: Costs, *, integral: bool = True, time_limit: float = 120.0,
              mip_rel_gap: float = 1e-4, non_idling: int = 0) -> Hindsight:
    """One model over the whole trace, knowing everything.

    x[o,l,n] (binary; [0,1] in the relaxation): line l of order o ships whole from node n
    on the order's day; n ranges over the router-eligible nodes that handle the SKU, are
    not offline that day and ever hold the SKU. sum_n x[o,l,n] <= 1; 1 - sum is lost.
    y[o,n] >= x[o,l,n]: the shipment from n to o, costing lane cost + late penalty.
    inv[n,s,d] = inv[n,s,d-1] + arrivals[n,s,d] - sum qty*x (day d's lines), inv >= 0.
    In the relaxation y = max_l x (fractional), so per-shipment costs and whole lines are
    relaxed: its objective is a valid lower bound on every policy's cost.

    ``non_idling``: the optimum above may leave a line unfilled on purpose, keeping the
    stock for a later, more valuable order; greedy and the router never do (they ship a
    line whenever an eligible node has it). ``non_idling=Q`` > 0: a line of q <= Q units
    may be lost only if each of its eligible nodes ends the day with fewer than q:
    binary z[n,s,d,q] >= (inv[n,s,d] - q + 1) / M (M: the node's supply to date) and
    z[n,s,d,q] <= sum_n' x[o,l,n'] for every such line. Stock only falls within a day,
    so every non-idling policy satisfies this, and the optimum (or HiGHS's dual bound
    at the time limit) is a lower bound for them: what routing alone could reach.
    Lines of more than Q units stay free (a relaxation: the bound stays valid). With
    Q = 3 HiGHS finds no incumbent in minutes on the 90-day trace; Q = 1 (80% of the
    lines) does."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    m = _hindsight_model(trace, costs, non_idling)
    nvar, r = len(m.c), m.A.shape[0]
    constraints = LinearConstraint(m.A, m.lo, m.hi)
    bounds = Bounds(np.zeros(nvar), m.ub)
    t0 = time.perf_counter()
    if integral:
        with _quiet_stdout():
            res = milp(m.c, constraints=constraints, integrality=m.integrality, bounds=bounds,
                       options={"time_limit": time_limit, "mip_rel_gap": mip_rel_gap})
        seconds = time.perf_counter() - t0
        bound = getattr(res, "mip_dual_bound", None)
        bound = (bound + m.const) if bound is not None and np.isfinite(bound) else math.nan
        if res.x is None:
            return Hindsight("MILP", f"no solution ({res.message})", False, math.nan, bound, seconds, nvar, r)
        hs = Hindsight("MILP", res.message.split(".")[0] + (f", gap {res.mip_gap:.2e}" if res.mip_gap is not None else ""),
                       res.status == 0, float(res.fun + m.const), bound, seconds, nvar, r)
        # The integral plan, costed by the same order_cost as the policies.
        assignments: dict[str, dict[int, str | None]] = {
            o.id: {i: None for i in range(len(o.lines))} for day in trace.orders for o in day}
        for k, (o, i, n) in enumerate(m.x_keys):
            if res.x[k] > 0.5:
                assignments[o.id][i] = n
        tally = Tally()
        stock = defaultdict(int, trace.initial)
        for d in range(trace.days):
            for key, q in trace.replenishment.get(d, {}).items():
                stock[key] += q
            for o in trace.orders[d]:
                for i, (s, q) in enumerate(o.lines):
                    n = assignments[o.id][i]
                    if n is not None:
                        stock[(n, s)] -= q
                order_cost(trace.network, o, assignments[o.id], costs, tally)
            # (within a day the MILP balances stock at the day's end: check that)
            if any(v < 0 for v in stock.values()):
                raise AssertionError(f"hindsight plan overdraws stock on day {d}")
        hs.outcome = Outcome("hindsight, non-idling" if non_idling else "hindsight (MILP)", tally, assignments,
                             dict(stock), seconds)
        return hs
    res = milp(m.c, constraints=constraints, integrality=np.zeros(nvar), bounds=bounds,
               options={"time_limit": time_limit})
    seconds = time.perf_counter() - t0
    objective = float(res.fun + m.const) if res.x is not None else math.nan
    return Hindsight("LP relaxation", res.message.split(".")[0], res.status == 0, objective, objective, seconds, nvar, r)


def stock_prices(trace: Trace, costs: Costs, time_limit: float = 120.0) -> dict[tuple[str, str], float]:
    """(node, sku) -> what one more unit on hand at the start of the trace is worth to
    the hindsight LP relaxation: minus the dual of its day-0 stock balance (HiGHS's
    marginals). Only positive prices are returned, like ``DualPricer``'s."""
    from scipy.optimize import linprog

    m = _hindsight_model(trace, costs)
    eq = m.lo == m.hi  # stock balances; every other row is an upper bound only
    assert np.all(np.isneginf(m.lo[~eq]))
    res = linprog(m.c, A_ub=m.A[~eq], b_ub=m.hi[~eq], A_eq=m.A[eq], b_eq=m.hi[eq],
                  bounds=np.column_stack([np.zeros(len(m.c)), m.ub]), method="highs",
                  options={"time_limit": time_limit})
    if res.status != 0:
        raise RuntimeError(f"stock_prices: {res.message}")
    position = np.cumsum(eq) - 1  # a row's index among the equality rows
    prices = {key: -float(res.eqlin.marginals[position[row]]) for key, row in m.opening_rows.items()}
    return {key: v for key, v in prices.items() if v > 1e-9}


# ---------------------------------------------------------------- report


def gap_share(greedy: float, ours: float, best: float) -> float:
    return (greedy - ours) / (greedy - best) if greedy != best else math.nan


def print_row(name: str, t: Tally, seconds: float) -> None:
    print(f"    {name:<30} {t.total:>10.0f}  ship {t.shipping:>8.0f}  late {t.late_cost:>6.0f}  lost {t.lost_cost:>7.0f}"
          f" | late shipments {t.late_shipments:>4} (orders {t.late_orders:>4})  splits {t.split_orders:>4}"
          f"  unfilled lines {t.lost_lines:>4} ({t.lost_units} units, {t.orders_with_lost} orders)  [{seconds:.1f}s]")


def run_seed(args, seed: int, rules: tuple[Rule, ...]) -> dict:
    costs = Costs(late_penalty=args.late_penalty, lost_sale=args.lost_sale)
    trace = make_trace(days=args.days, orders_per_day=args.orders_per_day, seed=seed, rules=rules,
                       spike_mult=args.spike, outage_days=args.outage_days, fill=args.fill,
                       partner_slack=args.partner_slack, hub_share=args.hub_share)
    print(f"\n== seed {seed}")
    for line in describe(trace, costs):
        print(line)
    outcomes: list[Outcome] = []
    outcomes.append(simulate(trace, ShopifyGreedy(trace), costs))
    outcomes.append(simulate(trace, RouterPolicy(trace, "router, no duals"), costs))
    ours = None
    try:
        pricer = DualPricer(trace, costs, horizon_days=args.horizon, weeks=args.weeks)
        ours = simulate(trace, RouterPolicy(trace, "ours (router + duals)", pricer), costs)
        ours.notes.append(f"allocation {pricer.calls} nights, {pricer.seconds:.1f}s")
        outcomes.append(ours)
        if args.ablations:
            for label, kw in (("perfect forecast", dict(perfect=True)),
                              ("+ backup arcs", dict(backup_arcs=True)),
                              ("+ backup arcs, perfect fc", dict(backup_arcs=True, perfect=True)),
                              ("stock on hand only", dict(include_inbound=False))):
                pricer = DualPricer(trace, costs, horizon_days=args.horizon, weeks=args.weeks, **kw)
                outcomes.append(simulate(trace, RouterPolicy(trace, f"  abl: {label}", pricer), costs))
            other = (Rule.SINGLE_SHIPMENT, Rule.CHEAPEST, Rule.FASTEST) if rules[0] is Rule.CHEAPEST else \
                (Rule.CHEAPEST, Rule.SINGLE_SHIPMENT, Rule.FASTEST)
            alt = replace(trace, network=build_network(other))
            pricer = DualPricer(alt, costs, horizon_days=args.horizon, weeks=args.weeks)
            outcomes.append(simulate(alt, RouterPolicy(alt, f"  abl: chain {other[0].value} first",
                                                       pricer), costs))
        if args.ablations or args.ceiling:
            for horizon in (args.horizon, None):
                label = f"next {horizon} days" if horizon else "rest of trace"
                pricer = ClairvoyantPricer(trace, costs, horizon_days=horizon)
                outcomes.append(simulate(trace, RouterPolicy(trace, f"  abl: clairvoyant prices, {label}", pricer),
                                         costs))
                outcomes[-1].notes.append(f"hindsight LP {pricer.calls} nights, {pricer.seconds:.1f}s")
    except (ImportError, NotImplementedError) as exc:
        print(f"    (ours with dual prices not run: {exc})")
    problems = [p for o in outcomes for p in check_conservation(trace, o)]
    lp = hindsight(trace, costs, integral=False, time_limit=args.time_limit)
    mip = None if args.lp_only else hindsight(trace, costs, integral=True, time_limit=args.time_limit)
    idle = None
    if not args.lp_only and args.non_idling_time_limit > 0:
        idle = hindsight(trace, costs, integral=True, time_limit=args.non_idling_time_limit,
                         non_idling=args.non_idling_qty)
    refs = [o for o in (mip, idle) if o is not None and o.outcome is not None]
    for h in refs:
        problems += check_conservation(trace, h.outcome)
    print("  results (cost in $; late = shipments past the promise; splits = orders in > 1 shipment):")
    for o in outcomes:
        print_row(o.name, o.tally, o.seconds)
    for h, label in ((mip, "hindsight (MILP)"), (idle, f"hindsight, non-idling (q<={args.non_idling_qty})")):
        if h is None:
            continue
        if h.outcome is not None:
            print_row(label, h.outcome.tally, h.seconds)
            print(f"      {h.status}; objective {h.objective:.1f}, dual bound {h.bound:.1f}; "
                  f"{h.variables} variables, {h.constraints} constraints")
        else:
            print(f"    {label}: {h.status} after {h.seconds:.1f}s; dual bound {h.bound:.1f}")
    print(f"    hindsight LP relaxation (lower bound) {lp.objective:>10.0f}  ({lp.status}, {lp.seconds:.1f}s, "
          f"{lp.variables} variables, {lp.constraints} constraints)")
    for o in outcomes:
        for n in o.notes:
            print(f"      {o.name}: {n}")
    shown = [outcomes[0]] + ([ours] if ours is not None else []) + ([mip.outcome] if mip and mip.outcome else [])
    by_region = {o.name: region_costs(trace, o, costs) for o in shown}
    print("  cost by region (" + " / ".join(o.name.split(" (")[0] for o in shown) + "): "
          + "; ".join(f"{r} " + " / ".join(f"{by_region[o.name][r]:.0f}" for o in shown) for r in trace.network.regions))
    drops = [(o.name.strip(), dropped_on_purpose(trace, o)) for o in outcomes]
    drops += [(h.outcome.name, dropped_on_purpose(trace, h.outcome)) for h in refs]
    print("  lines left unfilled while an eligible node still had enough at day end: "
          + ", ".join(f"{name} {l} ({u} units)" for name, (l, u) in drops))
    print("  conservation: " + ("ok (units in = shipped + left per node and SKU; shipped + unfilled = demand)"
                                if not problems else "; ".join(problems[:5])))
    greedy = outcomes[0].tally.total
    best = mip.outcome.tally.total if mip is not None and mip.outcome is not None and mip.optimal else None
    share = None
    print("  gap share (greedy - X) / (greedy - reference):")
    for o in outcomes[1:]:
        parts = []
        if best is not None:
            parts.append(f"vs hindsight MILP optimum {gap_share(greedy, o.tally.total, best):.2f}")
        parts.append(f"vs hindsight LP bound {gap_share(greedy, o.tally.total, lp.objective):.2f}")
        if idle is not None and math.isfinite(idle.bound):
            parts.append(f"vs non-idling hindsight: its dual bound {gap_share(greedy, o.tally.total, idle.bound):.2f}"
                         + (f", its plan {gap_share(greedy, o.tally.total, idle.outcome.tally.total):.2f}"
                            if idle.outcome is not None else ""))
        print(f"    {o.name.strip()}: " + "; ".join(parts))
        if o is ours:
            share = gap_share(greedy, o.tally.total, best if best is not None else lp.objective)
    if share is not None:
        print(f"  target: ours closes >= {TARGET_SHARE:.0%} of the greedy-to-hindsight gap: "
              f"{'met' if share >= TARGET_SHARE else 'MISSED'} ({share:.2f})")
    return {"seed": seed, "outcomes": outcomes, "lp": lp, "mip": mip, "idle": idle, "problems": problems,
            "share": share}


def region_costs(trace: Trace, outcome: Outcome, costs: Costs) -> dict[str, float]:
    out = dict.fromkeys(trace.network.regions, 0.0)
    for day in trace.orders:
        for o in day:
            out[o.region] += order_cost(trace.network, o, outcome.assignments[o.id], costs)
    return out


def parse_rules(text: str) -> tuple[Rule, ...]:
    return tuple(Rule(r.strip()) for r in text.split(",") if r.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--orders-per-day", type=float, default=60.0, help="mean orders per day (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="one seed (default: --seeds)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--rules", default="cheapest,single_shipment,fastest",
                        help="our router's rule chain (default cheapest,single_shipment,fastest)")
    parser.add_argument("--horizon", type=int, default=14, help="allocation horizon in days (default 14)")
    parser.add_argument("--weeks", type=int, default=8, help="weeks of trailing sales the forecast uses")
    parser.add_argument("--late-penalty", type=float, default=10.0)
    parser.add_argument("--lost-sale", type=float, default=30.0)
    parser.add_argument("--spike", type=float, default=2.5, help="viral spike demand multiplier")
    parser.add_argument("--outage-days", type=int, default=6)
    parser.add_argument("--fill", type=float, default=0.92, help="replenishment as a share of planned demand")
    parser.add_argument("--partner-slack", type=float, default=1.3,
                        help="partner's supply as a multiple of the Midwest's planned demand")
    parser.add_argument("--hub-share", type=float, default=0.15,
                        help="share of the regional nodes' supply hub keeps as central backup stock")
    parser.add_argument("--time-limit", type=float, default=120.0, help="HiGHS time limit per solve, s")
    parser.add_argument("--lp-only", action="store_true", help="skip the MILPs (LP relaxation bound only)")
    parser.add_argument("--non-idling-time-limit", type=float, default=120.0,
                        help="time limit of the non-idling hindsight MILP, s (0: skip it)")
    parser.add_argument("--non-idling-qty", type=int, default=1,
                        help="non-idling constraints for lines of up to this many units (default 1)")
    parser.add_argument("--ceiling", action="store_true",
                        help="also run the router with clairvoyant prices (the hindsight LP's, re-solved each "
                             "night over the --horizon and over the rest of the trace: peeks, NOT a policy; "
                             "the dual-price policy with perfect information)")
    parser.add_argument("--ablations", action="store_true",
                        help="also run ours with: a perfect forecast (peeks), backup arcs in the allocation, "
                             "stock on hand only (no inbound), the other rule chain, and --ceiling")
    args = parser.parse_args(argv)
    rules = parse_rules(args.rules)

    print(f"machine: {machine()}")
    idle = cpu_idle_percent()
    print(f"before start: CPU idle {idle:.0f}% over 1 s, load average {load_average()}")
    import scipy
    print(f"numpy {np.__version__}, scipy {scipy.__version__} (HiGHS); our router's chain {[r.value for r in rules]}")
    seeds = [args.seed] if args.seed is not None else args.seeds
    results = [run_seed(args, s, rules) for s in seeds]
    print("\nsummary (total cost $; share = (greedy - ours) / (greedy - hindsight), target >= 0.4):")
    for res in results:
        row = ", ".join(f"{o.name.strip()} {o.tally.total:.0f}" for o in res["outcomes"])
        mip, idle = res["mip"], res["idle"]
        hs = f"; hindsight MILP {mip.outcome.tally.total:.0f}" if mip is not None and mip.outcome is not None else ""
        if idle is not None:
            hs += f"; non-idling hindsight bound {idle.bound:.0f}"
        share = f"; share {res['share']:.2f}" if res["share"] is not None else ""
        print(f"  seed {res['seed']}: {row}{hs}; LP bound {res['lp'].objective:.0f}{share}")
    print(f"load average after: {load_average()}")
    return 1 if any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
