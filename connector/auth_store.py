"""Users of the standalone pages, their failed logins and one-time login links: the
SQL for them (tables created by store migration ``0011_users``)."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from connector.store import Store, ts


class DuplicateEmail(Exception):
    """A user with this email exists already."""


@dataclass(frozen=True)
class User:
    id: int
    email: str
    password_hash: str
    shop_id: str
    created_at: str


_USER_COLUMNS = "id, email, password_hash, shop_id, created_at"


class AuthStore:
    """Over one ``Store`` connection (a thread's own, as every store)."""

    def __init__(self, store: Store):
        self.store = store
        self.conn = store.conn

    # ------------------------------------------------------------ users

    def add_user(self, email: str, password_hash: str, shop_id: str, now: datetime) -> User:
        try:
            cursor = self.conn.execute(
                "INSERT INTO users (email, password_hash, shop_id, created_at) VALUES (?, ?, ?, ?)",
                (email, password_hash, shop_id, ts(now)))
        except sqlite3.IntegrityError:
            raise DuplicateEmail(email) from None
        return User(cursor.lastrowid, email, password_hash, shop_id, ts(now))

    def user_by_email(self, email: str) -> User | None:
        row = self.conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE email = ?", (email,)).fetchone()
        return User(*row) if row else None

    def user(self, user_id: int) -> User | None:
        row = self.conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
        return User(*row) if row else None

    # ------------------------------------------------------------ failed logins

    def record_failure(self, email: str, ip: str, now: datetime, forget_before: datetime) -> None:
        """One failed login; rows older than ``forget_before`` no longer count and go."""
        with self.store.write():
            self.conn.execute("DELETE FROM login_attempts WHERE at < ?", (ts(forget_before),))
            self.conn.execute("INSERT INTO login_attempts (email, ip, at) VALUES (?, ?, ?)", (email, ip, ts(now)))

    def failures_since(self, since: datetime, *, email: str | None = None, ip: str | None = None) -> list[datetime]:
        """When the failed logins for ``email`` (or from ``ip``) after ``since`` happened, oldest first."""
        column, value = ("email", email) if email is not None else ("ip", ip)
        rows = self.conn.execute(f"SELECT at FROM login_attempts WHERE {column} = ? AND at > ? ORDER BY at",
                                 (value, ts(since))).fetchall()
        return [datetime.fromisoformat(r[0]) for r in rows]

    def forget_failures(self, email: str) -> None:
        self.conn.execute("DELETE FROM login_attempts WHERE email = ?", (email,))

    # ------------------------------------------------------------ one-time login links

    def add_login_link(self, nonce: str, user_id: int, now: datetime, expires_at: datetime) -> None:
        self.conn.execute("INSERT INTO login_links (nonce, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                          (nonce, user_id, ts(now), ts(expires_at)))

    def login_link(self, nonce: str, now: datetime) -> int | None:
        """The user of an unused, unexpired link."""
        row = self.conn.execute("SELECT user_id FROM login_links WHERE nonce = ? AND used_at IS NULL AND expires_at > ?",
                                (nonce, ts(now))).fetchone()
        return row[0] if row else None

    def use_login_link(self, nonce: str, now: datetime) -> int | None:
        """The link's user, marking it used; None when it is unknown, used or expired.
        One statement: of two requests racing with the same link, one wins."""
        with self.store.write():
            row = self.conn.execute(
                "UPDATE login_links SET used_at = ? WHERE nonce = ? AND used_at IS NULL AND expires_at > ? "
                "RETURNING user_id", (ts(now), nonce, ts(now))).fetchone()
        return row[0] if row else None
