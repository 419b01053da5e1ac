"""Webhooks end to end through the Flask test client: verify, store, process, route,
reserve, release, and the privacy topics. HMAC vectors live in the adapter unit tests."""
from __future__ import annotations

import copy
import itertools
import json
import random
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from connector import sandbox
from tests.conftest import (
    SHOPIFY_DOMAIN,
    SHOPIFY_SECRET,
    SHOPIFY_SHOP,
    WOO_SECRET,
    WOO_SHOP,
    WOO_URL,
    fixture_bytes,
    fixture_json,
    shopify_headers,
    woo_body,
    woo_headers,
)
from tests.support import MALFORMED_CHUNKED

DOC_ORDER_ID = "450789469"  # Shopify's documented order (orders_create.json)
DOC_LINE_SHIPPED = "518995019"  # current_quantity 1, sku IPOD2008RED
DOC_LINE_REMOVED = "466157049"  # current_quantity 0


# ---------------------------------------------------------------- helpers


def inbox(store, shop_id: str | None = None) -> list[dict]:
    where, params = ("WHERE shop_id = ?", (shop_id,)) if shop_id else ("", ())
    return store._dicts(f"SELECT * FROM webhook_inbox {where} ORDER BY id", params)


def count(store, table: str, shop_id: str | None = None, where: str = "") -> int:
    clauses = [c for c in (("shop_id = ?" if shop_id else ""), where) if c]
    sql = f"SELECT COUNT(*) FROM {table}" + (" WHERE " + " AND ".join(clauses) if clauses else "")
    return store.conn.execute(sql, (shop_id,) if shop_id else ()).fetchone()[0]


def doc_order_body() -> bytes:
    """The documented order, byte for byte (ids are kept; only the file's bytes are sent)."""
    return fixture_bytes("shopify", "orders_create.json")


def stock_doc_sku(store, clock, node: str = "central", qty: int = 10) -> None:
    store.set_stock(SHOPIFY_SHOP, node, "IPOD2008RED", on_hand=qty, committed=0, available=qty, source="test",
                    now=clock())


def nyc_order(order_id: int = 5_550_001, number: int = 2001, *, lines=(("CANDLE-FIG", 2), ("ZINE-04", 1)),
              updated_at: datetime | None = None, customer_id: int | None = None, now: datetime) -> dict:
    """A sandbox-built Shopify order to SoHo (nyc-metro) with known SKUs and quantities."""
    order = sandbox.shopify_order(random.Random(order_id), order_id, number, now, lines=len(lines))
    for item, (sku, qty) in zip(order["line_items"], lines):
        item.update(sku=sku, quantity=qty, current_quantity=qty, fulfillable_quantity=qty)
    order["shipping_address"].update(city="New York", zip="10012", province="New York", province_code="NY",
                                     country="United States", country_code="US")
    if updated_at is not None:
        order["updated_at"] = updated_at.isoformat()
    if customer_id is not None:
        order["customer"]["id"] = customer_id
    return order


def woo_727_demo() -> dict:
    """WooCommerce's documented order 727, adapted to the demo shop: a London address
    and the shop's SKUs (line ids, dates and everything else as documented)."""
    order = fixture_json("woocommerce", "order_727.json")
    for part in ("billing", "shipping"):
        order[part].update(city="London", state="", postcode="E1 6AN", country="GB")
    order["line_items"][0]["sku"] = "SEEDS-MIX"  # quantity 2
    order["line_items"][1]["sku"] = "TERRARIUM-S"  # quantity 1
    return order


def sellable(store, shop_id: str, sku: str) -> dict[str, int]:
    return {node: qty for (node, s), qty in store.sellable(shop_id, [sku]).items() if s == sku}


def reservations(store, shop_id: str, order_id: str) -> dict[str, tuple[str, str, int]]:
    return {r.line_id: (r.node_id, r.sku, r.quantity) for r in store.active_reservations(shop_id, order_id)}


# ---------------------------------------------------------------- Shopify: the happy path


def test_documented_order_create_is_stored_raw_then_routed_and_reserved(client, container, store, clock):
    stock_doc_sku(store, clock, "central", 10)
    body = doc_order_body()
    response = client.post("/webhooks/shopify", data=body, headers=shopify_headers(body, webhook_id="wh-doc-1"))

    assert response.status_code == 200
    assert response.get_json()["status"] == "pending"
    assert response.get_json()["duplicate"] is False
    [row] = inbox(store)
    assert row["status"] == "pending"
    assert row["shop_id"] == SHOPIFY_SHOP and row["topic"] == "orders/create"
    assert row["webhook_id"] == "wh-doc-1"
    assert row["resource_id"] == DOC_ORDER_ID
    assert bytes(row["body"]) == body  # the exact bytes the signature covers
    assert store.order(SHOPIFY_SHOP, DOC_ORDER_ID) is None  # nothing applied before processing

    report = container.inbox.process(store)

    assert report.processed == 1 and report.failed == 0 and report.retrying == 0
    assert store.webhook(row["id"])["status"] == "processed"
    order = store.order(SHOPIFY_SHOP, DOC_ORDER_ID)
    assert order is not None
    assert (order.number, order.state, order.status, order.region_id) == ("#1001", "open", "routed", "us-rest")
    lines = {l["line_id"]: l for l in store.order_lines(SHOPIFY_SHOP, DOC_ORDER_ID)}
    assert set(lines) == {DOC_LINE_SHIPPED, DOC_LINE_REMOVED}
    assert lines[DOC_LINE_REMOVED]["quantity"] == 0 and lines[DOC_LINE_REMOVED]["skip_reason"]
    [decision] = store.current_decisions(SHOPIFY_SHOP, DOC_ORDER_ID)
    assert decision["line_id"] == DOC_LINE_SHIPPED
    assert decision["node_id"] == "central"  # the only node holding IPOD2008RED
    assert decision["rule"] and decision["explanation"]
    assert decision["exception"] is None
    assert reservations(store, SHOPIFY_SHOP, DOC_ORDER_ID) == {DOC_LINE_SHIPPED: ("central", "IPOD2008RED", 1)}
    assert sellable(store, SHOPIFY_SHOP, "IPOD2008RED") == {"central": 9}
    assert store.reservation_totals_drift() == []


def test_sandbox_order_every_line_decided_and_reserved(post_shopify, container, store, clock):
    order = nyc_order(lines=(("CANDLE-FIG", 2), ("TEE-LOGO-M", 3)), now=clock())
    before = {sku: sellable(store, SHOPIFY_SHOP, sku) for sku in ("CANDLE-FIG", "TEE-LOGO-M")}

    assert post_shopify(order).status_code == 200
    assert container.inbox.process(store).processed == 1

    order_id = str(order["id"])
    stored = store.order(SHOPIFY_SHOP, order_id)
    assert stored.status == "routed" and stored.region_id == "nyc-metro"
    decisions = {d["line_id"]: d for d in store.current_decisions(SHOPIFY_SHOP, order_id)}
    held = reservations(store, SHOPIFY_SHOP, order_id)
    assert set(decisions) == set(held) == {str(i["id"]) for i in order["line_items"]}
    for item in order["line_items"]:
        line_id, sku, qty = str(item["id"]), item["sku"], item["quantity"]
        decision = decisions[line_id]
        assert decision["node_id"] and decision["rule"] and decision["explanation"]
        assert decision["region_id"] == "nyc-metro"
        assert held[line_id] == (decision["node_id"], sku, qty)
        after = sellable(store, SHOPIFY_SHOP, sku)
        for node, was in before[sku].items():
            expected = was - qty if node == decision["node_id"] else was
            assert after[node] == expected, (sku, node)


# ---------------------------------------------------------------- Shopify: refused deliveries


def _assert_nothing_stored(store):
    assert count(store, "webhook_inbox") == 0
    assert count(store, "orders") == 0
    assert count(store, "reservations") == 0


def test_tampered_body_is_refused(client, store):
    body = doc_order_body()
    headers = shopify_headers(body)
    tampered = body.replace(b'"quantity": 1, "current_quantity": 1', b'"quantity": 1, "current_quantity": 9', 1)
    assert len(tampered) == len(body) and sum(a != b for a, b in zip(body, tampered)) == 1

    response = client.post("/webhooks/shopify", data=tampered, headers=headers)

    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    _assert_nothing_stored(store)
    # the untouched body with the same headers is accepted: the 401 was the byte, not the setup
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda h: h.pop("X-Shopify-Hmac-Sha256"), id="missing-hmac"),
        pytest.param(lambda h: h.update({"X-Shopify-Hmac-Sha256": ""}), id="empty-hmac"),
        pytest.param(lambda h, body=doc_order_body(): h.update(
            {"X-Shopify-Hmac-Sha256": sandbox.sign("some-other-apps-secret", body)}), id="other-secret"),
        pytest.param(lambda h, body=doc_order_body(): h.update(
            {"X-Shopify-Hmac-Sha256": sandbox.sign(WOO_SECRET, body)}), id="woo-shops-secret"),
        pytest.param(lambda h: h.update({"X-Shopify-Shop-Domain": "not-our-shop.myshopify.com"}), id="unknown-shop"),
        pytest.param(lambda h: h.pop("X-Shopify-Shop-Domain"), id="no-shop-domain"),
        pytest.param(lambda h: h.update({"X-Shopify-Shop-Domain": "fernleaf.example"}), id="woo-shop-as-shopify"),
    ],
)
def test_unauthenticated_shopify_deliveries_are_refused(client, store, change):
    body = doc_order_body()
    headers = shopify_headers(body)
    change(headers)

    response = client.post("/webhooks/shopify", data=body, headers=headers)

    assert response.status_code == 401
    assert response.is_json and response.get_json()["error"] == "unauthorized"
    _assert_nothing_stored(store)


def test_shop_domain_header_is_case_insensitive(client, store):
    body = doc_order_body()
    headers = shopify_headers(body, domain=SHOPIFY_DOMAIN.upper())
    assert client.post("/webhooks/shopify", data=body, headers=headers).status_code == 200
    assert count(store, "webhook_inbox", SHOPIFY_SHOP) == 1


# ---------------------------------------------------------------- Shopify: duplicates


def test_same_delivery_twice_is_stored_and_processed_once(client, container, store, clock):
    order = nyc_order(now=clock())
    body = json.dumps(order).encode()
    headers = shopify_headers(body, webhook_id="b2ad4c8e-dup")

    first = client.post("/webhooks/shopify", data=body, headers=headers)
    second = client.post("/webhooks/shopify", data=body, headers=headers)

    assert first.status_code == second.status_code == 200
    assert first.get_json()["duplicate"] is False
    assert second.get_json()["duplicate"] is True
    assert second.get_json()["id"] == first.get_json()["id"]
    assert count(store, "webhook_inbox") == 1

    assert container.inbox.process(store).processed == 1
    # Shopify retries after our 200 got lost: still one row, nothing more to do
    third = client.post("/webhooks/shopify", data=body, headers=headers)
    assert third.status_code == 200 and third.get_json()["duplicate"] is True
    assert container.inbox.process(store).processed == 0
    assert count(store, "webhook_inbox") == 1
    assert count(store, "reservations", SHOPIFY_SHOP) == len(order["line_items"])
    assert len(reservations(store, SHOPIFY_SHOP, str(order["id"]))) == len(order["line_items"])


# ---------------------------------------------------------------- Shopify: signed but bad bodies


def _order_without_id() -> bytes:
    order = fixture_json("shopify", "orders_create.json")
    del order["id"]
    return json.dumps(order).encode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"this is not json", id="not-json"),
        pytest.param(b'[{"id": 450789469}]', id="json-array"),
        pytest.param(_order_without_id(), id="order-without-id"),
        pytest.param(b'{"id": 450789469, "line_items": "lots"}', id="wrong-shape"),
        pytest.param(b"\xff\xfe{\x00", id="not-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_signed_unparseable_body_is_rejected_and_kept(client, container, store, body):
    response = client.post("/webhooks/shopify", data=body, headers=shopify_headers(body))

    assert response.status_code == 400
    assert response.is_json
    assert response.get_json()["error"] == "bad_request" and response.get_json()["detail"]
    [row] = inbox(store)
    assert row["status"] == "rejected"
    assert row["last_error"]
    assert bytes(row["body"]) == body
    assert container.inbox.process(store).processed == 0
    assert store.webhook(row["id"])["status"] == "rejected"
    assert count(store, "orders") == 0


def test_body_over_the_limit_is_413_json(client, container, store):
    limit = container.settings.web.max_body_bytes
    body = b'{"id": 1, "pad": "' + b"x" * limit + b'"}'
    response = client.post("/webhooks/shopify", data=body, headers=shopify_headers(body))

    assert response.status_code == 413
    assert response.is_json and response.get_json()["error"]
    assert count(store, "webhook_inbox") == 0


def test_unknown_topic_is_recorded_as_ignored(post_shopify, container, store):
    product = {"id": 632910392, "title": "IPod Nano - 8GB", "variants": [{"id": 808950810, "sku": "IPOD2008PINK"}]}

    response = post_shopify(product, "products/update")

    assert response.status_code == 200
    assert response.get_json()["status"] == "ignored"
    [row] = inbox(store)
    assert row["status"] == "ignored" and row["topic"] == "products/update"
    assert "products/update" in row["last_error"]
    assert container.inbox.process(store).processed == 0
    assert store.webhook(row["id"])["status"] == "ignored"
    assert count(store, "orders") == 0


# ---------------------------------------------------------------- Shopify: later events for an order


def test_documented_cancel_after_create_releases_everything(post_shopify, container, store, clock):
    stock_doc_sku(store, clock, "central", 10)
    post_shopify(doc_order_body())
    container.inbox.process(store)
    assert sellable(store, SHOPIFY_SHOP, "IPOD2008RED") == {"central": 9}

    assert post_shopify(fixture_bytes("shopify", "orders_cancelled.json"), "orders/cancelled").status_code == 200
    assert container.inbox.process(store).processed == 1

    assert reservations(store, SHOPIFY_SHOP, DOC_ORDER_ID) == {}
    assert sellable(store, SHOPIFY_SHOP, "IPOD2008RED") == {"central": 10}
    stored = store.order(SHOPIFY_SHOP, DOC_ORDER_ID)
    assert stored.state == "cancelled" and stored.status == "cancelled"
    assert store.current_decisions(SHOPIFY_SHOP, DOC_ORDER_ID) == []
    assert store.open_exceptions(SHOPIFY_SHOP) == []
    assert store.reservation_totals_drift() == []


def test_cancel_of_sandbox_order_gives_stock_back(post_shopify, container, store, clock):
    order = nyc_order(now=clock())
    before = {sku: sellable(store, SHOPIFY_SHOP, sku) for sku in ("CANDLE-FIG", "ZINE-04")}
    post_shopify(order)
    container.inbox.process(store)
    assert {sku: sellable(store, SHOPIFY_SHOP, sku) for sku in before} != before

    cancelled = {**order, "cancelled_at": (clock() + timedelta(minutes=5)).isoformat(), "cancel_reason": "customer",
                 "updated_at": (clock() + timedelta(minutes=5)).isoformat()}
    post_shopify(cancelled, "orders/cancelled")
    container.inbox.process(store)

    assert {sku: sellable(store, SHOPIFY_SHOP, sku) for sku in before} == before
    released = store._dicts("SELECT status, release_reason FROM reservations WHERE order_id = ?", (str(order["id"]),))
    assert released and all(r["status"] == "released" and r["release_reason"] == "cancelled" for r in released)


def test_documented_refund_releases_the_refunded_line(post_shopify, container, store, clock):
    stock_doc_sku(store, clock, "central", 10)
    post_shopify(doc_order_body())
    container.inbox.process(store)
    refund = fixture_json("shopify", "refunds_create.json")
    assert str(refund["order_id"]) == DOC_ORDER_ID
    assert str(refund["refund_line_items"][0]["line_item_id"]) == DOC_LINE_SHIPPED

    assert post_shopify(fixture_bytes("shopify", "refunds_create.json"), "refunds/create").status_code == 200
    assert container.inbox.process(store).processed == 1

    assert reservations(store, SHOPIFY_SHOP, DOC_ORDER_ID) == {}
    assert sellable(store, SHOPIFY_SHOP, "IPOD2008RED") == {"central": 10}
    line = {l["line_id"]: l for l in store.order_lines(SHOPIFY_SHOP, DOC_ORDER_ID)}[DOC_LINE_SHIPPED]
    assert line["quantity"] == 0


def _refund_for(order: dict, line: dict, qty: int, created_at: datetime, refund_id: int = 929361999) -> dict:
    """Shopify's documented refund shape, with ids matching ``order``."""
    refund = fixture_json("shopify", "refunds_create.json")
    refund.update(id=refund_id, order_id=order["id"], created_at=created_at.isoformat(),
                  processed_at=created_at.isoformat())
    refund["refund_line_items"][0].update(line_item_id=line["id"], quantity=qty)
    return refund


def test_partial_refund_shrinks_the_reservation(post_shopify, container, store, clock):
    order = nyc_order(lines=(("TEE-LOGO-M", 3),), now=clock())
    line = order["line_items"][0]
    post_shopify(order)
    container.inbox.process(store)
    [(node, _, qty)] = reservations(store, SHOPIFY_SHOP, str(order["id"])).values()
    assert qty == 3
    before = sellable(store, SHOPIFY_SHOP, "TEE-LOGO-M")[node]

    refund = _refund_for(order, line, 1, clock() + timedelta(hours=1))
    post_shopify(refund, "refunds/create")
    container.inbox.process(store)

    assert reservations(store, SHOPIFY_SHOP, str(order["id"])) == {str(line["id"]): (node, "TEE-LOGO-M", 2)}
    assert sellable(store, SHOPIFY_SHOP, "TEE-LOGO-M")[node] == before + 1
    # the same refund delivered again (new webhook id) is not applied twice
    post_shopify(refund, "refunds/create")
    container.inbox.process(store)
    assert reservations(store, SHOPIFY_SHOP, str(order["id"])) == {str(line["id"]): (node, "TEE-LOGO-M", 2)}
    assert store.reservation_totals_drift() == []


def test_orders_updated_adjusts_and_older_update_is_ignored(post_shopify, container, store, clock):
    t0 = clock()
    order = nyc_order(lines=(("TEE-LOGO-M", 3),), updated_at=t0, now=t0)
    order_id, line_id = str(order["id"]), str(order["line_items"][0]["id"])
    post_shopify(order)
    container.inbox.process(store)
    [(node, _, _)] = reservations(store, SHOPIFY_SHOP, order_id).values()
    start = sellable(store, SHOPIFY_SHOP, "TEE-LOGO-M")[node] + 3  # before the order

    # a later edit: 3 -> 1
    fewer = json.loads(json.dumps(order))
    fewer["updated_at"] = (t0 + timedelta(minutes=10)).isoformat()
    fewer["line_items"][0].update(current_quantity=1, fulfillable_quantity=1)
    post_shopify(fewer, "orders/updated")
    container.inbox.process(store)
    assert reservations(store, SHOPIFY_SHOP, order_id) == {line_id: (node, "TEE-LOGO-M", 1)}
    assert sellable(store, SHOPIFY_SHOP, "TEE-LOGO-M")[node] == start - 1

    # an older update arriving late (still quantity 3) changes nothing
    stale = json.loads(json.dumps(order))
    stale["updated_at"] = (t0 + timedelta(minutes=5)).isoformat()
    post_shopify(stale, "orders/updated")
    assert container.inbox.process(store).processed == 1
    assert reservations(store, SHOPIFY_SHOP, order_id) == {line_id: (node, "TEE-LOGO-M", 1)}
    assert sellable(store, SHOPIFY_SHOP, "TEE-LOGO-M")[node] == start - 1
    assert [e["subject"] for e in store.events(SHOPIFY_SHOP, "order.stale_update_ignored")] == [order_id]
    assert store.order(SHOPIFY_SHOP, order_id).updated_at == t0 + timedelta(minutes=10)

    # a later edit back up: 1 -> 2 (routed again, two units held)
    more = json.loads(json.dumps(order))
    more["updated_at"] = (t0 + timedelta(minutes=20)).isoformat()
    more["line_items"][0].update(quantity=2, current_quantity=2, fulfillable_quantity=2)
    post_shopify(more, "orders/updated")
    container.inbox.process(store)
    [(node2, sku2, qty2)] = reservations(store, SHOPIFY_SHOP, order_id).values()
    assert (sku2, qty2) == ("TEE-LOGO-M", 2)
    expected_total = sum(skus.get("TEE-LOGO-M", 0) for skus in sandbox.DEMO_STOCK[SHOPIFY_SHOP].values()) - 2
    assert sum(sellable(store, SHOPIFY_SHOP, "TEE-LOGO-M").values()) == expected_total
    assert store.reservation_totals_drift() == []


# ---------------------------------------------------------------- WooCommerce


def test_woo_ping_is_answered_and_not_stored(client, store):
    response = client.post("/webhooks/woocommerce", data=b"webhook_id=3",
                           headers={"Content-Type": "application/x-www-form-urlencoded",
                                    "User-Agent": "WooCommerce/9.4.0 Hookshot (WordPress/6.7)"})
    assert response.status_code == 200
    assert response.is_json and response.get_json().get("ping") is True
    assert count(store, "webhook_inbox") == 0


def test_woo_ping_lookalike_with_webhook_headers_needs_a_signature(client, store):
    response = client.post("/webhooks/woocommerce", data=b"webhook_id=3",
                           headers={"X-WC-Webhook-Source": WOO_URL + "/", "X-WC-Webhook-Topic": "order.created"})
    assert response.status_code == 401
    assert count(store, "webhook_inbox") == 0


def test_woo_order_created_is_routed(post_woo, container, store):
    order = woo_727_demo()
    before = {sku: sellable(store, WOO_SHOP, sku) for sku in ("SEEDS-MIX", "TERRARIUM-S")}

    response = post_woo(order)

    assert response.status_code == 200 and response.get_json()["status"] == "pending"
    [row] = inbox(store)
    assert row["shop_id"] == WOO_SHOP and row["resource_id"] == "727"
    assert bytes(row["body"]) == woo_body(order)
    assert container.inbox.process(store).processed == 1
    stored = store.order(WOO_SHOP, "727")
    assert (stored.number, stored.state, stored.status, stored.region_id) == ("727", "open", "routed", "uk")
    decisions = {d["line_id"]: d for d in store.current_decisions(WOO_SHOP, "727")}
    assert set(decisions) == {"315", "316"}
    for line_id, sku, qty in (("315", "SEEDS-MIX", 2), ("316", "TERRARIUM-S", 1)):
        d = decisions[line_id]
        assert d["node_id"] in ("uk-hub", "garage") and d["rule"] and d["explanation"]
        assert sellable(store, WOO_SHOP, sku)[d["node_id"]] == before[sku][d["node_id"]] - qty
    assert reservations(store, WOO_SHOP, "727") == {
        "315": (decisions["315"]["node_id"], "SEEDS-MIX", 2),
        "316": (decisions["316"]["node_id"], "TERRARIUM-S", 1),
    }


def test_woo_source_header_variants_identify_the_shop(post_woo, store):
    assert post_woo(woo_727_demo(), source="HTTPS://Fernleaf.Example").status_code == 200
    assert count(store, "webhook_inbox", WOO_SHOP) == 1


def test_woo_same_order_state_with_new_delivery_ids_is_deduplicated(client, container, store):
    body = woo_body(woo_727_demo())
    first = client.post("/webhooks/woocommerce", data=body, headers=woo_headers(body, delivery_id="aaaa1111"))
    second = client.post("/webhooks/woocommerce", data=body, headers=woo_headers(body, delivery_id="bbbb2222"))

    assert first.status_code == second.status_code == 200
    assert first.get_json()["duplicate"] is False and second.get_json()["duplicate"] is True
    assert count(store, "webhook_inbox") == 1
    assert container.inbox.process(store).processed == 1
    assert count(store, "reservations", WOO_SHOP) == 2


def test_woo_checkout_draft_is_ignored(post_woo, container, store):
    response = post_woo(fixture_json("woocommerce", "order_727_checkout_draft.json"))

    assert response.status_code == 200 and response.get_json()["status"] == "ignored"
    [row] = inbox(store)
    assert row["status"] == "ignored" and "checkout-draft" in row["last_error"]
    assert container.inbox.process(store).processed == 0
    assert count(store, "orders") == 0


def test_woo_order_deleted_releases(post_woo, container, store):
    before = {sku: sellable(store, WOO_SHOP, sku) for sku in ("SEEDS-MIX", "TERRARIUM-S")}
    post_woo(woo_727_demo())
    container.inbox.process(store)
    assert len(reservations(store, WOO_SHOP, "727")) == 2

    response = post_woo(fixture_json("woocommerce", "order_727_deleted.json"), "order.deleted")
    assert response.status_code == 200
    assert container.inbox.process(store).processed == 1

    assert reservations(store, WOO_SHOP, "727") == {}
    assert {sku: sellable(store, WOO_SHOP, sku) for sku in before} == before
    assert store.order(WOO_SHOP, "727").state == "cancelled"
    assert store.reservation_totals_drift() == []


def test_woo_cancelled_status_update_releases(post_woo, container, store):
    before = sellable(store, WOO_SHOP, "TERRARIUM-S")
    post_woo(woo_727_demo())
    container.inbox.process(store)
    cancelled = fixture_json("woocommerce", "order_727_cancelled.json")
    cancelled["shipping"] = woo_727_demo()["shipping"]
    post_woo(cancelled, "order.updated")
    container.inbox.process(store)
    assert reservations(store, WOO_SHOP, "727") == {}
    assert sellable(store, WOO_SHOP, "TERRARIUM-S") == before


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: woo_headers(body, secret="not-the-secret"), id="other-secret"),
        pytest.param(lambda body: woo_headers(body, secret=SHOPIFY_SECRET), id="shopify-shops-secret"),
        pytest.param(lambda body: {k: v for k, v in woo_headers(body).items() if k != "X-WC-Webhook-Signature"},
                     id="no-signature"),
        pytest.param(lambda body: woo_headers(body, source="https://someone-else.example/"), id="unknown-source"),
        pytest.param(lambda body: woo_headers(body + b" "), id="signature-of-other-bytes"),
    ],
)
def test_woo_bad_signature_is_refused(client, store, headers):
    body = woo_body(woo_727_demo())
    response = client.post("/webhooks/woocommerce", data=body, headers=headers(body))
    assert response.status_code == 401
    assert response.is_json and response.get_json()["error"] == "unauthorized"
    assert count(store, "webhook_inbox") == 0


def test_woo_signed_delivery_sent_to_the_shopify_url_is_refused(client, store):
    body = woo_body(woo_727_demo())
    response = client.post("/webhooks/shopify", data=body, headers=woo_headers(body))
    assert response.status_code == 401
    assert count(store, "webhook_inbox") == 0


# ---------------------------------------------------------------- compliance topics


CUSTOMER_ID = 191167  # the documented compliance payloads' customer
REQUESTED = [299938, 280263, 220458]


def compliance_body(name: str) -> bytes:
    return fixture_bytes("shopify", name).replace(b"{shop}.myshopify.com", SHOPIFY_DOMAIN.encode())


def _customers_orders(post_shopify, container, store, clock):
    """Two orders of the documented customer (ids from orders_requested) and one of someone else."""
    mine = [nyc_order(REQUESTED[0], 3001, customer_id=CUSTOMER_ID, now=clock()),
            nyc_order(REQUESTED[1], 3002, lines=(("ZINE-04", 1),), customer_id=CUSTOMER_ID, now=clock())]
    other = nyc_order(7_770_001, 3003, lines=(("ZINE-04", 1),), customer_id=555, now=clock())
    for order in (*mine, other):
        assert post_shopify(order).status_code == 200
    assert container.inbox.process(store).processed == 3
    return mine, other


def test_customers_data_request_exports_and_minimises(post_shopify, container, store, clock):
    mine, other = _customers_orders(post_shopify, container, store, clock)
    body = compliance_body("customers_data_request.json")
    assert b"john@example.com" in body and b"555-625-1199" in body

    response = post_shopify(body, "customers/data_request")
    assert response.status_code == 200
    assert container.inbox.process(store).processed == 1

    [event] = store.events(SHOPIFY_SHOP, "privacy.data_request")
    assert event["subject"] == "9999"
    assert event["detail"]["customer_id"] == str(CUSTOMER_ID)
    exported = {o["id"] for o in event["detail"]["orders"]}
    assert exported == {str(o["id"]) for o in mine}
    assert all(o["lines"] for o in event["detail"]["orders"])
    row = store.webhook(response.get_json()["id"])
    assert row["status"] == "processed"
    stored = bytes(row["body"])
    assert b"john@example.com" not in stored and b"555-625-1199" not in stored
    assert b"@" not in stored and "john" not in row["headers"]
    assert str(CUSTOMER_ID).encode() in stored  # what we acted on is kept


def test_customers_redact_blanks_orders_and_their_deliveries(post_shopify, container, store, clock):
    mine, other = _customers_orders(post_shopify, container, store, clock)
    held_before = {str(o["id"]): reservations(store, SHOPIFY_SHOP, str(o["id"])) for o in mine}

    response = post_shopify(compliance_body("customers_redact.json"), "customers/redact")
    assert response.status_code == 200
    assert container.inbox.process(store).processed == 1

    for order in mine:
        row = store._dicts("SELECT * FROM orders WHERE shop_id = ? AND id = ?", (SHOPIFY_SHOP, str(order["id"])))[0]
        assert row["ship_postcode"] is None and row["ship_province"] is None and row["customer_id"] is None
        # stock accounting is not personal data and stays right
        assert reservations(store, SHOPIFY_SHOP, str(order["id"])) == held_before[str(order["id"])]
    order_rows = [r for r in inbox(store) if r["topic"] == "orders/create"]
    for row in order_rows:
        if row["resource_id"] in {str(o["id"]) for o in mine}:
            assert bytes(row["body"]) == b"" and json.loads(row["headers"]) == {}
        else:
            assert b"sam@example.com" in bytes(row["body"])
    theirs = store._dicts("SELECT * FROM orders WHERE id = ?", (str(other["id"]),))[0]
    assert theirs["ship_postcode"] == "10012" and theirs["customer_id"] == "555"
    redact_row = store.webhook(response.get_json()["id"])
    assert b"john@example.com" not in bytes(redact_row["body"])
    assert b"555-625-1199" not in bytes(redact_row["body"])
    assert store.events(SHOPIFY_SHOP, "privacy.customer_redacted")


def test_shop_redact_deletes_everything_of_that_shop_only(post_shopify, post_woo, container, store, clock):
    _customers_orders(post_shopify, container, store, clock)
    post_woo(woo_727_demo())
    post_shopify({"id": 1, "title": "x"}, "products/update")
    container.inbox.process(store)
    woo_before = {t: count(store, t, WOO_SHOP) for t in ("orders", "order_lines", "routing_decisions",
                                                          "reservations", "stock", "webhook_inbox")}
    assert all(woo_before.values())
    assert count(store, "orders", SHOPIFY_SHOP) == 3 and count(store, "stock", SHOPIFY_SHOP) > 0

    response = post_shopify(compliance_body("shop_redact.json"), "shop/redact")
    assert response.status_code == 200
    assert container.inbox.process(store).processed == 1

    for table in ("orders", "order_lines", "routing_decisions", "reservations", "reserved_totals", "stock",
                  "refunds", "node_day_orders"):
        assert count(store, table, SHOPIFY_SHOP) == 0, table
    assert [e["kind"] for e in store.events(SHOPIFY_SHOP)] == ["privacy.shop_redacted"]
    [kept] = inbox(store, SHOPIFY_SHOP)
    assert kept["id"] == response.get_json()["id"] and kept["topic"] == "shop/redact"
    assert store.shop_status(SHOPIFY_SHOP) == "redacted"
    assert {t: count(store, t, WOO_SHOP) for t in woo_before} == woo_before
    assert store.shop_status(WOO_SHOP) == "installed"
    assert store.reservation_totals_drift() == []


def test_app_uninstalled_marks_the_shop(post_shopify, container, store):
    assert store.shop_status(SHOPIFY_SHOP) == "installed"
    response = post_shopify(compliance_body("app_uninstalled.json"), "app/uninstalled")
    assert response.status_code == 200
    assert container.inbox.process(store).processed == 1
    assert store.shop_status(SHOPIFY_SHOP) == "uninstalled"
    assert store.shop_status(WOO_SHOP) == "installed"
    assert store.events(SHOPIFY_SHOP, "shop.uninstalled")


# ---------------------------------------------------------------- never a 500


def _signed(body: bytes, topic: str = "orders/create", **extra) -> tuple[bytes, dict]:
    return body, {**shopify_headers(body, topic), **extra}


def _woo_signed(body: bytes, topic: str = "order.created") -> tuple[bytes, dict]:
    return body, woo_headers(body, topic)


HOSTILE = [
    # (id, method, path, body, headers, expected status)
    ("empty-unsigned", "POST", "/webhooks/shopify", b"", {}, 401),
    ("empty-unsigned-woo", "POST", "/webhooks/woocommerce", b"", {}, 401),
    ("huge-hmac-header", "POST", "/webhooks/shopify", b"{}",
     {"X-Shopify-Shop-Domain": SHOPIFY_DOMAIN, "X-Shopify-Topic": "orders/create",
      "X-Shopify-Hmac-Sha256": "A" * 64_000}, 401),
    ("huge-topic-header", "POST", "/webhooks/shopify", *_signed(b'{"id": 1}', "x" * 16_000), 200),
    ("non-base64-hmac", "POST", "/webhooks/shopify", b"{}",
     {"X-Shopify-Shop-Domain": SHOPIFY_DOMAIN, "X-Shopify-Topic": "orders/create",
      "X-Shopify-Hmac-Sha256": "not base64 \u00e9!"}, 401),
    ("latin1-shop-domain", "POST", "/webhooks/shopify", b"{}",
     {"X-Shopify-Shop-Domain": "caf\u00e9.myshopify.com", "X-Shopify-Topic": "orders/create",
      "X-Shopify-Hmac-Sha256": sandbox.sign(SHOPIFY_SECRET, b"{}")}, 401),
    ("non-utf8-unsigned", "POST", "/webhooks/shopify", b"\x80\x81\xfe\xff", {"Content-Type": "application/json"}, 401),
    ("non-utf8-signed", "POST", "/webhooks/shopify", *_signed(b"\x80\x81\xfe\xff"), 400),
    ("non-utf8-signed-woo", "POST", "/webhooks/woocommerce", *_woo_signed(b"\x80{\xfe\xff"), 400),
    ("deeply-nested-json", "POST", "/webhooks/shopify", *_signed(b"[" * 100_000 + b"]" * 100_000), 400),
    ("deeply-nested-json-woo", "POST", "/webhooks/woocommerce",
     *_woo_signed(b'{"id":1,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), 400),
    ("huge-integer", "POST", "/webhooks/shopify", *_signed(b'{"id": ' + b"9" * 5000 + b"}"), 400),
    ("nan-and-infinity", "POST", "/webhooks/shopify",
     *_signed(b'{"id": NaN, "created_at": Infinity, "line_items": []}'), 400),
    ("no-topic-signed", "POST", "/webhooks/shopify",
     b"{}", {"X-Shopify-Shop-Domain": SHOPIFY_DOMAIN, "X-Shopify-Hmac-Sha256": sandbox.sign(SHOPIFY_SECRET, b"{}")},
     400),
    ("wrong-content-type", "POST", "/webhooks/shopify",
     *_signed(fixture_bytes("shopify", "orders_create.json"), **{"Content-Type": "text/plain"}), 200),
    ("form-content-type", "POST", "/webhooks/shopify",
     *_signed(b"a=1&b=2", **{"Content-Type": "application/x-www-form-urlencoded"}), 400),
    ("multipart-content-type", "POST", "/webhooks/shopify",
     *_signed(b"--x\r\n\r\n--x--", **{"Content-Type": "multipart/form-data; boundary=x"}), 400),
    ("woo-lone-surrogate-status", "POST", "/webhooks/woocommerce",
     *_woo_signed(b'{"id": 5, "status": "\\ud800"}'), 200),
    ("woo-lone-surrogate-sku", "POST", "/webhooks/woocommerce",
     *_woo_signed(b'{"id": 6, "status": "processing", "date_created_gmt": "2026-11-22T10:00:00", '
                  b'"line_items": [{"id": 1, "quantity": 1, "sku": "\\udfff"}]}'), 200),
    ("surrogate-encoded-in-utf8", "POST", "/webhooks/shopify",
     *_signed(fixture_bytes("shopify", "orders_create.json").replace(b'"#1001"', b'"#1001\xed\xa0\x80"')), 400),
    ("utf16-json", "POST", "/webhooks/shopify", *_signed(fixture_bytes("shopify", "orders_create.json")
                                                         .decode().encode("utf-16")), 200),
    ("woo-lone-surrogate-date-on-draft", "POST", "/webhooks/woocommerce",
     *_woo_signed(b'{"id": 7, "status": "checkout-draft", "date_modified_gmt": "\\ud800"}'), 200),
    ("woo-form-unsigned", "POST", "/webhooks/woocommerce", b"webhook_id=3&x=1",
     {"Content-Type": "application/x-www-form-urlencoded"}, 401),
    ("get-shopify", "GET", "/webhooks/shopify", b"", {}, 405),
    ("get-woo", "GET", "/webhooks/woocommerce", b"", {}, 405),
    ("put-shopify", "PUT", "/webhooks/shopify", b"{}", {}, 405),
    ("unknown-platform", "POST", "/webhooks/magento", b"{}", {}, 404),
]


@pytest.mark.parametrize("method,path,body,headers,expected", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_requests_never_500(client, container, store, method, path, body, headers, expected):
    response = client.open(path, method=method, data=body, headers=headers)

    assert response.status_code == expected
    assert response.is_json, response.data[:200]
    assert "error" in response.get_json() or response.get_json().get("ok") is True
    # whatever was accepted is applied by the first run (not retried until it fails)
    report = container.inbox.process(store)
    assert (report.failed, report.retrying) == (0, 0)


# ---------------------------------------------------------------- delivery order and transport details


def test_cancel_delivered_before_create_wins(post_shopify, container, store, clock):
    """Shopify does not guarantee ordering: the older orders/create arriving after
    orders/cancelled must not reserve stock for a cancelled order."""
    before = sellable(store, SHOPIFY_SHOP, "CANDLE-FIG")
    order = nyc_order(lines=(("CANDLE-FIG", 2),), updated_at=clock(), now=clock())
    later = (clock() + timedelta(minutes=3)).isoformat()
    post_shopify({**order, "cancelled_at": later, "updated_at": later}, "orders/cancelled")
    post_shopify(order, "orders/create")
    assert container.inbox.process(store).processed == 2

    stored = store.order(SHOPIFY_SHOP, str(order["id"]))
    assert stored.state == "cancelled"
    assert reservations(store, SHOPIFY_SHOP, str(order["id"])) == {}
    assert sellable(store, SHOPIFY_SHOP, "CANDLE-FIG") == before
    assert store.events(SHOPIFY_SHOP, "order.stale_update_ignored")


def test_woo_restored_order_is_routed_again(post_woo, container, store):
    post_woo(woo_727_demo())
    container.inbox.process(store)
    post_woo(fixture_json("woocommerce", "order_727_deleted.json"), "order.deleted")
    container.inbox.process(store)
    assert reservations(store, WOO_SHOP, "727") == {}

    restored = woo_727_demo()
    restored["date_modified_gmt"] = "2017-03-24T08:00:00"
    post_woo(restored, "order.restored")
    assert container.inbox.process(store).processed == 1

    assert store.order(WOO_SHOP, "727").state == "open"
    assert {line: (sku, qty) for line, (_, sku, qty) in reservations(store, WOO_SHOP, "727").items()} == {
        "315": ("SEEDS-MIX", 2), "316": ("TERRARIUM-S", 1)}
    assert store.reservation_totals_drift() == []


def test_chunked_body_within_the_limit_is_read_whole(client, container, store):
    import io

    body = doc_order_body()
    headers = {**shopify_headers(body), "Transfer-Encoding": "chunked"}
    # gunicorn and the werkzeug server mark chunked input as terminated
    response = client.post("/webhooks/shopify", input_stream=io.BytesIO(body), headers=headers,
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 200
    assert bytes(inbox(store)[0]["body"]) == body


def test_chunked_body_over_the_limit_is_413(client, container, store):
    import io

    limit = container.settings.web.max_body_bytes
    body = b'{"id": 1, "pad": "' + b"x" * limit + b'"}'
    headers = {**shopify_headers(body), "Transfer-Encoding": "chunked"}
    response = client.post("/webhooks/shopify", input_stream=io.BytesIO(body), headers=headers,
                           environ_overrides={"wsgi.input_terminated": True})
    assert count(store, "webhook_inbox") == 0
    assert response.status_code == 413


def test_woo_status_change_within_the_same_second_is_not_a_duplicate(post_woo, container, store):
    pending = {**woo_727_demo(), "status": "pending", "date_paid": None, "date_paid_gmt": None}
    paid = woo_727_demo()  # same date_modified_gmt, now processing
    assert pending["date_modified_gmt"] == paid["date_modified_gmt"]

    first = post_woo(pending, "order.created")
    second = post_woo(paid, "order.updated")

    assert first.status_code == second.status_code == 200
    container.inbox.process(store)
    assert second.get_json()["duplicate"] is False
    assert store.order(WOO_SHOP, "727").state == "open"
    assert len(reservations(store, WOO_SHOP, "727")) == 2


# ---------------------------------------------------------------- a body the server cannot read


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
@pytest.mark.parametrize("framing", sorted(MALFORMED_CHUNKED))
def test_malformed_chunked_body_is_a_400_logged_in_one_line(client, store, caplog, platform, framing):
    """Through the werkzeug dev server's own dechunker (``connector serve``);
    gunicorn's is exercised in tests/integration/test_malformed_requests.py."""
    import io
    import logging

    from werkzeug.serving import DechunkedInput

    body = doc_order_body() if platform == "shopify" else woo_body(woo_727_demo())
    headers = shopify_headers(body) if platform == "shopify" else woo_headers(body)
    caplog.set_level(logging.INFO)
    dechunked = DechunkedInput(io.BytesIO(MALFORMED_CHUNKED[framing](body)))
    response = client.post(f"/webhooks/{platform}", headers={**headers, "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input": dechunked, "wsgi.input_terminated": True})

    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"
    assert "request body" in response.get_json()["detail"]
    assert count(store, "webhook_inbox") == 0
    [record] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert platform in record.getMessage()


# ---------------------------------------------------------------- acknowledged means applied

LONE = "\ud800"  # json.dumps writes it as the escape "\ud800": valid JSON, not valid UTF-8


def _odd_shopify(order: dict, field: str) -> None:
    line, address = order["line_items"][0], order["shipping_address"]
    {"sku": lambda: line.update(sku=line["sku"] + LONE), "title": lambda: line.update(title="Fig " + LONE),
     "name": lambda: order.update(name=f"#20{LONE}01"),
     "province": lambda: address.update(province_code="N" + LONE, province=LONE),
     "postcode": lambda: address.update(zip="10012" + LONE)}[field]()


def _odd_woo(order: dict, field: str) -> None:
    line, address = order["line_items"][0], order["shipping"]
    {"sku": lambda: line.update(sku=line["sku"] + LONE), "title": lambda: line.update(name="Seeds " + LONE),
     "name": lambda: order.update(number="727" + LONE),
     "province": lambda: address.update(state="L" + LONE),
     "postcode": lambda: address.update(postcode="E1 6AN" + LONE)}[field]()


@pytest.mark.parametrize("field", ["sku", "title", "name", "province", "postcode"])
@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_a_lone_surrogate_in_an_order_is_stored_as_its_escape_and_the_order_applied(
        post_shopify, post_woo, container, store, clock, platform, field):
    if platform == "shopify":
        shop, order = SHOPIFY_SHOP, nyc_order(lines=(("CANDLE-FIG", 2), ("ZINE-04", 1)), now=clock())
        _odd_shopify(order, field)
        response = post_shopify(order)
    else:
        shop, order = WOO_SHOP, woo_727_demo()
        _odd_woo(order, field)
        response = post_woo(order)
    order_id, odd_sku, good_sku = str(order["id"]), order["line_items"][0]["sku"], order["line_items"][1]["sku"]
    odd_line, good_line = str(order["line_items"][0]["id"]), str(order["line_items"][1]["id"])
    stock_before = sellable(store, shop, odd_sku.replace(LONE, ""))

    assert response.status_code == 200 and response.get_json()["status"] == "pending"
    report = container.inbox.process(store)

    assert (report.processed, report.retrying, report.failed) == (1, 0, 0)
    assert store.webhook(response.get_json()["id"])["status"] == "processed"
    stored = store._dicts("SELECT * FROM orders WHERE shop_id = ? AND id = ?", (shop, order_id))[0]
    lines = {l["line_id"]: l for l in store.order_lines(shop, order_id)}
    shown = {"sku": lines[odd_line]["sku"], "title": lines[odd_line]["title"], "name": stored["number"],
             "province": stored["ship_province"], "postcode": stored["ship_postcode"]}
    assert "\\ud800" in shown[field]  # what was sent, readable
    held = reservations(store, shop, order_id)
    assert held[good_line][1] == good_sku
    if field == "sku":
        # No stock is kept under a SKU that is not text: the line waits for a human,
        # and the stock of the SKU it resembles is not touched.
        assert odd_line not in held
        [exception] = [e for e in store.open_exceptions(shop) if e["order_id"] == order_id]
        assert exception["line_id"] == odd_line and "\\ud800" in exception["sku"]
        assert stored["status"] == "partial"
        assert sellable(store, shop, odd_sku.replace(LONE, "")) == stock_before
    else:
        assert held[odd_line][1] == odd_sku and stored["status"] == "routed"


ODD_VALUES = [
    LONE, "\udfff" + "x", "CANDLE-FIG" + LONE, "\ud83d\ude00", "a\x00b", "\u202e#1001", "", "   ", "x" * 3000,
    None, True, 0, -1, 1.5, 2**63, 2**64, [], {}, [1], {"id": 1},
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2026-11-22T10:00:00", "2026-13-01T00:00:00Z",
]
SHOPIFY_PATHS = [
    ("id",), ("name",), ("order_number",), ("created_at",), ("updated_at",), ("cancelled_at",),
    ("fulfillment_status",), ("customer",), ("customer", "id"), ("shipping_address",),
    ("shipping_address", "country_code"), ("shipping_address", "province_code"), ("shipping_address", "zip"),
    ("line_items",), ("line_items", 0), ("line_items", 0, "id"), ("line_items", 0, "sku"),
    ("line_items", 0, "title"), ("line_items", 0, "quantity"), ("line_items", 0, "current_quantity"),
    ("line_items", 0, "requires_shipping"), ("line_items", 0, "fulfillment_service"), ("line_items", 1, "sku"),
]
WOO_PATHS = [
    ("id",), ("number",), ("status",), ("date_created_gmt",), ("date_modified_gmt",), ("customer_id",),
    ("shipping",), ("shipping", "country"), ("shipping", "state"), ("shipping", "postcode"), ("billing", "country"),
    ("line_items",), ("line_items", 0), ("line_items", 0, "id"), ("line_items", 0, "sku"), ("line_items", 0, "name"),
    ("line_items", 0, "quantity"), ("line_items", 1, "sku"), ("refunds",),
]


_FRESH_ORDER_IDS = itertools.count(9_100_000_001)


def _put(document, path: tuple, value) -> None:
    """document[path] = value, where the path still exists (an earlier change may
    have replaced a parent by a scalar)."""
    try:
        for key in path[:-1]:
            document = document[key]
        document[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_delivery_acknowledged_as_pending_is_always_applied(post_shopify, post_woo, container, store, clock, data):
    """Whatever processing needs of a body is checked before the 200: any signed order
    with odd values in the fields processing reads is either refused (400, kept as
    rejected) or applied by the next run, never retried until it fails."""
    platform = data.draw(st.sampled_from(["shopify", "woocommerce"]))
    order = nyc_order(now=clock()) if platform == "shopify" else woo_727_demo()
    for path in data.draw(st.lists(st.sampled_from(SHOPIFY_PATHS if platform == "shopify" else WOO_PATHS),
                                   min_size=1, max_size=3, unique=True)):
        _put(order, path, copy.deepcopy(data.draw(st.sampled_from(ODD_VALUES))))
    if type(order.get("id")) is int:
        order["id"] = next(_FRESH_ORDER_IDS)  # a new order each time: no delivery is a duplicate

    response = post_shopify(order) if platform == "shopify" else post_woo(order)

    assert response.status_code in (200, 400), response.get_json()
    if response.status_code == 400:
        assert inbox(store)[-1]["status"] == "rejected"
        return
    row = store.webhook(response.get_json()["id"])
    assert not response.get_json()["duplicate"]
    report = container.inbox.process(store)
    assert (report.retrying, report.failed) == (0, 0), store.webhook(row["id"])["last_error"]
    assert store.webhook(row["id"])["status"] in ("processed", "ignored")


# ---------------------------------------------------------------- lines another fulfillment service ships


def _with_service(order: dict, index: int, service: str, updated_at: datetime | None = None) -> dict:
    order = copy.deepcopy(order)
    order["line_items"][index]["fulfillment_service"] = service
    if updated_at is not None:
        order["updated_at"] = updated_at.isoformat()
    return order


def test_a_line_another_fulfillment_service_ships_is_skipped_with_its_reason_and_reserves_nothing(
        post_shopify, container, store, clock, cli):
    zine_before = sellable(store, SHOPIFY_SHOP, "ZINE-04")
    order = _with_service(nyc_order(lines=(("CANDLE-FIG", 2), ("ZINE-04", 1)), now=clock()), 1, "printful")
    order_id, ours, theirs = str(order["id"]), str(order["line_items"][0]["id"]), str(order["line_items"][1]["id"])

    post_shopify(order)
    assert container.inbox.process(store).processed == 1

    assert set(reservations(store, SHOPIFY_SHOP, order_id)) == {ours}
    assert sellable(store, SHOPIFY_SHOP, "ZINE-04") == zine_before
    lines = {l["line_id"]: l for l in store.order_lines(SHOPIFY_SHOP, order_id)}
    assert "printful" in lines[theirs]["skip_reason"] and lines[ours]["skip_reason"] is None
    assert [d["line_id"] for d in store.current_decisions(SHOPIFY_SHOP, order_id)] == [ours]
    assert store.order(SHOPIFY_SHOP, order_id).status == "routed"
    assert [e for e in store.open_exceptions(SHOPIFY_SHOP) if e["order_id"] == order_id] == []
    # Not demand on our network either: the forecast reads only what we ship.
    assert {sku for sku, *_ in store.sales(SHOPIFY_SHOP, clock() - timedelta(days=1))} == {"CANDLE-FIG"}
    shown = cli("orders", "show", order["name"]).stdout
    assert f"line {theirs}: 1 × ZINE-04: not routed, shipped by another fulfillment service (printful)" in shown


def test_an_update_handing_a_line_to_another_service_releases_it_and_handing_it_back_routes_it(
        post_shopify, container, store, clock):
    order = nyc_order(lines=(("CANDLE-FIG", 2), ("ZINE-04", 1)), updated_at=clock(), now=clock())
    order_id, ours, theirs = str(order["id"]), str(order["line_items"][0]["id"]), str(order["line_items"][1]["id"])
    zine_before = sellable(store, SHOPIFY_SHOP, "ZINE-04")
    post_shopify(order)
    container.inbox.process(store)
    assert set(reservations(store, SHOPIFY_SHOP, order_id)) == {ours, theirs}

    post_shopify(_with_service(order, 1, "printful", clock() + timedelta(minutes=5)), "orders/updated")
    assert container.inbox.process(store).processed == 1

    assert set(reservations(store, SHOPIFY_SHOP, order_id)) == {ours}
    assert sellable(store, SHOPIFY_SHOP, "ZINE-04") == zine_before
    assert [d["line_id"] for d in store.current_decisions(SHOPIFY_SHOP, order_id)] == [ours]
    assert store.order(SHOPIFY_SHOP, order_id).status == "routed"

    post_shopify(_with_service(order, 1, "manual", clock() + timedelta(minutes=9)), "orders/updated")
    assert container.inbox.process(store).processed == 1

    assert set(reservations(store, SHOPIFY_SHOP, order_id)) == {ours, theirs}
    assert {l["line_id"]: l["skip_reason"] for l in store.order_lines(SHOPIFY_SHOP, order_id)} == {
        ours: None, theirs: None}
    assert store.reservation_totals_drift() == []


def test_a_refund_on_an_order_keeps_the_other_services_line_unrouted(post_shopify, container, store, clock):
    order = _with_service(nyc_order(lines=(("CANDLE-FIG", 2), ("ZINE-04", 1)), now=clock()), 1, "printful")
    order_id, ours = str(order["id"]), str(order["line_items"][0]["id"])
    post_shopify(order)
    container.inbox.process(store)

    post_shopify(_refund_for(order, order["line_items"][0], 1, clock() + timedelta(hours=1)), "refunds/create")
    assert container.inbox.process(store).processed == 1

    assert {line: (sku, qty) for line, (_, sku, qty) in reservations(store, SHOPIFY_SHOP, order_id).items()} == {
        ours: ("CANDLE-FIG", 1)}


# ---------------------------------------------------------------- an update removing an exception line


def _shopify_removing(order: dict, how: str, at: datetime) -> dict:
    order = copy.deepcopy(order)
    if how == "dropped":
        order["line_items"] = order["line_items"][:1]
    else:  # an order edit: the line stays listed with nothing left
        order["line_items"][1].update(current_quantity=0, fulfillable_quantity=0)
    order["updated_at"] = at.isoformat()
    return order


@pytest.mark.parametrize("platform,how", [("shopify", "dropped"), ("shopify", "edited-to-0"),
                                          ("woocommerce", "dropped")])
def test_an_update_removing_a_line_that_had_only_an_exception_retires_it_and_recomputes_the_status(
        post_shopify, post_woo, container, store, clock, cli, platform, how):
    if platform == "shopify":
        shop, order = SHOPIFY_SHOP, nyc_order(lines=(("CANDLE-FIG", 2), ("NOT-STOCKED-1", 1)), updated_at=clock(),
                                              now=clock())
        post = post_shopify
    else:
        shop, order = WOO_SHOP, woo_727_demo()
        order["line_items"][1]["sku"] = "NOT-STOCKED-1"
        post = post_woo
    order_id, kept, removed = str(order["id"]), str(order["line_items"][0]["id"]), str(order["line_items"][1]["id"])
    post(order)
    container.inbox.process(store)
    assert store.order(shop, order_id).status == "partial"
    assert [e["line_id"] for e in store.open_exceptions(shop) if e["order_id"] == order_id] == [removed]
    assert removed not in reservations(store, shop, order_id)

    if platform == "shopify":
        post(_shopify_removing(order, how, clock() + timedelta(minutes=5)), "orders/updated")
    else:
        post({**order, "line_items": order["line_items"][:1], "date_modified_gmt": "2017-03-23T09:00:00"},
             "order.updated")
    assert container.inbox.process(store).processed == 1

    assert [e for e in store.open_exceptions(shop) if e["order_id"] == order_id] == []
    assert [d["line_id"] for d in store.current_decisions(shop, order_id)] == [kept]
    assert store.order(shop, order_id).status == "routed"
    assert set(reservations(store, shop, order_id)) == {kept}
    assert "no exceptions" in cli("exceptions", "--shop", shop).stdout
