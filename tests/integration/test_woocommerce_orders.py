"""WooCommerceOrders.order_refunds against `responses` fixtures from the WooCommerce REST v3
docs ("Order refunds": List all refunds)."""
from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from adapters.woocommerce_orders import WooCommerceOrders
from connector.domain.model import ProviderAuthError, ProviderRejected, ProviderResponseError, RefundLine
from tests.integration.test_woocommerce_stock import KEY, SECRET, STORE, clock, fx  # noqa: F401 - clock is a fixture
from tests.support import FakeClock

REFUNDS = f"{STORE}/wp-json/wc/v3/orders/723/refunds"


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
