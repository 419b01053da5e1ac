"""Planning services against SQLite: forecast from processed orders, allocation with
dual prices, routing reading them, rebalance with approvals, and transfers."""
from __future__ import annotations

import random
from datetime import timedelta

import pytest

from connector import sandbox
from connector.services.stock import set_manual_count
from connector.services.transfers import TransferError
from tests.conftest import SHOPIFY_SECRET, SHOPIFY_SHOP, WOO_SECRET

S = SHOPIFY_SHOP


def process_orders(container, store, clock, count: int, *, days_back: int = 21, seed: int = 3):
    """Sandbox Shopify orders spread over the last ``days_back`` days, ingested and processed."""
    rng = random.Random(seed)
    now = clock()
    for i in range(count):
        placed = now - timedelta(days=days_back) + timedelta(days=days_back * i / count)
        hook = sandbox.shopify_webhook(SHOPIFY_SECRET, sandbox.shopify_order(rng, 50_000 + i, 9_000 + i, placed))
        container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    report = container.inbox.process(store)
    assert report.failed == 0


def test_forecast_reads_processed_orders_per_sku_and_region(container, store, clock):
    process_orders(container, store, clock, 150)
    sold = {}
    for sku, region, _at, qty in store.sales(S, clock() - timedelta(weeks=26)):
        sold[(sku, region)] = sold.get((sku, region), 0) + qty
    forecasts = container.planning.forecast(store, S)
    assert sold, "the sandbox orders should have sold something"
    busiest = max(sold, key=sold.get)
    assert forecasts[busiest].weekly > 0
    # Regions with no sales of a SKU that others sold are forecast lower than its busiest region.
    quiet = [key for key in forecasts if key[0] == busiest[0] and key not in sold]
    assert all(forecasts[key].weekly < forecasts[busiest].weekly for key in quiet)
    saved = {(r["sku"], r["region_id"]): r["weekly"] for r in store.forecasts(S)}
    assert saved[busiest] == pytest.approx(forecasts[busiest].weekly)


def test_allocation_never_promises_more_than_is_sellable_and_respects_lanes(container, store, clock):
    process_orders(container, store, clock, 150)
    container.planning.forecast(store, S)
    report = container.planning.allocate(store, S)
    assert report.skus > 0 and report.units_allocated > 0
    sellable = store.sellable_all(S)
    promised: dict[tuple[str, str], int] = {}
    network = container.shops.require(S).network
    for sku, node, region, units in store.allocations(S):
        promised[(node, sku)] = promised.get((node, sku), 0) + units
        lane = network.nodes[node].lanes[region]
        assert lane.transit_days <= network.regions[region].promise_days
        if sku.startswith("SERUM-"):
            assert node == "cold-room"  # cold chain only from the cold room
        if node == "popup-soho":
            assert region == "nyc-metro"
    for key, units in promised.items():
        assert units <= sellable.get(key, 0), key


def test_an_allocation_of_named_skus_matches_the_full_one_and_reads_only_their_forecasts(
        container, store, clock, monkeypatch):
    process_orders(container, store, clock, 150)
    container.planning.forecast(store, S)
    container.planning.allocate(store, S)
    skus = sorted({sku for sku, _n, _r, _u in store.allocations(S)})
    full_units = store.allocations(S)
    full_prices = store.opportunity_costs(S, skus)
    priced = sorted({sku for _n, sku in full_prices})
    named = [priced[0], next(sku for sku in skus if sku not in priced)]  # one with dual prices, one without

    store.save_allocation(S, named, [], [], clock())  # forget them, so the named run must rebuild them
    read = []
    monkeypatch.setattr(store, "forecasts", lambda shop_id, skus=None: read.append(skus) or
                        type(store).forecasts(store, shop_id, skus))
    report = container.planning.allocate(store, S, named)

    assert report.skus == len(named)
    assert [sorted(r) for r in read] == [sorted(named)]  # a debounced push does not read the whole shop
    assert store.allocations(S) == full_units  # the named SKUs as the full run had them, the rest untouched
    assert store.opportunity_costs(S, skus) == full_prices


def test_a_named_allocation_forecasts_first_when_the_shop_has_none(container, store, clock):
    process_orders(container, store, clock, 150)
    assert store.forecasts(S) == []
    sku = store.sales(S, clock() - timedelta(weeks=26))[0][0]
    report = container.planning.allocate(store, S, [sku])
    assert report.skus == 1 and store.has_forecasts(S)
    assert {r["sku"] for r in store.forecasts(S, [sku])} == {sku}


def test_routing_reads_the_allocations_dual_prices(container, store, clock):
    store.save_allocation(S, ["CANDLE-FIG"], [], [("CANDLE-FIG", "popup-soho", 3.0)], clock())
    rng = random.Random(5)
    payload = sandbox.shopify_order(rng, 77_001, 7_001, clock(), lines=1)
    payload["line_items"][0].update(sku="CANDLE-FIG", quantity=1, current_quantity=1)
    payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload)
    container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    container.inbox.process(store)
    decision = store.current_decisions(S, "77001")[0]
    assert decision["node_id"] == "popup-soho"  # fastest still decides in the normal chain
    assert "opportunity cost 3.00/unit" in decision["explanation"]


def test_rebalance_stores_transfers_with_their_approval_verdicts(container, store, clock):
    process_orders(container, store, clock, 150)
    container.planning.forecast(store, S)
    dry = container.planning.rebalance(store, S, dry_run=True)
    assert dry.transfers and store.transfers(S) == []
    report = container.planning.rebalance(store, S, dry_run=False)
    stored = store.transfers(S)
    assert [t["id"] for t in stored] == [t.transfer_id for t in report.transfers]
    assert {(p.transfer.sku, p.transfer.from_node, p.transfer.to_node, p.transfer.units) for p in dry.transfers} == \
        {(t["sku"], t["from_node"], t["to_node"], t["units"]) for t in stored}
    # Before the launch lock nothing under the 300-unit threshold needs approval.
    assert all(t["status"] == "approved" for t in stored if t["units"] <= 300)
    # The open transfers count as inbound: planning again proposes nothing new.
    assert container.planning.rebalance(store, S, dry_run=True).transfers == ()


def test_after_the_launch_lock_only_emergencies_move_without_approval(container, store, clock):
    process_orders(container, store, clock, 150)
    container.planning.forecast(store, S)
    clock.advance(days=4)  # the sandbox locks three days after its start
    report = container.planning.rebalance(store, S, dry_run=True)
    assert report.transfers
    for t in report.transfers:
        assert (t.status == "approved") == t.approval.emergency, t
        if not t.approval.emergency:
            assert "launch lock" in t.approval.reason


def test_transfer_lifecycle_moves_stock_only_on_ship_and_receive(container, store, clock):
    transfer_id = store.add_transfer(S, sku="CANDLE-FIG", from_node="central", to_node="popup-soho", units=20,
                                     unit_cost=0.8, lead_days=1, status="proposed", emergency=False,
                                     approval_reason="launch lock", now=clock())
    before = {n: store.stock_level(S, n, "CANDLE-FIG") for n in ("central", "popup-soho")}
    with pytest.raises(TransferError, match="only a approved transfer can be shipped"):
        container.transfers.ship(store, transfer_id, "ops")
    assert container.transfers.approve(store, transfer_id, "maya")["status"] == "approved"
    with pytest.raises(TransferError, match="is approved"):
        container.transfers.approve(store, transfer_id, "maya")
    container.transfers.ship(store, transfer_id, "ops")
    assert store.stock_level(S, "central", "CANDLE-FIG") == before["central"] - 20
    assert store.stock_level(S, "popup-soho", "CANDLE-FIG") == before["popup-soho"]  # in transit: nowhere
    assert store.inbound_units(S, ["in_transit"]) == {("popup-soho", "CANDLE-FIG"): 20}
    row = container.transfers.receive(store, transfer_id, "popup team")
    assert row["status"] == "received" and row["received_at"] and row["decided_by"] == "popup team"
    assert store.stock_level(S, "popup-soho", "CANDLE-FIG") == before["popup-soho"] + 20
    assert [p["shop_id"] for p in store.pending_pushes()] == [S]
    kinds = [e["kind"] for e in store.events(S) if e["subject"] == str(transfer_id)]
    assert kinds == ["transfer.received", "transfer.in_transit", "transfer.approved"]
    with pytest.raises(TransferError, match="no transfer 999"):
        container.transfers.reject(store, 999, "maya")


def test_a_rejected_transfer_frees_its_deficit_for_the_next_plan(container, store, clock):
    process_orders(container, store, clock, 150)
    container.planning.forecast(store, S)
    first = container.planning.rebalance(store, S, dry_run=False).transfers[0]
    container.transfers.reject(store, first.transfer_id, "maya", note="not before the launch")
    again = container.planning.rebalance(store, S, dry_run=True).transfers
    assert [(t.transfer.sku, t.transfer.from_node, t.transfer.to_node) for t in again] == \
        [(first.transfer.sku, first.transfer.from_node, first.transfer.to_node)]


def test_orders_request_a_debounced_push_in_the_same_transaction(container, store, clock):
    process_orders(container, store, clock, 5)
    pending = store.pending_pushes()
    assert {p["shop_id"] for p in pending} == {S}
    assert pending[0]["due_at"] == (clock() + timedelta(seconds=5)).isoformat(timespec="microseconds")
    # Not due yet: nothing is taken.
    assert container.availability.push_due(store) == []
    assert store.pending_pushes()
    clock.advance(seconds=6)
    reports = container.availability.push_due(store)
    assert [r.shop_id for r in reports] == [S]
    assert reports[0].skipped and "credentials" in reports[0].skipped  # the sandbox has no Shopify token
    assert store.pending_pushes() == []


def network_units(store, sku):
    """Units of ``sku`` on the shelves of every node plus those in transit between them."""
    shelves = sum(r["available"] for r in store.stock_rows(S) if r["sku"] == sku)
    return shelves + sum(units for (_, s), units in store.inbound_units(S, ["in_transit"]).items() if s == sku)


def test_shipping_is_refused_beyond_what_the_source_can_spare_unless_told_to_ship_that(container, store, clock):
    transfer_id = store.add_transfer(S, sku="CANDLE-CEDAR", from_node="ne-micro", to_node="popup-soho", units=20,
                                     unit_cost=0.35, lead_days=1, status="approved", emergency=False,
                                     approval_reason="top-up", now=clock())
    # After the plan: a recount finds 12, and an order holds 5 of them.
    set_manual_count(store, S, "ne-micro", "CANDLE-CEDAR", 12, clock(), routing=container.inbox.routing)
    order = sandbox.shopify_order(random.Random(5), 880_001, 8801, clock(), lines=1)
    order["line_items"][0].update(sku="CANDLE-CEDAR", quantity=5, current_quantity=5)
    order["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, order)
    container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    container.inbox.process(store)
    assert store.current_decisions(S, "880001")[0]["node_id"] == "ne-micro"
    before = network_units(store, "CANDLE-CEDAR")

    with pytest.raises(TransferError, match=r"ne-micro can spare 7 of the 20 × CANDLE-CEDAR \(12 available, "
                                            r"5 reserved for orders\); nothing shipped.*--units 7"):
        container.transfers.ship(store, transfer_id, "ops")
    for units, why in ((8, "can spare 7"), (21, "20 that were planned"), (0, "at least 1")):
        with pytest.raises(TransferError, match=why):
            container.transfers.ship(store, transfer_id, "ops", units=units)
    assert store.transfer(transfer_id)["status"] == "approved"
    assert store.stock_level(S, "ne-micro", "CANDLE-CEDAR") == 12 and network_units(store, "CANDLE-CEDAR") == before

    shipped = container.transfers.ship(store, transfer_id, "ops", units=7)
    assert (shipped["status"], shipped["units"]) == ("in_transit", 7)
    assert store.stock_level(S, "ne-micro", "CANDLE-CEDAR") == 5  # exactly what the order holds
    assert store.events(S, "transfer.in_transit")[0]["detail"]["planned"] == 20
    container.transfers.receive(store, transfer_id, "popup team")
    assert store.stock_level(S, "popup-soho", "CANDLE-CEDAR") == 7
    assert network_units(store, "CANDLE-CEDAR") == before
