"""SQL for the action centre: the details its items show that the general listings
leave out, and putting failed background work back in its queue ("try again").

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
            "WHERE d.shop_id = ? AND d.current = 1 AND d.exception IS NOT NULL AND o.state = 'open' "
            "ORDER BY d.decided_at, d.id", (shop_id,)))

    def forward_problems(self, shop_id: str, max_attempts: int) -> list[dict]:
        """Forward jobs a person should see: failed for good, or still pending with their
        attempts used up (whether the 3PL holds the order is not known), with the order's number."""
        return _dicts(self.conn.execute(
            "SELECT j.*, o.number FROM forward_jobs j LEFT JOIN orders o ON o.shop_id = j.shop_id "
            "AND o.id = j.order_id WHERE j.shop_id = ? AND (j.status = 'failed' OR "
            "(j.status = 'pending' AND j.attempts >= ?)) ORDER BY j.id", (shop_id, max_attempts)))

    def refund_lookup_problems(self, shop_id: str) -> list[dict]:
        """Failed refund lookups per order: the refunds, the most attempts, the last error, the order's number."""
        return _dicts(self.conn.execute(
            "SELECT r.order_id, o.number, group_concat(r.refund_id, ', ') AS refund_ids, MAX(r.attempts) AS attempts, "
            "MAX(r.last_error) AS last_error, MIN(r.requested_at) AS requested_at FROM refund_lookups r "
            "LEFT JOIN orders o ON o.shop_id = r.shop_id AND o.id = r.order_id "
            "WHERE r.shop_id = ? AND r.status = 'failed' GROUP BY r.order_id ORDER BY MIN(r.requested_at)",
            (shop_id,)))

    def requeue_forward_job(self, job_id: int, now: datetime) -> bool:
        """A failed job, or one whose outcome is unknown, is due again now. Its attempts are
        kept: the next failure settles at once with a lookup at the 3PL (see Forwarding)."""
        return self.conn.execute(
            "UPDATE forward_jobs SET status = 'pending', next_attempt_at = ? WHERE id = ? "
            "AND status IN ('failed', 'pending')", (ts(now), job_id)).rowcount == 1

    def requeue_failed_webhooks(self, shop_id: str, inbox_id: int | None = None) -> list[int]:
        """Failed or rejected deliveries (or just ``inbox_id``) go back to the inbox for one
        more try; returns their ids."""
        only = "AND id = ?" if inbox_id is not None else ""
        params = (shop_id, *(() if inbox_id is None else (inbox_id,)))
        ids = [row[0] for row in self.conn.execute(
            f"SELECT id FROM webhook_inbox WHERE shop_id = ? AND status IN ('failed', 'rejected') {only}", params)]
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
