"""adapters.woocommerce: signature (woocommerce.md §6.1), ping, headers and payload parsing."""
from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from werkzeug.datastructures import Headers

from adapters.woocommerce import (
    TOPICS,
    WooCommerceStorefront,
    is_ping,
    parse_refunds,
    parse_webhook,
    verify_webhook,
    webhook_signature,
)
from connector.domain.model import (
    Address,
    Ignored,
    Order,
    OrderDeleted,
    OrderLine,
    OrderUpsert,
    PayloadError,
    RefundCreated,
    RefundLine,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "woocommerce"
SHOP = "shop-1"
UTC = timezone.utc
SECRET = "s3cr3t-Xq9"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load(name: str) -> dict:
    return json.loads(raw(name))


def sign(secret: str, body: bytes) -> str:
    """Independent of the code under test: WC_Webhook::generate_signature in Python."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


# ---------------------------------------------------------------- signature


def test_signature_vector_from_woocommerce_unit_test():
    # tests/legacy/unit-tests/webhooks/crud.php: empty secret, payload "secret".
    assert webhook_signature("", b"secret") == "GBDo00G55h6IiV+6CxqivQPLbI//KzaOZm747971tPs="


def test_signature_is_base64_of_raw_digest_not_hex():
    assert webhook_signature(SECRET, b"{}") == sign(SECRET, b"{}")
    assert webhook_signature(SECRET, b"{}") != hmac.new(SECRET.encode(), b"{}", hashlib.sha256).hexdigest()


def test_verify_over_the_order_fixture_bytes():
    body = raw("order_727.json")
    signature = sign(SECRET, body)
    assert verify_webhook(body, signature, [SECRET]) is True
    assert verify_webhook(body, signature + "\n", [SECRET]) is True


def test_verify_rejects_tampered_body_and_wrong_secret():
    body = raw("order_727.json")
    signature = sign(SECRET, body)
    tampered = body.replace(b'"quantity": 2', b'"quantity": 20', 1)
    assert tampered != body
    assert verify_webhook(tampered, signature, [SECRET]) is False
    assert verify_webhook(body, signature, ["other"]) is False
    # re-serialising the parsed JSON changes the bytes: only the raw body verifies
    reserialised = json.dumps(json.loads(body)).encode()
    assert verify_webhook(reserialised, signature, [SECRET]) is False


@pytest.mark.parametrize("signature", [None, "", " ", "%%%", "abc", b"bytes", 7])
def test_verify_rejects_missing_or_undecodable_signature(signature):
    assert verify_webhook(raw("order_727.json"), signature, [SECRET]) is False


def test_verify_any_of_the_secrets_and_never_an_empty_one():
    body = raw("order_727_deleted.json")
    assert verify_webhook(body, sign(SECRET, body), ["old", SECRET]) is True
    assert verify_webhook(body, sign(SECRET, body), ["old", "older"]) is False
    assert verify_webhook(body, webhook_signature("", body), [""]) is False
    assert verify_webhook(body, webhook_signature("", body), []) is False
    with pytest.raises(TypeError):
        verify_webhook(body, sign("s", body), "s")


# ---------------------------------------------------------------- ping (§1.3)

PING_HEADERS = {
    "User-Agent": "WooCommerce/9.0.0 Hookshot (WordPress/6.5.0)",
    "Content-Type": "application/x-www-form-urlencoded",
}


def test_ping_is_detected():
    assert is_ping(b"webhook_id=42", PING_HEADERS) is True
    assert is_ping(b"webhook_id=7", Headers(list(PING_HEADERS.items()))) is True
    assert is_ping(b"webhook_id=7", {}) is True
    assert WooCommerceStorefront().is_ping(b"webhook_id=3", PING_HEADERS) is True


@pytest.mark.parametrize(
    "body,extra_headers",
    [
        (b"webhook_id=42", {"X-WC-Webhook-Signature": "abc="}),
        (b"webhook_id=42", {"x-wc-webhook-topic": "order.created"}),
        (b"webhook_id=42", {"X-WC-Webhook-ID": "42"}),
        (b"webhook_id=", {}),
        (b"webhook_id=abc", {}),
        (b"webhook_id=42&x=1", {}),
        (b"webhook_id=42\n", {}),
        (b'{"webhook_id": 42}', {}),
        (b'{"id":727}', {}),
        (b"", {}),
        ("webhook_id=42", {}),
    ],
)
def test_not_a_ping(body, extra_headers):
    assert is_ping(body, {**PING_HEADERS, **extra_headers}) is False


def test_a_real_delivery_is_not_a_ping():
    headers = delivery_headers("order.created")
    assert is_ping(raw("order_727.json"), headers) is False


# ---------------------------------------------------------------- parsing orders (§2)


def expected_order(**changes) -> Order:
    base = Order(
        shop_id=SHOP,
        order_id="727",
        number="727",
        platform="woocommerce",
        created_at=datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC),
        updated_at=datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC),
        ship_to=Address(country="US", province="CA", postcode="94103"),
        lines=(
            OrderLine("315", None, 2, True, "Woo Single #1"),
            OrderLine("316", "Bar3", 1, True, "Ship Your Idea &ndash; Color: Black, Size: M Test"),
        ),
        state="open",
        customer_id=None,
        refund_ids=(),  # "refunds": [] in the docs example
    )
    return Order(**{**base.__dict__, **changes})


def test_topics():
    assert TOPICS == frozenset({"order.created", "order.updated", "order.deleted", "order.restored"})


@pytest.mark.parametrize("topic", ["order.created", "order.updated", "order.restored"])
def test_parse_documented_order(topic):
    assert parse_webhook(SHOP, topic, load("order_727.json")) == OrderUpsert(expected_order())


def test_documented_order_details():
    order = parse_webhook(SHOP, "order.created", load("order_727.json")).order
    assert order.created_at.tzinfo is not None and order.created_at.utcoffset().total_seconds() == 0
    assert order.lines[0].sku is None  # "sku": "" in the docs example
    assert order.lines[0].quantity == 2
    assert isinstance(order.order_id, str)


def test_cancelled_fixture():
    event = parse_webhook(SHOP, "order.updated", load("order_727_cancelled.json"))
    assert event == OrderUpsert(
        expected_order(state="cancelled", updated_at=datetime(2017, 3, 23, 12, 15, tzinfo=UTC))
    )


def test_checkout_draft_fixture_is_ignored():
    # woocommerce.md §1.4 / §7.8: checkout-draft orders still arrive via order.updated.
    event = parse_webhook(SHOP, "order.updated", load("order_727_checkout_draft.json"))
    assert event == Ignored("draft order status checkout-draft")


@pytest.mark.parametrize(
    "status,state",
    [
        ("processing", "open"),
        ("on-hold", "open"),
        ("pending", "awaiting_payment"),
        ("failed", "awaiting_payment"),
        ("cancelled", "cancelled"),
        ("refunded", "cancelled"),
        ("trash", "cancelled"),
        ("completed", "fulfilled"),
        ("ready-for-pickup", "fulfilled"),
    ],
)
def test_status_mapping(status, state):
    payload = load("order_727.json")
    payload["status"] = status
    event = parse_webhook(SHOP, "order.updated", payload)
    assert isinstance(event, OrderUpsert)
    assert event.order.state == state


@pytest.mark.parametrize("status", ["draft", "auto-draft", "checkout-draft", "new"])
def test_draft_statuses_are_ignored(status):
    payload = load("order_727.json")
    payload["status"] = status
    assert parse_webhook(SHOP, "order.created", payload) == Ignored(f"draft order status {status}")


@pytest.mark.parametrize("status", ["wc-processing", "Processing", "shipped", "partially-shipped"])
def test_unknown_statuses_are_ignored(status):
    payload = load("order_727.json")
    payload["status"] = status
    assert parse_webhook(SHOP, "order.updated", payload) == Ignored(
        f"unhandled order status {status}"
    )


def test_draft_is_ignored_before_other_fields_are_checked():
    assert parse_webhook(SHOP, "order.updated", {"status": "checkout-draft"}) == Ignored(
        "draft order status checkout-draft"
    )


def test_parse_deleted():
    assert parse_webhook(SHOP, "order.deleted", load("order_727_deleted.json")) == OrderDeleted("727")


@pytest.mark.parametrize("topic", ["product.updated", "customer.created", "action.woocommerce_x", ""])
def test_other_topics_are_ignored(topic):
    assert parse_webhook(SHOP, topic, load("order_727.json")) == Ignored(f"unhandled topic {topic}")


def test_customer_and_number():
    payload = load("order_727.json")
    payload["customer_id"] = 26
    payload["number"] = "WC-00727"
    order = parse_webhook(SHOP, "order.created", payload).order
    assert order.customer_id == "26"
    assert order.number == "WC-00727"
    payload["number"] = ""
    assert parse_webhook(SHOP, "order.created", payload).order.number == "727"


def test_ship_to_falls_back_to_billing_when_shipping_has_no_country():
    payload = load("order_727.json")
    payload["shipping"] = {k: "" for k in payload["shipping"]}
    payload["billing"].update(country="ca", state="ON", postcode="M5V 2T6")
    order = parse_webhook(SHOP, "order.created", payload).order
    assert order.ship_to == Address("CA", "ON", "M5V 2T6")


def test_ship_to_empty_strings_become_none_and_no_address_at_all_is_none():
    payload = load("order_727.json")
    payload["shipping"].update(state="", postcode="  ")
    assert parse_webhook(SHOP, "order.created", payload).order.ship_to == Address("US", None, None)
    payload["shipping"] = {k: "" for k in payload["shipping"]}
    payload["billing"] = []  # PHP's empty array
    assert parse_webhook(SHOP, "order.created", payload).order.ship_to is None


@pytest.fixture
def non_utc_local_time(monkeypatch):
    """Make the process's local timezone non-UTC, so reading a naive time as *local*
    (instead of as GMT) would show up."""
    import time

    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset not available")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_gmt_dates_do_not_depend_on_the_local_timezone(non_utc_local_time):
    order = parse_webhook(SHOP, "order.created", load("order_727.json")).order
    assert order.created_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)
    assert order.updated_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)


def test_dates_fall_back_when_gmt_missing():
    payload = load("order_727.json")
    del payload["date_created_gmt"]
    payload["date_modified_gmt"] = None
    order = parse_webhook(SHOP, "order.created", payload).order
    # date_created (site time, no offset) is read as UTC; updated_at falls back to it
    assert order.created_at == datetime(2017, 3, 22, 16, 28, 2, tzinfo=UTC)
    assert order.updated_at == order.created_at


# ---------------------------------------------------------------- bad shapes


def order_with(mutate) -> dict:
    payload = load("order_727.json")
    mutate(payload)
    return payload


@pytest.mark.parametrize(
    "topic,payload,field",
    [
        ("order.created", [], "payload"),
        ("order.created", "x", "payload"),
        ("order.created", None, "payload"),
        ("order.created", {"id": 1}, "status"),
        ("order.created", {"id": 1, "status": 5}, "status"),
        ("order.created", {"id": None, "status": "processing"}, "id"),
        ("order.updated", order_with(lambda p: p.update(id="x")), "id"),
        ("order.updated", order_with(lambda p: p.update(id=True)), "id"),
        ("order.updated", order_with(lambda p: p.update(line_items="x")), "line_items"),
        ("order.updated", order_with(lambda p: p.pop("line_items")), "line_items"),
        ("order.updated", order_with(lambda p: p["line_items"].append([])), "line_items[2]"),
        ("order.updated", order_with(lambda p: p["line_items"][0].pop("id")), "line_items[0].id"),
        ("order.updated", order_with(lambda p: p["line_items"][0].update(quantity=-1)), "line_items[0].quantity"),
        ("order.updated", order_with(lambda p: p["line_items"][0].update(quantity="2")), "line_items[0].quantity"),
        ("order.updated", order_with(lambda p: p["line_items"][0].update(quantity=False)), "line_items[0].quantity"),
        ("order.updated", order_with(lambda p: p["line_items"][0].update(quantity=2.5)), "line_items[0].quantity"),
        ("order.updated", order_with(lambda p: p["line_items"][1].update(sku=3)), "line_items[1].sku"),
        ("order.updated", order_with(lambda p: p["line_items"][1].update(name=3)), "line_items[1].name"),
        ("order.updated", order_with(lambda p: p["line_items"][1].update(id=315)), "line_items[1].id"),
        ("order.updated", order_with(lambda p: p.update(date_created_gmt="22/03/2017")), "date_created_gmt"),
        ("order.updated", order_with(lambda p: p.update(date_modified_gmt=1490211000)), "date_modified_gmt"),
        ("order.updated", order_with(lambda p: p.update(date_created_gmt=None, date_created=None)), "date_created_gmt"),
        ("order.updated", order_with(lambda p: p.update(shipping="US")), "shipping"),
        ("order.updated", order_with(lambda p: p["shipping"].update(postcode=94103)), "shipping.postcode"),
        ("order.updated", order_with(lambda p: p.update(customer_id="abc")), "customer_id"),
        ("order.deleted", {}, "id"),
        ("order.deleted", {"id": "727x"}, "id"),
        ("order.deleted", [727], "payload"),
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
    0,
    2.5,
    False,
    None,
    {},
    {"id": None},
    {"id": 1},
    {"id": 1, "status": None},
    {"id": 1, "status": "processing"},
    {"id": 1, "status": "processing", "line_items": "x"},
    {"id": 1, "status": "processing", "line_items": [None]},
    {"id": 1, "status": "processing", "date_created_gmt": "2020-01-01T00:00:00", "line_items": [{}]},
    {"id": 1, "status": "processing", "date_created_gmt": "0001-01-01T00:00:00+05:00", "line_items": []},
    {"id": 1, "status": "processing", "date_created_gmt": "x", "line_items": []},
    {"id": 1, "status": "completed", "date_created": "2020-01-01T00:00:00", "line_items": [],
     "shipping": [1], "billing": "b", "customer_id": []},
    {"id": 10**30, "status": "processing"},
    {"id": "9" * 5000, "status": "processing"},
    {"id": 1, "status": ["processing"]},
    {"id": 1, "status": "pending", "date_created_gmt": "2020-01-01T00:00:00",
     "line_items": [{"id": 1, "quantity": 10**40}]},
    [{"id": 1}],
]


@pytest.mark.parametrize("topic", sorted(TOPICS) + ["product.updated"])
@pytest.mark.parametrize("payload", ODD_VALUES, ids=repr)
def test_odd_json_values_only_ever_raise_payload_error(topic, payload):
    try:
        parse_webhook(SHOP, topic, copy.deepcopy(payload))
    except PayloadError:
        pass


def test_unknown_topic_is_ignored_even_for_non_objects():
    assert parse_webhook(SHOP, "coupon.created", None) == Ignored("unhandled topic coupon.created")


# ---------------------------------------------------------------- headers, dedupe, the class


def delivery_headers(topic: str, body: bytes = b"", delivery: str = "36e520ebabc2fa725092ff4a47acedf2"):
    return {
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.0.0 Hookshot (WordPress/6.5.0)",
        "X-WC-Webhook-Source": "https://Shop.Example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[-1],
        "X-WC-Webhook-Signature": sign(SECRET, body),
        "X-WC-Webhook-ID": "3",
        "X-WC-Webhook-Delivery-ID": delivery,
    }


@pytest.mark.parametrize("case", ["dict", "lower", "werkzeug"])
def test_storefront_headers_in_any_case(case):
    body = raw("order_727.json")
    headers = delivery_headers("order.updated", body)
    if case == "lower":
        headers = {k.lower(): v for k, v in headers.items()}
    elif case == "werkzeug":
        headers = Headers(list(headers.items()))
    store = WooCommerceStorefront()
    assert store.platform == "woocommerce"
    assert store.verify(body, headers, [SECRET]) is True
    assert store.verify(body + b" ", headers, [SECRET]) is False
    assert store.verify(body, headers, ["wrong"]) is False
    assert store.topic(headers) == "order.updated"
    assert store.source(headers) == "https://shop.example.com"
    assert store.delivery_id(headers) == "36e520ebabc2fa725092ff4a47acedf2"


def test_storefront_missing_headers():
    store = WooCommerceStorefront()
    body = raw("order_727.json")
    assert store.verify(body, {}, [SECRET]) is False
    assert store.topic({}) is None
    assert store.source({}) is None


@pytest.mark.parametrize(
    "value,expected",
    [
        ("https://shop.example.com/", "https://shop.example.com"),
        ("HTTPS://WWW.Website.com/", "https://www.website.com"),
        ("https://example.com/Shop/", "https://example.com/Shop"),
        ("http://example.com:8080/", "http://example.com:8080"),
        ("https://example.com", "https://example.com"),
        ("", None),
        ("not a url", None),
    ],
)
def test_source_normalisation(value, expected):
    assert WooCommerceStorefront().source({"X-WC-Webhook-Source": value}) == expected


def test_dedupe_key_uses_order_id_and_modification_time_not_delivery_id():
    store = WooCommerceStorefront()
    payload = load("order_727.json")
    first = store.dedupe_key(delivery_headers("order.updated", delivery="aaa"), payload)
    second = store.dedupe_key(delivery_headers("order.updated", delivery="bbb"), payload)
    assert first == second == "order:727:2017-03-22T19:28:08:processing"
    # created and updated deliveries of the same state are the same content
    assert store.dedupe_key(delivery_headers("order.created"), payload) == first
    # a later modification is a new key
    cancelled = load("order_727_cancelled.json")
    assert store.dedupe_key(delivery_headers("order.updated"), cancelled) == "order:727:2017-03-23T12:15:00:cancelled"


def test_dedupe_key_falls_back_to_local_modification_time():
    payload = load("order_727.json")
    del payload["date_modified_gmt"]
    key = WooCommerceStorefront().dedupe_key(delivery_headers("order.restored"), payload)
    assert key == "order:727:2017-03-22T16:28:08:processing"


def test_dedupe_key_for_deleted_uses_delivery_id():
    store = WooCommerceStorefront()
    payload = load("order_727_deleted.json")
    assert store.dedupe_key(delivery_headers("order.deleted", delivery="aaa"), payload) == (
        "order:727:deleted:aaa"
    )
    assert store.dedupe_key(delivery_headers("order.deleted", delivery="bbb"), payload) == (
        "order:727:deleted:bbb"
    )
    headers = delivery_headers("order.deleted")
    del headers["X-WC-Webhook-Delivery-ID"]
    assert store.dedupe_key(headers, payload) is None


@pytest.mark.parametrize("payload", [{}, {"id": None}, {"id": "x"}, [], None, "727"])
def test_dedupe_key_none_without_an_id(payload):
    store = WooCommerceStorefront()
    assert store.dedupe_key(delivery_headers("order.updated"), payload) is None
    assert store.dedupe_key(delivery_headers("order.deleted"), payload) is None


def test_resource_id():
    store = WooCommerceStorefront()
    assert store.resource_id("order.updated", load("order_727.json")) == "727"
    assert store.resource_id("order.deleted", load("order_727_deleted.json")) == "727"
    assert store.resource_id("product.updated", {"id": 93}) is None
    assert store.resource_id("order.updated", {"id": None}) is None
    assert store.resource_id("order.updated", "x") is None


def test_storefront_parse_is_parse_webhook():
    store = WooCommerceStorefront()
    assert store.parse(SHOP, "order.created", load("order_727.json")) == OrderUpsert(expected_order())


# ---------------------------------------------------------------- refunds


def test_the_refunds_an_order_lists_are_kept_by_id():
    payload = load("order_727.json")
    payload["refunds"] = [{"id": 726, "reason": "", "total": "-10.00"}, {"id": 724, "reason": "", "total": "-9.00"}]
    assert parse_webhook(SHOP, "order.updated", payload).order.refund_ids == ("726", "724")
    del payload["refunds"]
    assert parse_webhook(SHOP, "order.updated", payload).order.refund_ids == ()


@pytest.mark.parametrize("refunds, where", [
    ("726", "refunds: expected a list"),
    ([{"reason": ""}], "refunds[0].id: missing id"),
    ([726], "refunds[0]"),
])
def test_a_malformed_refunds_list_names_the_field(refunds, where):
    payload = load("order_727.json")
    payload["refunds"] = refunds
    with pytest.raises(PayloadError, match=re.escape(where)):
        parse_webhook(SHOP, "order.updated", payload)


def test_parse_documented_refunds():
    """The REST API docs' "List all refunds" example: an amount-only refund has no
    lines; a line refund names the order's line in _refunded_item_id."""
    assert parse_refunds("723", load("order_723_refunds.json")) == (
        RefundCreated("723", "726", (), datetime(2017, 3, 21, 20, 7, 11, tzinfo=UTC)),
        RefundCreated("723", "724", (RefundLine("311", 1),), datetime(2017, 3, 21, 19, 55, 37, tzinfo=UTC)),
    )


def test_refund_lines_of_one_order_line_add_up_and_zero_units_are_amounts_only():
    refunds = load("order_723_refunds.json")
    line = refunds[1]["line_items"][0]
    refunds[1]["line_items"] = [line, {**copy.deepcopy(line), "id": 315, "quantity": -2},
                                {**copy.deepcopy(line), "id": 316, "quantity": 0}]
    assert parse_refunds("723", refunds)[1].lines == (RefundLine("311", 3),)


@pytest.mark.parametrize("change, where", [
    (lambda r: r.__setitem__("id", None), "refunds[1].id: missing id"),
    (lambda r: r["line_items"][0].__setitem__("quantity", 1), "refunds[1].line_items[0].quantity"),
    (lambda r: r["line_items"][0].__setitem__("quantity", "-1"), "refunds[1].line_items[0].quantity"),
    (lambda r: r["line_items"][0].__setitem__("meta_data", []), "no _refunded_item_id entry"),
    (lambda r: r["line_items"][0]["meta_data"][0].__setitem__("value", "x"), "meta_data[0].value"),
    (lambda r: r.__setitem__("line_items", {}), "line_items: expected a list"),
])
def test_a_malformed_refund_names_the_field(change, where):
    refunds = load("order_723_refunds.json")
    change(refunds[1])
    with pytest.raises(PayloadError, match=re.escape(where)):
        parse_refunds("723", refunds)
    with pytest.raises(PayloadError, match="refunds: expected a list"):
        parse_refunds("723", {"id": 724})


def test_a_completed_order_says_when_it_was_completed():
    body = json.loads((Path(__file__).parents[1] / "fixtures" / "woocommerce" / "order_727.json").read_text())
    assert parse_webhook("s", "order.updated", body).order.fulfilled_at is None  # processing
    completed = body | {"status": "completed", "date_completed": "2017-03-23T10:00:00",
                        "date_completed_gmt": "2017-03-23T09:00:00"}
    assert parse_webhook("s", "order.updated", completed).order.fulfilled_at.isoformat() == "2017-03-23T09:00:00+00:00"
    ready = completed | {"status": "ready-for-pickup"}
    assert parse_webhook("s", "order.updated", ready).order.fulfilled_at is None  # has not left yet
