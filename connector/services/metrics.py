"""Shipment metrics per node, region and day, read from the counters kept beside the
facts (``connector.shipment_store``): a report costs one indexed read of
days × nodes × regions rows, however many orders the shop has.

Figures are kept per day the order was placed, in the shop's timezone: "the last 7
days" are the orders placed in the last 7 days, and their parcels count there
whenever they ship.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from connector.config import ShopSettings
from connector.domain.metrics import Figures, add_up, node_figures, shop_figures
from connector.shipment_store import COUNTERS, ORDER_LEVEL, ShipmentStore
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
    ``until`` to the shop's today."""
    if since > until:
        raise MetricsError(f"the period starts ({since}) after it ends ({until})")
    until = min(until, today(store, shop, now))
    shop_id = _shop_id(shop)
    rows = ShipmentStore(store).day_rows(shop_id, since, until, None if node_id is None else [node_id])
    parts_rows = [r for r in rows if r["node_id"] != ORDER_LEVEL]
    order_rows = [r for r in rows if r["node_id"] == ORDER_LEVEL]

    def figures(part_slice: list[dict], order_slice: list[dict]) -> Figures:
        if node_id is not None:
            return node_figures(add_up(part_slice, COUNTERS))
        return shop_figures(add_up(part_slice, COUNTERS), add_up(order_slice, COUNTERS))

    by_node, by_region, by_day = defaultdict(list), defaultdict(list), defaultdict(list)
    orders_by_region, orders_by_day = defaultdict(list), defaultdict(list)
    by_node_day: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for row in parts_rows:
        by_node[row["node_id"]].append(row)
        by_region[row["region_id"]].append(row)
        by_day[row["day"]].append(row)
        by_node_day[row["node_id"]][row["day"]].append(row)
    for row in order_rows:
        orders_by_region[row["region_id"]].append(row)
        orders_by_day[row["day"]].append(row)
    days = [(since + timedelta(days=i)).isoformat() for i in range((until - since).days + 1)] if since <= until else []
    return MetricsReport(
        shop_id=shop_id, since=since, until=until, node_id=node_id,
        total=figures(parts_rows, order_rows),
        nodes={n: node_figures(add_up(by_node[n], COUNTERS)) for n in sorted(by_node)},
        regions={r: figures(by_region.get(r, []), orders_by_region.get(r, []))
                 for r in sorted(set(by_region) | (set(orders_by_region) if node_id is None else set()))},
        days={d: figures(by_day.get(d, []), orders_by_day.get(d, [])) for d in days},
        node_days={n: {d: node_figures(add_up(by_node_day[n].get(d, []), COUNTERS)) for d in days}
                   for n in sorted(by_node_day)},
        stockouts=[] if node_id is not None else
        [StockOut(**row) for row in ShipmentStore(store).stockouts(shop_id, since, until)],
    )


def headline(store: Store, shop: ShopSettings | str, now: datetime) -> Headline:
    """Orders routed today, the last 7 days' on-time and split rates and parcels shipped,
    and the open exceptions: a read of 7 days × nodes × regions counter rows and one
    count over the open exceptions' index."""
    shop_id = _shop_id(shop)
    until = today(store, shop_id, now)
    facts = ShipmentStore(store)
    rows = facts.day_rows(shop_id, until - timedelta(days=HEADLINE_DAYS - 1), until)
    week = shop_figures(add_up([r for r in rows if r["node_id"] != ORDER_LEVEL], COUNTERS),
                        add_up([r for r in rows if r["node_id"] == ORDER_LEVEL], COUNTERS))
    routed_today = add_up([r for r in rows if r["node_id"] == ORDER_LEVEL and r["day"] == until.isoformat()],
                          ("orders_routed",))["orders_routed"]
    return Headline(orders_routed_today=int(routed_today), on_time_rate_7d=week.on_time_rate,
                    split_rate_7d=week.split_rate, shipped_7d=week.shipped,
                    open_exceptions=facts.open_exception_lines(shop_id))


class Metrics:
    """``container.metrics``: the report and the home page's headline."""

    metrics = staticmethod(metrics)
    headline = staticmethod(headline)
