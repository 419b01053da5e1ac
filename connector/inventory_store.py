"""The inventory page's SQL: the per node × SKU planning table (store migration
``0017_node_sku_plans``) written by each allocation run, and the reads that page through
it, list its stock-out risks and show one SKU, all from indexes."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from connector.chunks import chunked
from connector.store import Store, plan_position_update, ts

OPEN_TRANSFER_STATUSES = ("proposed", "approved", "in_transit")
SQL_PARAMS = 500  # per IN (...) list, well under SQLite's bound-parameter limit

# One row of the page: the node's own stock beside the planning's figures. `sellable` and
# `inbound` are the position the risk is judged on (the network's for the hub).
_ROW = ("p.sku, p.node_id, p.category, p.is_hub, p.weekly_demand, p.lead_time_days, p.safety_stock, "
        "p.reorder_point, p.target_level, p.planned_at, p.sellable AS position_sellable, p.inbound, p.cover_days, "
        "p.risk, COALESCE(s.on_hand, 0) AS on_hand, COALESCE(s.available, 0) AS available, "
        "COALESCE(r.quantity, 0) AS reserved, s.updated_at AS stock_updated_at "
        "FROM node_sku_plans p LEFT JOIN stock s ON s.shop_id = p.shop_id AND s.sku = p.sku AND s.node_id = p.node_id "
        "LEFT JOIN reserved_totals r ON r.shop_id = p.shop_id AND r.node_id = p.node_id AND r.sku = p.sku ")


@dataclass(frozen=True)
class PlanRow:
    """A node's planning figures for a SKU (from ``domain.planning.NodeTarget``)."""
    sku: str
    node_id: str
    is_hub: bool
    weekly_demand: float
    lead_time_days: float
    safety_stock: int
    reorder_point: int
    target_level: int


@dataclass(frozen=True)
class Filters:
    sku_text: str = ""       # part of the SKU, any case
    node_id: str = ""
    category: str = ""
    at_risk: bool = False    # only rows at stock-out risk (at the open places the caller names)


class InventoryStore:
    """Over one ``Store`` connection (a thread's own, as every store)."""

    def __init__(self, store: Store):
        self.store = store
        self.conn = store.conn

    # ------------------------------------------------------------ written by planning

    def save_plans(self, shop_id: str, skus: Sequence[str], categories: Mapping[str, str | None],
                   plans: Iterable[PlanRow], now: datetime, *, every_sku: bool) -> None:
        """Replaces the planning figures of ``skus`` (``every_sku``: the shop's whole
        catalogue was planned, so rows of SKUs not named lose theirs too). A row the plan
        no longer has keeps its stock and loses its targets; a row with neither goes."""
        stamp = ts(now)
        with self.store.write():
            self.conn.executemany(
                "INSERT INTO node_sku_plans (shop_id, sku, node_id, is_hub, weekly_demand, lead_time_days, "
                "safety_stock, reorder_point, target_level, planned_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET is_hub = excluded.is_hub, weekly_demand = excluded.weekly_demand, "
                "lead_time_days = excluded.lead_time_days, safety_stock = excluded.safety_stock, "
                "reorder_point = excluded.reorder_point, target_level = excluded.target_level, "
                "planned_at = excluded.planned_at",
                ((shop_id, p.sku, p.node_id, int(p.is_hub), p.weekly_demand, p.lead_time_days, p.safety_stock,
                  p.reorder_point, p.target_level, stamp) for p in plans))
            unplanned = ("UPDATE node_sku_plans SET is_hub = 0, weekly_demand = 0, lead_time_days = 0, "
                         "safety_stock = 0, reorder_point = 0, target_level = 0, planned_at = ? "
                         "WHERE shop_id = ? AND planned_at IS NOT ? AND (is_hub != 0 OR weekly_demand != 0 "
                         "OR safety_stock != 0 OR reorder_point != 0 OR target_level != 0 OR planned_at IS NULL)")
            if every_sku:
                self.conn.execute(unplanned, (stamp, shop_id, stamp))
            else:
                self.conn.executemany(unplanned + " AND sku = ?", ((stamp, shop_id, stamp, sku) for sku in skus))
            self.conn.executemany(
                "UPDATE node_sku_plans SET category = ? WHERE shop_id = ? AND sku = ? AND category IS NOT ?",
                ((categories.get(sku), shop_id, sku, categories.get(sku)) for sku in skus))
            # Rows new to the table, or whose hub flag changed, count their position now;
            # from here on the triggers keep it current.
            where = "shop_id = ?" if every_sku else "shop_id = ? AND sku = ?"
            refresh = plan_position_update("node_sku_plans.shop_id", "node_sku_plans.sku", where)
            if every_sku:
                self.conn.execute(refresh, (shop_id,))
            else:
                self.conn.executemany(refresh, ((shop_id, sku) for sku in skus))
            gone = ("DELETE FROM node_sku_plans WHERE shop_id = ? {sku} AND weekly_demand = 0 AND inbound = 0 "
                    "AND NOT EXISTS (SELECT 1 FROM stock s WHERE s.shop_id = node_sku_plans.shop_id "
                    "AND s.sku = node_sku_plans.sku AND s.node_id = node_sku_plans.node_id)")
            if every_sku:
                self.conn.execute(gone.format(sku=""), (shop_id,))
            else:
                self.conn.executemany(gone.format(sku="AND sku = ?"), ((shop_id, sku) for sku in skus))

    # ------------------------------------------------------------ the page

    def rows(self, shop_id: str, filters: Filters, open_nodes: Sequence[str], *, limit: int,
             offset: int) -> list[dict]:
        """One page of node × SKU rows, by SKU then node."""
        where, params = _filter(shop_id, filters, open_nodes)
        return self._dicts(f"SELECT {_ROW} WHERE {where} ORDER BY p.sku, p.node_id LIMIT ? OFFSET ?",
                           (*params, limit, offset))

    def count(self, shop_id: str, filters: Filters, open_nodes: Sequence[str]) -> int:
        where, params = _filter(shop_id, filters, open_nodes)
        return self.conn.execute(f"SELECT COUNT(*) FROM node_sku_plans p WHERE {where}", params).fetchone()[0]

    def at_risk(self, shop_id: str, node_ids: Sequence[str], limit: int) -> list[dict]:
        """Rows out of stock or emptying before a refill can arrive, at ``node_ids``: out of
        stock first, then the fewest days of cover."""
        marks = ",".join("?" * len(node_ids))
        return self._dicts(
            f"SELECT {_ROW} WHERE p.shop_id = ? AND p.risk <= 1 AND p.node_id IN ({marks}) "
            "ORDER BY p.risk, p.cover_days, p.sku, p.node_id LIMIT ?", (shop_id, *node_ids, limit))

    def risk_counts(self, shop_id: str, node_ids: Sequence[str]) -> tuple[int, int]:
        """(node × SKU rows, distinct SKUs) at stock-out risk at ``node_ids``."""
        marks = ",".join("?" * len(node_ids))
        rows, skus = self.conn.execute(
            f"SELECT COUNT(*), COUNT(DISTINCT sku) FROM node_sku_plans WHERE shop_id = ? AND risk <= 1 "
            f"AND node_id IN ({marks})", (shop_id, *node_ids)).fetchone()
        return rows, skus

    def last_planned(self, shop_id: str) -> str | None:
        row = self.conn.execute("SELECT MAX(planned_at) FROM node_sku_plans WHERE shop_id = ?", (shop_id,)).fetchone()
        return row[0]

    def sku_rows(self, shop_id: str, sku: str) -> list[dict]:
        return self._dicts(f"SELECT {_ROW} WHERE p.shop_id = ? AND p.sku = ? ORDER BY p.node_id", (shop_id, sku))

    def in_transit(self, shop_id: str, skus: Sequence[str]) -> dict[tuple[str, str], tuple[int, int]]:
        """(sku, node) -> (units on their way to it, units on their way from it): transfers
        shipped and not yet received."""
        moving: dict[tuple[str, str], tuple[int, int]] = {}
        for part in chunked(sorted(set(skus)), SQL_PARAMS):
            rows = self.conn.execute(
                f"SELECT sku, from_node, to_node, units FROM transfers WHERE shop_id = ? AND sku IN "
                f"({','.join('?' * len(part))}) AND status = 'in_transit'", (shop_id, *part)).fetchall()
            for sku, from_node, to_node, units in rows:
                toward, away = moving.get((sku, to_node), (0, 0))
                moving[(sku, to_node)] = (toward + units, away)
                toward, away = moving.get((sku, from_node), (0, 0))
                moving[(sku, from_node)] = (toward, away + units)
        return moving

    def open_transfers(self, shop_id: str, sku: str) -> list[dict]:
        """The SKU's proposed, approved and in-transit transfers: what its projection expects."""
        return self._dicts(
            "SELECT id, from_node, to_node, units, lead_days, status, created_at, shipped_at FROM transfers "
            "WHERE shop_id = ? AND sku = ? AND status IN ('proposed', 'approved', 'in_transit') ORDER BY id",
            (shop_id, sku))

    def _dicts(self, sql: str, params: Sequence) -> list[dict]:
        cursor = self.conn.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def _filter(shop_id: str, filters: Filters, open_nodes: Sequence[str]) -> tuple[str, list]:
    where, params = ["p.shop_id = ?"], [shop_id]
    if filters.at_risk:
        where.append(f"p.risk <= 1 AND p.node_id IN ({','.join('?' * len(open_nodes))})")
        params.extend(open_nodes)
    if filters.node_id:
        where.append("p.node_id = ?")
        params.append(filters.node_id)
    if filters.category:
        where.append("p.category = ?")
        params.append(filters.category)
    if filters.sku_text:
        escaped = filters.sku_text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("p.sku LIKE ? ESCAPE '\\'")
        params.append(f"%{escaped}%")
    return " AND ".join(where), params
