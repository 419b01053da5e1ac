"""The availability API (Flask test client) and the planning commands (CLI runner)."""
from __future__ import annotations

import re

from tests.conftest import SHOPIFY_SHOP, WOO_SHOP
from tests.integration.test_planning_services import process_orders

S = SHOPIFY_SHOP
KEY = {"X-Api-Key": "demo-widget-key"}


def test_availability_api_answers_from_the_allocation(client, container, store, clock):
    container.planning.allocate(store, S)
    got = client.get(f"/api/availability?shop={S}&sku=CANDLE-FIG&region=nyc-metro", headers=KEY)
    assert got.status_code == 200
    body = got.get_json()
    rows = store.allocated_units(S, "CANDLE-FIG", "nyc-metro")
    assert body["units"] == sum(units for _, units, _ in rows) > 0
    assert body["promise_days"] == 1 and body["node"] == rows[0][0]
    assert set(body["nodes"]) <= {"ne-micro", "popup-soho", "cold-room", "central"}
    # A cold-chain SKU is not sold where no cold-chain node reaches in time.
    serum = client.get(f"/api/availability?shop={S}&sku=SERUM-ROSE&region=us-west", headers=KEY).get_json()
    assert serum["units"] == 0 and serum["node"] is None


def test_availability_api_rejects_bad_requests_clearly(client, container, store):
    container.planning.allocate(store, S)
    base = f"/api/availability?shop={S}&sku=CANDLE-FIG&region=nyc-metro"
    assert client.get(base).status_code == 401
    assert client.get(base, headers={"X-Api-Key": "wrong"}).status_code == 401
    # Another shop's key (or a shop without one) gets the same answer as an unknown shop.
    woo = client.get(f"/api/availability?shop={WOO_SHOP}&sku=SEEDS-MIX&region=uk", headers=KEY)
    assert woo.status_code == 401
    assert client.get(f"/api/availability?shop=nope&sku=X&region=uk", headers=KEY).status_code == 401
    missing = client.get(f"/api/availability?shop={S}&sku=CANDLE-FIG", headers=KEY)
    assert missing.status_code == 400 and "region" in missing.get_json()["detail"]
    assert client.get(f"/api/availability?shop={S}&sku=CANDLE-FIG&region=mars", headers=KEY).status_code == 404
    assert client.get(f"/api/availability?shop={S}&sku=NO-SUCH&region=nyc-metro", headers=KEY).status_code == 404


def test_cli_reorder_rebalance_and_approve(cli, container, store, clock):
    process_orders(container, store, clock, 150)
    container.planning.forecast(store, S)
    reorder = cli("reorder", "--shop", S)
    assert reorder.exit_code == 0 and "at or below their reorder point" in reorder.output
    dry = cli("rebalance", "--shop", S, "--dry-run")
    assert dry.exit_code == 0 and "would propose" in dry.output and store.transfers(S) == []
    real = cli("rebalance", "--shop", S)
    assert real.exit_code == 0
    stored = store.transfers(S)
    assert stored and all(f"#{t['id']}" in real.output for t in stored)
    waiting = [{"id": store.add_transfer(S, sku="ZINE-04", from_node="central", to_node="ne-micro", units=400,
                                         unit_cost=0.45, lead_days=1, status="proposed", emergency=False,
                                         approval_reason="over 300 units: needs approval", now=clock())}]
    approve = cli("transfers", "approve", str(waiting[0]["id"]), "--by", "maya")
    assert approve.exit_code == 0 and "approved" in approve.output
    assert store.transfer(waiting[0]["id"])["decided_by"] == "maya"
    again = cli("transfers", "approve", str(waiting[0]["id"]))
    assert again.exit_code == 1 and "is approved" in again.output
    listed = cli("transfers", "list", "--status", "approved")
    assert f"#{waiting[0]['id']}" in listed.output


def test_cli_push_without_credentials_says_so(cli):
    result = cli("push", "--shop", S, "--dry-run")
    assert result.exit_code == 0
    assert re.search(r"nothing pushed: no credentials", result.output)


def test_cli_allocate_reports_its_figures(cli):
    result = cli("allocate", "--shop", S, "--forecast")
    assert result.exit_code == 0
    assert re.search(rf"{S}: \d+ SKUs, \d+ units allocated to regions", result.output)


def test_cli_ship_refuses_more_than_the_source_can_spare_and_ships_what_it_is_told(cli, store, clock):
    transfer_id = store.add_transfer(S, sku="ZINE-04", from_node="ne-micro", to_node="popup-soho", units=150,
                                     unit_cost=0.35, lead_days=1, status="approved", emergency=False,
                                     approval_reason="top-up", now=clock())
    refused = cli("transfers", "ship", str(transfer_id))
    assert refused.exit_code == 1
    assert refused.output.strip() == (f"transfer {transfer_id}: ne-micro can spare 120 of the 150 × ZINE-04 "
                                      "(120 available, 0 reserved for orders); nothing shipped; ship those with "
                                      "--units 120, or reject it")
    assert store.stock_level(S, "ne-micro", "ZINE-04") == 120
    assert cli("transfers", "ship", str(transfer_id), "--units", "0").exit_code == 2
    shipped = cli("transfers", "ship", str(transfer_id), "--units", "120", "--by", "ops")
    assert shipped.exit_code == 0 and "(120 units): in_transit" in shipped.output
    assert store.stock_level(S, "ne-micro", "ZINE-04") == 0
