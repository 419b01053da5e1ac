"""Route an exception to a node in a real browser (Debian's Chromium through Playwright) and
see it routed, then moved in Shopify: the hand-off runs through the real Shopify adapter
against answers shaped from Shopify's docs (tests/fixtures/shopify/, ``responses``)."""
from __future__ import annotations

import random

import pytest
import responses

from connector import handoff_store, sandbox
from connector.bootstrap import build, utc_now
from connector.config import settings_from_dict
from tests.conftest import SHOPIFY_SECRET, SHOPIFY_SHOP, WOO_SECRET
from tests.e2e.conftest import PUBLIC_URL, USER, shot, sign_in
from tests.shopify_admin import ShopifyAdmin
from tests.web import add_user

ORDER_ID = "450789469"  # the fixtures' order: lines 4507894690 (CANDLE-FIG) and 4507894691 (CANDLE-CEDAR)
LOCATIONS = {"central": "gid://shopify/Location/101", "ne-micro": "gid://shopify/Location/102",
             "west-3pl": "gid://shopify/Location/103", "cold-room": "gid://shopify/Location/104",
             "popup-soho": "gid://shopify/Location/105"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The Shopify shop with an Admin API token and each node at a Shopify location; order
    #1042's cedar candle is an exception (no node has 500 of them), its fig candles routed."""
    now = utc_now()
    tmp = tmp_path_factory.mktemp("browser-handoff")
    config = sandbox.demo_config(now, str(tmp / "t.db"), SHOPIFY_SECRET, WOO_SECRET)
    config["web"]["public_url"] = PUBLIC_URL
    shop = config["shops"][SHOPIFY_SHOP]
    shop["storefront"]["access_token"] = "shpat_browser_handoff"
    for node in shop["nodes"]:
        node["shopify_location"] = LOCATIONS[node["id"]]
    container = build(settings_from_dict(config))
    container.init_database()
    store = container.open_store()
    try:
        sandbox.seed_stock(store, now)
        payload = sandbox.shopify_order(random.Random(3), int(ORDER_ID), 1042, now, lines=2)
        for line, (sku, title, units) in zip(payload["line_items"], (("CANDLE-FIG", "Fig candle", 2),
                                                                     ("CANDLE-CEDAR", "Cedar Hour candle", 500))):
            line.update(sku=sku, title=title, name=title, quantity=units, current_quantity=units,
                        fulfillable_quantity=units)
        payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
        hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload)
        assert container.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
        container.inbox.process(store)
        exception = {d["line_id"]: d for d in store.current_decisions(SHOPIFY_SHOP, ORDER_ID)}["4507894691"]
        assert exception["exception"] == "partial_stock"
        with store.write():  # stock arrives at the central warehouse, nothing routes it by itself here
            store.set_stock(SHOPIFY_SHOP, "central", "CANDLE-CEDAR", on_hand=600, committed=0, available=600,
                            source="test", now=now)
    finally:
        store.close()
    add_user(container, USER, SHOPIFY_SHOP)
    return container


def test_route_an_exception_to_a_node_and_see_it_routed_and_moved_in_shopify(page, server, served):
    sign_in(page, server)
    page.wait_for_url(f"{server}/settings/")
    page.goto(f"{server}/actions/exceptions/{ORDER_ID}/4507894691")
    page.get_by_role("button", name="Ship from central").click()
    assert page.get_by_role("status").filter(has_text="now ships from central").is_visible()
    assert page.get_by_text("Ships from central (chosen by hand)").is_visible()
    shot(page, "handoff-routed-by-hand")

    store = served.open_store()
    try:
        decisions = {d["line_id"]: d["node_id"] for d in store.current_decisions(SHOPIFY_SHOP, ORDER_ID)}
        assert decisions["4507894691"] == "central"
        [queued] = handoff_store.handoffs(store, SHOPIFY_SHOP, order_id=ORDER_ID)
        assert (queued["status"], queued["generation"]) == ("pending", 2)  # first routing, then the person's choice
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            admin = ShopifyAdmin(rsps)
            # Shopify's own routing had put the whole order at the West Coast 3PL.
            admin.state["data"]["order"]["fulfillmentOrders"]["nodes"][0]["assignedLocation"] = {
                "name": "West Coast 3PL", "location": {"id": LOCATIONS["west-3pl"]}}
            report = served.handoff.process_due(store)
        assert (report.done, report.refused, report.errors) == (1, 0, [])
        moves = {m["newLocationId"]: [line["id"] for line in m["fulfillmentOrderLineItems"]]
                 for m in admin.operations("fulfillmentOrderMove")}
        assert moves == {LOCATIONS["central"]: ["gid://shopify/FulfillmentOrderLineItem/14035306611002"],
                         LOCATIONS[decisions["4507894690"]]: ["gid://shopify/FulfillmentOrderLineItem/14035306578234"]}
        assert handoff_store.refused_moves(store, SHOPIFY_SHOP) == []
        assert [e["detail"]["node_id"] for e in store.events(SHOPIFY_SHOP, "handoff.moved")].count("central") == 1
    finally:
        store.close()
