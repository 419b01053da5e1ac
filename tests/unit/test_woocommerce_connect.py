"""Connecting a WooCommerce store, the parts without a network: the store address a creator
types, our webhook delivery URL, the wc-auth authorize URL, the signed one-time user_id
and the callback body (woocommerce.md §1.6, §3; app-ui.md §4)."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.fakes import InMemoryPendingConnections
from adapters.woocommerce_connect import (
    CallbackInvalid,
    KeysRefused,
    StoreUnreachable,
    StoreUrlInvalid,
    UserIdInvalid,
    UserIdSigner,
    WebhooksRefused,
    authorize_url,
    check_delivery_url,
    check_public_address,
    parse_callback,
    redeem_user_id,
    start_connection,
    validate_store_url,
)
from connector.config import normalise_store_url
from tests.conftest import fixture_bytes, fixture_json

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
SERVER_SECRET = b"0123456789abcdef0123456789abcdef-server"


# ---------------------------------------------------------------- the store address


@pytest.mark.parametrize("typed, expected", [
    ("https://shop.example.com", "https://shop.example.com"),
    ("shop.example.com", "https://shop.example.com"),
    ("  HTTPS://Shop.Example.COM/  ", "https://shop.example.com"),
    ("https://shop.example.com:8443/", "https://shop.example.com:8443"),
    ("https://shop.example.com:443", "https://shop.example.com"),
    ("https://example.com/store/", "https://example.com/store"),  # WordPress in a sub-directory
    ("https://shop.example.com/?page_id=2#top", "https://shop.example.com"),
    ("https://shop.example.com/wp-admin/admin.php?page=wc-settings&tab=advanced", "https://shop.example.com"),
    ("https://example.com/store/wp-admin/", "https://example.com/store"),
    ("https://shop.example.com/wp-json/wc/v3/orders", "https://shop.example.com"),
    ("https://shop.example.com/wp-login.php", "https://shop.example.com"),
    ("https://bücher.example/", "https://xn--bcher-kva.example"),
    ("https://93.184.216.34/", "https://93.184.216.34"),
])
def test_a_typed_store_address_becomes_its_https_home(typed, expected):
    assert validate_store_url(typed) == expected


@pytest.mark.parametrize("typed, says", [
    ("", "enter your store's address"),
    ("   ", "enter your store's address"),
    ("http://shop.example.com", "https://"),
    ("HTTP://shop.example.com/", "https://"),
    ("ftp://shop.example.com", "must start with https://"),
    ("https://admin:pw@shop.example.com", "user name or password"),
    ("https://shop.example.com:99999", "invalid port"),
    ("https:///path-only", "no host name"),
    ("https://shop_example!.com", "not valid"),
    ("https://localhost", "not a public host name"),
    ("https://shop.localhost:8443", "not a public host name"),
    ("https://printer.local", "not a public host name"),
    ("https://intranet", "not a public host name"),
    ("https://127.0.0.1", "private or local address"),
    ("https://10.1.2.3", "private or local address"),
    ("https://172.16.0.9", "private or local address"),
    ("https://192.168.1.20:8443", "private or local address"),
    ("https://169.254.169.254/latest/meta-data", "private or local address"),
    ("https://100.64.0.1", "private or local address"),
    ("https://[::1]/", "private or local address"),
    ("https://[fd00::1]/", "private or local address"),
    ("https://0.0.0.0", "private or local address"),
    ("https://shop.example.com/a b", "spaces"),
])
def test_a_store_address_that_cannot_be_connected_is_refused_plainly(typed, says):
    with pytest.raises(StoreUrlInvalid, match=says):
        validate_store_url(typed)


@pytest.mark.parametrize("typed, expected", [
    ("https://localhost:8443", "https://localhost:8443"),
    ("127.0.0.1:9000", "https://127.0.0.1:9000"),
    ("https://[::1]:8443/shop", "https://[::1]:8443/shop"),
])
def test_local_stores_are_allowed_only_in_sandbox_mode(typed, expected):
    assert validate_store_url(typed, allow_private=True) == expected
    with pytest.raises(StoreUrlInvalid):
        validate_store_url(typed)


def test_http_is_refused_even_in_sandbox_mode():
    with pytest.raises(StoreUrlInvalid, match="https://"):
        validate_store_url("http://127.0.0.1:8080", allow_private=True)


@given(st.sampled_from(["shop.example.com", "Example.org", "a-b.co.uk"]),
       st.sampled_from(["", "/", "/store", "/Store/Sub/"]),
       st.sampled_from(["", ":8443"]))
def test_a_validated_address_is_normalised_and_validates_to_itself(host, path, port):
    once = validate_store_url(f"https://{host}{port}{path}")
    assert once == normalise_store_url(once)  # compared like X-WC-Webhook-Source
    assert validate_store_url(once) == once


def test_a_host_name_resolving_to_a_private_address_is_refused_and_an_unknown_one_is_unreachable():
    check_public_address("https://shop.example.com", resolve=lambda host, port: ["93.184.216.34", "2606:2800::1"])
    with pytest.raises(StoreUrlInvalid, match=r"resolves to a private or local address \(10\.0\.0\.5\)"):
        check_public_address("https://shop.example.com", resolve=lambda host, port: ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(StoreUrlInvalid, match="private or local"):
        check_public_address("https://rebind.example.com", resolve=lambda host, port: ["fe80::1%eth0"])

    def unknown(host, port):
        raise OSError(-2, "Name or service not known")

    with pytest.raises(StoreUnreachable, match="could not find shop.example.com"):
        check_public_address("https://shop.example.com", resolve=unknown)
    asked = []
    check_public_address("https://shop.example.com:8443", resolve=lambda host, port: asked.append((host, port)) or
                         ["93.184.216.34"])
    assert asked == [("shop.example.com", 8443)]


# ---------------------------------------------------------------- our delivery URL (§1.6)


@pytest.mark.parametrize("url", ["https://connector.example.com/webhooks/woocommerce",
                                 "https://connector.example.com:8080/webhooks/woocommerce"])
def test_a_public_https_delivery_url_on_an_allowed_port_is_accepted(url):
    assert check_delivery_url(url) == url


@pytest.mark.parametrize("url, says", [
    ("http://connector.example.com/webhooks/woocommerce", "must be https"),
    ("https://connector.example.com:5000/webhooks/woocommerce", "ports 443 and 8080"),
    ("https://127.0.0.1/webhooks/woocommerce", "private or local"),
    ("https://192.168.1.5:8080/webhooks/woocommerce", "private or local"),
    ("https://localhost/webhooks/woocommerce", "not a public host name"),
])
def test_a_delivery_url_wordpress_would_not_deliver_to_is_refused_before_anything_is_created(url, says):
    with pytest.raises(WebhooksRefused, match=says):
        check_delivery_url(url)


# ---------------------------------------------------------------- the authorize URL (§3)


def test_the_authorize_url_carries_every_parameter_url_encoded():
    url = authorize_url("https://example.com/store", app_name="Micro-fulfillment & co", user_id="n.c.1.s",
                        return_url="https://connector.example.com/woocommerce/return?step=2",
                        callback_url="https://connector.example.com/woocommerce/callback")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "example.com", "/store/wc-auth/v1/authorize")
    assert "&co" not in parts.query and "?step" not in parts.query  # values are encoded
    assert parse_qs(parts.query) == {
        "app_name": ["Micro-fulfillment & co"], "scope": ["read_write"], "user_id": ["n.c.1.s"],
        "return_url": ["https://connector.example.com/woocommerce/return?step=2"],
        "callback_url": ["https://connector.example.com/woocommerce/callback"]}


def test_the_plain_permalink_form_routes_through_query_variables():
    url = authorize_url("https://shop.example.com", app_name="App", user_id="u",
                        return_url="https://c.example.com/r", callback_url="https://c.example.com/cb",
                        plain_permalinks=True)
    parts = urlsplit(url)
    assert parts.path == "/"
    query = parse_qs(parts.query)
    assert query["wc-auth-version"] == ["1"] and query["wc-auth-route"] == ["authorize"]
    assert query["scope"] == ["read_write"] and query["callback_url"] == ["https://c.example.com/cb"]


@pytest.mark.parametrize("changes, says", [
    ({"callback_url": "http://c.example.com/cb"}, "https:// callback_url"),
    ({"return_url": "/relative"}, "absolute"),
    ({"app_name": " "}, "app_name"),
])
def test_an_authorize_url_wc_auth_would_refuse_is_not_built(changes, says):
    args = {"app_name": "App", "user_id": "u", "return_url": "https://c.example.com/r",
            "callback_url": "https://c.example.com/cb"} | changes
    with pytest.raises(ValueError, match=says):
        authorize_url("https://shop.example.com", **args)


# ---------------------------------------------------------------- the one-time user_id


def started(pending=None, signer=None, now=NOW, **kw):
    pending = pending if pending is not None else InMemoryPendingConnections()
    signer = signer or UserIdSigner(SERVER_SECRET)
    token = start_connection(pending, signer, connection_id="conn-7", store_url="https://shop.example.com",
                             now=now, **kw)
    return pending, signer, token


def test_a_user_id_redeems_its_pending_connection_once():
    pending, signer, token = started()
    assert token.count(".") == 3 and "conn-7" in token
    taken = redeem_user_id(pending, signer, token, NOW + timedelta(minutes=5))
    assert (taken.connection_id, taken.store_url) == ("conn-7", "https://shop.example.com")
    assert taken.expires_at == NOW + timedelta(minutes=30)
    with pytest.raises(UserIdInvalid, match="already completed"):
        redeem_user_id(pending, signer, token, NOW + timedelta(minutes=6))


def test_every_user_id_is_different_even_for_the_same_connection():
    pending = InMemoryPendingConnections()
    signer = UserIdSigner(SERVER_SECRET)
    tokens = {started(pending, signer)[2] for _ in range(50)}
    assert len(tokens) == 50


def test_an_expired_user_id_is_refused():
    pending, signer, token = started(ttl=timedelta(minutes=10))
    with pytest.raises(UserIdInvalid, match="expired"):
        redeem_user_id(pending, signer, token, NOW + timedelta(minutes=10))
    assert signer.verify(token, NOW + timedelta(minutes=9, seconds=59)).connection_id == "conn-7"
    with pytest.raises(UserIdInvalid, match="expired"):
        signer.verify(token, NOW + timedelta(minutes=10))


def _flip(char: str) -> str:
    return "A" if char != "A" else "B"


@pytest.mark.parametrize("part", [0, 1, 2, 3])
def test_a_user_id_changed_anywhere_is_refused_and_consumes_nothing(part):
    pending, signer, token = started()
    pieces = token.split(".")
    pieces[part] = pieces[part][:-1] + _flip(pieces[part][-1]) if part != 2 else str(int(pieces[2]) + 3600)
    with pytest.raises(UserIdInvalid, match="not valid"):
        redeem_user_id(pending, signer, ".".join(pieces), NOW)
    assert redeem_user_id(pending, signer, token, NOW).connection_id == "conn-7"  # the real one still works


@pytest.mark.parametrize("forged", [None, 123, "", "abc", "a.b.c", "a.b.c.d.e", "x" * 300, "é.é.1.é"])
def test_a_malformed_user_id_is_refused(forged):
    pending, signer, _ = started()
    with pytest.raises(UserIdInvalid, match="not valid"):
        redeem_user_id(pending, signer, forged, NOW)


def test_a_user_id_signed_with_another_servers_secret_is_refused():
    pending, _, token = started(signer=UserIdSigner(b"another-server-secret-of-32-bytes!!"))
    with pytest.raises(UserIdInvalid, match="not valid"):
        redeem_user_id(pending, UserIdSigner(SERVER_SECRET), token, NOW)


def test_a_short_signing_secret_and_an_odd_connection_id_are_refused():
    with pytest.raises(ValueError, match="32 bytes"):
        UserIdSigner("short")
    with pytest.raises(ValueError, match="connection id"):
        UserIdSigner(SERVER_SECRET).issue("conn.7", NOW)


def test_two_callbacks_racing_with_one_user_id_redeem_it_once():
    pending, signer, token = started()
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def callback():
        barrier.wait()
        try:
            redeem_user_id(pending, signer, token, NOW)
            outcomes.append("ok")
        except UserIdInvalid:
            outcomes.append("refused")

    threads = [threading.Thread(target=callback) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["refused"] * 7


# ---------------------------------------------------------------- the callback body (§3)


def test_the_documented_callback_body_gives_the_keys():
    keys = parse_callback(fixture_bytes("woocommerce", "wc_auth_callback.json"))
    assert (keys.key_id, keys.user_id, keys.key_permissions) == (1, "123", "read_write")
    assert keys.consumer_key.startswith("ck_") and keys.consumer_secret.startswith("cs_")
    assert keys.consumer_secret not in repr(keys) and keys.consumer_key not in repr(keys)


@pytest.mark.parametrize("change, says", [
    ({"key_id": 0}, "key_id"),
    ({"key_id": True}, "key_id"),
    ({"key_id": None}, "key_id"),
    ({"user_id": 123}, "user_id"),
    ({"user_id": ""}, "user_id"),
    ({"consumer_key": None}, "consumer_key"),
    ({"consumer_key": "cs_fedcba9876543210fedcba9876543210fedcba98"}, "consumer_key"),
    ({"consumer_key": "ck_short"}, "consumer_key"),
    ({"consumer_secret": "ck_0123456789abcdef0123456789abcdef01234567"}, "consumer_secret"),
    ({"consumer_secret": "cs_0123456789abcdef0123456789abcdef0123456<"}, "consumer_secret"),
])
def test_a_callback_body_missing_or_mangling_a_field_is_refused_without_quoting_keys(change, says):
    body = fixture_json("woocommerce", "wc_auth_callback.json") | change
    with pytest.raises(CallbackInvalid, match=says) as info:
        parse_callback(json.dumps(body))
    assert "0123456789abcdef" not in str(info.value) and "fedcba" not in str(info.value)


@pytest.mark.parametrize("permissions", ["read", "write", "READ_WRITE", None, 7])
def test_keys_without_read_write_permission_are_refused(permissions):
    body = fixture_json("woocommerce", "wc_auth_callback.json") | {"key_permissions": permissions}
    with pytest.raises(KeysRefused, match="needs read_write"):
        parse_callback(json.dumps(body).encode())


@pytest.mark.parametrize("body", [b"", b"key_id=1&user_id=2", b"[1, 2]", b"\xff\xfe",
                                  b'{"key_id": 1' + b" " * 9000 + b"}"])
def test_a_callback_that_is_not_a_json_object_is_refused(body):
    with pytest.raises(CallbackInvalid):
        parse_callback(body)


def test_a_string_key_id_of_digits_is_read_as_its_number():
    body = fixture_json("woocommerce", "wc_auth_callback.json") | {"key_id": "42"}
    assert parse_callback(json.dumps(body)).key_id == 42
