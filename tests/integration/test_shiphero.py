"""ShipHeroWarehouse against `responses` fixtures shaped like 3pl.md §2 / ShipHero's docs."""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import responses

from tests.support import FakeClock

from adapters.shiphero import ShipHeroWarehouse
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shiphero"
BASE = "https://public-api.shiphero.com"
GRAPHQL = f"{BASE}/graphql"
REFRESH = f"{BASE}/auth/refresh"


def fx(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())



@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


def make(clock: FakeClock, **kwargs) -> ShipHeroWarehouse:
    kwargs.setdefault("customer_account_id", "QWNjb3VudDo3Nzc=")
    return ShipHeroWarehouse("refresh-token-xyz", sleep=clock.sleep, monotonic=clock.monotonic, **kwargs)


def graphql_calls(rsps) -> list[dict]:
    return [json.loads(c.request.body) for c in rsps.calls if c.request.url == GRAPHQL]


def order(reference: str = "shop1:1002:sh-primary", location_id: str | None = None) -> OutboundOrder:
    return OutboundOrder(
        reference=reference,
        order_number="#1002",
        ship_to_name="Grace Brewster Hopper",
        ship_to=Address("US", "NY", "10001"),
        address_lines=("350 5th Ave", "Floor 21"),
        city="New York",
        email="grace@example.com",
        phone="+1 212 555 0100",
        lines=(ShipmentLine("TEE-BLK-M", 2), ShipmentLine("MUG-WHT", 1)),
        location_id=location_id,
    )


# ---------------------------------------------------------------- inventory


def test_inventory_two_pages_two_warehouses_exact_mapping(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("warehouse_products_page1"))
    rsps.post(GRAPHQL, json=fx("warehouse_products_page2"))

    records = make(clock).list_inventory()

    page1 = fx("warehouse_products_page1")["data"]["warehouse_products"]["data"]["edges"]
    page2 = fx("warehouse_products_page2")["data"]["warehouse_products"]["data"]["edges"]
    assert records == [
        InventoryRecord("V2FyZWhvdXNlOjExNzk=", "TEE-BLK-M", 120, 20, 100, page1[0]["node"]),
        InventoryRecord("V2FyZWhvdXNlOjIyMDE=", "TEE-BLK-M", 15, 3, 12, page1[1]["node"]),
        InventoryRecord("V2FyZWhvdXNlOjExNzk=", "MUG-WHT", 0, 4, -1, page2[0]["node"]),
    ]
    assert records[2].raw["backorder"] == 4 and records[2].raw["sell_ahead"] == 3
    assert {r.location_id for r in records} == {"V2FyZWhvdXNlOjExNzk=", "V2FyZWhvdXNlOjIyMDE="}

    # token fetched once, per the docs, and sent as a bearer token
    assert json.loads(rsps.calls[0].request.body) == {"refresh_token": "refresh-token-xyz"}
    assert all(
        c.request.headers["Authorization"] == "Bearer eyJhbGciOi.first-access-token"
        for c in rsps.calls
        if c.request.url == GRAPHQL
    )
    first, second = graphql_calls(rsps)
    assert "warehouse_products(customer_account_id: $customer_account_id" in first["query"]
    assert "pageInfo { hasNextPage endCursor }" in first["query"]
    assert first["variables"] == {"customer_account_id": "QWNjb3VudDo3Nzc=", "first": 100}
    assert second["variables"]["after"] == "YXJyYXljb25uZWN0aW9uOjE="


def test_expired_token_is_refreshed_and_the_query_succeeds(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(REFRESH, json=fx("auth_refresh_second"))
    rsps.post(GRAPHQL, status=401, json={"code": 401, "message": "Token expired"})
    page = fx("warehouse_products_page2")
    rsps.post(GRAPHQL, json=page)

    records = make(clock).list_inventory()

    assert [r.sku for r in records] == ["MUG-WHT"]
    auth_headers = [c.request.headers.get("Authorization") for c in rsps.calls if c.request.url == GRAPHQL]
    assert auth_headers == ["Bearer eyJhbGciOi.first-access-token", "Bearer eyJhbGciOi.second-access-token"]
    assert sum(1 for c in rsps.calls if c.request.url == REFRESH) == 2


def test_token_is_refetched_when_its_lifetime_runs_out(rsps, clock):
    rsps.post(REFRESH, json={**fx("auth_refresh"), "expires_in": 600})
    rsps.post(REFRESH, json={**fx("auth_refresh_second"), "expires_in": 600})
    rsps.post(GRAPHQL, json=fx("warehouse_products_page2"))
    warehouse = make(clock)
    warehouse.list_inventory()
    clock.t += 601  # past expiry
    warehouse.list_inventory()
    auth_headers = [c.request.headers.get("Authorization") for c in rsps.calls if c.request.url == GRAPHQL]
    assert auth_headers == ["Bearer eyJhbGciOi.first-access-token", "Bearer eyJhbGciOi.second-access-token"]


def test_refused_refresh_token_is_an_auth_error(rsps, clock):
    rsps.post(REFRESH, status=403, json={"error": "invalid_grant"})
    with pytest.raises(ProviderAuthError):
        make(clock).list_inventory()
    assert not graphql_calls(rsps)


def test_429_and_500_then_success_through_the_shared_client(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, status=429, headers={"Retry-After": "3"})
    rsps.post(GRAPHQL, status=500)
    rsps.post(GRAPHQL, json=fx("warehouse_products_page2"))
    records = make(clock).list_inventory()
    assert [r.sku for r in records] == ["MUG-WHT"]
    assert len(graphql_calls(rsps)) == 3
    assert clock.sleeps[0] == 3.0 and len(clock.sleeps) == 2


def test_server_errors_exhaust_into_provider_unavailable(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, status=502)
    with pytest.raises(ProviderUnavailable):
        make(clock).list_inventory()
    assert len(graphql_calls(rsps)) == 5  # the client's max_attempts


def test_malformed_json_is_a_response_error(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, body='{"data": {"warehouse_products": }}', content_type="application/json")
    with pytest.raises(ProviderResponseError, match="malformed JSON"):
        make(clock).list_inventory()


def test_missing_fields_are_response_errors(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    broken = fx("warehouse_products_page2")
    broken["data"]["warehouse_products"]["data"]["edges"][0]["node"]["on_hand"] = "lots"
    rsps.post(GRAPHQL, json=broken)
    rsps.post(GRAPHQL, json={"data": {}})
    with pytest.raises(ProviderResponseError, match="non-integer on_hand"):
        make(clock).list_inventory()
    with pytest.raises(ProviderResponseError, match="without data.warehouse_products"):
        make(clock).list_inventory()


def test_paginator_returning_the_same_page_forever_is_stopped(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("warehouse_products_page1"))  # hasNextPage true, same endCursor, forever
    with pytest.raises(ProviderResponseError, match="not advancing|repeated"):
        make(clock).list_inventory()
    assert len(graphql_calls(rsps)) == 2


def test_has_next_page_without_cursor_is_an_error(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    page = fx("warehouse_products_page1")
    page["data"]["warehouse_products"]["data"]["pageInfo"]["endCursor"] = None
    rsps.post(GRAPHQL, json=page)
    with pytest.raises(ProviderResponseError, match="endCursor"):
        make(clock).list_inventory()


# ---------------------------------------------------------------- throttling (HTTP 200 + errors[])


def test_credit_throttling_with_200_waits_the_indicated_time_then_succeeds(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("throttled"))
    rsps.post(GRAPHQL, json=fx("warehouse_products_page2"))
    records = make(clock).list_inventory()
    assert [r.sku for r in records] == ["MUG-WHT"]
    assert clock.sleeps == [2.0]
    assert len(graphql_calls(rsps)) == 2


def test_throttling_forever_is_bounded(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    throttled = fx("throttled")
    throttled["errors"][0]["time_remaining"] = "500 seconds"
    rsps.post(GRAPHQL, json=throttled)
    with pytest.raises(ProviderUnavailable, match="throttled"):
        make(clock, max_throttle_retries=3, max_throttle_wait=30).list_inventory()
    assert clock.sleeps == [30, 30, 30]  # capped waits
    assert len(graphql_calls(rsps)) == 4


def test_other_graphql_errors_are_rejections(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("error_not_found"))
    with pytest.raises(ProviderRejected, match=r"Order not found \(code 5\).*5da7dc13f3079f0def208711"):
        make(clock).find_order("shop1:1001:sh-primary")
    assert clock.sleeps == []


# ---------------------------------------------------------------- orders


def test_find_order_by_partner_order_id(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("orders_found"))
    rsps.post(GRAPHQL, json=fx("orders_empty"))
    warehouse = make(clock)
    assert warehouse.find_order("shop1:1001:sh-primary") == ProviderOrderRef(
        "T3JkZXI6MjAwMDAx", "shop1:1001:sh-primary", created=False
    )
    assert warehouse.find_order("shop1:9999:sh-primary") is None
    first = graphql_calls(rsps)[0]
    assert "orders(partner_order_id: $partner_order_id" in first["query"]
    assert first["variables"] == {"partner_order_id": "shop1:1001:sh-primary", "customer_account_id": "QWNjb3VudDo3Nzc="}


def test_create_order_finds_existing_and_sends_no_mutation(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("orders_found"))
    ref = make(clock).create_order(order("shop1:1001:sh-primary"))
    assert ref == ProviderOrderRef("T3JkZXI6MjAwMDAx", "shop1:1001:sh-primary", created=False)
    calls = graphql_calls(rsps)
    assert len(calls) == 1 and "mutation" not in calls[0]["query"]


def test_create_order_sends_order_create_when_absent(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("orders_empty"))
    rsps.post(GRAPHQL, json=fx("order_create"))
    ref = make(clock).create_order(
        dataclasses.replace(order(location_id="V2FyZWhvdXNlOjExNzk="), shipping_method="UPS Ground")
    )
    assert ref == ProviderOrderRef("T3JkZXI6MjAwMDAy", "shop1:1002:sh-primary", created=True)
    lookup, mutation = graphql_calls(rsps)
    assert mutation["query"].lstrip().startswith("mutation OrderCreate($data: CreateOrderInput!)")
    data = mutation["variables"]["data"]
    assert data["partner_order_id"] == "shop1:1002:sh-primary"
    assert data["order_number"] == "#1002"
    assert data["customer_account_id"] == "QWNjb3VudDo3Nzc="
    # the node's configured method: ShipHero's shipping rules match on it
    assert data["shipping_lines"] == {"title": "UPS Ground", "method": "UPS Ground", "price": "0.00"}
    assert data["shipping_address"] == {
        "first_name": "Grace",
        "last_name": "Brewster Hopper",
        "address1": "350 5th Ave",
        "address2": "Floor 21",
        "city": "New York",
        "state": "NY",
        "state_code": "NY",
        "zip": "10001",
        "country": "US",
        "country_code": "US",
        "email": "grace@example.com",
        "phone": "+1 212 555 0100",
    }
    assert data["line_items"] == [
        {"sku": "TEE-BLK-M", "partner_line_item_id": "shop1:1002:sh-primary-1", "quantity": 2, "price": "0.00",
         "warehouse_id": "V2FyZWhvdXNlOjExNzk="},
        {"sku": "MUG-WHT", "partner_line_item_id": "shop1:1002:sh-primary-2", "quantity": 1, "price": "0.00",
         "warehouse_id": "V2FyZWhvdXNlOjExNzk="},
    ]


def test_mutation_is_not_repeated_after_an_ambiguous_failure(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("orders_empty"))
    rsps.post(GRAPHQL, status=502)
    with pytest.raises(ProviderUnavailable):
        make(clock).create_order(order())
    calls = graphql_calls(rsps)
    assert len(calls) == 2 and sum("mutation" in c["query"] for c in calls) == 1


def test_throttled_mutation_is_not_repeated(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("orders_empty"))
    throttled = fx("throttled")
    throttled["errors"][0]["operation"] = "order_create"
    rsps.post(GRAPHQL, json=throttled)
    with pytest.raises(ProviderUnavailable, match="not repeated"):
        make(clock).create_order(order())
    assert sum("mutation" in c["query"] for c in graphql_calls(rsps)) == 1
    assert clock.sleeps == []


def test_refused_mutation_is_a_rejection(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("orders_empty"))
    rsps.post(GRAPHQL, json=fx("order_create_error"))
    with pytest.raises(ProviderRejected, match="zip is required"):
        make(clock).create_order(order())


# ---------------------------------------------------------------- shipments and check


def test_list_shipments(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("shipments"))
    shipments = make(clock).list_shipments(datetime(2026, 10, 1, 2, 0, tzinfo=timezone.utc))
    assert shipments == [
        Shipment(
            provider_order_id="T3JkZXI6MjAwMDAx",
            reference="shop1:1001:sh-primary",
            status="shipped",
            tracking_number="1Z999AA10123456784",
            carrier="ups",
            shipped_at=datetime(2026, 10, 2, 15, 4, 5, tzinfo=timezone.utc),
        ),
        Shipment(
            provider_order_id="T3JkZXI6MjAwMDAz",
            reference=None,
            status="delivered",
            tracking_number="9400111899223197428490",
            carrier="usps",
            shipped_at=datetime(2026, 10, 1, 9, 0, tzinfo=timezone.utc),
        ),
    ]
    (call,) = graphql_calls(rsps)
    assert "shipments(date_from: $date_from)" in call["query"]
    assert call["variables"]["date_from"] == "2026-10-01T02:00:00"


def test_check(rsps, clock):
    rsps.post(REFRESH, json=fx("auth_refresh"))
    rsps.post(GRAPHQL, json=fx("warehouse_products_page2"))
    make(clock).check()
    rsps.replace(responses.POST, REFRESH, status=401)
    with pytest.raises(ProviderAuthError):
        make(clock).check()
