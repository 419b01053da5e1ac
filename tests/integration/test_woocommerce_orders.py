"""WooCommerceOrders against `responses` fixtures from the WooCommerce REST v3 docs:
``order_refunds`` ("Order refunds": List all refunds) and ``modified_orders`` ("Orders":
List all orders, each the documented order 727, with the collection parameters of the
REST CRUD controller)."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from adapters.woocommerce import WooCommerceStorefront
from adapters.woocommerce_orders import WooCommerceOrders
from connector.domain.model import ProviderAuthError, ProviderRejected, ProviderResponseError, RefundLine
from tests.integration.test_woocommerce_stock import KEY, SECRET, STORE, clock, fx  # noqa: F401 - clock is a fixture
from tests.support import FakeClock

REFUNDS = f"{STORE}/wp-json/wc/v3/orders/723/refunds"
ORDERS = f"{STORE}/wp-json/wc/v3/orders"


def make(clock: FakeClock) -> WooCommerceOrders:
    return WooCommerceOrders(STORE, KEY, SECRET, sleep=clock.sleep, monotonic=clock.monotonic)


@responses.activate
def test_every_page_of_refunds_is_read_with_basic_auth(clock):
    first, second = fx("order_723_refunds")
    responses.get(REFUNDS, json=[first], headers={"X-WP-Total": "2", "X-WP-TotalPages": "2"})
    responses.get(REFUNDS, json=[second], headers={"X-WP-Total": "2", "X-WP-TotalPages": "2"})
    refunds = make(clock).order_refunds("723")
    assert [(r.refund_id, r.lines) for r in refunds] == [("726", ()), ("724", (RefundLine("311", 1),))]
    pages = [parse_qs(urlsplit(call.request.url).query) for call in responses.calls]
    assert pages == [{"per_page": ["100"], "page": ["1"]}, {"per_page": ["100"], "page": ["2"]}]
    expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert all(call.request.headers["Authorization"] == expected for call in responses.calls)


@responses.activate
def test_one_page_without_paging_headers_is_the_whole_list(clock):
    responses.get(REFUNDS, json=fx("order_723_refunds"))
    assert [r.refund_id for r in make(clock).order_refunds("723")] == ["726", "724"]
    assert len(responses.calls) == 1


@responses.activate
def test_a_read_is_retried_after_a_server_error(clock):
    responses.get(REFUNDS, status=503, json={"code": "unavailable"})
    responses.get(REFUNDS, json=fx("order_723_refunds"), headers={"X-WP-TotalPages": "1"})
    assert len(make(clock).order_refunds("723")) == 2
    assert len(responses.calls) == 2 and clock.sleeps


@responses.activate
def test_a_missing_order_and_refused_credentials_are_permanent(clock):
    responses.get(REFUNDS, status=404,
                  json={"code": "woocommerce_rest_invalid_order_id", "message": "Invalid order ID.", "data": {"status": 404}})
    with pytest.raises(ProviderRejected):
        make(clock).order_refunds("723")
    responses.replace(responses.GET, REFUNDS, status=401, json=fx("rest_cannot_view"))
    with pytest.raises(ProviderAuthError):
        make(clock).order_refunds("723")


@responses.activate
def test_an_answer_not_in_the_documented_shape_is_a_response_error(clock):
    responses.get(REFUNDS, json={"id": 724})
    with pytest.raises(ProviderResponseError, match="did not answer a list"):
        make(clock).order_refunds("723")
    broken = fx("order_723_refunds")
    broken[1]["line_items"][0]["meta_data"] = []
    responses.replace(responses.GET, REFUNDS, json=broken)
    with pytest.raises(ProviderResponseError, match="_refunded_item_id"):
        make(clock).order_refunds("723")


def test_plain_http_stores_are_refused():
    with pytest.raises(ValueError, match="https"):
        WooCommerceOrders("http://shop.example.com", KEY, SECRET)


# ---------------------------------------------------------------- modified_orders (reconciliation)

SINCE = datetime(2026, 11, 22, 9, 0, 0, tzinfo=timezone.utc)


def order_at(order_id: int, modified: datetime, status: str = "processing") -> dict:
    """The documented order 727 as order ``order_id``, last modified at ``modified`` (UTC)."""
    order = fx("order_727")
    order["id"], order["status"] = order_id, status
    order["date_modified_gmt"] = modified.strftime("%Y-%m-%dT%H:%M:%S")
    return order


def listed(orders: list[dict], pages: int | None = None) -> dict:
    headers = {"X-WP-Total": str(len(orders))}
    if pages is not None:
        headers["X-WP-TotalPages"] = str(pages)
    return {"json": orders, "headers": headers}


def queries() -> list[dict]:
    return [{k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()} for call in responses.calls]


@responses.activate
def test_changed_orders_are_read_oldest_first_by_keyset_with_basic_auth(clock):
    first = [order_at(1000 + i, SINCE + timedelta(seconds=10 + i)) for i in range(100)]
    rest = [order_at(1099, SINCE + timedelta(seconds=109)), order_at(2000, SINCE + timedelta(seconds=300))]
    responses.get(ORDERS, **listed(first, pages=2))
    responses.get(ORDERS, **listed(rest, pages=1))
    pages = list(make(clock).modified_orders(SINCE))
    assert [len(p) for p in pages] == [100, 2]
    asked = queries()
    assert asked[0] == {"status": "any", "modified_after": "2026-11-22T09:00:00", "dates_are_gmt": "true",
                        "orderby": "modified", "order": "asc", "per_page": "100", "page": "1"}
    # Page 2 is "changed after the last time read, less a second", never page=2: an order
    # modified meanwhile would shift a page-numbered listing and skip one.
    assert asked[1]["modified_after"] == "2026-11-22T09:01:48" and asked[1]["page"] == "1"
    expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    assert all(call.request.headers["Authorization"] == expected for call in responses.calls)
    last = pages[1][-1]
    assert (last.order_id, last.modified_at, last.topic) == ("2000", SINCE + timedelta(seconds=300), "order.updated")


@responses.activate
def test_a_polled_order_carries_the_body_and_key_its_webhook_has(clock):
    order = fx("order_727")
    responses.get(ORDERS, **listed([order], pages=1))
    (polled,), = list(make(clock).modified_orders(SINCE))
    assert json.loads(polled.body) == order
    webhook_key = WooCommerceStorefront().dedupe_key({"X-WC-Webhook-Topic": "order.updated"}, order)
    assert polled.dedupe_key == webhook_key == "order:727:2017-03-22T19:28:08:processing"
    assert polled.modified_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=timezone.utc)


@responses.activate
def test_a_full_page_inside_one_second_is_read_by_page_number_then_the_keyset_goes_on(clock):
    crowded_at = SINCE + timedelta(seconds=30)
    crowded = [order_at(1000 + i, crowded_at) for i in range(130)]
    responses.get(ORDERS, **listed(crowded[:100], pages=2))  # keyset: a full page, all in one second
    responses.get(ORDERS, **listed(crowded[100:], pages=2))  # that second, page 2
    responses.get(ORDERS, **listed([order_at(3000, crowded_at + timedelta(seconds=5))], pages=1))
    pages = list(make(clock).modified_orders(SINCE, status="trash"))
    assert [len(p) for p in pages] == [100, 30, 1]
    asked = queries()
    assert [(q["modified_after"], q.get("modified_before"), q["page"], q["status"]) for q in asked] == [
        ("2026-11-22T09:00:00", None, "1", "trash"),
        ("2026-11-22T09:00:29", "2026-11-22T09:00:31", "2", "trash"),
        ("2026-11-22T09:00:30", None, "1", "trash"),
    ]


@responses.activate
def test_reading_stops_after_max_requests(clock):
    for start in range(0, 300, 100):
        page = [order_at(1000 + start + i, SINCE + timedelta(seconds=1 + start + i)) for i in range(100)]
        responses.get(ORDERS, **listed(page, pages=3))
    pages = list(make(clock).modified_orders(SINCE, max_requests=2))
    assert [len(p) for p in pages] == [100, 100] and len(responses.calls) == 2


@responses.activate
def test_an_empty_listing_yields_nothing(clock):
    responses.get(ORDERS, json=[], headers={"X-WP-Total": "0", "X-WP-TotalPages": "0"})
    assert list(make(clock).modified_orders(SINCE)) == []


@responses.activate
def test_orders_without_an_id_or_a_modification_time_are_a_response_error(clock):
    no_time = order_at(5, SINCE)
    del no_time["date_modified_gmt"], no_time["date_modified"]
    for bad, match in (({"orders": []}, "did not answer a list"), ([no_time], "date_modified_gmt"),
                       ([{**order_at(5, SINCE), "id": "x"}], r"orders\[0\]\.id"),
                       ([{**order_at(5, SINCE), "date_modified_gmt": "yesterday"}], "date_modified_gmt")):
        responses.upsert(responses.GET, ORDERS, json=bad)
        with pytest.raises(ProviderResponseError, match=match):
            list(make(clock).modified_orders(SINCE))


@responses.activate
def test_an_older_store_refusing_orderby_modified_is_a_clear_rejection(clock):
    refusal = {"code": "rest_invalid_param", "message": "Invalid parameter(s): orderby",
               "data": {"status": 400, "params": {"orderby": "orderby is not one of date, id, include, title, slug."}}}
    responses.get(ORDERS, status=400, json=refusal)
    with pytest.raises(ProviderRejected, match="orderby"):
        list(make(clock).modified_orders(SINCE))


# ---------------------------------------------------------------- webhooks


@responses.activate
def test_the_stores_webhooks_are_listed_whatever_their_status(clock):
    responses.get(f"{STORE}/wp-json/wc/v3/webhooks", json=fx("webhooks_list"), headers={"X-WP-TotalPages": "1"})
    hooks = make(clock).webhooks()
    assert [(h.webhook_id, h.name, h.status, h.topic, h.delivery_url) for h in hooks] == [
        ("143", "Customer created", "active", "customer.created", "http://requestb.in/1g0sxmo1"),
        ("142", "Order updated", "active", "order.updated", "http://requestb.in/1g0sxmo1")]
    assert queries() == [{"status": "all", "per_page": "100", "page": "1"}]


@responses.activate
def test_a_webhook_without_its_status_topic_or_url_is_a_response_error(clock):
    for field in ("status", "topic", "delivery_url"):
        broken = fx("webhooks_list")
        del broken[1][field]
        responses.upsert(responses.GET, f"{STORE}/wp-json/wc/v3/webhooks", json=broken)
        with pytest.raises(ProviderResponseError, match=rf"webhooks\[1\]\.{field}"):
            make(clock).webhooks()
