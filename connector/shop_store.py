"""SQL for shop configuration documents (tables from migration 0010_shop_configs).

A row holds one shop's current document as JSON with its secret values already
encrypted (``connector.secrets``), its version (1 on creation, +1 per save) and
whether the shop is active; every save adds a history row with its diff.
Callers hold the write lock (``Store.write``) around a read-then-save.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from connector.store import Store, ts


class StaleVersion(Exception):
    """The shop's configuration changed since the version the change was made on."""


class ShopExists(Exception):
    """A shop with this id is already in the database."""


class ShopConfigStore:
    def __init__(self, store: Store):
        self.store = store
        self.conn = store.conn

    def fingerprint(self) -> tuple[int, int]:
        """(shops, sum of their versions): changes with every save, as versions only grow
        and rows are never deleted. One cheap read, for processes following changes."""
        count, total = self.conn.execute("SELECT count(*), coalesce(sum(version), 0) FROM shop_configs").fetchone()
        return count, total

    def versions(self) -> dict[str, tuple[int, bool]]:
        """shop id -> (version, active)."""
        return {row[0]: (row[1], bool(row[2]))
                for row in self.conn.execute("SELECT shop_id, version, active FROM shop_configs")}

    def get(self, shop_id: str) -> dict | None:
        """{shop_id, version, document (dict, secrets encrypted), active, updated_at, updated_by}."""
        row = self.conn.execute(
            "SELECT shop_id, version, document, active, updated_at, updated_by FROM shop_configs WHERE shop_id = ?",
            (shop_id,)).fetchone()
        if row is None:
            return None
        return {"shop_id": row[0], "version": row[1], "document": json.loads(row[2]), "active": bool(row[3]),
                "updated_at": row[4], "updated_by": row[5]}

    def all(self) -> list[dict]:
        ids = [row[0] for row in self.conn.execute("SELECT shop_id FROM shop_configs ORDER BY shop_id")]
        return [self.get(shop_id) for shop_id in ids]

    def create(self, shop_id: str, document: dict[str, Any], actor: str, diff: dict, now: datetime) -> int:
        if self.conn.execute("SELECT 1 FROM shop_configs WHERE shop_id = ?", (shop_id,)).fetchone():
            raise ShopExists(f"shop {shop_id!r} already exists")
        self.conn.execute(
            "INSERT INTO shop_configs (shop_id, version, document, active, updated_at, updated_by) "
            "VALUES (?, 1, ?, 1, ?, ?)", (shop_id, _json(document), ts(now), actor))
        self._history(shop_id, 1, actor, diff, now)
        return 1

    def save(self, shop_id: str, document: dict[str, Any], expected_version: int, actor: str, diff: dict,
             now: datetime, active: bool = True) -> int:
        """Replace the document if the stored version is still ``expected_version``; the new version."""
        cursor = self.conn.execute(
            "UPDATE shop_configs SET version = version + 1, document = ?, active = ?, updated_at = ?, updated_by = ? "
            "WHERE shop_id = ? AND version = ?",
            (_json(document), int(active), ts(now), actor, shop_id, expected_version))
        if cursor.rowcount != 1:
            current = self.conn.execute("SELECT version FROM shop_configs WHERE shop_id = ?", (shop_id,)).fetchone()
            if current is None:
                raise KeyError(shop_id)
            raise StaleVersion(f"shop {shop_id}: the configuration changed since version {expected_version} "
                               f"(now {current[0]}); reload it and make the change again")
        self._history(shop_id, expected_version + 1, actor, diff, now)
        return expected_version + 1

    def rewrite_secrets(self, shop_id: str, document: dict[str, Any]) -> None:
        """Store the same document with its secrets re-encrypted (key rotation): no new version,
        since no value changed."""
        self.conn.execute("UPDATE shop_configs SET document = ? WHERE shop_id = ?", (_json(document), shop_id))

    def history(self, shop_id: str) -> list[dict]:
        return [{"version": row[0], "at": row[1], "actor": row[2], "diff": json.loads(row[3])}
                for row in self.conn.execute(
                    "SELECT version, at, actor, diff FROM shop_config_history WHERE shop_id = ? ORDER BY version",
                    (shop_id,))]

    def _history(self, shop_id: str, version: int, actor: str, diff: dict, now: datetime) -> None:
        self.conn.execute("INSERT INTO shop_config_history (shop_id, version, at, actor, diff) VALUES (?, ?, ?, ?, ?)",
                          (shop_id, version, ts(now), actor, _json(diff)))


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
