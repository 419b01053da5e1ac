"""The ``connector`` command through click's CliRunner, with a TOML config in tmp_path
pointing at the test database."""
from __future__ import annotations

import functools
import json
import random

import pytest

import connector.cli
from connector import sandbox
from connector.bootstrap import build
from connector.cli import main
from tests.conftest import (
    SHOPIFY_SHOP,
    WOO_SHOP,
    fixture_bytes,
    fixture_json,
    shopify_headers,
    to_toml,
    woo_body,
    woo_headers,
)


@pytest.fixture(autouse=True)
def _cli_uses_the_fixed_clock(monkeypatch, clock):
    """The CLI builds its own container; give it the test clock so routing (cutoffs,
    pop-up windows) does not depend on when the tests run."""
    monkeypatch.setattr(connector.cli, "build", functools.partial(build, clock=clock))


def ingest_shopify(container, store, payload, topic="orders/create"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    outcome = container.inbox.ingest(store, "shopify", body, shopify_headers(body, topic))
    assert outcome.status in (200, 400), outcome
    return outcome


def ingest_woo(container, store, payload, topic="order.created"):
    body = woo_body(payload)
    outcome = container.inbox.ingest(store, "woocommerce", body, woo_headers(body, topic))
    assert outcome.status == 200, outcome
    return outcome


def shopify_order(order_id, number, *, lines, province="NY", zip_code="10012", now):
    order = sandbox.shopify_order(random.Random(order_id), order_id, number, now, lines=len(lines))
    for item, (sku, qty) in zip(order["line_items"], lines):
        item.update(sku=sku, quantity=qty, current_quantity=qty, fulfillable_quantity=qty)
    order["shipping_address"].update(province_code=province, zip=zip_code, country_code="US")
    return order


def woo_uk_order():
    order = fixture_json("woocommerce", "order_727.json")
    for part in ("billing", "shipping"):
        order[part].update(city="Leeds", state="", postcode="LS1 4AP", country="GB")
    order["line_items"][0]["sku"] = "SEEDS-MIX"
    order["line_items"][1]["sku"] = "POT-CLAY"
    return order


# ---------------------------------------------------------------- init


def test_init_creates_the_database_then_is_up_to_date(runner, tmp_path, config_dict):
    db = tmp_path / "fresh" / "connector.db"
    config_dict["database"]["path"] = str(db)
    path = tmp_path / "fresh.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    assert not db.exists()

    first = runner.invoke(main, ["--config", str(path), "init"])

    assert first.exit_code == 0, first.output
    assert db.exists()
    assert str(db) in first.stdout
    assert "applied" in first.stdout and "0001_core" in first.stdout
    assert SHOPIFY_SHOP in first.stdout and WOO_SHOP in first.stdout

    second = runner.invoke(main, ["--config", str(path), "init"])

    assert second.exit_code == 0, second.output
    assert "up to date" in second.stdout
    assert "applied" not in second.stdout


# ---------------------------------------------------------------- process


def test_process_drains_the_inbox_and_prints_counts(cli, container, store, clock):
    ingest_shopify(container, store, shopify_order(6_000_001, 4001, lines=[("CANDLE-FIG", 1)], now=clock()))
    ingest_shopify(container, store, shopify_order(6_000_002, 4002, lines=[("ZINE-04", 2)], now=clock()))
    ingest_woo(container, store, woo_uk_order())
    ingest_shopify(container, store, {"id": 9, "title": "a product"}, "products/update")  # ignored, not pending
    assert store.count_webhooks("pending") == 3

    result = cli("process", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert "processed 2" in result.stdout and "still pending 1" in result.stdout
    assert store.count_webhooks("pending") == 1

    result = cli("process")

    assert result.exit_code == 0, result.output
    assert "processed 1" in result.stdout and "still pending 0" in result.stdout
    assert "failed 0" in result.stdout
    assert store.count_webhooks("pending") == 0
    assert store.count_webhooks("processed") == 3
    assert store.count_webhooks("ignored") == 1
    for shop_id, order_id in ((SHOPIFY_SHOP, "6000001"), (SHOPIFY_SHOP, "6000002"), (WOO_SHOP, "727")):
        assert store.order(shop_id, order_id).status == "routed"

    again = cli("process")
    assert again.exit_code == 0 and "processed 0" in again.stdout


def test_process_reports_outcomes(cli, container, store, clock):
    ingest_shopify(container, store, shopify_order(6_000_003, 4003, lines=[("CANDLE-FIG", 1)], now=clock()))
    result = cli("process")
    assert result.exit_code == 0
    assert "routed 1" in result.stdout


# ---------------------------------------------------------------- orders show


@pytest.fixture
def routed_order(container, store, clock):
    order = shopify_order(6_100_001, 5001, lines=[("CANDLE-FIG", 2), ("TEE-LOGO-M", 1)], now=clock())
    ingest_shopify(container, store, order)
    assert container.inbox.process(store).processed == 1
    return order


def test_orders_show_prints_node_rule_and_explanation(cli, store, routed_order):
    decisions = store.current_decisions(SHOPIFY_SHOP, str(routed_order["id"]))
    assert len(decisions) == 2

    for ref in ("5001", "#5001", str(routed_order["id"])):
        result = cli("orders", "show", ref)

        assert result.exit_code == 0, result.output
        out = result.stdout
        assert "#5001" in out and SHOPIFY_SHOP in out and "routed" in out and "nyc-metro" in out
        for d in decisions:
            line = next(l for l in out.splitlines() if f"line {d['line_id']}:" in l)
            assert f"-> {d['node_id']}" in line and f"rule {d['rule']}" in line and d["sku"] in line
            assert d["explanation"] in out


def test_orders_show_json(cli, store, routed_order):
    result = cli("orders", "show", "5001", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["order"]["id"] == str(routed_order["id"]) and data["order"]["shop_id"] == SHOPIFY_SHOP
    assert {l["line_id"] for l in data["lines"]} == {str(i["id"]) for i in routed_order["line_items"]}
    assert data["decisions"] == store.current_decisions(SHOPIFY_SHOP, str(routed_order["id"]))
    assert all(d["node_id"] and d["rule"] and d["explanation"] for d in data["decisions"])


def test_orders_show_unknown_order(cli, routed_order):
    result = cli("orders", "show", "424242")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert "no order '424242'" in result.stderr
    assert "Traceback" not in result.output


def test_orders_show_number_in_two_shops_needs_shop(cli, container, store, clock):
    order = shopify_order(6_200_001, 727, lines=[("ZINE-04", 1)], now=clock())
    order["name"] = "#727"
    ingest_shopify(container, store, order)
    ingest_woo(container, store, woo_uk_order())
    container.inbox.process(store)

    ambiguous = cli("orders", "show", "727")
    assert ambiguous.exit_code == 2
    assert "--shop" in ambiguous.stderr and SHOPIFY_SHOP in ambiguous.stderr and WOO_SHOP in ambiguous.stderr

    chosen = cli("orders", "show", "727", "--shop", WOO_SHOP)
    assert chosen.exit_code == 0, chosen.output
    assert f"shop {WOO_SHOP}" in chosen.stdout and "-> uk-hub" in chosen.stdout


def test_orders_show_skipped_line_says_why(cli, container, store):
    # the documented order: one line has nothing left to ship
    ingest_shopify(container, store, fixture_bytes("shopify", "orders_create.json"))
    container.inbox.process(store)
    result = cli("orders", "show", "1001")
    assert result.exit_code == 0, result.output
    assert "line 466157049" in result.stdout and "not routed" in result.stdout
    # no IPOD stock anywhere: the other line is an exception with its reason
    assert "line 518995019" in result.stdout and "EXCEPTION partial_stock" in result.stdout


# ---------------------------------------------------------------- exceptions


def test_exceptions_when_there_are_none(cli):
    result = cli("exceptions")
    assert result.exit_code == 0
    assert result.stdout.strip() == "no exceptions"


def test_exceptions_lists_unroutable_lines_with_reasons(cli, container, store, clock):
    # WooCommerce's documented order ships to San Francisco; the Woo shop has no US region and no default
    ingest_woo(container, store, fixture_json("woocommerce", "order_727.json"))
    # a cold-chain serum to Los Angeles: no cold-chain node serves the US West
    serum = shopify_order(6_300_001, 6001, lines=[("SERUM-ROSE", 1), ("CANDLE-FIG", 1)], province="CA",
                          zip_code="90026", now=clock())
    ingest_shopify(container, store, serum)
    # a signed delivery that cannot be read
    ingest_shopify(container, store, b"{not json")
    container.inbox.process(store)

    result = cli("exceptions")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    woo = [l for l in lines if l.startswith(f"{WOO_SHOP} order 727 line 316")]
    assert len(woo) == 1 and "Bar3" in woo[0] and "no_region" in woo[0] and "no region matches" in woo[0]
    serum_lines = [l for l in lines if l.startswith(f"{SHOPIFY_SHOP} order #6001")]
    assert len(serum_lines) == 1, lines
    assert "SERUM-ROSE" in serum_lines[0] and "handling_constraint" in serum_lines[0]
    assert "cold" in serum_lines[0]
    assert not any("CANDLE-FIG" in l for l in lines)  # the candle was routed
    rejected = [l for l in lines if "webhook #" in l]
    assert len(rejected) == 1 and "rejected" in rejected[0] and "unparseable" in rejected[0]

    only_woo = cli("exceptions", "--shop", WOO_SHOP)
    assert only_woo.exit_code == 0
    assert WOO_SHOP in only_woo.stdout and SHOPIFY_SHOP not in only_woo.stdout


def test_cancelled_order_leaves_the_exception_list(cli, container, store, clock):
    serum = shopify_order(6_300_002, 6002, lines=[("SERUM-ROSE", 1)], province="CA", zip_code="90026", now=clock())
    ingest_shopify(container, store, serum)
    container.inbox.process(store)
    assert "#6002" in cli("exceptions").stdout
    cancelled = {**serum, "cancelled_at": clock().isoformat(), "updated_at": clock().replace(hour=16).isoformat()}
    ingest_shopify(container, store, cancelled, "orders/cancelled")
    container.inbox.process(store)
    assert "#6002" not in cli("exceptions").stdout


# ---------------------------------------------------------------- misuse


@pytest.mark.parametrize(
    "args,expected",
    [
        (["orders", "show"], "Missing argument 'ORDER_REF'"),
        (["process", "--limit", "0"], "Invalid value for '--limit'"),
        (["process", "--limit", "many"], "Invalid value for '--limit'"),
        (["orders", "frobnicate"], "No such command"),
        (["teleport"], "No such command"),
    ],
)
def test_misuse_is_a_usage_error(cli, args, expected):
    result = cli(*args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr and expected in result.stderr
    assert "Traceback" not in result.output


def test_process_retries_then_fails_and_exceptions_lists_the_delivery(cli, container, store, clock, monkeypatch):
    import connector.services.inbox as inbox_module

    real_apply = inbox_module.apply_order

    def flaky_apply(store_, routing, order, now):
        if order.order_id == "6400001":
            raise RuntimeError("simulated failure")
        return real_apply(store_, routing, order, now)

    monkeypatch.setattr(inbox_module, "apply_order", flaky_apply)
    bad = ingest_shopify(container, store, shopify_order(6_400_001, 7001, lines=[("ZINE-04", 1)], now=clock()))
    ingest_shopify(container, store, shopify_order(6_400_002, 7002, lines=[("ZINE-04", 1)], now=clock()))
    max_attempts = container.settings.processing.max_attempts

    first = cli("process")
    assert first.exit_code == 0, first.output
    assert "processed 1" in first.stdout and "retrying 1" in first.stdout and "still pending 1" in first.stdout
    assert store.order(SHOPIFY_SHOP, "6400002").status == "routed"

    for attempt in range(2, max_attempts):
        clock.advance(minutes=10)  # past the back-off
        result = cli("process")
        assert result.exit_code == 0 and "retrying 1" in result.stdout, (attempt, result.output)
    clock.advance(minutes=10)
    last = cli("process")

    assert last.exit_code == 1
    assert "failed 1" in last.stdout and "still pending 0" in last.stdout
    row = store.webhook(bad.inbox_id)
    assert row["status"] == "failed" and row["attempts"] == max_attempts
    assert "RuntimeError: simulated failure" in row["last_error"]
    listed = [l for l in cli("exceptions").stdout.splitlines() if f"webhook #{bad.inbox_id}" in l]
    assert len(listed) == 1
    assert "failed" in listed[0] and f"after {max_attempts} attempt(s)" in listed[0] and "simulated failure" in listed[0]
    assert store.order(SHOPIFY_SHOP, "6400001") is None  # nothing half-applied


# ---------------------------------------------------------------- nodes


@pytest.mark.parametrize("days, shown", [
    (-2, "outside its active window (opens "),  # the pop-up opens tomorrow
    (15, "outside its active window (closed "),  # it closed yesterday
    (0, "active"),
])
def test_nodes_shows_how_routing_treats_a_pop_up_now(cli, clock, days, shown):
    clock.advance(days=days)
    result = cli("nodes")
    assert result.exit_code == 0, result.output
    popup = next(line for line in result.output.splitlines() if line.strip().startswith("popup-soho"))
    assert popup.split()[1:2] != ["active"] or days == 0, popup
    assert shown in popup, popup


def test_nodes_shows_a_node_at_capacity_as_ranked_down(cli, container, clock):
    store = container.open_store()
    try:
        for _ in range(container.settings.shops[SHOPIFY_SHOP].network.nodes["ne-micro"].daily_capacity):
            store.count_node_order(SHOPIFY_SHOP, "ne-micro", clock().astimezone(
                container.inbox.routing(store, SHOPIFY_SHOP, clock()).tz).date().isoformat())
    finally:
        store.close()
    line = next(l for l in cli("nodes").output.splitlines() if l.strip().startswith("ne-micro"))
    assert "ranked down: " in line and "at daily capacity" in line, line
