"""The alerts section in a real browser (Debian's Chromium through Playwright): the creator
sets an email address and a JSON address, switches a kind off, saves, and sends a test
message that the local SMTP server and the local receiver get; a mistake is shown beside
its field; the page fits a phone and works from the keyboard."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from tests.conftest import SHOPIFY_SHOP
from tests.e2e.conftest import PHONE, shot, sign_in
from tests.local_smtp import LocalSmtp
from tests.loopback import recording_server

SIGNING = "browser-sign-secret-77"


@pytest.fixture(scope="module")
def smtp():
    with LocalSmtp() as server:
        yield server


@pytest.fixture(scope="module")
def deployment_extra(smtp):
    return {"email": smtp.config()}


@pytest.fixture(scope="module")
def receiver():
    with recording_server() as server:
        yield server


def _open_alerts(page, server):
    sign_in(page, server)
    page.wait_for_url(f"{server}/settings/")
    page.get_by_role("link", name="Alerts", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == "Alerts"


def test_configure_alerts_and_send_a_test_message_the_mail_server_receives(page, server, served, smtp, receiver):
    _open_alerts(page, server)
    page.get_by_label("Email addresses").fill("maker@candles.example")
    page.get_by_label("Also send them as JSON to").fill(receiver.url + "/hooks/candles")
    page.get_by_label("Signing secret for that address (optional)").fill(SIGNING)
    page.get_by_label("Transfers waiting for your approval").uncheck()
    page.get_by_label("Daily summary at (your shop's time)").fill("07:45")
    page.get_by_role("button", name="Save").click()
    assert page.get_by_text("Saved (version").is_visible()
    store = served.open_store()
    try:
        alerts = served.shop_config.document(store, SHOPIFY_SHOP, reveal=True)[0]["alerts"]
    finally:
        store.close()
    assert alerts["emails"] == ["maker@candles.example"] and alerts["digest_at"] == "07:45"
    assert "approvals" not in alerts["kinds"] and alerts["post_url"] == receiver.url + "/hooks/candles"
    assert SIGNING not in page.content() and "/hooks/candles" not in page.content()
    shot(page, "alerts-laptop")

    page.get_by_role("button", name="Send a test message").click()
    assert page.get_by_text("Email: sent.").is_visible()
    assert page.get_by_text("JSON POST: sent.").is_visible()
    [mail] = smtp.messages
    assert mail.recipients == ["maker@candles.example"]
    assert mail.message["Subject"] == "[aurora-candles.myshopify.com] Test message"
    assert "This is a test message from your fulfillment connector." in mail.message.get_content()
    [post] = receiver.received
    expected = "sha256=" + hmac.new(SIGNING.encode(), post["body"], hashlib.sha256).hexdigest()
    assert post["headers"]["X-Connector-Signature"] == expected
    shot(page, "alerts-tested-laptop")


def test_a_mistake_is_shown_beside_its_field_in_red(page, server):
    _open_alerts(page, server)
    page.get_by_label("Email addresses").fill("maker@candles")
    page.get_by_role("button", name="Save").click()
    error = page.locator("#f-alerts-emails-error")
    assert "is not an email address" in error.inner_text()
    assert error.evaluate("e => getComputedStyle(e).color") == "rgb(142, 31, 11)"
    assert page.get_by_label("Email addresses").get_attribute("aria-invalid") == "true"


def test_the_section_is_saved_with_the_keyboard_alone(page, server, served):
    _open_alerts(page, server)
    page.get_by_label("At most this many alerts an hour").focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("4")
    with page.expect_navigation():
        page.keyboard.press("Enter")  # Enter in a field submits its form
    assert page.get_by_text("Saved (version").is_visible()
    store = served.open_store()
    try:
        assert served.shop_config.document(store, SHOPIFY_SHOP)[0]["alerts"]["rate_limit_per_hour"] == 4
    finally:
        store.close()


def test_the_page_fits_a_phone_without_sideways_scrolling(browser, server, served):
    served.alerts.digest(served.open_store(), SHOPIFY_SHOP)  # a message in "Last messages"
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        sign_in(page, server)
        page.wait_for_url(f"{server}/settings/")
        page.goto(f"{server}/settings/alerts")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shot(page, "alerts-phone")
    finally:
        context.close()
