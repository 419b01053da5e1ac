"""The inventory page's SQL: the per node × SKU planning table (store migration
``0017_node_sku_plans``) written by each allocation run, and the reads that page through
it, list its stock-out risks and show one SKU, all from indexes."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, Sequence

from connector.chunks import chunked
from connector.store import Store, ts

OPEN_TRANSFER_STATUSES = ("proposed", "approved", "in_transit")
_OPEN = ", ".join(f"'{status}'" for status in OPEN_TRANSFER_STATUSES)
SQL_PARAMS = 500  # per IN (...) list, well under SQLite's bound-parameter limit
BULK_ROWS = 2_000  # more rows new to the table at one node than this: added in one pass

# One row of the page: the node's own stock beside the planning's figures. `position_sellable`
# and `inbound` are the position the risk is judged on (the network's for the hub).
_COLUMNS = ("p.sku, p.node_id, p.category, p.is_hub, p.weekly_demand, p.lead_time_days, p.safety_stock, "
            "p.reorder_point, p.target_level, p.planned_at, p.sellable AS position_sellable, p.inbound, "
            "p.cover_days, p.risk, COALESCE(s.on_hand, 0) AS on_hand, COALESCE(s.available, 0) AS available, "
            "COALESCE(r.quantity, 0) AS reserved, s.updated_at AS stock_updated_at")
_STOCK = ("LEFT JOIN stock s ON s.shop_id = p.shop_id AND s.sku = p.sku AND s.node_id = p.node_id "
          "LEFT JOIN reserved_totals r ON r.shop_id = p.shop_id AND r.node_id = p.node_id AND r.sku = p.sku")
_ROW = f"{_COLUMNS} FROM node_sku_plans p {_STOCK} "


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

    # ------------------------------------------------------------ written by planning and syncs

    def save_plans(self, shop_id: str, skus: Sequence[str], categories: Mapping[str, str | None],
                   plans: Iterable[PlanRow], now: datetime, *, every_sku: bool) -> None:
        """The planning figures of ``skus`` (``every_sku``: the shop's whole catalogue was
        planned, so rows of SKUs not named lose theirs too). Only what changed is written:
        an allocation run re-plans 200,000 rows that mostly stay as they were. A row the
        plan no longer has keeps its stock and loses its targets; one with neither goes.
        With ``every_sku`` the shop's stock rows are checked too (see ``stock_changed``)."""
        stamp = ts(now)
        wanted = set(skus)
        # Read before taking the write lock (an allocation run holds it only for what changed).
        # What is written stays right if another run saved in between: rows go in as upserts,
        # and the rest sets values rather than adding to them.
        existing = self._plan_figures(shop_id, None if every_sku else sorted(wanted))
        unsettled = self._unsettled_stock(shop_id) if every_sku else []
        # The same shape as the rows read back (0 == 0.0, so ints and floats compare alike).
        planned: dict[tuple[str, str], tuple] = {
            (p.sku, p.node_id): (int(p.is_hub), p.weekly_demand, p.lead_time_days, p.safety_stock,
                                 p.reorder_point, p.target_level) for p in plans}
        unplanned = (0, 0.0, 0.0, 0, 0, 0)
        added = [key for key in planned if key not in existing]
        changed = [(key, planned[key]) for key in planned if key in existing and existing[key][0] != planned[key]]
        dropped = [key for key, (figures, _) in existing.items()
                   if key not in planned and figures != unplanned and (every_sku or key[0] in wanted)]
        # Rows whose SKU's category changed, and those the stock check adds (none has one yet).
        recategorised = [key for key, (_, category) in existing.items()
                         if key[0] in categories and category != categories.get(key[0])]
        recategorised += [(sku, node) for node, sku in unsettled if (sku, node) not in existing
                          and (sku, node) not in planned and sku in categories]
        with self.store.write():
            # A new row counts its position as it goes in (the triggers keep it current from then on).
            own = ("COALESCE((SELECT MAX(s.available - COALESCE((SELECT r.quantity FROM reserved_totals r "
                   "WHERE r.shop_id = s.shop_id AND r.node_id = s.node_id AND r.sku = s.sku), 0), 0) FROM stock s "
                   "WHERE s.shop_id = ?1 AND s.sku = ?2 AND s.node_id = ?3), 0)")
            inbound = ("(SELECT COALESCE(SUM(t.units), 0) FROM transfers t WHERE t.shop_id = ?1 AND t.sku = ?2 "
                       f"AND t.to_node = ?3 AND t.status IN ({_OPEN}))")
            self.conn.executemany(
                "INSERT INTO node_sku_plans (shop_id, sku, node_id, category, is_hub, weekly_demand, lead_time_days, "
                "safety_stock, reorder_point, target_level, planned_at, own_sellable, own_inbound, sellable, inbound) "
                f"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, {own}, {inbound}, {own}, {inbound}) "
                "ON CONFLICT DO UPDATE SET category = excluded.category, is_hub = excluded.is_hub, "
                "weekly_demand = excluded.weekly_demand, lead_time_days = excluded.lead_time_days, "
                "safety_stock = excluded.safety_stock, reorder_point = excluded.reorder_point, "
                "target_level = excluded.target_level, planned_at = excluded.planned_at",
                ((shop_id, sku, node, categories.get(sku), *planned[(sku, node)], stamp) for sku, node in added))
            self.conn.executemany(
                "UPDATE node_sku_plans SET is_hub = ?, weekly_demand = ?, lead_time_days = ?, safety_stock = ?, "
                "reorder_point = ?, target_level = ?, planned_at = ? WHERE shop_id = ? AND sku = ? AND node_id = ?",
                [(*figures, stamp, shop_id, sku, node) for (sku, node), figures in changed]
                + [(*unplanned, stamp, shop_id, sku, node) for sku, node in dropped])
            self.stock_changed(shop_id, rows=unsettled)  # each read again under the lock
            self.conn.executemany(
                "UPDATE node_sku_plans SET category = ? WHERE shop_id = ? AND sku = ? AND node_id = ?",
                ((categories.get(sku), shop_id, sku, node) for sku, node in recategorised))
            # A hub row is judged on the network's position: recounted where the hub is new, or
            # the SKU has rows new to the table; a row that stopped being the hub on its own.
            flipped = [key for key, figures in changed if figures[0] != existing[key][0][0]]
            flipped += [key for key in dropped if existing[key][0][0]]
            self.conn.executemany(
                "UPDATE node_sku_plans SET sellable = (SELECT SUM(p.own_sellable) FROM node_sku_plans p "
                "WHERE p.shop_id = node_sku_plans.shop_id AND p.sku = node_sku_plans.sku), "
                "inbound = (SELECT SUM(p.own_inbound) FROM node_sku_plans p WHERE p.shop_id = node_sku_plans.shop_id "
                "AND p.sku = node_sku_plans.sku) WHERE shop_id = ? AND sku = ? AND is_hub = 1",
                ((shop_id, sku) for sku in sorted({sku for sku, _ in added} | {sku for sku, _ in flipped})))
            self.conn.executemany(
                "UPDATE node_sku_plans SET sellable = own_sellable, inbound = own_inbound "
                "WHERE shop_id = ? AND sku = ? AND node_id = ? AND is_hub = 0",
                ((shop_id, sku, node) for sku, node in flipped))
            self.conn.executemany(
                "DELETE FROM node_sku_plans WHERE shop_id = ? AND sku = ? AND node_id = ? AND own_inbound = 0 "
                "AND NOT EXISTS (SELECT 1 FROM stock s WHERE s.shop_id = node_sku_plans.shop_id "
                "AND s.sku = node_sku_plans.sku AND s.node_id = node_sku_plans.node_id)",
                ((shop_id, sku, node) for sku, node in dropped))
            self.conn.execute("INSERT INTO node_sku_plan_runs (shop_id, planned_at) VALUES (?, ?) "
                              "ON CONFLICT DO UPDATE SET planned_at = excluded.planned_at", (shop_id, stamp))

    def stock_changed(self, shop_id: str, node_ids: Sequence[str] = (), rows: Sequence[tuple[str, str]] = (), *,
                      synced: Mapping[str, Iterable[str]] | None = None) -> int:
        """After stock rows were written without a trigger seeing them (a sync replacing
        ``node_ids``' rows, a service adding ``rows`` (node, sku)): each row's own sellable
        units as the stock and reservations now say, and the hub's moved by the same change.
        ``synced``: the SKUs the sync wrote per node, so the rows new to the table are found
        without scanning the shop's stock. Reads every row named, writes only those that
        changed; inside the writer's transaction. Returns the rows that changed."""
        units = ("MAX(s.available - COALESCE((SELECT r.quantity FROM reserved_totals r WHERE r.shop_id = s.shop_id "
                 "AND r.node_id = s.node_id AND r.sku = s.sku), 0), 0)")
        changes: list[tuple[str, str, int]] = []  # (node, sku, units by the stock − own units in the table)
        new: list[tuple[str, str]] = []
        many: set[str] = set()  # nodes with more than BULK_ROWS rows new to the table: added in one pass
        bulk = 0  # how many rows those are
        new_skus: set[str] = set()
        for node_id in node_ids:
            known = self.conn.execute(
                f"SELECT p.sku, COALESCE({units}, 0) - p.own_sellable FROM node_sku_plans p LEFT JOIN stock s "
                "ON s.shop_id = p.shop_id AND s.sku = p.sku AND s.node_id = p.node_id "
                "WHERE p.shop_id = ? AND p.node_id = ?", (shop_id, node_id)).fetchall()
            changes += [(node_id, sku, delta) for sku, delta in known if delta]
            if synced is not None:
                have = {sku for sku, _ in known}
                fresh = {sku for sku in synced.get(node_id, ()) if sku not in have}
            else:
                fresh = {sku for sku, in self.conn.execute(
                    "SELECT sku FROM stock s WHERE shop_id = ? AND node_id = ? AND NOT EXISTS (SELECT 1 "
                    "FROM node_sku_plans p WHERE p.shop_id = s.shop_id AND p.sku = s.sku AND p.node_id = s.node_id)",
                    (shop_id, node_id))}
            new_skus |= fresh
            if len(fresh) > BULK_ROWS:
                many.add(node_id)
                bulk += len(fresh)
            else:
                new += [(node_id, sku) for sku in fresh]
        for node_id, sku in rows:
            row = self.conn.execute(
                f"SELECT COALESCE((SELECT {units} FROM stock s WHERE s.shop_id = ? AND s.sku = ? AND s.node_id = ?), 0) "
                "- p.own_sellable FROM node_sku_plans p WHERE p.shop_id = ? AND p.sku = ? AND p.node_id = ?",
                (shop_id, sku, node_id, shop_id, sku, node_id)).fetchone()
            if row is None:
                new.append((node_id, sku))
                new_skus.add(sku)
            elif row[0]:
                changes.append((node_id, sku, row[0]))
        # Rows new to the table go in with their units (not the hub: save_plans names it), and
        # the SKU's hub row, if it has one, is recounted: a first sync adds 100,000 rows at once.
        new = list(dict.fromkeys(new))
        if many:  # a node's first sync: one pass over the shop's stock beats a lookup each
            # One statement for all such nodes, in the table's key order (SKU, node): inserting
            # node after node lands each row in a different place of the key and cost 60% more.
            self.conn.execute(
                f"INSERT INTO node_sku_plans (shop_id, sku, node_id, own_sellable, sellable) SELECT s.shop_id, s.sku, "
                f"s.node_id, {units}, {units} FROM stock s WHERE s.shop_id = ? AND s.node_id IN "
                f"({', '.join('?' * len(many))}) AND NOT EXISTS (SELECT 1 FROM node_sku_plans p "
                "WHERE p.shop_id = s.shop_id AND p.sku = s.sku AND p.node_id = s.node_id) ORDER BY s.sku, s.node_id",
                (shop_id, *sorted(many)))
        self.conn.executemany(
            f"INSERT INTO node_sku_plans (shop_id, sku, node_id, own_sellable, sellable) SELECT ?1, ?2, ?3, u, u "
            f"FROM (SELECT COALESCE((SELECT {units} FROM stock s WHERE s.shop_id = ?1 AND s.sku = ?2 "
            "AND s.node_id = ?3), 0) AS u) WHERE NOT EXISTS (SELECT 1 FROM node_sku_plans WHERE shop_id = ?1 "
            "AND sku = ?2 AND node_id = ?3)", ((shop_id, sku, node_id) for node_id, sku in new if node_id not in many))
        self.conn.executemany(
            "UPDATE node_sku_plans SET sellable = (SELECT SUM(p.own_sellable) FROM node_sku_plans p "
            "WHERE p.shop_id = node_sku_plans.shop_id AND p.sku = node_sku_plans.sku) "
            "WHERE shop_id = ? AND sku = ? AND is_hub = 1",
            ((shop_id, sku) for sku in sorted(new_skus)))
        self.conn.executemany(
            "UPDATE node_sku_plans SET sellable = sellable + ? WHERE shop_id = ? AND sku = ? AND is_hub = 1 "
            "AND node_id != ?", ((delta, shop_id, sku, node_id) for node_id, sku, delta in changes))
        self.conn.executemany(
            "UPDATE node_sku_plans SET sellable = CASE WHEN is_hub = 1 THEN sellable + ? ELSE own_sellable + ? END, "
            "own_sellable = own_sellable + ? WHERE shop_id = ? AND sku = ? AND node_id = ?",
            ((delta, delta, delta, shop_id, sku, node_id) for node_id, sku, delta in changes))
        return len(changes) + len(new) + bulk

    def _unsettled_stock(self, shop_id: str) -> list[tuple[str, str]]:
        """(node, sku) of the shop whose own sellable units in the table differ from what
        the stock and reservations say, or that the table lacks: stock a writer did not
        settle. One pass over the shop, read without the write lock."""
        units = ("MAX(s.available - COALESCE((SELECT r.quantity FROM reserved_totals r WHERE r.shop_id = s.shop_id "
                 "AND r.node_id = s.node_id AND r.sku = s.sku), 0), 0)")
        return self.conn.execute(
            f"SELECT s.node_id, s.sku FROM stock s LEFT JOIN node_sku_plans p ON p.shop_id = s.shop_id "
            f"AND p.sku = s.sku AND p.node_id = s.node_id WHERE s.shop_id = ? AND p.own_sellable IS NOT {units} "
            "UNION ALL SELECT node_id, sku FROM node_sku_plans p WHERE shop_id = ? AND own_sellable != 0 "
            "AND NOT EXISTS (SELECT 1 FROM stock s WHERE s.shop_id = p.shop_id AND s.sku = p.sku "
            "AND s.node_id = p.node_id)", (shop_id, shop_id)).fetchall()

    def _plan_figures(self, shop_id: str, skus: Sequence[str] | None) -> dict[tuple[str, str], tuple[tuple, str]]:
        """(sku, node) -> (planning figures as save_plans compares them, category)."""
        sql = ("SELECT sku, node_id, is_hub, weekly_demand, lead_time_days, safety_stock, reorder_point, target_level, "
               "category FROM node_sku_plans WHERE shop_id = ?")
        if skus is None:
            rows = self.conn.execute(sql, (shop_id,)).fetchall()
        else:
            rows = []
            for part in chunked(list(skus), SQL_PARAMS):
                rows += self.conn.execute(f"{sql} AND sku IN ({','.join('?' * len(part))})", (shop_id, *part)).fetchall()
        return {(row[0], row[1]): (row[2:8], row[8]) for row in rows}

    # ------------------------------------------------------------ the page

    def rows(self, shop_id: str, filters: Filters, open_nodes: Sequence[str], *, limit: int,
             offset: int) -> list[dict]:
        """One page of node × SKU rows, by SKU then node."""
        where, params = _filter(shop_id, filters, open_nodes)
        # The offset is walked in an index, keys only; the stock and reservations are joined
        # to the page's rows alone (a deep page would otherwise join every row it skips).
        return self._dicts(
            f"WITH page AS (SELECT p.sku, p.node_id FROM node_sku_plans p WHERE {where} "
            "ORDER BY p.sku, p.node_id LIMIT ? OFFSET ?) "
            f"SELECT {_COLUMNS} FROM page JOIN node_sku_plans p ON p.shop_id = ? AND p.sku = page.sku "
            f"AND p.node_id = page.node_id {_STOCK} ORDER BY p.sku, p.node_id", (*params, limit, offset, shop_id))

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
        row = self.conn.execute("SELECT planned_at FROM node_sku_plan_runs WHERE shop_id = ?", (shop_id,)).fetchone()
        return row[0] if row else None

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
