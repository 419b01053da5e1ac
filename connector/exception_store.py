"""SQL for acting on exception lines (columns from migration 0016_dismissed_exceptions):
which orders hold open exceptions, oldest first, narrowed to what a change could
affect; and a line dismissed by a person. Callers hold the write lock around changes."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

from connector.store import Store, ts


class ExceptionStore:
    def __init__(self, store: Store):
        self.store = store
        self.conn = store.conn

    def orders_with_exceptions(self, shop_id: str, *, skus: Iterable[str] | None = None,
                               stocked_at: Sequence[str] | None = None, limit: int | None = None) -> list[str]:
        """Open orders with an open (not dismissed) exception line, the oldest order first
        (it gets the first pick of stock that arrives). ``skus``: only lines of these SKUs;
        ``stocked_at``: only lines whose SKU a node among these now has available."""
        where, params = ["d.shop_id = ?"], [shop_id]
        if skus is not None:
            skus = list(skus)
            where.append(f"d.sku IN ({','.join('?' * len(skus)) or 'NULL'})")
            params.extend(skus)
        if stocked_at is not None:
            where.append("d.sku IN (SELECT s.sku FROM stock s WHERE s.shop_id = d.shop_id AND s.available > 0 "
                         f"AND s.node_id IN ({','.join('?' * len(stocked_at)) or 'NULL'}))")
            params.extend(stocked_at)
        rows = self.conn.execute(
            "SELECT d.order_id FROM routing_decisions d JOIN orders o ON o.shop_id = d.shop_id AND o.id = d.order_id "
            f"WHERE {' AND '.join(where)} AND d.current = 1 AND d.exception IS NOT NULL AND d.dismissed_at IS NULL "
            "AND o.state = 'open' GROUP BY d.order_id ORDER BY MIN(o.first_seen_at), MIN(o.created_at), d.order_id "
            + ("LIMIT ?" if limit is not None else ""),
            (*params, *((limit,) if limit is not None else ())),
        ).fetchall()
        return [order_id for (order_id,) in rows]

    def dismiss(self, shop_id: str, order_id: str, line_id: str, note: str, by: str, now: datetime) -> bool:
        """Mark the line's current exception as handled outside the connector; False when
        the line has no open exception."""
        cursor = self.conn.execute(
            "UPDATE routing_decisions SET dismissed_at = ?, dismissed_by = ?, dismissed_note = ? WHERE shop_id = ? "
            "AND order_id = ? AND line_id = ? AND current = 1 AND exception IS NOT NULL AND dismissed_at IS NULL",
            (ts(now), by, note, shop_id, order_id, line_id),
        )
        return cursor.rowcount == 1

    def dismissed(self, shop_id: str | None = None) -> list[dict]:
        """Exception lines of open orders a person dismissed, newest first."""
        where, params = ("AND d.shop_id = ?", (shop_id,)) if shop_id else ("", ())
        cursor = self.conn.execute(
            "SELECT d.shop_id, d.order_id, o.number, d.line_id, d.sku, d.quantity, d.exception, d.explanation, "
            "d.dismissed_at, d.dismissed_by, d.dismissed_note FROM routing_decisions d JOIN orders o "
            "ON o.shop_id = d.shop_id AND o.id = d.order_id WHERE d.current = 1 AND d.dismissed_at IS NOT NULL "
            f"AND o.state = 'open' {where} ORDER BY d.dismissed_at DESC, d.id DESC",
            params,
        )
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
