"""A person choosing the node for an order line routing could not place: what each node
of the shop would mean for that line, and whether it can take it at all.

Pure: the router's own view of each node (``Router.node_state``, its SKU rules and the
mode's first stage) is what decides here too, so the chooser never says a node is fine
while routing calls it offline, or the other way round.

What is refused and what is only warned about: a node that cannot physically ship the
line is refused (no lane to the order's region, not enough sellable stock, offline,
outside its active window, lacking the handling the SKU needs). A node that can ship it
but that routing would not have picked on its own — a lane slower than the promise or
than the SKU allows, paused, past cutoff, at capacity, degraded, left out by the mode —
may be chosen knowingly: the warning says what the choice costs.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Mapping

from connector.domain.model import ExceptionReason, Network, NodeStatus
from connector.domain.routing import Router, first_stage


# Each reason routing gives for an exception, in the words of the person running the shop.
REASON_TEXT = {
    ExceptionReason.NO_REGION.value: "The delivery address is in none of your regions, and no default region is set.",
    ExceptionReason.NO_NODE_SERVES_REGION.value:
        "None of your nodes ships to this region within its promise, and no backup or fallback region can.",
    ExceptionReason.NODES_UNAVAILABLE.value:
        "Every node that ships to this region is offline, paused or outside its open dates right now.",
    ExceptionReason.HANDLING_CONSTRAINT.value:
        "This product needs handling (such as cold chain) that no node shipping to this region offers.",
    ExceptionReason.PARTIAL_STOCK.value: "No node that ships to this region has enough of this product right now.",
    ExceptionReason.NEEDS_HUMAN.value:
        "This line needs a person to decide (for example an oversized item no node is set up to ship).",
}


@dataclass(frozen=True)
class NodeOption:
    """One node for one order line, as the chooser shows it."""

    node_id: str
    name: str
    routed_as: str  # routing's verdict on the node now: "active", "offline (...)", "ranked down: ..."
    transit_days: int | None  # of its lane to the order's region; None: no lane
    promise_days: int | None  # the region's promise; None: the order has no region
    cost_per_order: float | None
    sellable_now: int  # units of the SKU free to promise there now
    sellable_after: int  # ... and after this line took its units (= now when it cannot take it)
    joins_shipment: bool  # the order already ships other lines from it: no extra parcel
    refusals: tuple[str, ...]  # why it cannot take the line (empty: it can)
    warnings: tuple[str, ...]  # what taking it means beyond the promise, chosen knowingly

    @property
    def can_take(self) -> bool:
        return not self.refusals

    @property
    def within_promise(self) -> bool:
        return self.transit_days is not None and self.promise_days is not None \
            and self.transit_days <= self.promise_days

    def cost_text(self) -> str:
        """What shipping the line from here costs, in one sentence: transit days against
        the promise, the order's parcels, and the stock it leaves."""
        if self.transit_days is None:
            return "no lane to the order's region"
        parts = [f"{_transit(self.transit_days)} against the {self.promise_days}-day promise"
                 if self.promise_days is not None else _transit(self.transit_days)]
        if self.joins_shipment:
            parts.append("goes in the parcel the order already ships from here")
        elif self.cost_per_order is not None:
            parts.append(f"one more parcel at {self.cost_per_order:.2f} per order")
        if self.can_take:
            parts.append(f"leaves {self.sellable_after} sellable at {self.node_id}")
        else:
            parts.append(f"{self.sellable_now} sellable at {self.node_id}")
        return "; ".join(parts)


def node_options(router: Router, region_id: str | None, sku: str, quantity: int,
                 sellable: Mapping[str, int], orders_today: Mapping[str, int], now: datetime,
                 order_nodes: frozenset[str] = frozenset()) -> list[NodeOption]:
    """Every node of the shop for ``quantity`` × ``sku`` going to ``region_id``: those that
    can take it first (within the promise before slower lanes, then fewer transit days,
    then cost), then those that cannot. ``sellable``: node -> units free to promise now;
    ``order_nodes``: nodes the order already ships other lines from."""
    network: Network = router.network
    region = network.regions.get(region_id) if region_id else None
    rule = router.sku_rule(sku)
    restriction = first_stage(network, region.id)[0] if region is not None else None
    options = []
    for node in network.nodes.values():
        state = router.node_state(node, orders_today, now)
        lane = node.lanes.get(region.id) if region is not None else None
        have = sellable.get(node.id, 0)
        refusals: list[str] = []
        warnings: list[str] = []
        if region is None:
            refusals.append("the order's address matches no region and the shop has no default region, so no "
                            "lane is known; add a region for it (or a default region) and re-evaluate")
        elif lane is None:
            refusals.append(f"{node.id} has no lane to {region.name} ({region.id})")
        if not state.usable:
            if node.status is NodeStatus.PAUSED and node.in_window(now):
                warnings.append(f"{node.id} is {state.unusable_because}: it ships this line only because you "
                                "choose it")
            else:
                refusals.append(f"{node.id} is {state.unusable_because}")
        missing = [h.value for h in sorted(rule.handling, key=lambda h: h.value) if h.value not in node.capabilities]
        if missing:
            refusals.append(f"{node.id} lacks {' and '.join(missing)}, which {sku} needs")
        if have < quantity:
            refusals.append(f"{node.id} has {have} sellable {sku}, the line needs {quantity}")
        if lane is not None and region is not None:
            if lane.transit_days > region.promise_days:
                warnings.append(f"{lane.transit_days} transit days is slower than {region.id}'s "
                                f"{region.promise_days}-day promise")
            if rule.max_transit_days is not None and lane.transit_days > rule.max_transit_days:
                warnings.append(f"{sku} should travel at most {rule.max_transit_days} days")
        if state.usable and state.ranked_down:
            warnings.append(f"{node.id} is ranked down now: {', '.join(state.ranked_down)}")
        if restriction is not None and node.id not in restriction.nodes:
            warnings.append(f"{network.routing.mode.value} mode sends {region.id} orders to "
                            f"{', '.join(restriction.nodes)} only")
        options.append(NodeOption(
            node_id=node.id, name=node.name, routed_as=state.describe(),
            transit_days=lane.transit_days if lane is not None else None,
            promise_days=region.promise_days if region is not None else None,
            cost_per_order=lane.cost_per_order if lane is not None else None,
            sellable_now=have, sellable_after=have - quantity if not refusals else have,
            joins_shipment=node.id in order_nodes, refusals=tuple(refusals), warnings=tuple(warnings),
        ))
    return sorted(options, key=lambda o: (not o.can_take, not o.within_promise,
                                          o.transit_days if o.transit_days is not None else 1_000,
                                          o.cost_per_order or 0.0, o.node_id))


def manual_explanation(option: NodeOption, sku: str, quantity: int, by: str, note: str | None) -> str:
    """The decision's explanation for a line a person routed: who, what it costs, why."""
    parts = [f"{quantity} × {sku} from {option.node_id}, chosen by {by}", option.cost_text()]
    parts.extend(option.warnings)
    if note:
        parts.append(f"note: {note}")
    return "; ".join(parts)


def _transit(days: int) -> str:
    return f"{days} transit day" if days == 1 else f"{days} transit days"
