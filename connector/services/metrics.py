"""Shipment metrics per node, region and day, read from the counters kept beside the
facts (``connector.shipment_store``): a report costs one indexed read of
days × nodes × regions rows, however many orders the shop has.

Figures are kept per day the order was placed, in the shop's timezone: "the last 7
days" are the orders placed in the last 7 days, and their parcels count there
whenever they ship.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from connector.config import ShopSettings
from connector.domain.metrics import Figures, node_figures, shop_figures
from connector.shipment_store import COUNTERS, ShipmentStore
from connector.store import Store

HEADLINE_DAYS = 7


class MetricsError(ValueError):
    """A report that cannot be made as asked (a sentence for the creator)."""


@dataclass(frozen=True)
class StockOut:
    sku: str
    lines: int  # order lines no node had the stock for
    units: int
    days: int  # days with at least one such line


@dataclass(frozen=True)
class MetricsReport:
    shop_id: str
    since: date
    until: date
    node_id: str | None
    total: Figures  # the shop's (or, with node_id, that node's)
    nodes: dict[str, Figures]  # node id -> its figures (nodes with any count in the period)
    regions: dict[str, Figures]  # region id ("" unknown) -> figures of the parcels to it
    days: dict[str, Figures]  # YYYY-MM-DD -> the day's figures, every day of the period
    node_days: dict[str, dict[str, Figures]]  # node id -> day -> figures, every day of the period
    stockouts: list[StockOut]

    @property
    def has_shipments(self) -> bool:
        return self.total.shipped > 0


@dataclass(frozen=True)
class Headline:
    """Today's figures for the home page."""

    orders_routed_today: int  # orders placed today (shop's timezone) sent to a location
    on_time_rate_7d: float | None  # parcels of orders placed in the last 7 days that left on time
    split_rate_7d: float | None  # orders of the last 7 days shipped from more than one location
    shipped_7d: int  # parcels of orders placed in the last 7 days that have left
    open_exceptions: int  # open order lines waiting in the action centre


def _shop_id(shop: ShopSettings | str) -> str:
    return shop if isinstance(shop, str) else shop.id


def today(store: Store, shop: ShopSettings | str, now: datetime) -> date:
    """The shop's calendar day at ``now``."""
    return now.astimezone(ShipmentStore(store).timezone(_shop_id(shop))).date()


def metrics(store: Store, shop: ShopSettings | str, *, since: date, until: date, node_id: str | None = None,
            now: datetime) -> MetricsReport:
    """The figures of orders placed from ``since`` to ``until`` (inclusive, shop's days),
    per node, region and day; with ``node_id`` only that node's parcels. ``now`` bounds
    ``until`` to the shop's today. SQLite sums the counters (a few range reads of the
    period's rows); Python only turns sums into figures."""
    if since > until:
        raise MetricsError(f"the period starts ({since}) after it ends ({until})")
    until = min(until, today(store, shop, now))
    shop_id = _shop_id(shop)
    facts = ShipmentStore(store)

    def parts(*by: str) -> list[dict]:
        return facts.sums(shop_id, since, until, parts=True, by=by, node_id=node_id)

    def orders(*by: str) -> dict:
        """Order-level sums keyed by ``by``'s value (none with a node filter: a node has no orders of its own)."""
        if node_id is not None:
            return {}
        return {tuple(row[b] for b in by): row for row in facts.sums(shop_id, since, until, parts=False, by=by)}

    def figures(part_sums: dict | None, order_sums: dict | None) -> Figures:
        if node_id is not None:
            return node_figures(part_sums or {})
        return shop_figures(part_sums or {}, order_sums or {})

    days = [(since + timedelta(days=i)).isoformat() for i in range((until - since).days + 1)] if since <= until else []
    [total] = parts()
    part_days = {row["day"]: row for row in parts("day")}
    part_regions = {row["region_id"]: row for row in parts("region_id")}
    order_days, order_regions = orders("day"), orders("region_id")
    node_days: dict[str, dict[str, Figures]] = {}
    for row in parts("node_id", "day"):
        node_days.setdefault(row["node_id"], {})[row["day"]] = node_figures(row)
    empty = node_figures({})
    return MetricsReport(
        shop_id=shop_id, since=since, until=until, node_id=node_id,
        total=figures(total, orders().get((), {})),
        nodes={row["node_id"]: node_figures(row) for row in parts("node_id")},
        regions={region: figures(part_regions.get(region), order_regions.get((region,)))
                 for region in sorted(set(part_regions) | {key[0] for key in order_regions})},
        days={day: figures(part_days.get(day), order_days.get((day,))) for day in days},
        node_days={node: {day: by_day.get(day, empty) for day in days} for node, by_day in sorted(node_days.items())},
        stockouts=[] if node_id is not None else [StockOut(**row) for row in facts.stockouts(shop_id, since, until)],
    )


def headline(store: Store, shop: ShopSettings | str, now: datetime) -> Headline:
    """Orders routed today, the last 7 days' on-time and split rates and parcels shipped,
    and the open exceptions: sums over 7 days × nodes × regions counter rows and one
    count over the open exceptions' index."""
    shop_id = _shop_id(shop)
    until = today(store, shop_id, now)
    since = until - timedelta(days=HEADLINE_DAYS - 1)
    facts = ShipmentStore(store)
    [parts] = facts.sums(shop_id, since, until, parts=True)
    order_days = {row["day"]: row for row in facts.sums(shop_id, since, until, parts=False, by=("day",))}
    week = shop_figures(parts, {name: sum(row[name] for row in order_days.values()) for name in COUNTERS})
    return Headline(orders_routed_today=int(order_days.get(until.isoformat(), {}).get("orders_routed", 0)),
                    on_time_rate_7d=week.on_time_rate, split_rate_7d=week.split_rate, shipped_7d=week.shipped,
                    open_exceptions=facts.open_exception_lines(shop_id))


class Metrics:
    """``container.metrics``: the report and the home page's headline."""

    metrics = staticmethod(metrics)
    headline = staticmethod(headline)
