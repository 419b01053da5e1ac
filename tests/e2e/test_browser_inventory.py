"""The inventory pages in a real browser (Debian's Chromium through Playwright): the
stock-out risks first, filtering by place and SKU, a SKU's projection chart, and both
pages on a phone without sideways scrolling."""
from __future__ import annotations

import pytest

from connector.bootstrap import utc_now
from tests.conftest import SHOPIFY_SHOP
from tests.e2e.conftest import PHONE, shot, sign_in


@pytest.fixture(scope="module")
def planned(served):
    """Demand for three SKUs (the pop-up and the Northeast run short of the fig candle) and
    a transfer of it on its way to the pop-up, planned as the nightly run would."""
    store = served.open_store()
    try:
        regions = sorted(served.shops.require(SHOPIFY_SHOP).network.regions)
        with store.write():
            store.save_forecasts(SHOPIFY_SHOP, [(sku, region, weekly, 3.0, "ewma", 8) for sku, weekly in
                                                (("CANDLE-FIG", 70.0), ("ZINE-04", 14.0), ("SERUM-NEROLI", 20.0))
                                                for region in regions], utc_now())
            transfer_id = store.add_transfer(SHOPIFY_SHOP, sku="CANDLE-FIG", from_node="central",
                                             to_node="popup-soho", units=40, unit_cost=0.5, lead_days=3,
                                             status="approved", emergency=False, approval_reason="", now=utc_now())
            store.set_transfer_status(transfer_id, expected="approved", status="in_transit", now=utc_now())
        served.planning.allocate(store, SHOPIFY_SHOP)
    finally:
        store.close()


def _inventory(page, server):
    sign_in(page, server, next="/inventory")
    page.wait_for_url(f"{server}/inventory")


def test_risks_come_first_and_filters_narrow_the_rows(page, server, planned):
    _inventory(page, server)
    assert page.get_by_role("heading", level=1).inner_text() == "Inventory"
    risks = page.locator("[aria-labelledby=risk-heading] tbody tr")
    first = risks.first.inner_text()
    assert "ZINE-04" in first and "Out of stock" in first  # nothing at the West 3PL, orders expected
    texts = risks.all_inner_texts()
    assert "SERUM-NEROLI" in texts[1] and "1.8 days" in texts[1]  # then the shortest cover first
    assert any("CANDLE-FIG" in text and "Northeast" in text for text in texts[2:])
    shot(page, "inventory-laptop")

    page.get_by_label("Place", exact=True).select_option(label="Holiday pop-up (SoHo, NYC)")
    page.get_by_label("SKU contains").fill("fig")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/inventory?sku=fig&node=popup-soho**")
    rows = page.locator(".inventory-table tbody tr")
    assert rows.count() == 1
    row = rows.first.inner_text()
    assert "CANDLE-FIG" in row and "Holiday pop-up" in row and "+40 coming" in row
    assert "1 row" in page.get_by_role("heading", name="Stock by place and SKU").inner_text()

    page.get_by_label("Place", exact=True).select_option(label="Every place")
    page.get_by_label("SKU contains").fill("")
    page.get_by_label("Category").select_option("SERUM-*")
    page.get_by_role("button", name="Show").click()
    skus = {text.split("\n")[0].strip() for text in page.locator(".inventory-table tbody th").all_inner_texts()}
    assert skus == {"SERUM-NEROLI", "SERUM-ROSE"}


def test_a_skus_page_shows_its_projection_chart(page, server, planned):
    _inventory(page, server)
    page.get_by_role("link", name="See the projection of CANDLE-FIG").first.click()
    assert page.get_by_role("heading", level=1).inner_text() == "CANDLE-FIG"
    chart = page.get_by_role("img", name="CANDLE-FIG: projected sellable units per place, next 35 days")
    assert chart.is_visible()
    assert "Holiday pop-up (SoHo, NYC) from 30 units" in chart.locator("desc").text_content()
    page.get_by_text("Show the values: CANDLE-FIG: projected").click()
    table = page.locator("figure", has=chart).locator("table")
    assert table.is_visible()
    assert table.locator("th[scope=row]").first.inner_text() == "Today"
    assert page.get_by_role("link", name="Receive transfer").is_visible()
    shot(page, "inventory-sku-laptop")


@pytest.mark.parametrize("path", ["/inventory", "/inventory/CANDLE-FIG"])
def test_the_pages_fit_a_phone_without_sideways_scrolling(browser, server, planned, path):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        _inventory(page, server)
        page.goto(f"{server}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px phone"
        shot(page, "inventory-phone" if path == "/inventory" else "inventory-sku-phone")
    finally:
        context.close()
