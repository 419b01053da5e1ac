"""The home page in a real browser (Debian's Chromium through Playwright): the verdict is
the first thing seen on a laptop and on a phone, an action in "needs you" works from
there, and the main navigation is reachable and usable with the keyboard alone."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import PHONE, USER, proposed_transfer, shot, sign_in


@pytest.fixture(scope="module")
def transfer_id(served):
    """A transfer waiting for the creator's approval: an item of "needs you"."""
    return proposed_transfer(served, sku="CANDLE-CEDAR", from_node="central", to_node="ne-micro", units=12,
                             unit_cost=0.45, lead_days=1, approval_reason="it moves more than the approval limit")


def _home(page, server):
    sign_in(page, server, next=None)
    page.wait_for_url(f"{server}/")


def test_the_verdict_comes_first_and_each_thing_that_needs_you_has_its_action(page, server, transfer_id):
    _home(page, server)
    verdict = page.locator("#verdict")
    assert verdict.inner_text() == "2 things need you"  # the store's Admin API token, and the transfer
    assert verdict.bounding_box()["y"] < 200
    needs = page.locator("#needs-you")
    assert needs.get_by_text(f"(transfer #{transfer_id})").is_visible()
    assert needs.get_by_role("button", name="Approve").is_visible()
    assert page.get_by_role("heading", name="Setup").is_visible()
    shot(page, "home-laptop")


def test_approving_a_transfer_from_home_comes_back_home(page, server, served, transfer_id):
    _home(page, server)
    item = page.locator(f"#item-transfer_approval-{transfer_id}")
    item.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"{server}/")
    assert page.get_by_role("status").first.inner_text().startswith(f"Transfer #{transfer_id} (12 × CANDLE-CEDAR")
    assert page.locator("#verdict").inner_text() == "2 things need you"  # now it waits to be shipped
    assert page.locator(f"#item-transfer_to_ship-{transfer_id}").get_by_role("button", name="Mark shipped").is_visible()
    store = served.open_store()
    try:
        transfer = store.transfer(transfer_id)
        assert transfer["status"] == "approved" and transfer["decided_by"] == f"web:{USER}"
    finally:
        store.close()


def test_on_a_phone_the_verdict_is_seen_without_scrolling(browser, server, transfer_id):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        _home(page, server)
        box = page.locator("#verdict").bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the home page is {width}px wide on a {PHONE['width']}px phone"
        nav = page.get_by_role("navigation", name="Main")
        for label in ("Home", "Action centre", "Inventory", "Settings"):
            link = nav.get_by_role("link", name=label)
            assert link.is_visible() and link.bounding_box()["x"] + link.bounding_box()["width"] <= PHONE["width"]
        shot(page, "home-phone")
    finally:
        context.close()


def test_the_navigation_works_with_the_keyboard_alone(page, server):
    _home(page, server)
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Home").get_attribute("aria-current") == "page"
    focused = "document.activeElement.textContent.trim()"
    reached = []
    for _ in range(8):  # from the top of the page: skip link, the app's name, then the sections
        page.keyboard.press("Tab")
        reached.append(page.evaluate(focused))
        if reached[-1] == "Inventory":
            break
    assert reached[:2] == ["Skip to content", "Fulfillment connector"]
    assert reached[2] == "Home" and reached[3].startswith("Action centre")  # its count follows
    assert reached[-1] == "Inventory"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused section shows no focus ring"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/inventory")
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Inventory").get_attribute(
        "aria-current") == "page"
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").get_attribute(
        "aria-current") is None
    page.goto(f"{server}/")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate(focused) == "Settings":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/settings/")
    assert page.get_by_role("heading", level=1).inner_text() == "Connection status"
