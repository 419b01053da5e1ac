"""Connecting a WooCommerce store end to end over the real app: the connect page, the
redirect to wc-auth, the keys' callback (against a `responses` store keeping its webhooks
as the REST docs show them: keys -> webhooks -> confirm), the page the creator returns
to, and the shop then receiving signed webhooks. Every way it fails saves nothing, deletes
the webhooks it created and answers WooCommerce with something other than 200."""
from __future__ import annotations

import copy
import json
import sqlite3
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connector.bootstrap import build
from connector.config import ConfigError, settings_from_dict
from connector.web import create_app
from tests.conftest import fixture_json, initialised, woo_body, woo_headers
from tests.integration.test_woocommerce_connect import API, KEYS, STORE, Store, public
from tests.support import FakeClock
from tests.web import PASSWORD, csrf_token

PUBLIC_URL = "https://connector.example.com"
EMAIL = "grower@newstore.example"


@pytest.fixture
def container(config_dict, clock):
    config = copy.deepcopy(config_dict)
    config["web"]["public_url"] = PUBLIC_URL + "/"
    container = initialised(build(settings_from_dict(config), clock=clock, resolve_host=public), clock)
    http = FakeClock()  # the REST client's retries wait on this, not on the test
    container.connections.http_timing = {"sleep": http.sleep, "monotonic": http.monotonic}
    return container


@pytest.fixture
def app(container):
    app = create_app(container, start_worker=False)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def shop_store(rsps):
    store = Store()
    store.install(rsps)
    return store


def start(client, store_url=STORE, email=EMAIL, password=PASSWORD):
    token = csrf_token(client, "/woocommerce/connect")
    return client.post("/woocommerce/connect", data={"csrf_token": token, "store_url": store_url, "email": email,
                                                      "password": password})


def started(client, **kw):
    """(connection id, the user_id wc-auth got) of a connection started on the page."""
    response = start(client, **kw)
    assert response.status_code == 303, response.get_data(as_text=True)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return parse_qs(urlsplit(query["return_url"][0]).query)["c"][0], query["user_id"][0]


def callback(client, user_id, **changes):
    body = {**fixture_json("woocommerce", "wc_auth_callback.json"), "user_id": user_id, **changes}
    return client.post("/woocommerce/callback", data=json.dumps(body),
                       headers={"Content-Type": "application/json;charset=UTF-8"})


def shop_of(container):
    return container.shops.by_domain(STORE)


def assert_nothing_saved(container, store):
    assert shop_of(container) is None
    rows = store.conn.execute("SELECT count(*) FROM shop_configs WHERE json_extract(document, '$.store_url') = ?",
                              (STORE,)).fetchone()[0]
    assert rows == 0
    assert store.conn.execute("SELECT count(*) FROM users WHERE email = ?", (EMAIL,)).fetchone()[0] == 0
    assert store.conn.execute("SELECT count(*) FROM order_polls WHERE shop_id LIKE 'shop-example-com%'"
                              ).fetchone()[0] == 0


# ---------------------------------------------------------------- the whole way


def test_connecting_a_store_end_to_end(app, container, store, shop_store, rsps, clock):
    client = app.test_client()
    response = start(client, store_url="Shop.Example.com/wp-admin/")
    assert response.status_code == 303
    target = urlsplit(response.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "shop.example.com", "/wc-auth/v1/authorize")
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["app_name"] == "Micro-fulfillment connector" and query["scope"] == "read_write"
    assert query["callback_url"] == f"{PUBLIC_URL}/woocommerce/callback"
    connection_id = parse_qs(urlsplit(query["return_url"]).query)["c"][0]
    assert query["return_url"] == f"{PUBLIC_URL}/woocommerce/connected?c={connection_id}"

    # the password is a scrypt hash from the start, never in the database as typed
    row = store.conn.execute("SELECT email, password_hash FROM pending_connections").fetchone()
    assert row[0] == EMAIL and row[1].startswith("scrypt:")
    store.conn.execute("PRAGMA wal_checkpoint(FULL)")
    assert PASSWORD.encode() not in container.settings.database_path.read_bytes()

    response = callback(client, query["user_id"])
    assert response.status_code == 200, response.get_json()
    assert [(m, urlsplit(u).path.removeprefix("/wp-json/wc/v3")) for m, u in
            ((c.request.method, c.request.url) for c in rsps.calls)] == [
        ("GET", "/webhooks")] + [("POST", "/webhooks")] * 4 + [("GET", f"/webhooks/{i}") for i in range(142, 146)]
    assert shop_store.ours() == [(t, "active") for t in
                                 ("order.created", "order.deleted", "order.restored", "order.updated")]

    shop = shop_of(container)
    assert shop.id == "shop-example-com" and shop.platform == "woocommerce" and shop.store_url == STORE
    assert shop.storefront.consumer_key == KEYS.consumer_key and shop.storefront.consumer_secret == KEYS.consumer_secret
    assert shop.storefront.push is False and shop.network.nodes == {}
    assert shop.network.default_region == "everywhere"
    webhook_secrets = set(shop_store.secrets.values())
    assert len(webhook_secrets) == 1 and shop.secrets == tuple(webhook_secrets)
    stored = store.conn.execute("SELECT document FROM shop_configs WHERE shop_id = ?", (shop.id,)).fetchone()[0]
    assert KEYS.consumer_secret not in stored and shop.secrets[0] not in stored  # encrypted at rest
    user = store.conn.execute("SELECT shop_id FROM users WHERE email = ?", (EMAIL,)).fetchone()
    assert user == (shop.id,)
    lookback = container.settings.scheduler.reconcile_first_lookback_hours
    assert store.order_poll(shop.id)["watermark"] == (clock() - timedelta(hours=lookback)).isoformat(
        timespec="microseconds")

    # the return page, in the browser that started: the outcome, and signed in
    page = client.get(f"/woocommerce/connected?c={connection_id}&success=1&user_id=x")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert (f"Connected: 4 webhooks active, orders from the last {lookback} hours will be read in the next "
            "5 minutes.") in text
    assert client.get("/settings/").status_code == 200
    # another browser learns nothing from the id alone
    other = app.test_client().get(f"/woocommerce/connected?c={connection_id}").get_data(as_text=True)
    assert "Open this page in the browser you started in" in other and "webhooks active" not in other

    # the same callback again: refused, nothing more made
    rsps.calls.reset()
    again = callback(client, query["user_id"])
    assert again.status_code == 403 and "already completed" in again.get_json()["detail"]
    assert len(rsps.calls) == 0 and len(shop_store.hooks) == 4


def test_the_connected_shop_takes_a_signed_webhook_and_its_order_waits_for_a_node(app, container, store, shop_store):
    client = app.test_client()
    connection_id, user_id = started(client)
    assert callback(client, user_id).status_code == 200
    secret = next(iter(shop_store.secrets.values()))
    order = fixture_json("woocommerce", "order_727.json")
    body = woo_body(order)

    forged = client.post("/webhooks/woocommerce", data=body, headers=woo_headers(body, secret="not-it",
                                                                                  source=STORE + "/"))
    assert forged.status_code == 401
    response = client.post("/webhooks/woocommerce", data=body, headers=woo_headers(body, secret=secret,
                                                                                    source=STORE + "/"))
    assert response.status_code == 200 and response.get_json()["status"] == "pending"
    container.inbox.process(store)
    shop_id = shop_of(container).id
    waiting = store.open_exceptions(shop_id)
    assert {row["sku"] for row in waiting} == {line["sku"] for line in order["line_items"] if line["sku"]} == {"Bar3"}
    assert all(row["explanation"].startswith("no_node_serves_region") for row in waiting)


# ---------------------------------------------------------------- refused before anything is made


def test_a_tampered_user_id_is_refused_and_leaves_the_connection_usable(app, container, store, shop_store, rsps):
    client = app.test_client()
    _, user_id = started(client)
    nonce, connection, expires, signature = user_id.split(".")
    for forged in (f"{nonce}.{connection}.{int(expires) + 3600}.{signature}", user_id[:-2] + "AA", "123", ""):
        response = callback(client, forged)
        assert response.status_code == 403, forged
    assert len(rsps.calls) == 0
    assert_nothing_saved(container, store)
    assert callback(client, user_id).status_code == 200


def test_an_expired_connection_is_refused(app, container, store, shop_store, rsps, clock):
    client = app.test_client()
    connection_id, user_id = started(client)
    clock.advance(minutes=31)
    response = callback(client, user_id)
    assert response.status_code == 403 and "expired" in response.get_json()["detail"]
    assert len(rsps.calls) == 0
    assert_nothing_saved(container, store)
    page = client.get(f"/woocommerce/connected?c={connection_id}").get_data(as_text=True)
    assert "This connection expired" in page


def test_a_store_declined_in_wordpress_is_said_so(app):
    client = app.test_client()
    connection_id, _ = started(client)
    page = client.get(f"/woocommerce/connected?c={connection_id}&success=0").get_data(as_text=True)
    assert "You did not approve the connection" in page


# ---------------------------------------------------------------- failing on the way: nothing kept

def _unreachable(store, container):
    store.refuse["GET all"] = [requests.ConnectionError("connection refused")] * 10


def _keys_refused(store, container):
    store.refuse["GET all"] = [(401, fixture_json("woocommerce", "rest_cannot_view.json"))]


def _webhook_creation_refused(store, container):
    store.refuse["POST"] = [None, None, (400, fixture_json("woocommerce", "webhook_invalid_delivery_url.json"))]


def _private_address(store, container):
    container.connections.resolve = lambda host, port: ["10.0.0.7"]


def _email_taken_meanwhile(store, container):
    s = container.open_store()
    try:
        container.users.add(s, EMAIL, PASSWORD, container.shops.ids()[0])
    finally:
        s.close()


FAILURES = {
    "unreachable": (_unreachable, 502, "Your store could not be reached"),
    "keys refused": (_keys_refused, 502, "Your store refused the keys"),
    "webhook creation refused": (_webhook_creation_refused, 502, "Your store refused to create the webhooks"),
    "private address": (_private_address, 502, "Your store&#39;s address cannot be used"),
    "email taken meanwhile": (_email_taken_meanwhile, 409, "The connection could not be saved"),
}


@pytest.mark.parametrize("case", FAILURES, ids=list(FAILURES))
def test_a_failure_on_the_way_saves_nothing_deletes_the_webhooks_and_is_shown(app, container, store, shop_store,
                                                                              case):
    arrange, status, headline = FAILURES[case]
    client = app.test_client()
    connection_id, user_id = started(client)
    arrange(shop_store, container)

    response = callback(client, user_id)
    assert response.status_code == status  # anything but 200: WooCommerce deletes the key
    assert KEYS.consumer_secret not in response.get_data(as_text=True)
    assert shop_store.hooks == {}  # whatever was created is gone again
    if case == "email taken meanwhile":
        assert store.conn.execute("SELECT shop_id FROM users WHERE email = ?", (EMAIL,)).fetchone()[0] != \
            "shop-example-com"
        assert shop_of(container) is None
    else:
        assert_nothing_saved(container, store)
    page = client.get(f"/woocommerce/connected?c={connection_id}")
    text = page.get_data(as_text=True)
    assert headline in text and "Nothing was saved" in text
    # WooCommerce shows its own error page and never sends the creator back: the form says it
    assert headline in client.get("/woocommerce/connect").get_data(as_text=True)
    # and the spent user_id cannot be tried again
    assert callback(client, user_id).status_code == 403


def test_keys_without_read_write_are_refused(app, container, store, shop_store, rsps):
    client = app.test_client()
    connection_id, user_id = started(client)
    assert callback(client, user_id, key_permissions="read").status_code == 400
    assert len(rsps.calls) == 0
    assert_nothing_saved(container, store)
    assert "Your store refused the keys" in client.get(f"/woocommerce/connected?c={connection_id}").get_data(
        as_text=True)


# ---------------------------------------------------------------- the form


@pytest.mark.parametrize("fields, field, message", [
    ({"store_url": "http://shop.example.com"}, "store_url", "must be served over https://"),
    ({"store_url": "https://192.168.1.20"}, "store_url", "private or local address"),
    ({"store_url": ""}, "store_url", "Enter your store&#39;s address."),
    ({"email": "not-an-email"}, "email", "is not an email address"),
    ({"password": "short"}, "password", "12 to 1024 characters"),
], ids=["http store", "private store", "no store", "bad email", "short password"])
def test_the_form_shows_each_problem_beside_its_field(app, store, fields, field, message):
    client = app.test_client()
    response = start(client, **fields)
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="{field}-error"' in text and message in text
    assert store.conn.execute("SELECT count(*) FROM pending_connections").fetchone()[0] == 0


def test_an_email_with_an_account_is_refused_beside_the_field(app, container, store):
    from tests.web import add_user

    add_user(container, EMAIL, container.shops.ids()[0])
    text = start(app.test_client(), email=EMAIL.upper()).get_data(as_text=True)
    assert 'id="email-error"' in text and "exists already" in text


def test_a_store_connected_already_is_refused(app, container, store, shop_store):
    client = app.test_client()
    _, user_id = started(client)
    assert callback(client, user_id).status_code == 200
    text = start(app.test_client(), email="someone.else@example.com").get_data(as_text=True)
    assert 'id="store_url-error"' in text and "connected already" in text


def test_without_a_public_url_the_page_says_it_cannot_connect(config_dict, clock):
    config = copy.deepcopy(config_dict)
    config["web"].pop("public_url", None)
    container = initialised(build(settings_from_dict(config), clock=clock), clock)
    client = create_app(container, start_worker=False).test_client()
    response = client.get("/woocommerce/connect")
    assert response.status_code == 503
    assert "[web] public_url" in response.get_data(as_text=True)


@pytest.mark.parametrize("public_url", ["http://connector.example.com", "connector.example.com",
                                        "https://connector.example.com/path"])
def test_a_public_url_that_is_not_an_https_origin_is_a_config_error(config_dict, public_url):
    config = copy.deepcopy(config_dict)
    config["web"]["public_url"] = public_url
    with pytest.raises(ConfigError, match=r"web\.public_url"):
        settings_from_dict(config)


def test_a_callback_while_no_public_url_is_set_is_refused_and_spends_nothing(config_dict, clock):
    from adapters.woocommerce_connect import UserIdSigner, start_connection

    container = initialised(build(settings_from_dict(config_dict), clock=clock), clock)
    s = container.open_store()
    try:
        user_id = start_connection(container.connections.pending(s), UserIdSigner(container.settings.web_secret_key),
                                   connection_id="c1", store_url=STORE, now=clock(), email=EMAIL,
                                   password_hash="scrypt:x")
        response = callback(create_app(container, start_worker=False).test_client(), user_id)
        assert response.status_code == 503 and "[web] public_url" in response.get_json()["detail"]
        assert not container.connections.state(s, "c1").taken
    finally:
        s.close()


@pytest.fixture(params=["in-memory fake", "sqlite"])
def pending_connections(request, container, clock):
    """Each implementation of the PendingConnections port."""
    from adapters.fakes import InMemoryPendingConnections
    from connector.connect_store import SqlitePendingConnections

    if request.param == "in-memory fake":
        yield InMemoryPendingConnections()
        return
    s = container.open_store()
    yield SqlitePendingConnections(s, clock)
    s.close()


def test_a_pending_connection_is_taken_once_then_keeps_its_outcome(pending_connections, clock):
    from adapters.woocommerce_connect import UserIdSigner, redeem_user_id, start_connection
    from adapters.woocommerce_connect import UserIdInvalid
    from connector.domain.model import ConnectionOutcome

    signer = UserIdSigner("k" * 32)
    user_id = start_connection(pending_connections, signer, connection_id="c1", store_url=STORE, now=clock(),
                               email=EMAIL, password_hash="scrypt:x")
    before = pending_connections.state("c1")
    assert (before.taken, before.outcome, before.pending.store_url) == (False, None, STORE)
    taken = redeem_user_id(pending_connections, signer, user_id, clock())
    assert (taken.connection_id, taken.email, taken.password_hash) == ("c1", EMAIL, "scrypt:x")
    with pytest.raises(UserIdInvalid):
        redeem_user_id(pending_connections, signer, user_id, clock())
    assert pending_connections.state("c1").taken and pending_connections.state("c1").outcome is None
    outcome = ConnectionOutcome(False, "unreachable", "could not reach the store")
    pending_connections.finish("c1", outcome)
    assert pending_connections.state("c1").outcome == outcome
    assert pending_connections.state("unknown") is None


def test_pending_connections_are_taken_once_even_by_two_connections(container, clock):
    """Two callbacks with one user_id in two processes: the UPDATE ... RETURNING lets one in."""
    from adapters.woocommerce_connect import UserIdSigner, start_connection
    from connector.connect_store import SqlitePendingConnections

    first, second = container.open_store(), container.open_store()
    try:
        signer = UserIdSigner("k" * 32)
        start_connection(SqlitePendingConnections(first, clock), signer, connection_id="c1", store_url=STORE,
                         now=clock(), email=EMAIL, password_hash="scrypt:x")
        nonce = first.conn.execute("SELECT nonce FROM pending_connections").fetchone()[0]
        taken = [SqlitePendingConnections(s, clock).take(nonce) for s in (first, second)]
        assert [t is not None for t in taken] == [True, False]
        assert taken[0].email == EMAIL and taken[0].password_hash == "scrypt:x"
        state = SqlitePendingConnections(second, clock).state("c1")
        assert state.taken and state.outcome is None
    finally:
        first.close()
        second.close()


def test_old_pending_connections_are_deleted_a_day_after_they_expired(container, clock):
    from adapters.woocommerce_connect import UserIdSigner, start_connection
    from connector.connect_store import SqlitePendingConnections

    s = container.open_store()
    try:
        pending = SqlitePendingConnections(s, clock)
        signer = UserIdSigner("k" * 32)
        start_connection(pending, signer, connection_id="old", store_url=STORE, now=clock(), email=EMAIL,
                         password_hash="scrypt:x")
        clock.advance(hours=24, minutes=29)
        start_connection(pending, signer, connection_id="new", store_url=STORE, now=clock(), email=EMAIL,
                         password_hash="scrypt:y")
        assert pending.state("old") is not None  # expired 23 h 59 min ago: its page still answers
        clock.advance(minutes=2)
        start_connection(pending, signer, connection_id="newer", store_url=STORE, now=clock(), email=EMAIL,
                         password_hash="scrypt:z")
        assert pending.state("old") is None and pending.state("new") is not None
    finally:
        s.close()
