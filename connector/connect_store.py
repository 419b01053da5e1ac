"""``PendingConnections`` in SQLite: WooCommerce connections waiting for their wc-auth
callback, and how each ended (table from store migration ``0012_pending_connections``)."""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta

from connector.domain.model import ConnectionOutcome, ConnectionState, PendingConnection
from connector.store import Store, parse_ts, ts

# A finished or abandoned connection (an email and a password hash) is kept this long after
# it expired, for the page the creator returns to, then deleted.
KEEP_AFTER_EXPIRY = timedelta(days=1)

_COLUMNS = "nonce, connection_id, store_url, expires_at, email, password_hash, taken_at, outcome"


class SqlitePendingConnections:
    """Over one ``Store`` connection (a request's own)."""

    def __init__(self, store: Store, clock):
        self.store = store
        self.conn = store.conn
        self.clock = clock

    def create(self, pending: PendingConnection) -> None:
        now = self.clock()
        with self.store.write():
            self.conn.execute("DELETE FROM pending_connections WHERE expires_at < ?", (ts(now - KEEP_AFTER_EXPIRY),))
            self.conn.execute(
                "INSERT INTO pending_connections (nonce, connection_id, store_url, email, password_hash, created_at, "
                "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (pending.nonce, pending.connection_id, pending.store_url, pending.email, pending.password_hash,
                 ts(now), ts(pending.expires_at)))

    def take(self, nonce: str) -> PendingConnection | None:
        """One statement marks it taken: of two callbacks racing with one user_id, one gets it."""
        with self.store.write():
            row = self.conn.execute(
                "UPDATE pending_connections SET taken_at = ? WHERE nonce = ? AND taken_at IS NULL "
                f"RETURNING {_COLUMNS}", (ts(self.clock()), nonce)).fetchone()
        return _pending(row) if row else None

    def finish(self, connection_id: str, outcome: ConnectionOutcome) -> None:
        with self.store.write():
            self.conn.execute("UPDATE pending_connections SET outcome = ? WHERE connection_id = ?",
                              (json.dumps(asdict(outcome)), connection_id))

    def state(self, connection_id: str) -> ConnectionState | None:
        row = self.conn.execute(f"SELECT {_COLUMNS} FROM pending_connections WHERE connection_id = ?",
                                (connection_id,)).fetchone()
        if row is None:
            return None
        outcome = ConnectionOutcome(**json.loads(row[7])) if row[7] else None
        return ConnectionState(_pending(row), row[6] is not None, outcome)


def _pending(row) -> PendingConnection:
    return PendingConnection(row[0], row[1], row[2], parse_ts(row[3]), row[4], row[5])
