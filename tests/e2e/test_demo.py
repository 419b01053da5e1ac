"""``connector demo``: the whole path on sandbox data, through a real HTTP server on
127.0.0.1, its background inbox worker, processing and the summary."""
from __future__ import annotations

import re
import sqlite3
import time

import pytest

from connector.cli import main
from tests.conftest import SHOPIFY_SHOP, WOO_SHOP


def run_demo(runner, directory, *extra):
    started = time.monotonic()
    result = runner.invoke(main, ["demo", "--orders", "60", "--dir", str(directory), *extra])
    return result, time.monotonic() - started


def db_counts(path) -> dict:
    conn = sqlite3.connect(path)
    try:
        inbox = dict(conn.execute("SELECT status, COUNT(*) FROM webhook_inbox GROUP BY status").fetchall())
        orders = dict(conn.execute("SELECT shop_id, COUNT(*) FROM orders GROUP BY shop_id").fetchall())
        decided = dict(conn.execute(
            "SELECT shop_id, COUNT(*) FROM routing_decisions WHERE current = 1 AND node_id IS NOT NULL "
            "GROUP BY shop_id").fetchall())
        drift = conn.execute(
            "SELECT COUNT(*) FROM reserved_totals t WHERE t.quantity != (SELECT COALESCE(SUM(r.quantity), 0) "
            "FROM reservations r WHERE r.shop_id = t.shop_id AND r.node_id = t.node_id AND r.sku = t.sku "
            "AND r.status = 'active')").fetchone()[0]
        unreserved = conn.execute(
            "SELECT COUNT(*) FROM routing_decisions d JOIN orders o ON o.shop_id = d.shop_id AND o.id = d.order_id "
            "WHERE d.current = 1 AND d.node_id IS NOT NULL AND o.state = 'open' AND NOT EXISTS (SELECT 1 FROM "
            "reservations r WHERE r.shop_id = d.shop_id AND r.order_id = d.order_id AND r.line_id = d.line_id "
            "AND r.status = 'active')").fetchone()[0]
    finally:
        conn.close()
    return {"inbox": inbox, "orders": orders, "decided": decided, "drift": drift, "unreserved": unreserved}


def test_demo_end_to_end(runner, tmp_path):
    result, elapsed = run_demo(runner, tmp_path / "demo")

    assert result.exit_code == 0, result.output
    assert elapsed < 10
    out = result.stdout
    assert "Traceback" not in result.output
    assert f"{SHOPIFY_SHOP} (shopify)" in out and f"{WOO_SHOP} (woocommerce)" in out
    assert re.search(rf"^{SHOPIFY_SHOP}: orders by status: .*routed \d+", out, re.M), out
    assert re.search(rf"^{WOO_SHOP}: orders by status: .*routed \d+", out, re.M), out
    assert "WooCommerce ping answered 200" in out
    assert "reservation totals consistent: yes" in out
    assert re.search(r"^inbox: \d+ processed, .* 0 failed, 0 pending$", out, re.M), out

    db = tmp_path / "demo" / "connector.db"
    assert db.exists()
    counts = db_counts(db)
    assert counts["inbox"].get("processed", 0) >= 50
    assert counts["inbox"].get("pending", 0) == 0 and counts["inbox"].get("failed", 0) == 0
    assert counts["orders"].get(SHOPIFY_SHOP, 0) > 0 and counts["orders"].get(WOO_SHOP, 0) > 0
    assert counts["decided"].get(SHOPIFY_SHOP, 0) > 0 and counts["decided"].get(WOO_SHOP, 0) > 0
    assert counts["drift"] == 0 and counts["unreserved"] == 0
    processed = int(re.search(r"^inbox: (\d+) processed", out, re.M).group(1))
    assert processed == counts["inbox"]["processed"]


def test_demo_with_redeliveries_forgery_and_cancellation(runner, tmp_path):
    # seed 6 with 60 orders: two redeliveries, one forged body, one cancellation
    result, elapsed = run_demo(runner, tmp_path / "demo6", "--seed", "6")

    assert result.exit_code == 0, result.output
    assert elapsed < 10
    out = result.stdout
    assert "2 redeliveries recognised as duplicates, 1 forged rejected" in out
    assert "answers: 200 x59, 401 x1" in out
    assert "reservation totals consistent: yes" in out
    counts = db_counts(tmp_path / "demo6" / "connector.db")
    assert counts["inbox"] == {"processed": 57}  # 60 sent - 2 duplicates - 1 forged
    assert counts["drift"] == 0 and counts["unreserved"] == 0
    conn = sqlite3.connect(tmp_path / "demo6" / "connector.db")
    try:
        cancelled = conn.execute("SELECT COUNT(*) FROM orders WHERE state = 'cancelled'").fetchone()[0]
        held_by_cancelled = conn.execute(
            "SELECT COUNT(*) FROM reservations r JOIN orders o ON o.shop_id = r.shop_id AND o.id = r.order_id "
            "WHERE o.state = 'cancelled' AND r.status = 'active'").fetchone()[0]
    finally:
        conn.close()
    assert cancelled == 1 and held_by_cancelled == 0


def test_demo_dir_is_reused_from_scratch(runner, tmp_path):
    first, _ = run_demo(runner, tmp_path / "again")
    second, _ = run_demo(runner, tmp_path / "again")
    assert first.exit_code == second.exit_code == 0
    # the old database is replaced, not added to
    assert db_counts(tmp_path / "again" / "connector.db")["inbox"].get("processed") == int(
        re.search(r"^inbox: (\d+) processed", second.stdout, re.M).group(1))


@pytest.mark.parametrize("args", [["--orders", "0"], ["--orders", "lots"]])
def test_demo_misuse(runner, tmp_path, args):
    result = runner.invoke(main, ["demo", *args, "--dir", str(tmp_path / "x")])
    assert result.exit_code == 2 and "Invalid value for '--orders'" in result.stderr


def test_demo_needs_no_key_and_leaves_a_config_other_commands_accept(runner, tmp_path, monkeypatch):
    from connector.secrets import KEYS_ENV

    monkeypatch.delenv(KEYS_ENV)  # a fresh machine: the demo makes its own key
    result, _ = run_demo(runner, tmp_path / "demo")
    assert result.exit_code == 0, result.output

    config = tmp_path / "demo" / "connector.toml"
    keys = tmp_path / "demo" / "connector.keys"
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    listing = runner.invoke(main, ["--config", str(config), "shops", "list"])
    assert listing.exit_code == 0, listing.output
    assert SHOPIFY_SHOP in listing.stdout and "by connector demo" in listing.stdout
    orders = runner.invoke(main, ["--config", str(config), "exceptions"])
    assert orders.exit_code == 0, orders.output
    # the shops' secrets went in through the import, encrypted
    conn = sqlite3.connect(tmp_path / "demo" / "connector.db")
    try:
        documents = [row[0] for row in conn.execute("SELECT document FROM shop_configs")]
    finally:
        conn.close()
    assert len(documents) == 2 and all('"webhook_secret": "fernet:' in d for d in documents)
