"""adapters.shopify: signatures (shopify.md §6 vectors), headers and payload parsing."""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters import webhook_payloads
from werkzeug.datastructures import Headers

from adapters.shopify import (
    TOPICS,
    ShopifyStorefront,
    parse_webhook,
    query_hmac,
    verify_query,
    verify_webhook,
    webhook_hmac,
)
from connector.domain.model import (
    Address,
    AppUninstalled,
    CustomerDataRequest,
    CustomerRedact,
    Ignored,
    Order,
    OrderLine,
    OrderUpsert,
    PayloadError,
    RefundCreated,
    RefundLine,
    ShopRedact,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"
SHOP = "shop-1"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load(name: str) -> dict:
    return json.loads(raw(name))


# ---------------------------------------------------------------- webhook HMAC (§6.2)

W1 = ("test_secret_key", b'{"foo": "bar"}', "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=")
W2 = ("7008c5f4da4718b9b45d26d3fcbbb157", b'{"foo":"bar"}', "+R9TwYM4mbLTk3hEAOBkpA7zW2lc9vNFmVKs2u2jtyY=")
W3 = ("API_SECRET_KEY", b"{}", "+ihUB5l+D7QrohDEi/6NcBcJRyKssyWqos13LmnsBbs=")


@pytest.mark.parametrize("secret,body,expected", [W1, W2, W3], ids=["W1", "W2", "W3"])
def test_webhook_hmac_vectors(secret, body, expected):
    assert webhook_hmac(secret, body) == expected


@pytest.mark.parametrize("secret,body,expected", [W1, W2, W3], ids=["W1", "W2", "W3"])
def test_verify_webhook_vectors(secret, body, expected):
    assert verify_webhook(body, expected, [secret]) is True


def test_verify_webhook_ruby_header_with_trailing_newline():
    secret, body, expected = W3
    # Ruby's Base64.encode64 appends "\n"; the library base64-decodes before comparing.
    assert verify_webhook(body, expected + "\n", [secret]) is True
    assert verify_webhook(body, "  " + expected + "\r\n", [secret]) is True


def test_w1_and_w2_bodies_differ_by_one_space_and_do_not_cross_verify():
    assert verify_webhook(W2[1], W1[2], [W1[0]]) is False
    assert verify_webhook(W1[1], W1[2], [W2[0]]) is False


def test_verify_webhook_rejects_tampered_body():
    secret, body, expected = W1
    assert verify_webhook(b'{"foo": "baz"}', expected, [secret]) is False
    assert verify_webhook(body + b" ", expected, [secret]) is False


@pytest.mark.parametrize(
    "signature",
    [None, "", "   ", "not base64!!", "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g", "é", 12345],
)
def test_verify_webhook_rejects_missing_or_undecodable_signature(signature):
    secret, body, _ = W1
    assert verify_webhook(body, signature, [secret]) is False


def test_verify_webhook_rejects_hex_digest_of_right_hmac():
    import hashlib
    import hmac

    secret, body, _ = W1
    hex_sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert verify_webhook(body, hex_sig, [secret]) is False


@pytest.mark.parametrize("size", [0, 2046, 2047, 2048, 4094, 4095, 4096, 70_001])
def test_verify_webhook_bodies_hashed_in_pieces_match_a_one_shot_hmac(size):
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    expected = base64.b64encode(hmac.new(b"piecewise", body, hashlib.sha256).digest()).decode()
    assert verify_webhook(body, expected, ["piecewise"]) is True
    assert verify_webhook(body + b"x", expected, ["piecewise"]) is False


def test_verify_webhook_secret_rotation_second_secret_matches():
    secret, body, expected = W1
    assert verify_webhook(body, expected, ["new-secret-not-yet-used", secret]) is True
    assert verify_webhook(body, expected, [secret, "new-secret"]) is True
    assert verify_webhook(body, expected, ["other-1", "other-2"]) is False


def test_verify_webhook_skips_empty_secrets_and_fails_without_any():
    body = b"{}"
    empty_key_sig = webhook_hmac("", body)
    assert verify_webhook(body, empty_key_sig, [""]) is False
    assert verify_webhook(body, empty_key_sig, []) is False


def test_verify_webhook_refuses_a_bare_string_as_secret_list():
    # Iterating "abc" would try one-character secrets.
    with pytest.raises(TypeError):
        verify_webhook(b"{}", webhook_hmac("a", b"{}"), "abc")


# ---------------------------------------------------------------- OAuth query HMAC (§6.1)

Q1_PARAMS = {
    "shop": "some-shop.myshopify.com",
    "code": "a94a110d86d2452eb3e2af4cfb8a3828",
    "timestamp": "1337178173",
}
Q1_HMAC = "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"
Q2_PARAMS = {
    "code": "0907a61c0c8d55e99db179b68161bc00",
    "shop": "some-shop.myshopify.com",
    "state": "0.6784241404160823",
    "timestamp": "1337178173",
}
Q2_HMAC = "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"


@pytest.mark.parametrize(
    "params,expected", [(Q1_PARAMS, Q1_HMAC), (Q2_PARAMS, Q2_HMAC)], ids=["Q1", "Q2"]
)
def test_query_hmac_vectors(params, expected):
    assert query_hmac("hush", params) == expected
    # hmac itself is never part of the message
    assert query_hmac("hush", {**params, "hmac": "anything"}) == expected


@pytest.mark.parametrize(
    "params,expected", [(Q1_PARAMS, Q1_HMAC), (Q2_PARAMS, Q2_HMAC)], ids=["Q1", "Q2"]
)
def test_verify_query_vectors(params, expected):
    assert verify_query({**params, "hmac": expected}, "hush") is True
    assert verify_query({**params, "hmac": expected.upper()}, "hush") is True
    assert verify_query({**params, "hmac": expected}, "not-hush") is False
    tampered = {**params, "shop": "evil-shop.myshopify.com", "hmac": expected}
    assert verify_query(tampered, "hush") is False


def test_verify_query_without_hmac_or_secret_is_false():
    assert verify_query(dict(Q1_PARAMS), "hush") is False
    assert verify_query({**Q1_PARAMS, "hmac": ""}, "hush") is False
    assert verify_query({**Q1_PARAMS, "hmac": Q1_HMAC}, "") is False
    assert verify_query({**Q1_PARAMS, "hmac": "zz\u00e9"}, "hush") is False


def test_query_hmac_escapes_delimiters_like_the_python_library():
    # Q4 (shopify.md §6.1): message "a=1%26b=2&c%3D3%26d=4".
    params = {"a": "1&b=2", "c=3&d": "4"}
    assert query_hmac("secret", params) == (
        "8de3c7e965d22fa21e059868e4004f5b6fbdcef293d1622ff9408edd6325bc6b"
    )
    # ...so a value smuggling "&b=2" does not sign the same as a real parameter b.
    assert query_hmac("secret", {"a": "1&b=2"}) != query_hmac("secret", {"a": "1", "b": "2"})


# ---------------------------------------------------------------- topics


def test_topics_are_exactly_the_ones_acted_on():
    assert TOPICS == frozenset(
        {
            "orders/create",
            "orders/updated",
            "orders/cancelled",
            "refunds/create",
            "fulfillments/create",
            "fulfillments/update",
            "app/uninstalled",
            "customers/data_request",
            "customers/redact",
            "shop/redact",
        }
    )


# ---------------------------------------------------------------- orders (§3.1, §3.2)

UTC = timezone.utc


def expected_order(**changes) -> Order:
    base = Order(
        shop_id=SHOP,
        order_id="450789469",
        number="#1001",
        platform="shopify",
        created_at=datetime(2008, 1, 10, 16, 0, tzinfo=UTC),
        updated_at=datetime(2008, 1, 10, 16, 0, tzinfo=UTC),
        ship_to=Address(country="US", province="KY", postcode="40202"),
        lines=(
            OrderLine("466157049", "IPOD2008GREEN", 0, True, "IPod Nano - 8gb"),
            OrderLine("518995019", "IPOD2008RED", 1, True, "IPod Nano - 8gb"),
        ),
        state="open",
        customer_id=None,
    )
    return Order(**{**base.__dict__, **changes})


@pytest.mark.parametrize("topic", ["orders/create", "orders/updated"])
def test_parse_documented_order(topic):
    event = parse_webhook(SHOP, topic, load("orders_create.json"))
    assert event == OrderUpsert(expected_order())


def test_documented_order_details():
    order = parse_webhook(SHOP, "orders/create", load("orders_create.json")).order
    # current_quantity 0 wins over quantity 1: the line was refunded/removed.
    assert [(line.line_id, line.quantity) for line in order.lines] == [
        ("466157049", 0),
        ("518995019", 1),
    ]
    assert order.created_at.utcoffset() == timedelta(0)
    assert order.created_at == datetime(2008, 1, 10, 11, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert isinstance(order.order_id, str) and isinstance(order.lines[0].line_id, str)


def test_orders_cancelled_fixture_is_cancelled():
    event = parse_webhook(SHOP, "orders/cancelled", load("orders_cancelled.json"))
    assert event == OrderUpsert(
        expected_order(state="cancelled", updated_at=datetime(2008, 1, 10, 17, 30, tzinfo=UTC))
    )


def test_cancelled_at_makes_an_update_cancelled_and_the_topic_alone_does_too():
    assert parse_webhook(SHOP, "orders/updated", load("orders_cancelled.json")).order.state == (
        "cancelled"
    )
    # orders/cancelled without cancelled_at (e.g. include_fields) is still a cancellation
    assert parse_webhook(SHOP, "orders/cancelled", load("orders_create.json")).order.state == (
        "cancelled"
    )


def test_fulfilled_order_state():
    payload = load("orders_create.json")
    payload["fulfillment_status"] = "fulfilled"
    assert parse_webhook(SHOP, "orders/updated", payload).order.state == "fulfilled"
    payload["fulfillment_status"] = "partial"
    assert parse_webhook(SHOP, "orders/updated", payload).order.state == "open"


def test_64_bit_ids_stay_exact_text():
    text = raw("orders_create.json").replace(b"450789469,", b"820982911946154508,", 1)
    text = text.replace(b'"id": 518995019', b'"id": 9007199254740993', 1)  # 2**53 + 1
    order = parse_webhook(SHOP, "orders/create", json.loads(text)).order
    assert order.order_id == "820982911946154508"
    assert order.lines[1].line_id == "9007199254740993"


def test_sku_null_empty_or_blank_becomes_none():
    payload = load("orders_create.json")
    payload["line_items"][0]["sku"] = None
    payload["line_items"][1]["sku"] = ""
    payload["line_items"].append({**payload["line_items"][1], "id": 1, "sku": "   "})
    order = parse_webhook(SHOP, "orders/create", payload).order
    assert [line.sku for line in order.lines] == [None, None, None]


def test_requires_shipping_false_is_kept_and_missing_defaults_to_true():
    payload = load("orders_create.json")
    payload["line_items"][0]["requires_shipping"] = False
    del payload["line_items"][1]["requires_shipping"]
    order = parse_webhook(SHOP, "orders/create", payload).order
    assert [line.requires_shipping for line in order.lines] == [False, True]


@pytest.mark.parametrize("service,fulfilled_by", [
    ("manual", None), ("MANUAL", None), (None, None), ("", None),
    ("printful", "printful"), ("  gelato-print-on-demand ", "gelato-print-on-demand"),
])
def test_a_line_of_another_fulfillment_service_names_that_service(service, fulfilled_by):
    """In current API versions the merchant's own lines say "manual"; a line handled by
    a fulfillment service app names that app's handle (shopify.md §3.1, §4.4)."""
    payload = load("orders_create.json")
    payload["line_items"][1]["fulfillment_service"] = service
    del payload["line_items"][0]["fulfillment_service"]  # older payloads may lack it
    order = parse_webhook(SHOP, "orders/create", payload).order
    assert [line.fulfilled_by for line in order.lines] == [None, fulfilled_by]


def test_quantity_falls_back_when_current_quantity_absent_or_null():
    payload = load("orders_create.json")
    del payload["line_items"][0]["current_quantity"]
    payload["line_items"][0]["quantity"] = 3
    payload["line_items"][1]["current_quantity"] = None
    payload["line_items"][1]["quantity"] = 2
    order = parse_webhook(SHOP, "orders/create", payload).order
    assert [line.quantity for line in order.lines] == [3, 2]


@pytest.mark.parametrize("shipping", ["absent", None])
def test_no_shipping_address_gives_no_ship_to(shipping):
    payload = load("orders_create.json")
    if shipping == "absent":
        del payload["shipping_address"]
    else:
        payload["shipping_address"] = shipping
    assert parse_webhook(SHOP, "orders/create", payload).order.ship_to is None


def test_shipping_address_with_blank_fields():
    payload = load("orders_create.json")
    payload["shipping_address"].update({"province_code": None, "zip": "", "country_code": "gb"})
    assert parse_webhook(SHOP, "orders/create", payload).order.ship_to == Address("GB", None, None)


def test_customer_id_number_and_updated_at_fallback():
    payload = load("orders_create.json")
    payload["customer"] = {"id": 115310627314723954, "email": "bob@example.com"}
    payload["name"] = None
    del payload["updated_at"]
    payload["created_at"] = "2024-05-01T10:00:00Z"
    order = parse_webhook(SHOP, "orders/create", payload).order
    assert order.customer_id == "115310627314723954"
    assert order.number == "1001"  # order_number fallback
    assert order.updated_at == order.created_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


# ---------------------------------------------------------------- refunds (§3.3)


def test_parse_documented_refund():
    event = parse_webhook(SHOP, "refunds/create", load("refunds_create.json"))
    assert event == RefundCreated(
        order_id="450789469",
        refund_id="929361472",
        lines=(RefundLine(line_id="518995019", quantity=1),),
        # "2025-04-02T11:38:34-05:00" in the documented refund, kept as an aware UTC time.
        created_at=datetime(2025, 4, 2, 16, 38, 34, tzinfo=timezone.utc),
    )


def test_refund_without_line_items_has_no_lines():
    payload = load("refunds_create.json")
    payload["refund_line_items"] = []
    assert parse_webhook(SHOP, "refunds/create", payload).lines == ()


# ---------------------------------------------------------------- compliance (§2.5)


def test_parse_customers_data_request():
    event = parse_webhook(SHOP, "customers/data_request", load("customers_data_request.json"))
    assert event == CustomerDataRequest(
        customer_id="191167",
        order_ids=("299938", "280263", "220458"),
        request_id="9999",
    )


def test_parse_customers_redact():
    event = parse_webhook(SHOP, "customers/redact", load("customers_redact.json"))
    assert event == CustomerRedact(customer_id="191167", order_ids=("299938", "280263", "220458"))


def test_customers_redact_without_customer_or_orders():
    event = parse_webhook(SHOP, "customers/redact", {"shop_id": 954889})
    assert event == CustomerRedact(customer_id=None, order_ids=())


def test_parse_shop_redact_and_app_uninstalled():
    assert parse_webhook(SHOP, "shop/redact", load("shop_redact.json")) == ShopRedact()
    assert parse_webhook(SHOP, "app/uninstalled", load("app_uninstalled.json")) == AppUninstalled()


@pytest.mark.parametrize("topic", ["orders/paid", "products/update", "app/scopes_update", ""])
def test_other_topics_are_ignored(topic):
    assert parse_webhook(SHOP, topic, load("orders_create.json")) == Ignored(
        f"unhandled topic {topic}"
    )


# ---------------------------------------------------------------- bad shapes


def order_with(mutate) -> dict:
    payload = load("orders_create.json")
    mutate(payload)
    return payload


@pytest.mark.parametrize(
    "topic,payload,field",
    [
        ("orders/create", [], "payload"),
        ("orders/create", "x", "payload"),
        ("orders/create", 1, "payload"),
        ("orders/create", None, "payload"),
        ("orders/create", {"id": None}, "id"),
        ("orders/create", {"id": True}, "id"),
        ("orders/create", {"id": -4}, "id"),
        ("orders/create", {"id": 1.5}, "id"),
        ("orders/create", {"id": "12ab"}, "id"),
        ("orders/create", order_with(lambda p: p.update(id=None)), "id"),
        ("orders/create", order_with(lambda p: p.update(line_items="x")), "line_items"),
        ("orders/create", order_with(lambda p: p.pop("line_items")), "line_items"),
        ("orders/create", order_with(lambda p: p["line_items"].append(5)), "line_items[2]"),
        ("orders/create", order_with(lambda p: p["line_items"][0].pop("id")), "line_items[0].id"),
        (
            "orders/create",
            order_with(lambda p: p["line_items"][1].update(current_quantity=-1)),
            "line_items[1].current_quantity",
        ),
        (
            "orders/create",
            order_with(lambda p: p["line_items"][1].update(current_quantity=True)),
            "line_items[1].current_quantity",
        ),
        (
            "orders/create",
            order_with(lambda p: p["line_items"][0].update(current_quantity=None, quantity="1")),
            "line_items[0].quantity",
        ),
        (
            "orders/create",
            order_with(lambda p: p["line_items"][0].update(quantity=1.0, current_quantity=None)),
            "line_items[0].quantity",
        ),
        (
            "orders/create",
            order_with(lambda p: p["line_items"][0].update(requires_shipping="yes")),
            "line_items[0].requires_shipping",
        ),
        ("orders/create", order_with(lambda p: p["line_items"][0].update(sku=5)), "line_items[0].sku"),
        (
            "orders/create",
            order_with(lambda p: p["line_items"][0].update(fulfillment_service=["printful"])),
            "line_items[0].fulfillment_service",
        ),
        (
            "orders/create",
            order_with(lambda p: p["line_items"][1].update(id=466157049)),
            "line_items[1].id",
        ),
        ("orders/create", order_with(lambda p: p.update(created_at="yesterday")), "created_at"),
        ("orders/create", order_with(lambda p: p.update(created_at=None)), "created_at"),
        ("orders/create", order_with(lambda p: p.update(created_at="2008-01-10T11:00:00")), "created_at"),
        ("orders/create", order_with(lambda p: p.update(updated_at=20080110)), "updated_at"),
        ("orders/create", order_with(lambda p: p.update(cancelled_at=1)), "cancelled_at"),
        ("orders/create", order_with(lambda p: p.update(shipping_address="KY")), "shipping_address"),
        (
            "orders/create",
            order_with(lambda p: p["shipping_address"].update(zip=40202)),
            "shipping_address.zip",
        ),
        ("orders/create", order_with(lambda p: p.update(customer=[])), "customer"),
        ("orders/create", order_with(lambda p: p.update(customer={"id": "x"})), "customer.id"),
        ("refunds/create", {"id": 1}, "order_id"),
        ("refunds/create", {"order_id": 1}, "id"),
        ("refunds/create", {"id": 1, "order_id": 2, "refund_line_items": {}}, "refund_line_items"),
        (
            "refunds/create",
            {"id": 1, "order_id": 2, "refund_line_items": [{"line_item_id": 3}]},
            "refund_line_items[0].quantity",
        ),
        (
            "refunds/create",
            {"id": 1, "order_id": 2, "refund_line_items": [{"quantity": 1}]},
            "refund_line_items[0].line_item_id",
        ),
        ("customers/data_request", {"orders_requested": "1,2"}, "orders_requested"),
        ("customers/data_request", {"orders_requested": [1, None]}, "orders_requested[1]"),
        ("customers/data_request", {"data_request": {"id": []}}, "data_request.id"),
        ("customers/redact", {"orders_to_redact": [1], "customer": "c"}, "customer"),
        ("shop/redact", [], "payload"),
        ("app/uninstalled", "x", "payload"),
    ],
)
def test_bad_shapes_raise_payload_error_naming_the_field(topic, payload, field):
    with pytest.raises(PayloadError) as info:
        parse_webhook(SHOP, topic, payload)
    assert str(info.value).startswith(field + ":"), str(info.value)


ODD_VALUES = [
    [],
    "x",
    "",
    1,
    -1,
    0,
    1.5,
    True,
    None,
    {},
    {"id": None},
    {"id": 1},
    {"id": 1, "line_items": "x"},
    {"id": 1, "line_items": [None]},
    {"id": 1, "line_items": [{}]},
    {"id": 1, "created_at": "2020-01-01T00:00:00Z", "line_items": [{"id": 1}]},
    {"id": 1, "created_at": "0001-01-01T00:00:00+05:00", "line_items": []},
    {"id": 1, "created_at": "9999-12-31T23:59:59-05:00", "line_items": []},
    {"id": 1, "created_at": "2020-01-01", "line_items": []},
    {"id": 10**30, "order_id": 10**30},
    {"id": "9" * 5000},
    {"id": 1, "order_id": 1, "refund_line_items": [{"line_item_id": 1, "quantity": 10**40}]},
    {"id": [], "order_id": {}, "customer": 5, "orders_requested": None, "data_request": 3},
    {"customer": {"id": False}, "orders_to_redact": [1.0]},
    {"id": 1, "shipping_address": [], "line_items": []},
    [{"id": 1}],
]


@pytest.mark.parametrize("topic", sorted(TOPICS) + ["unknown/topic"])
@pytest.mark.parametrize("payload", ODD_VALUES, ids=repr)
def test_odd_json_values_only_ever_raise_payload_error(topic, payload):
    try:
        event = parse_webhook(SHOP, topic, copy.deepcopy(payload))
    except PayloadError:
        return
    if topic in ("shop/redact", "app/uninstalled", "unknown/topic"):
        return  # these need only an object (or nothing)
    # anything accepted must have been a well-formed object
    assert isinstance(payload, dict)
    assert event is not None


def test_unknown_topic_is_ignored_even_for_non_objects():
    assert parse_webhook(SHOP, "carts/create", None) == Ignored("unhandled topic carts/create")


# ---------------------------------------------------------------- headers and the class

HEADERS = {
    "X-Shopify-Topic": "orders/create",
    "X-Shopify-Hmac-Sha256": W1[2],
    "X-Shopify-Shop-Domain": "Some-Shop.MyShopify.com",
    "X-Shopify-API-Version": "2026-04",
    "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
    "X-Shopify-Triggered-At": "2026-05-01T12:00:00.000Z",
}


def header_variants():
    yield "dict", dict(HEADERS)
    yield "lower", {k.lower(): v for k, v in HEADERS.items()}
    yield "upper", {k.upper(): v for k, v in HEADERS.items()}
    yield "werkzeug", Headers(list(HEADERS.items()))
    yield "werkzeug-lower", Headers([(k.lower(), v) for k, v in HEADERS.items()])


@pytest.mark.parametrize("kind,headers", list(header_variants()), ids=lambda v: v if isinstance(v, str) else "")
def test_storefront_reads_headers_in_any_case(kind, headers):
    store = ShopifyStorefront()
    assert store.platform == "shopify"
    assert store.verify(W1[1], headers, [W1[0]]) is True
    assert store.verify(W1[1] + b"x", headers, [W1[0]]) is False
    assert store.topic(headers) == "orders/create"
    assert store.shop_domain(headers) == "some-shop.myshopify.com"
    assert store.dedupe_key(headers, {}) == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert store.event_id(headers) == "98880550-7158-44d4-b7cd-2c97c8a091b5"


def test_storefront_missing_headers():
    store = ShopifyStorefront()
    assert store.verify(W1[1], {}, [W1[0]]) is False
    assert store.verify(W1[1], {"X-Shopify-Hmac-Sha256": ""}, [W1[0]]) is False
    assert store.topic({}) is None
    assert store.shop_domain({}) is None
    assert store.dedupe_key({"X-Shopify-Event-Id": "e"}, {"id": 1}) is None
    assert store.event_id({}) is None


def test_storefront_verify_with_rotation():
    headers = {"x-shopify-hmac-sha256": W2[2]}
    assert ShopifyStorefront().verify(W2[1], headers, ["new-secret", W2[0]]) is True
    assert ShopifyStorefront().verify(W2[1], headers, ["new-secret"]) is False


def test_header_helper_prefers_exact_then_any_case():
    assert webhook_payloads.header({"x-shopify-topic": "a"}, "X-Shopify-Topic") == "a"
    assert webhook_payloads.header(Headers([("X-SHOPIFY-TOPIC", "b")]), "x-shopify-topic") == "b"
    assert webhook_payloads.header({}, "X-Shopify-Topic") is None
    assert webhook_payloads.header(None, "X-Shopify-Topic") is None


def test_resource_id():
    store = ShopifyStorefront()
    assert store.resource_id("orders/create", load("orders_create.json")) == "450789469"
    assert store.resource_id("orders/cancelled", {"id": 820982911946154508}) == "820982911946154508"
    assert store.resource_id("refunds/create", load("refunds_create.json")) == "450789469"
    assert store.resource_id("customers/redact", load("customers_redact.json")) is None
    assert store.resource_id("orders/create", {"id": None}) is None
    assert store.resource_id("orders/create", []) is None


def test_storefront_parse_is_parse_webhook():
    store = ShopifyStorefront()
    assert store.parse(SHOP, "orders/create", load("orders_create.json")) == OrderUpsert(
        expected_order()
    )


# ---------------------------------------------------------------- fulfillments


def test_fulfillment_fixture_parses_to_a_shipment_from_its_location():
    from connector.domain.model import FulfillmentReported
    from tests.conftest import fixture_json

    event = parse_webhook("shop", "fulfillments/create", fixture_json("shopify", "fulfillments_create.json"))
    assert isinstance(event, FulfillmentReported)
    assert (event.fulfillment_id, event.order_id, event.location_id) == ("255858046", "450789469", "487838322")
    assert (event.status, event.shipment_status, event.tracking_company) == ("success", None, "UPS")
    assert event.tracking_numbers == ("1Z2345",) and event.tracking_urls[0].startswith("https://www.ups.com/")
    assert event.lines == (("518995019", 1),)
    assert event.created_at.isoformat() == "2008-01-10T18:00:00+00:00"
    update = parse_webhook("shop", "fulfillments/update", fixture_json("shopify", "fulfillments_update.json"))
    assert update.shipment_status == "delivered" and update.updated_at.isoformat() == "2008-01-12T15:30:00+00:00"


def test_fulfillment_without_tracking_lists_falls_back_to_the_single_fields():
    from tests.conftest import fixture_json

    body = fixture_json("shopify", "fulfillments_create.json")
    del body["tracking_numbers"], body["tracking_urls"]
    body.update(location_id=None, tracking_company=None, shipment_status="IN_TRANSIT")
    event = parse_webhook("shop", "fulfillments/create", body)
    assert event.tracking_numbers == ("1Z2345",) and event.location_id is None
    assert event.shipment_status == "in_transit" and event.tracking_company is None


@pytest.mark.parametrize("change, field", [
    ({"order_id": None}, "order_id"),
    ({"status": None}, "status"),
    ({"created_at": 5}, "created_at"),
    ({"tracking_numbers": "1Z"}, "tracking_numbers"),
    ({"tracking_numbers": [1]}, "tracking_numbers[0]"),
    ({"line_items": [{"id": 1, "quantity": -1}]}, "line_items[0].quantity"),
])
def test_malformed_fulfillments_name_the_field(change, field):
    from tests.conftest import fixture_json

    with pytest.raises(PayloadError, match=re.escape(field)):
        parse_webhook("shop", "fulfillments/update", fixture_json("shopify", "fulfillments_create.json") | change)


def test_fulfillment_resource_id_is_its_order():
    from tests.conftest import fixture_json

    body = fixture_json("shopify", "fulfillments_create.json")
    assert ShopifyStorefront().resource_id("fulfillments/update", body) == "450789469"
