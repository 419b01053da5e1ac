"""Inventory by node × SKU, its stock-out risks and one SKU's projection, for the inventory
page and the home page.

The figures are the planning's, saved per node × SKU by every allocation run (see
``connector.inventory_store`` and ``domain.inventory``), with the position they are judged on
kept current by the database as stock, reservations and transfers change. So a page reads
one indexed page of rows, never plans 20,000 SKUs per request.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from connector.config import ShopSettings
from connector.domain.inventory import Projection, Risk, arrival_day, project_units
from connector.domain.planning import DAYS_PER_WEEK
from connector.inventory_store import Filters, InventoryStore
from connector.services.planning import sku_category
from connector.store import Store, parse_ts

PAGE_SIZE = 50
RISK_LIST_SIZE = 15
MIN_PROJECTION_DAYS = 28
MAX_PROJECTION_DAYS = 60


@dataclass(frozen=True)
class InventoryRow:
    sku: str
    node_id: str
    node_name: str
    category: str | None
    is_hub: bool
    on_hand: int
    available: int        # what the node's source says it can sell
    reserved: int         # held by our open orders there
    sellable: int         # available minus reserved, never below zero
    position_sellable: int  # what the risk is judged on: this sellable, or the network's for the hub
    in_transit_toward: int
    in_transit_away: int
    inbound_planned: int  # open transfers toward it, shipped or not (the network's for the hub)
    weekly_demand: float
    lead_time_days: float
    safety_stock: int
    reorder_point: int
    cover_days: float | None  # None: no forecast demand here
    risk: Risk
    planned: bool         # an allocation run has planned this SKU

    @property
    def daily_demand(self) -> float:
        return self.weekly_demand / DAYS_PER_WEEK


@dataclass(frozen=True)
class InventoryPage:
    rows: list[InventoryRow]
    total: int
    page: int
    pages: int
    filters: Filters
    problems: dict[str, str]   # filter field -> why it was not applied
    risks: list[InventoryRow]  # the most urgent first
    risk_rows: int
    risk_skus: int
    nodes: list[tuple[str, str]]  # (id, name) to filter by
    categories: list[str]
    last_planned: datetime | None


@dataclass(frozen=True)
class SkuDetail:
    sku: str
    category: str | None
    rows: list[InventoryRow]
    days: list[datetime]               # the projection's days, today first
    projections: list[tuple[str, Projection]]  # (line name, projection)
    transfers: list[dict] = field(default_factory=list)  # open transfers of the SKU, with node names


def stockout_risk_count(store: Store, shop: ShopSettings, now: datetime) -> int:
    """SKUs out of stock, or emptying before a refill can arrive, at one of the shop's
    places that can take orders at ``now`` (a paused node or a pop-up between its dates
    is no risk to anyone's order)."""
    return InventoryStore(store).risk_counts(shop.id, _open_nodes(shop, now))[1]


def inventory_page(store: Store, shop: ShopSettings, filters: Filters, page: int, now: datetime) -> InventoryPage:
    """One page of rows matching ``filters`` (page numbers past the end show the last page),
    and the shop's stock-out risks at its open places."""
    inventory = InventoryStore(store)
    filters, problems = _checked(shop, filters)
    open_nodes = _open_nodes(shop, now)
    total = inventory.count(shop.id, filters, open_nodes)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(1, page), pages)
    raw = inventory.rows(shop.id, filters, open_nodes, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    risk_raw = inventory.at_risk(shop.id, open_nodes, RISK_LIST_SIZE)
    risk_rows, risk_skus = inventory.risk_counts(shop.id, open_nodes)
    moving = inventory.in_transit(shop.id, [r["sku"] for r in raw + risk_raw])
    return InventoryPage(
        rows=[_row(shop, r, moving) for r in raw], total=total, page=page, pages=pages, filters=filters,
        problems=problems, risks=[_row(shop, r, moving) for r in risk_raw], risk_rows=risk_rows, risk_skus=risk_skus,
        nodes=sorted(((n.id, n.name or n.id) for n in shop.network.nodes.values()), key=lambda n: n[1].lower()),
        categories=categories(shop), last_planned=parse_ts(inventory.last_planned(shop.id)))


def sku_detail(store: Store, shop: ShopSettings, sku: str, now: datetime) -> SkuDetail | None:
    """The SKU at every node, and each node's sellable units projected day by day; None when
    the shop has no such SKU."""
    inventory = InventoryStore(store)
    raw = inventory.sku_rows(shop.id, sku)
    if not raw:
        return None
    moving = inventory.in_transit(shop.id, [sku])
    rows = [_row(shop, r, moving) for r in raw]
    transfers = inventory.open_transfers(shop.id, sku)
    longest_lead = max((r.lead_time_days for r in rows), default=0)
    days = min(MAX_PROJECTION_DAYS, max(MIN_PROJECTION_DAYS, math.ceil(longest_lead) + shop.planning.review_days))
    projections = []
    for row in rows:
        if row.is_hub:
            # The hub's demand is the whole network's (its stock refills the others), so its
            # line is the network's sellable stock; transfers only move units inside it.
            projections.append((f"Network ({row.node_name})", project_units(
                row.node_id, sellable=row.position_sellable, weekly_demand=row.weekly_demand, arrivals={}, days=days)))
        elif row.weekly_demand > 0 or row.sellable > 0:
            arrivals: dict[int, int] = {}
            for t in transfers:
                if t["to_node"] == row.node_id:
                    start = parse_ts(t["shipped_at"]) if t["status"] == "in_transit" and t["shipped_at"] else now
                    day = arrival_day((start + timedelta(days=t["lead_days"] or 0) - now) / timedelta(days=1))
                    arrivals[day] = arrivals.get(day, 0) + t["units"]
            projections.append((row.node_name, project_units(
                row.node_id, sellable=row.sellable, weekly_demand=row.weekly_demand, arrivals=arrivals, days=days)))
    names = {n.id: n.name or n.id for n in shop.network.nodes.values()}
    for t in transfers:
        t["from_name"], t["to_name"] = names.get(t["from_node"], t["from_node"]), names.get(t["to_node"], t["to_node"])
    today = now.astimezone(ZoneInfo(shop.timezone))
    return SkuDetail(sku=sku, category=raw[0]["category"], rows=rows,
                     days=[today + timedelta(days=d) for d in range(days)], projections=projections,
                     transfers=transfers)


def categories(shop: ShopSettings) -> list[str]:
    """The categories the shop's SKU rules make (what the page filters by)."""
    return sorted({c for c in (sku_category(rule) for rule in shop.network.sku_rules) if c})


def _checked(shop: ShopSettings, filters: Filters) -> tuple[Filters, dict[str, str]]:
    """The filters with what cannot match dropped, and a sentence for each."""
    problems = {}
    node_id, category = filters.node_id, filters.category
    if node_id and node_id not in shop.network.nodes:
        problems["node"] = f"There is no place called “{node_id}”; showing every place."
        node_id = ""
    if category and category not in categories(shop):
        problems["category"] = f"No SKU rule makes the category “{category}”; showing every category."
        category = ""
    return Filters(filters.sku_text.strip(), node_id, category, filters.at_risk), problems


def _open_nodes(shop: ShopSettings, now: datetime) -> list[str]:
    return sorted(n.id for n in shop.network.nodes.values() if n.usable(now))


def _row(shop: ShopSettings, r: dict, moving: dict) -> InventoryRow:
    node = shop.network.nodes.get(r["node_id"])
    toward, away = moving.get((r["sku"], r["node_id"]), (0, 0))
    return InventoryRow(
        sku=r["sku"], node_id=r["node_id"], node_name=(node.name or node.id) if node else r["node_id"],
        category=r["category"], is_hub=bool(r["is_hub"]), on_hand=r["on_hand"], available=r["available"],
        reserved=r["reserved"], sellable=max(0, r["available"] - r["reserved"]),
        position_sellable=r["position_sellable"], in_transit_toward=toward,
        in_transit_away=away, inbound_planned=r["inbound"], weekly_demand=r["weekly_demand"],
        lead_time_days=r["lead_time_days"], safety_stock=r["safety_stock"], reorder_point=r["reorder_point"],
        cover_days=r["cover_days"], risk=Risk(r["risk"]), planned=r["planned_at"] is not None)
