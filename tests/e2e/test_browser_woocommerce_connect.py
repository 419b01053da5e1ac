"""The "Connect your WooCommerce store" page in Chromium (fixtures from tests/e2e/conftest.py):
each problem beside its field, then a valid form sending the browser to the store's
wc-auth grant screen (answered here by page.route: the store is never contacted); at
laptop and phone widths, with screenshots."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.e2e.conftest import LAPTOP, PHONE, PUBLIC_URL, shot  # browser, server, page: fixtures of conftest
from tests.web import PASSWORD

STORE_GRANT = "https://shop.example.com/wc-auth/v1/authorize"


def fill(page, store_url, email, password):
    page.get_by_label("Store address").fill(store_url)
    page.get_by_label("Your email").fill(email)
    page.get_by_label("A password for these pages").fill(password)
    page.get_by_role("button", name="Connect store").click()


def below(page, field_label, error_id):
    field, error = page.get_by_label(field_label), page.locator(f"#{error_id}")
    assert field.get_attribute("aria-invalid") == "true"
    assert field.get_attribute("aria-describedby") == error_id
    box, message = field.bounding_box(), error.bounding_box()
    assert box["y"] + box["height"] <= message["y"] < box["y"] + box["height"] + 40, error_id
    return error.inner_text()


def test_connect_page_shows_problems_beside_fields_then_sends_the_creator_to_the_store(browser, server):
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    grants = []

    def store_grant_screen(route):
        grants.append(route.request.url)
        route.fulfill(status=200, content_type="text/html",
                      body="<!doctype html><title>Approve</title><h1>Micro-fulfillment connector would like to "
                           "connect to your store</h1>")

    page.route("https://shop.example.com/**", store_grant_screen)
    try:
        page.goto(f"{server}/woocommerce/connect")
        assert page.get_by_role("heading", level=1).inner_text() == "Connect your WooCommerce store"
        fill(page, "http://shop.example.com", "not-an-email", "short")
        assert "must be served over https://" in below(page, "Store address", "store_url-error")
        assert "is not an email address" in below(page, "Your email", "email-error")
        assert "12 to 1024 characters" in below(page, "A password for these pages", "password-error")
        assert page.get_by_label("Store address").input_value() == "http://shop.example.com"  # kept to correct
        shot(page, "woocommerce-connect-errors-laptop")
        assert grants == []

        fill(page, "shop.example.com", "grower@newstore.example", PASSWORD)
        page.wait_for_url(f"{STORE_GRANT}?**")
        assert len(grants) == 1
        query = {k: v[0] for k, v in parse_qs(urlsplit(grants[0]).query).items()}
        assert query["scope"] == "read_write" and query["app_name"] == "Micro-fulfillment connector"
        assert query["callback_url"] == f"{PUBLIC_URL}/woocommerce/callback"
        assert query["return_url"].startswith(f"{PUBLIC_URL}/woocommerce/connected?c=")
        assert query["user_id"].count(".") == 3
        assert page.get_by_role("heading", level=1).inner_text().endswith("would like to connect to your store")

        # Denied in the store: WooCommerce sends the creator back with success=0
        page.goto(f"{query['return_url'].replace(PUBLIC_URL, server)}&success=0&user_id={query['user_id']}")
        assert page.get_by_role("heading", level=1).inner_text() == "You did not approve the connection"
        shot(page, "woocommerce-declined-laptop")
    finally:
        context.close()


def test_connect_page_fits_a_phone(browser, server):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{server}/woocommerce/connect")
        shot(page, "woocommerce-connect-phone")
        page.get_by_role("button", name="Connect store").click()
        page.wait_for_selector("#store_url-error")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the connect page is {width}px wide on a {PHONE['width']}px phone"
        shot(page, "woocommerce-connect-errors-phone")
    finally:
        context.close()
