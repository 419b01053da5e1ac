"""The pages in a real browser: Playwright driving Debian's Chromium (never a downloaded
one) against the real app served on 127.0.0.1 over a temporary SQLite database.
Screenshots go to test-artifacts/screenshots/ (kept by CI as artifacts)."""
from __future__ import annotations

import pytest

from connector import sandbox
from tests.e2e.conftest import PHONE, USER, shot, sign_in
from tests.web import PASSWORD


def test_a_wrong_password_is_shown_beside_the_password_field(page, server):
    sign_in(page, server, "typo0@candles.example", "not the password at all")
    error = page.locator("#password-error")
    assert error.inner_text() == "Email or password is wrong."
    password = page.get_by_label("Password")
    assert password.get_attribute("aria-invalid") == "true"
    assert password.get_attribute("aria-describedby") == "password-error"
    field, message, button = (x.bounding_box() for x in (password, error, page.get_by_role("button", name="Sign in")))
    assert field["y"] + field["height"] <= message["y"] < button["y"]  # right under the field, above the button
    assert page.evaluate("getComputedStyle(document.querySelector('#password-error')).color") == "rgb(142, 31, 11)"
    shot(page, "login-error-laptop")


def test_signing_in_and_out_with_the_keyboard_only(page, server):
    page.goto(f"{server}/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0  # shown while focused
    page.keyboard.press("Enter")  # skip to the content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "email"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    shadow = page.evaluate("getComputedStyle(document.activeElement).boxShadow")
    assert outline != "none" or shadow != "none", "no visible focus on the email field"
    page.keyboard.type(USER)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/")  # signing in lands on the home page; its Settings lead to the status
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.wait_for_url(f"{server}/settings/")
    assert page.get_by_role("heading", level=1).inner_text() == "Connection status"
    assert page.get_by_text(sandbox.SHOPIFY_DOMAIN).is_visible()
    shot(page, "status-laptop")

    sign_out = page.get_by_role("button", name="Sign out")
    for _ in range(12):  # Tab until the sign-out button has the focus
        page.keyboard.press("Tab")
        if sign_out.evaluate("b => b === document.activeElement"):
            break
    assert sign_out.evaluate("b => b === document.activeElement")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/login")
    assert page.get_by_text("You are signed out.").is_visible()
    page.goto(f"{server}/settings/")
    assert page.url == f"{server}/login?next=/settings/"


def test_too_many_failed_logins_are_refused_for_a_while(page, server):
    email = "typo1@candles.example"
    for _ in range(5):
        sign_in(page, server, email, "still not the password")
        assert page.locator("#password-error").is_visible()
    sign_in(page, server, email, PASSWORD)
    assert page.get_by_role("heading", level=1).inner_text() == "Too many attempts"
    assert page.get_by_text("Try again in 15 minutes.").is_visible()
    shot(page, "too-many-laptop")


@pytest.mark.parametrize("path", ["/login", "/settings/", "/settings/nodes/popup-soho", "/settings/store", "/no-such-page"])
def test_pages_fit_a_phone_without_sideways_scrolling(browser, server, path):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        if path != "/login":
            sign_in(page, server)
            page.wait_for_url(f"{server}/settings/")
        page.goto(f"{server}{path}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} is {width}px wide on a {PHONE['width']}px phone"
        name = path.strip("/").replace("/", "-") or "home"
        shot(page, f"{name}-phone")
    finally:
        context.close()


def test_node_page_at_laptop_width(page, server):
    sign_in(page, server)
    page.wait_for_url(f"{server}/settings/")
    page.get_by_role("link", name="Holiday pop-up (SoHo, NYC)").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Holiday pop-up (SoHo, NYC)"
    shot(page, "node-laptop")


def test_a_settings_section_saves_with_the_keyboard(page, server):
    sign_in(page, server)
    page.wait_for_url(f"{server}/settings/")
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name="Store").click()
    page.get_by_label("Time zone").select_option("America/Chicago")
    page.get_by_label("Time zone").focus()
    page.keyboard.press("Tab")  # the region
    page.keyboard.press("Tab")  # the save button
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server}/settings/store")
    assert page.get_by_role("status").inner_text().startswith("Saved (version")
    assert page.get_by_label("Time zone").input_value() == "America/Chicago"
    shot(page, "store-laptop")
