"""The routing, preview and transfer pages in a real browser (Debian's Chromium through
Playwright): switching to disruption, previewing an order, approving a transfer, the
rules reordered with the keyboard, and every page on a phone without sideways scrolling."""
from __future__ import annotations

import pytest

from tests.conftest import SHOPIFY_SHOP
from tests.e2e.conftest import PHONE, USER, proposed_transfer, shot, sign_in

PAGES = ["/settings/sku-rules", "/settings/sku-rules/0", "/settings/routing", "/settings/planning",
         "/settings/transfers", "/settings/preview?country=US&province=CA&postcode=94110&lines=CANDLE-FIG+2%0D%0ASERUM-VITC+1",
         "/settings/history"]


@pytest.fixture(scope="module")
def transfer_id(served):
    return proposed_transfer(served, sku="CANDLE-FIG", from_node="central", to_node="popup-soho", units=6,
                             unit_cost=0.8, lead_days=2, approval_reason="the launch lock is on (since 2026-11-25)")


def _signed_in(page, server):
    sign_in(page, server)
    page.wait_for_url(f"{server}/settings/")


def test_switch_to_disruption(page, server, served):
    _signed_in(page, server)
    page.get_by_role("link", name="Routing", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == "Routing"
    page.get_by_role("radio", name="Disruption").check()
    page.get_by_role("button", name="Switch mode").click()
    assert page.get_by_text("Routing mode is now disruption").is_visible()
    assert page.locator("#mode-disruption").is_checked()
    store = served.open_store()
    try:
        document, _ = served.shop_config.document(store, SHOPIFY_SHOP)
        assert document["routing"]["mode"] == "disruption"
        assert served.shop_config.history(store, SHOPIFY_SHOP)[-1]["actor"] == f"web:{USER}"
    finally:
        store.close()
    shot(page, "routing-laptop")
    page.get_by_role("radio", name="Normal").check()  # back, for the tests after this one
    page.get_by_role("button", name="Switch mode").click()
    assert page.get_by_text("Routing mode is now normal").is_visible()


def test_a_rule_moves_with_the_keyboard_and_keeps_the_focus(page, server):
    _signed_in(page, server)
    page.goto(f"{server}/settings/routing")
    page.get_by_role("button", name="Move Fastest down in peak").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/settings/routing?moved=peak:down:0")
    rules = page.locator("#rules-peak .rule-list li .rule-text strong")
    assert rules.all_inner_texts()[:3] == ["1. Single shipment", "2. Fastest", "3. Most stock"]
    focused = "document.activeElement.getAttribute('aria-label')"
    assert page.evaluate(focused) == "Move Fastest down in peak"  # press again to move it further
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(focused) == "Move Fastest up in peak"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/settings/routing?moved=peak:up:1")
    assert rules.all_inner_texts()[:2] == ["1. Fastest", "2. Single shipment"]
    assert page.evaluate(focused) == "Move Fastest down in peak"  # at the top: Up is disabled, Down has it


def test_preview_an_order(page, server, served):
    _signed_in(page, server)
    store = served.open_store()
    try:
        before = list(store.conn.iterdump())
    finally:
        store.close()
    page.get_by_role("link", name="Routing preview").click()
    page.get_by_label("Country").fill("US")
    page.get_by_label("State or province").fill("CA")
    page.get_by_label("Postcode").fill("94110")
    page.get_by_label("Products, one per line").fill("CANDLE-FIG 2\nSERUM-VITC 1")
    page.get_by_role("button", name="Preview").click()
    cards = page.locator("article.preview")
    assert cards.count() == 3
    assert cards.nth(0).get_by_role("heading").inner_text() == "Normal now"
    assert "CANDLE-FIG" in cards.nth(0).inner_text() and "decided by" in cards.nth(0).inner_text()
    assert "needs a person" in cards.nth(0).inner_text()  # a serum does not reach California cold in time
    store = served.open_store()
    try:
        assert list(store.conn.iterdump()) == before  # nothing reserved, counted or recorded
    finally:
        store.close()
    shot(page, "preview-laptop")


def test_approve_a_transfer(page, server, served, transfer_id):
    _signed_in(page, server)
    page.get_by_role("link", name="Transfers").click()
    row = page.locator(f"#transfer-{transfer_id}")
    assert "the launch lock is on" in row.inner_text()
    shot(page, "transfers-laptop")
    row.get_by_role("button", name=f"Approve transfer {transfer_id}").click()
    assert page.get_by_text(f"Transfer {transfer_id} (6 × CANDLE-FIG, central → popup-soho) is now approved").is_visible()
    store = served.open_store()
    try:
        transfer = store.transfer(transfer_id)
        assert transfer["status"] == "approved" and transfer["decided_by"] == f"web:{USER}"
    finally:
        store.close()
    assert page.get_by_role("button", name=f"Mark shipped transfer {transfer_id}").is_visible()


@pytest.mark.parametrize("path", PAGES)
def test_the_pages_fit_a_phone_without_sideways_scrolling(browser, server, transfer_id, path):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        _signed_in(page, server)
        page.goto(f"{server}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px phone"
        name = path.split("?")[0].strip("/").replace("/", "-")
        shot(page, f"{name}-phone")
    finally:
        context.close()
