"""The Shopify app end to end: pages opened inside the admin with session tokens built
here (HS256 with the app's client secret, app-ui.md §2), token exchange, locations and
webhook subscriptions answered by `responses` from the docs' shapes, the
authorization-code grant with the official HMAC vectors (shopify.md §6.1), and
app/uninstalled."""
from __future__ import annotations

import base64
import copy
import json
import re
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from itsdangerous import URLSafeTimedSerializer

from adapters.shopify_auth import REQUIRED_SCOPES, RETRY_INVALID_SESSION_HEADER
from adapters.shopify_install import API_TOPICS, topic_enum
from connector.bootstrap import build
from connector.config import settings_from_dict
from connector.shop_store import ShopConfigStore
from connector.web import create_app
from tests.conftest import (APP_CLIENT_ID, APP_SECRET, PUBLIC_URL, SHOPIFY_DOMAIN, FixedClock, initialised,
                            shopify_headers, with_shopify_app)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
SHOP_A = "juniper-soap.myshopify.com"
SHOP_B = "birch-wick.myshopify.com"
HOST_A = base64.b64encode(b"admin.shopify.com/store/juniper-soap").decode().rstrip("=")
BROOKLYN = "gid://shopify/Location/124656943"
RENO = "gid://shopify/Location/124656945"
APP_BRIDGE = '<script src="https://cdn.shopify.com/shopifycloud/app-bridge.js"></script>'


@pytest.fixture
def config_dict(config_dict):
    return with_shopify_app(config_dict)


def fx(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def session_token(shop: str, now: datetime, *, secret: str = APP_SECRET, lifetime: int = 60, **claims) -> str:
    dest = f"https://{shop}"
    at = int(now.timestamp())
    payload = {"iss": f"{dest}/admin", "dest": dest, "aud": APP_CLIENT_ID, "sub": "42", "exp": at + lifetime,
               "nbf": at - 5, "iat": at - 5, "jti": str(uuid.uuid4()), "sid": "session-1", **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def token_url(shop: str) -> str:
    return f"https://{shop}/admin/oauth/access_token"


def shopify_answers(rsps, shop: str, *, token_answer: dict | None = None, status: int = 200) -> list[dict]:
    """Token endpoint and GraphQL of ``shop``; returns the GraphQL bodies sent (a live list)."""
    sent: list[dict] = []

    def graphql(request):
        body = json.loads(request.body)
        sent.append(body)
        query = body["query"]
        if "locations(" in query:
            answer = fx("locations_page1" if body["variables"].get("after") is None else "locations_page2")
        elif "webhookSubscriptionCreate" in query:
            answer = fx("webhook_subscription_create")
            answer["data"]["webhookSubscriptionCreate"]["webhookSubscription"]["topic"] = body["variables"]["topic"]
        else:
            answer = fx("webhook_subscriptions")
            answer["data"]["webhookSubscriptions"]["nodes"] = []
        return 200, {}, json.dumps(answer)

    rsps.post(token_url(shop), json=token_answer or fx("oauth_token_expiring"), status=status)
    rsps.add_callback("POST", f"https://{shop}/admin/api/2026-04/graphql.json", callback=graphql,
                      content_type="application/json")
    return sent


def token_calls(rsps, shop: str) -> list[dict]:
    return [json.loads(c.request.body) for c in rsps.calls if c.request.url == token_url(shop)]


def open_app(client, clock, token_shop: str = SHOP_A, path: str = "/shopify/app", **query):
    """A page load inside the admin with a fresh token of ``token_shop`` (``query`` may say otherwise)."""
    params = {"embedded": "1", "shop": token_shop, "host": HOST_A, "id_token": session_token(token_shop, clock()),
              **query}
    return client.get(path, query_string={k: v for k, v in params.items() if v is not None})


def eventually(check, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def stored_tokens(container, shop: str):
    return container.shopify_app.tokens.load(shop)


def installed_shop(container, shop: str):
    return container.shops.by_domain(shop)


# ---------------------------------------------------------------- first load, safe defaults, locations


def test_the_first_load_inside_the_admin_installs_the_shop_with_safe_defaults_and_points_to_its_locations(
        client, container, clock, rsps, store):
    graphql = shopify_answers(rsps, SHOP_A)
    token = session_token(SHOP_A, clock())

    page = client.get("/shopify/app", query_string={"embedded": "1", "shop": SHOP_A, "host": HOST_A,
                                                    "id_token": token})

    assert page.status_code == 200
    exchange = token_calls(rsps, SHOP_A)
    assert len(exchange) == 1 and exchange[0]["subject_token"] == token and exchange[0]["expiring"] == 1
    shop = installed_shop(container, SHOP_A)
    assert shop.id == "juniper-soap" and shop.platform == "shopify" and shop.version == 1
    # Safe: an address always has a region, and no node routes anything until one is added.
    assert list(shop.network.regions) == ["everywhere"] and shop.network.default_region == "everywhere"
    assert shop.network.nodes == {}
    assert APP_SECRET in shop.secrets  # its webhooks are signed with the app's client secret
    # The tokens are stored, encrypted.
    assert stored_tokens(container, SHOP_A).access_token == fx("oauth_token_expiring")["access_token"]
    raw = store.conn.execute("SELECT access_token, refresh_token FROM shopify_tokens").fetchone()
    assert all(value.startswith("fernet:") for value in raw)
    assert fx("oauth_token_expiring")["access_token"] not in " ".join(raw)
    # The app's home: connected, and no node yet, with where to add one.
    text = page.get_data(as_text=True)
    assert "Connected to juniper-soap.myshopify.com through the app." in text
    assert "No node routes orders yet" in text and ">Add one of the store&#39;s locations<" in text
    # Its locations, each offered as a node; the TOML subscribes its webhooks, so none is sent.
    text = open_app(client, clock, path="/shopify/locations").get_data(as_text=True)
    for name in ("Brooklyn studio", "SoHo pop-up", "ShipBob Reno", "London partner"):
        assert name in text
    assert text.count(">Add as node</button>") == 4
    assert not any("webhookSubscription" in body["query"] for body in graphql)
    # A later load with a new token needs no new exchange.
    assert open_app(client, clock).status_code == 200
    assert len(token_calls(rsps, SHOP_A)) == 1


def test_every_embedded_page_has_app_bridge_first_and_is_framed_only_by_its_own_shop(client, container, clock,
                                                                                        rsps):
    for shop in (SHOP_A, SHOP_B):
        shopify_answers(rsps, shop)
        for path in ("/shopify/app", "/shopify/locations", "/settings/"):
            page = open_app(client, clock, shop, path)
            assert page.status_code == 200, path
            assert page.headers["Content-Security-Policy"].startswith(
                f"frame-ancestors https://{shop} https://admin.shopify.com;"), path
            head = page.get_data(as_text=True).split("<head>", 1)[1]
            assert head.lstrip().startswith(f'<meta name="shopify-api-key" content="{APP_CLIENT_ID}">\n  {APP_BRIDGE}')
            assert head.index(APP_BRIDGE) < head.index("<link")
    # Standalone pages are never framed and load no App Bridge.
    login = client.get("/login")
    assert "frame-ancestors 'none'" in login.headers["Content-Security-Policy"]
    assert "app-bridge" not in login.get_data(as_text=True)


def test_embedded_links_and_forms_carry_the_session_token(client, container, clock, rsps):
    shopify_answers(rsps, SHOP_A)
    token = session_token(SHOP_A, clock())
    text = client.get("/shopify/app", query_string={"embedded": "1", "shop": SHOP_A, "host": HOST_A,
                                                    "id_token": token}).get_data(as_text=True)
    urls = re.findall(r'(?:href|action)="(/(?:settings|shopify)[^"]*)"', text)
    assert urls and all(f"id_token={token}" in url.replace("&amp;", "&") and "embedded=1" in url for url in urls)


def test_adding_a_location_as_a_node_saves_a_new_version_and_a_stale_form_saves_nothing(
        client, container, clock, rsps, store):
    shopify_answers(rsps, SHOP_A)
    assert open_app(client, clock).status_code == 200
    shop_id = installed_shop(container, SHOP_A).id
    query = {"embedded": "1", "shop": SHOP_A, "host": HOST_A}

    # No Flask-WTF token: inside the admin the session token is the CSRF protection.
    added = client.post("/shopify/locations", query_string=query,
                        data={"id_token": session_token(SHOP_A, clock()), "location": RENO, "version": "1"})

    assert added.status_code == 302 and added.headers["Location"].startswith("/shopify/locations?")
    shop = installed_shop(container, SHOP_A)
    assert shop.version == 2
    assert shop.shopify_locations == {"shipbob-reno": RENO}
    node = shop.network.nodes["shipbob-reno"]
    assert node.kind == "3pl" and set(node.lanes) == {"everywhere"}
    assert ShopConfigStore(store).history(shop_id)[-1]["actor"] == "shopify user 42"
    page = open_app(client, clock, path="/shopify/locations").get_data(as_text=True)
    assert page.count(">Add as node</button>") == 3 and ">shipbob-reno</a>" in page

    stale = client.post("/shopify/locations", query_string=query,
                        data={"id_token": session_token(SHOP_A, clock()), "location": BROOKLYN, "version": "1"})
    assert stale.status_code == 409 and "nothing was saved" in stale.get_data(as_text=True)
    assert installed_shop(container, SHOP_A).version == 2

    unknown = client.post("/shopify/locations", query_string=query, data={
        "id_token": session_token(SHOP_A, clock()), "location": "gid://shopify/Location/1", "version": "2"})
    assert unknown.status_code == 404 and installed_shop(container, SHOP_A).version == 2


# ---------------------------------------------------------------- missing, stale and refused tokens


BAD_TOKENS = {
    "missing": lambda now: None,
    "expired": lambda now: session_token(SHOP_A, now, lifetime=-11),
    "wrong-secret": lambda now: session_token(SHOP_A, now, secret="shpss_somebody_else_0123456789abcdef"),
    "other-app": lambda now: session_token(SHOP_A, now, aud="another-client-id"),
    "garbage": lambda now: "not.a.jwt",
}


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_a_page_load_without_a_valid_token_goes_to_the_bounce_page(client, container, clock, rsps, kind):
    response = open_app(client, clock, path="/settings/", id_token=BAD_TOKENS[kind](clock()))

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/shopify/bounce"
    query = parse_qs(location.query)
    assert query["shop"] == [SHOP_A] and query["host"] == [HOST_A]
    reload = urlsplit(query["shopify-reload"][0])
    assert reload.path == "/settings/" and "id_token" not in parse_qs(reload.query)
    assert parse_qs(reload.query)["shop"] == [SHOP_A]
    assert not rsps.calls and installed_shop(container, SHOP_A) is None

    bounce = client.get(response.headers["Location"])
    text = bounce.get_data(as_text=True)
    assert bounce.status_code == 200 and APP_BRIDGE in text and f'content="{APP_CLIENT_ID}"' in text
    assert "<link" not in text and text.count("<script") == 1
    assert bounce.headers["Content-Security-Policy"].startswith(f"frame-ancestors https://{SHOP_A} "
                                                                "https://admin.shopify.com;")


@pytest.mark.parametrize("kind", BAD_TOKENS)
def test_a_fetch_or_a_form_with_a_bad_token_gets_401_and_the_retry_header(client, container, clock, rsps, kind):
    token = BAD_TOKENS[kind](clock())
    fetch = client.get("/shopify/locations", headers={"Authorization": f"Bearer {token or ''}"},
                       query_string={"embedded": "1"})
    form = client.post("/shopify/locations", query_string={"embedded": "1", "shop": SHOP_A},
                       data={"id_token": token or "", "location": RENO, "version": "1"})
    for response in (fetch, form):
        assert response.status_code == 401
        assert response.headers[RETRY_INVALID_SESSION_HEADER] == "1"
    assert not rsps.calls and installed_shop(container, SHOP_A) is None


def test_a_session_token_refused_by_token_exchange_is_the_401_retry_and_installs_nothing(client, container,
                                                                                          clock, rsps):
    shopify_answers(rsps, SHOP_A, token_answer=fx("oauth_invalid_subject_token"), status=400)

    response = open_app(client, clock)

    assert response.status_code == 401 and response.headers[RETRY_INVALID_SESSION_HEADER] == "1"
    assert installed_shop(container, SHOP_A) is None and stored_tokens(container, SHOP_A) is None


def test_a_token_signed_with_the_previous_client_secret_is_accepted_during_a_rotation(config_dict, clock, rsps):
    config_dict["shopify"]["previous_client_secret"] = "shpss_previous_secret_0123456789"
    container = initialised(build(settings_from_dict(config_dict), clock=clock), clock)
    client = create_app(container, start_worker=False).test_client()
    shopify_answers(rsps, SHOP_A)
    token = session_token(SHOP_A, clock(), secret="shpss_previous_secret_0123456789")
    assert client.get("/shopify/app", query_string={"embedded": "1", "shop": SHOP_A, "id_token": token}
                      ).status_code == 200


# ---------------------------------------------------------------- across shops


def test_a_token_for_one_shop_never_reaches_another_shops_data(client, container, clock, rsps, store):
    for shop in (SHOP_A, SHOP_B):
        shopify_answers(rsps, shop)
        assert open_app(client, clock, shop).status_code == 200
    b_query = {"embedded": "1", "shop": SHOP_B}
    assert client.post("/shopify/locations", query_string=b_query, data={
        "id_token": session_token(SHOP_B, clock()), "location": BROOKLYN, "version": "1"}).status_code == 302
    assert "brooklyn-studio" in installed_shop(container, SHOP_B).network.nodes

    # Shop A's token: shop B's node does not exist for it, whatever the query names.
    assert open_app(client, clock, SHOP_A, "/settings/nodes/brooklyn-studio").status_code == 404
    assert open_app(client, clock, SHOP_A, "/settings/nodes/brooklyn-studio", shop=SHOP_B).status_code == 404
    status = open_app(client, clock, SHOP_A, "/settings/", shop=SHOP_B).get_data(as_text=True)
    assert SHOP_A in status and "brooklyn-studio" not in status
    # and it cannot change shop B's configuration
    a_version = installed_shop(container, SHOP_A).version
    client.post("/shopify/locations", query_string=b_query, data={
        "id_token": session_token(SHOP_A, clock()), "location": RENO, "version": "2"})
    assert "shipbob-reno" not in installed_shop(container, SHOP_B).network.nodes
    assert installed_shop(container, SHOP_B).version == 2
    assert installed_shop(container, SHOP_A).version in (a_version, a_version + 1)
    # The embedded page of B shows B, never A (B has its node, A not).
    assert "brooklyn-studio" in open_app(client, clock, SHOP_B, "/settings/").get_data(as_text=True)


# ---------------------------------------------------------------- webhooks outside the TOML


def test_with_subscribe_webhooks_an_install_subscribes_its_topics_through_the_api(config_dict, clock, rsps):
    config_dict["shopify"]["subscribe_webhooks"] = True
    container = initialised(build(settings_from_dict(config_dict), clock=clock), clock)
    client = create_app(container, start_worker=False).test_client()
    graphql = shopify_answers(rsps, SHOP_A)

    assert open_app(client, clock).status_code == 200

    created = [body["variables"] for body in graphql if "webhookSubscriptionCreate" in body["query"]]
    assert sorted(v["topic"] for v in created) == sorted(topic_enum(t) for t in API_TOPICS)
    assert {v["webhookSubscription"]["uri"] for v in created} == {f"{PUBLIC_URL}/webhooks/shopify"}
    assert installed_shop(container, SHOP_A) is not None


# ---------------------------------------------------------------- the authorization-code grant


def q_vector_container(config_dict, secret: str, at: int):
    """An app whose client secret is the vectors' and whose clock reads their timestamp."""
    config_dict["shopify"]["client_secret"] = secret
    clock = FixedClock(datetime.fromtimestamp(at + 30, timezone.utc))
    container = initialised(build(settings_from_dict(config_dict), clock=clock), clock)
    app = create_app(container, start_worker=False)
    return container, app, app.test_client()


# shopify.md §6.1 Q1 (install request) and Q2 (callback with state), secret "hush".
Q1 = {"code": "a94a110d86d2452eb3e2af4cfb8a3828", "shop": "some-shop.myshopify.com", "timestamp": "1337178173",
      "hmac": "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"}
Q2 = {"code": "0907a61c0c8d55e99db179b68161bc00", "shop": "some-shop.myshopify.com",
      "state": "0.6784241404160823", "timestamp": "1337178173",
      "hmac": "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"}


def test_an_install_from_outside_the_admin_is_verified_and_sent_to_the_grant_screen(config_dict):
    container, app, client = q_vector_container(config_dict, "hush", 1337178173)

    response = client.get("/shopify/install", query_string=Q1)

    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "some-shop.myshopify.com", "/admin/oauth/authorize")
    query = parse_qs(target.query, keep_blank_values=True)
    assert query["client_id"] == [APP_CLIENT_ID] and query["scope"] == [",".join(REQUIRED_SCOPES)]
    assert query["redirect_uri"] == [f"{PUBLIC_URL}/shopify/auth/callback"] and query["grant_options[]"] == [""]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("shopify_oauth_state=") and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Path=/shopify/auth/callback" in cookie
    state = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="shopify-oauth-state").loads(
        cookie.split(";")[0].split("=", 1)[1])
    assert state == query["state"][0]

    for forged in ({**Q1, "hmac": Q1["hmac"][:-1] + "f"}, {**Q1, "shop": "evil.example.com"}):
        assert client.get("/shopify/install", query_string=forged).status_code == 400
    assert client.get("/shopify/install", query_string={"shop": "https://evil.example.com"}).status_code == 400


def _state_cookie(client, app, state: str) -> None:
    value = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="shopify-oauth-state").dumps(state)
    client.set_cookie("shopify_oauth_state", value, path="/shopify/auth/callback")


def test_the_callback_with_the_official_vector_stores_tokens_creates_the_shop_and_opens_the_admin(
        config_dict, rsps):
    container, app, client = q_vector_container(config_dict, "hush", 1337178173)
    rsps.post(token_url("some-shop.myshopify.com"), json=fx("oauth_token_expiring"))
    _state_cookie(client, app, Q2["state"])

    response = client.get("/shopify/auth/callback", query_string=Q2)

    assert response.status_code == 302
    assert response.headers["Location"] == f"https://some-shop.myshopify.com/admin/apps/{APP_CLIENT_ID}/"
    sent = json.loads(rsps.calls[0].request.body)
    assert sent["code"] == Q2["code"] and sent["expiring"] == 1
    assert container.shopify_app.tokens.load("some-shop.myshopify.com").refresh_token.startswith("shprt_")
    shop = container.shops.by_domain("some-shop.myshopify.com")
    assert shop.id == "some-shop" and shop.network.nodes == {}


@pytest.mark.parametrize("case", ["no-cookie", "other-state", "forged-hmac", "stale"])
def test_a_callback_that_fails_a_check_stores_nothing(config_dict, rsps, case):
    at = 1337178173 + (1000 if case == "stale" else 0)
    container, app, client = q_vector_container(config_dict, "hush", at)
    rsps.post(token_url("some-shop.myshopify.com"), json=fx("oauth_token_expiring"))
    if case != "no-cookie":
        _state_cookie(client, app, "another-state" if case == "other-state" else Q2["state"])
    params = {**Q2, "hmac": "0" * 64} if case == "forged-hmac" else Q2

    response = client.get("/shopify/auth/callback", query_string=params)

    assert response.status_code == 400
    assert not rsps.calls
    assert container.shops.by_domain("some-shop.myshopify.com") is None


def test_a_grant_without_every_scope_stores_nothing(config_dict, rsps):
    container, app, client = q_vector_container(config_dict, "hush", 1337178173)
    answer = fx("oauth_token_expiring")
    answer["scope"] = "read_orders,read_locations"
    rsps.post(token_url("some-shop.myshopify.com"), json=answer)
    _state_cookie(client, app, Q2["state"])

    response = client.get("/shopify/auth/callback", query_string=Q2)

    assert response.status_code == 400 and "write_inventory" in response.get_data(as_text=True)
    assert container.shopify_app.tokens.load("some-shop.myshopify.com") is None
    assert container.shops.by_domain("some-shop.myshopify.com") is None


def test_the_callback_redirects_into_the_admin_named_by_host(config_dict, rsps):
    # Q2's message with a host parameter, signed here the documented way (hex, sorted k=v joined by &).
    import hashlib
    import hmac as hmac_lib

    container, app, client = q_vector_container(config_dict, "hush", 1337178173)
    rsps.post(token_url("some-shop.myshopify.com"), json=fx("oauth_token_expiring"))
    host = base64.b64encode(b"admin.shopify.com/store/some-shop").decode().rstrip("=")
    params = {k: v for k, v in Q2.items() if k != "hmac"} | {"host": host}
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    params["hmac"] = hmac_lib.new(b"hush", message.encode(), hashlib.sha256).hexdigest()
    _state_cookie(client, app, Q2["state"])

    response = client.get("/shopify/auth/callback", query_string=params)

    assert response.headers["Location"] == f"https://admin.shopify.com/store/some-shop/apps/{APP_CLIENT_ID}/"


# ---------------------------------------------------------------- app/uninstalled


def test_app_uninstalled_deactivates_the_shop_and_drops_its_tokens_and_shop_redact_still_works(
        client, container, clock, rsps, store):
    shopify_answers(rsps, SHOP_A)
    assert open_app(client, clock).status_code == 200
    shop_id = installed_shop(container, SHOP_A).id

    def deliver(topic: str, fixture: str):
        body = json.dumps(fx(fixture)).replace("{shop}", "juniper-soap").encode()
        return client.post("/webhooks/shopify", data=body,
                           headers=shopify_headers(body, topic, secret=APP_SECRET, domain=SHOP_A))

    assert deliver("app/uninstalled", "app_uninstalled").status_code == 200
    report = container.inbox.process(store)
    assert report.statuses == {"uninstalled": 1}
    assert eventually(lambda: container.shops.get(shop_id) is None)  # within 2 s, as every change
    assert installed_shop(container, SHOP_A) is None
    assert stored_tokens(container, SHOP_A) is None
    assert ShopConfigStore(store).get(shop_id)["active"] is False
    assert ShopConfigStore(store).history(shop_id)[-1]["actor"] == "shopify app/uninstalled"
    # The redelivery changes nothing more.
    version = ShopConfigStore(store).get(shop_id)["version"]
    assert deliver("app/uninstalled", "app_uninstalled").status_code == 200
    container.inbox.process(store)
    assert ShopConfigStore(store).get(shop_id)["version"] == version

    # shop/redact comes 48 hours later, for the inactive shop: accepted and applied.
    assert deliver("shop/redact", "shop_redact").status_code == 200
    assert container.inbox.process(store).statuses == {"shop_redacted": 1}
    # Orders are not accepted for an uninstalled shop.
    assert deliver("orders/create", "orders_create").status_code == 401

    # Installing again: a new token exchange, the same shop, active again.
    assert open_app(client, clock).status_code == 200
    assert installed_shop(container, SHOP_A).id == shop_id
    assert len(token_calls(rsps, SHOP_A)) == 2


def test_the_sandbox_shop_keeps_its_own_webhook_secret(container):
    shop = container.shops.by_domain(SHOPIFY_DOMAIN)
    assert shop.secrets[0] != APP_SECRET and APP_SECRET in shop.secrets


def test_two_first_loads_at_once_make_one_shop(client, container, clock, rsps, store):
    shopify_answers(rsps, SHOP_A)
    app = container.shopify_app
    first = app.installed(store, SHOP_A, "test")
    # The second load read the shop list before the first one created it.
    real_list = app.shop_config.list
    calls = []

    def list_without_the_new_shop(s):
        calls.append(1)
        rows = real_list(s)
        return [r for r in rows if r["store"] != SHOP_A] if len(calls) == 1 else rows

    app.shop_config.list = list_without_the_new_shop
    try:
        assert app.installed(store, SHOP_A, "test") == first
    finally:
        app.shop_config.list = real_list
    assert [row["shop_id"] for row in real_list(store) if row["store"] == SHOP_A] == [first]


def test_shopify_app_toml_points_at_these_routes(app):
    import tomllib

    toml = tomllib.loads((Path(__file__).resolve().parents[2] / "shopify.app.toml").read_text())
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    assert urlsplit(toml["application_url"]).path in routes
    assert {urlsplit(url).path for url in toml["auth"]["redirect_urls"]} <= routes
    assert {urlsplit(sub["uri"]).path for sub in toml["webhooks"]["subscriptions"]} <= routes


def test_shopify_unreachable_at_the_first_load_is_an_error_page_framed_by_the_shop_and_installs_nothing(
        client, container, clock, rsps):
    rsps.post(token_url(SHOP_A), status=503)

    page = open_app(client, clock)

    text = page.get_data(as_text=True)
    assert page.status_code == 503 and "Try again in a moment" in text and "Back to your shop" in text
    assert page.headers["Content-Security-Policy"].startswith(f"frame-ancestors https://{SHOP_A} ")
    assert installed_shop(container, SHOP_A) is None and stored_tokens(container, SHOP_A) is None
