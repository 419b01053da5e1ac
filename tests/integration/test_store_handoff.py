"""The decision happens in the store: the hand-off queue against Shopify's GraphQL Admin API
and WooCommerce's REST API (``responses``, answers shaped from the docs under
tests/fixtures/), through the real adapters, the service and the database."""
from __future__ import annotations

import json
import random
import re

import graphql
import pytest
import requests
import responses

from adapters.shopify_fulfillment import FULFILLMENT_CREATE, FULFILLMENT_ORDER_MOVE, ORDER_FULFILLMENT_ORDERS_QUERY
from connector import handoff_store, sandbox
from tests.conftest import SHOPIFY_SECRET, SHOPIFY_SHOP, WOO_SECRET, WOO_SHOP, WOO_URL, fixture_json
from tests.shopify_admin import ShopifyAdmin

LOCATIONS = {"central": "gid://shopify/Location/101", "ne-micro": "gid://shopify/Location/102",
             "west-3pl": "gid://shopify/Location/103", "cold-room": "gid://shopify/Location/104",
             "popup-soho": "gid://shopify/Location/105"}
ORDER_ID = "450789469"  # the fixtures' order; its lines are 4507894690 and 4507894691
TRACKING = "9400111899223197428490"
WOO_API = f"{WOO_URL}/wp-json/wc/v3"


@pytest.fixture
def config_dict(config_dict):
    shopify = config_dict["shops"][SHOPIFY_SHOP]
    shopify["storefront"]["access_token"] = "shpat_handoff_test_token"
    for node in shopify["nodes"]:
        node["shopify_location"] = LOCATIONS[node["id"]]
    config_dict["shops"][WOO_SHOP]["storefront"] = {"consumer_key": "ck_handoff_test", "consumer_secret": "cs_handoff_test"}
    return config_dict


def shopify_order(container, store):
    """Order #1042 (the fixtures' order id and lines) for New York, routed; returns its node."""
    payload = sandbox.shopify_order(random.Random(3), int(ORDER_ID), 1042, container.clock(), lines=2)
    for line, (sku, units) in zip(payload["line_items"], (("CANDLE-FIG", 2), ("CANDLE-CEDAR", 1))):
        line.update(sku=sku, quantity=units, current_quantity=units, fulfillable_quantity=units)
    payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload)
    assert container.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
    container.inbox.process(store)
    nodes = {d["node_id"] for d in store.current_decisions(SHOPIFY_SHOP, ORDER_ID)}
    assert len(nodes) == 1 and None not in nodes, nodes
    return nodes.pop()


def test_the_documents_sent_parse():
    for document in (ORDER_FULFILLMENT_ORDERS_QUERY, FULFILLMENT_ORDER_MOVE, FULFILLMENT_CREATE):
        graphql.parse(document)


def test_a_routing_decision_queues_the_order_in_the_same_transaction(container, store):
    shopify_order(container, store)
    [row] = handoff_store.handoffs(store, SHOPIFY_SHOP)
    assert (row["order_id"], row["kind"], row["status"], row["generation"]) == (ORDER_ID, "decision", "pending", 1)


def test_the_orders_fulfillment_order_moves_to_the_chosen_nodes_location(container, store, rsps):
    node = shopify_order(container, store)
    admin = ShopifyAdmin(rsps)
    report = container.handoff.process_due(store)
    assert (report.done, report.refused, report.errors) == (1, 0, [])
    [move] = admin.operations("fulfillmentOrderMove")
    assert move == {"id": "gid://shopify/FulfillmentOrder/6311220666426", "newLocationId": LOCATIONS[node],
                    "fulfillmentOrderLineItems": None}
    assert [e["kind"] for e in store.events(SHOPIFY_SHOP, "handoff.moved")] == ["handoff.moved"]
    assert handoff_store.handoffs(store, SHOPIFY_SHOP)[0]["status"] == "done"
    assert handoff_store.refused_moves(store, SHOPIFY_SHOP) == []
    # Told again (a retry, a reroute to the same node): the state is read, nothing moves twice.
    with store.write():
        handoff_store.queue_decision_change(store, SHOPIFY_SHOP, ORDER_ID, container.clock())
    assert container.handoff.process_due(store).done == 1
    assert len(admin.operations("fulfillmentOrderMove")) == 1
    assert len(admin.operations("orderFulfillmentOrders")) == 2


def test_a_fulfillment_order_already_in_progress_is_never_moved(container, store, rsps):
    node = shopify_order(container, store)
    admin = ShopifyAdmin(rsps, "fulfillment_orders_in_progress.json")
    assert container.handoff.process_due(store).refused == 1
    assert admin.operations("fulfillmentOrderMove") == []
    [refused] = handoff_store.refused_moves(store, SHOPIFY_SHOP)
    assert (refused["order_id"], refused["number"], refused["node_id"]) == (ORDER_ID, "#1042", node)
    assert refused["reason"] == ("Shopify's fulfillment order at Columbus warehouse was not moved: "
                                 "work on it has started in Shopify (in progress)")
    [event] = store.events(SHOPIFY_SHOP, "handoff.move_refused")
    assert event["detail"]["node_id"] == node


def test_a_request_already_submitted_to_a_fulfillment_service_is_never_moved(container, store, rsps):
    shopify_order(container, store)
    admin = ShopifyAdmin(rsps, "fulfillment_orders_submitted.json")
    container.handoff.process_due(store)
    assert admin.operations("fulfillmentOrderMove") == []
    assert "a fulfillment request was already sent" in handoff_store.refused_moves(store, SHOPIFY_SHOP)[0]["reason"]


def test_a_move_shopify_refuses_because_work_started_is_listed_with_its_reason_until_a_move_succeeds(
        container, store, rsps, clock):
    node = shopify_order(container, store)
    admin = ShopifyAdmin(rsps)
    admin.move_answer = "fulfillment_order_move_reported_progress.json"
    report = container.handoff.process_due(store)
    assert (report.done, report.refused) == (1, 1)
    [refused] = handoff_store.refused_moves(store, SHOPIFY_SHOP)
    assert refused["reason"].startswith(f"Shopify refused to move the items to {node}: "
                                        "Cannot move a fulfillment order that has progress reported.")
    # The merchant marks it open again in Shopify; the order is routed again (a reroute): moved, refusal gone.
    admin.move_answer = "fulfillment_order_move_moved.json"
    with store.write():
        handoff_store.queue_decision_change(store, SHOPIFY_SHOP, ORDER_ID, clock.advance(minutes=5))
    container.handoff.process_due(store)
    assert len(admin.operations("fulfillmentOrderMove")) == 2
    assert handoff_store.refused_moves(store, SHOPIFY_SHOP) == []


def test_a_node_without_a_shopify_location_is_a_refused_move_saying_what_to_do(container, store, rsps):
    node = shopify_order(container, store)
    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    next(n for n in document["nodes"] if n["id"] == node).pop("shopify_location")
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    container.shops.refresh()
    admin = ShopifyAdmin(rsps)
    container.handoff.process_due(store)
    assert admin.operations("fulfillmentOrderMove") == []
    assert handoff_store.refused_moves(store, SHOPIFY_SHOP)[0]["reason"] == (
        f"{node} has no Shopify location: choose its Shopify location in Settings › Nodes")
    # The creator picks the location, then asks for another try (the action beside the refusal).
    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    next(n for n in document["nodes"] if n["id"] == node)["shopify_location"] = LOCATIONS[node]
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    container.shops.refresh()
    assert container.handoff.retry(store, SHOPIFY_SHOP, "#1042", "web:maker@candles.example")["due"] == 1
    assert container.handoff.process_due(store).done == 1
    assert [m["newLocationId"] for m in admin.operations("fulfillmentOrderMove")] == [LOCATIONS[node]]
    assert handoff_store.refused_moves(store, SHOPIFY_SHOP) == []
    assert store.events(SHOPIFY_SHOP, "handoff.retry")[0]["detail"]["by"] == "web:maker@candles.example"


def test_a_move_whose_answer_is_lost_is_looked_up_and_never_sent_twice(container, store, rsps, clock):
    shopify_order(container, store)
    admin = ShopifyAdmin(rsps)
    admin.lose_answer_of.add("fulfillmentOrderMove")
    report = container.handoff.process_due(store)
    assert report.retrying == 1 and "outcome unknown" in report.errors[0]
    [row] = handoff_store.handoffs(store, SHOPIFY_SHOP)
    assert row["status"] == "pending" and row["attempts"] == 1 and "ProviderOutcomeUnknown" in row["last_error"]
    assert container.handoff.process_due(store).done == 0  # backing off
    clock.advance(minutes=2)
    assert container.handoff.process_due(store).done == 1
    assert len(admin.operations("fulfillmentOrderMove")) == 1  # Shopify had done it: the read shows it there
    assert handoff_store.handoffs(store, SHOPIFY_SHOP)[0]["status"] == "done"


def test_a_shipment_is_fulfilled_in_shopify_with_its_tracking_once(container, store, rsps, clock):
    node = shopify_order(container, store)
    admin = ShopifyAdmin(rsps)
    container.handoff.process_due(store)  # the decision: moved to the node's location
    container.handoff.mark_shipped(store, SHOPIFY_SHOP, "#1042", node, "USPS", TRACKING,
                                   "https://tools.usps.com/go/TrackConfirmAction?tLabels=" + TRACKING, "cli")
    admin.lose_answer_of.add("fulfillmentCreate")
    assert container.handoff.process_due(store).retrying == 1
    clock.advance(minutes=2)
    assert container.handoff.process_due(store).done == 1
    [created] = admin.operations("fulfillmentCreate")  # the retry found the tracking number in Shopify
    assert created["fulfillment"] == {
        "lineItemsByFulfillmentOrder": [{
            "fulfillmentOrderId": "gid://shopify/FulfillmentOrder/6311220666426",
            "fulfillmentOrderLineItems": [{"id": "gid://shopify/FulfillmentOrderLineItem/14035306578234", "quantity": 2},
                                          {"id": "gid://shopify/FulfillmentOrderLineItem/14035306611002", "quantity": 1}]}],
        "notifyCustomer": True,
        "trackingInfo": {"company": "USPS", "number": TRACKING,
                         "url": "https://tools.usps.com/go/TrackConfirmAction?tLabels=" + TRACKING}}
    assert [e["kind"] for e in store.events(SHOPIFY_SHOP, "handoff.shipment_written")] == ["handoff.shipment_written"]


def test_a_fulfillment_shopify_refuses_fails_with_its_message(container, store, rsps):
    node = shopify_order(container, store)
    admin = ShopifyAdmin(rsps)
    container.handoff.process_due(store)
    container.handoff.mark_shipped(store, SHOPIFY_SHOP, "#1042", node, "USPS", TRACKING, None, "cli")
    admin.create_answer = "fulfillment_create_user_errors.json"
    report = container.handoff.process_due(store)
    assert report.failed == 1
    row = handoff_store.handoffs(store, SHOPIFY_SHOP, statuses=["failed"])[0]
    assert "has an unfulfillable status= closed" in row["last_error"]
    assert "shpat_handoff_test_token" not in row["last_error"]


# ---------------------------------------------------------------- WooCommerce


def woo_order(container, store, order_id: int = 727, topic: str = "order.created", meta=None, modified=None,
              short: int = 0):
    """Order 727 to Bristol: one terrarium, and with ``short`` a second line of that many
    units no node holds (an exception line)."""
    payload = sandbox.woo_order(random.Random(order_id), order_id, container.clock())
    payload["line_items"] = payload["line_items"][:1]
    payload["line_items"][0].update(sku="TERRARIUM-S", quantity=1)
    if short:
        payload["line_items"].append({**payload["line_items"][0], "id": order_id * 10 + 1, "sku": "TERRARIUM-S",
                                      "quantity": short})
    payload["shipping"].update(country="GB", postcode="BS1 4DJ", city="Bristol", state="")
    if meta is not None:
        payload["meta_data"] = meta
    if modified is not None:
        payload["date_modified_gmt"] = payload["date_modified"] = modified
    hook = sandbox.woo_webhook(WOO_SECRET, payload, topic)
    assert container.inbox.ingest(store, "woocommerce", hook.body, hook.headers).status == 200
    container.inbox.process(store)
    return payload


@pytest.fixture
def woo(rsps):
    """The store's order endpoints: the PUT answers the order with its meta, the notes as added."""
    notes = fixture_json("woocommerce", "order_727_notes.json")
    sent = {"put": [], "post": []}

    def put(request):
        sent["put"].append(json.loads(request.body))
        return 200, {}, json.dumps(fixture_json("woocommerce", "order_727_with_fulfillment_meta.json"))

    def post(request):
        body = json.loads(request.body)
        sent["post"].append(body)
        note = {**fixture_json("woocommerce", "order_note_created.json"), "id": 282 + len(notes),
                "note": body["note"], "customer_note": body["customer_note"]}
        notes.append(note)
        if sent.get("lose_post"):
            sent["lose_post"] = False
            raise requests.exceptions.ReadTimeout("the answer never came")
        return 201, {}, json.dumps(note)

    rsps.add_callback(responses.PUT, f"{WOO_API}/orders/727", callback=put, content_type="application/json")
    rsps.add_callback(responses.GET, re.compile(re.escape(f"{WOO_API}/orders/727/notes") + r"(\?.*)?$"),
                      callback=lambda request: (200, {}, json.dumps(notes)), content_type="application/json")
    rsps.add_callback(responses.POST, f"{WOO_API}/orders/727/notes", callback=post, content_type="application/json")
    sent["notes"] = notes
    return sent


def test_a_woocommerce_order_gets_its_nodes_as_meta_and_one_private_note(container, store, woo):
    woo_order(container, store)
    nodes = [d["node_id"] for d in store.current_decisions(WOO_SHOP, "727")]
    report = container.handoff.process_due(store)
    assert (report.done, report.errors) == (1, [])
    [put] = woo["put"]
    names = container.shops.require(WOO_SHOP).network.nodes
    assert put == {"meta_data": [{"key": "_fulfillment_nodes", "value": ", ".join(nodes)},
                                 {"key": "Ships from", "value": "; ".join(names[n].name for n in nodes)}]}
    [note] = woo["post"]
    assert note == {"note": f"Ships from {names[nodes[0]].name} (fulfilment connector, decision 1).",
                    "customer_note": False}
    # Told again with the same nodes (an update routed nothing new): nothing is written.
    with store.write():
        handoff_store.queue_decision_change(store, WOO_SHOP, "727", container.clock())
    assert container.handoff.process_due(store).done == 1
    assert len(woo["put"]) == 1 and len(woo["post"]) == 1


def test_the_webhook_our_own_update_triggers_changes_nothing(container, store, woo, clock):
    woo_order(container, store, short=5000)
    assert [d["exception"] is not None for d in store.current_decisions(WOO_SHOP, "727")] == [False, True]
    container.handoff.process_due(store)
    decisions = store.current_decisions(WOO_SHOP, "727")
    [row] = handoff_store.handoffs(store, WOO_SHOP)
    # WooCommerce answers our PUT and the note with order.updated: the same order, our meta on it.
    later = clock.advance(seconds=30)
    woo_order(container, store, topic="order.updated", modified=later.replace(microsecond=0, tzinfo=None).isoformat(),
              meta=fixture_json("woocommerce", "order_727_with_fulfillment_meta.json")["meta_data"], short=5000)
    assert store.order(WOO_SHOP, "727").updated_at == later.replace(microsecond=0)  # applied, not ignored
    routed = [(d["line_id"], d["node_id"]) for d in store.current_decisions(WOO_SHOP, "727")]
    assert routed == [(d["line_id"], d["node_id"]) for d in decisions]
    # The exception line was routed again (so the order was queued again), but nothing is
    # written: no PUT, so WooCommerce sends no further order.updated.
    [queued] = handoff_store.handoffs(store, WOO_SHOP)
    assert (queued["generation"], queued["status"]) == (row["generation"] + 1, "pending")
    assert container.handoff.process_due(store).done == 1
    assert (len(woo["put"]), len(woo["post"])) == (1, 1)
    assert [r["status"] for r in handoff_store.handoffs(store, WOO_SHOP)] == ["done"]


def test_a_note_whose_answer_was_lost_is_found_before_posting_again(container, store, woo, clock):
    woo_order(container, store)
    woo["lose_post"] = True
    assert container.handoff.process_due(store).retrying == 1
    clock.advance(minutes=2)
    assert container.handoff.process_due(store).done == 1
    assert len(woo["post"]) == 1  # the notes were read first: ours was there


def test_a_woocommerce_shipment_notes_the_tracking_to_the_customer_and_completes_the_order(container, store, woo):
    woo_order(container, store)
    container.handoff.process_due(store)
    [node] = {d["node_id"] for d in store.current_decisions(WOO_SHOP, "727")}
    container.handoff.mark_shipped(store, WOO_SHOP, "727", node, "Royal Mail", "RM123456785GB", None, "cli")
    assert container.handoff.process_due(store).done == 1
    assert woo["post"][-1] == {"note": "Shipped with Royal Mail, tracking RM123456785GB.", "customer_note": True}
    assert woo["put"][-1] == {"status": "completed"}  # its only node has shipped


def test_lines_marked_shipped_are_never_routed_again_by_a_later_update(container, store, rsps, clock):
    node = shopify_order(container, store)
    container.handoff.mark_shipped(store, SHOPIFY_SHOP, "#1042", node, "USPS", TRACKING, None, "cli")
    assert store.active_reservations(SHOPIFY_SHOP, ORDER_ID) == []
    decided = store.current_decisions(SHOPIFY_SHOP, ORDER_ID)
    # Shopify's orders/updated after the fulfillment (partly fulfilled orders stay open).
    payload = sandbox.shopify_order(random.Random(3), int(ORDER_ID), 1042, container.clock(), lines=2)
    for line, (sku, units) in zip(payload["line_items"], (("CANDLE-FIG", 2), ("CANDLE-CEDAR", 1))):
        line.update(sku=sku, quantity=units, current_quantity=units, fulfillable_quantity=0)
    payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
    payload["updated_at"] = clock.advance(minutes=3).isoformat()
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload, "orders/updated")
    assert container.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
    container.inbox.process(store)
    assert store.active_reservations(SHOPIFY_SHOP, ORDER_ID) == []
    assert store.current_decisions(SHOPIFY_SHOP, ORDER_ID) == decided


def test_a_second_parcel_from_a_node_keeps_the_first_parcels_lines_shipped(store, clock):
    with store.write():
        for line, tracking in (("1", "T1"), ("2", "T2")):
            handoff_store.queue_shipment(store, SHOPIFY_SHOP, "9", "garage",
                                         {"carrier": "USPS", "tracking_number": tracking, "lines": [[line, "A", 1]]},
                                         clock())
    assert sorted(handoff_store.shipped_lines(store, SHOPIFY_SHOP, "9")) == ["1", "2"]
    [row] = handoff_store.handoffs(store, SHOPIFY_SHOP, order_id="9")
    assert (row["detail"]["tracking_number"], row["generation"], row["status"]) == ("T2", 2, "pending")
