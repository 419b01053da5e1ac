"""The packing room in a real browser (Debian's Chromium through Playwright): print a pick
list (the print view, as printed: one slip per page, no navigation) and mark an order
shipped (errors beside the field, then the order leaves the list and the write-back is
queued and applied to the store, a fake Shopify holding the order's fulfillment orders)."""
from __future__ import annotations

import random
from zoneinfo import ZoneInfo

import pytest

from adapters.fakes import FakeFulfillmentOrders, FakeOrderNotes
from connector import handoff_store, sandbox
from connector.bootstrap import build, utc_now
from connector.config import settings_from_dict
from tests.conftest import SHOPIFY_SECRET, SHOPIFY_SHOP, WOO_SECRET
from tests.e2e.conftest import PHONE, PUBLIC_URL, USER, shot, sign_in
from tests.web import add_user

ORDER_ID = "7101"
CENTRAL = "gid://shopify/Location/101"
LOCATIONS = {"central": CENTRAL, "ne-micro": "gid://shopify/Location/102", "west-3pl": "gid://shopify/Location/103",
             "cold-room": "gid://shopify/Location/104", "popup-soho": "gid://shopify/Location/105"}


@pytest.fixture(scope="module")
def fake_shopify():
    return FakeFulfillmentOrders()


@pytest.fixture(scope="module")
def served(tmp_path_factory, fake_shopify):
    """The app's container with the Shopify shop's nodes at Shopify locations and a fake
    Shopify (and WooCommerce) behind the hand-off; one order routed, its fulfillment order
    at the central warehouse as Shopify's own routing left it."""
    now = utc_now()
    tmp = tmp_path_factory.mktemp("browser-packing")
    config = sandbox.demo_config(now, str(tmp / "t.db"), SHOPIFY_SECRET, WOO_SECRET)
    config["web"]["public_url"] = PUBLIC_URL
    for node in config["shops"][SHOPIFY_SHOP]["nodes"]:
        node["shopify_location"] = LOCATIONS[node["id"]]
    woo = FakeOrderNotes()
    container = build(settings_from_dict(config),
                      handoff_client_factory=lambda shop: fake_shopify if shop.platform == "shopify" else woo)
    container.init_database()
    store = container.open_store()
    try:
        sandbox.seed_stock(store, now)
        payload = sandbox.shopify_order(random.Random(9), int(ORDER_ID), 3001, now, lines=2)
        for line, (sku, units) in zip(payload["line_items"], (("CANDLE-FIG", 2), ("CANDLE-CEDAR", 1))):
            line.update(sku=sku, quantity=units, current_quantity=units, fulfillable_quantity=units)
        payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012", city="New York")
        hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload)
        assert container.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
        container.inbox.process(store)
        fake_shopify.add_order(ORDER_ID, {str(line["id"]): (line["sku"], line["quantity"])
                                          for line in payload["line_items"]}, CENTRAL)
        assert container.handoff.process_due(store).done == 1  # the decision: moved to the chosen node
    finally:
        store.close()
    add_user(container, USER, SHOPIFY_SHOP)
    return container


@pytest.fixture(scope="module")
def routed(served):
    store = served.open_store()
    try:
        [node] = {d["node_id"] for d in store.current_decisions(SHOPIFY_SHOP, ORDER_ID)}
    finally:
        store.close()
    day = served.clock().astimezone(ZoneInfo(served.shops.require(SHOPIFY_SHOP).timezone)).date().isoformat()
    return node, day


def _packing(page, server, node, day):
    sign_in(page, server)
    page.wait_for_url(f"{server}/settings/")
    page.goto(f"{server}/packing/")
    page.get_by_label("Node").select_option(node)
    page.get_by_label("Orders routed on").fill(day)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"{server}/packing/?node={node}&day={day}")


def test_the_decision_was_moved_in_shopify(served, routed, fake_shopify):
    node, _ = routed
    assert fake_shopify.location_of(ORDER_ID, f"{ORDER_ID}0") == LOCATIONS[node]


def test_print_a_pick_list(page, server, routed):
    node, day = routed
    _packing(page, server, node, day)
    pick = page.locator("table.pick-list")
    assert "CANDLE-FIG" in pick.inner_text() and "#3001" in pick.inner_text()
    shot(page, "packing-laptop")
    page.get_by_role("link", name="Print the pick list and slips").click()
    page.wait_for_url(f"{server}/packing/print?node={node}&day={day}")
    assert page.get_by_role("button", name="Print").is_visible()
    pages = page.locator("section.print-page")
    assert pages.count() == 2
    assert "Sam Rivera" in pages.nth(1).inner_text() and "92 Chestnut Street" in pages.nth(1).inner_text()
    page.emulate_media(media="print")
    assert not page.locator("header.topbar").is_visible()  # printed: only the list and the slips
    assert not page.get_by_role("button", name="Print").is_visible()
    breaks = pages.evaluate_all("sections => sections.map(s => getComputedStyle(s).breakAfter)")
    assert breaks == ["page", "auto"]  # one slip per page, no blank page at the end
    shot(page, "packing-print")
    page.emulate_media(media="screen")


def test_the_packing_pages_fit_a_phone(browser, server, routed):
    node, day = routed
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        sign_in(page, server)
        page.wait_for_url(f"{server}/settings/")
        for path, name in ((f"/packing/?node={node}&day={day}", "packing-phone"),
                           (f"/packing/print?node={node}&day={day}", "packing-print-phone")):
            page.goto(f"{server}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px phone"
            shot(page, name)
    finally:
        context.close()


def test_mark_shipped(page, server, served, routed, fake_shopify):
    node, day = routed
    _packing(page, server, node, day)
    slip = page.locator(f"#order-{ORDER_ID}")
    slip.get_by_label("Tracking number").fill("9400111899223197428490")
    slip.get_by_role("button", name="Mark order #3001 shipped").click()
    error = page.locator(f"#ship-{ORDER_ID}-carrier-error")
    assert error.inner_text() == "give the carrier (e.g. Royal Mail, USPS)"
    assert page.locator(f"#ship-{ORDER_ID}-carrier").get_attribute("aria-invalid") == "true"
    assert page.locator(f"#ship-{ORDER_ID}-tracking_number").input_value() == "9400111899223197428490"
    shot(page, "packing-error")
    slip = page.locator(f"#order-{ORDER_ID}")
    slip.get_by_label("Carrier").fill("USPS")
    slip.get_by_role("button", name="Mark order #3001 shipped").click()
    assert page.get_by_text(f"Order #3001 is marked shipped from {node}").is_visible()
    assert page.locator(f"#order-{ORDER_ID}").count() == 0  # it left the list
    store = served.open_store()
    try:
        [queued] = handoff_store.handoffs(store, SHOPIFY_SHOP, statuses=["pending"])
        assert (queued["kind"], queued["node_id"]) == ("shipment", node)
        assert served.handoff.process_due(store).done == 1
    finally:
        store.close()
    page.reload()
    shipped = page.get_by_role("row", name="#3001")
    assert "USPS 9400111899223197428490" in shipped.inner_text() and "written" in shipped.inner_text()
    shot(page, "packing-shipped")
    [fulfillment] = fake_shopify.fulfillments
    assert (fulfillment["carrier"], fulfillment["tracking_number"], fulfillment["notify_customer"]) == (
        "USPS", "9400111899223197428490", True)
    assert fake_shopify.location_of(ORDER_ID, f"{ORDER_ID}0") is None  # nothing of it left to fulfil
