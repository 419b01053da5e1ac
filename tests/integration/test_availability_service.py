"""Availability.push end to end: the real ShopifyInventory / WooCommerceStock adapters over
HTTP (`responses`) against the in-memory storefronts of adapters.fakes, with the SQLite
store, the allocation and the inbox of a real container."""
from __future__ import annotations

import base64
import json
import random
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from adapters.fakes import FakeShopifyAdmin, FakeWooStore
from adapters.shopify_inventory import ShopifyInventory
from adapters.woocommerce_stock import API_PREFIX, WooCommerceStock, region_meta_key
from connector import sandbox
from connector.bootstrap import build
from tests.conftest import SHOPIFY_DOMAIN, SHOPIFY_SECRET, SHOPIFY_SHOP, WOO_SHOP, WOO_URL, initialised
from tests.integration.test_planning_services import process_orders
from tests.support import FakeClock

S, W = SHOPIFY_SHOP, WOO_SHOP
TOKEN = "shpat_x"
WOO_KEY, WOO_SECRET_KEY = "ck_test_key", "cs_test_secret"
GRAPHQL = f"https://{SHOPIFY_DOMAIN}/admin/api/2026-04/graphql.json"
# west-3pl and cold-room stay unmapped: their units are never pushed to Shopify
LOCATIONS = {"central": "gid://shopify/Location/101", "ne-micro": "gid://shopify/Location/102",
             "popup-soho": "gid://shopify/Location/103"}
# every SKU the sandbox stocks for the shop; MIRROR-XL sits only at the unmapped west-3pl
ITEMS = {sku: f"gid://shopify/InventoryItem/{5000 + n}" for n, sku in enumerate(
    sorted({sku for skus in sandbox.DEMO_STOCK[S].values() for sku in skus}))}
FIG_POPUP = (ITEMS["CANDLE-FIG"], LOCATIONS["popup-soho"])
# Woo product ids: POT-CLAY is a variation of product 700
WOO_IDS = {"TERRARIUM-S": 801, "SEEDS-MIX": 802, "POT-CLAY": 733}


# ---------------------------------------------------------------- wiring


@pytest.fixture
def config_dict(config_dict):
    shop = config_dict["shops"][S]
    for node in shop["nodes"]:
        if node["id"] in LOCATIONS:
            node["shopify_location"] = LOCATIONS[node["id"]]
    shop["storefront"] = {"access_token": TOKEN, "api_key": sandbox.DEMO_API_KEY}
    config_dict["shops"][W]["storefront"] = {"consumer_key": WOO_KEY, "consumer_secret": WOO_SECRET_KEY}
    return config_dict


@pytest.fixture
def ticks() -> FakeClock:
    """The clients' and the Shopify bucket's monotonic clock: a paced wait advances it."""
    return FakeClock()


@pytest.fixture
def container(settings, clock, ticks):
    def client_for(shop):
        config = shop.storefront
        if shop.platform == "shopify":
            return ShopifyInventory(shop.shop_domain, config.access_token, api_version=config.api_version,
                                    sleep=ticks.sleep, monotonic=ticks.monotonic)
        return WooCommerceStock(shop.store_url, config.consumer_key, config.consumer_secret,
                                sleep=ticks.sleep, monotonic=ticks.monotonic)

    return initialised(build(settings, clock=clock, storefront_client_factory=client_for), clock)


@pytest.fixture
def admin(rsps, ticks) -> FakeShopifyAdmin:
    fake = FakeShopifyAdmin(monotonic=ticks.monotonic)
    # a longer SKU the search also answers for CANDLE-FIG: the adapter must keep only exact matches
    fake.variants = {**ITEMS, "CANDLE-FIG-GIFTSET": "gid://shopify/InventoryItem/6001"}
    # every item stocked at central with an old figure, CANDLE-FIG at ne-micro too, none at popup-soho
    fake.levels = {(item, LOCATIONS["central"]): 7 for item in ITEMS.values()}
    fake.levels[(ITEMS["CANDLE-FIG"], LOCATIONS["ne-micro"])] = 2

    def answer(request):
        if request.headers.get("X-Shopify-Access-Token") != TOKEN:
            return 401, {}, '{"errors":"[API] Invalid API key or access token"}'
        return 200, {"Content-Type": "application/json"}, fake.handle(json.loads(request.body))

    rsps.add_callback(responses.POST, GRAPHQL, callback=answer)
    return fake


@pytest.fixture
def woo(rsps) -> FakeWooStore:
    fake = FakeWooStore()
    fake.add_product(WOO_IDS["TERRARIUM-S"], "TERRARIUM-S", 5)
    fake.add_product(WOO_IDS["SEEDS-MIX"], "SEEDS-MIX", 0)
    fake.add_product(WOO_IDS["POT-CLAY"], "POT-CLAY", 9, parent_id=700)

    def answer(request):
        if request.headers.get("Authorization") != "Basic " + base64.b64encode(
                f"{WOO_KEY}:{WOO_SECRET_KEY}".encode()).decode():
            return 401, {}, '{"code":"woocommerce_rest_cannot_view"}'
        parts = urlsplit(request.url)
        body = json.loads(request.body) if request.body else None
        status, headers, data = fake.handle(request.method, parts.path[len(API_PREFIX):], parse_qs(parts.query),
                                            body)
        return status, {"Content-Type": "application/json", **headers}, data

    for method in (responses.GET, responses.POST):
        rsps.add_callback(method, re.compile(re.escape(WOO_URL + API_PREFIX) + "/.*"), callback=answer)
    return fake


# ---------------------------------------------------------------- helpers


def set_calls(rsps) -> list[list[dict]]:
    """The quantities of every inventorySetQuantities call so far, in order."""
    bodies = [json.loads(call.request.body) for call in rsps.calls if call.request.url == GRAPHQL]
    return [b["variables"]["input"]["quantities"] for b in bodies if "inventorySetQuantities(input:" in b["query"]]


def sent_since(rsps, calls_before: int) -> list[tuple[tuple[str, str], int | None, int]]:
    """(key, changeFromQuantity, quantity) of every quantity sent after the first ``calls_before`` calls."""
    return [((q["inventoryItemId"], q["locationId"]), q["changeFromQuantity"], q["quantity"])
            for call in set_calls(rsps)[calls_before:] for q in call]


def our_figures(store) -> dict[tuple[str, str], int]:
    """(item, location) -> units the latest saved allocation lets regions sell from the node."""
    figures = {(item, location): 0 for item in ITEMS.values() for location in LOCATIONS.values()}
    for sku, node, _region, units in store.allocations(S):
        if node in LOCATIONS:
            figures[(ITEMS[sku], LOCATIONS[node])] += units
    return figures


def count(store, clock, node: str, sku: str, on_hand: int) -> None:
    """A stock count at a node (what a 3PL sync writes)."""
    store.set_stock(S, node, sku, on_hand=on_hand, committed=0, available=on_hand, source="count", now=clock())


def soho_order(clock, order_id: int, sku: str, quantity: int) -> dict:
    """A Shopify order for ``quantity`` x ``sku`` shipping to SoHo (routed to the pop-up)."""
    payload = sandbox.shopify_order(random.Random(order_id), order_id, order_id - 70_000, clock(), lines=1)
    payload["line_items"][0].update(sku=sku, quantity=quantity, current_quantity=quantity)
    payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
    return payload


def deliver(container, store, payload: dict, topic: str = "orders/create") -> None:
    """The webhook ingested and processed by the inbox."""
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload, topic=topic)
    container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    assert container.inbox.process(store).failed == 0


# ---------------------------------------------------------------- Shopify


def test_first_push_looks_items_up_activates_missing_levels_and_sets_the_allocation(container, store, admin):
    report = container.availability.push(store, S)

    assert report.skipped is None and report.failures == {} and report.not_in_store == []
    # 9 SKUs asked with first=9; the decoy makes 10 matches, so the adapter follows pageInfo once
    assert admin.requests["productVariants"] == 2
    assert store.storefront_items(S) == {sku: (gid, None) for sku, gid in ITEMS.items()}
    # not stocked: all 9 items at popup-soho, all but CANDLE-FIG at ne-micro
    assert admin.requests["inventoryActivate"] == 17
    figures = our_figures(store)
    assert figures[FIG_POPUP] == 30 and figures[(ITEMS["CANDLE-FIG"], LOCATIONS["central"])] == 400
    assert {key: admin.levels.get(key) for key in figures} == figures
    state = store.push_state(S)
    assert {(ITEMS[sku], LOCATIONS[node]): quantity for (sku, node), (quantity, _r, _h, _at) in state.items()} \
        == figures
    assert {held for _q, _r, held, _at in state.values()} == {0}


def test_a_sku_the_store_does_not_sell_is_reported_and_the_others_are_set(container, store, admin):
    del admin.variants["PRINT-A3"]
    del admin.levels[(ITEMS["PRINT-A3"], LOCATIONS["central"])]

    report = container.availability.push(store, S)

    assert report.not_in_store == ["PRINT-A3"] and report.failures == {}
    assert "PRINT-A3" not in store.storefront_items(S)
    assert not any(item == ITEMS["PRINT-A3"] for item, _location in admin.levels)
    figures = our_figures(store)
    assert {key: admin.levels.get(key) for key in figures if key[0] != ITEMS["PRINT-A3"]} == \
        {key: figure for key, figure in figures.items() if key[0] != ITEMS["PRINT-A3"]}


def test_a_second_push_with_nothing_changed_sends_nothing(container, store, admin):
    container.availability.push(store, S)
    served = dict(admin.requests)

    report = container.availability.push(store, S)

    assert admin.requests == served  # no lookup (storefront_items), no read, no mutation
    assert report.changes == [] and report.calls == {} and report.unchanged == len(ITEMS) * len(LOCATIONS)


def test_after_an_order_only_the_changed_values_are_sent_against_the_previous_ones(container, store, clock, admin,
                                                                                 rsps):
    container.availability.push(store, S)
    previous = dict(admin.levels)
    deliver(container, store, soho_order(clock, 71_001, "CANDLE-FIG", 3))
    assert store.reserved_totals(S) == {("popup-soho", "CANDLE-FIG"): 3}
    calls_before = len(set_calls(rsps))

    report = container.availability.push(store, S)

    figures = our_figures(store)
    changed = {key: figure for key, figure in figures.items() if figure != previous[key]}
    assert changed[FIG_POPUP] == 27
    assert sorted(sent_since(rsps, calls_before)) == sorted((key, previous[key], figure)
                                                           for key, figure in changed.items())
    assert report.calls == {"inventorySetQuantities": 1}
    assert {key: admin.levels[key] for key in figures} == figures


def sold_at_store_before_inbox(container, store, clock, admin, rsps, sold: int, counted: int) -> list:
    """First push, then the store sells ``sold`` CANDLE-FIG at the pop-up (its own decrement;
    our inbox has not seen the order) and a count sets the pop-up's on hand to ``counted``,
    so the next push has to send that key. Returns what that push sent."""
    container.availability.push(store, S)
    admin.levels[FIG_POPUP] -= sold
    count(store, clock, "popup-soho", "CANDLE-FIG", counted)
    calls_before = len(set_calls(rsps))
    container.availability.push(store, S)
    return sent_since(rsps, calls_before)


def test_the_stores_own_decrement_is_not_restored_while_the_inbox_is_behind(container, store, clock, admin, rsps):
    sent = sold_at_store_before_inbox(container, store, clock, admin, rsps, sold=2, counted=40)

    assert our_figures(store)[FIG_POPUP] == 40
    # the compare-and-set against 30 comes back stale; the re-read finds 28; 40 less the 2 sold goes out
    assert sent == [(FIG_POPUP, 30, 40), (FIG_POPUP, 28, 38)]
    assert admin.levels[FIG_POPUP] == 38
    assert store.push_state(S)[("CANDLE-FIG", "popup-soho")][:3] == (38, 0, 2)

    # a second push, the inbox still behind: the carried hold keeps the 2 units off
    count(store, clock, "popup-soho", "CANDLE-FIG", 45)
    calls_before = len(set_calls(rsps))
    container.availability.push(store, S)
    assert sent_since(rsps, calls_before) == [(FIG_POPUP, 38, 43)]
    assert admin.levels[FIG_POPUP] == 43
    assert store.push_state(S)[("CANDLE-FIG", "popup-soho")][:3] == (43, 0, 2)


def test_once_the_inbox_has_the_order_the_hold_is_released(container, store, clock, admin, rsps):
    sold_at_store_before_inbox(container, store, clock, admin, rsps, sold=2, counted=40)
    order = soho_order(clock, 71_002, "CANDLE-FIG", 2)

    deliver(container, store, order)
    assert store.reserved_totals(S) == {("popup-soho", "CANDLE-FIG"): 2}
    container.availability.push(store, S)

    assert admin.levels[FIG_POPUP] == our_figures(store)[FIG_POPUP] == 38
    assert store.push_state(S)[("CANDLE-FIG", "popup-soho")][2] == 0

    # shipped: the reservation goes and the count drops by the 2 units; the store keeps showing our figure
    clock.advance(hours=2)
    deliver(container, store, {**order, "fulfillment_status": "fulfilled", "updated_at": clock().isoformat()},
            topic="orders/updated")
    count(store, clock, "popup-soho", "CANDLE-FIG", 38)
    container.availability.push(store, S)
    assert admin.levels[FIG_POPUP] == our_figures(store)[FIG_POPUP] == 38


def test_a_dry_run_sends_and_saves_nothing_and_lists_the_diff(container, store, clock, admin):
    container.availability.push(store, S)
    state = store.push_state(S)
    served = dict(admin.requests)
    count(store, clock, "popup-soho", "CANDLE-FIG", 40)

    report = container.availability.push(store, S, dry_run=True)

    assert report.dry_run
    assert report.changes == [("CANDLE-FIG", "popup-soho", 30, 40)]
    assert admin.requests == served
    assert admin.levels[FIG_POPUP] == 30
    assert store.push_state(S) == state


# ---------------------------------------------------------------- WooCommerce


def test_woocommerce_gets_the_regions_total_and_meta_and_reports_an_item_the_store_refused(container, store, woo):
    # SEEDS-MIX deleted in wp-admin between the push's fresh read and its batch
    woo.refuse[WOO_IDS["SEEDS-MIX"]] = {"code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID.",
                                        "data": {"status": 400}}

    report = container.availability.push(store, W)

    by_region: dict[str, dict[str, int]] = {}
    for sku, _node, region, units in store.allocations(W):
        by_region.setdefault(sku, {}).setdefault(region, 0)
        by_region[sku][region] += units
    assert set(by_region) == set(WOO_IDS) and all(len(regions) == 2 for regions in by_region.values())
    assert report.failures == {"SEEDS-MIX@*": "woocommerce_rest_product_invalid_id: Invalid ID."}
    for sku in ("TERRARIUM-S", "POT-CLAY"):
        product = woo.products[WOO_IDS[sku]]
        assert product["stock_quantity"] == sum(by_region[sku].values()), sku
        assert product["meta"] == {region_meta_key(r): str(units) for r, units in by_region[sku].items()}, sku
    assert woo.products[WOO_IDS["SEEDS-MIX"]]["stock_quantity"] == 0
    # the lookup, the fresh read of the changed SKUs, one batch per route (POT-CLAY is a variation)
    assert woo.requests == {"GET products": 2, "POST products/batch": 1, "POST variations/batch": 1}
    state = store.push_state(W)
    assert {sku: quantity for (sku, _loc), (quantity, _r, _h, _at) in state.items()} == {
        sku: sum(by_region[sku].values()) for sku in ("TERRARIUM-S", "POT-CLAY")}


# ---------------------------------------------------------------- scheduling


def test_push_due_runs_the_debounced_push_for_the_ordering_shop_once(container, store, clock, admin, woo):
    process_orders(container, store, clock, 20)
    assert container.availability.push_due(store) == []  # the 5 s debounce has not passed

    clock.advance(seconds=6)
    reports = container.availability.push_due(store)

    assert [(r.shop_id, r.failures) for r in reports] == [(S, {})]
    assert admin.requests.get("inventorySetQuantities", 0) >= 1
    assert woo.requests == {}
    served = dict(admin.requests)
    assert container.availability.push_due(store) == []
    assert admin.requests == served
