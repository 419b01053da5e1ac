"""`connector home`: the home page as text — the verdict, what needs you with the command
that settles each item, today's figures and the setup status."""
from __future__ import annotations

import functools

import pytest

import connector.cli
from connector.bootstrap import build
from tests.conftest import SHOPIFY_SHOP


@pytest.fixture(autouse=True)
def _cli_uses_the_fixed_clock(monkeypatch, clock):
    monkeypatch.setattr(connector.cli, "build", functools.partial(build, clock=clock))


def test_the_verdict_first_then_what_needs_you_with_its_commands(cli, container, store, clock):
    with store.write():
        transfer_id = store.add_transfer(SHOPIFY_SHOP, sku="CANDLE-FIG", from_node="central", to_node="ne-micro",
                                         units=6, unit_cost=0.45, lead_days=1, status="proposed", emergency=False,
                                         approval_reason="over the approval limit", now=clock())
    result = cli("home", "--shop", SHOPIFY_SHOP)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"{SHOPIFY_SHOP}: 2 things need you"  # no Admin API token, and the transfer
    assert lines[1] == "needs you:" and lines[2].startswith("  - Store connected: Not connected")
    assert f"      Approve: connector transfers approve {transfer_id}" in lines
    assert "  On-time ship rate, 7 days: no shipments yet (No parcel from an order of the last 7 days has left yet.)" \
        in lines
    setup = lines[lines.index("setup:") + 1:]
    assert setup[0].startswith("  [problem] Store connected") and setup[1] == "  [ok] Nodes: 5 nodes take orders."


def test_an_unknown_shop_is_a_one_line_error(cli):
    result = cli("home", "--shop", "no-such-shop")
    assert result.exit_code != 0 and len(result.output.strip().splitlines()) == 1
