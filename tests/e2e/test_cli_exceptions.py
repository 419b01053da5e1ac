"""`connector exceptions` and its actions (options, route, reevaluate, dismiss) through
click's CliRunner against the test database, and `stock set` routing an exception."""
from __future__ import annotations

import functools

import pytest

import connector.cli
from connector.bootstrap import build
from tests.conftest import SHOPIFY_SHOP
from tests.e2e.test_cli import ingest_shopify, shopify_order


@pytest.fixture(autouse=True)
def _cli_uses_the_fixed_clock(monkeypatch, clock):
    monkeypatch.setattr(connector.cli, "build", functools.partial(build, clock=clock))


def exception_order(container, store, clock, order_id, number, sku="CANDLE-CEDAR", quantity=500):
    """An order to New York City for more units than any node has: an exception."""
    ingest_shopify(container, store, shopify_order(order_id, number, lines=[(sku, quantity)], now=clock()))
    container.inbox.process(store)
    [decision] = store.current_decisions(SHOPIFY_SHOP, str(order_id))
    assert decision["exception"] == "partial_stock", decision
    return decision["line_id"]


def test_options_then_route_by_hand(cli, container, store, clock):
    line_id = exception_order(container, store, clock, 7_100_001, 7101)
    store.set_stock(SHOPIFY_SHOP, "central", "CANDLE-CEDAR", on_hand=600, committed=0, available=600,
                    source="test", now=clock())  # typed into the database: no hook routed it

    shown = cli("exceptions", "options", "#7101", line_id)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"order #7101 line {line_id} (500 × CANDLE-CEDAR) to nyc-metro: partial_stock")
    assert lines[1].split() == ["central", "can", "ship", "it"]
    assert "2 transit days against the 1-day promise" in lines[2] and "leaves 100 sellable at central" in lines[2]
    assert any("west-3pl" in l and "no lane to New York City metro" in l for l in lines)
    assert lines[-1] == f"ship it with `connector exceptions route #7101 {line_id} NODE --note TEXT`"

    refused = cli("exceptions", "route", "7101", line_id, "ne-micro")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (f"Line {line_id} of order #7101 cannot ship from ne-micro: ne-micro has 40 "
                                      "sellable CANDLE-CEDAR, the line needs 500.")

    routed = cli("exceptions", "route", "7101", line_id, "central", "--note", "wholesale customer", "--by", "ana")
    assert routed.exit_code == 0, routed.output
    assert routed.stdout.startswith(f"order 7101 line {line_id} now ships from central: 2 transit days")
    decision = store.current_decisions(SHOPIFY_SHOP, "7100001")[0]
    assert (decision["node_id"], decision["rule"]) == ("central", "manual")
    assert "chosen by ana" in decision["explanation"] and "note: wholesale customer" in decision["explanation"]
    assert cli("exceptions").stdout.strip() == "no exceptions"


def test_dismiss_and_reevaluate(cli, container, store, clock):
    fig = exception_order(container, store, clock, 7_100_002, 7102, sku="CANDLE-FIG", quantity=900)
    cedar = exception_order(container, store, clock, 7_100_003, 7103)

    missing_note = cli("exceptions", "dismiss", "7102", fig)
    assert missing_note.exit_code == 2 and "--note" in missing_note.stderr
    dismissed = cli("exceptions", "dismiss", "7102", fig, "--note", "  sent from the studio  ")
    assert dismissed.exit_code == 0, dismissed.output
    assert dismissed.stdout.strip() == f"order 7102 line {fig} dismissed: sent from the studio"
    listed = cli("exceptions").stdout
    assert "#7102" not in listed and "#7103" in listed
    # Each exception names its steps, the first being what each node would mean for the line.
    assert "[connector exceptions options 7100003 " in listed.splitlines()[-1]
    shown = cli("exceptions", "options", "7102", fig).stdout
    assert "dismissed by " in shown and ": sent from the studio" in shown

    still = cli("exceptions", "reevaluate", "7103")
    assert still.exit_code == 0
    assert still.stdout.startswith(f"Order #7103 line {cedar} (500 × CANDLE-CEDAR) is still an exception: "
                                   "partial_stock")
    store.set_stock(SHOPIFY_SHOP, "ne-micro", "CANDLE-CEDAR", on_hand=500, committed=0, available=500,
                    source="test", now=clock())
    routed = cli("exceptions", "reevaluate", "7103", "--by", "ana")
    assert routed.stdout.strip() == f"Order #7103 line {cedar} (500 × CANDLE-CEDAR) now ships from ne-micro."
    again = cli("exceptions", "reevaluate", "7103")
    assert again.exit_code == 1 and again.stderr.strip() == "Order #7103 has no open exception to re-evaluate."


def test_errors_are_one_line(cli, container, store, clock):
    line_id = exception_order(container, store, clock, 7_100_004, 7104)
    unknown = cli("exceptions", "route", "9999", line_id, "central")
    assert unknown.exit_code == 1 and unknown.stderr.strip() == "no order '9999'"
    no_line = cli("exceptions", "options", "7104", "nope")
    assert no_line.exit_code == 1 and no_line.stderr.strip() == "Order #7104 has no line nope."
    no_node = cli("exceptions", "route", "7104", line_id, "moon-base")
    assert no_node.exit_code == 1 and no_node.stderr.strip() == "This shop has no node 'moon-base'."


def test_stock_set_routes_an_exception_it_covers(cli, container, store, clock):
    exception_order(container, store, clock, 7_100_005, 7105)
    result = cli("stock", "set", "central", "CANDLE-CEDAR", "800", "--shop", SHOPIFY_SHOP)
    assert result.exit_code == 0, result.output
    decision = store.current_decisions(SHOPIFY_SHOP, "7100005")[0]
    assert decision["node_id"] == "central"
    assert decision["explanation"].startswith("routed automatically at 10:00 after stock arrived at central "
                                              "(hand count): ")
