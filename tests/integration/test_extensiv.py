"""ExtensivWarehouse against `responses` fixtures shaped like 3pl.md §4."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from tests.support import FakeClock

from adapters.extensiv import ExtensivWarehouse
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "extensiv"
BASE = "https://secure-wms.com"
TOKEN = f"{BASE}/AuthServer/api/Token"
STOCK = f"{BASE}/inventory"
ORDERS = f"{BASE}/orders"
TPL_GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def fx(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())



@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=500.0)


def make(clock: FakeClock, **kwargs) -> ExtensivWarehouse:
    kwargs.setdefault("page_size", 2)
    kwargs.setdefault("carrier", "UPS")
    return ExtensivWarehouse(
        "client-id-abc",
        "client-secret-def",
        tpl=TPL_GUID,
        user_login_id="1234",
        customer_id=12,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        **kwargs,
    )


def query(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def calls_to(rsps, url: str) -> list:
    return [c for c in rsps.calls if c.request.url.split("?")[0] == url]


def outbound(reference: str = "shop1:1002:ext-reno", location_id: str | None = "7") -> OutboundOrder:
    return OutboundOrder(
        reference=reference,
        order_number="#1002",
        ship_to_name="Ada Lovelace",
        ship_to=Address("US", "NV", "89501"),
        address_lines=("1 Main St", "Suite 4"),
        city="Reno",
        email="ada@example.com",
        phone="+1 775 555 0100",
        lines=(ShipmentLine("TEE-BLK-M", 2), ShipmentLine("MUG-WHT", 1)),
        location_id=location_id,
        shipping_method="Ground",
    )


# ---------------------------------------------------------------- auth + inventory


def rows(name: str) -> list[dict]:
    body = fx(name)
    return body["_embedded"]["item"] if "_embedded" in body else body["ResourceList"]


def one_page(*receive_items: dict) -> dict:
    return {"totalResults": len(receive_items), "_embedded": {"item": list(receive_items)}}


def raw(receive_items: int, on_hand: float, available: float, on_hold: float = 0.0, held: float = 0.0) -> dict:
    return {"receiveItems": receive_items, "onHandQty": on_hand, "availableQty": available,
            "onHoldQty": on_hold, "heldOrQuarantinedQty": held}


def test_inventory_three_pages_two_facilities_exact_mapping(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, json=fx("inventory_page1"))
    rsps.get(STOCK, json=fx("inventory_page2"))
    rsps.get(STOCK, json=fx("inventory_page3"))

    records = make(clock).list_inventory()

    assert records == [
        # two receipts: 40 on hand (5 allocated) + 6 on hold, which is on hand but not sellable
        InventoryRecord("7", "TEE-BLK-M", 46, 5, 35, raw(2, 46.0, 41.0, on_hold=6.0, held=6.0)),
        InventoryRecord("7", "MUG-WHT", 12, 0, 12, raw(1, 12.0, 12.0)),
        InventoryRecord("9", "TEE-BLK-M", 8, 2, 6, raw(1, 8.0, 6.0)),  # the DAMAGED receive item is not sellable
        InventoryRecord("9", "CANDLE-01", 7, 1, 6, raw(1, 7.5, 6.5)),  # 7.5 / 6.5 rounded down, 1 allocated
    ]

    # token request exactly as documented
    (token_call,) = calls_to(rsps, TOKEN)
    expected_basic = base64.b64encode(b"client-id-abc:client-secret-def").decode()
    assert token_call.request.headers["Authorization"] == f"Basic {expected_basic}"
    assert token_call.request.headers["Content-Type"] == "application/json"
    assert json.loads(token_call.request.body) == {
        "grant_type": "client_credentials",
        "tpl": "{" + TPL_GUID + "}",
        "user_login_id": "1234",
    }
    stock_calls = calls_to(rsps, STOCK)
    assert [query(c)["pgnum"] for c in stock_calls] == [["1"], ["2"], ["3"]]
    for call in stock_calls:
        assert query(call) | {"pgnum": None} == {
            "pgsiz": ["2"], "pgnum": None, "rql": ["customerIdentifier.id==12"], "sort": ["receivedDate"],
        }
        assert call.request.headers["Authorization"] == "Bearer ext-access-token-one"


@pytest.mark.parametrize("facility_id, rql, expected", [
    (None, "customerIdentifier.id==12", [
        InventoryRecord("7", "TEE-BLK-M", 10, 0, 10, raw(1, 10.0, 10.0)),
        InventoryRecord("9", "TEE-BLK-M", 4, 1, 3, raw(1, 4.0, 3.0)),
        InventoryRecord("9", "CANDLE-01", 2, 0, 2, raw(1, 2.0, 2.0)),
    ]),
    (7, "customerIdentifier.id==12;facilityIdentifier.id==7", [
        InventoryRecord("7", "TEE-BLK-M", 10, 0, 10, raw(1, 10.0, 10.0)),
    ]),
    (9, "customerIdentifier.id==12;facilityIdentifier.id==9", [
        InventoryRecord("9", "TEE-BLK-M", 4, 1, 3, raw(1, 4.0, 3.0)),
        InventoryRecord("9", "CANDLE-01", 2, 0, 2, raw(1, 2.0, 2.0)),
    ]),
])
def test_a_warehouse_wide_login_counts_only_its_customer_and_facility(rsps, clock, facility_id, rql, expected):
    """The server answers with two customers' rows in two facilities (it ignored the filter,
    as a 3PL-level login might see): the node gets its own customer's (and facility's) only;
    customer 31's 500 TEE-BLK-M at facility 7 are never added to ours."""
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, json=fx("inventory_two_customers"))
    records = make(clock, facility_id=facility_id, page_size=50).list_inventory()
    assert records == expected
    (call,) = calls_to(rsps, STOCK)
    assert query(call)["rql"] == [rql]
    assert "customerid" not in query(call) and "facilityid" not in query(call)


def test_another_customers_row_is_dropped_even_across_pages(rsps, clock):
    """Pagination counts every row the server sends (totalResults includes the foreign
    ones); only the counting skips them."""
    two = rows("inventory_two_customers")
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, json={"totalResults": 4, "_embedded": {"item": two[0:2]}})
    rsps.get(STOCK, json={"totalResults": 4, "_embedded": {"item": two[2:4]}})
    records = make(clock).list_inventory()
    assert [(r.location_id, r.sku, r.on_hand) for r in records] == [("7", "TEE-BLK-M", 10), ("9", "TEE-BLK-M", 4)]
    assert len(calls_to(rsps, STOCK)) == 2


def test_all_qualifiers_can_be_summed(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    tee_at_9 = [r for r in rows("inventory_page2") + rows("inventory_page3")
                if r["facilityIdentifier"]["id"] == 9 and r["itemIdentifier"]["sku"] == "TEE-BLK-M"]
    rsps.get(STOCK, json=one_page(*tee_at_9))
    (record,) = make(clock, qualifiers=None).list_inventory()
    assert (record.location_id, record.sku, record.on_hand, record.committed, record.available) == ("9", "TEE-BLK-M", 11, 2, 9)
    assert record.raw["receiveItems"] == 2


@pytest.mark.parametrize("change, available", [
    ({}, 6),
    ({"onHold": True, "onHoldQty": 6.5}, 0),  # held receive item: on hand, not allocatable
    ({"quarantined": True}, 0),  # in a quarantine location: implicitly held
    ({"onHoldQty": 2.0}, 4),  # a held part of an otherwise free receive item
    ({"onHoldQty": None}, 6),  # no hold quantity reported
])
def test_held_and_quarantined_stock_is_on_hand_but_not_available(rsps, clock, change, available):
    candle = rows("inventory_page3")[1] | change
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, json=one_page(candle))
    (record,) = make(clock).list_inventory()
    assert (record.on_hand, record.committed, record.available) == (7, 1, available)


def test_a_receive_item_repeated_on_the_next_page_is_counted_once(rsps, clock):
    first, second = rows("inventory_page1")
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, json={"totalResults": 4, "_embedded": {"item": [first, second]}})
    rsps.get(STOCK, json={"totalResults": 4, "_embedded": {"item": [second, rows("inventory_page3")[1]]}})
    records = make(clock).list_inventory()
    assert [(r.sku, r.on_hand) for r in records] == [("TEE-BLK-M", 40), ("MUG-WHT", 12), ("CANDLE-01", 7)]


def test_expired_token_is_refreshed_then_success(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.post(TOKEN, json=fx("token_second"))
    rsps.get(STOCK, status=401)
    rsps.get(STOCK, json=one_page(rows("inventory_page3")[1]))
    records = make(clock).list_inventory()
    assert [r.sku for r in records] == ["CANDLE-01"]
    assert [c.request.headers["Authorization"] for c in calls_to(rsps, STOCK)] == [
        "Bearer ext-access-token-one",
        "Bearer ext-access-token-two",
    ]


def test_token_is_renewed_at_least_every_30_minutes(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))  # says 3599 s; §4 says refresh every 30 min anyway
    rsps.post(TOKEN, json=fx("token_second"))
    rsps.get(STOCK, json=one_page(rows("inventory_page3")[1]))
    warehouse = make(clock)
    warehouse.list_inventory()
    clock.t += 29 * 60  # 30 min minus the refresh margin has passed
    warehouse.list_inventory()
    assert [c.request.headers["Authorization"] for c in calls_to(rsps, STOCK)] == [
        "Bearer ext-access-token-one",
        "Bearer ext-access-token-two",
    ]


def test_refused_credentials_are_an_auth_error(rsps, clock):
    rsps.post(TOKEN, status=400, json={"error": "invalid_client"})
    with pytest.raises(ProviderAuthError):
        make(clock).list_inventory()
    assert not calls_to(rsps, STOCK)


def test_429_and_500_then_success_through_the_shared_client(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, status=429, headers={"Retry-After": "4"})
    rsps.get(STOCK, status=500)
    rsps.get(STOCK, json=one_page(rows("inventory_page3")[1]))
    records = make(clock).list_inventory()
    assert [r.sku for r in records] == ["CANDLE-01"]
    assert len(calls_to(rsps, STOCK)) == 3
    assert clock.sleeps[0] == 4.0 and len(clock.sleeps) == 2


def test_malformed_json_is_a_response_error(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, body='{"totalResults": 3, "_embedded": {"item": [}', content_type="application/hal+json")
    with pytest.raises(ProviderResponseError, match="malformed JSON"):
        make(clock).list_inventory()


@pytest.mark.parametrize("change, message", [
    ({"itemIdentifier": {"id": 2103}}, "itemIdentifier.sku"),
    ({"customerIdentifier": None}, "customerIdentifier.id"),  # cannot tell whose stock it is
    ({"facilityIdentifier": {"name": "Columbus"}}, "facilityIdentifier.id"),
    ({"onHandQty": "n/a"}, "non-numeric onHandQty"),
    ({"availableQty": None}, "non-numeric availableQty"),
    ({"onHoldQty": "x"}, "non-numeric onHoldQty"),
])
def test_missing_fields_are_response_errors(rsps, clock, change, message):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, json=one_page(rows("inventory_page3")[1] | change))
    with pytest.raises(ProviderResponseError, match=message):
        make(clock).list_inventory()


def test_a_body_without_the_list_is_a_response_error(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, json={"unexpected": True})
    with pytest.raises(ProviderResponseError, match="without a 'resourceList' list"):
        make(clock).list_inventory()


def test_paginator_returning_the_same_page_forever_is_stopped(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, json=fx("inventory_page1") | {"totalResults": 1000})  # ignores pgnum
    with pytest.raises(ProviderResponseError, match="not advancing"):
        make(clock).list_inventory()
    assert len(calls_to(rsps, STOCK)) == 2


def test_empty_page_before_the_total_is_reached_is_an_error(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, json=fx("inventory_page1"))
    rsps.get(STOCK, json={"totalResults": 5, "_embedded": {"item": []}})
    with pytest.raises(ProviderResponseError, match="empty but totalResults=5"):
        make(clock).list_inventory()


def test_without_a_total_short_page_ends_the_listing(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    page1 = fx("inventory_page1")
    del page1["totalResults"]
    rsps.get(STOCK, json=page1)
    rsps.get(STOCK, json={"_embedded": {"item": rows("inventory_page3")[1:]}})
    assert [r.sku for r in make(clock).list_inventory()] == ["TEE-BLK-M", "MUG-WHT", "CANDLE-01"]
    assert len(calls_to(rsps, STOCK)) == 2


# ---------------------------------------------------------------- orders


def test_find_order_by_reference_number(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(ORDERS, json=fx("orders_found"))
    rsps.get(ORDERS, json=fx("orders_empty"))
    warehouse = make(clock)
    assert warehouse.find_order("shop1:1001:ext-reno") == ProviderOrderRef("5501", "shop1:1001:ext-reno", created=False)
    assert warehouse.find_order("shop1:9999:ext-reno") is None
    first = calls_to(rsps, ORDERS)[0]
    assert query(first)["rql"] == ["readOnly.customerIdentifier.id==12;referenceNum==shop1:1001:ext-reno"]


def test_reference_with_rql_metacharacters_is_refused(rsps, clock):
    with pytest.raises(ProviderRejected, match="RQL"):
        make(clock).find_order("shop1;referenceNum==x")
    assert not rsps.calls


def test_create_order_finds_existing_and_sends_no_post(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(ORDERS, json=fx("orders_found"))
    ref = make(clock).create_order(outbound("shop1:1001:ext-reno"))
    assert ref == ProviderOrderRef("5501", "shop1:1001:ext-reno", created=False)
    assert [c.request.method for c in calls_to(rsps, ORDERS)] == ["GET"]


def test_create_order_posts_the_documented_body(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(ORDERS, json=fx("orders_empty"))
    rsps.post(ORDERS, status=201, json=fx("order_created"), content_type="application/hal+json; charset=utf-8")
    ref = make(clock, billing_code="Prepaid", account="A1").create_order(outbound())
    assert ref == ProviderOrderRef("5502", "shop1:1002:ext-reno", created=True)
    get, post = calls_to(rsps, ORDERS)
    assert post.request.method == "POST"
    assert post.request.headers["Content-Type"].startswith("application/hal+json")
    assert json.loads(post.request.body) == {
        "customerIdentifier": {"id": 12},
        "facilityIdentifier": {"id": 7},
        "referenceNum": "shop1:1002:ext-reno",
        "poNum": "#1002",
        # on the order, not in routingInfo (ExtensivSharp's Order.billingCode / RoutingInfo)
        "billingCode": "Prepaid",
        "shipTo": {
            "name": "Ada Lovelace",
            "address1": "1 Main St",
            "address2": "Suite 4",
            "city": "Reno",
            "state": "NV",
            "zip": "89501",
            "country": "US",
            "phoneNumber": "+1 775 555 0100",
            "emailAddress": "ada@example.com",
        },
        "routingInfo": {"carrier": "UPS", "mode": "Ground", "account": "A1"},
        "orderItems": [
            {"itemIdentifier": {"sku": "TEE-BLK-M"}, "qty": 2},
            {"itemIdentifier": {"sku": "MUG-WHT"}, "qty": 1},
        ],
    }


def test_create_order_post_is_not_repeated_after_a_server_error(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(ORDERS, json=fx("orders_empty"))
    rsps.post(ORDERS, status=503)
    with pytest.raises(ProviderUnavailable):
        make(clock).create_order(outbound())
    assert [c.request.method for c in calls_to(rsps, ORDERS)] == ["GET", "POST"]


def test_create_order_rejected(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(ORDERS, json=fx("orders_empty"))
    rsps.post(ORDERS, status=400, json=fx("order_rejected"))
    with pytest.raises(ProviderRejected, match="referenceNum must be unique"):
        make(clock).create_order(outbound())


def test_create_order_needs_a_facility_and_routing(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(ORDERS, json=fx("orders_empty"))
    with pytest.raises(ProviderRejected, match="facility"):
        make(clock).create_order(outbound(location_id=None))
    with pytest.raises(ProviderRejected, match="carrier"):
        make(clock, carrier=None).create_order(outbound())
    assert all(c.request.method == "GET" for c in calls_to(rsps, ORDERS))


# ---------------------------------------------------------------- shipments and check


def test_list_shipments(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(ORDERS, json=fx("orders_modified"))
    shipments = make(clock, page_size=50).list_shipments(datetime(2026, 10, 2, 4, 0, tzinfo=timezone.utc))
    assert shipments == [
        Shipment(
            provider_order_id="5490",
            reference="shop1:0990:ext-reno",
            status="shipped",
            tracking_number="1Z999AA10123456784",
            carrier="UPS",
            shipped_at=datetime(2026, 10, 2, 9, 30, tzinfo=timezone.utc),
        ),
        Shipment(
            provider_order_id="5492",
            reference="shop1:0992:ext-reno",
            status="cancelled",
            exception=True,
            exception_detail="order cancelled in the warehouse",
        ),
    ]
    params = query(calls_to(rsps, ORDERS)[0])
    assert params["rql"] == ["readOnly.customerIdentifier.id==12;readOnly.lastModifiedDate=ge=2026-10-02T04:00:00"]
    assert params["detail"] == ["All"] and params["pgnum"] == ["1"]


def test_check(rsps, clock):
    rsps.post(TOKEN, json=fx("token"))
    rsps.get(STOCK, json=fx("inventory_page3"))
    make(clock).check()
    assert query(calls_to(rsps, STOCK)[0]) == {"rql": ["customerIdentifier.id==12"], "pgsiz": ["1"], "pgnum": ["1"]}
    rsps.replace(responses.POST, TOKEN, status=401)
    with pytest.raises(ProviderAuthError):
        make(clock).check()
