"""SQL for Shopify shops' offline tokens (table from migration 0012_shopify_tokens).

``SqliteTokenStore`` is ``adapters.shopify_auth.TokenStore``: the access and refresh tokens
are stored encrypted with the deployment's ``SecretBox`` (Fernet encrypts with a random IV,
so two ciphertexts of one token differ). The compare-and-set of ``save_if`` therefore reads,
decrypts and compares the stored refresh token under the write lock (``BEGIN IMMEDIATE``):
no other process can change the row between the comparison and the write.

A connection is opened per call: tokens are read once per Admin API call at most and
written once an hour per shop, and the keeper calls from any thread.
"""
from __future__ import annotations

import hmac
from datetime import datetime
from typing import Callable

from adapters.shopify_auth import Tokens
from connector.secrets import SecretBox
from connector.store import Store, ts


class SqliteTokenStore:
    def __init__(self, open_store: Callable[[], Store], box: SecretBox, clock: Callable[[], datetime]):
        self._open_store = open_store
        self._box = box
        self._clock = clock

    def load(self, shop: str) -> Tokens | None:
        store = self._open_store()
        try:
            return self._read(store, shop)
        finally:
            store.close()

    def save_if(self, shop: str, expected_refresh_token: str | None, new: Tokens) -> bool:
        store = self._open_store()
        try:
            with store.write():
                current = self._read(store, shop)
                stored_refresh = None if current is None else current.refresh_token
                if not _same(stored_refresh, expected_refresh_token):
                    return False
                document = new.as_document()
                store.conn.execute(
                    "INSERT INTO shopify_tokens (shop_domain, access_token, scopes, expires_at, refresh_token, "
                    "refresh_token_expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (shop_domain) "
                    "DO UPDATE SET access_token = excluded.access_token, scopes = excluded.scopes, "
                    "expires_at = excluded.expires_at, refresh_token = excluded.refresh_token, "
                    "refresh_token_expires_at = excluded.refresh_token_expires_at, updated_at = excluded.updated_at",
                    (shop, self._box.encrypt(new.access_token), ",".join(document["scopes"]), document["expires_at"],
                     self._box.encrypt(new.refresh_token) if new.refresh_token else None,
                     document["refresh_token_expires_at"], ts(self._clock())))
                return True
        finally:
            store.close()

    def has(self, shop: str) -> bool:
        """Whether tokens are stored for ``shop`` (nothing decrypted)."""
        store = self._open_store()
        try:
            return store.conn.execute("SELECT 1 FROM shopify_tokens WHERE shop_domain = ?", (shop,)).fetchone() \
                is not None
        finally:
            store.close()

    @staticmethod
    def granted_scopes(store: Store, shop: str) -> frozenset[str] | None:
        """The scopes of the token stored for ``shop`` (None: no token; nothing decrypted)."""
        row = store.conn.execute("SELECT scopes FROM shopify_tokens WHERE shop_domain = ?", (shop,)).fetchone()
        return None if row is None else frozenset(s for s in row[0].split(",") if s)

    @staticmethod
    def drop(store: Store, shop: str) -> bool:
        """Forget the shop's tokens (app uninstalled, shop redacted), in the caller's transaction."""
        return store.conn.execute("DELETE FROM shopify_tokens WHERE shop_domain = ?", (shop,)).rowcount > 0

    def rotate(self, store: Store) -> int:
        """Re-encrypt every stored token with the first key (``connector secrets rotate``)."""
        rows = store.conn.execute("SELECT shop_domain, access_token, refresh_token FROM shopify_tokens").fetchall()
        for domain, access, refresh in rows:
            store.conn.execute("UPDATE shopify_tokens SET access_token = ?, refresh_token = ? WHERE shop_domain = ?",
                               (self._box.rotate(access), self._box.rotate(refresh) if refresh else None, domain))
        return len(rows)

    def _read(self, store: Store, shop: str) -> Tokens | None:
        row = store.conn.execute(
            "SELECT access_token, scopes, expires_at, refresh_token, refresh_token_expires_at FROM shopify_tokens "
            "WHERE shop_domain = ?", (shop,)).fetchone()
        if row is None:
            return None
        access, scopes, expires_at, refresh, refresh_expires_at = row
        return Tokens.from_document({
            "access_token": self._box.decrypt(access),
            "scopes": [s for s in scopes.split(",") if s],
            "expires_at": expires_at,
            "refresh_token": self._box.decrypt(refresh) if refresh else None,
            "refresh_token_expires_at": refresh_expires_at,
        })


def _same(stored: str | None, expected: str | None) -> bool:
    if stored is None or expected is None:
        return stored is None and expected is None
    return hmac.compare_digest(stored.encode(), expected.encode())
