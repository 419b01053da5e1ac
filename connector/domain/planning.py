"""Safety stock, reorder points and order-up-to targets per node, and what to reorder.

Reorder points are per node, not total: each region's demand is planned at the
one node that would normally ship it (its *home*), so a product can be healthy
in total while one node is flagged days from selling out.

Per node, from the forecasts of the regions it is home to:

* safety stock: ``z(service_level) * sigma * sqrt(lead weeks)``, with the
  regional sigmas combined as the square root of the sum of their squares
  (independent regions), or ``safety_days`` of baseline demand; the larger
  when both are set;
* reorder point: demand over the lead time + safety stock (DOMAIN.md's target
  level: 50/week with a two-week lead time is 100 + safety);
* order-up-to target: demand over lead time + review period + safety stock,
  so one replenishment lasts until the next review can act.

Demand over a window includes launch uplift where the window overlaps a
launch (``forecast.uplifted_weeks``); safety stock is sized on the baseline.

Pure: the caller passes forecasts, positions and the time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from statistics import NormalDist
from typing import Callable, Mapping, Sequence

from connector.domain.forecast import Forecast, LaunchUplift, uplifted_weeks
from connector.domain.model import Network, SkuRule
from connector.domain.routing import promise_lanes

DAYS_PER_WEEK = 7


@dataclass(frozen=True)
class PlanningPolicy:
    lead_time_days: int = 14  # replenishment lead time to a node (hub -> node), default
    node_lead_time_days: Mapping[str, int] = field(default_factory=dict)  # per node; the hub's is the supplier's
    review_days: int = 7  # how often we replenish
    service_level: float | None = 0.95
    safety_days: float | None = None
    hub: str | None = None  # replenishes the other nodes; the supplier replenishes it

    def __post_init__(self) -> None:
        if self.lead_time_days < 0 or self.review_days < 0:
            raise ValueError("lead_time_days and review_days must be >= 0")
        if any(days < 0 for days in self.node_lead_time_days.values()):
            raise ValueError("node_lead_time_days must be >= 0")
        if self.service_level is not None and not 0 < self.service_level < 1:
            raise ValueError(f"service_level must be in (0, 1), got {self.service_level}")
        if self.safety_days is not None and not self.safety_days >= 0:
            raise ValueError(f"safety_days must be >= 0, got {self.safety_days}")

    def lead_time_weeks(self, node_id: str) -> float:
        return self.node_lead_time_days.get(node_id, self.lead_time_days) / DAYS_PER_WEEK


@dataclass(frozen=True)
class NodeTarget:
    sku: str
    node: str
    weekly_demand: float  # baseline units/week of the regions the node plans for
    lead_time_weeks: float
    safety_stock: int
    reorder_point: int  # lead-time demand + safety stock
    target_level: int  # order-up-to: demand over lead time + review period + safety stock


@dataclass(frozen=True)
class ReorderSuggestion:
    sku: str
    node: str
    position: int  # inventory position the decision used (echelon position for the hub)
    days_of_cover: float
    reorder_point: int
    target_level: int
    suggest_units: int
    source: str  # "hub <id>" or "supplier"


def demand_attribution(network: Network, now: datetime, hub: str | None,
                       rule: SkuRule | None = None) -> dict[str, str]:
    """Region id -> its home node: where its demand is planned.

    Candidates are usable nodes (active or degraded, in their window at
    ``now``) whose lane meets the region's promise and, for a SKU under
    ``rule``, its handling and max transit days (a cold-chain serum is planned
    at the cold room, not at the pop-up that is cheapest for candles). The hub is left out unless
    it is the only candidate, because its stock is meant to replenish the
    nodes, not to be the regions' everyday shelf. Among candidates: lowest cost
    per order, then fastest transit, then priority, then id.

    A region no usable node serves within its promise goes to the hub when the
    hub has a lane to it (late or not, the hub is where such orders end up
    shipping from), and is otherwise left out: no node can ship it, so no
    node's stock is planned for it.
    """
    attribution: dict[str, str] = {}
    for region_id in sorted(network.regions):
        candidates = sorted(
            (lane.cost_per_order, lane.transit_days, node.priority, node.id)
            for node, lane in promise_lanes(network, region_id)
            if node.usable(now) and (rule is None or rule.handled_by(node, lane))
        )
        others = [c for c in candidates if c[3] != hub]
        if others or candidates:
            attribution[region_id] = (others or candidates)[0][3]
        elif hub is not None and hub in network.nodes and region_id in network.nodes[hub].lanes:
            attribution[region_id] = hub
    return attribution


def node_targets(
    network: Network,
    forecasts: Mapping[tuple[str, str], Forecast],
    policy: PlanningPolicy,
    now: datetime,
    *,
    launches: Sequence[LaunchUplift] = (),
    horizon_start: datetime | None = None,
    rule_of: Callable[[str], SkuRule] | None = None,
) -> dict[tuple[str, str], NodeTarget]:
    """(sku, node) -> target, for every SKU in ``forecasts`` at every node that is
    home to a region for it, and at the hub. ``rule_of(sku)``: the SKU's handling
    rule, so each SKU is planned only where it can ship from.

    ``forecasts[(sku, region)]``. ``horizon_start`` (default ``now``): where the
    lead-time window starts, for launch uplift. The hub plans for every
    attributed region's demand over the supplier's lead time (echelon stock:
    see ``reorder_suggestions``).
    """
    if policy.hub is not None and policy.hub not in network.nodes:
        raise ValueError(f"hub {policy.hub!r} is not a node of the network")
    start = now if horizon_start is None else horizon_start
    homes: dict[SkuRule | None, dict[str, list[str]]] = {}  # per handling rule: node -> regions it is home to

    def regions_by_node(rule: SkuRule | None) -> dict[str, list[str]]:
        if rule not in homes:
            home = demand_attribution(network, now, policy.hub, rule)
            regions_of: dict[str, list[str]] = {}
            for region_id, node_id in home.items():
                regions_of.setdefault(node_id, []).append(region_id)
            if policy.hub is not None:
                regions_of[policy.hub] = sorted(home)
            homes[rule] = regions_of
        return homes[rule]

    skus = sorted({sku for sku, _ in forecasts})
    targets: dict[tuple[str, str], NodeTarget] = {}
    for sku in skus:
        regions_of = regions_by_node(rule_of(sku) if rule_of is not None else None)
        for node_id in sorted(regions_of):
            regional = [forecasts[(sku, r)] for r in regions_of[node_id] if (sku, r) in forecasts]
            targets[(sku, node_id)] = _target(sku, node_id, regional, policy, start, launches)
    return targets



def reorder_suggestions(
    targets: Mapping[tuple[str, str], NodeTarget], positions: Mapping[tuple[str, str], int], policy: PlanningPolicy
) -> list[ReorderSuggestion]:
    """Every (sku, node) with demand at or below its reorder point, most urgent first.

    ``positions[(sku, node)]``: inventory position (sellable on hand plus
    inbound), missing = 0. Suggests ``target_level - position`` units from the
    hub, or from the supplier for the hub itself (and for every node when there
    is no hub). Sorted by days of cover, then sku, then node.

    The hub decides on its echelon position: its own stock plus every other
    node's. The hub's stock only exists to refill the nodes, so all of it and
    all of theirs covers the same network demand. Judged on its own shelf, the
    hub would look empty right after refilling the nodes and reorder from the
    supplier while the nodes are full.
    """
    echelon: dict[str, int] = {}
    for (sku, _), units in positions.items():
        echelon[sku] = echelon.get(sku, 0) + units
    suggestions: list[ReorderSuggestion] = []
    for (sku, node_id), target in targets.items():
        if target.weekly_demand <= 0:  # no demand here: safety stock alone does not justify moving stock
            continue
        is_hub = node_id == policy.hub
        position = echelon.get(sku, 0) if is_hub else positions.get((sku, node_id), 0)
        units = target.target_level - position
        if position > target.reorder_point or units <= 0:
            continue
        suggestions.append(ReorderSuggestion(
            sku=sku, node=node_id, position=position,
            days_of_cover=days_of_cover(position, target.weekly_demand),
            reorder_point=target.reorder_point, target_level=target.target_level, suggest_units=units,
            source="supplier" if is_hub or policy.hub is None else f"hub {policy.hub}",
        ))
    suggestions.sort(key=lambda s: (s.days_of_cover, s.sku, s.node))
    return suggestions


def days_of_cover(position: float, weekly_demand: float) -> float:
    """Days the position lasts at the weekly demand; infinite with no demand."""
    if weekly_demand <= 0:
        return math.inf
    return position / weekly_demand * DAYS_PER_WEEK


def _target(
    sku: str, node_id: str, regional: Sequence[Forecast], policy: PlanningPolicy, start: datetime,
    launches: Sequence[LaunchUplift],
) -> NodeTarget:
    lead_weeks = policy.lead_time_weeks(node_id)
    cycle_weeks = lead_weeks + policy.review_days / DAYS_PER_WEEK
    weekly = sum(f.weekly for f in regional)
    sigma = math.sqrt(sum(f.sigma ** 2 for f in regional))
    safety = _ceil(_safety(weekly, sigma, lead_weeks, policy))
    lead_demand = weekly * uplifted_weeks(sku, start=start, weeks=lead_weeks, launches=launches)
    cycle_demand = weekly * uplifted_weeks(sku, start=start, weeks=cycle_weeks, launches=launches)
    return NodeTarget(
        sku=sku, node=node_id, weekly_demand=weekly, lead_time_weeks=lead_weeks, safety_stock=safety,
        reorder_point=_ceil(lead_demand) + safety, target_level=_ceil(cycle_demand) + safety,
    )


def _safety(weekly: float, sigma: float, lead_weeks: float, policy: PlanningPolicy) -> float:
    by_service = 0.0
    if policy.service_level is not None:
        # Below a 50 % service level z is negative; no stock is still the least safety stock.
        by_service = max(0.0, NormalDist().inv_cdf(policy.service_level) * sigma * math.sqrt(lead_weeks))
    by_days = 0.0 if policy.safety_days is None else policy.safety_days * weekly / DAYS_PER_WEEK
    return max(by_service, by_days)


def _ceil(units: float) -> int:
    # Rounded first so float noise (100.00000000001 from 50 * 14 / 7 style
    # arithmetic) does not add a whole unit.
    return math.ceil(round(units, 6))
