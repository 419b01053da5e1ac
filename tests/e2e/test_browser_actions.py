"""The action centre in a real browser (Debian's Chromium through Playwright): approve,
ship and receive a transfer from /actions, sync a feed now, a refusal shown beside its
button, and the page on a phone without sideways scrolling. Screenshots: actions-*."""
from __future__ import annotations

import random

import pytest

from connector import sandbox
from connector.bootstrap import utc_now
from tests.conftest import SHOPIFY_SECRET, SHOPIFY_SHOP
from tests.e2e.conftest import PHONE, USER, proposed_transfer, shot, sign_in


@pytest.fixture(scope="module")
def feed(served, tmp_path_factory):
    """The pop-up's stock from a CSV feed ("popup-sheet"), never synced yet: a stale sync."""
    path = tmp_path_factory.mktemp("feed") / "popup.csv"
    path.write_text("sku,quantity\nCANDLE-FIG,9\nZINE-04,4\n")
    store = served.open_store()
    try:
        document, version = served.shop_config.document(store, SHOPIFY_SHOP)
        document.setdefault("providers", {})["popup-sheet"] = {"type": "csv", "path": str(path)}
        next(n for n in document["nodes"] if n["id"] == "popup-soho")["stock_source"] = "popup-sheet"
        served.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    finally:
        store.close()
    return path


def _transfer(served, units=5, lead_days=0) -> int:
    return proposed_transfer(served, sku="CANDLE-FIG", from_node="central", to_node="ne-micro", units=units,
                             unit_cost=0.45, lead_days=lead_days, approval_reason="the launch lock is on")


def _open(page, server):
    sign_in(page, server)
    page.wait_for_url(f"{server}/settings/")
    page.goto(f"{server}/actions")
    assert page.get_by_role("heading", level=1).inner_text() == "Action centre"


def _item(page, key: str):
    return page.locator(f"#item-{key.replace(':', '-')}")


def test_approve_ship_and_receive_a_transfer(page, server, served, feed):
    tid = _transfer(served)
    _open(page, server)
    proposed = _item(page, f"transfer_approval:{tid}")
    assert "It waits for your approval: The launch lock is on." in proposed.inner_text()
    shot(page, "actions-laptop")
    proposed.get_by_role("button", name="Approve").click()
    assert page.get_by_text(f"Transfer #{tid} (5 × CANDLE-FIG, central → ne-micro) is now approved.").is_visible()

    to_ship = _item(page, f"transfer_to_ship:{tid}")
    to_ship.get_by_label("Units").fill("4")
    to_ship.get_by_role("button", name="Mark shipped").click()
    assert page.get_by_text(f"Transfer #{tid} (4 × CANDLE-FIG, central → ne-micro) is now in transit.").is_visible()

    _item(page, f"transfer_to_receive:{tid}").get_by_role("button", name="Mark received").click()
    assert page.get_by_text("is now received.").is_visible()
    assert _item(page, f"transfer_to_receive:{tid}").count() == 0
    store = served.open_store()
    try:
        transfer = store.transfer(tid)
        assert (transfer["status"], transfer["units"], transfer["decided_by"]) == ("received", 4, f"web:{USER}")
        assert {e["detail"]["by"] for e in store.events(SHOPIFY_SHOP) if e["kind"].startswith("transfer.")} \
            == {f"web:{USER}"}
    finally:
        store.close()


def test_a_refusal_stays_beside_its_button(page, server, served, feed):
    tid = _transfer(served, units=100_000)
    _open(page, server)
    _item(page, f"transfer_approval:{tid}").get_by_role("button", name="Approve").click()
    to_ship = _item(page, f"transfer_to_ship:{tid}")
    to_ship.get_by_role("button", name="Mark shipped").click()
    refusal = _item(page, f"transfer_to_ship:{tid}").get_by_role("alert")
    assert "central can spare" in refusal.inner_text() and "nothing shipped" in refusal.inner_text()
    assert _item(page, f"transfer_to_ship:{tid}").get_by_label("Units").get_attribute("aria-invalid") == "true"
    shot(page, "actions-refused-laptop")
    _item(page, f"transfer_to_ship:{tid}").get_by_role("button", name="Reject").click()
    assert page.get_by_text(f"Transfer #{tid}").first.is_visible()


def test_sync_now(page, server, served, feed):
    _open(page, server)
    stale = _item(page, "sync_stale:popup-sheet")
    assert "has never been synced" in stale.inner_text()
    stale.get_by_role("button", name="Sync now").click()
    assert page.get_by_text("Synced popup-sheet — Holiday pop-up (SoHo, NYC): 2 SKUs.").is_visible()
    assert _item(page, "sync_stale:popup-sheet").count() == 0
    store = served.open_store()
    try:
        assert store.stock_level(SHOPIFY_SHOP, "popup-soho", "CANDLE-FIG") == 9
        assert store.events(SHOPIFY_SHOP, "sync.requested")[0]["detail"]["by"] == f"web:{USER}"
    finally:
        store.close()


def _unroutable_order(served) -> tuple[str, str]:
    """An order for more candles than any node has: an order to decide; (order id, line id)."""
    payload = sandbox.shopify_order(random.Random(4), 4_400_001, 4401, utc_now(), lines=1)
    payload["line_items"][0].update(sku="CANDLE-CEDAR", quantity=5000, current_quantity=5000)
    payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload)
    store = served.open_store()
    try:
        assert served.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
        served.inbox.process(store)
    finally:
        store.close()
    return str(payload["id"]), str(payload["line_items"][0]["id"])


def test_the_page_on_a_phone_and_all_is_well(browser, server, served, feed):
    tid = _transfer(served)
    order_id, line_id = _unroutable_order(served)
    feed.write_text("not,a\nfeed")  # the next sync fails: a failing sync, with its reason
    store = served.open_store()
    try:
        assert not served.sync.sync(store, SHOPIFY_SHOP)[0].ok
    finally:
        store.close()
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        _open(page, server)
        assert _item(page, f"transfer_approval:{tid}").is_visible()
        assert _item(page, "sync_failing:popup-sheet").is_visible()
        decide = _item(page, f"exception:{order_id}:{line_id}")
        assert decide.get_by_role("button", name="Choose a node").get_attribute("href") == \
            f"/actions/exceptions/{order_id}/{line_id}"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"/actions is {width}px wide on a {PHONE['width']}px phone"
        shot(page, "actions-phone")

        decide.get_by_label("Why dismiss it").fill("sent from the studio by hand")
        decide.get_by_role("button", name="Dismiss").click()  # the exceptions blueprint, back to /actions
        page.wait_for_url(f"{server}/actions")
        assert _item(page, f"exception:{order_id}:{line_id}").count() == 0
        _item(page, f"transfer_approval:{tid}").get_by_role("button", name="Reject").click()
        feed.write_text("sku,quantity\nCANDLE-FIG,9\n")
        _item(page, "sync_failing:popup-sheet").get_by_role("button", name="Sync now").click()
        assert page.get_by_text("All is well").is_visible()
        shot(page, "actions-all-well-phone")
    finally:
        context.close()
