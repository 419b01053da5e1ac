"""Shipment facts from the stores' webhooks to the metrics: Shopify fulfillments/create
and fulfillments/update (fixtures shaped from Shopify's Fulfillment resource), a
WooCommerce order completed, and `connector metrics` reading the figures back."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from connector.shipment_store import ShipmentStore
from tests.conftest import SHOPIFY_SHOP, WOO_SHOP, fixture_bytes, fixture_json
from tests.e2e.test_webhooks import DOC_LINE_SHIPPED, DOC_ORDER_ID, doc_order_body, stock_doc_sku, woo_727_demo

DOC_PERIOD = ("--since", "2008-01-01", "--until", "2008-01-31")  # the documented order was placed 2008-01-10


def node_totals(store, shop_id: str, node_id: str) -> dict:
    row = store._dicts("SELECT SUM(parts_routed) routed, SUM(shipped) shipped, SUM(on_time) on_time, "
                       "SUM(in_full) in_full, SUM(delivered) delivered, SUM(delivery_days) days, "
                       "SUM(first_attempt_ok) first_ok FROM metric_days WHERE shop_id = ? AND node_id = ?",
                       (shop_id, node_id))[0]
    return {k: v for k, v in row.items() if v}


@pytest.fixture
def routed_doc_order(post_shopify, container, store, clock):
    """Shopify's documented order #1001 routed to central (the only node with its SKU)."""
    stock_doc_sku(store, clock, "central", 10)
    assert post_shopify(doc_order_body()).status_code == 200
    container.inbox.process(store)
    assert store.current_decisions(SHOPIFY_SHOP, DOC_ORDER_ID)[0]["node_id"] == "central"
    return DOC_ORDER_ID


def test_fulfillment_create_records_the_shipment_and_releases_the_stock(routed_doc_order, post_shopify, container,
                                                                        store):
    response = post_shopify(fixture_bytes("shopify", "fulfillments_create.json"), "fulfillments/create")
    assert response.status_code == 200 and response.get_json()["status"] == "pending"
    [row] = store._dicts("SELECT * FROM webhook_inbox WHERE topic = 'fulfillments/create'")
    assert row["resource_id"] == DOC_ORDER_ID  # redacted with its order (customers/redact)

    report = container.inbox.process(store)
    assert report.statuses == {"shipment_recorded": 1}
    fact, counted = ShipmentStore(store).fact(SHOPIFY_SHOP, DOC_ORDER_ID, "central")
    assert (fact.source, fact.carrier, fact.tracking_number) == ("shopify", "UPS", "1Z2345")
    assert fact.tracking_url.startswith("https://www.ups.com/")
    assert fact.shipped_at.isoformat() == "2008-01-10T18:00:00+00:00"
    assert fact.in_full is True  # its one line, in full
    assert store.active_reservations(SHOPIFY_SHOP, DOC_ORDER_ID) == []  # shipped: central holds nothing for it
    # Placed 11:00 New York, central's cutoff 15:00, shipped 13:00: on time, in full.
    assert node_totals(store, SHOPIFY_SHOP, "central") == {"routed": 1, "shipped": 1, "on_time": 1, "in_full": 1}


def test_the_same_fulfillment_again_counts_nothing_new(routed_doc_order, post_shopify, container, store):
    body = fixture_bytes("shopify", "fulfillments_create.json")
    post_shopify(body, "fulfillments/create")
    container.inbox.process(store)
    before = store._dicts("SELECT * FROM metric_days ORDER BY day, node_id, region_id")
    # Shopify retries with the same webhook id (deduplicated at the door) or sends an
    # update that repeats it (a new id): neither moves a counter.
    post_shopify(body, "fulfillments/create", webhook_id="same-id")
    assert post_shopify(body, "fulfillments/create", webhook_id="same-id").get_json()["duplicate"] is True
    post_shopify(body, "fulfillments/update")
    container.inbox.process(store)
    assert store._dicts("SELECT * FROM metric_days ORDER BY day, node_id, region_id") == before


def test_fulfillment_update_delivered_counts_delivery_days(routed_doc_order, post_shopify, container, store):
    post_shopify(fixture_bytes("shopify", "fulfillments_create.json"), "fulfillments/create")
    post_shopify(fixture_bytes("shopify", "fulfillments_update.json"), "fulfillments/update")
    container.inbox.process(store)
    totals = node_totals(store, SHOPIFY_SHOP, "central")
    assert totals["delivered"] == 1 and totals["first_ok"] == 1
    # 2008-01-10 11:00 -> 2008-01-12 10:30 New York: 1.98 days.
    assert totals["days"] == pytest.approx(1 + 23.5 / 24)


def test_an_attempted_delivery_is_a_failed_first_attempt(routed_doc_order, post_shopify, container, store):
    attempted = fixture_json("shopify", "fulfillments_update.json") | {"shipment_status": "attempted_delivery"}
    post_shopify(attempted, "fulfillments/update")
    post_shopify(fixture_bytes("shopify", "fulfillments_update.json"), "fulfillments/update")
    container.inbox.process(store)
    fact, counted = ShipmentStore(store).fact(SHOPIFY_SHOP, DOC_ORDER_ID, "central")
    assert fact.first_attempt_ok is False and fact.delivered_at is not None
    assert (counted.first_attempt_known, counted.first_attempt_ok) == (1, 0)


def test_a_fulfillment_names_its_node_by_the_shopify_location(config_dict, tmp_path, clock):
    from connector.bootstrap import build
    from connector.config import settings_from_dict
    from tests.conftest import initialised, shopify_headers

    shop = config_dict["shops"][SHOPIFY_SHOP]
    for node in shop["nodes"]:
        if node["id"] == "ne-micro":
            node["shopify_location"] = "gid://shopify/Location/487838322"
    container = initialised(build(settings_from_dict(config_dict), clock=clock), clock)
    store = container.open_store()
    try:
        stock_doc_sku(store, clock, "central", 10)
        for topic, body in (("orders/create", doc_order_body()),
                            ("fulfillments/create", fixture_bytes("shopify", "fulfillments_create.json"))):
            assert container.inbox.ingest(store, "shopify", body, shopify_headers(body, topic)).status == 200
        container.inbox.process(store)
        # Routed to central, but Shopify says it left from ne-micro's location: the parcel is ne-micro's.
        assert ShipmentStore(store).fact(SHOPIFY_SHOP, DOC_ORDER_ID, "ne-micro") is not None
        assert ShipmentStore(store).fact(SHOPIFY_SHOP, DOC_ORDER_ID, "central") is None
        assert store.active_reservations(SHOPIFY_SHOP, DOC_ORDER_ID)[0].node_id == "central"  # still held there
    finally:
        store.close()


def test_a_fulfillment_for_an_unknown_order_is_recorded_as_such(post_shopify, container, store):
    post_shopify(fixture_bytes("shopify", "fulfillments_create.json"), "fulfillments/create")
    assert container.inbox.process(store).statuses == {"unknown_order": 1}


def test_a_malformed_fulfillment_is_refused_with_the_field(post_shopify, store):
    body = fixture_json("shopify", "fulfillments_create.json") | {"created_at": "yesterday"}
    response = post_shopify(body, "fulfillments/create")
    assert response.status_code == 400
    assert "created_at" in response.get_json()["detail"]


def test_woocommerce_completed_records_each_routed_node_as_shipped(post_woo, container, store):
    post_woo(woo_727_demo())
    container.inbox.process(store)
    nodes = {d["node_id"] for d in store.current_decisions(WOO_SHOP, "727")}
    completed = woo_727_demo() | {"status": "completed", "date_modified_gmt": "2017-03-23T09:00:00",
                                  "date_completed": "2017-03-23T10:00:00", "date_completed_gmt": "2017-03-23T09:00:00"}
    post_woo(completed, "order.updated")
    post_woo(completed | {"date_modified_gmt": "2017-03-23T09:05:00"}, "order.updated")  # said twice
    container.inbox.process(store)
    for node_id in nodes:
        fact, counted = ShipmentStore(store).fact(WOO_SHOP, "727", node_id)
        assert fact.source == "woocommerce" and fact.shipped_at.isoformat() == "2017-03-23T09:00:00+00:00"
        assert counted.shipped == 1
    shipped = store._dicts("SELECT SUM(shipped) n FROM metric_days WHERE shop_id = ?", (WOO_SHOP,))[0]["n"]
    assert shipped == len(nodes)


def test_metrics_cli_reads_the_figures_back(routed_doc_order, post_shopify, container, store, cli):
    post_shopify(fixture_bytes("shopify", "fulfillments_create.json"), "fulfillments/create")
    post_shopify(fixture_bytes("shopify", "fulfillments_update.json"), "fulfillments/update")
    container.inbox.process(store)

    result = cli("metrics", "--shop", SHOPIFY_SHOP, *DOC_PERIOD)
    assert result.exit_code == 0, result.output
    assert "orders routed 1; parcels shipped 1, not shipped yet 0, delivered 1" in result.output
    assert "on time rate: 100%" in result.output
    assert "node central: routed 1, shipped 1, on time 100%" in result.output
    assert "region us-rest: delivery 2.0 days (1 delivered)" in result.output

    [report] = json.loads(cli("metrics", "--shop", SHOPIFY_SHOP, "--node", "central", "--json", *DOC_PERIOD).output)
    assert report["node_id"] == "central"
    assert report["total"]["on_time_rate"] == 1.0 and report["total"]["shipped"] == 1
    assert report["days"]["2008-01-10"]["shipped"] == 1 and report["days"]["2008-01-11"]["shipped"] == 0


def test_metrics_cli_says_when_there_is_nothing_yet(cli):
    result = cli("metrics", "--shop", SHOPIFY_SHOP)
    assert result.exit_code == 0
    assert "on time rate: no shipments yet" in result.output
    assert "exception rate: no orders yet" in result.output
    assert "nan" not in result.output.lower()


@pytest.mark.parametrize("args, error", [
    (("--since", "2026-13-01"), "--since: expected a date as YYYY-MM-DD, got '2026-13-01'"),
    (("--until", "tomorrow"), "--until: expected a date as YYYY-MM-DD, got 'tomorrow'"),
    (("--shop", "nope"), "unknown shop 'nope'"),
    (("--node", "the-moon"), "unknown node 'the-moon'"),
    (("--since", "2026-11-20", "--until", "2026-11-01"), "metrics: the period starts (2026-11-20) after it ends"),
])
def test_metrics_cli_bad_input_is_one_line(cli, args, error):
    result = cli("metrics", *args)
    assert result.exit_code != 0
    assert error in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
