"""A move the store refused (Shopify's fulfillment order where work already started) is an
item of the action centre with the store's reason; "Try the move again" asks the store
again, and once the move succeeds the item is gone. Against the Shopify fixtures of
tests/integration/test_store_handoff.py."""
from __future__ import annotations

import responses

from connector.services.attention import needs_you
from tests.conftest import SHOPIFY_SHOP, fixture_json
from tests.shopify_admin import GRAPHQL_URL
from tests.integration.test_store_handoff import ORDER_ID, ShopifyAdmin, config_dict, shopify_order  # noqa: F401


def moves(container, store):
    found = needs_you(store, container.shops.require(SHOPIFY_SHOP), container.settings, container.clock())
    return [i for i in found if i.kind == "move_refused"]


def test_a_refused_move_is_listed_with_the_stores_reason_and_tried_again(container, store, rsps, clock):
    node = shopify_order(container, store)
    admin = ShopifyAdmin(rsps)
    admin.move_answer = "fulfillment_order_move_reported_progress.json"
    assert container.handoff.process_due(store).refused == 1

    [item] = moves(container, store)
    name = container.shops.require(SHOPIFY_SHOP).network.nodes[node].name
    assert item.key == f"move_refused:{ORDER_ID}" and item.urgency == 0 and item.section == "Telling your store"
    assert item.title == f"Order #1042: your store did not move it to {name}"
    assert item.detail.startswith(f"Shopify refused to move the items to {node}: Cannot move a fulfillment order "
                                  "that has progress reported.")
    assert [(a.endpoint, dict(a.args), a.cli) for a in item.actions] == [
        ("packing.retry_handoff", {"order_id": ORDER_ID}, f"connector handoff --shop {SHOPIFY_SHOP} --retry {ORDER_ID}")]

    admin.move_answer = "fulfillment_order_move_moved.json"  # the work at the other location was stopped
    clock.advance(minutes=5)
    container.handoff.retry(store, SHOPIFY_SHOP, ORDER_ID, "web:maker@candles.example")
    container.handoff.process_due(store)
    assert len(admin.operations("fulfillmentOrderMove")) == 2
    assert moves(container, store) == []


def test_a_store_that_refuses_to_be_told_for_good_is_listed_and_tried_again(container, store, rsps, clock):
    shopify_order(container, store)
    rsps.add(responses.POST, GRAPHQL_URL, status=401, json=fixture_json("shopify", "admin_api_unauthorized.json"))
    assert container.handoff.process_due(store).failed == 1

    found = needs_you(store, container.shops.require(SHOPIFY_SHOP), container.settings, container.clock())
    [item] = [i for i in found if i.kind == "handoff_failed"]
    assert item.section == "Telling your store" and item.urgency == 1
    assert item.title == "Order #1042: your store was not told where it ships from"
    assert item.detail.startswith("shopify: shop aurora-candles.myshopify.com refused the access token")
    assert "The connector stopped trying after the store said no." in item.detail
    assert [(a.endpoint, dict(a.args)) for a in item.actions] == [("packing.retry_handoff", {"order_id": ORDER_ID})]

    rsps.reset()
    ShopifyAdmin(rsps)  # the app's access is back
    container.handoff.retry(store, SHOPIFY_SHOP, ORDER_ID, "web:maker@candles.example")
    clock.advance(minutes=1)
    container.handoff.process_due(store)
    found = needs_you(store, container.shops.require(SHOPIFY_SHOP), container.settings, container.clock())
    assert [i for i in found if i.kind == "handoff_failed"] == []
