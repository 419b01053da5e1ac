"""The store against real SQLite files: migrations, pragmas, atomic stock
replacement, reservation bookkeeping, and two processes racing for stock."""
from __future__ import annotations

import json
import os
import random
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from connector import sandbox
from connector.bootstrap import build
from connector.config import settings_from_dict
from connector.store import ActiveReservation, Store

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
SHOPIFY_SECRET, WOO_SECRET = "shp-secret", "woo-secret"
ORDERS = 400


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "connector.db"


@pytest.fixture
def store(db_path):
    store = Store.open(db_path)
    store.migrate()
    yield store
    store.close()


def test_migrations_are_named_and_applied_once(db_path):
    store = Store.open(db_path)
    names = ["0001_core", "0002_sync_forwarding_jobs", "0003_stock_keyed_by_sku", "0004_planning_transfers_push",
             "0005_refund_lookups", "0006_order_polls", "0007_order_poll_webhooks", "0008_forward_amendments",
             "0009_line_fulfilled_by", "0010_shop_configs", "0011_users", "0012_pending_connections", "0013_shopify_tokens",
             "0014_shipment_facts", "0015_store_handoffs", "0016_dismissed_exceptions", "0017_node_sku_plans",
             "0018_alerts", "0019_over_reserved_lookups"]
    assert store.migrate() == names
    assert store.migrate() == []
    assert store.applied_migrations() == names
    tables = set(store.db.table_names())
    assert {"shops", "regions", "nodes", "stock", "webhook_inbox", "orders", "order_lines", "routing_decisions",
            "reservations", "reserved_totals", "events", "forecasts", "allocations", "opportunity_costs",
            "transfers", "storefront_items", "push_state", "push_requests", "users", "login_attempts",
            "login_links", "shopify_tokens"} <= tables
    store.close()


def test_every_shop_data_table_is_keyed_by_shop(store):
    for table in ("regions", "nodes", "stock", "webhook_inbox", "orders", "order_lines", "routing_decisions",
                  "reservations", "reserved_totals", "node_day_orders", "refunds", "events", "sync_runs",
                  "node_sync_state", "forward_jobs", "shipments", "provider_poll_state"):
        assert "shop_id" in store.db[table].columns_dict, table


def test_shop_redaction_deletes_from_every_table_keyed_by_shop(store):
    """A table added later is not forgotten: shop/redact must empty every shop-keyed
    table but the configuration's own (regions and nodes are rewritten from the config;
    the shop's configuration document and its history stay: uninstalling deactivates it)."""
    keyed = {name for name in store.db.table_names() if "shop_id" in store.db[name].columns_dict}
    assert keyed - set(store.delete_shop_data("nobody")) == {"regions", "nodes", "shops", "shop_configs",
                                                            "shop_config_history"} & keyed


def test_stock_rows_survive_the_rekeying_migration(db_path):
    from connector.store import migrations

    store = Store.open(db_path)
    migrations.apply(store.db, stop_before="0003_stock_keyed_by_sku")
    store.conn.execute("INSERT INTO stock (shop_id, node_id, sku, on_hand, committed, available, updated_at, source, "
                       "raw) VALUES ('s', 'n1', 'A', 5, 1, 4, '2026-11-22T00:00:00+00:00', 'manual', '{}')")
    assert store.migrate() == ["0003_stock_keyed_by_sku", "0004_planning_transfers_push",
             "0005_refund_lookups", "0006_order_polls", "0007_order_poll_webhooks", "0008_forward_amendments",
             "0009_line_fulfilled_by", "0010_shop_configs", "0011_users", "0012_pending_connections", "0013_shopify_tokens",
             "0014_shipment_facts", "0015_store_handoffs", "0016_dismissed_exceptions", "0017_node_sku_plans",
             "0018_alerts", "0019_over_reserved_lookups"]
    assert store.sellable("s", ["A"]) == {("n1", "A"): 4}
    assert store.db["stock"].pks == ["shop_id", "sku", "node_id"]
    assert [i.columns for i in store.db["stock"].indexes if i.origin != "pk"] == []  # no second index to maintain
    store.close()


def test_connection_uses_wal_busy_timeout_and_full_sync(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


# ---------------------------------------------------------------- file modes (issue 15, point 23)

DB_FILES = ("", "-wal", "-shm")


@pytest.fixture
def loose_umask():
    """The usual 022 umask: left alone, SQLite would create world-readable files."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(db_path: Path) -> dict[str, int]:
    return {suffix: stat.S_IMODE(os.stat(f"{db_path}{suffix}").st_mode)
            for suffix in DB_FILES if os.path.exists(f"{db_path}{suffix}")}


def test_a_new_database_and_its_wal_and_shm_are_owner_only(db_path, loose_umask):
    store = Store.open(db_path)
    try:
        store.migrate()
        sandbox.seed_stock(store, NOW, source="test")  # writes: the WAL fills
        assert modes(db_path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        store.close()
    assert modes(db_path)[""] == 0o600


def test_a_wal_created_later_by_another_connection_is_owner_only(db_path, loose_umask):
    store = Store.open(db_path)
    store.migrate()
    store.close()  # the last connection removes the WAL and the SHM
    assert modes(db_path) == {"": 0o600}
    os.umask(0)  # whatever that other process's umask
    other = sqlite3.connect(db_path)  # not through Store.open: e.g. a sqlite3 shell
    try:
        other.execute("CREATE TABLE scratch (x)")
        other.execute("INSERT INTO scratch VALUES (1)")
        other.commit()
        assert modes(db_path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
    finally:
        other.close()


def test_an_existing_world_readable_database_is_tightened_on_open(db_path, loose_umask):
    old = sqlite3.connect(db_path)  # a database from before: 0644, WAL and SHM too
    old.execute("PRAGMA journal_mode = WAL")
    old.execute("CREATE TABLE scratch (x)")
    old.execute("INSERT INTO scratch VALUES (1)")
    old.commit()
    try:
        assert modes(db_path) == {"": 0o644, "-wal": 0o644, "-shm": 0o644}
        store = Store.open(db_path)
        try:
            store.migrate()
            assert modes(db_path) == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
        finally:
            store.close()
    finally:
        old.close()


def test_replace_node_stock_is_all_or_nothing(store):
    rows = [("A", 5, 1, 4), ("B", 2, 0, 2)]
    assert store.replace_node_stock("s", "n1", rows, "test", NOW) == 2
    broken = [("C", 1, 0, 1), ("C", 1, 0, 1)]  # duplicate key fails mid-way
    with pytest.raises(sqlite3.IntegrityError):
        store.replace_node_stock("s", "n1", broken, "test", NOW)
    assert [(r["sku"], r["available"]) for r in store.stock_rows("s")] == [("A", 4), ("B", 2)]


def test_sellable_subtracts_active_reservations_and_never_goes_below_zero(store):
    store.set_stock("s", "n1", "A", on_hand=5, committed=0, available=5, source="manual", now=NOW)
    store.reserve("s", "o1", "l1", "n1", "A", 3, NOW)
    assert store.sellable("s", ["A"]) == {("n1", "A"): 2}
    store.set_stock("s", "n1", "A", on_hand=2, committed=0, available=2, source="manual", now=NOW)  # 3PL lost units
    assert store.sellable("s", ["A"]) == {("n1", "A"): 0}
    reservation = store.active_reservations("s", "o1")[0]
    store.release(reservation, "s", "cancelled", NOW)
    assert store.sellable("s", ["A"]) == {("n1", "A"): 2}
    assert store.reservation_totals_drift() == []


def test_one_active_reservation_per_line(store):
    store.reserve("s", "o1", "l1", "n1", "A", 1, NOW)
    with pytest.raises(sqlite3.IntegrityError):
        store.reserve("s", "o1", "l1", "n2", "A", 1, NOW)


def test_reserved_totals_cannot_go_negative(store):
    store.reserve("s", "o1", "l1", "n1", "A", 1, NOW)
    ghost = ActiveReservation(id=999, line_id="l9", node_id="n1", sku="A", quantity=5)
    with pytest.raises(sqlite3.IntegrityError, match="below zero"):
        store.release(ghost, "s", "bug", NOW)


def test_write_transaction_rolls_back_on_error(store):
    with pytest.raises(RuntimeError):
        with store.write():
            store.reserve("s", "o1", "l1", "n1", "A", 1, NOW)
            raise RuntimeError("boom")
    assert store.active_reservations("s", "o1") == []
    assert store.sellable("s", ["A"]) == {}


def test_inbox_deduplicates_per_shop(store):
    common = dict(platform="shopify", topic="orders/create", webhook_id="w", event_id=None, resource_id="1",
                  headers={}, body=b"{}", received_at=NOW)
    first = store.insert_webhook(shop_id="a", dedupe_key="k", **common)
    again = store.insert_webhook(shop_id="a", dedupe_key="k", **common)
    other_shop = store.insert_webhook(shop_id="b", dedupe_key="k", **common)
    assert first == (first[0], False) and again == (first[0], True)
    assert other_shop[1] is False and other_shop[0] != first[0]


def test_a_group_of_deliveries_undoes_only_the_row_that_fails(store):
    common = dict(platform="shopify", webhook_id="w", event_id=None, resource_id="1", headers={"X-A": "b"},
                  body=b"{}", received_at=NOW)
    results = store.insert_webhooks([
        dict(shop_id="a", topic="orders/create", dedupe_key="k1", **common),
        dict(shop_id="a", topic=None, dedupe_key="k2", **common),  # NOT NULL: this statement fails
        dict(shop_id="a", topic="orders/create", dedupe_key="k1", **common),  # a duplicate in the same group
        dict(shop_id="a", topic="orders/create", dedupe_key="k3", **common),
    ])

    assert results[0] == (results[0][0], False) and results[2] == (results[0][0], True)
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert results[3][1] is False and results[3][0] != results[0][0]
    assert not store.conn.in_transaction
    assert store._all("SELECT dedupe_key, headers FROM webhook_inbox ORDER BY id") == [
        ("k1", '{"X-A": "b"}'), ("k3", '{"X-A": "b"}')]


def test_a_group_of_one_is_a_single_autocommit_insert_and_a_bad_row_fails_alone(store):
    common = dict(shop_id="a", platform="shopify", webhook_id="w", event_id=None, resource_id="1", headers={},
                  body=b"{}", received_at=NOW)
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        [stored] = store.insert_webhooks([dict(topic="orders/create", dedupe_key="k1", **common)])
        [refused] = store.insert_webhooks([dict(topic=None, dedupe_key="k2", **common)])  # NOT NULL
        [again] = store.insert_webhooks([dict(topic="orders/create", dedupe_key="k1", **common)])
    finally:
        store.conn.set_trace_callback(None)

    assert stored[1] is False and again == (stored[0], True)
    assert isinstance(refused, sqlite3.IntegrityError) and not store.conn.in_transaction
    assert not [s for s in statements if s.split()[0] in ("BEGIN", "COMMIT", "SAVEPOINT")]
    assert store._all("SELECT dedupe_key FROM webhook_inbox") == [("k1",)]


def test_a_write_transactions_only_connection_still_waits_for_the_write_lock(db_path, store):
    writer = Store.open(db_path).write_transactions_only()
    common = dict(shop_id="a", platform="shopify", topic="orders/create", webhook_id="w", event_id=None,
                  resource_id="1", headers={}, body=b"{}", received_at=NOW)
    try:
        store.conn.execute("BEGIN IMMEDIATE")  # another connection holds the write lock for a while
        threading.Timer(0.2, lambda: store.conn.execute("COMMIT")).start()
        started = time.monotonic()
        assert writer.insert_webhooks([dict(dedupe_key="k1", **common)])[0][1] is False
        assert time.monotonic() - started >= 0.15
        assert writer._one("PRAGMA busy_timeout") == (0,)  # SQLite's own handler stays off
    finally:
        writer.close()
    assert store.count_webhooks() == 1


# ---------------------------------------------------------------- two processes at once

_WORKER = textwrap.dedent(
    """
    import pathlib, sys, time
    from datetime import datetime
    from connector import sandbox
    from connector.bootstrap import build
    from connector.config import settings_from_dict

    db, now, ready, go = sys.argv[1], datetime.fromisoformat(sys.argv[2]), sys.argv[3], sys.argv[4]
    settings = settings_from_dict(sandbox.demo_config(now, db, "shp-secret", "woo-secret"))
    container = build(settings, clock=lambda: now)
    store = container.open_store()
    pathlib.Path(ready).touch()
    deadline = time.monotonic() + 60
    while not pathlib.Path(go).exists() and time.monotonic() < deadline:  # start together
        time.sleep(0.001)
    report = container.inbox.process(store)
    print(report.processed, report.failed, report.retrying)
    """
)


def test_two_processes_draining_at_once_never_oversell_and_process_each_once(tmp_path, db_path):
    settings = settings_from_dict(sandbox.demo_config(NOW, str(db_path), SHOPIFY_SECRET, WOO_SECRET))
    container = build(settings, clock=lambda: NOW)
    container.init_database()
    store = container.open_store()
    # One SKU, one node with 40 units, and 400 single-unit orders wanting it.
    store.set_stock(sandbox.SHOPIFY_SHOP, "central", "ZINE-04", on_hand=40, committed=0, available=40,
                    source="manual", now=NOW)
    rng = random.Random(3)
    for i in range(ORDERS):
        payload = sandbox.shopify_order(rng, 5_000 + i, 2_000 + i, NOW, lines=1)
        payload["line_items"][0].update(sku="ZINE-04", quantity=1, current_quantity=1)
        payload["shipping_address"].update(country_code="US", province_code="TX", zip="78704")
        hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload)
        outcome = container.inbox.ingest(store, "shopify", hook.body, hook.headers)
        assert outcome.status == 200
    store.close()

    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    go = tmp_path / "go"
    workers = [
        subprocess.Popen([sys.executable, str(script), str(db_path), NOW.isoformat(), str(tmp_path / f"ready{i}"),
                          str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outputs = [w.communicate(timeout=120) for w in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
    processed = [int(out.split()[0]) for out, _ in outputs]
    assert sum(processed) == ORDERS  # each delivery applied by exactly one of the two
    assert min(processed) > 0, f"the two processes did not overlap: {processed}"

    store = Store.open(db_path)
    try:
        rows = store._all("SELECT status, attempts FROM webhook_inbox")
        assert rows == [("processed", 1)] * ORDERS
        reserved = store._one("SELECT SUM(quantity), COUNT(*) FROM reservations WHERE status = 'active'")
        assert reserved == (40, 40)
        assert store.sellable(sandbox.SHOPIFY_SHOP, ["ZINE-04"]) == {("central", "ZINE-04"): 0}
        exceptions = store.open_exceptions(sandbox.SHOPIFY_SHOP)
        assert len(exceptions) == ORDERS - 40 and {e["exception"] for e in exceptions} == {"partial_stock"}
        assert store.reservation_totals_drift() == []
    finally:
        store.close()


def test_killed_mid_batch_commits_nothing_and_the_next_run_finishes(tmp_path, db_path):
    """A process that dies inside the processing transaction leaves the batch pending."""
    settings = settings_from_dict(sandbox.demo_config(NOW, str(db_path), SHOPIFY_SECRET, WOO_SECRET))
    container = build(settings, clock=lambda: NOW)
    container.init_database()
    store = container.open_store()
    store.set_stock(sandbox.SHOPIFY_SHOP, "central", "ZINE-04", on_hand=10, committed=0, available=10,
                    source="manual", now=NOW)
    payload = sandbox.shopify_order(random.Random(1), 77, 1077, NOW, lines=1)
    payload["line_items"][0].update(sku="ZINE-04", quantity=2, current_quantity=2)
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload)
    container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    store.close()

    crash = textwrap.dedent(
        """
        import os, sys
        from datetime import datetime
        from connector import sandbox
        from connector.bootstrap import build
        from connector.config import settings_from_dict
        from connector.store import Store

        db, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
        settings = settings_from_dict(sandbox.demo_config(now, db, "shp-secret", "woo-secret"))
        container = build(settings, clock=lambda: now)
        original = Store.mark_webhook
        def die_after_work(self, *a, **kw):
            original(self, *a, **kw)
            os._exit(9)  # killed after routing + reserving, before COMMIT
        Store.mark_webhook = die_after_work
        container.inbox.process(container.open_store())
        """
    )
    script = tmp_path / "crash.py"
    script.write_text(crash)
    result = subprocess.run([sys.executable, str(script), str(db_path), NOW.isoformat()], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 9, result.stderr

    store = container.open_store()
    try:
        assert store._all("SELECT status, attempts FROM webhook_inbox") == [("pending", 0)]
        assert store.active_reservations(sandbox.SHOPIFY_SHOP, "77") == []
        report = container.inbox.process(store)
        assert report.processed == 1
        assert [r.quantity for r in store.active_reservations(sandbox.SHOPIFY_SHOP, "77")] == [2]
        assert json.loads(store.webhook(1)["headers"])["X-Shopify-Topic"] == "orders/create"
    finally:
        store.close()


def test_push_requests_debounce_and_merge(store):
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
    store.request_push("s", ["A", "B"], "orders", t0 + timedelta(seconds=5), t0)
    # A later request does not push the due time back (a steady stream still pushes) and merges SKUs.
    store.request_push("s", ["B", "C"], "orders", t0 + timedelta(seconds=9), t0 + timedelta(seconds=4))
    store.request_push("s", ["D"], "transfer received", t0 + timedelta(seconds=4), t0 + timedelta(seconds=4))
    store.request_push("all", [], "sync", t0, t0)
    store.request_push("all", ["X"], "orders", t0, t0)
    assert store.take_due_pushes(t0 + timedelta(seconds=4)) == [("all", None, ["sync", "orders"])]
    assert store.take_due_pushes(t0 + timedelta(seconds=5)) == [("s", ["A", "B", "C", "D"],
                                                                   ["orders", "transfer received"])]
    assert store.take_due_pushes(t0 + timedelta(days=1)) == []
