"""The home page through the Flask test client, as a signed-in creator opens it (``/``)
and as the Shopify admin opens the app (``/shopify/app`` with a session token): the same
page, the verdict first, the navigation marking Home, and inside the admin every link
carrying the session token."""
from __future__ import annotations

import re

import pytest

from tests.conftest import SHOPIFY_SHOP, with_shopify_app
from tests.integration.test_shopify_app import SHOP_A, open_app, shopify_answers
from tests.web import SHOPIFY_USER, add_user, sign_in


@pytest.fixture
def config_dict(config_dict):
    return with_shopify_app(config_dict)


def _nav(text: str) -> str:
    return re.search(r'<ul class="nav-links">(.*?)</ul>', text, re.S).group(1)


def test_signed_out_the_home_page_asks_to_sign_in_first(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/"


def test_signed_in_home_is_where_signing_in_lands(client, container):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    assert sign_in(client, SHOPIFY_USER).headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    text = page.get_data(as_text=True)
    assert "<title>Home · Fulfillment connector</title>" in text
    assert 'id="verdict">' in text and "Store locations" not in _nav(text)  # the locations are the app's page


def test_inside_the_admin_the_application_url_is_the_home_page(client, container, clock, rsps):
    shopify_answers(rsps, SHOP_A)
    page = open_app(client, clock)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<title>Home · Fulfillment connector</title>" in text
    # A fresh install: connected through the app, and the store's locations are where nodes come from.
    assert "Connected to juniper-soap.myshopify.com through the app." in text
    assert "No node routes orders yet" in text and 'id="verdict">1 thing needs you</h1>' in text
    nav = _nav(text)
    assert re.search(r'<a href="/shopify/app\?[^"]*" aria-current="page">Home</a>|'
                     r'<a href="/\?[^"]*" aria-current="page">Home</a>', nav)
    assert "Store locations" in nav and "Sign out" not in nav
    links = re.findall(r'(?:href|action)="(/[^"]*)"', text.split("<body>", 1)[1])
    own = [link for link in links if not link.startswith("/static/")]
    assert own and all("id_token=" in link and "embedded=1" in link for link in own), own
    # The same page as / opened inside the admin.
    home = open_app(client, clock, path="/").get_data(as_text=True)
    assert "No node routes orders yet" in home
