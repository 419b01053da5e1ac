"""SQL for shipment facts and the metric counters (tables from migration 0014_shipment_facts).

The metrics never scan orders: every figure is read from ``metric_days`` (one row per
shop × local day the order was placed × node × region) and ``metric_stockouts``, which
are kept current in the same transaction as what changes them:

- ``count_decisions`` (called by ``Store.save_decisions``, so every routing — first,
  re-route, re-evaluation, an exception routed by hand — passes here): an order is
  counted once as decided and once as routed, each (order, node) part once as routed,
  each exception line once (``metric_orders``, ``metric_parts``,
  ``metric_exception_lines`` remember what was counted).
- ``save_fact``: a part's merged fact and its contribution; the counters move by the
  difference between the part's previous contribution and its new one, so a fact
  delivered twice, late or out of order leaves them exact.

An order is counted on the local day it was placed and the region it had when first
counted; both are kept in ``metric_orders`` so every later count lands on the same row.
Callers hold the write lock (``Store.write``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime, time
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.domain.model import ExceptionReason
from connector.domain.shipments import Contribution, ShipmentFact, contribution, local_day
from connector.store import Store, parse_ts, ts

ORDER_LEVEL = ""  # metric_days.node_id of the counters that belong to a whole order

# The metric_days counters, as read by the metrics.
COUNTERS = ("orders_decided", "orders_routed", "orders_with_exception", "exception_lines", "orders_shipped",
            "split_orders", "parts_routed", "shipped", "on_time", "in_full", "delivered", "delivery_days",
            "first_attempt_known", "first_attempt_ok", "damaged", "lost", "returned", "problems", "cost", "cost_known",
            "split_parts")

_FACT_COLUMNS = ("shipped_at", "delivered_at", "carrier", "tracking_number", "tracking_url", "first_attempt_ok",
                 "damaged", "lost", "returned", "in_full", "source")
_TIMES = {"shipped_at", "delivered_at"}
_FLAGS = {"first_attempt_ok", "damaged", "lost", "returned", "in_full"}


@dataclass(frozen=True)
class OrderBasis:
    """What a part's contribution is computed from, besides its fact."""

    placed_at: datetime
    day: str
    region_id: str
    tz: ZoneInfo


@dataclass(frozen=True)
class NodeTerms:
    cutoff: time | None
    lane_costs: dict[str, float]  # region id -> cost per order


class ShipmentStore:
    def __init__(self, store: Store):
        self.store = store
        self.conn = store.conn

    # ------------------------------------------------------------ what a count is based on

    def timezone(self, shop_id: str) -> ZoneInfo:
        row = self.conn.execute("SELECT timezone FROM shops WHERE id = ?", (shop_id,)).fetchone()
        try:
            return ZoneInfo(row[0]) if row and row[0] else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def order_basis(self, shop_id: str, order_id: str, region_id: str | None = None) -> OrderBasis | None:
        """The order's placed time, and the day and region it is counted on: those of its
        first count if it has one, else its own (``region_id`` given wins over the stored
        one). None for an order not stored."""
        row = self.conn.execute("SELECT created_at, region_id FROM orders WHERE shop_id = ? AND id = ?",
                                (shop_id, order_id)).fetchone()
        if row is None or not row[0]:
            return None
        tz = self.timezone(shop_id)
        placed_at = parse_ts(row[0])
        counted = self.conn.execute("SELECT day, region_id FROM metric_orders WHERE shop_id = ? AND order_id = ?",
                                    (shop_id, order_id)).fetchone()
        if counted is not None:
            return OrderBasis(placed_at, counted[0], counted[1], tz)
        return OrderBasis(placed_at, local_day(placed_at, tz), region_id or row[1] or "", tz)

    def node_terms(self, shop_id: str, node_id: str) -> NodeTerms:
        """The node's cutoff and lane costs as the configuration last synced them (nodes.spec)."""
        row = self.conn.execute("SELECT spec FROM nodes WHERE shop_id = ? AND id = ?", (shop_id, node_id)).fetchone()
        spec = json.loads(row[0]) if row and row[0] else {}
        cutoff = time.fromisoformat(spec["cutoff"]) if spec.get("cutoff") else None
        return NodeTerms(cutoff, {region: float(lane["cost_per_order"])
                                  for region, lane in (spec.get("lanes") or {}).items()})

    # ------------------------------------------------------------ counting decisions

    def count_decisions(self, shop_id: str, order_id: str, region_id: str | None, decisions: Sequence) -> None:
        """Count what these routing decisions add: the order as decided and (with a
        routed line) as routed, each newly routed node's part, each new exception line
        (a partial-stock one also as a stock-out of its SKU). Counted before: nothing."""
        basis = self.order_basis(shop_id, order_id, region_id)
        if basis is None:
            return
        first = self.conn.execute(
            "INSERT INTO metric_orders (shop_id, order_id, day, region_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING", (shop_id, order_id, basis.day, basis.region_id)).rowcount == 1
        key = (shop_id, basis.day, basis.region_id)
        adds = {"orders_decided": self._flag(shop_id, order_id, "decided")}
        nodes = sorted({d.node_id for d in decisions if d.node_id is not None})
        if nodes:
            adds["orders_routed"] = self._flag(shop_id, order_id, "routed")
        exceptions = [d for d in decisions if d.exception is not None]
        new_lines = 0
        for d in exceptions:
            if self.conn.execute("INSERT INTO metric_exception_lines (shop_id, order_id, line_id) VALUES (?, ?, ?) "
                                 "ON CONFLICT DO NOTHING", (shop_id, order_id, d.line_id)).rowcount:
                new_lines += 1
                if d.exception == ExceptionReason.PARTIAL_STOCK and d.sku:
                    self.conn.execute(
                        "INSERT INTO metric_stockouts (shop_id, day, sku, lines, units) VALUES (?, ?, ?, 1, ?) "
                        "ON CONFLICT DO UPDATE SET lines = lines + 1, units = units + excluded.units",
                        (shop_id, basis.day, d.sku, d.quantity))
        if exceptions:
            adds["orders_with_exception"] = self._flag(shop_id, order_id, "exception")
        adds["exception_lines"] = new_lines
        self._add(key, ORDER_LEVEL, adds)
        for node_id in nodes:
            if self.conn.execute("INSERT INTO metric_parts (shop_id, order_id, node_id) VALUES (?, ?, ?) "
                                 "ON CONFLICT DO NOTHING", (shop_id, order_id, node_id)).rowcount:
                self._add(key, node_id, {"parts_routed": 1})
        if first:
            self._recount_uncounted_facts(shop_id, order_id)

    def _flag(self, shop_id: str, order_id: str, column: str) -> int:
        """Set the order's ``column`` flag; 1 when this set it (count it now), 0 when it was set."""
        return self.conn.execute(f"UPDATE metric_orders SET {column} = 1 WHERE shop_id = ? AND order_id = ? "
                                 f"AND {column} = 0", (shop_id, order_id)).rowcount

    def _recount_uncounted_facts(self, shop_id: str, order_id: str) -> None:
        """Facts that came before their order was stored wait uncounted; the order's first
        count counts them."""
        for (node_id,) in self.conn.execute(
                "SELECT node_id FROM shipment_facts WHERE shop_id = ? AND order_id = ? AND counted IS NULL",
                (shop_id, order_id)).fetchall():
            fact, _ = self.fact(shop_id, order_id, node_id)
            counted = self.contribution_for(shop_id, order_id, node_id, fact)
            if counted is not None:
                self.conn.execute("UPDATE shipment_facts SET counted = ? WHERE shop_id = ? AND order_id = ? "
                                  "AND node_id = ?", (json.dumps(asdict(counted)), shop_id, order_id, node_id))
                self._count(shop_id, order_id, node_id, counted, None)

    # ------------------------------------------------------------ facts

    def fact(self, shop_id: str, order_id: str, node_id: str) -> tuple[ShipmentFact, Contribution | None] | None:
        """The part's merged fact and the contribution it has counted (None: not counted)."""
        row = self.conn.execute(
            f"SELECT {', '.join(_FACT_COLUMNS)}, counted FROM shipment_facts "
            "WHERE shop_id = ? AND order_id = ? AND node_id = ?", (shop_id, order_id, node_id)).fetchone()
        if row is None:
            return None
        values = dict(zip(_FACT_COLUMNS, row[:-1]))
        for name in _TIMES:
            values[name] = parse_ts(values[name])
        for name in _FLAGS:
            values[name] = None if values[name] is None else bool(values[name])
        counted = Contribution(**json.loads(row[-1])) if row[-1] else None
        return ShipmentFact(**values), counted

    def contribution_for(self, shop_id: str, order_id: str, node_id: str,
                         fact: ShipmentFact) -> Contribution | None:
        """What the part's ``fact`` counts, on its order's day and region, with the node's
        cutoff and lane cost; None while the order is not stored (counted when it is)."""
        basis = self.order_basis(shop_id, order_id)
        if basis is None:
            return None
        terms = self.node_terms(shop_id, node_id)
        made = contribution(fact, placed_at=basis.placed_at, region_id=basis.region_id, cutoff=terms.cutoff,
                            tz=basis.tz, lane_cost=terms.lane_costs.get(basis.region_id))
        return replace(made, day=basis.day)

    def save_fact(self, shop_id: str, order_id: str, node_id: str, fact: ShipmentFact,
                  counted: Contribution | None, before: Contribution | None, now: datetime) -> None:
        """Store the part's merged ``fact`` counting ``counted``, and move the counters from
        ``before`` (what it counted until now) to ``counted``."""
        values = {f.name: getattr(fact, f.name) for f in fields(ShipmentFact)}
        for name in _TIMES:
            values[name] = ts(values[name]) if values[name] else None
        for name in _FLAGS:
            values[name] = None if values[name] is None else int(values[name])
        self.conn.execute(
            f"INSERT INTO shipment_facts (shop_id, order_id, node_id, {', '.join(_FACT_COLUMNS)}, updated_at, counted) "
            f"VALUES (?, ?, ?, {', '.join('?' * len(_FACT_COLUMNS))}, ?, ?) ON CONFLICT DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in (*_FACT_COLUMNS, "updated_at", "counted")),
            (shop_id, order_id, node_id, *(values[c] for c in _FACT_COLUMNS), ts(now),
             json.dumps(asdict(counted)) if counted else None))
        self._count(shop_id, order_id, node_id, counted, before)

    def _count(self, shop_id: str, order_id: str, node_id: str, counted: Contribution | None,
               before: Contribution | None) -> None:
        if before is not None:
            self._add((shop_id, before.day, before.region_id), node_id,
                      {name: -value for name, value in before.counters().items()})
        if counted is not None:
            self._add((shop_id, counted.day, counted.region_id), node_id, counted.counters())
        if counted is not None and counted.shipped and not (before is not None and before.shipped):
            self._count_shipped_part(shop_id, order_id, node_id, counted)

    def _count_shipped_part(self, shop_id: str, order_id: str, node_id: str, counted: Contribution) -> None:
        """A part shipped for the first time: the order counts as shipped with its first
        part, and as split with its second (both parts then count as split, and any later
        one too). A shipped part stays shipped (facts never erase a ship time)."""
        self.conn.execute(
            "INSERT INTO metric_orders (shop_id, order_id, day, region_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (shop_id, order_id, counted.day, counted.region_id))
        self.conn.execute("UPDATE metric_orders SET shipped_nodes = shipped_nodes + 1 WHERE shop_id = ? "
                          "AND order_id = ?", (shop_id, order_id))
        shipped_nodes = self.conn.execute("SELECT shipped_nodes FROM metric_orders WHERE shop_id = ? "
                                          "AND order_id = ?", (shop_id, order_id)).fetchone()[0]
        key = (shop_id, counted.day, counted.region_id)
        if shipped_nodes == 1:
            self._add(key, ORDER_LEVEL, {"orders_shipped": 1})
            return
        self._add(key, node_id, {"split_parts": 1})
        if shipped_nodes == 2:
            self._add(key, ORDER_LEVEL, {"split_orders": 1})
            for (other,) in self.conn.execute(
                    "SELECT node_id FROM shipment_facts WHERE shop_id = ? AND order_id = ? AND node_id != ? "
                    "AND shipped_at IS NOT NULL AND counted IS NOT NULL", (shop_id, order_id, node_id)).fetchall():
                self._add(key, other, {"split_parts": 1})

    def _add(self, key: tuple[str, str, str], node_id: str, amounts: dict[str, float]) -> None:
        amounts = {name: value for name, value in amounts.items() if value}
        if not amounts:
            return
        shop_id, day, region_id = key
        names = list(amounts)
        self.conn.execute(
            f"INSERT INTO metric_days (shop_id, day, node_id, region_id, {', '.join(names)}) "
            f"VALUES (?, ?, ?, ?, {', '.join('?' * len(names))}) ON CONFLICT DO UPDATE SET "
            + ", ".join(f"{n} = {n} + excluded.{n}" for n in names),
            (shop_id, day, node_id, region_id, *amounts.values()))

    # ------------------------------------------------------------ reading the counters

    def day_rows(self, shop_id: str, since: date, until: date, node_ids: Iterable[str] | None = None) -> list[dict]:
        """metric_days rows of days ``since``..``until`` (inclusive): day, node_id, region_id
        and the counters. With ``node_ids``, those nodes' rows and the order-level ones."""
        where, params = "shop_id = ? AND day >= ? AND day <= ?", [shop_id, since.isoformat(), until.isoformat()]
        if node_ids is not None:
            nodes = [ORDER_LEVEL, *node_ids]
            where += f" AND node_id IN ({', '.join('?' * len(nodes))})"
            params += nodes
        cursor = self.conn.execute(f"SELECT day, node_id, region_id, {', '.join(COUNTERS)} FROM metric_days "
                                   f"WHERE {where} ORDER BY day, node_id, region_id", params)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def stockouts(self, shop_id: str, since: date, until: date) -> list[dict]:
        """SKUs with lines no node had the stock for, most lines first."""
        cursor = self.conn.execute(
            "SELECT sku, SUM(lines) AS lines, SUM(units) AS units, COUNT(*) AS days FROM metric_stockouts "
            "WHERE shop_id = ? AND day >= ? AND day <= ? GROUP BY sku ORDER BY SUM(lines) DESC, sku",
            (shop_id, since.isoformat(), until.isoformat()))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def open_exception_lines(self, shop_id: str) -> int:
        """Open order lines waiting in exceptions (what ``Store.open_exceptions`` lists), counted."""
        return self.conn.execute(
            "SELECT COUNT(*) FROM routing_decisions d JOIN orders o ON o.shop_id = d.shop_id AND o.id = d.order_id "
            "WHERE d.shop_id = ? AND d.exception IS NOT NULL AND d.current = 1 AND o.state = 'open'",
            (shop_id,)).fetchone()[0]
