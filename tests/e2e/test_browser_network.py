"""The network sections (regions, nodes, 3PL connections) in a real browser: a node with
its lanes added with the keyboard alone, a problem shown beside its field, every page on a
phone without sideways scrolling. Screenshots under test-artifacts/screenshots/."""
from __future__ import annotations

import pytest

from tests.conftest import SHOPIFY_SHOP
from tests.e2e.conftest import PHONE, shot, sign_in
from tests.web import add_provider


@pytest.fixture(scope="module")
def served(served):
    """This module's own shop (its tests add a node), with a 3PL connection to list."""
    add_provider(served, SHOPIFY_SHOP, "shipbob-main", {
        "type": "shipbob", "token": "pat-browser-secret-000", "channel_id": "100102",
        "base_url": "https://sandbox-api.shipbob.com"})
    return served


def _signed_in(page, server):
    sign_in(page, server)
    page.wait_for_url(f"{server}/settings/")


def _tab_to(page, selector: str, limit: int = 120) -> None:
    """Press Tab until the element ``selector`` has the focus (as a keyboard user would)."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def _focus_is_visible(page) -> bool:
    style = page.evaluate("(() => { const s = getComputedStyle(document.activeElement);"
                          " return [s.outlineStyle, s.boxShadow]; })()")
    return style[0] != "none" or style[1] != "none"


def test_adding_a_node_with_its_lanes_using_only_the_keyboard(page, server):
    _signed_in(page, server)
    page.goto(f"{server}/settings/nodes")
    _tab_to(page, "a[href='/settings/nodes/new']")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/settings/nodes/new")

    _tab_to(page, "#f-nodes-5-id")
    assert _focus_is_visible(page)
    page.keyboard.type("studio")
    page.keyboard.press("Tab")
    page.keyboard.type("Studio shelf (Brooklyn)")
    page.keyboard.press("Tab")
    page.keyboard.type("Garage")  # the select picks "Garage or studio" as letters are typed
    _tab_to(page, "#f-nodes-5-capabilities-2")  # "Packs fragile items"
    page.keyboard.press("Space")
    _tab_to(page, "#f-nodes-5-lanes-0-region")
    page.keyboard.type("New York")
    page.keyboard.press("Tab")
    page.keyboard.type("1")
    page.keyboard.press("Tab")
    page.keyboard.type("4.5")
    page.keyboard.press("Enter")  # Enter in a field saves the node with its first lane
    page.wait_for_url(f"{server}/settings/nodes/studio/edit")
    assert page.locator("#f-nodes-5-lanes-0-cost_per_order").input_value() == "4.5"
    _tab_to(page, "#f-nodes-5-lanes-1-region")  # the empty row that adds a second lane
    page.keyboard.type("US North")
    page.keyboard.press("Tab")
    page.keyboard.type("2")
    page.keyboard.press("Tab")
    page.keyboard.type("6")
    page.keyboard.press("Enter")  # Enter in a field saves (a row's "remove" box never submits)
    page.wait_for_url(f"{server}/settings/nodes/studio/edit")
    assert page.get_by_role("status").inner_text().startswith("Saved (version")
    assert page.get_by_role("heading", level=1).inner_text() == "Studio shelf (Brooklyn)"
    assert page.locator("#f-nodes-5-kind").input_value() == "garage"
    assert page.locator("#f-nodes-5-capabilities-2").is_checked()
    assert [page.locator(f"#f-nodes-5-lanes-{i}-region").input_value() for i in (0, 1)] == [
        "nyc-metro", "us-northeast"]
    shot(page, "node-added-laptop")
    page.goto(f"{server}/settings/nodes")
    assert page.locator("#node-studio").is_visible()
    shot(page, "nodes-laptop")


def test_a_problem_is_shown_beside_its_field(page, server):
    _signed_in(page, server)
    page.goto(f"{server}/settings/regions/canada")
    page.get_by_label("Delivery promise (days)").fill("90")
    page.get_by_label("Countries").fill("Canada")
    page.get_by_role("button", name="Save").click()
    promise = page.get_by_label("Delivery promise (days)")
    error = page.locator("#f-regions-4-promise_days-error")
    assert "less than or equal to 60" in error.inner_text()  # the shop validation's own message
    assert promise.get_attribute("aria-invalid") == "true"
    assert promise.input_value() == "90"  # what was typed stays
    box, below = promise.bounding_box(), error.bounding_box()
    assert box["y"] + box["height"] <= below["y"] < box["y"] + box["height"] + 40
    assert page.evaluate("getComputedStyle(document.querySelector('#f-regions-4-promise_days-error')).color") == \
        "rgb(142, 31, 11)"
    assert page.get_by_role("alert").first.inner_text().startswith("Nothing was saved")
    shot(page, "region-error-laptop")
    page.get_by_label("Delivery promise (days)").fill("7")
    page.get_by_role("button", name="Save").click()
    assert "not in the expected form" in page.locator("#f-regions-4-countries-error").inner_text()


def test_removing_a_region_in_use_says_why_beside_it(page, server):
    _signed_in(page, server)
    page.goto(f"{server}/settings/regions")
    page.get_by_role("button", name="Remove New York City metro").click()
    row = page.locator("#region-nyc-metro")
    assert "Not removed" in row.inner_text() and "serves undefined region 'nyc-metro'" in row.inner_text()
    shot(page, "region-remove-refused-laptop")


def test_the_3pl_connections_page_never_shows_the_token(page, server):
    _signed_in(page, server)
    page.goto(f"{server}/settings/providers")
    assert page.locator("#provider-shipbob-main").is_visible()
    shot(page, "providers-laptop")
    page.get_by_role("link", name="Edit shipbob-main").click()
    token = page.get_by_label("Personal access token")
    assert token.input_value() == "" and token.get_attribute("type") == "password"
    assert "pat-browser-secret" not in page.content()
    shot(page, "provider-edit-laptop")


@pytest.mark.parametrize("path", ["/settings/regions", "/settings/regions/nyc-metro", "/settings/nodes",
                                  "/settings/nodes/new", "/settings/nodes/popup-soho/edit", "/settings/providers",
                                  "/settings/providers/shipbob-main/edit"])
def test_network_pages_fit_a_phone_without_sideways_scrolling(browser, server, path):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        _signed_in(page, server)
        page.goto(f"{server}{path}")
        assert page.get_by_role("heading", level=1).is_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px phone"
        shot(page, path.strip("/").replace("/", "-") + "-phone")
    finally:
        context.close()


