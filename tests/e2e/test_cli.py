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
from connector.config import settings_from_dict
from tests.conftest import (
    SHOPIFY_SECRET,
    SHOPIFY_SHOP,
    WOO_SECRET,
    WOO_SHOP,
    fixture_bytes,
    fixture_json,
    shopify_headers,
    to_toml,
    woo_body,
    woo_headers,
)
from tests.loopback import Fake3pl


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
    woo = [l for l in lines if l.startswith(f"{WOO_SHOP} Order 727: ")]
    assert len(woo) == 1 and "could not be routed — its address matches no region" in woo[0]
    assert "No region matches" in woo[0] and f"[connector exceptions route 727 316 NODE --shop {WOO_SHOP}" in woo[0]
    serum_lines = [l for l in lines if l.startswith(f"{SHOPIFY_SHOP} Order #6001 to US West Coast: ")]
    assert len(serum_lines) == 1, lines
    assert "SERUM-ROSE" in serum_lines[0] and "no node that ships there can handle it" in serum_lines[0]
    assert "cold" in serum_lines[0]
    assert not any("CANDLE-FIG" in l for l in lines)  # the candle was routed
    rejected = [l for l in lines if "deliver" in l]
    assert len(rejected) == 1 and "1 delivery from your store could not be processed" in rejected[0]
    assert "rejected after" in rejected[0] and "unparseable" in rejected[0]
    assert f"[connector webhooks retry --shop {SHOPIFY_SHOP}]" in rejected[0]

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
    listed = [l for l in cli("exceptions").stdout.splitlines() if f"#{bad.inbox_id} " in l]
    assert len(listed) == 1
    assert f"failed after {max_attempts} attempts" in listed[0] and "simulated failure" in listed[0]
    assert store.order(SHOPIFY_SHOP, "6400001") is None  # nothing half-applied


# ---------------------------------------------------------------- counts below reservations


def test_stock_set_below_the_reservations_moves_the_newest_line_or_lists_it(cli, container, store, clock):
    for order_id, number, quantity in ((7_100_001, 7101, 30), (7_100_002, 7102, 8)):
        ingest_shopify(container, store, shopify_order(order_id, number, lines=[("CANDLE-CEDAR", quantity)],
                                                       now=clock()))
    container.inbox.process(store)
    assert cli("stock", "set", "central", "CANDLE-CEDAR", "0", "--shop", SHOPIFY_SHOP).exit_code == 0  # ne-micro's backup is empty too

    result = cli("stock", "set", "ne-micro", "CANDLE-CEDAR", "31", "--shop", SHOPIFY_SHOP)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{SHOPIFY_SHOP}/ne-micro CANDLE-CEDAR: 40 -> 31"
    assert len(lines) == 2 and "order #7102" in lines[1] and "(8 × CANDLE-CEDAR) was reserved at ne-micro" in lines[1]
    assert "no node can take it" in lines[1]
    listed = [l for l in cli("exceptions").output.splitlines() if "#7102" in l]
    assert len(listed) == 1
    assert "ne-micro holds 31 of CANDLE-CEDAR after the hand count at 2026-11-22 15:00 UTC, 38 were reserved" \
        in listed[0]
    assert "#7101" not in cli("exceptions").output  # the older order keeps its units


def test_nodes_drift_and_exceptions_show_what_stays_over_reserved_at_a_3pl(runner, tmp_path, config_dict, clock,
                                                                           monkeypatch):
    from adapters.fakes import FakeWarehouse
    from connector.domain.model import InventoryRecord

    shop = config_dict["shops"][SHOPIFY_SHOP]
    shop["providers"] = {"sb": {"type": "shipbob", "token": "pat-123", "channel_id": "100102"}}
    next(n for n in shop["nodes"] if n["id"] == "ne-micro").update(
        stock_source="sb", provider_location="10", forward_orders=True, shipping_method="Ground")
    fake = FakeWarehouse([InventoryRecord("10", "CANDLE-CEDAR", 5, 0, 5, {})])
    monkeypatch.setattr(connector.cli, "build", functools.partial(build, clock=clock, warehouse_factory=lambda c: fake))
    config = tmp_path / "forwarding.toml"
    config.write_text(to_toml(config_dict), encoding="utf-8")

    def cli(*args):
        return runner.invoke(main, ["--config", str(config), *args], catch_exceptions=False)

    assert cli("sync").exit_code == 0
    container = connector.cli.build(config_path=str(config))
    store = container.open_store()
    try:
        ingest_shopify(container, store, shopify_order(7_200_001, 7201, lines=[("CANDLE-CEDAR", 3)], now=clock()))
        container.inbox.process(store)
        assert container.forwarding.forward_due(store).sent == 1  # the 3PL has the order now
    finally:
        store.close()

    assert cli("stock", "set", "ne-micro", "CANDLE-CEDAR", "1", "--force", "--shop", SHOPIFY_SHOP).exit_code == 0

    nodes = cli("nodes").output
    assert "over-reserved CANDLE-CEDAR: holds 1, 3 reserved (3 for orders already at the 3PL)" in nodes
    drift = [l.split() for l in cli("drift").output.splitlines() if "CANDLE-CEDAR" in l]
    assert drift == [["ne-micro", "CANDLE-CEDAR", "3", "3", "0", "-3", "2"]]
    exceptions = cli("exceptions").output
    assert f"{SHOPIFY_SHOP} Northeast micro-warehouse (Newark, NJ) holds 1 of CANDLE-CEDAR but 3 are reserved. " \
           "Orders reserved 3 × CANDLE-CEDAR at Northeast micro-warehouse (Newark, NJ), which now holds 1. 3 of them " \
           "are for orders sb already has: check it can ship them" in exceptions
    assert "Move the newest" not in exceptions and "stock resolve" not in exceptions  # nothing left to move


# ---------------------------------------------------------------- failures shown at once (issue 15)


def _write_config(tmp_path, config) -> list[str]:
    path = tmp_path / "issue15.toml"
    path.write_text(to_toml(config))
    return ["--config", str(path)]


def test_a_failing_sync_shows_at_once_in_nodes_and_exceptions(runner, tmp_path, clock):
    """Issue 15 point 20: the node is still fresh (not degraded) when its sync starts
    failing; the failure must show now, not when the node goes stale."""
    feed = tmp_path / "garage.csv"
    feed.write_text("sku,quantity\nTERRARIUM-S,3\n")
    config = sandbox.demo_config(clock(), str(tmp_path / "s.db"), SHOPIFY_SECRET, WOO_SECRET, garage_feed=str(feed))
    args = _write_config(tmp_path, config)
    assert runner.invoke(main, [*args, "sync"]).exit_code == 0
    feed.unlink()
    assert runner.invoke(main, [*args, "sync"]).exit_code == 1

    nodes = runner.invoke(main, [*args, "nodes", "--shop", WOO_SHOP], catch_exceptions=False)
    garage = next(line for line in nodes.stdout.splitlines() if line.strip().startswith("garage "))
    assert "degraded" not in garage and "FAILED" in garage and "garage.csv: file not found" in garage, garage
    assert all("FAILED" not in line for line in nodes.stdout.splitlines() if line != garage)

    exceptions = runner.invoke(main, [*args, "exceptions"], catch_exceptions=False)
    failing = [line for line in exceptions.stdout.splitlines() if "garage-sheet" in line]
    assert len(failing) == 1 and failing[0].startswith(
        f"{WOO_SHOP} Stock from garage-sheet is failing to sync (The creator's garage (Bristol))")
    assert "garage.csv: file not found" in failing[0] and "The stock from the last good sync (Nov " in failing[0]
    assert f"[connector sync --provider garage-sheet --shop {WOO_SHOP}]" in failing[0]

    feed.write_text("sku,quantity\nTERRARIUM-S,2\n")  # fixed: the failure goes away at once too
    assert runner.invoke(main, [*args, "sync"]).exit_code == 0
    assert "FAILED" not in runner.invoke(main, [*args, "nodes"], catch_exceptions=False).stdout
    assert "garage-sheet" not in runner.invoke(main, [*args, "exceptions"], catch_exceptions=False).stdout


def test_forward_prints_one_line_per_failure_and_no_traceback(runner, tmp_path, clock):
    """A 3PL that resets the connection on the create: the job retries (its outcome is
    unknown), the command says so in one line, and nothing is left 'sending'."""
    with Fake3pl("shipbob", cut="reset") as tpl:
        config = sandbox.demo_config(clock(), str(tmp_path / "f.db"), SHOPIFY_SECRET, WOO_SECRET)
        shop = config["shops"][SHOPIFY_SHOP]
        shop["providers"] = {"sb": {"type": "shipbob", "token": "pat-123", "channel_id": "100102",
                                    "base_url": tpl.url}}
        next(n for n in shop["nodes"] if n["id"] == "ne-micro").update(
            stock_source="sb", provider_location="10", forward_orders=True, shipping_method="Ground")
        args = _write_config(tmp_path, config)
        container = build(settings_from_dict(config), clock=clock)
        container.init_database()
        store = container.open_store()
        try:
            store.set_stock(SHOPIFY_SHOP, "ne-micro", "ZINE-04", on_hand=10, committed=0, available=10, source="sb",
                            now=clock())
            store.record_sync(SHOPIFY_SHOP, "ne-micro", "sb", clock(), clock(), 1, "ok", None)
            payload = sandbox.shopify_order(random.Random(5), 91, 1091, clock(), lines=1)
            payload["line_items"][0].update(sku="ZINE-04", quantity=1, current_quantity=1)
            payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
            ingest_shopify(container, store, payload)
            container.inbox.process(store)
            assert [j["node_id"] for j in store.forward_jobs(SHOPIFY_SHOP)] == ["ne-micro"]

            result = runner.invoke(main, [*args, "forward"], catch_exceptions=False)
            jobs = store.forward_jobs(SHOPIFY_SHOP)
        finally:
            store.close()
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert result.stdout.strip() == "sent 0, retrying 1, failed 0, cancelled 0"
    errors = result.stderr.splitlines()
    assert len(errors) == 1 and jobs[0]["reference"] in errors[0] and "outcome unknown" in errors[0], errors
    assert tpl.creates == 1 and [j["status"] for j in jobs] == ["pending"]


def test_exceptions_list_a_forward_whose_outcome_is_still_unknown(cli, container, store, clock):
    """Attempts used up and the 3PL unreachable for the last lookup: the job keeps
    retrying, and a human sees that the 3PL may hold the order."""
    store.add_forward_job(SHOPIFY_SHOP, "5001", "ne-micro", "sb", clock())
    job = store.forward_jobs(SHOPIFY_SHOP)[0]
    error = f"outcome unknown: sb may hold {job['reference']} (lookup failed: HTTP 503)"
    for _ in range(container.settings.scheduler.forward_max_attempts - 1):
        store.finish_forward_job(job["id"], status="pending", now=clock(), error="HTTP 503", next_attempt_at=clock())
    assert "5001" not in cli("exceptions").stdout  # still within its attempts: not an exception yet
    store.finish_forward_job(job["id"], status="pending", now=clock(), error=error, next_attempt_at=clock())
    lines = [line for line in cli("exceptions").stdout.splitlines() if "5001" in line]
    assert len(lines) == 1 and "Nobody knows yet whether sb (Northeast micro-warehouse (Newark, NJ)) has order " \
        "5001" in lines[0] and "After 8 attempts sb could not be asked" in lines[0]
    assert error in lines[0] and f"[connector forward retry {job['id']} --shop {SHOPIFY_SHOP}]" in lines[0]


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
        for _ in range(container.shops.require(SHOPIFY_SHOP).network.nodes["ne-micro"].daily_capacity):
            store.count_node_order(SHOPIFY_SHOP, "ne-micro", clock().astimezone(
                container.inbox.routing(store, SHOPIFY_SHOP, clock()).tz).date().isoformat())
    finally:
        store.close()
    line = next(l for l in cli("nodes").output.splitlines() if l.strip().startswith("ne-micro"))
    assert "ranked down: " in line and "at daily capacity" in line, line
