"""The only module with SQL. SQLite through sqlite-utils: explicit tables created
in named migrations, WAL, a busy timeout, and one connection per thread, request
or job (``Store.open`` makes a new one each time).

Every transaction takes the write lock before it reads: ``write()``, and
``db.atomic()`` too (sqlite-utils' own transactions included), begin with
``BEGIN IMMEDIATE``. SQLite then lets one writer in at a time, so what a
transaction read cannot change under it, also across processes. A deferred
``BEGIN`` could not: a transaction that has read cannot wait for the lock, and
SQLite refuses its first write at once with "database is locked" whenever
another connection holds the lock or committed since. Outside a transaction a
single statement is its own transaction, and SQLite takes the write lock before
a writing statement reads anything. A lock held past the busy timeout raises
``sqlite3.OperationalError``; ``lock_timeout(exc)`` says so in one line.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

import sqlite_utils
from sqlite_utils import Migrations

from connector.chunks import chunked

T = TypeVar("T")

UTC = timezone.utc


def ts(value: datetime) -> str:
    """All timestamps are stored as UTC ISO-8601 text, so they sort as text."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def forward_reference(shop_id: str, order_id: str, node_id: str) -> str:
    """Our idempotency key at the 3PL: one per (shop, order, node), stable across retries."""
    return f"{shop_id}:{order_id}:{node_id}"


# ---------------------------------------------------------------- migrations

migrations = Migrations("connector")


@migrations(name="0001_core")
def _core(db: sqlite_utils.Database) -> None:
    db["shops"].create(
        {"id": str, "platform": str, "domain": str, "status": str, "timezone": str, "created_at": str,
         "updated_at": str, "uninstalled_at": str},
        pk="id",
        not_null={"platform", "domain", "status"},
    )
    db["regions"].create(
        {"shop_id": str, "id": str, "name": str, "promise_days": int, "fallback": str, "spec": str},
        pk=("shop_id", "id"),
        foreign_keys=[("shop_id", "shops", "id")],
    )
    db["nodes"].create(
        {"shop_id": str, "id": str, "name": str, "kind": str, "role": str, "status": str, "priority": int,
         "spec": str},
        pk=("shop_id", "id"),
        foreign_keys=[("shop_id", "shops", "id")],
    )
    # Stock as the node's source reports it. Our own reservations live apart
    # (reservations / reserved_totals) so a sync can replace these rows freely.
    db["stock"].create(
        {"shop_id": str, "node_id": str, "sku": str, "on_hand": int, "committed": int, "available": int,
         "updated_at": str, "source": str, "raw": str},
        pk=("shop_id", "node_id", "sku"),
        not_null={"on_hand", "committed", "available", "updated_at", "source"},
    )
    db["stock"].create_index(["shop_id", "sku"])
    db["webhook_inbox"].create(
        {"id": int, "shop_id": str, "platform": str, "topic": str, "dedupe_key": str, "webhook_id": str,
         "event_id": str, "resource_id": str, "headers": str, "body": bytes, "received_at": str, "status": str,
         "attempts": int, "last_error": str, "next_attempt_at": str, "processed_at": str},
        pk="id",
        not_null={"shop_id", "platform", "topic", "dedupe_key", "received_at", "status", "attempts"},
        defaults={"attempts": 0},
    )
    db["webhook_inbox"].create_index(["shop_id", "dedupe_key"], unique=True)
    db["webhook_inbox"].create_index(["status", "id"])
    db["webhook_inbox"].create_index(["shop_id", "resource_id"])
    db["orders"].create(
        {"shop_id": str, "id": str, "number": str, "platform": str, "created_at": str, "updated_at": str,
         "state": str, "status": str, "region_id": str, "ship_country": str, "ship_province": str,
         "ship_postcode": str, "customer_id": str, "first_seen_at": str, "last_event_at": str},
        pk=("shop_id", "id"),
        not_null={"number", "state", "status"},
    )
    db["orders"].create_index(["shop_id", "status"])
    db["orders"].create_index(["shop_id", "customer_id"])
    db["order_lines"].create(
        {"shop_id": str, "order_id": str, "line_id": str, "sku": str, "quantity": int, "requires_shipping": int,
         "title": str, "skip_reason": str},
        pk=("shop_id", "order_id", "line_id"),
        not_null={"quantity", "requires_shipping"},
    )
    db["routing_decisions"].create(
        {"id": int, "shop_id": str, "order_id": str, "line_id": str, "sku": str, "quantity": int, "node_id": str,
         "rule": str, "mode": str, "region_id": str, "explanation": str, "exception": str, "decided_at": str,
         "current": int},
        pk="id",
        not_null={"shop_id", "order_id", "line_id", "rule", "mode", "explanation", "decided_at", "current"},
    )
    db["routing_decisions"].create_index(["shop_id", "order_id", "current"])
    db["routing_decisions"].create_index(["shop_id", "exception", "current"])
    db["reservations"].create(
        {"id": int, "shop_id": str, "order_id": str, "line_id": str, "node_id": str, "sku": str, "quantity": int,
         "status": str, "created_at": str, "released_at": str, "release_reason": str},
        pk="id",
        not_null={"shop_id", "order_id", "line_id", "node_id", "sku", "quantity", "status", "created_at"},
    )
    db["reservations"].create_index(["shop_id", "order_id", "status"])
    # One active reservation per order line; the running total per node × SKU
    # is kept beside it in the same transaction, so sellable stock is one lookup.
    db.execute(
        "CREATE UNIQUE INDEX reservations_one_active_per_line ON reservations (shop_id, order_id, line_id) "
        "WHERE status = 'active'"
    )
    db["reserved_totals"].create(
        {"shop_id": str, "node_id": str, "sku": str, "quantity": int},
        pk=("shop_id", "node_id", "sku"),
        not_null={"quantity"},
    )
    db.execute("CREATE TRIGGER reserved_totals_never_negative BEFORE UPDATE ON reserved_totals "
               "WHEN NEW.quantity < 0 BEGIN SELECT RAISE(ABORT, 'reserved total below zero'); END")
    db["node_day_orders"].create(
        {"shop_id": str, "node_id": str, "day": str, "orders": int},
        pk=("shop_id", "node_id", "day"),
        not_null={"orders"},
    )
    db["refunds"].create(
        {"shop_id": str, "refund_id": str, "order_id": str, "line_id": str, "quantity": int, "applied": int,
         "received_at": str},
        pk=("shop_id", "refund_id", "line_id"),
    )
    db["events"].create(
        {"id": int, "shop_id": str, "at": str, "kind": str, "subject": str, "detail": str},
        pk="id",
        not_null={"at", "kind"},
    )
    db["events"].create_index(["shop_id", "kind", "id"])


@migrations(name="0002_sync_forwarding_jobs")
def _sync(db: sqlite_utils.Database) -> None:
    db["sync_runs"].create(
        {"id": int, "shop_id": str, "node_id": str, "provider": str, "started_at": str, "finished_at": str,
         "rows": int, "outcome": str, "error": str},
        pk="id",
        not_null={"shop_id", "node_id", "provider", "started_at", "outcome"},
    )
    db["sync_runs"].create_index(["shop_id", "node_id", "id"])
    # The latest state per synced node: what routing's freshness check reads.
    db["node_sync_state"].create(
        {"shop_id": str, "node_id": str, "last_ok_at": str, "last_attempt_at": str, "last_error": str, "rows": int},
        pk=("shop_id", "node_id"),
    )
    db["forward_jobs"].create(
        {"id": int, "shop_id": str, "order_id": str, "node_id": str, "provider": str, "reference": str,
         "status": str, "attempts": int, "next_attempt_at": str, "claimed_at": str, "provider_order_id": str,
         "last_error": str, "created_at": str, "sent_at": str, "handed_over_at": str},
        pk="id",
        not_null={"shop_id", "order_id", "node_id", "provider", "reference", "status", "attempts", "created_at"},
        defaults={"attempts": 0},
    )
    db["forward_jobs"].create_index(["shop_id", "order_id", "node_id"], unique=True)
    db["forward_jobs"].create_index(["status", "next_attempt_at"])
    db["shipments"].create(
        {"shop_id": str, "provider": str, "provider_order_id": str, "reference": str, "status": str,
         "tracking_number": str, "carrier": str, "shipped_at": str, "delivered_at": str, "exception": int,
         "exception_detail": str, "updated_at": str},
        pk=("shop_id", "provider", "provider_order_id"),
    )
    db["provider_poll_state"].create(
        {"shop_id": str, "provider": str, "shipments_since": str},
        pk=("shop_id", "provider"),
    )
    db["job_runs"].create(
        {"id": int, "job_id": str, "started_at": str, "finished_at": str, "outcome": str, "detail": str},
        pk="id",
        not_null={"job_id", "started_at"},
    )
    db["job_runs"].create_index(["job_id", "id"])


@migrations(name="0003_stock_keyed_by_sku")
def _stock_by_sku(db: sqlite_utils.Database) -> None:
    """Routing looks stock up by SKU on every order; syncs replace a node's rows a few
    times an hour. Key the table (shop, sku, node) so the lookup is the primary key
    itself, with no second index to maintain on every synced row. The provider's raw
    fields are not kept: adapters normalise them into on hand / committed / available,
    and encoding them per row was most of a sync's write time."""
    db.execute(
        "CREATE TABLE stock_by_sku (shop_id TEXT NOT NULL, sku TEXT NOT NULL, node_id TEXT NOT NULL, "
        "on_hand INTEGER NOT NULL, committed INTEGER NOT NULL, available INTEGER NOT NULL, "
        "updated_at TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (shop_id, sku, node_id)) WITHOUT ROWID"
    )
    db.execute(
        "INSERT INTO stock_by_sku SELECT shop_id, sku, node_id, on_hand, committed, available, updated_at, source "
        "FROM stock"
    )
    db.execute("DROP TABLE stock")
    db.execute("ALTER TABLE stock_by_sku RENAME TO stock")


@migrations(name="0004_planning_transfers_push")
def _planning(db: sqlite_utils.Database) -> None:
    db["forecasts"].create(
        {"shop_id": str, "sku": str, "region_id": str, "weekly": float, "sigma": float, "method": str,
         "weeks_of_history": int, "computed_at": str},
        pk=("shop_id", "sku", "region_id"),
        not_null={"weekly", "sigma", "method", "computed_at"},
    )
    # What each region may sell from each node: the latest allocation, replaced per SKU.
    db.execute(
        "CREATE TABLE allocations (shop_id TEXT NOT NULL, sku TEXT NOT NULL, node_id TEXT NOT NULL, "
        "region_id TEXT NOT NULL, units INTEGER NOT NULL, computed_at TEXT NOT NULL, "
        "PRIMARY KEY (shop_id, sku, node_id, region_id)) WITHOUT ROWID"
    )
    # The allocation's dual prices: what losing one unit at a node costs. Routing reads them.
    db.execute(
        "CREATE TABLE opportunity_costs (shop_id TEXT NOT NULL, sku TEXT NOT NULL, node_id TEXT NOT NULL, "
        "unit_cost REAL NOT NULL, PRIMARY KEY (shop_id, sku, node_id)) WITHOUT ROWID"
    )
    db["transfers"].create(
        {"id": int, "shop_id": str, "sku": str, "from_node": str, "to_node": str, "units": int, "unit_cost": float,
         "lead_days": int, "status": str, "emergency": int, "approval_reason": str, "created_at": str,
         "updated_at": str, "decided_by": str, "shipped_at": str, "received_at": str, "note": str},
        pk="id",
        not_null={"shop_id", "sku", "from_node", "to_node", "units", "status", "created_at", "updated_at"},
    )
    db["transfers"].create_index(["shop_id", "status"])
    # The storefront's id for a SKU: Shopify inventory item gid, or WooCommerce product id (+ parent).
    db["storefront_items"].create(
        {"shop_id": str, "sku": str, "ref": str, "parent_ref": str, "updated_at": str},
        pk=("shop_id", "sku"),
        not_null={"ref", "updated_at"},
    )
    # What we last set at the store per SKU × location ("*" = the WooCommerce total), the
    # SKU's reservations at that moment, and the units held back then for store orders our
    # inbox had not processed yet: the push's compare-and-set base.
    db["push_state"].create(
        {"shop_id": str, "sku": str, "location": str, "quantity": int, "reserved_at_push": int, "held": int,
         "pushed_at": str},
        pk=("shop_id", "sku", "location"),
        not_null={"quantity", "reserved_at_push", "held", "pushed_at"},
        defaults={"held": 0},
    )
    # A debounced push waiting to run, written with the reservations that made it
    # necessary: one row per shop, and the SKUs it covers (all of them when all_skus).
    db["push_requests"].create(
        {"shop_id": str, "due_at": str, "all_skus": int, "reasons": str, "requested_at": str},
        pk="shop_id",
        not_null={"due_at", "all_skus", "reasons", "requested_at"},
    )
    db.execute("CREATE TABLE push_request_skus (shop_id TEXT NOT NULL, sku TEXT NOT NULL, "
               "PRIMARY KEY (shop_id, sku)) WITHOUT ROWID")


@migrations(name="0005_refund_lookups")
def _refund_lookups(db: sqlite_utils.Database) -> None:
    # WooCommerce refunds whose lines must be read from its REST API: the order
    # webhook names them but does not say which lines they cover.
    db["refund_lookups"].create(
        {"shop_id": str, "refund_id": str, "order_id": str, "status": str, "attempts": int, "next_attempt_at": str,
         "last_error": str, "requested_at": str, "finished_at": str},
        pk=("shop_id", "refund_id"),
        not_null={"order_id", "status", "attempts", "next_attempt_at", "requested_at"},
        defaults={"attempts": 0},
    )
    db["refund_lookups"].create_index(["status", "next_attempt_at"])


@migrations(name="0006_order_polls")
def _order_polls(db: sqlite_utils.Database) -> None:
    # How far each shop's orders have been read back from its API (reconciliation):
    # the store's own modification time of the newest order read, never our clock.
    db["order_polls"].create(
        {"shop_id": str, "watermark": str, "last_attempt_at": str, "last_ok_at": str, "last_error": str,
         "failures": int, "orders_read": int, "orders_stored": int},
        pk="shop_id",
        not_null={"last_attempt_at", "failures", "orders_read", "orders_stored"},
        defaults={"failures": 0, "orders_read": 0, "orders_stored": 0},
    )


@migrations(name="0007_order_poll_webhooks")
def _order_poll_webhooks(db: sqlite_utils.Database) -> None:
    # What is wrong with the store's order webhooks to us (JSON list of sentences).
    db["order_polls"].add_column("webhook_problems", str)


@migrations(name="0008_forward_amendments")
def _forward_amendments(db: sqlite_utils.Database) -> None:
    # The lines a 3PL got (JSON [[line_id, sku, quantity], ...]), so a later change to the
    # order is known to be one the 3PL has not seen.
    db["forward_jobs"].add_column("sent_lines", str)
    # Order lines changed (or cancelled) after their 3PL had them: someone must change
    # the 3PL's order. One row per (job, line, quantity now wanted).
    db["forward_amendments"].create(
        {"id": int, "shop_id": str, "order_id": str, "job_id": int, "line_id": str, "sku": str, "sent": int,
         "wanted": int, "noted_at": str, "resolved_at": str, "resolution": str},
        pk="id",
        not_null={"shop_id", "order_id", "job_id", "line_id", "sku", "sent", "wanted", "noted_at"},
    )
    db["forward_amendments"].create_index(["job_id", "line_id", "wanted"], unique=True)
    db["forward_amendments"].create_index(["shop_id", "resolved_at"])


@migrations(name="0009_line_fulfilled_by")
def _line_fulfilled_by(db: sqlite_utils.Database) -> None:
    # The other fulfillment service that ships a line (NULL: ours), so a line rebuilt
    # from the store (a refund) is still not routed.
    db["order_lines"].add_column("fulfilled_by", str)


@migrations(name="0010_shop_configs")
def _shop_configs(db: sqlite_utils.Database) -> None:
    # Each shop's configuration document (JSON, secret values encrypted; connector.shop_store)
    # and its history. version only grows, and a row is never deleted (deactivated instead),
    # so count + sum of versions changes with every save: processes poll that.
    db["shop_configs"].create(
        {"shop_id": str, "version": int, "document": str, "active": int, "updated_at": str, "updated_by": str},
        pk="shop_id",
        not_null={"version", "document", "active", "updated_at", "updated_by"},
    )
    db["shop_config_history"].create(
        {"id": int, "shop_id": str, "version": int, "at": str, "actor": str, "diff": str},
        pk="id",
        not_null={"shop_id", "version", "at", "actor", "diff"},
    )
    db["shop_config_history"].create_index(["shop_id", "version"], unique=True)
    # The configuration version an order's lines were routed under.
    db["routing_decisions"].add_column("config_version", int)


@migrations(name="0011_users")
def _users(db: sqlite_utils.Database) -> None:
    # People who sign in to the standalone pages (queries: connector/auth_store.py).
    db["users"].create({"id": int, "email": str, "password_hash": str, "shop_id": str, "created_at": str},
                       pk="id", not_null={"email", "password_hash", "shop_id", "created_at"})
    db["users"].create_index(["email"], unique=True)
    # Failed logins of the last minutes, counted per email and per address to slow guessing.
    db["login_attempts"].create({"id": int, "email": str, "ip": str, "at": str}, pk="id",
                                not_null={"email", "ip", "at"})
    db["login_attempts"].create_index(["email", "at"])
    db["login_attempts"].create_index(["ip", "at"])
    # One-time login links: the signed token names a nonce, used at most once.
    db["login_links"].create({"nonce": str, "user_id": int, "created_at": str, "expires_at": str, "used_at": str},
                             pk="nonce", not_null={"user_id", "created_at", "expires_at"})


@migrations(name="0012_pending_connections")
def _pending_connections(db: sqlite_utils.Database) -> None:
    # WooCommerce connections waiting for their wc-auth callback, then how each ended
    # (queries: connector/connect_store.py). The password is only ever a hash here.
    db["pending_connections"].create(
        {"nonce": str, "connection_id": str, "store_url": str, "email": str, "password_hash": str,
         "created_at": str, "expires_at": str, "taken_at": str, "outcome": str},
        pk="nonce", not_null={"connection_id", "store_url", "email", "password_hash", "created_at", "expires_at"})
    db["pending_connections"].create_index(["connection_id"], unique=True)
    db["pending_connections"].create_index(["expires_at"])


@migrations(name="0013_shopify_tokens")
def _shopify_tokens(db: sqlite_utils.Database) -> None:
    # Each Shopify shop's offline access token and refresh token, encrypted (connector/token_store.py);
    # keyed by the shop's domain, as Shopify names it in session tokens and webhooks.
    db["shopify_tokens"].create(
        {"shop_domain": str, "access_token": str, "scopes": str, "expires_at": str, "refresh_token": str,
         "refresh_token_expires_at": str, "updated_at": str},
        pk="shop_domain", not_null={"access_token", "scopes", "updated_at"})


@migrations(name="0014_shipment_facts")
def _shipment_facts(db: sqlite_utils.Database) -> None:
    # What is known about each part (what one node ships of one order), merged from every
    # source; ``counted`` is the part's current contribution to metric_days (JSON), so a
    # later fact moves the counters by the difference (connector/shipment_store.py).
    db["shipment_facts"].create(
        {"shop_id": str, "order_id": str, "node_id": str, "shipped_at": str, "delivered_at": str, "carrier": str,
         "tracking_number": str, "tracking_url": str, "first_attempt_ok": int, "damaged": int, "lost": int,
         "returned": int, "in_full": int, "source": str, "updated_at": str, "counted": str},
        pk=("shop_id", "order_id", "node_id"), not_null={"source", "updated_at"})
    # Each order, part and exception line is counted once, on the order's first count's day and region.
    db["metric_orders"].create(
        {"shop_id": str, "order_id": str, "day": str, "region_id": str, "decided": int, "routed": int,
         "exception": int, "shipped_nodes": int},
        pk=("shop_id", "order_id"), not_null={"day", "region_id"},
        defaults={"decided": 0, "routed": 0, "exception": 0, "shipped_nodes": 0})
    db["metric_parts"].create({"shop_id": str, "order_id": str, "node_id": str},
                              pk=("shop_id", "order_id", "node_id"))
    db["metric_exception_lines"].create({"shop_id": str, "order_id": str, "line_id": str},
                                        pk=("shop_id", "order_id", "line_id"))
    # The counters the metrics read, per shop × local day the order was placed × node × region.
    # Order-level counters sit on node_id '' (an order is counted once, whatever its nodes).
    counters = ("orders_decided", "orders_routed", "orders_with_exception", "exception_lines", "orders_shipped",
                "split_orders", "parts_routed", "shipped", "on_time", "in_full", "delivered", "first_attempt_known",
                "first_attempt_ok", "damaged", "lost", "returned", "problems", "cost_known", "split_parts")
    db["metric_days"].create(
        {"shop_id": str, "day": str, "node_id": str, "region_id": str, **{c: int for c in counters},
         "delivery_days": float, "cost": float},
        pk=("shop_id", "day", "node_id", "region_id"),
        defaults={**{c: 0 for c in counters}, "delivery_days": 0.0, "cost": 0.0})
    # Lines no node had the stock for (partial_stock exceptions), per SKU and day the order was placed.
    db["metric_stockouts"].create(
        {"shop_id": str, "day": str, "sku": str, "lines": int, "units": int},
        pk=("shop_id", "day", "sku"), defaults={"lines": 0, "units": 0})


@migrations(name="0015_store_handoffs")
def _store_handoffs(db: sqlite_utils.Database) -> None:
    # What the store must be told (queries: connector/handoff_store.py): one row per order for
    # its routing decisions (kind "decision", node_id "") and one per order x node shipped by
    # hand (kind "shipment"), retried with backoff until the store has it.
    db["store_handoffs"].create(
        {"id": int, "shop_id": str, "order_id": str, "kind": str, "node_id": str, "status": str, "generation": int,
         "attempts": int, "next_attempt_at": str, "claimed_at": str, "last_error": str, "detail": str,
         "written": str, "created_at": str, "updated_at": str, "done_at": str},
        pk="id", not_null={"shop_id", "order_id", "kind", "node_id", "status", "generation", "attempts",
                           "created_at", "updated_at"},
        defaults={"attempts": 0, "generation": 1})
    db["store_handoffs"].create_index(["shop_id", "order_id", "kind", "node_id"], unique=True)
    db["store_handoffs"].create_index(["status", "next_attempt_at"])
    # Moves the store refused (Shopify's reason), until a later move succeeds or the order closes.
    db["handoff_refusals"].create(
        {"shop_id": str, "order_id": str, "node_id": str, "reason": str, "at": str},
        pk=("shop_id", "order_id", "node_id"), not_null={"reason", "at"})


@migrations(name="0016_dismissed_exceptions")
def _dismissed_exceptions(db: sqlite_utils.Database) -> None:
    # An exception line a person handles outside the connector: its decision keeps its reason
    # and gains who dismissed it, when and their note; it leaves the open exceptions until the
    # line itself changes (connector/exception_store.py).
    for column in ("dismissed_at", "dismissed_by", "dismissed_note"):
        db["routing_decisions"].add_column(column, str)


# node_sku_plans (migration 0017): what moves a row's own sellable units or inbound units
# moves the SKU's hub row by the same amount, since the hub is judged on the network's
# (echelon) stock. `row` is a trigger's NEW or OLD; `units` the row's new own value.
def _own_sellable_change(row: str, units: str) -> str:
    key = f"shop_id = {row}.shop_id AND sku = {row}.sku AND node_id = {row}.node_id"
    return (
        f"UPDATE node_sku_plans SET sellable = sellable + ({units}) - COALESCE((SELECT own_sellable "
        f"FROM node_sku_plans WHERE {key}), 0) WHERE shop_id = {row}.shop_id AND sku = {row}.sku AND is_hub = 1 "
        f"AND node_id != {row}.node_id; "
        f"UPDATE node_sku_plans SET sellable = CASE WHEN is_hub = 1 THEN sellable + ({units}) - own_sellable "
        f"ELSE ({units}) END, own_sellable = ({units}) WHERE {key};"
    )


def _add_plan_row(row: str, node_column: str = "node_id") -> str:
    # Not INSERT OR IGNORE: a trigger takes the conflict policy of the statement that fired
    # it when that has one (an upsert into stock), and would then fail on an existing row.
    return (f"INSERT INTO node_sku_plans (shop_id, sku, node_id) SELECT {row}.shop_id, {row}.sku, {row}.{node_column} "
            f"WHERE NOT EXISTS (SELECT 1 FROM node_sku_plans WHERE shop_id = {row}.shop_id AND sku = {row}.sku "
            f"AND node_id = {row}.{node_column});")


def _inbound(row: str) -> str:
    return f"(CASE WHEN {row}.status IN ('proposed', 'approved', 'in_transit') THEN {row}.units ELSE 0 END)"


@migrations(name="0017_node_sku_plans")
def _node_sku_plans(db: sqlite_utils.Database) -> None:
    """Per node × SKU, the planning's figures (connector.inventory_store.save_plans, at each
    allocation run) beside the position `connector reorder` judges them on: sellable units
    (available minus our reservations, never below zero) plus units in open transfers toward
    the node; for the hub, the whole network's. Days of cover and the risk level
    (domain.inventory.classify, in SQL) are stored generated columns, so the inventory page
    pages through 200,000 rows and lists or counts the shop's stock-out risks from indexes.

    The position is kept current where it changes, by the change: triggers for a
    reservation, a transfer opened, moved on or closed, a stock row updated; and, for the
    rows a sync replaces (or a service adds), one pass afterwards that writes only what
    changed (InventoryStore.stock_changed). Each allocation run also makes that pass over
    every node, so a stock write no one settled is corrected by the next run."""
    db.execute(
        "CREATE TABLE node_sku_plans (shop_id TEXT NOT NULL, sku TEXT NOT NULL, node_id TEXT NOT NULL, "
        "category TEXT, is_hub INTEGER NOT NULL DEFAULT 0, weekly_demand REAL NOT NULL DEFAULT 0, "
        "lead_time_days REAL NOT NULL DEFAULT 0, safety_stock INTEGER NOT NULL DEFAULT 0, "
        "reorder_point INTEGER NOT NULL DEFAULT 0, target_level INTEGER NOT NULL DEFAULT 0, planned_at TEXT, "
        "own_sellable INTEGER NOT NULL DEFAULT 0, own_inbound INTEGER NOT NULL DEFAULT 0, "
        "sellable INTEGER NOT NULL DEFAULT 0, inbound INTEGER NOT NULL DEFAULT 0, "
        "cover_days REAL GENERATED ALWAYS AS "
        "(CASE WHEN weekly_demand > 0 THEN (sellable + inbound) * 7.0 / weekly_demand END) STORED, "
        "risk INTEGER GENERATED ALWAYS AS (CASE WHEN weekly_demand <= 0 THEN 4 WHEN sellable <= 0 THEN 0 "
        "WHEN (sellable + inbound) * 7.0 < lead_time_days * weekly_demand THEN 1 "
        "WHEN sellable + inbound <= reorder_point THEN 2 ELSE 3 END) STORED, "
        "PRIMARY KEY (shop_id, sku, node_id)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX node_sku_plans_risk ON node_sku_plans (shop_id, risk, cover_days)")
    db.execute("CREATE INDEX node_sku_plans_node ON node_sku_plans (shop_id, node_id, sku)")
    db.execute("CREATE INDEX node_sku_plans_category ON node_sku_plans (shop_id, category, sku, node_id)")
    # A row new to the table counts the open transfers toward it: by SKU, not by scanning them all.
    db.execute("CREATE INDEX transfers_by_sku ON transfers (shop_id, sku, to_node)")
    # When each shop's plan was last saved (the page says so).
    db.execute("CREATE TABLE node_sku_plan_runs (shop_id TEXT PRIMARY KEY, planned_at TEXT NOT NULL)")
    db.execute(
        "INSERT INTO node_sku_plans (shop_id, sku, node_id, own_sellable, sellable) SELECT s.shop_id, s.sku, "
        "s.node_id, MAX(s.available - COALESCE(r.quantity, 0), 0), MAX(s.available - COALESCE(r.quantity, 0), 0) "
        "FROM stock s LEFT JOIN reserved_totals r ON r.shop_id = s.shop_id AND r.node_id = s.node_id "
        "AND r.sku = s.sku")
    db.execute(
        "UPDATE node_sku_plans SET own_inbound = t.units, inbound = t.units FROM (SELECT shop_id, sku, to_node, "
        "SUM(units) AS units FROM transfers WHERE status IN ('proposed', 'approved', 'in_transit') "
        "GROUP BY shop_id, sku, to_node) t WHERE t.shop_id = node_sku_plans.shop_id AND t.sku = node_sku_plans.sku "
        "AND t.to_node = node_sku_plans.node_id")

    # A count or a transfer changing one stock row. Not on INSERT: a sync replaces a node's
    # rows (delete, then insert), and a trigger per row would make it several times slower;
    # the sync, and the other services that add stock rows, settle them afterwards
    # (InventoryStore.stock_changed), as one pass that writes only the rows that changed.
    stock_units = ("MAX(NEW.available - COALESCE((SELECT quantity FROM reserved_totals WHERE shop_id = NEW.shop_id "
                   "AND node_id = NEW.node_id AND sku = NEW.sku), 0), 0)")
    stored = ("(SELECT own_sellable FROM node_sku_plans WHERE shop_id = NEW.shop_id AND sku = NEW.sku "
              "AND node_id = NEW.node_id)")
    db.execute(f"CREATE TRIGGER node_sku_plans_stock_update AFTER UPDATE OF available ON stock "
               f"WHEN {stock_units} IS NOT {stored} BEGIN {_add_plan_row('NEW')} "
               f"{_own_sellable_change('NEW', stock_units)} END")
    for event, row in (("INSERT", "NEW"), ("UPDATE OF quantity", "NEW"), ("DELETE", "OLD")):
        reserved = f"{row}.quantity" if row == "NEW" else "0"
        units = (f"COALESCE((SELECT MAX(available - {reserved}, 0) FROM stock WHERE shop_id = {row}.shop_id "
                 f"AND sku = {row}.sku AND node_id = {row}.node_id), 0)")
        own = (f"(SELECT own_sellable FROM node_sku_plans WHERE shop_id = {row}.shop_id AND sku = {row}.sku "
               f"AND node_id = {row}.node_id)")
        db.execute(f"CREATE TRIGGER node_sku_plans_reserved_{event.split()[0].lower()} AFTER {event} "
                   f"ON reserved_totals WHEN {units} != {own} BEGIN {_own_sellable_change(row, units)} END")
    for event, change, row in (("INSERT", _inbound("NEW"), "NEW"),
                               ("UPDATE OF status, units", f"{_inbound('NEW')} - {_inbound('OLD')}", "NEW"),
                               ("DELETE", f"-{_inbound('OLD')}", "OLD")):
        key = f"shop_id = {row}.shop_id AND sku = {row}.sku"
        db.execute(
            f"CREATE TRIGGER node_sku_plans_transfers_{event.split()[0].lower()} AFTER {event} ON transfers "
            f"WHEN {change} != 0 BEGIN {_add_plan_row(row, 'to_node')} "
            f"UPDATE node_sku_plans SET inbound = inbound + {change} WHERE {key} AND is_hub = 1 "
            f"AND node_id != {row}.to_node; "
            f"UPDATE node_sku_plans SET inbound = inbound + {change}, own_inbound = own_inbound + {change} "
            f"WHERE {key} AND node_id = {row}.to_node; END")


@migrations(name="0018_alerts")
def _alerts(db: sqlite_utils.Database) -> None:
    # What a creator is told (queries: connector/alerts_store.py). alert_items: each item that
    # can alert, whether it was there at the last look (an item alerts once while it stays);
    # alert_log: each alert decided, sent or held by the hourly limit (held ones wait for one
    # "and N more" summary); alert_outbox: each message per channel, written in the transaction
    # that decided it and sent after it, retried with backoff. No secret is kept here.
    db["alert_items"].create(
        {"shop_id": str, "key": str, "kind": str, "title": str, "present": int, "first_seen_at": str,
         "last_seen_at": str, "alerted_at": str, "cleared_at": str},
        pk=("shop_id", "key"), not_null={"kind", "present", "first_seen_at", "last_seen_at"})
    db["alert_log"].create(
        {"id": int, "shop_id": str, "key": str, "kind": str, "title": str, "at": str, "held": int,
         "summarised_at": str},
        pk="id", not_null={"shop_id", "key", "kind", "title", "at", "held"})
    db["alert_log"].create_index(["shop_id", "at"])
    db["alert_log"].create_index(["shop_id", "held", "summarised_at"])
    db["alert_outbox"].create(
        {"id": int, "shop_id": str, "channel": str, "message_key": str, "kind": str, "subject": str, "text": str,
         "link": str, "created_at": str, "status": str, "attempts": int, "next_attempt_at": str,
         "claimed_at": str, "sent_at": str, "last_error": str},
        pk="id", not_null={"shop_id", "channel", "message_key", "kind", "subject", "text", "created_at", "status",
                           "attempts", "next_attempt_at"},
        defaults={"attempts": 0})
    db["alert_outbox"].create_index(["shop_id", "channel", "message_key"], unique=True)
    db["alert_outbox"].create_index(["status", "next_attempt_at"])


@migrations(name="0019_over_reserved_lookups")
def _over_reserved_lookups(db: sqlite_utils.Database) -> None:
    # Over-reserved stock (home page, action centre, status page) without reading the shop
    # whole: the node × SKUs holding reserved units now (a few, while a total stays at 0 for
    # every pair ever reserved), and each one's active reservations (how many a 3PL has).
    db.execute("CREATE INDEX reserved_totals_held ON reserved_totals (shop_id, node_id, sku) WHERE quantity > 0")
    db.execute("CREATE INDEX reservations_active_by_node_sku ON reservations (shop_id, node_id, sku) "
               "WHERE status = 'active'")


# ---------------------------------------------------------------- rows


@dataclass(frozen=True)
class InboxRow:
    id: int
    shop_id: str
    platform: str
    topic: str
    body: bytes
    attempts: int


@dataclass(frozen=True)
class StoredOrder:
    shop_id: str
    id: str
    number: str
    state: str
    status: str
    updated_at: datetime | None
    region_id: str | None


@dataclass(frozen=True)
class ActiveReservation:
    id: int
    line_id: str
    node_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class LineAt3pl:
    """An order line a 3PL has: which forwarding job sent it, and what it got."""

    job_id: int
    node_id: str
    sku: str
    quantity: int
    shipped: bool  # the 3PL reported the shipment: a later change is a return, not an amendment


# ---------------------------------------------------------------- the store


def lock_timeout(exc: BaseException, busy_timeout_ms: int) -> str | None:
    """One line for an error that means another connection held the write lock past the
    busy timeout (SQLITE_BUSY / SQLITE_LOCKED); None for any other error."""
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return None
    return (f"database busy: another process held the write lock for more than {busy_timeout_ms} ms "
            "([database] busy_timeout_ms); the step waiting for it changed nothing, try again")


class _Database(sqlite_utils.Database):
    """sqlite-utils' Database whose outermost ``atomic()`` is ``BEGIN IMMEDIATE`` (waited
    for by ``begin_immediate``, which the Store sets), so no transaction — ours or one
    sqlite-utils opens itself in upsert, create or a migration — begins deferred."""

    begin_immediate: Callable[[], None]

    @contextlib.contextmanager
    def atomic(self) -> Iterator["_Database"]:
        if self.conn.in_transaction:  # nested: a savepoint
            with super().atomic():
                yield self
            return
        self.begin_immediate()
        try:
            yield self
        except BaseException:
            if self.conn.in_transaction:  # an error may have rolled it back already
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise


log = logging.getLogger("connector.store")


def _owner_only(path: Path) -> None:
    """Buyers' names and addresses live in the database: create it 0600 and take group
    and other access away from an existing one, and from a WAL, SHM or journal an
    earlier run left. SQLite creates those files with the database file's own mode,
    whatever the creating process's umask, so later ones are owner-only too. A file
    another user owns cannot be changed: that is logged and the open goes on."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    for part in (path, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal"))):
        try:
            mode = stat.S_IMODE(part.stat().st_mode)
            if mode & 0o077:
                part.chmod(mode & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError as exc:
            log.warning("cannot make %s readable by its owner only: %s", part, exc.strerror)


class Store:
    def __init__(self, db: _Database, busy_timeout_ms: int = 5000):
        self.db = db
        self.conn: sqlite3.Connection = db.conn
        self.busy_timeout_ms = busy_timeout_ms
        self._busy_handler_on = True  # see write_transactions_only()
        db.begin_immediate = self._begin_immediate

    @classmethod
    def open(cls, path: str | Path, busy_timeout_ms: int = 5000) -> "Store":
        memory = str(path) == ":memory:"
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _owner_only(Path(path))
        conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, check_same_thread=False)
        # Transactions are explicit (write(), db.atomic()); no implicit BEGINs.
        conn.isolation_level = None
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if not memory:
            conn.execute("PRAGMA journal_mode = WAL")
        # FULL: an acknowledged webhook survives power loss, not just a crash.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return cls(_Database(conn, execute_plugins=False), busy_timeout_ms)

    def write_transactions_only(self) -> "Store":
        """For a connection that will only store webhooks (the web's group commit):
        SQLite's busy handler is switched off for good.

        ``_when_write_lock_free`` polls for the write lock with the handler off anyway
        (BEGIN IMMEDIATE, or a lone autocommit INSERT), and in WAL mode nothing after
        that waits for a lock (COMMIT's automatic checkpoint is passive and never
        calls the handler; readers do not wait for writers). So it can skip the two
        PRAGMAs that turn the handler off and on around every write:
        in a web process each statement releases and retakes the GIL its request
        threads are waiting for.
        """
        self.conn.execute("PRAGMA busy_timeout = 0")
        self._busy_handler_on = False
        return self

    def close(self) -> None:
        self.conn.close()

    def migrate(self) -> list[str]:
        """Applies the pending migrations under one write lock: processes starting together
        on a new or older database wait for it, and each migration is applied once."""
        if not migrations.pending(self.db):
            return []
        with self.write():
            pending = [m.name for m in migrations.pending(self.db)]  # again, under the lock
            migrations.apply(self.db)
        return pending

    def applied_migrations(self) -> list[str]:
        return [m.name for m in migrations.applied(self.db)]

    @contextlib.contextmanager
    def write(self) -> Iterator["Store"]:
        """BEGIN IMMEDIATE … COMMIT: take the write lock before reading (inside a
        transaction: a savepoint)."""
        with self.db.atomic():
            yield self

    def _begin_immediate(self) -> None:
        self._when_write_lock_free(lambda: self.conn.execute("BEGIN IMMEDIATE"))

    def _when_write_lock_free(self, statement: Callable[[], T]) -> T:
        """Run ``statement`` (one that takes the write lock first, and does nothing
        when it cannot), polling every 0.1 ms up to the busy timeout while another
        connection holds the lock.

        SQLite's own busy handler backs off to 100 ms sleeps, so a waiter rarely
        wakes inside the short gap a busy drainer leaves between batches; webhook
        inserts would then wait hundreds of milliseconds. Polling finely hands the
        lock over within a fraction of a millisecond (measured: webhook ingest under
        two gunicorn workers 1,000/s at 0.5 ms polls, 1,450-1,500/s at 0.1 ms).
        """
        if self._busy_handler_on:
            self.conn.execute("PRAGMA busy_timeout = 0")
        try:
            deadline = time.monotonic() + self.busy_timeout_ms / 1000
            while True:
                try:
                    return statement()
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() >= deadline:
                        raise
                    time.sleep(0.0001)
        finally:
            if self._busy_handler_on:
                self.conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")

    @contextlib.contextmanager
    def savepoint(self) -> Iterator["Store"]:
        with self.db.atomic():
            yield self

    def _one(self, sql: str, params: Sequence | Mapping = ()) -> tuple | None:
        return self.conn.execute(sql, params).fetchone()

    def _all(self, sql: str, params: Sequence | Mapping = ()) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()

    def _dicts(self, sql: str, params: Sequence | Mapping = ()) -> list[dict]:
        cursor = self.conn.execute(sql, params)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    @staticmethod
    def _by_skus(read: Callable[[str, Sequence], list], sql: str, shop_id: str, skus: Iterable[str]) -> list:
        """``read`` (``_all`` or ``_dicts``) of ``sql``, whose parameters are the shop and
        the SKUs at ``{marks}``, 500 SKUs a query (well under SQLite's bound-parameter
        limit); the SKUs go in sorted, so an ORDER BY sku holds across the queries."""
        rows: list = []
        for chunk in chunked(sorted(set(skus)), 500):
            rows += read(sql.format(marks=",".join("?" * len(chunk))), (shop_id, *chunk))
        return rows

    # ------------------------------------------------------------ shops and network

    def sync_shops(self, shops: Iterable[Mapping[str, Any]], regions: Iterable[Mapping], nodes: Iterable[Mapping],
                   now: datetime) -> None:
        """Make shops, regions and nodes match the configuration (config wins;
        a shop's install status and history are kept)."""
        shops = list(shops)
        with self.db.atomic():
            for shop in shops:
                self.conn.execute(
                    "INSERT INTO shops (id, platform, domain, status, timezone, created_at, updated_at) "
                    "VALUES (?, ?, ?, 'installed', ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "platform = excluded.platform, domain = excluded.domain, timezone = excluded.timezone, "
                    "updated_at = excluded.updated_at",
                    (shop["id"], shop["platform"], shop["domain"], shop["timezone"], ts(now), ts(now)),
                )
            ids = [s["id"] for s in shops]
            marks = ",".join("?" * len(ids))
            self.conn.execute(f"DELETE FROM regions WHERE shop_id IN ({marks})", ids)
            self.conn.execute(f"DELETE FROM nodes WHERE shop_id IN ({marks})", ids)
            self.db["regions"].insert_all(regions, pk=("shop_id", "id"))
            self.db["nodes"].insert_all(nodes, pk=("shop_id", "id"))

    def shop_ids(self) -> list[str]:
        """Every shop the database has held, also those since removed from the config."""
        return [r[0] for r in self._all("SELECT id FROM shops ORDER BY id")]

    def shop_status(self, shop_id: str) -> str | None:
        row = self._one("SELECT status FROM shops WHERE id = ?", (shop_id,))
        return row[0] if row else None

    def set_shop_status(self, shop_id: str, status: str, now: datetime) -> None:
        extra = ", uninstalled_at = ?" if status == "uninstalled" else ""
        params = [status, ts(now)] + ([ts(now)] if extra else []) + [shop_id]
        self.conn.execute(f"UPDATE shops SET status = ?, updated_at = ?{extra} WHERE id = ?", params)

    # ------------------------------------------------------------ inbox

    _INSERT_WEBHOOK = (
        "INSERT INTO webhook_inbox (shop_id, platform, topic, dedupe_key, webhook_id, event_id, "
        "resource_id, headers, body, received_at, status, attempts, last_error, processed_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (shop_id, dedupe_key) DO NOTHING"
    )

    def insert_webhook(
        self,
        *,
        shop_id: str,
        platform: str,
        topic: str,
        dedupe_key: str,
        webhook_id: str | None,
        event_id: str | None,
        resource_id: str | None,
        headers: Mapping[str, str],
        body: bytes,
        received_at: datetime,
        status: str = "pending",
        last_error: str | None = None,
    ) -> tuple[int, bool]:
        """Store a delivery durably. Returns (inbox id, duplicate?).

        Outside a transaction the INSERT is its own (autocommit): one statement
        where BEGIN IMMEDIATE, INSERT, COMMIT would be three, and in a web process
        each statement releases and retakes the GIL other requests wait for.
        """
        row = dict(shop_id=shop_id, platform=platform, topic=topic, dedupe_key=dedupe_key, webhook_id=webhook_id,
                   event_id=event_id, resource_id=resource_id, headers=headers, body=body,
                   received_at=received_at, status=status, last_error=last_error)
        if self.conn.in_transaction:
            return self._insert_webhook_row(**row)
        cursor = self._when_write_lock_free(lambda: self._execute_insert_webhook(**row))
        return self._inserted_or_existing(cursor, shop_id, dedupe_key)

    def insert_webhooks(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[int, bool] | Exception]:
        """Store several deliveries (``insert_webhook`` keyword arguments) in ONE
        transaction, so they share one commit and one fsync (group commit).

        Returns once COMMIT has returned, one result per row in order: (inbox id,
        duplicate?) as ``insert_webhook`` gives it, or the exception that row raised.
        A row that fails is undone alone and the others are still stored. That needs
        no savepoint per row: each row is one INSERT statement, and SQLite undoes a
        failed statement entirely and keeps the transaction (ABORT: the resolution of
        every constraint on webhook_inbox, which has no triggers; the dedupe key's
        conflict is DO NOTHING). A savepoint would add two statements per row, and in
        a web process each statement releases and retakes the GIL its request threads
        are waiting for. Raises, with nothing stored, when the transaction itself
        fails (lock not taken, COMMIT refused, SQLite rolled it all back).
        """
        if len(rows) == 1 and not self.conn.in_transaction:  # a group of one: an autocommit INSERT
            try:
                return [self.insert_webhook(**rows[0])]
            except (sqlite3.IntegrityError, ValueError) as exc:  # this row alone is refused, as in a group
                return [exc]
        results: list[tuple[int, bool] | Exception] = []
        with self.write():
            for row in rows:
                try:
                    results.append(self._insert_webhook_row(**row))
                except Exception as exc:  # noqa: BLE001 - one bad row must not cost the others their commit
                    if not self.conn.in_transaction:  # I/O error, disk full...: the whole transaction is gone
                        raise
                    results.append(exc)
        return results

    def _insert_webhook_row(self, **row: Any) -> tuple[int, bool]:
        """One INSERT inside the caller's write transaction: (inbox id, duplicate?)."""
        return self._inserted_or_existing(self._execute_insert_webhook(**row), row["shop_id"], row["dedupe_key"])

    def _execute_insert_webhook(self, *, shop_id: str, platform: str, topic: str, dedupe_key: str,
                                webhook_id: str | None, event_id: str | None, resource_id: str | None,
                                headers: Mapping[str, str], body: bytes, received_at: datetime,
                                status: str = "pending", last_error: str | None = None) -> sqlite3.Cursor:
        received = ts(received_at)
        return self.conn.execute(
            self._INSERT_WEBHOOK,
            (shop_id, platform, topic, dedupe_key, webhook_id, event_id, resource_id, json.dumps(dict(headers)),
             body, received, status, last_error, None if status == "pending" else received),
        )

    def _inserted_or_existing(self, cursor: sqlite3.Cursor, shop_id: str, dedupe_key: str) -> tuple[int, bool]:
        if cursor.rowcount == 1:
            return cursor.lastrowid, False
        row = self._one("SELECT id FROM webhook_inbox WHERE shop_id = ? AND dedupe_key = ?", (shop_id, dedupe_key))
        return row[0], True

    def next_pending_webhooks(self, limit: int, now: datetime) -> list[InboxRow]:
        rows = self._all(
            "SELECT id, shop_id, platform, topic, body, attempts FROM webhook_inbox "
            "WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id LIMIT ?",
            (ts(now), limit),
        )
        return [InboxRow(*r) for r in rows]

    def count_webhooks(self, status: str | None = None) -> int:
        if status is None:
            return self._one("SELECT COUNT(*) FROM webhook_inbox")[0]
        return self._one("SELECT COUNT(*) FROM webhook_inbox WHERE status = ?", (status,))[0]

    def mark_webhook(self, inbox_id: int, status: str, now: datetime, error: str | None = None) -> None:
        self.conn.execute(
            "UPDATE webhook_inbox SET status = ?, processed_at = ?, last_error = ?, attempts = attempts + 1 "
            "WHERE id = ?",
            (status, ts(now), error, inbox_id),
        )

    def retry_webhook_later(self, inbox_id: int, error: str, next_attempt_at: datetime) -> None:
        self.conn.execute(
            "UPDATE webhook_inbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (error, ts(next_attempt_at), inbox_id),
        )

    def failed_webhooks(self, shop_id: str | None = None) -> list[dict]:
        where, params = ("AND shop_id = ?", (shop_id,)) if shop_id else ("", ())
        # Through the status index: failed deliveries are few, a shop's deliveries are all of
        # its orders' (left to itself the planner picks the shop's index and reads them all).
        return self._dicts(
            "SELECT id, shop_id, topic, received_at, attempts, last_error, status FROM webhook_inbox "
            f"INDEXED BY idx_webhook_inbox_status_id WHERE status IN ('failed', 'rejected') {where} ORDER BY id",
            params,
        )

    def webhook(self, inbox_id: int) -> dict | None:
        rows = self._dicts("SELECT * FROM webhook_inbox WHERE id = ?", (inbox_id,))
        return rows[0] if rows else None

    def replace_webhook_body(self, inbox_id: int, body: bytes) -> None:
        self.conn.execute("UPDATE webhook_inbox SET body = ?, headers = '{}' WHERE id = ?", (body, inbox_id))

    # ------------------------------------------------------------ orders

    def order(self, shop_id: str, order_id: str) -> StoredOrder | None:
        row = self._one(
            "SELECT shop_id, id, number, state, status, updated_at, region_id FROM orders WHERE shop_id = ? AND id = ?",
            (shop_id, order_id),
        )
        if row is None:
            return None
        return StoredOrder(row[0], row[1], row[2], row[3], row[4], parse_ts(row[5]), row[6])

    def upsert_order(self, order, region_id: str | None, now: datetime) -> None:
        """Header and lines as the platform last reported them."""
        a = order.ship_to
        self.conn.execute(
            "INSERT INTO orders (shop_id, id, number, platform, created_at, updated_at, state, status, region_id, "
            "ship_country, ship_province, ship_postcode, customer_id, first_seen_at, last_event_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (shop_id, id) DO UPDATE SET number = excluded.number, updated_at = excluded.updated_at, "
            "state = excluded.state, region_id = excluded.region_id, ship_country = excluded.ship_country, "
            "ship_province = excluded.ship_province, ship_postcode = excluded.ship_postcode, "
            "customer_id = excluded.customer_id, last_event_at = excluded.last_event_at",
            (order.shop_id, order.order_id, order.number, order.platform, ts(order.created_at), ts(order.updated_at),
             order.state, region_id, a.country if a else None, a.province if a else None, a.postcode if a else None,
             order.customer_id, ts(now), ts(now)),
        )
        self.conn.execute("DELETE FROM order_lines WHERE shop_id = ? AND order_id = ?", (order.shop_id, order.order_id))
        self.conn.executemany(
            "INSERT INTO order_lines (shop_id, order_id, line_id, sku, quantity, requires_shipping, title, "
            "fulfilled_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(order.shop_id, order.order_id, l.line_id, l.sku, l.quantity, int(l.requires_shipping), l.title,
              l.fulfilled_by) for l in order.lines],
        )

    def set_order_state(self, shop_id: str, order_id: str, state: str, now: datetime) -> None:
        self.conn.execute(
            "UPDATE orders SET state = ?, last_event_at = ? WHERE shop_id = ? AND id = ?",
            (state, ts(now), shop_id, order_id),
        )

    def set_order_status(self, shop_id: str, order_id: str, status: str) -> None:
        self.conn.execute("UPDATE orders SET status = ? WHERE shop_id = ? AND id = ?", (status, shop_id, order_id))

    def set_skip_reasons(self, shop_id: str, order_id: str, skipped: Sequence[tuple[str, str]]) -> None:
        if not skipped:
            return
        self.conn.executemany(
            "UPDATE order_lines SET skip_reason = ? WHERE shop_id = ? AND order_id = ? AND line_id = ?",
            [(reason, shop_id, order_id, line_id) for line_id, reason in skipped],
        )

    def order_lines(self, shop_id: str, order_id: str) -> list[dict]:
        return self._dicts(
            "SELECT line_id, sku, quantity, requires_shipping, title, skip_reason, fulfilled_by FROM order_lines "
            "WHERE shop_id = ? AND order_id = ? ORDER BY rowid",
            (shop_id, order_id),
        )

    def reduce_line_quantity(self, shop_id: str, order_id: str, line_id: str, by: int) -> None:
        self.conn.execute(
            "UPDATE order_lines SET quantity = MAX(quantity - ?, 0) WHERE shop_id = ? AND order_id = ? AND line_id = ?",
            (by, shop_id, order_id, line_id),
        )

    def record_refund_line(self, shop_id: str, refund_id: str, order_id: str, line_id: str, quantity: int,
                           applied: bool, now: datetime) -> bool:
        """False when this refund line was already recorded (processing is idempotent)."""
        cursor = self.conn.execute(
            "INSERT INTO refunds (shop_id, refund_id, order_id, line_id, quantity, applied, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (shop_id, refund_id, order_id, line_id, quantity, int(applied), ts(now)),
        )
        return cursor.rowcount == 1

    def refunded_quantities(self, shop_id: str, order_id: str, refund_ids: Sequence[str]) -> dict[str, int]:
        """line id -> units the given (recorded) refunds took off that line."""
        if not refund_ids:
            return {}
        marks = ",".join("?" * len(refund_ids))
        return dict(self._all(
            f"SELECT line_id, SUM(quantity) FROM refunds WHERE shop_id = ? AND order_id = ? AND refund_id IN ({marks}) "
            "GROUP BY line_id",
            (shop_id, order_id, *refund_ids),
        ))

    def track_refund_lookups(self, shop_id: str, order_id: str, refund_ids: Sequence[str], now: datetime,
                             *, look_up: bool) -> None:
        """The order now lists ``refund_ids``: with ``look_up``, ask for the lines of those
        never asked for, and again for those whose lookup failed (the order changed; the
        store or its API key may be back). A lookup still pending for a refund the order
        no longer lists (deleted in the store) is dropped, so its lines are never applied."""
        self.conn.execute(
            "UPDATE refund_lookups SET status = 'dropped', finished_at = ? WHERE shop_id = ? AND order_id = ? "
            f"AND status = 'pending' AND refund_id NOT IN ({','.join('?' * len(refund_ids))})",
            (ts(now), shop_id, order_id, *refund_ids),
        )
        if look_up and refund_ids:
            self.conn.executemany(
                "INSERT INTO refund_lookups (shop_id, refund_id, order_id, status, attempts, next_attempt_at, "
                "requested_at) VALUES (?, ?, ?, 'pending', 0, ?, ?) "
                "ON CONFLICT (shop_id, refund_id) DO UPDATE SET status = 'pending', attempts = 0, "
                "next_attempt_at = excluded.next_attempt_at WHERE refund_lookups.status IN ('dropped', 'failed')",
                [(shop_id, refund_id, order_id, ts(now), ts(now)) for refund_id in refund_ids],
            )

    def due_refund_lookups(self, now: datetime, limit: int) -> list[dict]:
        """Orders with refunds to look up now: shop_id, order_id, refund_ids, attempts (the most any has had)."""
        rows = self._all(
            "SELECT shop_id, order_id, group_concat(refund_id), MAX(attempts) FROM refund_lookups "
            "WHERE status = 'pending' AND next_attempt_at <= ? GROUP BY shop_id, order_id "
            "ORDER BY MIN(next_attempt_at) LIMIT ?",
            (ts(now), limit),
        )
        return [{"shop_id": shop_id, "order_id": order_id, "refund_ids": ids.split(","), "attempts": attempts}
                for shop_id, order_id, ids, attempts in rows]

    def pending_refund_lookups(self, shop_id: str, order_id: str) -> set[str]:
        return {r for (r,) in self._all("SELECT refund_id FROM refund_lookups WHERE shop_id = ? AND order_id = ? "
                                        "AND status = 'pending'", (shop_id, order_id))}

    def failed_refund_lookups(self, shop_id: str | None = None) -> list[dict]:
        where, params = _where(["failed"], shop_id=shop_id)
        return self._dicts(f"SELECT shop_id, order_id, refund_id, attempts, last_error FROM refund_lookups {where} "
                           "ORDER BY shop_id, order_id, refund_id", params)

    def finish_refund_lookups(self, shop_id: str, order_id: str, refund_ids: Iterable[str], *, status: str,
                              now: datetime, error: str | None = None,
                              next_attempt_at: datetime | None = None) -> None:
        """Pending lookups of the order end as ``status`` ('done', 'failed'), or stay
        'pending' until ``next_attempt_at`` (a retry)."""
        self.conn.executemany(
            "UPDATE refund_lookups SET status = ?, attempts = attempts + 1, last_error = ?, "
            "next_attempt_at = COALESCE(?, next_attempt_at), finished_at = CASE WHEN ? = 'pending' THEN NULL ELSE ? END "
            "WHERE shop_id = ? AND order_id = ? AND refund_id = ? AND status = 'pending'",
            [(status, error, ts(next_attempt_at) if next_attempt_at else None, status, ts(now), shop_id, order_id, r)
             for r in refund_ids],
        )

    # ------------------------------------------------------------ order reconciliation

    def order_poll(self, shop_id: str) -> dict | None:
        rows = self._dicts("SELECT * FROM order_polls WHERE shop_id = ?", (shop_id,))
        return rows[0] if rows else None

    def order_polls(self, shop_id: str | None = None) -> list[dict]:
        where, params = _where(shop_id=shop_id)
        return self._dicts(f"SELECT * FROM order_polls {where} ORDER BY shop_id", params)

    def count_order_poll(self, shop_id: str, read: int, stored: int) -> None:
        """Add a page's orders to the shop's totals (in the transaction that stored them)."""
        self.conn.execute(
            "INSERT INTO order_polls (shop_id, last_attempt_at, orders_read, orders_stored) VALUES (?, '', ?, ?) "
            "ON CONFLICT (shop_id) DO UPDATE SET orders_read = order_polls.orders_read + excluded.orders_read, "
            "orders_stored = order_polls.orders_stored + excluded.orders_stored",
            (shop_id, read, stored),
        )

    def advance_order_poll(self, shop_id: str, watermark: datetime) -> None:
        """Every order changed up to ``watermark`` is in the inbox. Never moves back."""
        self.conn.execute(
            "INSERT INTO order_polls (shop_id, watermark, last_attempt_at) VALUES (?, ?, '') "
            "ON CONFLICT (shop_id) DO UPDATE SET "
            "watermark = MAX(COALESCE(order_polls.watermark, ''), excluded.watermark)",
            (shop_id, ts(watermark)),
        )

    def set_webhook_problems(self, shop_id: str, problems: Sequence[str]) -> None:
        """Record what is wrong with the shop's order webhooks (empty: nothing)."""
        self.conn.execute(
            "INSERT INTO order_polls (shop_id, last_attempt_at, webhook_problems) VALUES (?, '', ?) "
            "ON CONFLICT (shop_id) DO UPDATE SET webhook_problems = excluded.webhook_problems",
            (shop_id, json.dumps(list(problems))),
        )

    def finish_order_poll(self, shop_id: str, now: datetime, error: str | None = None) -> int:
        """Record how a run ended; returns the failures in a row (0 after a good run)."""
        self.conn.execute(
            "INSERT INTO order_polls (shop_id, last_attempt_at, last_ok_at, last_error, failures) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (shop_id) DO UPDATE SET last_attempt_at = excluded.last_attempt_at, "
            "last_ok_at = COALESCE(excluded.last_ok_at, order_polls.last_ok_at), last_error = excluded.last_error, "
            "failures = CASE WHEN excluded.last_error IS NULL THEN 0 ELSE order_polls.failures + 1 END",
            (shop_id, ts(now), None if error else ts(now), error, 1 if error else 0),
        )
        return self.order_poll(shop_id)["failures"]

    # ------------------------------------------------------------ stock and reservations

    def sellable(self, shop_id: str, skus: Iterable[str]) -> dict[tuple[str, str], int]:
        """(node, sku) -> available minus our active reservations, never below zero."""
        rows = self._by_skus(
            self._all,
            "SELECT s.node_id, s.sku, s.available - COALESCE(r.quantity, 0) FROM stock s "
            "LEFT JOIN reserved_totals r ON r.shop_id = s.shop_id AND r.node_id = s.node_id AND r.sku = s.sku "
            "WHERE s.shop_id = ? AND s.sku IN ({marks})",
            shop_id, skus,
        )
        return {(node, sku): max(qty, 0) for node, sku, qty in rows}

    def active_reservations(self, shop_id: str, order_id: str) -> list[ActiveReservation]:
        rows = self._all(
            "SELECT id, line_id, node_id, sku, quantity FROM reservations "
            "WHERE shop_id = ? AND order_id = ? AND status = 'active'",
            (shop_id, order_id),
        )
        return [ActiveReservation(*r) for r in rows]

    def reserve(self, shop_id: str, order_id: str, line_id: str, node_id: str, sku: str, quantity: int,
                now: datetime) -> None:
        self.reserve_many(shop_id, order_id, [(line_id, node_id, sku, quantity)], now)

    def reserve_many(self, shop_id: str, order_id: str, lines: Sequence[tuple[str, str, str, int]],
                     now: datetime) -> None:
        """Reserve (line, node, sku, quantity) rows and raise the running totals."""
        stamp = ts(now)
        self.conn.executemany(
            "INSERT INTO reservations (shop_id, order_id, line_id, node_id, sku, quantity, status, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 'active', ?)",
            [(shop_id, order_id, line_id, node_id, sku, quantity, stamp) for line_id, node_id, sku, quantity in lines],
        )
        totals: dict[tuple[str, str], int] = {}  # one upsert per node × SKU, not per line
        for _, node_id, sku, quantity in lines:
            totals[(node_id, sku)] = totals.get((node_id, sku), 0) + quantity
        self.conn.executemany(
            "INSERT INTO reserved_totals (shop_id, node_id, sku, quantity) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET quantity = quantity + excluded.quantity",
            [(shop_id, node_id, sku, quantity) for (node_id, sku), quantity in totals.items()],
        )

    def release(self, reservation: ActiveReservation, shop_id: str, reason: str, now: datetime) -> None:
        self.conn.execute(
            "UPDATE reservations SET status = 'released', released_at = ?, release_reason = ? WHERE id = ?",
            (ts(now), reason, reservation.id),
        )
        self._adjust_total(shop_id, reservation.node_id, reservation.sku, -reservation.quantity)

    def shrink_reservation(self, reservation: ActiveReservation, shop_id: str, new_quantity: int) -> None:
        self.conn.execute("UPDATE reservations SET quantity = ? WHERE id = ?", (new_quantity, reservation.id))
        self._adjust_total(shop_id, reservation.node_id, reservation.sku, new_quantity - reservation.quantity)

    def _adjust_total(self, shop_id: str, node_id: str, sku: str, delta: int) -> None:
        self.conn.execute(
            "INSERT INTO reserved_totals (shop_id, node_id, sku, quantity) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET quantity = quantity + excluded.quantity",
            (shop_id, node_id, sku, delta),
        )

    def over_reserved(self, shop_id: str, node_ids: Sequence[str] | None = None) -> list[dict]:
        """(node, SKU)s holding fewer units than are reserved there (a sync or a count
        lowered them), and how many of those reserved units a 3PL already has. Only the
        pairs holding reserved units are read (``t.quantity > 0``: index reserved_totals_held),
        and only their own active reservations (reservations_active_by_node_sku)."""
        nodes = f"AND t.node_id IN ({','.join('?' * len(node_ids))})" if node_ids is not None else ""
        return self._dicts(
            "SELECT t.node_id, t.sku, COALESCE(s.available, 0) AS available, t.quantity AS reserved, "
            "(SELECT COALESCE(SUM(r.quantity), 0) FROM reservations r JOIN forward_jobs f ON f.shop_id = r.shop_id "
            "AND f.order_id = r.order_id AND f.node_id = r.node_id AND f.status IN ('sending', 'sent', 'shipped') "
            "WHERE r.shop_id = t.shop_id AND r.node_id = t.node_id AND r.sku = t.sku AND r.status = 'active') "
            "AS at_3pl FROM reserved_totals t LEFT JOIN stock s ON s.shop_id = t.shop_id AND s.sku = t.sku "
            f"AND s.node_id = t.node_id WHERE t.shop_id = ? {nodes} AND t.quantity > 0 "
            "AND t.quantity > COALESCE(s.available, 0) "
            "ORDER BY t.node_id, t.sku",
            (shop_id, *(node_ids or ())),
        )

    def reservations_at(self, shop_id: str, node_id: str, sku: str) -> list[tuple[str, ActiveReservation]]:
        """(order id, reservation) of a SKU at a node, newest first."""
        rows = self._all(
            "SELECT order_id, id, line_id, node_id, sku, quantity FROM reservations WHERE shop_id = ? "
            "AND node_id = ? AND sku = ? AND status = 'active' ORDER BY id DESC",
            (shop_id, node_id, sku),
        )
        return [(order_id, ActiveReservation(*rest)) for order_id, *rest in rows]

    def reservation_totals_drift(self) -> list[tuple]:
        """Rows where the running totals disagree with the reservations (should be none)."""
        return self._all(
            "SELECT t.shop_id, t.node_id, t.sku, t.quantity, COALESCE(SUM(r.quantity), 0) FROM reserved_totals t "
            "LEFT JOIN reservations r ON r.shop_id = t.shop_id AND r.node_id = t.node_id AND r.sku = t.sku "
            "AND r.status = 'active' GROUP BY t.shop_id, t.node_id, t.sku HAVING t.quantity != COALESCE(SUM(r.quantity), 0)"
        )

    def orders_today(self, shop_id: str, day: str) -> dict[str, int]:
        return dict(self._all("SELECT node_id, orders FROM node_day_orders WHERE shop_id = ? AND day = ?",
                              (shop_id, day)))

    def count_node_order(self, shop_id: str, node_id: str, day: str) -> None:
        self.conn.execute(
            "INSERT INTO node_day_orders (shop_id, node_id, day, orders) VALUES (?, ?, ?, 1) "
            "ON CONFLICT DO UPDATE SET orders = orders + 1",
            (shop_id, node_id, day),
        )

    def set_stock(self, shop_id: str, node_id: str, sku: str, *, on_hand: int, committed: int, available: int,
                  source: str, now: datetime) -> None:
        self.db["stock"].upsert(
            {"shop_id": shop_id, "sku": sku, "node_id": node_id, "on_hand": on_hand, "committed": committed,
             "available": available, "updated_at": ts(now), "source": source},
            pk=("shop_id", "sku", "node_id"),
        )

    def replace_node_stock(self, shop_id: str, node_id: str, rows: Iterable[tuple[str, int, int, int]], source: str,
                           now: datetime) -> int:
        """All of a node's stock at once — ``rows`` are (sku, on_hand, committed, available) —
        the old rows go and the new ones come in one transaction."""
        stamp = ts(now)
        with self.db.atomic():
            self.conn.execute("DELETE FROM stock WHERE shop_id = ? AND node_id = ?", (shop_id, node_id))
            cursor = self.conn.executemany(
                "INSERT INTO stock (shop_id, sku, node_id, on_hand, committed, available, updated_at, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ((shop_id, sku, node_id, on_hand, committed, available, stamp, source)
                 for sku, on_hand, committed, available in rows),
            )
        return cursor.rowcount

    def stock_level(self, shop_id: str, node_id: str, sku: str) -> int | None:
        row = self._one("SELECT available FROM stock WHERE shop_id = ? AND node_id = ? AND sku = ?",
                        (shop_id, node_id, sku))
        return row[0] if row else None

    def stock_rows(self, shop_id: str) -> list[dict]:
        return self._dicts(
            "SELECT s.node_id, s.sku, s.on_hand, s.committed, s.available, COALESCE(r.quantity, 0) AS reserved, "
            "s.updated_at, s.source FROM stock s LEFT JOIN reserved_totals r ON r.shop_id = s.shop_id "
            "AND r.node_id = s.node_id AND r.sku = s.sku WHERE s.shop_id = ? ORDER BY s.node_id, s.sku",
            (shop_id,),
        )

    # ------------------------------------------------------------ decisions

    def save_decisions(self, shop_id: str, order_id: str, mode: str, region_id: str | None, decisions,
                       now: datetime, config_version: int | None = None) -> None:
        line_ids = [d.line_id for d in decisions]
        if not line_ids:
            return
        marks = ",".join("?" * len(line_ids))
        self.conn.execute(
            f"UPDATE routing_decisions SET current = 0 WHERE shop_id = ? AND order_id = ? AND current = 1 "
            f"AND line_id IN ({marks})",
            (shop_id, order_id, *line_ids),
        )
        self.conn.executemany(
            "INSERT INTO routing_decisions (shop_id, order_id, line_id, sku, quantity, node_id, rule, mode, "
            "region_id, explanation, exception, decided_at, current, config_version) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
            [(shop_id, order_id, d.line_id, d.sku, d.quantity, d.node_id, d.rule, mode, region_id, d.explanation,
              d.exception.value if d.exception else None, ts(now), config_version) for d in decisions],
        )
        # The metric counters move in the same transaction (imported here: shipment_store builds on this module).
        from connector.shipment_store import ShipmentStore
        ShipmentStore(self).count_decisions(shop_id, order_id, region_id, decisions)
        # Whatever changed the decisions (routing, a reroute, a person's choice), the store is
        # told in the same transaction's queue (imported here: handoff_store builds on this module).
        from connector.handoff_store import queue_decision_change
        queue_decision_change(self, shop_id, order_id, now)

    def retire_decisions(self, shop_id: str, order_id: str, line_ids: Iterable[str] | None = None) -> None:
        if line_ids is None:
            self.conn.execute(
                "UPDATE routing_decisions SET current = 0 WHERE shop_id = ? AND order_id = ? AND current = 1",
                (shop_id, order_id),
            )
            return
        line_ids = list(line_ids)
        if line_ids:
            marks = ",".join("?" * len(line_ids))
            self.conn.execute(
                f"UPDATE routing_decisions SET current = 0 WHERE shop_id = ? AND order_id = ? AND current = 1 "
                f"AND line_id IN ({marks})",
                (shop_id, order_id, *line_ids),
            )

    def current_decisions(self, shop_id: str, order_id: str) -> list[dict]:
        return self._dicts(
            "SELECT line_id, sku, quantity, node_id, rule, mode, region_id, explanation, exception, decided_at, "
            "config_version, dismissed_at, dismissed_by, dismissed_note "
            "FROM routing_decisions WHERE shop_id = ? AND order_id = ? AND current = 1 ORDER BY id",
            (shop_id, order_id),
        )

    def prefix_explanation(self, shop_id: str, order_id: str, line_id: str, prefix: str) -> None:
        self.conn.execute(
            "UPDATE routing_decisions SET explanation = ? || explanation WHERE shop_id = ? AND order_id = ? "
            "AND line_id = ? AND current = 1", (prefix, shop_id, order_id, line_id))

    def find_orders(self, order_ref: str, shop_id: str | None = None) -> list[dict]:
        """Orders whose id or number (with or without '#') is ``order_ref``."""
        bare = order_ref.lstrip("#")
        where = "AND shop_id = ?" if shop_id else ""
        params: tuple = (order_ref, bare, f"#{bare}") + ((shop_id,) if shop_id else ())
        return self._dicts(
            f"SELECT * FROM orders WHERE (id = ? OR number = ? OR number = ?) {where} ORDER BY shop_id, id",
            params,
        )

    def open_exceptions(self, shop_id: str | None = None) -> list[dict]:
        where, params = ("AND d.shop_id = ?", (shop_id,)) if shop_id else ("", ())
        return self._dicts(
            "SELECT d.shop_id, d.order_id, o.number, d.line_id, d.sku, d.quantity, d.exception, d.explanation, "
            "d.decided_at FROM routing_decisions d JOIN orders o ON o.shop_id = d.shop_id AND o.id = d.order_id "
            f"WHERE d.current = 1 AND d.exception IS NOT NULL AND d.dismissed_at IS NULL AND o.state = 'open' {where} "
            "ORDER BY d.decided_at, d.id",
            params,
        )

    def order_status_counts(self, shop_id: str) -> dict[str, int]:
        return dict(self._all("SELECT status, COUNT(*) FROM orders WHERE shop_id = ? GROUP BY status", (shop_id,)))

    def routed_summary(self, shop_id: str) -> list[tuple[str, str, int]]:
        """(region, node, orders) over current decisions."""
        return self._all(
            "SELECT COALESCE(region_id, '-'), node_id, COUNT(DISTINCT order_id) FROM routing_decisions "
            "WHERE shop_id = ? AND current = 1 AND node_id IS NOT NULL GROUP BY region_id, node_id "
            "ORDER BY region_id, node_id",
            (shop_id,),
        )

    # ------------------------------------------------------------ privacy

    def customer_data(self, shop_id: str, customer_id: str | None, order_ids: Sequence[str]) -> dict:
        marks = ",".join("?" * len(order_ids)) or "NULL"
        orders = self._dicts(
            "SELECT id, number, created_at, ship_country, ship_province, ship_postcode, state, status FROM orders "
            f"WHERE shop_id = ? AND (id IN ({marks}) OR (customer_id IS NOT NULL AND customer_id = ?))",
            (shop_id, *order_ids, customer_id),
        )
        for order in orders:
            order["lines"] = self.order_lines(shop_id, order["id"])
        return {"customer_id": customer_id, "orders": orders}

    def redact_customer(self, shop_id: str, customer_id: str | None, order_ids: Sequence[str]) -> int:
        """Blank what could identify the customer; keep the order's lines and decisions
        (no personal data) so stock accounting stays right. Returns orders redacted."""
        marks = ",".join("?" * len(order_ids)) or "NULL"
        with self.write():
            ids = [r[0] for r in self._all(
                f"SELECT id FROM orders WHERE shop_id = ? AND (id IN ({marks}) OR (customer_id IS NOT NULL AND customer_id = ?))",
                (shop_id, *order_ids, customer_id),
            )]
            all_ids = sorted(set(ids) | set(order_ids))
            if ids:
                id_marks = ",".join("?" * len(ids))
                self.conn.execute(
                    "UPDATE orders SET ship_province = NULL, ship_postcode = NULL, customer_id = NULL "
                    f"WHERE shop_id = ? AND id IN ({id_marks})",
                    (shop_id, *ids),
                )
            if all_ids:
                id_marks = ",".join("?" * len(all_ids))
                self.conn.execute(
                    "UPDATE webhook_inbox SET body = CAST('' AS BLOB), headers = '{}' "
                    f"WHERE shop_id = ? AND resource_id IN ({id_marks})",
                    (shop_id, *all_ids),
                )
                from connector.shipment_store import ShipmentStore  # builds on this module

                ShipmentStore(self).forget_tracking(shop_id, all_ids)
        return len(ids)

    def delete_shop_data(self, shop_id: str, keep_inbox_id: int | None = None) -> dict[str, int]:
        counts = {}
        with self.db.atomic():
            for table in ("routing_decisions", "reservations", "reserved_totals", "node_day_orders", "refunds",
                          "refund_lookups", "order_lines", "orders", "stock", "events", "forward_amendments",
                          "forward_jobs", "shipments", "sync_runs", "node_sync_state", "provider_poll_state",
                          "order_polls", "forecasts", "allocations", "opportunity_costs", "transfers",
                          "storefront_items", "push_state", "push_requests", "push_request_skus"):
                counts[table] = self.conn.execute(f"DELETE FROM {table} WHERE shop_id = ?", (shop_id,)).rowcount
            for table in ("shipment_facts", "metric_orders", "metric_parts", "metric_exception_lines", "metric_days",
                          "metric_stockouts"):
                counts[table] = self.conn.execute(f"DELETE FROM {table} WHERE shop_id = ?", (shop_id,)).rowcount
            # What the store and the shop were told (order numbers, titles), and the shop's planning.
            for table in ("store_handoffs", "handoff_refusals", "alert_items", "alert_log", "alert_outbox",
                          "node_sku_plans", "node_sku_plan_runs"):
                counts[table] = self.conn.execute(f"DELETE FROM {table} WHERE shop_id = ?", (shop_id,)).rowcount
            # The shop's users (their emails) and their login links go with it.
            counts["login_links"] = self.conn.execute(
                "DELETE FROM login_links WHERE user_id IN (SELECT id FROM users WHERE shop_id = ?)", (shop_id,)).rowcount
            counts["users"] = self.conn.execute("DELETE FROM users WHERE shop_id = ?", (shop_id,)).rowcount
            counts["webhook_inbox"] = self.conn.execute(
                "DELETE FROM webhook_inbox WHERE shop_id = ? AND id IS NOT ?", (shop_id, keep_inbox_id)
            ).rowcount
        return counts

    # ------------------------------------------------------------ sync

    def replace_stock_for_nodes(self, shop_id: str, per_node: Mapping[str, Iterable[tuple[str, int, int, int]]],
                                source: str, now: datetime) -> dict[str, int]:
        """One provider snapshot, all its nodes replaced together, or none."""
        with self.db.atomic():
            return {node_id: self.replace_node_stock(shop_id, node_id, rows, source, now)
                    for node_id, rows in per_node.items()}

    def record_sync(self, shop_id: str, node_id: str, provider: str, started: datetime, finished: datetime,
                    rows: int | None, outcome: str, error: str | None) -> None:
        with self.db.atomic():
            self.conn.execute(
                "INSERT INTO sync_runs (shop_id, node_id, provider, started_at, finished_at, rows, outcome, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (shop_id, node_id, provider, ts(started), ts(finished), rows, outcome, error),
            )
            if outcome == "ok":
                self.conn.execute(
                    "INSERT INTO node_sync_state (shop_id, node_id, last_ok_at, last_attempt_at, last_error, rows) "
                    "VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT DO UPDATE SET last_ok_at = excluded.last_ok_at, "
                    "last_attempt_at = excluded.last_attempt_at, last_error = NULL, rows = excluded.rows",
                    (shop_id, node_id, ts(started), ts(finished), rows),
                )
            else:
                self.conn.execute(
                    "INSERT INTO node_sync_state (shop_id, node_id, last_attempt_at, last_error) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO UPDATE SET last_attempt_at = excluded.last_attempt_at, "
                    "last_error = excluded.last_error",
                    (shop_id, node_id, ts(finished), error),
                )

    def sync_state(self, shop_id: str) -> dict[str, dict]:
        return {r["node_id"]: r for r in self._dicts("SELECT * FROM node_sync_state WHERE shop_id = ?", (shop_id,))}

    def sync_runs(self, shop_id: str | None = None, node_id: str | None = None, limit: int = 50) -> list[dict]:
        where, params = _where(shop_id=shop_id, node_id=node_id)
        return self._dicts(f"SELECT * FROM sync_runs {where} ORDER BY id DESC LIMIT ?", (*params, limit))

    def committed_by_node_sku(self, shop_id: str) -> dict[tuple[str, str], int]:
        return {(n, s): c for n, s, c in self._all("SELECT node_id, sku, committed FROM stock WHERE shop_id = ?",
                                                   (shop_id,))}

    def reserved_by_node_sku(self, shop_id: str, forwarded_only: bool = False) -> dict[tuple[str, str], int]:
        join = ("JOIN forward_jobs f ON f.shop_id = r.shop_id AND f.order_id = r.order_id AND f.node_id = r.node_id "
                "AND f.status IN ('sent', 'shipped')") if forwarded_only else ""
        rows = self._all(
            f"SELECT r.node_id, r.sku, SUM(r.quantity) FROM reservations r {join} "
            "WHERE r.shop_id = ? AND r.status = 'active' GROUP BY r.node_id, r.sku",
            (shop_id,),
        )
        return {(n, s): q for n, s, q in rows}

    # ------------------------------------------------------------ forwarding

    def add_forward_job(self, shop_id: str, order_id: str, node_id: str, provider: str, now: datetime) -> bool:
        """One job per (order, node), ever: a second routing of the same pair adds nothing
        (but makes a job cancelled before it was sent due again)."""
        cursor = self.conn.execute(
            "INSERT INTO forward_jobs (shop_id, order_id, node_id, provider, reference, status, attempts, "
            "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT DO UPDATE SET "
            "status = 'pending', next_attempt_at = excluded.next_attempt_at WHERE status = 'cancelled'",
            (shop_id, order_id, node_id, provider, forward_reference(shop_id, order_id, node_id), ts(now), ts(now)),
        )
        return cursor.rowcount == 1

    def claim_forward_jobs(self, now: datetime, limit: int, stale_claim_after_s: int = 600) -> list[dict]:
        """Claim due jobs atomically; a claim older than ``stale_claim_after_s`` (a process
        died mid-send) may be taken again — the adapters look up our reference before
        creating, so a retry never creates a second order."""
        stale = ts(datetime.fromtimestamp(now.timestamp() - stale_claim_after_s, UTC))
        with self.write():
            jobs = self._dicts(
                "SELECT * FROM forward_jobs WHERE (status = 'pending' AND next_attempt_at <= ?) "
                "OR (status = 'sending' AND claimed_at <= ?) ORDER BY id LIMIT ?",
                (ts(now), stale, limit),
            )
            self.conn.executemany(
                "UPDATE forward_jobs SET status = 'sending', claimed_at = ? WHERE id = ?",
                [(ts(now), job["id"]) for job in jobs],
            )
        return jobs

    def finish_forward_job(self, job_id: int, *, status: str, now: datetime, provider_order_id: str | None = None,
                           error: str | None = None, next_attempt_at: datetime | None = None,
                           sent_lines: Sequence[tuple[str, str, int]] | None = None) -> None:
        """``sent_lines``: (line_id, sku, quantity) the 3PL got, with status 'sent'."""
        with self.db.atomic():
            self.conn.execute(
                "UPDATE forward_jobs SET status = ?, attempts = attempts + 1, provider_order_id = "
                "COALESCE(?, provider_order_id), last_error = ?, next_attempt_at = ?, claimed_at = NULL, "
                "sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END, sent_lines = COALESCE(?, sent_lines) "
                "WHERE id = ?",
                (status, provider_order_id, error, ts(next_attempt_at) if next_attempt_at else None, status,
                 ts(now), json.dumps([list(line) for line in sent_lines]) if sent_lines is not None else None,
                 job_id),
            )

    def set_sent_lines(self, job_id: int, lines: Sequence[tuple[str, str, int]]) -> None:
        """What the 3PL's order holds now (after someone changed it there)."""
        self.conn.execute("UPDATE forward_jobs SET sent_lines = ? WHERE id = ?",
                          (json.dumps([list(line) for line in lines]), job_id))

    def lines_with_3pl(self, shop_id: str, order_id: str) -> dict[str, LineAt3pl]:
        """The order's lines a 3PL has, by line id: its job sent or shipped, or being sent
        right now (a change made meanwhile may not reach the 3PL, so it counts as made
        after). Lines not recorded yet (being sent, or sent before lines were recorded)
        are the ones routed to the job's node."""
        out: dict[str, LineAt3pl] = {}
        for job_id, node_id, status, sent_lines in self._all(
                "SELECT id, node_id, status, sent_lines FROM forward_jobs WHERE shop_id = ? AND order_id = ? "
                "AND status IN ('sending', 'sent', 'shipped')", (shop_id, order_id)):
            if sent_lines is not None:
                lines = json.loads(sent_lines)
            else:
                lines = [(d["line_id"], d["sku"], d["quantity"]) for d in self.current_decisions(shop_id, order_id)
                         if d["node_id"] == node_id]
            for line_id, sku, quantity in lines:
                out[line_id] = LineAt3pl(job_id, node_id, sku, quantity, status == "shipped")
        return out

    def note_amendment(self, shop_id: str, order_id: str, job_id: int, line_id: str, sku: str, sent: int,
                       wanted: int, now: datetime) -> bool:
        """A line the 3PL has now wants ``wanted`` units (0: removed or cancelled). Returns
        True when this is news; an older open note for the line is superseded."""
        if self._one("SELECT 1 FROM forward_amendments WHERE job_id = ? AND line_id = ? AND wanted = ? "
                     "AND resolved_at IS NULL", (job_id, line_id, wanted)):
            return False
        self.conn.execute(
            "UPDATE forward_amendments SET resolved_at = ?, resolution = 'superseded' "
            "WHERE job_id = ? AND line_id = ? AND resolved_at IS NULL", (ts(now), job_id, line_id))
        self.conn.execute(
            "INSERT INTO forward_amendments (shop_id, order_id, job_id, line_id, sku, sent, wanted, noted_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, line_id, wanted) DO UPDATE SET "
            "noted_at = excluded.noted_at, resolved_at = NULL, resolution = NULL",
            (shop_id, order_id, job_id, line_id, sku, sent, wanted, ts(now)))
        return True

    def open_amendments(self, shop_id: str | None = None, job_id: int | None = None) -> list[dict]:
        """Changes a 3PL has not been told about, with the job and the order's number."""
        filters = [(f"AND a.{column} = ?", value) for column, value in (("shop_id", shop_id), ("job_id", job_id))
                   if value is not None]
        return self._dicts(
            "SELECT a.id, a.shop_id, a.order_id, o.number, a.job_id, j.node_id, j.provider, j.provider_order_id, "
            "j.status AS job_status, a.line_id, a.sku, a.sent, a.wanted, a.noted_at FROM forward_amendments a "
            "JOIN forward_jobs j ON j.id = a.job_id LEFT JOIN orders o ON o.shop_id = a.shop_id AND o.id = a.order_id "
            f"WHERE a.resolved_at IS NULL {' '.join(c for c, _ in filters)} ORDER BY a.job_id, a.line_id",
            tuple(v for _, v in filters),
        )

    def resolve_amendments(self, job_id: int, resolution: str, now: datetime, *, line_id: str | None = None) -> int:
        """Close the job's open notes (or only ``line_id``'s); returns how many."""
        line = "AND line_id = ?" if line_id is not None else ""
        return self.conn.execute(
            f"UPDATE forward_amendments SET resolved_at = ?, resolution = ? WHERE job_id = ? {line} "
            "AND resolved_at IS NULL", (ts(now), resolution, job_id, *(() if line_id is None else (line_id,)))).rowcount

    def cancel_forward_jobs(self, shop_id: str, order_id: str, node_id: str | None = None) -> int:
        return self.conn.execute(
            "UPDATE forward_jobs SET status = 'cancelled' WHERE shop_id = ? AND order_id = ? AND status = 'pending' "
            "AND node_id = COALESCE(?, node_id)",
            (shop_id, order_id, node_id),
        ).rowcount

    def forward_jobs(self, shop_id: str | None = None, statuses: Sequence[str] | None = None,
                     order_id: str | None = None) -> list[dict]:
        where, params = _where(statuses, shop_id=shop_id, order_id=order_id)
        return self._dicts(f"SELECT * FROM forward_jobs {where} ORDER BY id", params)

    def hand_over_forwarded(self, shop_id: str, node_ids: Sequence[str], fetched_at: datetime,
                            now: datetime) -> int:
        """Orders the 3PL accepted before this inventory fetch began are inside its
        ``committed`` now: our reservations for them would count the units twice."""
        if not node_ids:
            return 0
        marks = ",".join("?" * len(node_ids))
        released = 0
        with self.write():
            jobs = self._all(
                f"SELECT id, order_id, node_id FROM forward_jobs WHERE shop_id = ? AND node_id IN ({marks}) "
                "AND status IN ('sent', 'shipped') AND handed_over_at IS NULL AND sent_at < ?",
                (shop_id, *node_ids, ts(fetched_at)),
            )
            for job_id, order_id, node_id in jobs:
                for reservation in self.active_reservations(shop_id, order_id):
                    if reservation.node_id == node_id:
                        self.release(reservation, shop_id, "handed over: counted in the 3PL's committed", now)
                        released += 1
                self.conn.execute("UPDATE forward_jobs SET handed_over_at = ? WHERE id = ?", (ts(now), job_id))
        return released

    # Personal data past its retention: deliveries already applied (or refused, or of no
    # interest), and orders' address details, except where a 3PL hand-over is still due
    # (it reads the address from the newest delivery). Failed deliveries keep their body:
    # it is the only copy of an order that was never applied.
    _RETAINED_BODIES = (
        # "+": not the shop's index, with which every batch reads the shop's whole inbox; by
        # (status, id) a batch reads on from where the last stopped. With that and the cut by
        # row id, 200,000 old deliveries and orders take 7 s instead of 99 s.
        "FROM webhook_inbox w WHERE +w.shop_id = ? AND w.received_at < ? "
        "AND w.status IN ('processed', 'ignored', 'rejected') AND length(w.body) > 0 "
        "AND NOT EXISTS (SELECT 1 FROM forward_jobs f WHERE f.shop_id = w.shop_id AND f.order_id = w.resource_id "
        "AND f.status IN ('pending', 'sending'))"
    )
    _RETAINED_ORDERS = (
        "FROM orders o WHERE o.shop_id = ? AND o.last_event_at < ? "
        "AND (o.ship_province IS NOT NULL OR o.ship_postcode IS NOT NULL OR o.customer_id IS NOT NULL) "
        "AND NOT EXISTS (SELECT 1 FROM forward_jobs f WHERE f.shop_id = o.shop_id AND f.order_id = o.id "
        "AND f.status IN ('pending', 'sending'))"
    )
    _RETAINED_EXPORTS = (
        "FROM events e WHERE e.shop_id = ? AND e.at < ? AND e.kind = 'privacy.data_request' "
        "AND e.detail <> '{\"minimised\": true}'"
    )

    def past_retention(self, shop_id: str, cutoff: datetime) -> dict[str, int]:
        """What ``minimise_past_retention`` would cut, counted."""
        return {name: self._one(f"SELECT COUNT(*) {sql}", (shop_id, ts(cutoff)))[0]
                for name, sql in (("bodies", self._RETAINED_BODIES), ("orders", self._RETAINED_ORDERS),
                                  ("exports", self._RETAINED_EXPORTS))}

    def minimise_past_retention(self, shop_id: str, cutoff: datetime, batch: int = 500) -> dict[str, int]:
        """Cuts personal data last touched before ``cutoff``: delivery bodies to nothing,
        orders' province, postcode and customer id to NULL (country and region stay, for
        the figures), data-request exports to a marker. Each batch is found by a read in
        key order from where the last one stopped (one pass over each table), then cut
        in its own short write transaction, which checks the conditions again: webhooks
        arriving meanwhile wait for the write lock only briefly, and a row that changed
        since it was read (a hand-over newly due) is left alone."""
        counts = {}
        for name, table, key, where, assignments in (
            ("bodies", "webhook_inbox", "w.id", self._RETAINED_BODIES, "body = CAST('' AS BLOB)"),
            ("orders", "orders", "o.id", self._RETAINED_ORDERS,
             "ship_province = NULL, ship_postcode = NULL, customer_id = NULL"),
            ("exports", "events", "e.id", self._RETAINED_EXPORTS, "detail = '{\"minimised\": true}'"),
        ):
            # An order id is unique within its shop; the other two ids are row ids.
            shop_scope = "shop_id = ? AND " if table == "orders" else ""
            counts[name] = 0
            after: int | str = "" if table == "orders" else 0
            while True:
                keys = [r[0] for r in self._all(f"SELECT {key} {where} AND {key} > ? ORDER BY {key} LIMIT ?",
                                                (shop_id, ts(cutoff), after, batch))]
                if not keys:
                    break
                after = keys[-1]
                with self.db.atomic():
                    counts[name] += self.conn.execute(
                        f"UPDATE {table} SET {assignments} WHERE {shop_scope}id IN "
                        f"(SELECT {key} {where} AND {key} IN ({','.join('?' * len(keys))}))",
                        (*([shop_id] if shop_scope else []), shop_id, ts(cutoff), *keys)).rowcount
                if len(keys) < batch:
                    break
        return counts

    def latest_order_body(self, shop_id: str, order_id: str) -> tuple[str, bytes] | None:
        """The newest stored order delivery (platform, raw body) — the address lives only there."""
        row = self._one(
            "SELECT platform, body FROM webhook_inbox WHERE shop_id = ? AND resource_id = ? AND status = 'processed' "
            "AND topic IN ('orders/create', 'orders/updated', 'order.created', 'order.updated', 'order.restored') "
            "AND length(body) > 0 ORDER BY id DESC LIMIT 1",
            (shop_id, order_id),
        )
        return (row[0], row[1]) if row else None

    # ------------------------------------------------------------ shipments

    def upsert_shipment(self, shop_id: str, provider: str, shipment, now: datetime) -> None:
        self.db["shipments"].upsert(
            {"shop_id": shop_id, "provider": provider, "provider_order_id": shipment.provider_order_id,
             "reference": shipment.reference, "status": shipment.status, "tracking_number": shipment.tracking_number,
             "carrier": shipment.carrier, "shipped_at": ts(shipment.shipped_at) if shipment.shipped_at else None,
             "delivered_at": ts(shipment.delivered_at) if shipment.delivered_at else None,
             "exception": int(shipment.exception), "exception_detail": shipment.exception_detail,
             "updated_at": ts(now)},
            pk=("shop_id", "provider", "provider_order_id"),
        )

    def forward_job(self, job_id: int) -> dict | None:
        rows = self._dicts("SELECT * FROM forward_jobs WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    def forward_job_by_reference(self, reference: str) -> dict | None:
        rows = self._dicts("SELECT * FROM forward_jobs WHERE reference = ?", (reference,))
        return rows[0] if rows else None

    def mark_forward_shipped(self, job_id: int) -> None:
        self.conn.execute("UPDATE forward_jobs SET status = 'shipped' WHERE id = ? AND status = 'sent'", (job_id,))

    def shipments_since(self, shop_id: str, provider: str) -> datetime | None:
        row = self._one("SELECT shipments_since FROM provider_poll_state WHERE shop_id = ? AND provider = ?",
                        (shop_id, provider))
        return parse_ts(row[0]) if row else None

    def set_shipments_since(self, shop_id: str, provider: str, since: datetime) -> None:
        self.conn.execute(
            "INSERT INTO provider_poll_state (shop_id, provider, shipments_since) VALUES (?, ?, ?) "
            "ON CONFLICT DO UPDATE SET shipments_since = excluded.shipments_since",
            (shop_id, provider, ts(since)),
        )

    # ------------------------------------------------------------ scheduler jobs

    def start_job_run(self, job_id: str, now: datetime) -> int:
        return self.conn.execute("INSERT INTO job_runs (job_id, started_at, outcome) VALUES (?, ?, 'running')",
                                 (job_id, ts(now))).lastrowid

    def finish_job_run(self, run_id: int, outcome: str, detail: str, now: datetime) -> None:
        self.conn.execute("UPDATE job_runs SET finished_at = ?, outcome = ?, detail = ? WHERE id = ?",
                          (ts(now), outcome, detail[:2000], run_id))

    def job_runs(self, limit: int = 50) -> list[dict]:
        return self._dicts("SELECT * FROM job_runs ORDER BY id DESC LIMIT ?", (limit,))

    # ------------------------------------------------------------ audit log

    def event(self, shop_id: str | None, kind: str, subject: str | None, detail: Mapping | None,
              now: datetime) -> None:
        self.conn.execute(
            "INSERT INTO events (shop_id, at, kind, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (shop_id, ts(now), kind, subject, json.dumps(detail or {}, default=str)),
        )

    def events(self, shop_id: str | None = None, kind: str | None = None, limit: int = 100) -> list[dict]:
        where, params = _where(shop_id=shop_id, kind=kind)
        rows = self._dicts(f"SELECT * FROM events {where} ORDER BY id DESC LIMIT ?", (*params, limit))
        for row in rows:
            row["detail"] = json.loads(row["detail"] or "{}")
        return rows

    # ------------------------------------------------------------ planning

    def sales(self, shop_id: str, since: datetime) -> list[tuple[str, str, str, int]]:
        """(sku, region, ordered at, units) of orders placed since ``since`` that were not cancelled:
        the demand history the forecast reads."""
        return self._all(
            "SELECT l.sku, o.region_id, o.created_at, l.quantity FROM orders o JOIN order_lines l "
            "ON l.shop_id = o.shop_id AND l.order_id = o.id WHERE o.shop_id = ? AND o.created_at >= ? "
            "AND o.state != 'cancelled' AND o.region_id IS NOT NULL AND l.sku IS NOT NULL AND l.sku != '' "
            "AND l.requires_shipping = 1 AND l.quantity > 0 AND l.fulfilled_by IS NULL",
            (shop_id, ts(since)),
        )

    def has_sku(self, shop_id: str, sku: str) -> bool:
        return self._one("SELECT 1 FROM stock WHERE shop_id = ? AND sku = ? LIMIT 1", (shop_id, sku)) is not None

    def stock_skus(self, shop_id: str) -> list[str]:
        return [r[0] for r in self._all("SELECT DISTINCT sku FROM stock WHERE shop_id = ? ORDER BY sku", (shop_id,))]

    def sellable_all(self, shop_id: str) -> dict[tuple[str, str], int]:
        """(node, sku) -> available minus our active reservations, for every SKU of the shop."""
        rows = self._all(
            "SELECT s.node_id, s.sku, s.available - COALESCE(r.quantity, 0) FROM stock s "
            "LEFT JOIN reserved_totals r ON r.shop_id = s.shop_id AND r.node_id = s.node_id AND r.sku = s.sku "
            "WHERE s.shop_id = ?",
            (shop_id,),
        )
        return {(node, sku): max(qty, 0) for node, sku, qty in rows}

    def reserved_totals(self, shop_id: str) -> dict[tuple[str, str], int]:
        return {(n, s): q for n, s, q in self._all(
            "SELECT node_id, sku, quantity FROM reserved_totals WHERE shop_id = ?", (shop_id,))}

    def save_forecasts(self, shop_id: str, rows: Iterable[tuple[str, str, float, float, str, int]],
                       now: datetime) -> None:
        """Replaces the shop's forecasts: rows are (sku, region, weekly, sigma, method, weeks of history)."""
        with self.db.atomic():
            self.conn.execute("DELETE FROM forecasts WHERE shop_id = ?", (shop_id,))
            self.conn.executemany(
                "INSERT INTO forecasts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ((shop_id, sku, region, weekly, sigma, method, weeks, ts(now))
                 for sku, region, weekly, sigma, method, weeks in rows),
            )

    def forecasts(self, shop_id: str, skus: Iterable[str] | None = None) -> list[dict]:
        """The shop's stored forecasts, or only those of ``skus``."""
        if skus is None:
            return self._dicts("SELECT * FROM forecasts WHERE shop_id = ? ORDER BY sku, region_id", (shop_id,))
        return self._by_skus(self._dicts, "SELECT * FROM forecasts WHERE shop_id = ? AND sku IN ({marks}) "
                                          "ORDER BY sku, region_id", shop_id, skus)

    def has_forecasts(self, shop_id: str) -> bool:
        return self._one("SELECT 1 FROM forecasts WHERE shop_id = ? LIMIT 1", (shop_id,)) is not None

    def save_allocation(self, shop_id: str, skus: Iterable[str], units: Iterable[tuple[str, str, str, int]],
                        opportunity: Iterable[tuple[str, str, float]], now: datetime) -> None:
        """Replaces the allocation of ``skus``: units are (sku, node, region, units), opportunity
        (sku, node, unit cost). SKUs not named keep their rows."""
        skus = list(skus)
        stamp = ts(now)
        with self.db.atomic():
            self.conn.executemany("DELETE FROM allocations WHERE shop_id = ? AND sku = ?",
                                  ((shop_id, sku) for sku in skus))
            self.conn.executemany("DELETE FROM opportunity_costs WHERE shop_id = ? AND sku = ?",
                                  ((shop_id, sku) for sku in skus))
            self.conn.executemany(
                "INSERT INTO allocations VALUES (?, ?, ?, ?, ?, ?)",
                ((shop_id, sku, node, region, n, stamp) for sku, node, region, n in units if n > 0),
            )
            self.conn.executemany(
                "INSERT INTO opportunity_costs VALUES (?, ?, ?, ?)",
                ((shop_id, sku, node, cost) for sku, node, cost in opportunity if cost > 0),
            )

    def allocations(self, shop_id: str, skus: Iterable[str] | None = None) -> list[tuple[str, str, str, int]]:
        """(sku, node, region, units) of the latest allocation."""
        if skus is None:
            return self._all("SELECT sku, node_id, region_id, units FROM allocations WHERE shop_id = ?", (shop_id,))
        return self._by_skus(self._all, "SELECT sku, node_id, region_id, units FROM allocations WHERE shop_id = ? "
                                        "AND sku IN ({marks})", shop_id, skus)

    def allocated_units(self, shop_id: str, sku: str, region_id: str) -> list[tuple[str, int, str]]:
        """(node, units, computed at) a region may sell of a SKU, most units first."""
        return self._all(
            "SELECT node_id, units, computed_at FROM allocations WHERE shop_id = ? AND sku = ? AND region_id = ? "
            "ORDER BY units DESC, node_id", (shop_id, sku, region_id))

    def opportunity_costs(self, shop_id: str, skus: Iterable[str]) -> dict[tuple[str, str], float]:
        """(node, sku) -> the allocation's dual price of a unit there (absent: 0)."""
        rows = self._by_skus(self._all, "SELECT sku, node_id, unit_cost FROM opportunity_costs WHERE shop_id = ? "
                                        "AND sku IN ({marks})", shop_id, skus)
        return {(node, sku): cost for sku, node, cost in rows}

    # ------------------------------------------------------------ transfers

    def add_transfer(self, shop_id: str, *, sku: str, from_node: str, to_node: str, units: int, unit_cost: float,
                     lead_days: int, status: str, emergency: bool, approval_reason: str, now: datetime) -> int:
        return self.conn.execute(
            "INSERT INTO transfers (shop_id, sku, from_node, to_node, units, unit_cost, lead_days, status, emergency, "
            "approval_reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (shop_id, sku, from_node, to_node, units, unit_cost, lead_days, status, int(emergency), approval_reason,
             ts(now), ts(now)),
        ).lastrowid

    def transfer(self, transfer_id: int) -> dict | None:
        rows = self._dicts("SELECT * FROM transfers WHERE id = ?", (transfer_id,))
        return rows[0] if rows else None

    def transfers(self, shop_id: str | None = None, statuses: Sequence[str] | None = None) -> list[dict]:
        where, params = _where(statuses, shop_id=shop_id)
        return self._dicts(f"SELECT * FROM transfers {where} ORDER BY id", params)

    def set_transfer_status(self, transfer_id: int, *, expected: str, status: str, now: datetime,
                            by: str | None = None, note: str | None = None, units: int | None = None) -> bool:
        """Moves a transfer on only from the status the caller saw (two people approving at once
        change it once). ``units``: what is really moving (fewer shipped than planned)."""
        stamp = ts(now)
        extra = {"in_transit": ", shipped_at = :now", "received": ", received_at = :now"}.get(status, "")
        cursor = self.conn.execute(
            f"UPDATE transfers SET status = :status, updated_at = :now, decided_by = COALESCE(:by, decided_by), "
            f"note = COALESCE(:note, note), units = COALESCE(:units, units){extra} WHERE id = :id "
            "AND status = :expected",
            {"status": status, "now": stamp, "by": by, "note": note, "id": transfer_id, "expected": expected,
             "units": units},
        )
        return cursor.rowcount == 1

    def inbound_units(self, shop_id: str, statuses: Sequence[str]) -> dict[tuple[str, str], int]:
        """(node, sku) -> units on their way to the node in transfers with these statuses."""
        rows = self._all(
            f"SELECT to_node, sku, SUM(units) FROM transfers WHERE shop_id = ? "
            f"AND status IN ({','.join('?' * len(statuses))}) GROUP BY to_node, sku", (shop_id, *statuses))
        return {(n, s): q for n, s, q in rows}

    def adjust_stock(self, shop_id: str, node_id: str, sku: str, delta: int, source: str, now: datetime) -> None:
        """Moves a node's on hand and available by ``delta`` (a shipped or received transfer)
        until the node's next count or sync replaces the row."""
        self.conn.execute(
            "INSERT INTO stock (shop_id, sku, node_id, on_hand, committed, available, updated_at, source) "
            "VALUES (?, ?, ?, MAX(?, 0), 0, MAX(?, 0), ?, ?) ON CONFLICT DO UPDATE SET "
            "on_hand = MAX(on_hand + ?, 0), available = MAX(available + ?, 0), updated_at = excluded.updated_at",
            (shop_id, sku, node_id, delta, delta, ts(now), source, delta, delta),
        )

    # ------------------------------------------------------------ storefront push

    def storefront_items(self, shop_id: str, skus: Iterable[str] | None = None) -> dict[str, tuple[str, str | None]]:
        rows = self._all("SELECT sku, ref, parent_ref FROM storefront_items WHERE shop_id = ?", (shop_id,))
        wanted = None if skus is None else set(skus)
        return {sku: (ref, parent) for sku, ref, parent in rows if wanted is None or sku in wanted}

    def save_storefront_items(self, shop_id: str, items: Mapping[str, tuple[str, str | None]], now: datetime) -> None:
        with self.db.atomic():
            self.conn.executemany(
                "INSERT INTO storefront_items (shop_id, sku, ref, parent_ref, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET ref = excluded.ref, parent_ref = excluded.parent_ref, "
                "updated_at = excluded.updated_at",
                ((shop_id, sku, ref, parent, ts(now)) for sku, (ref, parent) in items.items()),
            )

    def push_state(self, shop_id: str) -> dict[tuple[str, str], tuple[int, int, int, datetime]]:
        """(sku, location) -> (quantity we last set, the SKU's reservations then, units held back
        then, when)."""
        return {(s, loc): (q, r, h, parse_ts(at)) for s, loc, q, r, h, at in self._all(
            "SELECT sku, location, quantity, reserved_at_push, held, pushed_at FROM push_state WHERE shop_id = ?",
            (shop_id,))}

    def save_push_state(self, shop_id: str, rows: Iterable[tuple[str, str, int, int, int]], now: datetime) -> None:
        """rows: (sku, location, quantity now at the store, the SKU's reservations now, units held back)."""
        with self.db.atomic():
            self.conn.executemany(
                "INSERT INTO push_state (shop_id, sku, location, quantity, reserved_at_push, held, pushed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET quantity = excluded.quantity, "
                "reserved_at_push = excluded.reserved_at_push, held = excluded.held, pushed_at = excluded.pushed_at",
                ((shop_id, sku, loc, q, r, h, ts(now)) for sku, loc, q, r, h in rows),
            )

    def request_push(self, shop_id: str, skus: Iterable[str], reason: str, due_at: datetime, now: datetime) -> None:
        """Debounce: the first request sets when the push runs; later ones only add SKUs, so a
        steady stream of orders still pushes every debounce interval. ``skus`` empty = all."""
        skus = set(skus)
        # Runs once per processed order: two statements, no read-modify-write.
        self.conn.execute(
            "INSERT INTO push_requests (shop_id, due_at, all_skus, reasons, requested_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET all_skus = MAX(all_skus, excluded.all_skus), reasons = CASE "
            "WHEN instr(',' || reasons || ',', ',' || excluded.reasons || ',') THEN reasons "
            "ELSE reasons || ',' || excluded.reasons END",
            (shop_id, ts(due_at), 0 if skus else 1, reason, ts(now)),
        )
        if skus:
            self.conn.executemany("INSERT OR IGNORE INTO push_request_skus (shop_id, sku) VALUES (?, ?)",
                                  ((shop_id, sku) for sku in skus))

    def take_due_pushes(self, now: datetime) -> list[tuple[str, list[str] | None, list[str]]]:
        """Removes and returns the requests due by ``now``: (shop, SKUs or None for all, reasons)."""
        taken = []
        with self.db.atomic():
            rows = self._all("SELECT shop_id, all_skus, reasons FROM push_requests WHERE due_at <= ? ORDER BY shop_id",
                             (ts(now),))
            for shop_id, all_skus, reasons in rows:
                skus = [r[0] for r in self._all("SELECT sku FROM push_request_skus WHERE shop_id = ? ORDER BY sku",
                                                (shop_id,))]
                self.conn.execute("DELETE FROM push_request_skus WHERE shop_id = ?", (shop_id,))
                self.conn.execute("DELETE FROM push_requests WHERE shop_id = ?", (shop_id,))
                taken.append((shop_id, None if all_skus else skus, reasons.split(",")))
        return taken

    def pending_pushes(self) -> list[dict]:
        return self._dicts("SELECT * FROM push_requests ORDER BY due_at")


def _where(statuses: Sequence[str] | None = None, **equal: str | None) -> tuple[str, list]:
    """A WHERE clause for a listing: ``column = ?`` for each filter given (None or
    empty means no filter on it) and ``status IN (...)`` for ``statuses``. Column
    names come from the calling method, never from input."""
    clauses, params = [], []
    for column, value in equal.items():
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    if statuses:
        clauses.append(f"status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params
