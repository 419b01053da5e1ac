"""The shipment metrics, from summed counters: pure functions and their definitions.

Counters come from ``metric_days`` rows (see ``connector.shipment_store``): a *part*
is what one node ships of one order; order-level counters (routed, split, exceptions)
sit on the rows whose node is "". Every figure is None when there is nothing to
measure yet, never 0/0. ``DEFINITIONS`` holds the sentence a creator reads beside each
figure (the page, the CLI's --explain and the README say the same).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from connector.domain.shipments import average, rate

DEFINITIONS: dict[str, str] = {
    "orders_routed": "Orders placed in the period that were sent to at least one of your locations.",
    "shipped": "Parcels (one per order and location) that have left, by the day their order was placed.",
    "on_time_rate": "Of the parcels that left, the share that left by the location's cutoff promise: an order "
                    "placed before the daily cutoff ships the same day, one after it (or where there is no "
                    "cutoff) by the end of the next day.",
    "otif_rate": "On time and in full: parcels that left on time with every line the location was given.",
    "split_rate": "Of the orders that shipped, the share that went out from more than one location "
                  "(for a location: the share of its parcels that were part of such an order).",
    "exception_rate": "Of the orders the connector decided, the share with at least one line it could not "
                      "send anywhere on its own (for a location: the share of its parcels damaged, lost or "
                      "returned).",
    "cost_per_order": "The lane's cost per order from the location to the order's region, added up over an "
                      "order's parcels (for a location: per parcel).",
    "first_attempt_rate": "Of the deliveries the carrier reported on, the share delivered at the first attempt.",
    "damage_rate": "Of the parcels that left, the share reported damaged.",
    "loss_rate": "Of the parcels that left, the share reported lost.",
    "return_rate": "Of the parcels that left, the share that came back.",
    "avg_delivery_days": "Days from the order being placed to the parcel being delivered, on average.",
    "not_shipped": "Parcels routed to a location that have not been reported as shipped yet.",
    "stockouts": "Order lines that no location had the stock for (they wait in the action centre), per SKU.",
}


@dataclass(frozen=True)
class Figures:
    """The metrics of one slice (the shop, a node, a region, a day). Counts are exact;
    rates are 0..1 and averages in their unit, None when nothing was measured."""

    orders_routed: int
    orders_shipped: int
    parts_routed: int
    shipped: int
    delivered: int
    on_time_rate: float | None
    otif_rate: float | None
    split_rate: float | None
    exception_rate: float | None
    cost_per_order: float | None
    first_attempt_rate: float | None
    damage_rate: float | None
    loss_rate: float | None
    return_rate: float | None
    avg_delivery_days: float | None

    @property
    def not_shipped(self) -> int:
        return max(self.parts_routed - self.shipped, 0)


def add_up(rows: Iterable[Mapping[str, float]], names: Iterable[str]) -> dict[str, float]:
    """The counters ``names`` summed over ``rows`` (missing or None counts as 0)."""
    names = tuple(names)
    totals = dict.fromkeys(names, 0)
    for row in rows:
        for name in names:
            totals[name] += row.get(name) or 0
    return totals


def shop_figures(parts: Mapping[str, float], orders: Mapping[str, float]) -> Figures:
    """The figures of a whole shop (or a region, a day): ``parts`` summed over the node
    rows, ``orders`` over the order-level rows. Split and exception rates and cost are per
    order."""
    return _figures(parts, orders_routed=int(orders.get("orders_routed", 0)),
                    orders_shipped=int(orders.get("orders_shipped", 0)),
                    split_rate=rate(orders.get("split_orders", 0), orders.get("orders_shipped", 0)),
                    exception_rate=rate(orders.get("orders_with_exception", 0), orders.get("orders_decided", 0)),
                    cost_per_order=average(parts.get("cost", 0), orders.get("orders_shipped", 0))
                    if parts.get("cost_known") else None)


def node_figures(parts: Mapping[str, float]) -> Figures:
    """The figures of one node, from its rows alone: its parcels stand for its orders;
    split is the share of its parcels from split orders, exceptions its parcels' damage,
    loss and returns, cost per parcel."""
    return _figures(parts, orders_routed=int(parts.get("parts_routed", 0)), orders_shipped=int(parts.get("shipped", 0)),
                    split_rate=rate(parts.get("split_parts", 0), parts.get("shipped", 0)),
                    exception_rate=rate(parts.get("problems", 0), parts.get("shipped", 0)),
                    cost_per_order=average(parts.get("cost", 0), parts.get("cost_known", 0)))


def _figures(parts: Mapping[str, float], **order_level) -> Figures:
    shipped = parts.get("shipped", 0)
    return Figures(
        parts_routed=int(parts.get("parts_routed", 0)),
        shipped=int(shipped),
        delivered=int(parts.get("delivered", 0)),
        on_time_rate=rate(parts.get("on_time", 0), shipped),
        otif_rate=rate(parts.get("in_full", 0), shipped),
        first_attempt_rate=rate(parts.get("first_attempt_ok", 0), parts.get("first_attempt_known", 0)),
        damage_rate=rate(parts.get("damaged", 0), shipped),
        loss_rate=rate(parts.get("lost", 0), shipped),
        return_rate=rate(parts.get("returned", 0), shipped),
        avg_delivery_days=average(parts.get("delivery_days", 0), parts.get("delivered", 0)),
        **order_level,
    )


# What a figure says when there is nothing to measure yet, instead of 0% or NaN.
NOTHING_YET = {
    "on_time_rate": "no shipments yet", "otif_rate": "no shipments yet", "split_rate": "no shipments yet",
    "exception_rate": "no orders yet", "cost_per_order": "no shipments yet",
    "first_attempt_rate": "no deliveries reported yet", "damage_rate": "no shipments yet",
    "loss_rate": "no shipments yet", "return_rate": "no shipments yet", "avg_delivery_days": "no deliveries yet",
}


def shown(name: str, value: float | None) -> str:
    """A figure as a creator reads it: "92%", "2.4 days", "$7.10", or what is missing."""
    if value is None:
        return NOTHING_YET.get(name, "none yet")
    if name == "avg_delivery_days":
        return f"{value:.1f} days"
    if name == "cost_per_order":
        return f"{value:.2f}"
    return f"{value * 100:.0f}%"
