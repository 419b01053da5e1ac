"""The Shopify app in a real browser, as the admin shows it: Playwright serves a local stub
for the App Bridge URL (app-ui.md §6) that provides ``shopify.idToken()``, the patched
``fetch`` and the bounce page's reload; Shopify's token endpoint and GraphQL are answered by
`responses` inside the served app. Screenshots go to test-artifacts/screenshots/."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import responses
from werkzeug.serving import make_server

from connector import sandbox
from connector.bootstrap import build, utc_now
from connector.config import settings_from_dict
from connector.web import create_app
from tests.conftest import APP_CLIENT_ID, SHOPIFY_SECRET, WOO_SECRET, with_shopify_app
from tests.e2e.conftest import LAPTOP, PHONE, shot
from tests.integration import test_shopify_app as app_test

APP_BRIDGE_URL = "https://cdn.shopify.com/shopifycloud/app-bridge.js"

# What App Bridge does for this app, and no more: hands out the session token, adds it to
# fetch calls to the app's own origin, and on the bounce page reloads `shopify-reload`
# with a fresh id_token.
STUB = """
(function () {
  var token = %(token)r;
  window.shopify = { config: { apiKey: document.querySelector('meta[name="shopify-api-key"]').content },
                     idToken: function () { return Promise.resolve(token); } };
  var original = window.fetch.bind(window);
  window.fetch = function (input, init) {
    init = Object.assign({}, init || {});
    var url = new URL(typeof input === "string" ? input : input.url, location.href);
    if (url.origin === location.origin) {
      init.headers = new Headers(init.headers || {});
      init.headers.set("Authorization", "Bearer " + token);
    }
    return original(input, init);
  };
  var reload = new URLSearchParams(location.search).get("shopify-reload");
  if (reload) {
    var target = new URL(reload);
    target.searchParams.set("id_token", token);
    location.replace(target.toString());
  }
})();
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real app set up as the Shopify app; Shopify itself answered by `responses`."""
    now = utc_now()
    tmp = tmp_path_factory.mktemp("embedded")
    config = with_shopify_app(sandbox.demo_config(now, str(tmp / "t.db"), SHOPIFY_SECRET, WOO_SECRET))
    container = build(settings_from_dict(config))
    container.init_database()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_passthru("http://127.0.0.1")
        app_test.shopify_answers(rsps, app_test.SHOP_A)
        httpd = make_server("127.0.0.1", 0, create_app(container, start_worker=False), threaded=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_port}", container, rsps
        httpd.shutdown()


def admin_frame(browser, viewport):
    """A page whose App Bridge is the stub, with a token valid for ten minutes."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    token = app_test.session_token(app_test.SHOP_A, utc_now(), lifetime=600)
    page.route(APP_BRIDGE_URL, lambda route: route.fulfill(status=200, content_type="text/javascript",
                                                           body=STUB % {"token": token}))
    return context, page


def test_inside_the_admin_home_leads_to_the_store_locations_and_one_becomes_a_node(browser, server):
    base, container, rsps = server
    context, page = admin_frame(browser, LAPTOP)
    try:
        # Opened without a token: the bounce page has App Bridge reload it with one, which installs the shop.
        page.goto(f"{base}/shopify/app?embedded=1&shop={app_test.SHOP_A}&host={app_test.HOST_A}")
        page.wait_for_url("**/shopify/app?**id_token=**")
        # The app's home: a new install has no node yet, and says where nodes come from.
        assert page.locator("#verdict").inner_text() == "1 thing needs you"
        shot(page, "embedded-home-laptop")
        page.locator("#needs-you").get_by_role("button", name="Add one of the store's locations").click()
        page.wait_for_url("**/shopify/locations?**id_token=**")
        assert page.get_by_role("heading", level=1).inner_text() == "Store locations"
        assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Store locations").get_attribute(
            "aria-current") == "page"
        assert page.locator("button", has_text="Add as node").count() == 4
        shop = container.shops.by_domain(app_test.SHOP_A)
        assert shop is not None and shop.network.nodes == {}
        assert page.get_by_text("No node routes orders yet").is_visible()
        # App Bridge's fetch carries the token; the page's own requests are the app's.
        assert page.evaluate("fetch('/shopify/locations?embedded=1').then(r => r.status)") == 200

        page.get_by_role("button", name="Add Brooklyn studio as a node").click()
        page.wait_for_url("**/shopify/locations?**")
        assert page.get_by_role("link", name="brooklyn-studio").is_visible()
        assert page.locator("button", has_text="Add as node").count() == 3
        shop = container.shops.by_domain(app_test.SHOP_A)
        assert shop.version == 2 and shop.shopify_locations == {"brooklyn-studio": app_test.BROOKLYN}
        shot(page, "embedded-locations-laptop")

        # A link inside the admin keeps the session: the node's settings page opens.
        page.get_by_role("link", name="brooklyn-studio").click()
        page.wait_for_url("**/settings/nodes/brooklyn-studio?**")
        assert page.get_by_role("heading", level=1).inner_text() == "Brooklyn studio"
    finally:
        context.close()


def test_the_locations_page_fits_a_phone(browser, server):
    base, container, rsps = server
    context, page = admin_frame(browser, PHONE)
    try:
        page.goto(f"{base}/shopify/locations?embedded=1&shop={app_test.SHOP_A}&host={app_test.HOST_A}")
        page.wait_for_url("**id_token=**")
        assert page.get_by_role("heading", level=1).inner_text() == "Store locations"
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], "the page scrolls sideways on a phone"
        shot(page, "embedded-locations-phone")
    finally:
        context.close()
