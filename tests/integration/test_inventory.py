"""The inventory table against SQLite: the planning's figures saved by allocation, the
position the database keeps current as stock, reservations and transfers change, the
page's filters and pages, and the pages in the Flask test client."""
from __future__ import annotations

import random

import pytest

from connector.domain.inventory import Risk, classify
from connector.inventory_store import Filters, InventoryStore
from connector.services.inventory import PAGE_SIZE, inventory_page, sku_detail, stockout_risk_count
from connector.services.planning import OPEN_TRANSFER_STATUSES
from tests.conftest import SHOPIFY_SHOP, WOO_SHOP
from tests.web import SHOPIFY_USER, add_user, sign_in

S = SHOPIFY_SHOP
DEMAND = (("CANDLE-FIG", 70.0), ("ZINE-04", 14.0), ("SERUM-NEROLI", 20.0), ("TEE-LOGO-M", 35.0))


@pytest.fixture
def planned(container, store, clock):
    """Weekly demand in every region for four SKUs, planned as the nightly run plans it."""
    regions = sorted(container.shops.require(S).network.regions)
    with store.write():
        store.save_forecasts(S, [(sku, region, weekly, 3.0, "ewma", 8) for sku, weekly in DEMAND
                                 for region in regions], clock())
    container.planning.allocate(store, S)
    return container


def plan_rows(store, shop_id=S) -> dict[tuple[str, str], dict]:
    rows = InventoryStore(store).rows(shop_id, Filters(), [], limit=10_000, offset=0)
    return {(r["sku"], r["node_id"]): r for r in rows}


def expected_positions(store) -> dict[tuple[str, str], tuple[int, int]]:
    """(sku, node) -> (sellable, inbound) as connector reorder's positions count them (the
    hub's where the hub plans the SKU: echelon)."""
    sellable = {(sku, node): units for (node, sku), units in store.sellable_all(S).items()}
    inbound = {(sku, node): units for (node, sku), units in store.inbound_units(S, OPEN_TRANSFER_STATUSES).items()}
    positions = {}
    for (sku, node), row in plan_rows(store).items():
        if row["is_hub"]:
            positions[(sku, node)] = (sum(u for (s, _), u in sellable.items() if s == sku),
                                      sum(u for (s, _), u in inbound.items() if s == sku))
        else:
            positions[(sku, node)] = (sellable.get((sku, node), 0), inbound.get((sku, node), 0))
    return positions


def assert_rows_current(store):
    """Every row's stored position and risk equal a recount from the stock, reservations
    and transfers tables and domain.inventory.classify."""
    positions = expected_positions(store)
    for key, row in plan_rows(store).items():
        sellable, inbound = positions[key]
        assert (row["position_sellable"], row["inbound"]) == (sellable, inbound), key
        assert row["risk"] == classify(sellable=sellable, position=sellable + inbound,
                                       weekly_demand=row["weekly_demand"], lead_time_days=row["lead_time_days"],
                                       reorder_point=row["reorder_point"]), key


def test_the_saved_figures_are_the_planning_targets_and_agree_with_reorder(planned, store, clock):
    shop = planned.shops.require(S)
    routing = planned.inbox.routing(store, S, clock())
    targets = planned.planning.targets(S, planned.planning.stored_forecasts(store, S), routing, clock())
    rows = plan_rows(store)
    for (sku, node), target in targets.items():
        if (sku, node) not in rows:  # no demand and no stock there: nothing to show
            assert target.weekly_demand == 0
            continue
        row = rows[(sku, node)]
        assert (row["safety_stock"], row["reorder_point"], row["target_level"]) == (
            target.safety_stock, target.reorder_point, target.target_level)
        assert row["weekly_demand"] == pytest.approx(target.weekly_demand)
        assert row["is_hub"] == (node == shop.planning.hub)
    # What `connector reorder` lists is exactly what the page marks for reordering or worse.
    reorder = {(s.sku, s.node) for s in planned.planning.reorder(store, S)}
    flagged = {key for key, row in rows.items() if row["risk"] <= Risk.BELOW_REORDER_POINT}
    assert reorder == flagged and reorder
    assert_rows_current(store)


def test_the_position_follows_stock_reservations_and_transfers(planned, store, clock):
    rng = random.Random(7)
    skus = [sku for sku, _ in DEMAND] + ["MIRROR-XL"]
    nodes = ["central", "ne-micro", "west-3pl", "popup-soho", "cold-room"]
    transfers = []
    for step in range(150):
        sku, node = rng.choice(skus), rng.choice(nodes)
        action = rng.choice(["count", "reserve", "release", "transfer", "advance", "sync", "plan"])
        if action == "plan":  # a full allocation run, or a debounced push's for two SKUs
            planned.planning.allocate(store, S, None if rng.random() < 0.3 else rng.sample(skus, 2))
            assert_rows_current(store)
            continue
        with store.write():
            if action == "count":  # a stock row updated: its trigger, or added: settled as the services do
                units = rng.randint(0, 150)
                store.set_stock(S, node, sku, on_hand=units, committed=0, available=units, source="test", now=clock())
                InventoryStore(store).stock_changed(S, rows=[(node, sku)])
            elif action == "reserve":
                store.reserve(S, f"o{step}", "1", node, sku, rng.randint(1, 30), clock())
            elif action == "release":
                for order_id, reservation in store.reservations_at(S, node, sku)[:1]:
                    store.release(reservation, S, "test", clock())
            elif action == "transfer":
                other = rng.choice([n for n in nodes if n != node])
                transfers.append(store.add_transfer(S, sku=sku, from_node=other, to_node=node, units=rng.randint(1, 20),
                                                    unit_cost=0.5, lead_days=2, status="proposed", emergency=False,
                                                    approval_reason="", now=clock()))
            elif action == "advance" and transfers:
                transfer = store.transfer(rng.choice(transfers))
                following = {"proposed": "approved", "approved": "in_transit", "in_transit": "received"}
                if transfer["status"] in following:
                    store.set_transfer_status(transfer["id"], expected=transfer["status"],
                                              status=following[transfer["status"]], now=clock())
            elif action == "sync":
                # As the sync service does: the node's rows replaced, then the SKUs it no longer has settled.
                synced = rng.sample(skus, 3)
                store.replace_node_stock(S, node, [(s, 40, 0, 40) for s in synced], "test", clock())
                InventoryStore(store).stock_changed(S, [node], synced={node: synced})
        assert_rows_current(store)


def test_filters_and_pages(planned, store, clock):
    shop = planned.shops.require(S)
    everything = inventory_page(store, shop, Filters(), 1, clock())
    assert everything.total == len(plan_rows(store)) and everything.pages == 1
    assert [(r.sku, r.node_id) for r in everything.rows] == sorted((r.sku, r.node_id) for r in everything.rows)

    by_text = inventory_page(store, shop, Filters(sku_text="fig"), 1, clock())  # any case, any part
    assert {r.sku for r in by_text.rows} == {"CANDLE-FIG"} and by_text.total == 4
    assert inventory_page(store, shop, Filters(sku_text="%"), 1, clock()).total == 0  # a literal %, no wildcard
    by_node = inventory_page(store, shop, Filters(node_id="cold-room"), 1, clock())
    assert {r.node_id for r in by_node.rows} == {"cold-room"} and {r.sku for r in by_node.rows} == {
        "SERUM-ROSE", "SERUM-NEROLI"}
    by_category = inventory_page(store, shop, Filters(category="CANDLE-*"), 1, clock())
    assert {r.sku for r in by_category.rows} == {"CANDLE-FIG", "CANDLE-CEDAR"}
    assert "CANDLE-*" in by_category.categories
    at_risk = inventory_page(store, shop, Filters(at_risk=True), 1, clock())
    assert at_risk.total == at_risk.risk_rows > 0 and all(r.risk.at_risk for r in at_risk.rows)
    assert [(r.sku, r.node_id) for r in at_risk.risks] == [
        (r.sku, r.node_id) for r in sorted(at_risk.rows, key=lambda r: (r.risk, r.cover_days, r.sku, r.node_id))]

    unknown = inventory_page(store, shop, Filters(node_id="uk-hub", category="POTS"), 1, clock())
    assert set(unknown.problems) == {"node", "category"} and unknown.total == everything.total


def test_pages_split_the_rows_without_gaps_or_repeats(container, store, clock):
    with store.write():
        for i in range(PAGE_SIZE * 2 + 7):
            store.set_stock(S, "central", f"BULK-{i:04d}", on_hand=5, committed=0, available=5, source="t", now=clock())
        InventoryStore(store).stock_changed(S, ["central"])  # as a sync settles the rows it added
    shop = container.shops.require(S)
    first = inventory_page(store, shop, Filters(sku_text="BULK-"), 1, clock())
    assert (first.total, first.pages) == (PAGE_SIZE * 2 + 7, 3)
    seen = [r.sku for page in (1, 2, 3) for r in inventory_page(store, shop, Filters(sku_text="BULK-"), page,
                                                                 clock()).rows]
    assert seen == [f"BULK-{i:04d}" for i in range(PAGE_SIZE * 2 + 7)]
    assert inventory_page(store, shop, Filters(sku_text="BULK-"), 99, clock()).page == 3  # past the end: the last
    assert inventory_page(store, shop, Filters(sku_text="BULK-"), -4, clock()).page == 1


def test_stockout_risk_count_leaves_out_paused_places(planned, store, clock):
    shop = planned.shops.require(S)
    rows = plan_rows(store)
    at_risk = {sku for (sku, _), row in rows.items() if row["risk"] <= Risk.STOCKOUT_RISK}
    assert stockout_risk_count(store, shop, clock()) == len(at_risk) > 0
    # A place that alone puts some SKU at risk: paused, that SKU is no longer counted.
    risky = {(sku, node) for (sku, node), row in rows.items() if row["risk"] <= Risk.STOCKOUT_RISK}
    node = next(n for _, n in sorted(risky) if any(
        not any(m != n for s, m in risky if s == sku) for sku, m in risky if m == n))
    elsewhere = {sku for sku, m in risky if m != node}
    assert elsewhere < at_risk
    planned.shop_config.set_node_status(store, S, node, "paused", "maintenance", "test")
    assert stockout_risk_count(store, planned.shops.require(S), clock()) == len(elsewhere)


def test_a_skus_projection_counts_its_transfers_on_their_arrival_day(planned, store, clock):
    shop = planned.shops.require(S)
    with store.write():
        transfer_id = store.add_transfer(S, sku="CANDLE-FIG", from_node="central", to_node="popup-soho", units=40,
                                         unit_cost=0.5, lead_days=3, status="approved", emergency=False,
                                         approval_reason="", now=clock())
    detail = sku_detail(store, shop, "CANDLE-FIG", clock())
    popup = dict(detail.projections)["Holiday pop-up (SoHo, NYC)"]
    assert popup.units[:6] == (30, 20, 10, 40, 30, 20)  # 10 a day, 40 arriving on day 3
    assert [t["id"] for t in detail.transfers] == [transfer_id]
    assert len(detail.days) == len(popup.units) >= 28
    assert sku_detail(store, shop, "TERRARIUM-S", clock()) is None  # the other shop's SKU


def test_the_pages_in_the_test_client(planned, app, store):
    add_user(planned, SHOPIFY_USER, S)
    client = app.test_client()
    sign_in(client, SHOPIFY_USER)
    page = client.get("/inventory").get_data(as_text=True)
    assert "Stock-out risk" in page and "Days of cover" in page and "How long this place's stock lasts at the demand it is forecast to see" in page
    assert "ZINE-04" in page
    filtered = client.get("/inventory?node=nowhere&page=x").get_data(as_text=True)
    assert "There is no place called “nowhere”" in filtered
    sku_page = client.get("/inventory/CANDLE-FIG")
    assert sku_page.status_code == 200 and 'role="img"' in sku_page.get_data(as_text=True)
    assert client.get("/inventory/TERRARIUM-S").status_code == 404  # another shop's SKU
    assert client.get("/inventory/NO-SUCH-SKU").status_code == 404
    assert WOO_SHOP not in page


def test_counts_and_transfers_through_their_services_keep_the_rows_current(planned, store, clock):
    from connector.services.stock import set_manual_count
    set_manual_count(store, S, "popup-soho", "TEE-LOGO-M", 12, clock(), routing=planned.inbox.routing)  # a new row
    assert plan_rows(store)[("TEE-LOGO-M", "popup-soho")]["position_sellable"] == 12
    with store.write():
        transfer_id = store.add_transfer(S, sku="CANDLE-FIG", from_node="central", to_node="cold-room", units=25,
                                         unit_cost=0.5, lead_days=2, status="proposed", emergency=False,
                                         approval_reason="", now=clock())
    assert plan_rows(store)[("CANDLE-FIG", "cold-room")]["inbound"] == 25  # planned toward it: counted
    for step in (planned.transfers.approve, planned.transfers.ship, planned.transfers.receive):
        step(store, transfer_id, "test")
        assert_rows_current(store)
    row = plan_rows(store)[("CANDLE-FIG", "cold-room")]
    assert (row["position_sellable"], row["inbound"]) == (25, 0)  # arrived: on the shelf, no longer inbound


def test_the_allocation_run_settles_stock_no_one_settled(planned, store, clock):
    with store.write():  # a writer that did not call stock_changed: a new row, and a row gone
        store.set_stock(S, "ne-micro", "PRINT-A3", on_hand=33, committed=0, available=33, source="t", now=clock())
        store.conn.execute("DELETE FROM stock WHERE shop_id = ? AND node_id = 'west-3pl' AND sku = 'CANDLE-FIG'", (S,))
    planned.planning.allocate(store, S)
    assert_rows_current(store)
    rows = plan_rows(store)
    assert rows[("PRINT-A3", "ne-micro")]["position_sellable"] == 33
    assert rows[("CANDLE-FIG", "west-3pl")]["risk"] == Risk.OUT_OF_STOCK


def test_a_nodes_first_big_sync_adds_its_rows_in_one_pass(planned, store, clock):
    from connector.inventory_store import BULK_ROWS
    synced = [f"NEW-{i:05d}" for i in range(BULK_ROWS + 5)] + ["CANDLE-FIG"]
    with store.write():
        store.reserve(S, "o-1", "1", "ne-micro", "NEW-00003", 2, clock())
        store.replace_node_stock(S, "ne-micro", [(sku, 9, 0, 9) for sku in synced], "test", clock())
        assert InventoryStore(store).stock_changed(S, ["ne-micro"], synced={"ne-micro": synced}) >= len(synced) - 1
    assert_rows_current(store)
    rows = plan_rows(store)
    assert rows[("NEW-00003", "ne-micro")]["position_sellable"] == 7 and rows[("CANDLE-FIG", "ne-micro")][
        "position_sellable"] == 9
