"""Shopify tokens in SQLite (connector/token_store.py): encrypted at rest, the keeper's
compare-and-set across connections (processes), rotation with the encryption keys."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest

from adapters.shopify_auth import ShopifyOAuth, TokenKeeper, Tokens
from connector.secrets import KEYS_ENV, SecretBox, new_key
from connector.token_store import SqliteTokenStore

SHOP = "juniper-soap.myshopify.com"


@pytest.fixture
def tokens(container, clock):
    return SqliteTokenStore(container.open_store, SecretBox([os.environ[KEYS_ENV]]), clock)


def pair(n: int, clock) -> Tokens:
    return Tokens(f"shpat_access_{n}", frozenset({"read_orders"}), clock() + timedelta(hours=1), f"shprt_refresh_{n}",
                  clock() + timedelta(days=90))


def test_tokens_are_stored_encrypted_and_read_back_whole(tokens, store, clock):
    assert tokens.load(SHOP) is None and not tokens.has(SHOP)
    assert tokens.save_if(SHOP, None, pair(1, clock))
    assert tokens.load(SHOP) == pair(1, clock) and tokens.has(SHOP)
    row = store.conn.execute("SELECT access_token, refresh_token, scopes FROM shopify_tokens").fetchone()
    assert row[0].startswith("fernet:") and row[1].startswith("fernet:") and "shpat_access_1" not in row[0]
    assert row[2] == "read_orders"


@pytest.mark.parametrize("expected", [None, "shprt_refresh_0", "shprt_refresh_1x"])
def test_a_save_on_another_refresh_token_than_the_stored_one_changes_nothing(tokens, clock, expected):
    assert tokens.save_if(SHOP, None, pair(1, clock))
    assert not tokens.save_if(SHOP, expected, pair(2, clock))
    assert tokens.load(SHOP) == pair(1, clock)
    assert tokens.save_if(SHOP, "shprt_refresh_1", pair(2, clock))
    assert tokens.load(SHOP) == pair(2, clock)


def test_a_first_save_expects_no_tokens(tokens, clock):
    assert not tokens.save_if(SHOP, "shprt_anything", pair(1, clock))
    assert tokens.load(SHOP) is None


def test_the_keeper_refreshes_through_the_store_and_a_second_keeper_uses_the_result(tokens, container, clock, rsps):
    """Two keepers over separate connections stand for two processes."""
    tokens.save_if(SHOP, None, pair(1, clock))
    clock.advance(minutes=59, seconds=30)  # within 60 s of expiry
    rsps.post(f"https://{SHOP}/admin/oauth/access_token", json={
        "access_token": "shpat_access_2", "scope": "read_orders", "expires_in": 3600,
        "refresh_token": "shprt_refresh_2", "refresh_token_expires_in": 7776000})
    oauth = ShopifyOAuth("client-id", "shpss_secret_0123456789", now=clock)
    first = TokenKeeper(oauth, tokens, now=clock)
    other = TokenKeeper(oauth, SqliteTokenStore(container.open_store, SecretBox([os.environ[KEYS_ENV]]), clock),
                        now=clock)

    assert first.access_token(SHOP) == "shpat_access_2"
    assert other.access_token(SHOP) == "shpat_access_2"
    assert len(rsps.calls) == 1


def test_uninstall_drops_and_rotation_re_encrypts(tokens, store, container, clock, monkeypatch):
    tokens.save_if(SHOP, None, pair(1, clock))
    old = store.conn.execute("SELECT access_token FROM shopify_tokens").fetchone()[0]
    rotated_box = SecretBox([new_key(), os.environ[KEYS_ENV]])
    with store.write():
        assert SqliteTokenStore(container.open_store, rotated_box, clock).rotate(store) == 1
    assert store.conn.execute("SELECT access_token FROM shopify_tokens").fetchone()[0] != old
    assert SqliteTokenStore(container.open_store, rotated_box, clock).load(SHOP) == pair(1, clock)
    with store.write():
        assert SqliteTokenStore.drop(store, SHOP)
    assert tokens.load(SHOP) is None


def test_secrets_rotate_re_encrypts_the_tokens_too(cli, tokens, store, clock):
    tokens.save_if(SHOP, None, pair(1, clock))
    old = store.conn.execute("SELECT access_token FROM shopify_tokens").fetchone()[0]
    result = cli("secrets", "rotate")
    assert result.exit_code == 0 and "and 1 Shopify token set(s)" in result.output
    assert store.conn.execute("SELECT access_token FROM shopify_tokens").fetchone()[0] != old
    assert tokens.load(SHOP) == pair(1, clock)
