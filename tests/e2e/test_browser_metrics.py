"""The metrics page in a real browser (Debian's Chromium through Playwright): a figure and
its chart, then a shipment arrives as a signed Shopify fulfillments/create webhook posted
to the served app, the inbox is processed, and after a reload the figure and the chart
have changed; the period and place pickers; the page on a phone without sideways scrolling."""
from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
import requests

from connector import sandbox
from connector.bootstrap import utc_now
from connector.domain.shipments import ShipmentFact
from connector.services.shipments import record_shipment
from tests.conftest import SHOPIFY_SECRET, SHOPIFY_SHOP, fixture_json, shopify_headers
from tests.e2e.conftest import PHONE, shot, sign_in

ON_TIME_CHART = "On-time ship rate by day the order was placed"
FIRST, SECOND = 7_700_001, 7_700_002


@pytest.fixture(scope="module")
def two_orders(served):
    """Two single-line candle orders to New York placed now, routed by the inbox; the first
    shipped an hour later (on time), the second not yet. Returns the second's order line and node."""
    now = utc_now()
    store = served.open_store()
    try:
        for order_id in (FIRST, SECOND):
            payload = sandbox.shopify_order(random.Random(order_id), order_id, order_id % 10_000, now, lines=1)
            payload["line_items"][0].update(sku="CANDLE-FIG", quantity=1, current_quantity=1)
            payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
            hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload)
            assert served.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
        served.inbox.process(store)
        [first] = store.current_decisions(SHOPIFY_SHOP, str(FIRST))
        [second] = store.current_decisions(SHOPIFY_SHOP, str(SECOND))
        with store.write():
            record_shipment(store, SHOPIFY_SHOP, str(FIRST), first["node_id"],
                            ShipmentFact(source="manual", shipped_at=now + timedelta(hours=1), carrier="UPS"), now)
    finally:
        store.close()
    return second["line_id"], second["node_id"], now


def _metrics(page, server, query=""):
    sign_in(page, server)
    page.wait_for_url(f"{server}/settings/")
    page.goto(f"{server}/metrics{query}")


def figure(page, name: str) -> str:
    return page.locator(f"#figure-{name} .figure-value").inner_text()


def test_a_shipment_webhook_changes_the_figure_and_its_chart(page, server, served, two_orders):
    line_id, node_id, placed = two_orders
    _metrics(page, server, "?days=7")
    assert page.get_by_role("heading", level=1).inner_text() == "Shipping metrics"
    assert figure(page, "on-time-rate") == "100%"
    assert "daily cutoff is due out the same day" in page.locator("#figure-on-time-rate").inner_text()
    chart = page.get_by_role("img", name=ON_TIME_CHART)
    assert chart.is_visible()
    before = chart.locator("desc").text_content()
    shot(page, "metrics-laptop")

    # The second order ships two days late: Shopify tells us with a fulfillment.
    body = fixture_json("shopify", "fulfillments_create.json")
    body.update(id=9_900_001, order_id=SECOND, location_id=None, name=f"#{SECOND % 10_000}.1",
                created_at=(placed + timedelta(days=2)).isoformat(), updated_at=(placed + timedelta(days=2)).isoformat())
    body["line_items"][0].update(id=int(line_id), sku="CANDLE-FIG", quantity=1)
    raw = json.dumps(body).encode()
    response = requests.post(f"{server}/webhooks/shopify", data=raw,
                             headers=shopify_headers(raw, "fulfillments/create"), timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "pending"
    store = served.open_store()
    try:
        assert served.inbox.process(store).statuses == {"shipment_recorded": 1}
    finally:
        store.close()

    page.reload()
    assert figure(page, "on-time-rate") == "50%"
    assert figure(page, "shipped").startswith("2")
    chart = page.get_by_role("img", name=ON_TIME_CHART)
    assert chart.locator("desc").text_content() != before
    page.get_by_text(f"Show the values: {ON_TIME_CHART}").click()
    values = page.locator("figure", has=chart).locator("table").inner_text()
    assert "50" in values
    row = page.locator(".metrics-table tbody tr", has_text=served.shops.require(SHOPIFY_SHOP).network.nodes[node_id].name)
    assert "50%" in row.inner_text()


def test_the_pickers_narrow_to_a_place_and_a_bad_period_says_so_beside_it(page, server, served, two_orders):
    _, node_id, _ = two_orders
    name = served.shops.require(SHOPIFY_SHOP).network.nodes[node_id].name
    _metrics(page, server, "?days=12")
    assert page.locator("#f-days-error").inner_text() == "Choose 7, 30 or 90 days; showing the last 30."
    page.get_by_label("90 days").check()
    page.get_by_label("Place", exact=True).select_option(label=name)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**/metrics?days=90&node={node_id}")
    assert page.locator("#f-days-error").count() == 0
    assert f"for {name} only" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="Show every place").is_visible()
    assert page.locator("#figure-orders-routed").count() == 0  # a place's page counts its parcels, not orders


def test_the_page_fits_a_phone_without_sideways_scrolling(browser, server, two_orders):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        _metrics(page, server)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"/metrics is {width}px wide on a {PHONE['width']}px phone"
        assert page.get_by_role("img", name=ON_TIME_CHART).is_visible()
        shot(page, "metrics-phone")
    finally:
        context.close()
