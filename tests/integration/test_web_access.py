"""Every page route, found from the app's url_map (so a new one is covered the day it is
added): unauthenticated it sends to the login page, a form posted without its CSRF token
is a 400, and a signed-in user of one shop gets a 404 for anything of another shop."""
from __future__ import annotations

import json
import random

import pytest

from connector import sandbox
from connector.config import file_shops
from connector.web.pages import JSON_PREFIXES
from tests.conftest import (SHOPIFY_SHOP, WOO_SHOP, fixture_json, shopify_headers, with_shopify_app, woo_body,
                            woo_headers)
from tests.web import SHOPIFY_USER, WOO_USER, add_provider, add_user, csrf_token, sign_in

# Reachable without signing in: the login itself, links, sign-out, and the static files;
# connecting a WooCommerce store (its creator has no account yet: the connection makes it),
# the keys' callback (WooCommerce's server, proven by the one-time user_id) and the page
# the creator returns to (shows the outcome only to the browser that started it); the
# Shopify app's bounce page (App Bridge only) and the authorization-code grant.
PUBLIC = {"static", "auth.login", "auth.login_link", "auth.logout",
          "woocommerce.connect", "woocommerce.callback", "woocommerce.connected",
          "shopify_app.bounce", "shopify_app.install", "shopify_app.callback"}
# POSTed by another server, not by a form of ours: no CSRF token to carry.
CSRF_EXEMPT = {"woocommerce.callback"}
# Opened only inside the Shopify admin: without a session token, to the bounce page
# (tests/integration/test_shopify_app.py checks the token itself).
EMBEDDED_ONLY = {"shopify_app.home"}
# The packing pages take their node and order from the query and the form, not the path:
# tests/e2e/test_packing.py checks that another shop's are a 404 there.
# For each URL argument of a page route: a value that exists in the WooCommerce shop
# only (the signed-in user is the Shopify shop's), and one of the user's own shop.
# (``rule`` is a position in the user's own shop's SKU rules: one past them is all another
# shop's rule could be; transfers get their ids from the ``users`` fixture, own first.)
# (Orders: an exception line in each shop, stored by the ``users`` fixture. The action
# centre: forward jobs' ids come from the ``users`` fixture too, own first; a transfer step
# is the same word in every shop.)
FOREIGN = {"node_id": "uk-hub", "region_id": "uk", "provider_id": "garage-sheet", "transfer_id": 2, "rule": 3,
           "order_id": "727", "line_id": "316", "job_id": 2, "step": "approve", "sku": "TERRARIUM-S"}
OWN = {"node_id": "central", "region_id": "nyc-metro", "provider_id": "popup-sheet", "token": "not-a-token",
       "filename": "app.css", "transfer_id": 1, "rule": 0, "order_id": "7400001", "line_id": "7400011", "job_id": 1,
       "step": "approve", "sku": "CANDLE-FIG"}


@pytest.fixture
def config_dict(config_dict):
    return with_shopify_app(config_dict)  # the Shopify app's pages are served


def page_rules(app):
    return [rule for rule in app.url_map.iter_rules()
            if not any(rule.rule == p or rule.rule.startswith(p + "/") for p in JSON_PREFIXES)]


def _methods(rule):
    return sorted(rule.methods - {"HEAD", "OPTIONS"})


def _url(app, rule, values):
    missing = [arg for arg in rule.arguments if arg not in values]
    assert not missing, f"{rule.rule}: add a sample value for {missing} to this test's OWN/FOREIGN"
    with app.test_request_context():
        from flask import url_for
        return url_for(rule.endpoint, **{arg: values[arg] for arg in rule.arguments})


@pytest.fixture
def users(container, store, clock):
    add_user(container, SHOPIFY_USER, SHOPIFY_SHOP)
    add_user(container, WOO_USER, WOO_SHOP)
    add_provider(container, SHOPIFY_SHOP, OWN["provider_id"], {"type": "csv", "path": "popup.csv"})
    add_provider(container, WOO_SHOP, FOREIGN["provider_id"], {"type": "csv", "path": "garage.csv"})
    with store.write():  # a transfer in each shop: OWN["transfer_id"], then FOREIGN["transfer_id"]
        for shop_id, sku, from_node, to_node in ((SHOPIFY_SHOP, "CANDLE-FIG", "central", "ne-micro"),
                                                 (WOO_SHOP, "TERRARIUM-S", "uk-hub", "garage")):
            store.add_transfer(shop_id, sku=sku, from_node=from_node, to_node=to_node, units=3, unit_cost=0.5,
                               lead_days=2, status="proposed", emergency=False, approval_reason="test", now=clock())
        # A hand-off to a 3PL in each shop: OWN["job_id"], then FOREIGN["job_id"].
        store.add_forward_job(SHOPIFY_SHOP, OWN["order_id"], "ne-micro", OWN["provider_id"], clock())
        store.add_forward_job(WOO_SHOP, FOREIGN["order_id"], "uk-hub", FOREIGN["provider_id"], clock())
    # An exception line in each shop: the Shopify shop's (more candles than any node has) and
    # WooCommerce's documented order (to San Francisco: the Woo shop has no region there).
    own = sandbox.shopify_order(random.Random(1), int(OWN["order_id"]), 7401, clock(), lines=1)
    own["line_items"][0].update(id=int(OWN["line_id"]), sku="CANDLE-CEDAR", quantity=900, current_quantity=900)
    own["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
    for platform, body in (("shopify", json.dumps(own).encode()),
                           ("woocommerce", woo_body(fixture_json("woocommerce", "order_727.json")))):
        hooks = shopify_headers(body) if platform == "shopify" else woo_headers(body)
        assert container.inbox.ingest(store, platform, body, hooks).status == 200
    container.inbox.process(store)
    assert {(e["order_id"], e["line_id"]) for e in store.open_exceptions()} == {
        (OWN["order_id"], OWN["line_id"]), (FOREIGN["order_id"], FOREIGN["line_id"])}


def test_there_are_page_routes_to_check(app):
    endpoints = {rule.endpoint for rule in page_rules(app)}
    assert {"home.index", "settings.status", "settings.node", "auth.login", "inventory.index", "inventory.sku",
            "packing.index", "packing.print_view", "packing.csv", "packing.ship", "packing.retry_handoff"} <= endpoints
    assert {"settings.alerts", "settings.alerts_test"} <= endpoints  # walked like every page: no URL arguments


def test_every_page_route_sends_the_unauthenticated_to_the_login_page(app, users):
    client = app.test_client()
    token = csrf_token(client)
    checked = 0
    for rule in page_rules(app):
        if rule.endpoint in PUBLIC:
            continue
        url = _url(app, rule, OWN)
        for method in _methods(rule):
            data = {"csrf_token": token} if method != "GET" else None
            response = client.open(url, method=method, data=data)
            assert response.status_code == 302, (method, url, response.status_code)
            login = "/shopify/bounce?" if rule.endpoint in EMBEDDED_ONLY else "/login?next="
            assert response.headers["Location"].startswith(login), (method, url)
            checked += 1
    assert checked >= 2


def test_every_form_posted_without_its_csrf_token_is_refused(app, users):
    client = app.test_client()
    sign_in(client, SHOPIFY_USER)
    posts = [(rule, method) for rule in page_rules(app) for method in _methods(rule)
             if method != "GET" and rule.endpoint not in CSRF_EXEMPT]
    assert {rule.endpoint for rule, _ in posts} >= {"auth.login", "auth.logout", "auth.login_link",
                                                    "woocommerce.connect"}
    for rule, method in posts:
        response = client.open(_url(app, rule, OWN), method=method, data={"email": SHOPIFY_USER})
        assert response.status_code == 400, (method, rule.rule)
    assert client.get("/settings/").status_code == 200  # still signed in: the logout was refused too


def test_a_user_never_reaches_another_shops_pages(app, users, settings, container, store):
    shops = file_shops(settings)
    assert FOREIGN["node_id"] in shops[WOO_SHOP].network.nodes  # exists, only elsewhere
    assert FOREIGN["node_id"] not in shops[SHOPIFY_SHOP].network.nodes
    assert [t["id"] for t in store.transfers(WOO_SHOP)] == [FOREIGN["transfer_id"]]
    assert [t["id"] for t in store.transfers(SHOPIFY_SHOP)] == [OWN["transfer_id"]]
    client = app.test_client()
    sign_in(client, SHOPIFY_USER)
    token = csrf_token(client, "/settings/store")
    woo_before = container.shop_config.document(store, WOO_SHOP)
    checked = 0
    for rule in page_rules(app):
        if rule.endpoint in PUBLIC:
            continue
        if rule.arguments and "GET" in rule.methods:
            assert client.get(_url(app, rule, OWN)).status_code == 200, rule.rule
            response = client.get(_url(app, rule, FOREIGN))
            assert response.status_code == 404, rule.rule
        if rule.arguments:  # nor changes them: every form posted about another shop's item is a 404
            version = str(container.shop_config.document(store, SHOPIFY_SHOP)[1])
            for method in set(_methods(rule)) - {"GET"}:
                response = client.open(_url(app, rule, FOREIGN), method=method,
                                       data={"csrf_token": token, "version": version, "status": "paused",
                                             "reason": "probe"})
                assert response.status_code == 404, (method, rule.rule)
        if rule.endpoint in EMBEDDED_ONLY:  # a signed-in user is no session token: only the bounce
            assert client.get(_url(app, rule, OWN)).headers["Location"].startswith("/shopify/bounce?"), rule.rule
            continue
        if "GET" not in rule.methods:
            continue
        # Asking for the other shop by name changes nothing: the shop is the user's.
        text = client.get(_url(app, rule, OWN), query_string={"shop": WOO_SHOP, "shop_id": WOO_SHOP}).get_data(
            as_text=True)
        assert WOO_SHOP not in text and FOREIGN["node_id"] not in text, rule.rule
        checked += 1
    assert checked >= 2
    assert container.shop_config.document(store, WOO_SHOP) == woo_before  # the other shop is as it was


def test_the_metrics_page_is_walked_and_keeps_to_the_users_shop(app, users):
    assert "metrics.index" in {rule.endpoint for rule in page_rules(app)}
    client = app.test_client()
    assert client.get("/metrics").headers["Location"].startswith("/login")
    sign_in(client, SHOPIFY_USER)
    text = client.get("/metrics", query_string={"node": FOREIGN["node_id"]}).get_data(as_text=True)
    assert "That place is not one of this shop&#39;s" in text
    assert FOREIGN["node_id"] not in text and "UK hub" not in text
