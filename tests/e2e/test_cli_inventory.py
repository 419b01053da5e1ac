"""`connector inventory`: the inventory page's rows and risks on the command line."""
from __future__ import annotations

import functools

import pytest

import connector.cli
from connector.bootstrap import build
from tests.conftest import SHOPIFY_SHOP


@pytest.fixture(autouse=True)
def _cli_uses_the_fixed_clock(monkeypatch, clock):
    monkeypatch.setattr(connector.cli, "build", functools.partial(build, clock=clock))


@pytest.fixture
def planned(container, store, clock):
    regions = sorted(container.shops.require(SHOPIFY_SHOP).network.regions)
    with store.write():
        store.save_forecasts(SHOPIFY_SHOP, [(sku, region, weekly, 3.0, "ewma", 8) for sku, weekly in
                                            (("CANDLE-FIG", 70.0), ("ZINE-04", 14.0)) for region in regions], clock())
    container.planning.allocate(store, SHOPIFY_SHOP)


def test_the_risks_first_then_a_page_of_rows(cli, planned):
    result = cli("inventory", "--shop", SHOPIFY_SHOP, "--node", "west-3pl")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{SHOPIFY_SHOP}: 2 SKUs at stock-out risk")
    urgent = lines[lines.index("  most urgent:") + 2]
    assert urgent.split()[:2] == ["ZINE-04", "west-3pl"] and urgent.endswith("Out of stock")
    heading = next(i for i, line in enumerate(lines) if line.startswith("  rows, page 1 of 1"))
    rows = lines[heading + 2:]
    assert rows and {line.split()[1] for line in rows} == {"west-3pl"}
    assert lines[heading] == f"  rows, page 1 of 1 ({len(rows)}):"


def test_only_at_risk_and_by_sku_text(cli, planned):
    result = cli("inventory", "--shop", SHOPIFY_SHOP, "--at-risk", "--sku", "zine")
    assert result.exit_code == 0, result.output
    rows = result.output.split("rows, page 1 of 1")[1].splitlines()[2:]
    assert [line.split()[:2] for line in rows] == [["ZINE-04", "west-3pl"]]


@pytest.mark.parametrize("args, message", [
    (("--node", "nowhere"), "unknown node 'nowhere'"),
    (("--category", "POTS"), "No SKU rule makes the category “POTS”"),
])
def test_bad_filters_are_one_line_errors(cli, planned, args, message):
    result = cli("inventory", "--shop", SHOPIFY_SHOP, *args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
