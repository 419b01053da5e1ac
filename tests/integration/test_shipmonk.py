"""ShipMonkWarehouse against fixtures served by ``responses``; every request the
adapter sends and every fixture it is fed are validated against ShipMonk's
published v1.024 OpenAPI spec (shared/specs/shipmonk.json)."""
from __future__ import annotations

import email.utils
import json
from datetime import datetime, timezone

import pytest
import requests
import responses

from tests.support import FakeClock
from responses import matchers

from adapters.http import HttpClient, StaticToken
from adapters.shipmonk import ShipMonkWarehouse
from connector.domain.model import (
    Address,
    InventoryRecord,
    OutboundOrder,
    ProviderAuthError,
    ProviderOrderRef,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    Shipment,
    ShipmentLine,
)
from tests.contract import (
    fixture_names,
    load_fixture,
    require_spec,
    validate_calls,
    validate_request,
    validate_response_body,
)

BASE = "https://api.shipmonk.com"
API_KEY = "smk_live_7d41c2b09e8f4a6c"
STORE_ID = 48213
SEARCH_URL = BASE + "/v1/integrations/products/search"
PAGINATE_URL = BASE + "/v1/integrations/products/search/paginate"
ORDER_URL = BASE + "/v1/integrations/order"
ORDERS_URL = BASE + "/v1/integrations/orders"
ORDERS_LIST_URL = BASE + "/v1/integrations/orders-list"
WAREHOUSES_URL = BASE + "/v1/integrations/warehouses"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, 16, 20, 0, tzinfo=UTC)

FIXTURE_OPERATIONS = {
    "products_search.json": ("POST", SEARCH_URL, 200),
    "products_page1.json": ("GET", PAGINATE_URL, 200),
    "products_page2.json": ("GET", PAGINATE_URL, 200),
    "order_detail.json": ("GET", ORDERS_URL, 200),
    "order_upserted.json": ("POST", ORDER_URL, 200),
    "orders_list_page1.json": ("GET", ORDERS_LIST_URL, 200),
    "orders_list_page2.json": ("GET", ORDERS_LIST_URL, 200),
    "warehouses.json": ("GET", WAREHOUSES_URL, 200),
}



@pytest.fixture(scope="module")
def spec():
    return require_spec("shipmonk")


@pytest.fixture
def clock():
    return FakeClock(start=0.0, wall=1_772_467_200.0)


def make_wh(clock: FakeClock, **kw) -> ShipMonkWarehouse:
    client = HttpClient(
        base_url=BASE,
        auth=StaticToken(header="Api-Key", prefix="", token=API_KEY),
        provider="shipmonk",
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        wall_time=clock.wall_time,
        random=lambda: 0.5,
    )
    kw.setdefault("store_id", STORE_ID)
    kw.setdefault("now", lambda: NOW)
    return ShipMonkWarehouse(client=client, **kw)


def outbound(reference: str = "MFC-1002-SM-KY1", **kw) -> OutboundOrder:
    values = dict(
        reference=reference,
        order_number="#1002",
        ship_to_name="Sam Okafor",
        ship_to=Address(country="US", province="KY", postcode="40204"),
        address_lines=("77 Bardstown Rd", "Unit 2"),
        city="Louisville",
        email="sam.okafor@example.com",
        phone="+15025550199",
        lines=(ShipmentLine("TEE-BLK-M", 2), ShipmentLine("POUR-SET-01", 1)),
        location_id="KY1",
        shipping_method="Standard",  # the node's configured method
    )
    values.update(kw)
    return OutboundOrder(**values)


CURSOR_1 = load_fixture("shipmonk", "products_search.json")["cursor"]
CURSOR_2 = load_fixture("shipmonk", "products_page1.json")["next_cursor"]


def add_inventory(rsps, *, page_size: int = 500) -> None:
    rsps.add(responses.POST, SEARCH_URL, json=load_fixture("shipmonk", "products_search.json"))
    for cursor, name in ((CURSOR_1, "products_page1.json"), (CURSOR_2, "products_page2.json")):
        rsps.add(
            responses.GET,
            PAGINATE_URL,
            json=load_fixture("shipmonk", name),
            match=[matchers.query_param_matcher({"cursor": cursor, "pageSize": str(page_size)})],
        )


def raw(on, av, final, quar, unav, wid, pid):
    return {
        "quantity_on_hand": on,
        "quantity_available": av,
        "quantity_final": final,
        "quarantined_quantity": quar,
        "quantity_unavailable": unav,
        "warehouse_id": wid,
        "product_id": pid,
    }


EXPECTED_INVENTORY = [
    # committed = on_hand - available - quarantined - unavailable (floored at 0)
    InventoryRecord("FL1", "TEE-BLK-M", 120, 18, 96, raw(120, 96, 120, 4, 2, 3, 541201)),
    InventoryRecord("KY1", "TEE-BLK-M", 48, 0, 48, raw(48, 48, 48, 0, 0, 11, 541201)),
    InventoryRecord("FL1", "TEE-BLK-L", 15, 15, 0, raw(15, 0, 15, 0, 0, 3, 541202)),
    InventoryRecord("KY1", "POUR-SET-01", 30, 6, 21, raw(30, 21, 30, 0, 3, 11, 541377)),
    InventoryRecord("CA1", "POUR-SET-01", 0, 0, 0, raw(0, 0, 0, 0, 0, 5, 541377)),
]


# ---------------------------------------------------------------- contract of the fixtures


@pytest.mark.parametrize("name", sorted(FIXTURE_OPERATIONS))
def test_fixture_matches_spec(spec, name):
    method, url, status = FIXTURE_OPERATIONS[name]
    validate_response_body(spec, method, url, load_fixture("shipmonk", name), status=status)


def test_every_fixture_is_covered():
    assert set(fixture_names("shipmonk")) == set(FIXTURE_OPERATIONS)


# ---------------------------------------------------------------- inventory


def test_list_inventory_search_then_paginate_maps_exactly(spec, rsps, clock):
    add_inventory(rsps)
    assert list(make_wh(clock).list_inventory()) == EXPECTED_INVENTORY
    calls = rsps.calls
    assert [c.request.method for c in calls] == ["POST", "GET", "GET"]
    assert json.loads(calls[0].request.body) == {"sort": {"sort_by": "id", "sort_order": "ASC"}}
    assert all(c.request.headers["Api-Key"] == API_KEY for c in calls)
    assert all("Authorization" not in c.request.headers for c in calls)
    assert validate_calls(spec, calls) == 3


def test_search_post_is_retried(spec, rsps, clock):
    rsps.add(responses.POST, SEARCH_URL, status=503)
    add_inventory(rsps)
    assert list(make_wh(clock).list_inventory()) == EXPECTED_INVENTORY
    assert [c.request.method for c in rsps.calls] == ["POST", "POST", "GET", "GET"]
    validate_calls(spec, rsps.calls)


def test_paginate_429_with_http_date_retry_after(spec, rsps, clock):
    rsps.add(responses.POST, SEARCH_URL, json=load_fixture("shipmonk", "products_search.json"))
    rsps.add(
        responses.GET,
        PAGINATE_URL,
        status=429,
        headers={"Retry-After": email.utils.formatdate(clock.wall_time() + 30, usegmt=True)},
    )
    add_inventory(rsps)
    assert list(make_wh(clock).list_inventory()) == EXPECTED_INVENTORY
    assert clock.sleeps == [pytest.approx(30.0, abs=1.0)]
    validate_calls(spec, rsps.calls)


def test_paginate_500_then_success(spec, rsps, clock):
    rsps.add(responses.POST, SEARCH_URL, json=load_fixture("shipmonk", "products_search.json"))
    rsps.add(responses.GET, PAGINATE_URL, status=500)
    add_inventory(rsps)
    assert list(make_wh(clock).list_inventory()) == EXPECTED_INVENTORY
    validate_calls(spec, rsps.calls)


def test_paginate_malformed_json(rsps, clock):
    rsps.add(responses.POST, SEARCH_URL, json=load_fixture("shipmonk", "products_search.json"))
    rsps.add(responses.GET, PAGINATE_URL, body='{"data": [}', content_type="application/json")
    with pytest.raises(ProviderResponseError):
        list(make_wh(clock).list_inventory())


def test_paginate_cursor_loop_is_detected(rsps, clock):
    rsps.add(responses.POST, SEARCH_URL, json=load_fixture("shipmonk", "products_search.json"))
    page = load_fixture("shipmonk", "products_page1.json")
    page["next_cursor"] = CURSOR_1  # points back at the first page
    rsps.add(responses.GET, PAGINATE_URL, json=page)
    with pytest.raises(ProviderResponseError, match="repeated"):
        list(make_wh(clock).list_inventory())
    assert len(rsps.calls) == 2


def test_short_pagination_is_an_error(rsps, clock):
    search = load_fixture("shipmonk", "products_search.json")
    search["total"] = 4
    rsps.add(responses.POST, SEARCH_URL, json=search)
    rsps.add(responses.GET, PAGINATE_URL, json=load_fixture("shipmonk", "products_page2.json"))
    with pytest.raises(ProviderResponseError, match="promised 4"):
        list(make_wh(clock).list_inventory())


def test_empty_search_has_no_cursor(spec, rsps, clock):
    rsps.add(responses.POST, SEARCH_URL, json={"total": 0, "cursor": None})
    assert list(make_wh(clock).list_inventory()) == []
    assert len(rsps.calls) == 1
    validate_calls(spec, rsps.calls)


# ---------------------------------------------------------------- orders


def test_find_order_by_order_key(spec, rsps, clock):
    rsps.add(
        responses.GET,
        ORDERS_URL,
        json=load_fixture("shipmonk", "order_detail.json"),
        match=[matchers.query_param_matcher({"orderKey": "MFC-1001-SM-KY1", "storeId": str(STORE_ID)})],
    )
    assert make_wh(clock).find_order("MFC-1001-SM-KY1") == ProviderOrderRef(
        "MFC-1001-SM-KY1", "MFC-1001-SM-KY1", created=False
    )
    validate_calls(spec, rsps.calls)


def test_find_order_404_is_none(spec, rsps, clock):
    rsps.add(responses.GET, ORDERS_URL, status=404, json={"status": 404, "message": "Order not found."})
    assert make_wh(clock).find_order("MFC-4040-SM-KY1") is None
    assert len(rsps.calls) == 1
    validate_calls(spec, rsps.calls)


def test_create_order_existing_is_not_posted(spec, rsps, clock):
    rsps.add(responses.GET, ORDERS_URL, json=load_fixture("shipmonk", "order_detail.json"))
    rsps.add(responses.POST, ORDER_URL, json=load_fixture("shipmonk", "order_upserted.json"))
    ref = make_wh(clock).create_order(outbound("MFC-1001-SM-KY1"))
    assert ref.created is False
    assert [c.request.method for c in rsps.calls] == ["GET"]
    validate_calls(spec, rsps.calls)


def test_create_order_absent_posts_exactly_once(spec, rsps, clock):
    rsps.add(responses.GET, ORDERS_URL, status=404, json={"status": 404, "message": "Order not found."})
    rsps.add(responses.POST, ORDER_URL, json=load_fixture("shipmonk", "order_upserted.json"))
    ref = make_wh(clock).create_order(outbound())
    assert ref == ProviderOrderRef("MFC-1002-SM-KY1", "MFC-1002-SM-KY1", created=True)
    posts = [c for c in rsps.calls if c.request.method == "POST"]
    assert len(posts) == 1
    post = posts[0].request
    assert post.headers["Api-Key"] == API_KEY and post.headers["Content-Type"] == "application/json"
    assert json.loads(post.body) == {
        "store_id": STORE_ID,
        "order_number": "#1002",
        "order_key": "MFC-1002-SM-KY1",
        "items": [
            {"sku": "TEE-BLK-M", "quantity": 2, "line_key": "1"},
            {"sku": "POUR-SET-01", "quantity": 1, "line_key": "2"},
        ],
        "ship_to": {
            "name": "Sam Okafor",
            "street1": "77 Bardstown Rd",
            "street2": "Unit 2",
            "city": "Louisville",
            "state": "KY",
            "zip": "40204",
            "country_code": "US",
            "phone": "+15025550199",
        },
        "requested_shipping_service": "Standard",
        "ordered_at": "2026-03-02T16:20:00Z",
        "order_status": "unfulfilled",
        "customer_email": "sam.okafor@example.com",
        "warehouse": "KY1",
    }
    assert validate_calls(spec, rsps.calls) == 2


def test_contract_catches_drift_in_the_order_body(spec, rsps, clock):
    rsps.add(responses.GET, ORDERS_URL, status=404, json={})
    rsps.add(responses.POST, ORDER_URL, json=load_fixture("shipmonk", "order_upserted.json"))
    make_wh(clock).create_order(outbound())
    post = rsps.calls[1].request
    body = json.loads(post.body)
    body["order_status"] = "new"  # not in the enum
    drifted = requests.Request("POST", post.url, headers=dict(post.headers), json=body).prepare()
    with pytest.raises(AssertionError, match="order_status|new"):
        validate_request(spec, drifted)
    no_key = post.copy()
    del no_key.headers["Api-Key"]
    with pytest.raises(AssertionError, match="Security|Api-Key"):
        validate_request(spec, no_key)
    body = json.loads(post.body)
    body["ship_to"]["postal_code"] = body["ship_to"].pop("zip")  # a plausible misspelling
    misspelt = requests.Request("POST", post.url, headers=dict(post.headers), json=body).prepare()
    with pytest.raises(AssertionError, match="postal_code"):
        validate_request(spec, misspelt)
    page_size_typo = requests.Request(
        "GET", PAGINATE_URL, params={"cursor": CURSOR_1, "page_size": 500}, headers={"Api-Key": API_KEY}
    ).prepare()
    with pytest.raises(AssertionError, match="page_size"):
        validate_request(spec, page_size_typo)


def test_create_order_post_failure_is_not_retried(rsps, clock):
    rsps.add(responses.GET, ORDERS_URL, status=404, json={})
    rsps.add(responses.POST, ORDER_URL, status=502)
    with pytest.raises(ProviderUnavailable):
        make_wh(clock).create_order(outbound())
    assert [c.request.method for c in rsps.calls] == ["GET", "POST"]


def test_create_order_without_store_id_is_refused_locally(rsps, clock):
    rsps.add(responses.GET, ORDERS_URL, status=404, json={})
    with pytest.raises(ProviderRejected, match="store_id"):
        make_wh(clock, store_id=None).create_order(outbound())
    assert [c.request.method for c in rsps.calls] == ["GET"]


def test_find_order_other_4xx_is_rejected(rsps, clock):
    rsps.add(responses.GET, ORDERS_URL, status=400, json={"message": "Invalid storeId"})
    with pytest.raises(ProviderRejected):
        make_wh(clock).find_order("MFC-1001-SM-KY1")


# ---------------------------------------------------------------- shipments


def test_list_shipments_since(spec, rsps, clock):
    for page, name in ((1, "orders_list_page1.json"), (2, "orders_list_page2.json")):
        rsps.add(
            responses.GET,
            ORDERS_LIST_URL,
            json=load_fixture("shipmonk", name),
            match=[matchers.query_param_matcher({
                "updatedAtStart": "2026-03-01T00:00:00Z", "page": str(page), "pageSize": "2", "sortOrder": "ASC",
            })],
        )
    got = list(make_wh(clock, order_page_size=2).list_shipments(datetime(2026, 3, 1, tzinfo=UTC)))
    assert got == [
        Shipment(
            provider_order_id="MFC-0990-SM-KY1",
            reference="MFC-0990-SM-KY1",
            status="delivered",
            tracking_number="9434636208303342761234",
            carrier="USPS",
            shipped_at=datetime(2026, 2, 27, 15, 20, tzinfo=UTC),
        ),
        Shipment(
            provider_order_id="MFC-0991-SM-KY1",
            reference="MFC-0991-SM-KY1",
            status="backorder",
            exception=True,
            exception_detail="backorder, action_required:ship_short",
        ),
        Shipment(provider_order_id="MFC-0993-SM-FL1", reference="MFC-0993-SM-FL1", status="pack_in_progress"),
    ]
    assert validate_calls(spec, rsps.calls) == 2


# ---------------------------------------------------------------- check / construction


def test_check_ok(spec, rsps, clock):
    rsps.add(responses.GET, WAREHOUSES_URL, json=load_fixture("shipmonk", "warehouses.json"))
    make_wh(clock).check()
    validate_calls(spec, rsps.calls)


def test_check_bad_key(rsps, clock):
    rsps.add(responses.GET, WAREHOUSES_URL, status=401, json={"message": "Invalid API key"})
    with pytest.raises(ProviderAuthError):
        make_wh(clock).check()
    assert len(rsps.calls) == 1


def test_default_client_uses_api_key_header():
    wh = ShipMonkWarehouse(api_key=API_KEY, store_id=STORE_ID, base_url="https://sandbox.shipmonk.dev")
    assert wh.provider == "shipmonk" and wh.client.base_url == "https://sandbox.shipmonk.dev"
    headers: dict[str, str] = {}
    wh.client.auth.apply(headers)
    assert headers == {"Api-Key": API_KEY}


def test_page_sizes_respect_spec_limits():
    with pytest.raises(ValueError):
        ShipMonkWarehouse(api_key=API_KEY, store_id=1, inventory_page_size=501)
    with pytest.raises(ValueError):
        ShipMonkWarehouse(api_key=API_KEY, store_id=1, order_page_size=101)
