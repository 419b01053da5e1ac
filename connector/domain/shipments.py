"""Shipment facts and what they count for: plain data and pure functions.

A *part* is what one node ships of one order (shop × order × node). Every source
that knows something about a part — a 3PL's shipment poll, a Shopify fulfillment,
a WooCommerce order marked completed, a creator's "mark shipped" — hands in a
``ShipmentFact``; facts about the same part are merged (``merge``), and the
merged fact's ``Contribution`` is what the part adds to the daily counters the
metrics are read from. Each definition here can be said in one sentence to a
creator; the sentences are in the docstrings and on the metrics page.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime, time, timedelta, tzinfo

from connector.domain.model import FulfillmentReported, Shipment

SOURCES_PREFIXES = ("3pl:", "shopify", "woocommerce", "manual")


@dataclass(frozen=True)
class ShipmentFact:
    """What one source says about one part; None (and the flags' None) means "not said"."""

    source: str  # "3pl:<provider>", "shopify", "woocommerce", "manual"
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    first_attempt_ok: bool | None = None  # delivered at the first attempt (False: an attempt failed first)
    damaged: bool | None = None
    lost: bool | None = None
    returned: bool | None = None
    # Every line the node was given went out (False: the source said some were left out).
    in_full: bool | None = None

    def __post_init__(self) -> None:
        if not self.source.startswith(SOURCES_PREFIXES):
            raise ValueError(f"unknown shipment source {self.source!r}")
        for moment in (self.shipped_at, self.delivered_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("shipment times must carry their timezone")


def merge(earlier: ShipmentFact | None, later: ShipmentFact) -> ShipmentFact:
    """The part's fact after ``later`` arrives: every value ``later`` states replaces the
    earlier one, and what it leaves unsaid (None) keeps the earlier value — a later fact
    never erases what was known. Three exceptions: the part shipped when its first parcel
    left (the earliest ``shipped_at`` stays); once damaged, lost or returned it stays so;
    and a failed first delivery attempt stays failed when a later attempt succeeds.
    ``source`` is the last one heard from."""
    if earlier is None:
        return later
    changes = {}
    for f in fields(ShipmentFact):
        old, new = getattr(earlier, f.name), getattr(later, f.name)
        if new is None:
            changes[f.name] = old
        elif f.name == "shipped_at" and old is not None:
            changes[f.name] = min(old, new)
        elif f.name in ("damaged", "lost", "returned"):
            changes[f.name] = bool(old) or new
        elif f.name == "first_attempt_ok" and old is False:
            changes[f.name] = False
        else:
            changes[f.name] = new
    return replace(earlier, **changes)


# ---------------------------------------------------------------- what each source says

# Shopify's shipment_status values (FulfillmentEventStatus) that mean a delivery attempt failed.
FAILED_ATTEMPT = frozenset({"attempted_delivery", "failure", "not_delivered"})
# A fulfillment in these states never left (or was taken back): it says nothing about shipping.
NOT_SHIPPED = frozenset({"cancelled", "error", "failure"})


def fact_from_fulfillment(event: FulfillmentReported, in_full: bool | None) -> ShipmentFact | None:
    """A Shopify fulfillment as a fact: a successful one shipped when it was created (a
    pending or open one, at a fulfillment service, has not left yet); the carrier's
    ``delivered`` is the delivery at its last update, and an attempted delivery or a
    failure means the first attempt did not succeed. A cancelled or failed fulfillment
    says nothing (None); one cancelled after it shipped leaves the ship time known."""
    if event.status in NOT_SHIPPED:
        return None
    shipment = event.shipment_status
    delivered = shipment == "delivered"
    return ShipmentFact(
        source="shopify",
        shipped_at=event.created_at if event.status == "success" else None,
        delivered_at=event.updated_at if delivered else None,
        carrier=event.tracking_company,
        tracking_number=", ".join(event.tracking_numbers) or None,
        tracking_url=event.tracking_urls[0] if event.tracking_urls else None,
        first_attempt_ok=False if shipment in FAILED_ATTEMPT else (True if delivered else None),
        in_full=in_full,
    )


def fact_from_3pl(provider: str, shipment: Shipment) -> ShipmentFact:
    """A 3PL's shipment as a fact: its ship and delivery times, carrier and tracking; a
    status or exception that names a return, a loss or damage sets that flag. A 3PL ships
    everything it was handed for the order, so a shipped part is in full."""
    words = f"{shipment.status} {shipment.exception_detail or ''}".lower()
    return ShipmentFact(
        source=f"3pl:{provider}",
        shipped_at=shipment.shipped_at,
        delivered_at=shipment.delivered_at,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        returned=True if "return" in words else None,
        lost=True if "lost" in words else None,
        damaged=True if "damage" in words else None,
        in_full=True if shipment.shipped_at is not None else None,
    )


# ---------------------------------------------------------------- definitions


def ship_due(placed_at: datetime, cutoff: time | None, tz: tzinfo) -> datetime:
    """When the node must have shipped: an order placed before the node's daily cutoff
    (local time) is due by the end of that day, one placed after it (or at a node with
    no cutoff) by the end of the next day."""
    local = placed_at.astimezone(tz)
    days = 0 if cutoff is not None and local.time() < cutoff else 1
    due_day = local.date() + timedelta(days=days)
    end = datetime.combine(due_day + timedelta(days=1), time(0), tzinfo=tz)
    return end - timedelta(microseconds=1)


def shipped_on_time(placed_at: datetime, shipped_at: datetime, cutoff: time | None, tz: tzinfo) -> bool:
    """Shipped on time: the part left the node by its due time (``ship_due``)."""
    return shipped_at <= ship_due(placed_at, cutoff, tz)


def delivery_days(placed_at: datetime, delivered_at: datetime) -> float:
    """Days from the order being placed to the parcel being delivered (never negative)."""
    return max((delivered_at - placed_at).total_seconds(), 0.0) / 86400


def local_day(moment: datetime, tz: tzinfo) -> str:
    """The shop's calendar day of ``moment`` (YYYY-MM-DD): figures are kept per day the
    order was placed, in the shop's timezone."""
    return moment.astimezone(tz).date().isoformat()


@dataclass(frozen=True)
class Contribution:
    """What one part adds to its order's day × node × region counters. Subtracting a
    part's previous contribution and adding its new one keeps the counters exact however
    often, and in whatever order, its facts arrive."""

    day: str
    region_id: str
    shipped: int = 0
    on_time: int = 0
    in_full: int = 0  # shipped on time and in full (OTIF)
    delivered: int = 0
    delivery_days: float = 0.0
    first_attempt_known: int = 0
    first_attempt_ok: int = 0
    damaged: int = 0
    lost: int = 0
    returned: int = 0
    problems: int = 0  # damaged, lost or returned (counted once however many)
    cost: float = 0.0
    cost_known: int = 0

    COUNTERS = ("shipped", "on_time", "in_full", "delivered", "delivery_days", "first_attempt_known",
                "first_attempt_ok", "damaged", "lost", "returned", "problems", "cost", "cost_known")

    def counters(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.COUNTERS}


def contribution(fact: ShipmentFact, *, placed_at: datetime, region_id: str | None, cutoff: time | None,
                 tz: tzinfo, lane_cost: float | None) -> Contribution:
    """The counters one part's merged fact makes, on its order's placed day and region.
    A part counts as shipped once it has a ship time; delivery days only once delivered
    (and shipped); cost is the node→region lane's cost per order, when that lane exists."""
    day, region = local_day(placed_at, tz), region_id or ""
    if fact.shipped_at is None:
        return Contribution(day, region)
    on_time = shipped_on_time(placed_at, fact.shipped_at, cutoff, tz)
    delivered = fact.delivered_at is not None
    return Contribution(
        day, region,
        shipped=1,
        on_time=int(on_time),
        in_full=int(on_time and fact.in_full is not False),
        delivered=int(delivered),
        delivery_days=delivery_days(placed_at, fact.delivered_at) if delivered else 0.0,
        first_attempt_known=int(fact.first_attempt_ok is not None),
        first_attempt_ok=int(fact.first_attempt_ok is True),
        damaged=int(bool(fact.damaged)),
        lost=int(bool(fact.lost)),
        returned=int(bool(fact.returned)),
        problems=int(bool(fact.damaged or fact.lost or fact.returned)),
        cost=lane_cost if lane_cost is not None else 0.0,
        cost_known=int(lane_cost is not None),
    )


def rate(numerator: float, denominator: float) -> float | None:
    """A share between 0 and 1, or None when there is nothing to measure yet (never 0/0)."""
    return numerator / denominator if denominator else None


def average(total: float, count: float) -> float | None:
    return total / count if count else None
