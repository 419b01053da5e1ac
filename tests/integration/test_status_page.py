"""The connection status page: the store's order webhooks (healthy or what is wrong), each
3PL connection with its last good sync, why its last attempt failed, and a Test button."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.conftest import SHOPIFY_SHOP, WOO_SHOP
from tests.web import SHOPIFY_USER, WOO_USER, add_provider, add_user, csrf_token, sign_in


@pytest.fixture
def users(container):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    add_user(container, WOO_USER, WOO_SHOP)


def _page(client) -> str:
    return client.get("/settings/").get_data(as_text=True)


def test_each_3pl_shows_its_last_sync_its_failure_and_a_test_button(client, users, container, store, clock):
    add_provider(container, SHOPIFY_SHOP, "sb-main", {"type": "shipbob", "token": "pat-status-secret-1",
                                                      "channel_id": "100102"})
    sign_in(client, SHOPIFY_USER)
    page = _page(client)
    assert "sb-main" in page and "no node yet" in page and "never" in page
    assert 'action="/settings/providers/sb-main/test"' in page
    assert "pat-status-secret-1" not in page

    document, version = container.shop_config.document(store, SHOPIFY_SHOP)
    node = next(n for n in document["nodes"] if n["id"] == "ne-micro")
    node.update(stock_source="sb-main", provider_location="10")
    container.shop_config.update(store, SHOPIFY_SHOP, document, version, "test")
    started = clock()
    store.record_sync(SHOPIFY_SHOP, "ne-micro", "sb-main", started, started + timedelta(seconds=2), 3, "ok", None)
    store.record_sync(SHOPIFY_SHOP, "ne-micro", "sb-main", started + timedelta(minutes=30),
                      started + timedelta(minutes=31), 0, "failed", "shipbob: HTTP 503")
    page = _page(client)
    row = re.search(r"<tr>\s*<th scope=\"row\" data-label=\"Connection\">sb-main.*?</tr>", page, re.S).group(0)
    assert "Northeast micro-warehouse" in row and "last attempt failed: shipbob: HTTP 503" in row
    assert "never" not in row  # the good sync before the failure is shown


def test_a_shop_without_3pls_is_told_how_to_connect_one(client, users):
    sign_in(client, SHOPIFY_USER)
    page = _page(client)
    assert "No 3PL is connected" in page and 'href="/settings/providers"' in page


def test_woocommerce_webhooks_are_healthy_or_say_what_is_wrong(client, users, store, clock):
    sign_in(client, WOO_USER)
    assert "Not checked yet" in _page(client)
    store.finish_order_poll(WOO_SHOP, clock())
    assert "Healthy: your store's four order webhooks are active" in _page(client)
    store.set_webhook_problems(WOO_SHOP, ["order.updated: WooCommerce disabled this webhook after failed deliveries"])
    page = _page(client)
    assert "WooCommerce disabled this webhook" in page and "Healthy" not in page


def test_the_test_button_reports_on_the_providers_page(client, users, container):
    add_provider(container, SHOPIFY_SHOP, "sheet", {"type": "csv", "url": "https://127.0.0.1:9/feed.csv"})
    sign_in(client, SHOPIFY_USER)
    response = client.post("/settings/providers/sheet/test", data={"csrf_token": csrf_token(client, "/settings/")})
    assert response.status_code == 200 and "Does not work" in response.get_data(as_text=True)
