"""ShipBobWarehouse against fixtures served by ``responses``; every request the
adapter sends and every fixture it is fed are validated against ShipBob's
published 2026-01 OpenAPI spec (shared/specs/shipbob.json)."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests
import responses

from tests.support import FakeClock
from responses import matchers

from adapters.http import HttpClient, StaticToken
from adapters.shipbob import ShipBobWarehouse
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
    validate_response,
    validate_response_body,
)

BASE = "https://api.shipbob.com"
TOKEN = "sb_pat_5c1f0e2d3a4b59687f"
CHANNEL = "100102"
INVENTORY_URL = BASE + "/2026-01/inventory-level/locations"
ORDER_URL = BASE + "/2026-01/order"
CHANNEL_URL = BASE + "/2026-01/channel"
UTC = timezone.utc

# every fixture file -> the operation and status it is a response of
FIXTURE_OPERATIONS = {
    "inventory_locations_page1.json": ("GET", INVENTORY_URL, 200),
    "inventory_locations_page2.json": ("GET", INVENTORY_URL, 200),
    "orders_by_reference.json": ("GET", ORDER_URL, 200),
    "orders_empty.json": ("GET", ORDER_URL, 200),
    "orders_updated_page1.json": ("GET", ORDER_URL, 200),
    "orders_updated_page2.json": ("GET", ORDER_URL, 200),
    "order_created.json": ("POST", ORDER_URL, 201),
    "channels.json": ("GET", CHANNEL_URL, 200),
}



@pytest.fixture(scope="module")
def spec():
    return require_spec("shipbob")


@pytest.fixture
def clock():
    return FakeClock(start=0.0)


def make_wh(clock: FakeClock, channel_id: str | None = CHANNEL, **kw) -> ShipBobWarehouse:
    client = HttpClient(
        base_url=BASE,
        auth=StaticToken(token=TOKEN),
        provider="shipbob",
        min_interval=60 / 150,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        random=lambda: 0.5,
    )
    return ShipBobWarehouse(channel_id=channel_id, client=client, **kw)


def outbound(reference: str = "MFC-1002-SB-CHI", **kw) -> OutboundOrder:
    values = dict(
        reference=reference,
        order_number="#1002",
        ship_to_name="Dana Whitfield",
        ship_to=Address(country="US", province="IL", postcode="60622"),
        address_lines=("1840 W Division St", "Apt 3R"),
        city="Chicago",
        email="dana.whitfield@example.com",
        phone="+1 312 555 0148",
        lines=(ShipmentLine("TEE-BLK-M", 2), ShipmentLine("POUR-SET-01", 1)),
        location_id="10",
        shipping_method="Standard",  # the node's configured method
    )
    values.update(kw)
    return OutboundOrder(**values)


def add_inventory_pages(rsps) -> None:
    rsps.add(
        responses.GET,
        INVENTORY_URL,
        json=load_fixture("shipbob", "inventory_locations_page1.json"),
        match=[matchers.query_param_matcher({"PageSize": "2"})],
    )
    rsps.add(
        responses.GET,
        INVENTORY_URL,
        json=load_fixture("shipbob", "inventory_locations_page2.json"),
        match=[matchers.query_param_matcher({"PageSize": "2", "Cursor": "eyJsYXN0SWQiOjIwMTA0NDcyfQ"})],
    )


# The inventory fixtures' next links carry a ``Cursor`` parameter that the
# 2026-01 spec does not declare for this operation (3pl.md §1: "Follow next
# verbatim"). Only a request that *is* such a link may carry it; requests the
# adapter builds itself must use declared parameters only.
NEXT_LINKS = {
    load_fixture("shipbob", "inventory_locations_page1.json")["next"],
}


def validate_inventory_calls(spec, calls) -> int:
    n = 0
    for call in calls:
        allow = {"Cursor"} if call.request.url in NEXT_LINKS else set()
        n += validate_calls(spec, [call], allow_query=allow)
    return n


def raw(inv, on, com, ful, aw, it):
    return {
        "inventory_id": inv,
        "on_hand_quantity": on,
        "committed_quantity": com,
        "fulfillable_quantity": ful,
        "awaiting_quantity": aw,
        "internal_transfer_quantity": it,
    }


EXPECTED_INVENTORY = [
    InventoryRecord("10", "TEE-BLK-M", 140, 12, 128, raw(20104471, 140, 12, 128, 50, 0)),
    InventoryRecord("156", "TEE-BLK-M", 75, 5, 70, raw(20104471, 75, 5, 70, 0, 24)),
    InventoryRecord("10", "TEE-BLK-L", 33, 33, 0, raw(20104472, 33, 33, 0, 120, 0)),
    InventoryRecord("156", "POUR-SET-01", 18, 2, 16, raw(20109983, 18, 2, 16, 0, 0)),
    InventoryRecord("182", "POUR-SET-01", 0, 0, 0, raw(20109983, 0, 0, 0, 36, 0)),
]


# ---------------------------------------------------------------- contract of the fixtures


@pytest.mark.parametrize("name", sorted(FIXTURE_OPERATIONS))
def test_fixture_matches_spec(spec, name):
    method, url, status = FIXTURE_OPERATIONS[name]
    validate_response_body(spec, method, url, load_fixture("shipbob", name), status=status)


def test_every_fixture_is_covered():
    assert set(fixture_names("shipbob")) == set(FIXTURE_OPERATIONS)


# ---------------------------------------------------------------- inventory


def test_list_inventory_follows_next_links_and_maps_exactly(spec, rsps, clock):
    add_inventory_pages(rsps)
    wh = make_wh(clock, inventory_page_size=2)
    records = list(wh.list_inventory())
    assert records == EXPECTED_INVENTORY
    assert len(rsps.calls) == 2
    page1 = load_fixture("shipbob", "inventory_locations_page1.json")
    assert rsps.calls[1].request.url == page1["next"]  # followed verbatim
    assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert validate_inventory_calls(spec, rsps.calls) == 2
    assert clock.sleeps == [pytest.approx(0.4)]  # 150 req/min pacing


def test_list_inventory_with_429_x_retry_after(spec, rsps, clock):
    rsps.add(
        responses.GET,
        INVENTORY_URL,
        status=429,
        headers={"x-retry-after": "25", "x-remaining-calls": "0"},
        json={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 25 seconds."},
    )
    add_inventory_pages(rsps)
    assert list(make_wh(clock, inventory_page_size=2).list_inventory()) == EXPECTED_INVENTORY
    assert 25.0 in clock.sleeps
    validate_inventory_calls(spec, rsps.calls)


def test_list_inventory_500_then_success(spec, rsps, clock):
    rsps.add(responses.GET, INVENTORY_URL, status=500, json={"error": "upstream"})
    add_inventory_pages(rsps)
    assert list(make_wh(clock, inventory_page_size=2).list_inventory()) == EXPECTED_INVENTORY
    assert len(rsps.calls) == 3
    validate_inventory_calls(spec, rsps.calls)


def test_list_inventory_malformed_json(rsps, clock):
    rsps.add(responses.GET, INVENTORY_URL, body='{"items": [{"inventory_id": 1,}]}', content_type="application/json")
    with pytest.raises(ProviderResponseError):
        list(make_wh(clock).list_inventory())


def test_list_inventory_unavailable_after_retries(rsps, clock):
    rsps.add(responses.GET, INVENTORY_URL, status=503)
    with pytest.raises(ProviderUnavailable) as info:
        list(make_wh(clock).list_inventory())
    assert len(rsps.calls) == 5 and "shipbob" in str(info.value)


def test_list_inventory_detects_next_link_loop(rsps, clock):
    page = load_fixture("shipbob", "inventory_locations_page1.json")
    page["next"] = INVENTORY_URL + "?PageSize=2&Cursor=stuck"
    rsps.add(responses.GET, INVENTORY_URL, json=page)
    with pytest.raises(ProviderResponseError):
        list(make_wh(clock, inventory_page_size=2).list_inventory())
    assert len(rsps.calls) <= 3


def test_list_inventory_rejects_missing_quantities(rsps, clock):
    page = load_fixture("shipbob", "inventory_locations_page2.json")
    del page["items"][0]["locations"][0]["fulfillable_quantity"]
    rsps.add(responses.GET, INVENTORY_URL, json=page)
    with pytest.raises(ProviderResponseError, match="fulfillable_quantity"):
        list(make_wh(clock).list_inventory())


# ---------------------------------------------------------------- orders


def test_find_order_by_reference(spec, rsps, clock):
    rsps.add(
        responses.GET,
        ORDER_URL,
        json=load_fixture("shipbob", "orders_by_reference.json"),
        match=[matchers.query_param_matcher({"ReferenceIds": "MFC-1001-SB-CHI"}, strict_match=False)],
    )
    ref = make_wh(clock).find_order("MFC-1001-SB-CHI")
    assert ref == ProviderOrderRef("284713902", "MFC-1001-SB-CHI", created=False)
    assert rsps.calls[0].request.headers["shipbob_channel_id"] == CHANNEL
    validate_calls(spec, rsps.calls)


def test_find_order_absent(spec, rsps, clock):
    rsps.add(responses.GET, ORDER_URL, json=[])
    assert make_wh(clock).find_order("MFC-4040-SB-CHI") is None
    validate_calls(spec, rsps.calls)


def test_create_order_existing_is_not_posted(spec, rsps, clock):
    rsps.add(responses.GET, ORDER_URL, json=load_fixture("shipbob", "orders_by_reference.json"))
    rsps.add(responses.POST, ORDER_URL, status=201, json=load_fixture("shipbob", "order_created.json"))
    ref = make_wh(clock).create_order(outbound("MFC-1001-SB-CHI"))
    assert ref == ProviderOrderRef("284713902", "MFC-1001-SB-CHI", created=False)
    assert [c.request.method for c in rsps.calls] == ["GET"]
    validate_calls(spec, rsps.calls)


def test_create_order_absent_posts_exactly_once(spec, rsps, clock):
    rsps.add(responses.GET, ORDER_URL, json=load_fixture("shipbob", "orders_empty.json"))
    rsps.add(responses.POST, ORDER_URL, status=201, json=load_fixture("shipbob", "order_created.json"))
    ref = make_wh(clock).create_order(outbound())
    assert ref == ProviderOrderRef("284713955", "MFC-1002-SB-CHI", created=True)
    posts = [c for c in rsps.calls if c.request.method == "POST"]
    assert len(posts) == 1
    post = posts[0].request
    assert post.headers["shipbob_channel_id"] == CHANNEL
    assert post.headers["Authorization"] == f"Bearer {TOKEN}"
    assert post.headers["Content-Type"] == "application/json"
    assert json.loads(post.body) == {
        "reference_id": "MFC-1002-SB-CHI",
        "order_number": "#1002",
        "type": "DTC",
        "shipping_method": "Standard",
        "recipient": {
            "name": "Dana Whitfield",
            "address": {
                "address1": "1840 W Division St",
                "address2": "Apt 3R",
                "city": "Chicago",
                "state": "IL",
                "zip_code": "60622",
                "country": "US",
            },
            "email": "dana.whitfield@example.com",
            "phone_number": "+1 312 555 0148",
        },
        "products": [
            {"reference_id": "TEE-BLK-M", "name": "TEE-BLK-M", "quantity": 2},
            {"reference_id": "POUR-SET-01", "name": "POUR-SET-01", "quantity": 1},
        ],
        "location_id": 10,
    }
    assert validate_calls(spec, rsps.calls) == 2  # the GET, the POST (headers + body) and both responses


def test_minimal_order_body_is_valid(spec, rsps, clock):
    rsps.add(responses.GET, ORDER_URL, json=[])
    rsps.add(responses.POST, ORDER_URL, status=201, json=load_fixture("shipbob", "order_created.json"))
    order = outbound(address_lines=("1 Main St",), email=None, phone=None, location_id=None,
                     ship_to=Address(country="GB", province=None, postcode=None), shipping_method="Ground")
    make_wh(clock).create_order(order)
    body = json.loads(rsps.calls[1].request.body)
    assert "location_id" not in body and "email" not in body["recipient"]
    assert body["shipping_method"] == "Ground"
    validate_calls(spec, rsps.calls)


def test_contract_catches_drift_in_the_order_body(spec, rsps, clock):
    """The validator is not a rubber stamp: the same POST without the channel
    header, or with a product missing its required name, fails the spec."""
    rsps.add(responses.GET, ORDER_URL, json=[])
    rsps.add(responses.POST, ORDER_URL, status=201, json=load_fixture("shipbob", "order_created.json"))
    make_wh(clock).create_order(outbound())
    post = rsps.calls[1].request
    no_header = post.copy()
    del no_header.headers["shipbob_channel_id"]
    with pytest.raises(AssertionError, match="shipbob_channel_id"):
        validate_request(spec, no_header)
    body = json.loads(post.body)
    del body["products"][0]["name"]
    drifted = requests.Request("POST", post.url, headers=dict(post.headers), json=body).prepare()
    with pytest.raises(AssertionError):
        validate_request(spec, drifted)


def test_create_order_post_failure_is_not_retried(rsps, clock):
    rsps.add(responses.GET, ORDER_URL, json=[])
    rsps.add(responses.POST, ORDER_URL, status=503)
    with pytest.raises(ProviderUnavailable):
        make_wh(clock).create_order(outbound())
    assert [c.request.method for c in rsps.calls] == ["GET", "POST"]


def test_create_order_post_timeout_is_not_retried(rsps, clock):
    rsps.add(responses.GET, ORDER_URL, json=[])
    rsps.add(responses.POST, ORDER_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ProviderUnavailable):
        make_wh(clock).create_order(outbound())
    assert [c.request.method for c in rsps.calls] == ["GET", "POST"]


def test_create_order_duplicate_422_resolves_to_existing(spec, rsps, clock):
    rsps.add(responses.GET, ORDER_URL, json=[])
    rsps.add(responses.POST, ORDER_URL, status=422, json={"": ["Order with the same reference_id already exists"]})
    rsps.add(responses.GET, ORDER_URL, json=load_fixture("shipbob", "orders_by_reference.json"))
    ref = make_wh(clock).create_order(outbound("MFC-1001-SB-CHI"))
    assert ref.created is False and ref.provider_order_id == "284713902"
    assert [c.request.method for c in rsps.calls] == ["GET", "POST", "GET"]
    validate_calls(spec, rsps.calls)
    validate_response(spec, rsps.calls[1].request, rsps.calls[1].response)  # the 422 body shape too


def test_create_order_422_other_reason_is_rejected(rsps, clock):
    rsps.add(responses.GET, ORDER_URL, json=[])
    rsps.add(responses.POST, ORDER_URL, status=422, json={"shipping_method": ["Unknown ship option"]})
    with pytest.raises(ProviderRejected) as info:
        make_wh(clock).create_order(outbound())
    assert info.value.status == 422


def test_order_without_country_is_refused_locally(rsps, clock):
    rsps.add(responses.GET, ORDER_URL, json=[])
    with pytest.raises(ProviderRejected, match="no country"):
        make_wh(clock).create_order(outbound(ship_to=Address(country=None, province=None, postcode=None)))
    assert all(c.request.method == "GET" for c in rsps.calls)


def test_channel_is_discovered_when_not_configured(spec, rsps, clock):
    rsps.add(responses.GET, CHANNEL_URL, json=load_fixture("shipbob", "channels.json"))
    rsps.add(responses.GET, ORDER_URL, json=[])
    wh = make_wh(clock, channel_id=None)
    assert wh.find_order("MFC-4040-SB-CHI") is None
    assert rsps.calls[1].request.headers["shipbob_channel_id"] == "100102"
    assert wh.channel_id == "100102" and len(rsps.calls) == 2  # cached
    validate_calls(spec, rsps.calls)


# ---------------------------------------------------------------- shipments


def test_list_shipments_since(spec, rsps, clock):
    since = datetime(2026, 3, 1, tzinfo=UTC)
    for page, name in ((1, "orders_updated_page1.json"), (2, "orders_updated_page2.json")):
        rsps.add(
            responses.GET,
            ORDER_URL,
            json=load_fixture("shipbob", name),
            match=[matchers.query_param_matcher(
                {"LastUpdateStartDate": "2026-03-01T00:00:00Z", "Page": str(page), "Limit": "2"}
            )],
        )
    shipments = list(make_wh(clock, order_page_size=2).list_shipments(since))
    assert shipments == [
        Shipment(
            provider_order_id="284700001",
            reference="MFC-0990-SB-CHI",
            status="Completed",
            tracking_number="9400111899223344556677",
            carrier="USPS",
            shipped_at=datetime(2026, 2, 28, 14, 35, tzinfo=UTC),
            delivered_at=datetime(2026, 3, 1, 18, 20, tzinfo=UTC),
        ),
        Shipment(
            provider_order_id="284700002",
            reference="MFC-0991-SB-CHI",
            status="Exception",
            exception=True,
            exception_detail="Not enough inventory to fulfill this shipment",
        ),
        # order 284700003's first shipment was last updated on 2026-02-22: skipped
        Shipment(
            provider_order_id="284700003",
            reference="MFC-0992-SB-MOR",
            status="LabeledCreated",
            tracking_number="794698213386",
            carrier="FedEx",
        ),
    ]
    assert validate_calls(spec, rsps.calls) == 2


def test_list_shipments_needs_an_aware_datetime(clock):
    with pytest.raises(ValueError):
        list(make_wh(clock).list_shipments(datetime(2026, 3, 1)))


# ---------------------------------------------------------------- check / construction


def test_check_ok(spec, rsps, clock):
    rsps.add(responses.GET, CHANNEL_URL, json=load_fixture("shipbob", "channels.json"))
    make_wh(clock).check()
    validate_calls(spec, rsps.calls)


def test_check_bad_token(rsps, clock):
    rsps.add(responses.GET, CHANNEL_URL, status=401, body="")
    with pytest.raises(ProviderAuthError):
        make_wh(clock).check()


def test_default_client_is_paced_for_150_per_minute():
    wh = ShipBobWarehouse(token=TOKEN, channel_id=CHANNEL, base_url="https://sandbox-api.shipbob.com")
    assert wh.provider == "shipbob"
    assert wh.client.min_interval == pytest.approx(0.4)
    assert wh.client.base_url == "https://sandbox-api.shipbob.com"
    assert wh.client.timeout == (3.05, 30)
    headers: dict[str, str] = {}
    wh.client.auth.apply(headers)
    assert headers == {"Authorization": f"Bearer {TOKEN}"}
