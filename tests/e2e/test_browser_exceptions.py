"""Exception lines in a real browser (Debian's Chromium through Playwright): route one to a
node after reading what each costs, dismiss one with a note, re-evaluate one after stock
arrived, and the chooser on a phone without sideways scrolling."""
from __future__ import annotations

import json
import random

import pytest

from connector import sandbox
from connector.bootstrap import utc_now
from tests.conftest import SHOPIFY_SHOP, shopify_headers
from tests.e2e.conftest import PHONE, USER, shot, sign_in


TITLES = {"CANDLE-CEDAR": "Cedar Hour candle", "PRINT-A3": "Studio print A3", "ZINE-04": "Zine issue 04",
          "TEE-LOGO-L": "Logo tee - L"}


def exception_order(served, order_id: int, sku: str, quantity: int) -> str:
    """An order to New York City for more of ``sku`` than any node has; its chooser's path."""
    order = sandbox.shopify_order(random.Random(order_id), order_id, 8000 + order_id % 100, utc_now(), lines=1)
    line_id = order_id * 10 + 1
    order["line_items"][0].update(id=line_id, sku=sku, quantity=quantity, current_quantity=quantity,
                                  title=TITLES[sku], name=TITLES[sku])
    order["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
    body = json.dumps(order).encode()
    store = served.open_store()
    try:
        assert served.inbox.ingest(store, "shopify", body, shopify_headers(body)).status == 200
        served.inbox.process(store)
        assert store.current_decisions(SHOPIFY_SHOP, str(order_id))[0]["exception"] == "partial_stock"
    finally:
        store.close()
    return f"/actions/exceptions/{order_id}/{line_id}"


def set_stock(served, node_id: str, sku: str, units: int) -> None:
    """A count written straight into the database (no hook routes anything)."""
    store = served.open_store()
    try:
        with store.write():
            store.set_stock(SHOPIFY_SHOP, node_id, sku, on_hand=units, committed=0, available=units, source="test",
                            now=utc_now())
    finally:
        store.close()


def decision(served, order_id: str) -> dict:
    store = served.open_store()
    try:
        return store.current_decisions(SHOPIFY_SHOP, order_id)[0]
    finally:
        store.close()


def test_route_an_exception_to_a_node_after_reading_the_costs(page, server, served):
    chooser = exception_order(served, 8_100_001, "CANDLE-CEDAR", 500)
    set_stock(served, "central", "CANDLE-CEDAR", 600)
    sign_in(page, server)
    page.goto(f"{server}{chooser}")
    assert page.get_by_text("No node that ships to this region has enough of this product right now.").is_visible()
    central = page.locator("#node-central")
    assert "2 days (promise 1)" in central.inner_text() and "600 → 100" in central.inner_text()
    assert "Cannot: ne-micro has 40 sellable CANDLE-CEDAR" in page.locator("#node-ne-micro").inner_text()
    assert page.get_by_role("button", name="Ship from ne-micro").count() == 0
    shot(page, "exception-chooser-laptop")

    page.get_by_label("Note (optional, kept with the decision)").fill("the customer agreed to wait a day")
    page.get_by_role("button", name="Ship from central").click()
    assert page.get_by_role("status").filter(has_text="now ships from central").is_visible()
    assert page.get_by_text("Ships from central (chosen by hand)").is_visible()
    assert "note: the customer agreed to wait a day" in page.locator("#line").inner_text()
    shot(page, "exception-routed-laptop")
    routed = decision(served, "8100001")
    assert (routed["node_id"], routed["rule"]) == ("central", "manual")
    assert f"chosen by web:{USER}" in routed["explanation"]


def test_dismiss_an_exception_with_a_note(page, server, served):
    chooser = exception_order(served, 8_100_002, "PRINT-A3", 400)
    sign_in(page, server)
    page.goto(f"{server}{chooser}")
    page.get_by_role("button", name="Dismiss with this note").click()
    error = page.locator("#dismiss-error")
    assert error.inner_text().startswith("Give a note")
    assert error.evaluate("e => getComputedStyle(e).color") == "rgb(142, 31, 11)"  # red, beside the field
    shot(page, "exception-dismiss-error-laptop")

    page.get_by_label("Dismiss: you handle it outside the connector").fill("printed and posted from the studio")
    page.get_by_role("button", name="Dismiss with this note").click()
    assert page.get_by_role("status").filter(has_text="dismissed, handled outside the connector").is_visible()
    assert page.get_by_text(f"by web:{USER}: printed and posted from the studio").is_visible()
    assert decision(served, "8100002")["dismissed_note"] == "printed and posted from the studio"


def test_reevaluate_after_stock_arrives(page, server, served):
    chooser = exception_order(served, 8_100_003, "ZINE-04", 700)
    sign_in(page, server)
    page.goto(f"{server}{chooser}")
    set_stock(served, "ne-micro", "ZINE-04", 800)
    page.get_by_role("button", name="Re-evaluate now").click()
    assert page.get_by_role("status").filter(has_text="now ships from ne-micro.").is_visible()
    assert page.locator("#line").get_by_text("Ships from ne-micro").is_visible()
    assert decision(served, "8100003")["explanation"].startswith("routed at ")
    assert f"when web:{USER} re-evaluated it" in decision(served, "8100003")["explanation"]


@pytest.mark.parametrize("sku", ["TEE-LOGO-L"])
def test_the_chooser_fits_a_phone_without_sideways_scrolling(browser, server, served, sku):
    chooser = exception_order(served, 8_100_004, sku, 5000)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        sign_in(page, server)
        page.goto(f"{server}{chooser}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the chooser is {width}px wide on a {PHONE['width']}px phone"
        assert page.get_by_role("button", name="Ship from central").count() == 0  # 420 there: not enough
        shot(page, "exception-chooser-phone")
    finally:
        context.close()
