"""Forecast -> targets -> regional allocation -> rebalance plan, per shop.

Orchestration only: read orders, stock and transfers from the store, call the
pure planning functions (``domain.forecast``, ``domain.planning``,
``domain.allocation``, ``domain.rebalance``), save what they decide.

- ``forecast``: weekly demand per SKU × region from the last
  ``history_weeks`` of orders; saved, so the frequent allocation runs reuse the
  nightly forecast.
- ``allocate``: what each region may sell of each SKU (the storefront shows
  it) and the dual prices routing reads. Stock is sellable stock (available −
  our reservations, stale nodes discounted as routing does) minus the node's
  safety stock.
- ``rebalance``: transfers that top nodes up to their targets, each with its
  approval verdict; stored unless ``dry_run``.
- ``reorder``: per node, what is at or below its reorder point.

Positions count inbound transfers (proposed, approved, in transit) so a
transfer waiting for approval is not proposed a second time; stock only counts
at the destination once it is received.
"""
from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable, Iterable, Mapping

from connector.config import Settings, ShopSettings
from connector.ports import ShopDirectory
from connector.domain.allocation import SkuAllocation, SkuProblem, allocate, eligible_arcs
from connector.domain.forecast import (
    Forecast,
    ForecastPolicy,
    LaunchUplift,
    forecast_demand,
    uplifted_weeks,
    weekly_buckets,
)
from connector.domain.health import discounted
from connector.domain.model import SkuRule
from connector.domain.planning import (
    DAYS_PER_WEEK,
    NodeTarget,
    PlanningPolicy,
    ReorderSuggestion,
    days_of_cover,
    node_targets,
    reorder_suggestions,
)
from connector.domain.rebalance import (
    Approval,
    ApprovalPolicy,
    PlannedTransfer,
    SkuPosition,
    TransferLane,
    approval_for,
    plan_transfers,
)
from connector.inventory_store import InventoryStore, PlanRow
from connector.store import Store, parse_ts

OPEN_TRANSFER_STATUSES = ("proposed", "approved", "in_transit")


@dataclass(frozen=True)
class AllocationReport:
    shop_id: str
    skus: int
    units_allocated: int
    unmet_forecast_units: float
    priced_nodes: int  # (sku, node) pairs whose units carry an opportunity cost
    allocations: tuple[SkuAllocation, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class TransferProposal:
    """A planned transfer with the approval rules' verdict (and its id once stored)."""

    transfer: PlannedTransfer
    approval: Approval
    transfer_id: int | None = None

    @property
    def status(self) -> str:
        """The status it is stored with: "approved" (no approval needed) or "proposed" (waits for a person)."""
        return "proposed" if self.approval.needed else "approved"


@dataclass(frozen=True)
class RebalanceReport:
    shop_id: str
    dry_run: bool
    transfers: tuple[TransferProposal, ...] = field(default_factory=tuple)

    @property
    def needing_approval(self) -> int:
        return sum(1 for t in self.transfers if t.status == "proposed")


class Planning:
    """``routing_for(store, shop_id, now)`` is the inbox's view of a shop's routing:
    its network with node health folded in and the stale-stock discount factors."""

    def __init__(self, settings: Settings, shops: ShopDirectory, clock: Callable[[], datetime], routing_for: Callable):
        self.settings = settings
        self.shops = shops
        self.clock = clock
        self.routing_for = routing_for

    # ------------------------------------------------------------ forecast

    def forecast(self, store: Store, shop_id: str) -> dict[tuple[str, str], Forecast]:
        shop = self.shops.require(shop_id)
        now = self.clock()
        weeks = shop.planning.history_weeks
        sales = [(sku, region, parse_ts(at), qty)
                 for sku, region, at, qty in store.sales(shop_id, now - timedelta(weeks=weeks))]
        history = weekly_buckets(sales, as_of=now, weeks=weeks)
        rule_of = self.routing_for(store, shop_id, now).router.sku_rule
        skus = set(store.stock_skus(shop_id)) | {sku for sku, _ in history}

        forecasts = forecast_demand(
            history, skus=sorted(skus), regions=sorted(shop.network.regions), policy=_forecast_policy(shop),
            category_of=lambda sku: sku_category(rule_of(sku)), prior_weekly=lambda sku: rule_of(sku).prior_weekly_units,
        )
        store.save_forecasts(shop_id, ((f.sku, f.region, f.weekly, f.sigma, f.method, f.weeks_of_history)
                                       for f in forecasts.values()), now)
        return forecasts

    def stored_forecasts(self, store: Store, shop_id: str,
                         skus: Iterable[str] | None = None) -> dict[tuple[str, str], Forecast]:
        """The last nightly forecast (of ``skus`` only, if named); computed now when the
        shop has none yet."""
        rows = store.forecasts(shop_id, skus)
        if not rows and not store.has_forecasts(shop_id):
            computed = self.forecast(store, shop_id)
            if skus is None:
                return computed
            wanted = set(skus)
            return {key: f for key, f in computed.items() if key[0] in wanted}
        return {(r["sku"], r["region_id"]): Forecast(r["sku"], r["region_id"], r["weekly"], r["sigma"], r["method"],
                                                     r["weeks_of_history"]) for r in rows}

    def targets(self, shop_id: str, forecasts: Mapping[tuple[str, str], Forecast], routing,
                now: datetime) -> dict[tuple[str, str], NodeTarget]:
        """Per (sku, node), from ``routing``'s view of the network (health folded in)."""
        shop = self.shops.require(shop_id)
        return node_targets(routing.network, forecasts, _planning_policy(shop), now, launches=_launches(shop),
                            rule_of=routing.router.sku_rule)

    # ------------------------------------------------------------ allocation

    def allocate(self, store: Store, shop_id: str, skus: Iterable[str] | None = None, *,
                 save: bool = True) -> AllocationReport:
        """Re-allocates ``skus`` (default: every SKU with stock or a forecast) and, with
        ``save``, stores the result with its dual prices."""
        shop = self.shops.require(shop_id)
        now = self.clock()
        skus = None if skus is None else sorted(set(skus))
        routing = self.routing_for(store, shop_id, now)
        # A debounced push names a few SKUs: read and plan only theirs (each SKU's targets
        # and problem depend on its own forecasts and stock alone), not the whole shop's.
        forecasts = self.stored_forecasts(store, shop_id, skus)
        targets = self.targets(shop_id, forecasts, routing, now)
        stock = store.sellable_all(shop_id) if skus is None else store.sellable(shop_id, skus)
        sellable = discounted(stock, routing.factors)
        by_sku: dict[str, dict[str, int]] = {}
        for (node_id, sku), units in sellable.items():
            by_sku.setdefault(sku, {})[node_id] = units
        wanted = sorted(set(by_sku) | {sku for sku, _ in forecasts}) if skus is None else skus
        hub = shop.planning.hub
        horizon = shop.planning.horizon_weeks
        launches = _launches(shop)
        arcs_by_rule: dict[object, tuple] = {}
        problems = []
        for sku in wanted:
            rule = routing.router.sku_rule(sku)
            arcs = arcs_by_rule.get(rule)
            if arcs is None:
                arcs = arcs_by_rule[rule] = eligible_arcs(routing.network, rule, now,
                                                          degraded_penalty=shop.planning.degraded_penalty)
            stock = {}
            for node_id, units in by_sku.get(sku, {}).items():
                target = targets.get((sku, node_id))
                # The hub's safety stock is sized for the whole network (echelon), not as a shelf buffer.
                buffer = target.safety_stock if target is not None and node_id != hub else 0
                stock[node_id] = max(0, units - buffer)
            weeks = uplifted_weeks(sku, start=now, weeks=horizon, launches=launches)
            demand = {region: forecasts[(sku, region)].weekly * weeks
                      for region in shop.network.regions if (sku, region) in forecasts}
            problems.append(SkuProblem(sku, stock, arcs, demand, rule.unit_value or shop.planning.lost_sale_cost))
        results = allocate(problems)
        if save:
            store.save_allocation(
                shop_id, wanted,
                ((a.sku, node, region, units) for a in results for (node, region), units in a.units.items()),
                ((a.sku, node, cost) for a in results for node, cost in a.opportunity_cost.items()),
                now,
            )
            # The same targets, per node × SKU, for the inventory page and its stock-out risks.
            InventoryStore(store).save_plans(
                shop_id, wanted, {sku: sku_category(routing.router.sku_rule(sku)) for sku in wanted},
                (PlanRow(t.sku, t.node, t.node == hub, t.weekly_demand, t.lead_time_weeks * DAYS_PER_WEEK,
                         t.safety_stock, t.reorder_point, t.target_level) for t in targets.values()),
                now, every_sku=skus is None)
        return AllocationReport(
            shop_id=shop_id, skus=len(results),
            units_allocated=sum(sum(a.units.values()) for a in results),
            unmet_forecast_units=round(sum(sum(a.unmet_demand.values()) for a in results), 2),
            priced_nodes=sum(1 for a in results for cost in a.opportunity_cost.values() if cost > 0),
            allocations=tuple(results),
        )

    # ------------------------------------------------------------ rebalancing and reorder points

    def positions(self, store: Store, shop_id: str) -> dict[tuple[str, str], int]:
        """(sku, node) -> sellable now + inbound in open transfers."""
        positions = {(sku, node): units for (node, sku), units in store.sellable_all(shop_id).items()}
        for (node, sku), units in store.inbound_units(shop_id, OPEN_TRANSFER_STATUSES).items():
            positions[(sku, node)] = positions.get((sku, node), 0) + units
        return positions

    def rebalance(self, store: Store, shop_id: str, *, dry_run: bool) -> RebalanceReport:
        if dry_run:
            return self._rebalance(store, shop_id, dry_run=True)
        # The plan tops nodes up counting the open transfers it reads: two runs at once
        # must not both propose the same transfer, so it is read, planned and stored under
        # the write lock (the solve takes well under a second, bench/allocate).
        with store.write():
            return self._rebalance(store, shop_id, dry_run=False)

    def _rebalance(self, store: Store, shop_id: str, *, dry_run: bool) -> RebalanceReport:
        shop = self.shops.require(shop_id)
        now = self.clock()
        routing = self.routing_for(store, shop_id, now)
        forecasts = self.stored_forecasts(store, shop_id)
        targets = self.targets(shop_id, forecasts, routing, now)
        positions = self.positions(store, shop_id)
        config = shop.rebalance
        lanes = [TransferLane(l.from_node, l.to_node, l.cost_per_unit, l.lead_days) for l in config.lanes]
        if not lanes:
            return RebalanceReport(shop_id, dry_run)
        nodes_of: dict[str, set[str]] = defaultdict(set)  # grouped once: a scan per SKU is quadratic
        for sku, node in itertools.chain(positions, targets):
            nodes_of[sku].add(node)
        value_of = {sku: routing.router.sku_rule(sku).unit_value or shop.planning.lost_sale_cost for sku in nodes_of}
        sku_positions = []
        for sku in sorted(value_of):
            nodes = nodes_of[sku]
            sku_positions.append(SkuPosition(
                sku=sku,
                position={n: positions.get((sku, n), 0) for n in nodes},
                target={n: targets[(sku, n)].target_level for n in nodes if (sku, n) in targets},
                floor={n: targets[(sku, n)].safety_stock for n in nodes if (sku, n) in targets},
                unit_value=value_of[sku],
            ))
        planned = plan_transfers(sku_positions, lanes, min_transfer_units=config.min_transfer_units,
                                 shortage_cost=shop.planning.lost_sale_cost)
        policy = ApprovalPolicy(config.launch_lock_at, config.approval_units_over, config.approval_value_over,
                                config.emergency_cover_days)
        proposals = []
        for t in planned:
            target = targets.get((t.sku, t.to_node))
            cover = days_of_cover(positions.get((t.sku, t.to_node), 0), target.weekly_demand if target else 0.0)
            verdict = approval_for(t, unit_value=value_of[t.sku], destination_cover_days=cover, policy=policy, now=now)
            proposals.append(TransferProposal(t, verdict))
        if dry_run:
            return RebalanceReport(shop_id, True, tuple(proposals))
        stored = []
        with store.write():
            for p in proposals:
                t = p.transfer
                transfer_id = store.add_transfer(
                    shop_id, sku=t.sku, from_node=t.from_node, to_node=t.to_node, units=t.units,
                    unit_cost=t.unit_cost, lead_days=t.lead_days, status=p.status, emergency=p.approval.emergency,
                    approval_reason=p.approval.reason, now=now)
                store.event(shop_id, f"transfer.{p.status}", str(transfer_id),
                            {"sku": t.sku, "from": t.from_node, "to": t.to_node, "units": t.units,
                             "reason": p.approval.reason}, now)
                stored.append(replace(p, transfer_id=transfer_id))
        return RebalanceReport(shop_id, False, tuple(stored))

    def reorder(self, store: Store, shop_id: str) -> list[ReorderSuggestion]:
        shop = self.shops.require(shop_id)
        now = self.clock()
        routing = self.routing_for(store, shop_id, now)
        targets = self.targets(shop_id, self.stored_forecasts(store, shop_id), routing, now)
        return reorder_suggestions(targets, self.positions(store, shop_id), _planning_policy(shop))


def sku_category(rule: SkuRule) -> str | None:
    """The category a SKU is forecast (and filtered) with: SKUs under one configured rule
    are alike unless the rule names a category; the catch-all rule makes none."""
    return rule.category or (rule.pattern if rule.pattern != "*" else None)


def _launches(shop: ShopSettings) -> tuple[LaunchUplift, ...]:
    return tuple(LaunchUplift(l.skus, l.starts, l.ends, l.uplift) for l in shop.planning.launches)


def _forecast_policy(shop: ShopSettings) -> ForecastPolicy:
    return ForecastPolicy(alpha=shop.planning.alpha, beta=shop.planning.beta, launches=_launches(shop))


def _planning_policy(shop: ShopSettings) -> PlanningPolicy:
    planning = shop.planning
    lead = dict(shop.node_lead_time_days)
    if planning.hub is not None and planning.hub not in lead:
        supplier = planning.supplier_lead_time_days
        lead[planning.hub] = planning.lead_time_days if supplier is None else supplier
    return PlanningPolicy(lead_time_days=planning.lead_time_days, node_lead_time_days=lead,
                          review_days=planning.review_days, service_level=planning.service_level,
                          safety_days=planning.safety_days, hub=planning.hub)
