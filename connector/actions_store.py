"""SQL for the action centre: the details its items show that the general listings
leave out, and putting failed background work back in its queue ("try again").

The listings run on every page view of the home page and the action centre, for shops
with 100,000 orders: each reads through an index to the few rows that need a person
(``+j.shop_id`` keeps SQLite on the status index, where the rows waiting are few,
rather than on the shop's, which holds every row the shop ever had).

Each requeue changes a row only from the status the caller saw it in, so a second
click (or a job that finished meanwhile) changes nothing and the caller can say so.
Callers hold the write lock (``Store.write``).
"""
from __future__ import annotations

from datetime import datetime

from connector.store import Store, ts


class ActionsStore:
    def __init__(self, store: Store):
        self.store = store
        self.conn = store.conn

    def exception_lines(self, shop_id: str) -> list[dict]:
        """The shop's open exceptions (as ``Store.open_exceptions``) with what the page
        says about each: the line's product title and the order's region."""
        return _dicts(self.conn.execute(
            "SELECT d.order_id, o.number, o.region_id, d.line_id, d.sku, l.title, d.quantity, d.exception, "
            "d.explanation, d.decided_at FROM routing_decisions d "
            "JOIN orders o ON o.shop_id = d.shop_id AND o.id = d.order_id "
            "LEFT JOIN order_lines l ON l.shop_id = d.shop_id AND l.order_id = d.order_id AND l.line_id = d.line_id "
            "WHERE d.shop_id = ? AND d.current = 1 AND d.exception IS NOT NULL AND d.dismissed_at IS NULL "
            "AND o.state = 'open' "
            "ORDER BY d.decided_at, d.id", (shop_id,)))

    def forward_problems(self, shop_id: str, max_attempts: int) -> list[dict]:
        """Forward jobs a person should see: failed for good, or still pending with their
        attempts used up (whether the 3PL holds the order is not known), with the order's number."""
        return _dicts(self.conn.execute(
            "SELECT j.*, o.number FROM forward_jobs j LEFT JOIN orders o ON o.shop_id = j.shop_id "
            "AND o.id = j.order_id WHERE j.status IN ('failed', 'pending') AND +j.shop_id = ? "
            "AND (j.status = 'failed' OR j.attempts >= ?) ORDER BY j.id", (shop_id, max_attempts)))

    def failed_deliveries(self, shop_id: str) -> list[dict]:
        """Deliveries from the store that failed or could not be read (as ``Store.failed_webhooks``)."""
        return _dicts(self.conn.execute(
            "SELECT id, shop_id, topic, received_at, attempts, last_error, status FROM webhook_inbox "
            "WHERE status IN ('failed', 'rejected') AND +shop_id = ? ORDER BY id", (shop_id,)))

    def refund_lookup_problems(self, shop_id: str) -> list[dict]:
        """Failed refund lookups per order: the refunds, the most attempts, the last error, the order's number."""
        return _dicts(self.conn.execute(
            "SELECT r.order_id, o.number, group_concat(r.refund_id, ', ') AS refund_ids, MAX(r.attempts) AS attempts, "
            "MAX(r.last_error) AS last_error, MIN(r.requested_at) AS requested_at FROM refund_lookups r "
            "LEFT JOIN orders o ON o.shop_id = r.shop_id AND o.id = r.order_id "
            "WHERE r.status = 'failed' AND +r.shop_id = ? GROUP BY r.order_id ORDER BY MIN(r.requested_at)",
            (shop_id,)))

    def over_reserved(self, shop_id: str) -> list[dict]:
        """What ``Store.over_reserved`` lists (node, sku, available, reserved, at_3pl), with the
        units at a 3PL summed once over the shop's active reservations (the partial index of
        active ones) instead of once per row over all of them."""
        rows = _dicts(self.conn.execute(
            "SELECT t.node_id, t.sku, COALESCE(s.available, 0) AS available, t.quantity AS reserved "
            "FROM reserved_totals t LEFT JOIN stock s ON s.shop_id = t.shop_id AND s.node_id = t.node_id "
            "AND s.sku = t.sku WHERE t.shop_id = ? AND t.quantity > COALESCE(s.available, 0) "
            "ORDER BY t.node_id, t.sku", (shop_id,)))
        if not rows:
            return []
        at_3pl = {(node_id, sku): units for node_id, sku, units in self.conn.execute(
            "SELECT r.node_id, r.sku, SUM(r.quantity) FROM reservations r JOIN forward_jobs f "
            "ON f.shop_id = r.shop_id AND f.order_id = r.order_id AND f.node_id = r.node_id "
            "AND f.status IN ('sending', 'sent', 'shipped') WHERE r.shop_id = ? AND r.status = 'active' "
            "GROUP BY r.node_id, r.sku", (shop_id,))}
        return [{**row, "at_3pl": at_3pl.get((row["node_id"], row["sku"]), 0)} for row in rows]

    def requeue_forward_job(self, job_id: int, now: datetime) -> bool:
        """A failed job, or one whose outcome is unknown, is due again now. Its attempts are
        kept: the next failure settles at once with a lookup at the 3PL (see Forwarding)."""
        return self.conn.execute(
            "UPDATE forward_jobs SET status = 'pending', next_attempt_at = ? WHERE id = ? "
            "AND status IN ('failed', 'pending')", (ts(now), job_id)).rowcount == 1

    def requeue_failed_webhooks(self, shop_id: str, inbox_id: int | None = None) -> list[int]:
        """Failed deliveries (or just ``inbox_id``) go back to the inbox for one more try;
        returns their ids. A rejected one (its body cannot be read) stays: it would be again."""
        only = "AND id = ?" if inbox_id is not None else ""
        params = (shop_id, *(() if inbox_id is None else (inbox_id,)))
        ids = [row[0] for row in self.conn.execute(
            f"SELECT id FROM webhook_inbox WHERE shop_id = ? AND status = 'failed' {only}", params)]
        self.conn.executemany("UPDATE webhook_inbox SET status = 'pending', next_attempt_at = NULL, "
                              "processed_at = NULL WHERE id = ?", [(i,) for i in ids])
        return ids

    def requeue_refund_lookups(self, shop_id: str, order_id: str, now: datetime) -> int:
        """The order's failed refund lookups are due again now; returns how many."""
        return self.conn.execute(
            "UPDATE refund_lookups SET status = 'pending', next_attempt_at = ?, finished_at = NULL "
            "WHERE shop_id = ? AND order_id = ? AND status = 'failed'", (ts(now), shop_id, order_id)).rowcount


def _dicts(cursor) -> list[dict]:
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]
