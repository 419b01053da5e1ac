"""ShopifyInventory and ShopifyPusher against `responses` fixtures shaped like shopify.md §4/§5
and the shopify.dev pages for inventorySetQuantities, inventoryActivate and productVariants."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from adapters.shopify_inventory import QuantitySet, ShopifyInventory, levels_query_cost
from connector.domain.model import ProviderAuthError, ProviderUnavailable
from connector.services.storefront_push import PlannedSet, ShopifyPusher
from tests.support import FakeClock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
SHOP = "mfc-test.myshopify.com"
TOKEN = "shpat_0123456789abcdef0123456789abcdef"
GRAPHQL = f"https://{SHOP}/admin/api/2026-04/graphql.json"
LOC_A = "gid://shopify/Location/124656943"
LOC_B = "gid://shopify/Location/124656944"
REF = "gid://micro-fulfillment-connector/StockPush/2026-11-22T15:00:00Z"


def fx(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def item(n: int) -> str:
    return f"gid://shopify/InventoryItem/{30322695 + n}"


def levels_answer(values: dict[str, list[int | None]]) -> dict:
    """inventory_levels.json with one node per item and ``l0``, ``l1``... per location."""
    body = fx("inventory_levels")
    body["data"]["nodes"] = [
        {"id": gid, **{f"l{i}": None if v is None else {"quantities": [{"name": "available", "quantity": v}]}
                       for i, v in enumerate(per_location)}}
        for gid, per_location in values.items()
    ]
    return body


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


def make(clock: FakeClock, **kwargs) -> ShopifyInventory:
    return ShopifyInventory(SHOP, TOKEN, sleep=clock.sleep, monotonic=clock.monotonic, **kwargs)


def calls(rsps) -> list[dict]:
    return [json.loads(c.request.body) for c in rsps.calls]


def mutations(rsps) -> list[dict]:
    return [body for body in calls(rsps) if "inventorySetQuantities(input:" in body["query"]]


# ---------------------------------------------------------------- set_available


def test_600_changes_go_out_as_three_calls_of_at_most_250_with_the_documented_shape(rsps, clock):
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_applied"))
    keys = [(item(n), LOC_A if n % 2 else LOC_B) for n in range(600)]
    desired = {key: n + 1 for n, key in enumerate(keys)}
    known = {key: n for n, key in enumerate(keys)}

    outcome = ShopifyPusher(make(clock)).push(desired, known, {}, dry_run=False, reference_uri=REF)

    sent = mutations(rsps)
    assert [len(b["variables"]["input"]["quantities"]) for b in sent] == [250, 250, 100]
    assert outcome.calls == {"inventorySetQuantities": 3}
    assert len({b["variables"]["idempotencyKey"] for b in sent}) == 3  # one uuid4 per batch
    for body in sent:
        assert "inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey)" in body["query"]
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                            body["variables"]["idempotencyKey"])
        payload = body["variables"]["input"]
        assert payload["name"] == "available"
        assert payload["reason"] == "correction"
        assert payload["referenceDocumentUri"] == REF
        assert all(set(q) == {"inventoryItemId", "locationId", "quantity", "changeFromQuantity"}
                   for q in payload["quantities"])
    first = sent[0]["variables"]["input"]["quantities"][0]
    assert first == {"inventoryItemId": item(0), "locationId": LOC_B, "quantity": 1, "changeFromQuantity": 0}
    assert outcome.at_store == desired and outcome.sent == 600 and not outcome.failures
    assert rsps.calls[0].request.headers["X-Shopify-Access-Token"] == TOKEN


def test_only_changed_values_are_sent(rsps, clock):
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_applied"))
    a, b, c = (item(1), LOC_A), (item(2), LOC_A), (item(3), LOC_B)

    outcome = ShopifyPusher(make(clock)).push({a: 5, b: 7, c: 9}, {a: 5, b: 6, c: 9}, {}, dry_run=False,
                                              reference_uri=REF)

    (body,) = mutations(rsps)
    assert body["variables"]["input"]["quantities"] == [
        {"inventoryItemId": item(2), "locationId": LOC_A, "quantity": 7, "changeFromQuantity": 6}
    ]
    assert outcome.unchanged == 2 and outcome.at_store == {b: 7} and outcome.read_keys == []


def test_set_available_refuses_more_than_250_quantities(clock):
    quantities = [QuantitySet(item(n), LOC_A, 1, 0) for n in range(251)]
    with pytest.raises(ValueError, match="at most 250"):
        make(clock).set_available(quantities, reason="correction", reference_uri=REF, idempotency_key="k")


def test_user_error_paths_map_back_to_the_quantity_index(rsps, clock):
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_stale"))
    quantities = [QuantitySet(item(n), LOC_A, 5, 3) for n in range(3)]

    result = make(clock).set_available(quantities, reason="correction", reference_uri=REF, idempotency_key="k1")

    assert not result.applied
    assert list(result.item_errors) == [1]
    (error,) = result.item_errors[1]
    assert error.code == "CHANGE_FROM_QUANTITY_STALE"
    assert error.field == ("input", "quantities", "1", "changeFromQuantity")
    assert result.call_errors == ()


# ---------------------------------------------------------------- throttling, retries, idempotency


def test_throttled_200_waits_the_computed_time_and_resends_with_the_same_key(rsps, clock):
    rsps.post(GRAPHQL, json=fx("throttled_inventory_set_quantities"))
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_applied"))
    key = (item(1), LOC_A)

    outcome = ShopifyPusher(make(clock)).push({key: 8}, {key: 3}, {}, dry_run=False, reference_uri=REF)

    first, second = mutations(rsps)
    assert first == second  # identical body: same variables, same idempotency key
    # (requestedQueryCost 12 - currentlyAvailable 4.5) / restoreRate 50
    assert clock.sleeps == [pytest.approx(0.15)]
    assert outcome.throttled_waits == 1 and outcome.paced_waits == 0
    assert outcome.at_store == {key: 8}


def test_requests_are_paced_from_the_last_throttle_status_so_none_is_throttled(rsps, clock):
    low = levels_answer({item(n): [n] for n in range(100)})
    low["extensions"]["cost"] = {"requestedQueryCost": 300, "actualQueryCost": 300,
                                 "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 100,
                                                    "restoreRate": 50.0}}
    rsps.post(GRAPHQL, json=low)
    rsps.post(GRAPHQL, json=levels_answer({item(n): [n] for n in range(100, 150)}))
    client = make(clock, read_cost_budget=300)

    current = client.read_available([item(n) for n in range(150)], [LOC_A])

    assert len(current) == 150 and current[(item(149), LOC_A)] == 149
    # the second query (50 items x 3 = 150 points) needs 50 more than the 100 left: 1 s at 50/s
    assert clock.sleeps == [pytest.approx(1.0)]
    assert client.stats.paced_waits == 1 and client.stats.throttled == 0


def test_429_with_retry_after_is_retried_with_the_same_idempotency_key(rsps, clock):
    rsps.post(GRAPHQL, status=429, headers={"Retry-After": "2"}, json={"errors": "Exceeded 2 calls per second"})
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_applied"))

    result = make(clock).set_available([QuantitySet(item(1), LOC_A, 4, 2)], reason="correction",
                                       reference_uri=REF, idempotency_key="key-1")

    assert result.applied
    assert [b["variables"]["idempotencyKey"] for b in calls(rsps)] == ["key-1", "key-1"]
    assert clock.sleeps == [2.0]


def test_concurrent_request_waits_and_retries_the_same_key(rsps, clock):
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_concurrent"))
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_applied"))

    result = make(clock, concurrent_retry_wait=0.5).set_available(
        [QuantitySet(item(1), LOC_A, 4, 2)], reason="correction", reference_uri=REF, idempotency_key="key-1")

    assert result.applied
    assert [b["variables"]["idempotencyKey"] for b in calls(rsps)] == ["key-1", "key-1"]
    assert clock.sleeps == [0.5]


def test_previous_attempt_failed_is_resent_with_a_new_key(rsps, clock):
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_previous_attempt_failed"))
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_applied"))
    key = (item(1), LOC_A)

    outcome = ShopifyPusher(make(clock)).push({key: 8}, {key: 3}, {}, dry_run=False, reference_uri=REF)

    first, second = mutations(rsps)
    assert first["variables"]["input"] == second["variables"]["input"]
    assert first["variables"]["idempotencyKey"] != second["variables"]["idempotencyKey"]
    assert outcome.at_store == {key: 8}


def test_throttling_that_never_ends_is_unavailable_not_a_hang(rsps, clock):
    rsps.post(GRAPHQL, json=fx("throttled_inventory_set_quantities"))
    client = make(clock, max_throttle_retries=2)
    with pytest.raises(ProviderUnavailable, match="THROTTLED"):
        client.set_available([QuantitySet(item(1), LOC_A, 4, 2)], reason="correction", reference_uri=REF,
                             idempotency_key="k")
    assert len(calls(rsps)) == 3


# ---------------------------------------------------------------- stale compare, not stocked


def test_stale_compare_rereads_recomputes_and_resends(rsps, clock):
    a, b, c = (item(1), LOC_A), (item(2), LOC_A), (item(3), LOC_A)
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_stale"))  # index 1 (= b) is stale
    rsps.post(GRAPHQL, json=levels_answer({item(2): [12]}))  # the store sold 3 of b since we knew 15
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_applied"))

    # our inbox has processed one of those 3 units (reserved_since_known 1): 2 are unexplained
    outcome = ShopifyPusher(make(clock)).push({a: 10, b: 20, c: 5}, {a: 7, b: 15, c: 4}, {b: 1},
                                              dry_run=False, reference_uri=REF)

    first, read, second = calls(rsps)
    assert "nodes(ids: $ids)" in read["query"] and read["variables"] == {"ids": [item(2)], "l0": LOC_A}
    assert sorted(second["variables"]["input"]["quantities"], key=lambda q: q["inventoryItemId"]) == [
        {"inventoryItemId": item(1), "locationId": LOC_A, "quantity": 10, "changeFromQuantity": 7},
        {"inventoryItemId": item(2), "locationId": LOC_A, "quantity": 18, "changeFromQuantity": 12},
        {"inventoryItemId": item(3), "locationId": LOC_A, "quantity": 5, "changeFromQuantity": 4},
    ]
    assert first["variables"]["idempotencyKey"] != second["variables"]["idempotencyKey"]
    assert outcome.at_store == {a: 10, b: 18, c: 5}
    assert outcome.stale_rereads == 1 and outcome.planned[b].quantity == 20
    assert outcome.calls == {"inventorySetQuantities": 2, "inventoryLevels": 1}


def test_stale_every_time_gives_up_after_the_bounded_attempts(rsps, clock):
    stale_at_0 = copy.deepcopy(fx("inventory_set_quantities_stale"))
    stale_at_0["data"]["inventorySetQuantities"]["userErrors"][0]["field"][2] = "0"
    key = (item(2), LOC_A)
    for current in (12, 11, 10):  # an order lands before every resend
        rsps.post(GRAPHQL, json=stale_at_0)
        rsps.post(GRAPHQL, json=levels_answer({item(2): [current]}))

    outcome = ShopifyPusher(make(clock), max_attempts=3).push({key: 20}, {key: 15}, {}, dry_run=False,
                                                               reference_uri=REF)

    assert len(mutations(rsps)) == 3
    assert key in outcome.failures and key not in outcome.at_store
    assert outcome.stale_rereads == 3


def test_unknown_key_not_stocked_is_activated_then_set_from_zero(rsps, clock):
    key = (item(5), LOC_B)
    rsps.post(GRAPHQL, json=levels_answer({item(5): [None]}))
    rsps.post(GRAPHQL, json=fx("inventory_activate"))
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_applied"))

    outcome = ShopifyPusher(make(clock)).push({key: 6}, {}, {}, dry_run=False, reference_uri=REF)

    read, activate, write = calls(rsps)
    assert "inventoryActivate(inventoryItemId: $inventoryItemId, locationId: $locationId) " \
           "@idempotent(key: $idempotencyKey)" in activate["query"]
    assert activate["variables"]["inventoryItemId"] == item(5) and activate["variables"]["locationId"] == LOC_B
    assert activate["variables"]["idempotencyKey"]
    assert write["variables"]["input"]["quantities"] == [
        {"inventoryItemId": item(5), "locationId": LOC_B, "quantity": 6, "changeFromQuantity": 0}
    ]
    assert outcome.activations == 1 and outcome.read_keys == [key] and outcome.at_store == {key: 6}


def test_item_not_stocked_during_a_set_is_activated_and_resent(rsps, clock):
    key = (item(7), LOC_A)
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_not_stocked"))
    reactivated = fx("inventory_activate")  # 2026-04 keeps the deactivated level's quantity
    reactivated["data"]["inventoryActivate"]["inventoryLevel"]["quantities"][0]["quantity"] = 2
    rsps.post(GRAPHQL, json=reactivated)
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_applied"))

    outcome = ShopifyPusher(make(clock)).push({key: 9}, {key: 4}, {}, dry_run=False, reference_uri=REF)

    first, _activate, second = calls(rsps)
    assert first["variables"]["input"]["quantities"][0]["changeFromQuantity"] == 4
    assert second["variables"]["input"]["quantities"][0] == {
        "inventoryItemId": item(7), "locationId": LOC_A, "quantity": 9, "changeFromQuantity": 2}
    assert outcome.activations == 1 and outcome.at_store == {key: 9}


def test_dry_run_reads_only_what_it_must_and_sends_nothing(rsps, clock):
    known_key, new_key, absent_key = (item(1), LOC_A), (item(2), LOC_A), (item(3), LOC_A)
    rsps.post(GRAPHQL, json=levels_answer({item(2): [None], item(3): [4]}))

    outcome = ShopifyPusher(make(clock)).push({known_key: 5, new_key: 3, absent_key: 4}, {known_key: 2}, {},
                                              dry_run=True, reference_uri=REF)

    assert len(calls(rsps)) == 1 and not mutations(rsps)
    assert outcome.read_keys == [new_key, absent_key]
    assert outcome.planned == {known_key: PlannedSet(5, 2), new_key: PlannedSet(3, None, activate=True)}
    assert outcome.at_store == {absent_key: 4} and outcome.sent == 0 and outcome.activations == 0


# ---------------------------------------------------------------- reads


def test_read_available_batches_within_the_cost_budget(rsps, clock):
    items = [item(n) for n in range(120)]
    rsps.post(GRAPHQL, json=levels_answer({gid: [1, None] for gid in items[:100]}))
    answer = levels_answer({gid: [2, 3] for gid in items[100:]})
    answer["data"]["nodes"][-1] = None  # Shopify does not know this one
    rsps.post(GRAPHQL, json=answer)

    current = make(clock, read_cost_budget=500).read_available(items, [LOC_A, LOC_B])

    first, second = calls(rsps)
    assert levels_query_cost(len(first["variables"]["ids"]), 2) <= 500
    assert [len(first["variables"]["ids"]), len(second["variables"]["ids"])] == [100, 20]
    assert first["variables"]["l0"] == LOC_A and first["variables"]["l1"] == LOC_B
    assert current[(items[0], LOC_A)] == 1 and current[(items[0], LOC_B)] is None
    assert current[(items[100], LOC_B)] == 3
    assert (items[119], LOC_A) not in current and len(current) == 2 * 119


def test_inventory_items_by_sku_pages_quotes_and_keeps_exact_unambiguous_matches(rsps, clock):
    rsps.post(GRAPHQL, json=fx("product_variants_by_sku_page1"))
    rsps.post(GRAPHQL, json=fx("product_variants_by_sku_page2"))

    found = make(clock).inventory_items(["IPOD2008GREEN", "IPOD2008RED", "SHARED-SKU", 'ODD "SKU": (1)'])

    assert found == {"IPOD2008GREEN": "gid://shopify/InventoryItem/39072856",
                     "IPOD2008RED": "gid://shopify/InventoryItem/49148385"}
    first, second = calls(rsps)
    assert first["variables"]["query"] == (
        'sku:"IPOD2008GREEN" OR sku:"IPOD2008RED" OR sku:"SHARED-SKU" OR sku:"ODD \\"SKU\\": (1)"')
    assert first["variables"]["first"] == 4 and first["variables"]["after"] is None
    assert second["variables"]["after"] == fx("product_variants_by_sku_page1")["data"]["productVariants"][
        "pageInfo"]["endCursor"]


# ---------------------------------------------------------------- auth


def test_401_is_a_fatal_auth_error_naming_the_shop_without_the_token(rsps, clock, caplog):
    rsps.post(GRAPHQL, status=401, json=fx("admin_api_unauthorized"))
    key = (item(1), LOC_A)
    with pytest.raises(ProviderAuthError) as raised:
        ShopifyPusher(make(clock)).push({key: 2}, {key: 1}, {}, dry_run=False, reference_uri=REF)
    assert SHOP in str(raised.value) and "401" in str(raised.value)
    assert TOKEN not in str(raised.value) and TOKEN not in caplog.text
    assert len(calls(rsps)) == 1  # a static token is not refreshed or retried


def test_access_denied_in_a_200_is_a_fatal_auth_error(rsps, clock):
    rsps.post(GRAPHQL, json=fx("graphql_access_denied"))
    with pytest.raises(ProviderAuthError, match=f"{SHOP} denied inventorySetQuantities.*write_inventory"):
        make(clock).set_available([QuantitySet(item(1), LOC_A, 4, 2)], reason="correction", reference_uri=REF,
                                  idempotency_key="k")


def test_api_version_is_configurable(rsps, clock):
    url = f"https://{SHOP}/admin/api/2026-07/graphql.json"
    rsps.post(url, json=fx("inventory_set_quantities_applied"))
    result = make(clock, api_version="2026-07").set_available(
        [QuantitySet(item(1), LOC_A, 4, 2)], reason="correction", reference_uri=REF, idempotency_key="k")
    assert result.applied and rsps.calls[0].request.url == url



def test_a_reread_that_happens_to_equal_our_target_is_still_an_order_to_keep(rsps, clock):
    stale_at_0 = copy.deepcopy(fx("inventory_set_quantities_stale"))
    stale_at_0["data"]["inventorySetQuantities"]["userErrors"][0]["field"][2] = "0"
    key = (item(4), LOC_A)
    rsps.post(GRAPHQL, json=stale_at_0)
    rsps.post(GRAPHQL, json=levels_answer({item(4): [8]}))  # an unprocessed order of 2, not our write
    rsps.post(GRAPHQL, json=fx("inventory_set_quantities_applied"))

    outcome = ShopifyPusher(make(clock)).push({key: 8}, {key: 10}, {}, dry_run=False, reference_uri=REF)

    assert mutations(rsps)[1]["variables"]["input"]["quantities"] == [
        {"inventoryItemId": item(4), "locationId": LOC_A, "quantity": 6, "changeFromQuantity": 8}]
    assert outcome.at_store == {key: 6}
