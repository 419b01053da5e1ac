"""SQL for alerts (tables from migration 0018_alerts).

``alert_items``: every item that can alert, per shop, with whether it was there at the
last look and when it last alerted; ``alert_log``: each alert decided (sent, or held by the
hourly limit until a summary tells it); ``alert_outbox``: each message per channel, written
in the transaction that decided it, claimed and sent outside any transaction, then marked.
Callers hold the write lock (``Store.write``) around changes.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Sequence

from connector.domain.alerts import AlertMessage, Candidate, Tracked
from connector.store import Store, parse_ts, ts


class AlertStore:
    def __init__(self, store: Store):
        self.store = store
        self.conn = store.conn

    # ------------------------------------------------------------ items and decisions

    def tracked(self, shop_id: str) -> dict[str, Tracked]:
        return {row[0]: Tracked(row[0], bool(row[1]), parse_ts(row[2]))
                for row in self.conn.execute("SELECT key, present, alerted_at FROM alert_items WHERE shop_id = ?",
                                             (shop_id,))}

    def seen(self, shop_id: str, items: Iterable[Candidate], now: datetime) -> None:
        """Each item is there now (new ones are added)."""
        self.conn.executemany(
            "INSERT INTO alert_items (shop_id, key, kind, title, present, first_seen_at, last_seen_at) "
            "VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (shop_id, key) DO UPDATE SET present = 1, "
            "title = excluded.title, last_seen_at = excluded.last_seen_at",
            [(shop_id, item.key, item.kind, item.title, ts(now), ts(now)) for item in items])

    def cleared(self, shop_id: str, keys: Iterable[str], now: datetime) -> None:
        self.conn.executemany("UPDATE alert_items SET present = 0, cleared_at = ? WHERE shop_id = ? AND key = ?",
                              [(ts(now), shop_id, key) for key in keys])

    def log(self, shop_id: str, items: Iterable[Candidate], now: datetime, *, held: bool) -> None:
        """Each item alerted now (or was held by the limit): it counts as told."""
        items = list(items)
        self.conn.executemany("INSERT INTO alert_log (shop_id, key, kind, title, at, held) VALUES (?, ?, ?, ?, ?, ?)",
                              [(shop_id, item.key, item.kind, item.title, ts(now), int(held)) for item in items])
        self.conn.executemany("UPDATE alert_items SET alerted_at = ? WHERE shop_id = ? AND key = ?",
                              [(ts(now), shop_id, item.key) for item in items])

    def sent_since(self, shop_id: str, since: datetime) -> int:
        """Alerts and summaries sent (not held) at or after ``since``: what the hourly limit counts."""
        return self.conn.execute("SELECT count(*) FROM alert_log WHERE shop_id = ? AND held = 0 AND at >= ?",
                                 (shop_id, ts(since))).fetchone()[0]

    def held(self, shop_id: str) -> list[dict]:
        """Alerts held by the limit and not summarised yet, oldest first."""
        return self._dicts("SELECT id, key, kind, title, at FROM alert_log WHERE shop_id = ? AND held = 1 "
                           "AND summarised_at IS NULL ORDER BY id", (shop_id,))

    def summarised(self, ids: Sequence[int], now: datetime) -> None:
        self.conn.executemany("UPDATE alert_log SET summarised_at = ? WHERE id = ?", [(ts(now), i) for i in ids])

    # ------------------------------------------------------------ the outbox

    def enqueue(self, message: AlertMessage, channels: Iterable[str], now: datetime) -> int:
        """One row per channel; a message already queued on a channel (same key) is not queued
        again. How many rows were added."""
        added = 0
        for channel in channels:
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO alert_outbox (shop_id, channel, message_key, kind, subject, text, link, "
                "created_at, status, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)",
                (message.shop_id, channel, message.key, message.kind, message.subject, message.text, message.link,
                 ts(message.created_at), ts(now)))
            added += cursor.rowcount
        return added

    def claim_due(self, now: datetime, limit: int, stale_claim_before: datetime,
                  shop_id: str | None = None) -> list[dict]:
        """Due messages, marked as being sent (a claim older than ``stale_claim_before`` is a
        sender that died: taken again, and the receiver drops the repeat by its key)."""
        where, params = ("AND shop_id = ?", (shop_id,)) if shop_id else ("", ())
        rows = self._dicts(
            "SELECT * FROM alert_outbox WHERE ((status = 'pending' AND next_attempt_at <= ?) "
            f"OR (status = 'sending' AND claimed_at < ?)) {where} ORDER BY id LIMIT ?",
            (ts(now), ts(stale_claim_before), *params, limit))
        self.conn.executemany("UPDATE alert_outbox SET status = 'sending', claimed_at = ? WHERE id = ?",
                              [(ts(now), row["id"]) for row in rows])
        return rows

    def sent(self, outbox_id: int, now: datetime) -> None:
        self.conn.execute("UPDATE alert_outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
                          "last_error = NULL WHERE id = ?", (ts(now), outbox_id))

    def failed(self, outbox_id: int, error: str, next_attempt_at: datetime | None) -> None:
        """A failed attempt: tried again at ``next_attempt_at``, or given up (None)."""
        status = "pending" if next_attempt_at is not None else "failed"
        self.conn.execute("UPDATE alert_outbox SET status = ?, attempts = attempts + 1, last_error = ?, "
                          "next_attempt_at = coalesce(?, next_attempt_at), claimed_at = NULL WHERE id = ?",
                          (status, error[:500], ts(next_attempt_at) if next_attempt_at else None, outbox_id))

    def dropped(self, outbox_id: int, reason: str) -> None:
        """Not sent and never will be (the shop stopped using the channel)."""
        self.conn.execute("UPDATE alert_outbox SET status = 'dropped', last_error = ?, claimed_at = NULL WHERE id = ?",
                          (reason[:500], outbox_id))

    def recent(self, shop_id: str, limit: int = 10) -> list[dict]:
        return self._dicts("SELECT id, channel, kind, subject, created_at, status, attempts, next_attempt_at, "
                           "sent_at, last_error FROM alert_outbox WHERE shop_id = ? ORDER BY id DESC LIMIT ?",
                           (shop_id, limit))

    def outbox(self, shop_id: str | None = None) -> list[dict]:
        where, params = ("WHERE shop_id = ?", (shop_id,)) if shop_id else ("", ())
        return self._dicts(f"SELECT * FROM alert_outbox {where} ORDER BY id", params)

    def _dicts(self, sql: str, params: Sequence = ()) -> list[dict]:
        cursor = self.conn.execute(sql, params)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
