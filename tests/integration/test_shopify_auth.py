"""Token exchange, refresh of expiring offline tokens (one refresh per shop at a time) and
the authorization-code grant, against `responses` fixtures shaped from shopify.md §1 and the
official query-HMAC vectors of §6.1."""
from __future__ import annotations

import copy
import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from adapters.shopify import query_hmac
from adapters.shopify_auth import (
    ACCESS_TOKEN_HEADER,
    ID_TOKEN_TYPE,
    OFFLINE_ACCESS_TOKEN_TYPE,
    REQUIRED_SCOPES,
    TOKEN_EXCHANGE_GRANT,
    InvalidOAuthRequest,
    InvalidSubjectToken,
    ReauthorizationNeeded,
    ShopifyOAuth,
    TokenKeeper,
    Tokens,
    admin_app_url,
    install_url,
    new_state,
    shop_domain,
    verify_callback,
    verify_install_request,
)
from adapters.http import HttpClient
from connector.domain.model import ProviderAuthError, ProviderOutcomeUnknown, ProviderUnavailable
from tests.support import FakeClock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
SHOP = "aurora-candles.myshopify.com"
TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
CLIENT_ID = "a61950a2cbd5f32876b0b55587ec7a27"
SECRET = "shpss_0123456789abcdef0123456789abcdef"
PREVIOUS_SECRET = "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"
SESSION_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJkZXN0IjoiaHR0cHM6Ly9hdXJvcmEifQ.c2lnbmF0dXJl"
NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)


def fx(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class Clock:
    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def http_clock() -> FakeClock:
    return FakeClock()


def oauth(clock: Clock, http_clock: FakeClock, **kwargs) -> ShopifyOAuth:
    return ShopifyOAuth(CLIENT_ID, SECRET, now=clock, sleep=http_clock.sleep, monotonic=http_clock.monotonic,
                        **kwargs)


def sent(call) -> dict:
    return json.loads(call.request.body)


# ---------------------------------------------------------------- token exchange


def test_token_exchange_sends_the_documented_body_and_reads_an_expiring_token(rsps, clock, http_clock):
    rsps.post(TOKEN_URL, json=fx("oauth_token_expiring"))

    tokens = oauth(clock, http_clock).exchange_session_token(SHOP, SESSION_TOKEN)

    assert sent(rsps.calls[0]) == {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": SESSION_TOKEN,
        "subject_token_type": ID_TOKEN_TYPE,
        "requested_token_type": OFFLINE_ACCESS_TOKEN_TYPE,
        "expiring": 1,
    }
    assert rsps.calls[0].request.headers["Content-Type"] == "application/json"
    answer = fx("oauth_token_expiring")
    assert tokens.access_token == answer["access_token"]
    assert tokens.refresh_token == answer["refresh_token"]
    assert tokens.expires_at == NOW + timedelta(seconds=3600)
    assert tokens.refresh_token_expires_at == NOW + timedelta(days=90)
    assert tokens.scopes == set(REQUIRED_SCOPES)
    assert tokens.missing_scopes(REQUIRED_SCOPES) == []
    assert answer["access_token"] not in repr(tokens) and answer["refresh_token"] not in repr(tokens)


def test_a_refused_session_token_is_a_distinct_error_for_the_401_retry(rsps, clock, http_clock):
    rsps.post(TOKEN_URL, status=400, json=fx("oauth_invalid_subject_token"))
    with pytest.raises(InvalidSubjectToken) as info:
        oauth(clock, http_clock).exchange_session_token(SHOP, SESSION_TOKEN)
    assert SESSION_TOKEN not in str(info.value) and SECRET not in str(info.value)
    assert len(rsps.calls) == 1  # a 400 is final


def test_other_400s_of_token_exchange_stay_plain_rejections(rsps, clock, http_clock):
    rsps.post(TOKEN_URL, status=400, json={"error": "invalid_client"})
    with pytest.raises(Exception) as info:
        oauth(clock, http_clock).exchange_session_token(SHOP, SESSION_TOKEN)
    assert not isinstance(info.value, InvalidSubjectToken)


def test_a_wrong_client_secret_is_an_auth_error(rsps, clock, http_clock):
    rsps.post(TOKEN_URL, status=401, json={"errors": "[API] Invalid API key or access token"})
    with pytest.raises(ProviderAuthError):
        oauth(clock, http_clock).exchange_session_token(SHOP, SESSION_TOKEN)


def test_a_non_expiring_answer_has_no_expiry(rsps, clock, http_clock):
    rsps.post(TOKEN_URL, json=fx("oauth_token_non_expiring"))
    tokens = oauth(clock, http_clock).exchange_session_token(SHOP, SESSION_TOKEN)
    assert tokens.expires_at is None and tokens.refresh_token is None
    assert not tokens.needs_refresh(NOW + timedelta(days=3650))
    # a write scope covers its read scope; other scopes are missing
    assert tokens.missing_scopes(["read_orders", "write_orders", "read_locations"]) == ["read_locations"]


@pytest.mark.parametrize("answer", [
    {"scope": "read_orders"},
    {"access_token": "", "scope": "read_orders"},
    {"access_token": "shpat_x", "expires_in": "3600"},
    {"access_token": "shpat_x", "expires_in": 0},
    {"access_token": "shpat_x", "refresh_token": ""},
    [],
])
def test_a_malformed_token_answer_is_a_response_error(rsps, clock, http_clock, answer):
    rsps.post(TOKEN_URL, json=answer)
    with pytest.raises(Exception) as info:
        oauth(clock, http_clock).exchange_session_token(SHOP, SESSION_TOKEN)
    assert type(info.value).__name__ == "ProviderResponseError"


def test_the_shop_must_be_a_myshopify_hostname_before_anything_is_sent(rsps, clock, http_clock):
    for bad in ("evil.example.com", f"{SHOP}.evil.com", f"https://{SHOP}", "a.b.myshopify.com"):
        with pytest.raises(ValueError):
            oauth(clock, http_clock).exchange_session_token(bad, SESSION_TOKEN)
    assert not rsps.calls


# ---------------------------------------------------------------- refresh


def test_refresh_sends_the_refresh_grant_and_is_retried_with_the_same_refresh_token(rsps, clock, http_clock):
    rsps.post(TOKEN_URL, status=503)
    rsps.post(TOKEN_URL, json=fx("oauth_token_expiring"))
    tokens = oauth(clock, http_clock).refresh(SHOP, "shprt_old")
    bodies = [sent(c) for c in rsps.calls]
    assert bodies == [{"client_id": CLIENT_ID, "client_secret": SECRET, "grant_type": "refresh_token",
                       "refresh_token": "shprt_old"}] * 2
    assert tokens.refresh_token == fx("oauth_token_expiring")["refresh_token"]


def test_a_refused_refresh_token_asks_for_reauthorization(rsps, clock, http_clock):
    rsps.post(TOKEN_URL, status=400, json=fx("oauth_invalid_grant"))
    with pytest.raises(ReauthorizationNeeded, match="invalid_grant"):
        oauth(clock, http_clock).refresh(SHOP, "shprt_old")


def test_a_code_exchange_whose_answer_was_lost_is_not_repeated(rsps, clock, http_clock):
    rsps.post(TOKEN_URL, status=502)
    with pytest.raises(ProviderOutcomeUnknown):
        oauth(clock, http_clock).exchange_code(SHOP, "0907a61c0c8d55e99db179b68161bc00")
    assert len(rsps.calls) == 1


# ---------------------------------------------------------------- TokenKeeper


class MemoryTokenStore:
    """The TokenStore port in memory, with the compare-and-set the SQLite store will do."""

    def __init__(self, tokens: dict[str, Tokens] | None = None):
        self.tokens = dict(tokens or {})
        self.lock = threading.Lock()
        self.saves = 0

    def load(self, shop):
        with self.lock:
            return self.tokens.get(shop)

    def save_if(self, shop, expected_refresh_token, new):
        with self.lock:
            current = self.tokens.get(shop)
            if (None if current is None else current.refresh_token) != expected_refresh_token:
                return False
            self.tokens[shop] = new
            self.saves += 1
            return True


def expiring(access: str, refresh: str, expires_at: datetime) -> Tokens:
    return Tokens(access_token=access, scopes=frozenset(REQUIRED_SCOPES), expires_at=expires_at,
                  refresh_token=refresh, refresh_token_expires_at=expires_at + timedelta(days=90))


def test_a_token_far_from_expiry_is_used_as_it_is(rsps, clock, http_clock):
    store = MemoryTokenStore({SHOP: expiring("shpat_old", "shprt_old", NOW + timedelta(seconds=61))})
    assert TokenKeeper(oauth(clock, http_clock), store, now=clock).access_token(SHOP) == "shpat_old"
    assert not rsps.calls


def test_a_token_within_sixty_seconds_of_expiry_is_refreshed_and_stored(rsps, clock, http_clock):
    store = MemoryTokenStore({SHOP: expiring("shpat_old", "shprt_old", NOW + timedelta(seconds=60))})
    rsps.post(TOKEN_URL, json=fx("oauth_token_expiring"))
    keeper = TokenKeeper(oauth(clock, http_clock), store, now=clock)

    assert keeper.access_token(SHOP) == fx("oauth_token_expiring")["access_token"]
    assert sent(rsps.calls[0])["refresh_token"] == "shprt_old"
    assert store.tokens[SHOP].refresh_token == fx("oauth_token_expiring")["refresh_token"]
    assert store.tokens[SHOP].expires_at == NOW + timedelta(hours=1)


def test_two_threads_needing_a_refresh_make_one_refresh_call(rsps, clock, http_clock):
    store = MemoryTokenStore({SHOP: expiring("shpat_old", "shprt_old", NOW + timedelta(seconds=5))})
    first_call_arrived, release = threading.Event(), threading.Event()

    def slow_refresh(request):
        first_call_arrived.set()
        assert release.wait(5)  # hold the refresh while the second thread asks for the token
        return 200, {"Content-Type": "application/json"}, json.dumps(fx("oauth_token_expiring"))

    rsps.add_callback("POST", TOKEN_URL, callback=slow_refresh)
    keeper = TokenKeeper(oauth(clock, http_clock), store, now=clock)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(keeper.access_token(SHOP))) for _ in range(2)]
    threads[0].start()
    assert first_call_arrived.wait(5)
    threads[1].start()
    threads[1].join(0.2)  # it is waiting on the shop's lock, not calling Shopify
    assert threads[1].is_alive()
    release.set()
    for thread in threads:
        thread.join(5)

    assert len(rsps.calls) == 1
    assert results == [fx("oauth_token_expiring")["access_token"]] * 2
    assert store.saves == 1


def test_shops_do_not_wait_for_each_other(rsps, clock, http_clock):
    other = "brooklyn-botanics.myshopify.com"
    store = MemoryTokenStore({SHOP: expiring("shpat_a", "shprt_a", NOW), other: expiring("shpat_b", "shprt_b", NOW)})
    release = threading.Event()

    def held(request):
        assert release.wait(5)
        return 200, {"Content-Type": "application/json"}, json.dumps(fx("oauth_token_expiring"))

    rsps.add_callback("POST", TOKEN_URL, callback=held)
    rsps.post(f"https://{other}/admin/oauth/access_token", json={**fx("oauth_token_expiring"), "access_token": "shpat_b2"})
    keeper = TokenKeeper(oauth(clock, http_clock), store, now=clock)
    blocked = threading.Thread(target=keeper.access_token, args=(SHOP,))
    blocked.start()
    try:
        assert keeper.access_token(other) == "shpat_b2"  # while SHOP's refresh is held
    finally:
        release.set()
        blocked.join(5)


def test_a_refresh_that_loses_the_compare_and_set_keeps_the_other_process_tokens(rsps, clock, http_clock):
    """Another process refreshed with the same refresh token and stored its answer first."""
    store = MemoryTokenStore({SHOP: expiring("shpat_old", "shprt_old", NOW + timedelta(seconds=30))})
    winner = expiring("shpat_other_process", "shprt_other_process", NOW + timedelta(hours=1))

    def refresh_while_another_process_stores(request):
        store.tokens[SHOP] = winner
        return 200, {"Content-Type": "application/json"}, json.dumps(fx("oauth_token_expiring"))

    rsps.add_callback("POST", TOKEN_URL, callback=refresh_while_another_process_stores)
    keeper = TokenKeeper(oauth(clock, http_clock), store, now=clock)

    assert keeper.access_token(SHOP) == "shpat_other_process"
    assert store.tokens[SHOP] is winner and store.saves == 0


def test_a_refused_refresh_after_another_process_refreshed_uses_its_tokens(rsps, clock, http_clock):
    store = MemoryTokenStore({SHOP: expiring("shpat_old", "shprt_old", NOW + timedelta(seconds=30))})
    winner = expiring("shpat_other_process", "shprt_other_process", NOW + timedelta(hours=1))

    def already_used(request):
        store.tokens[SHOP] = winner
        return 400, {"Content-Type": "application/json"}, json.dumps(fx("oauth_invalid_grant"))

    rsps.add_callback("POST", TOKEN_URL, callback=already_used)
    assert TokenKeeper(oauth(clock, http_clock), store, now=clock).access_token(SHOP) == "shpat_other_process"


def test_a_refused_refresh_with_nothing_newer_stored_asks_for_reauthorization(rsps, clock, http_clock):
    store = MemoryTokenStore({SHOP: expiring("shpat_old", "shprt_old", NOW + timedelta(seconds=30))})
    rsps.post(TOKEN_URL, status=400, json=fx("oauth_invalid_grant"))
    with pytest.raises(ReauthorizationNeeded):
        TokenKeeper(oauth(clock, http_clock), store, now=clock).access_token(SHOP)


def test_shopify_unreachable_during_the_margin_keeps_the_still_valid_token(rsps, clock, http_clock):
    store = MemoryTokenStore({SHOP: expiring("shpat_old", "shprt_old", NOW + timedelta(seconds=30))})
    rsps.post(TOKEN_URL, status=503)
    keeper = TokenKeeper(oauth(clock, http_clock), store, now=clock)
    assert keeper.access_token(SHOP) == "shpat_old"
    assert len(rsps.calls) == 3  # the client's attempts, all with the same refresh token
    clock.now = NOW + timedelta(seconds=31)  # now it has expired: the failure is the caller's
    with pytest.raises(ProviderUnavailable):
        keeper.access_token(SHOP)


@pytest.mark.parametrize("stored", [
    None,
    Tokens("shpat_old", expires_at=NOW - timedelta(seconds=1)),  # expiring, no refresh token
    Tokens("shpat_old", expires_at=NOW, refresh_token="shprt_old", refresh_token_expires_at=NOW),
], ids=["nothing-stored", "no-refresh-token", "refresh-token-expired"])
def test_without_a_refreshable_token_the_shop_must_authorize_again(rsps, clock, http_clock, stored):
    store = MemoryTokenStore({SHOP: stored} if stored else {})
    with pytest.raises(ReauthorizationNeeded):
        TokenKeeper(oauth(clock, http_clock), store, now=clock).access_token(SHOP)
    assert not rsps.calls


def test_exchange_stores_the_new_token_over_an_old_one(rsps, clock, http_clock):
    store = MemoryTokenStore({SHOP: Tokens("shpat_non_expiring")})
    rsps.post(TOKEN_URL, json=fx("oauth_token_expiring"))
    keeper = TokenKeeper(oauth(clock, http_clock), store, now=clock)
    keeper.exchange(SHOP, SESSION_TOKEN)
    assert store.tokens[SHOP].access_token == fx("oauth_token_expiring")["access_token"]
    assert keeper.access_token(SHOP) == fx("oauth_token_expiring")["access_token"]


def test_keeper_auth_sends_the_current_token_and_retries_a_401_only_for_a_newer_one(rsps, clock, http_clock):
    store = MemoryTokenStore({SHOP: expiring("shpat_first", "shprt_first", NOW + timedelta(hours=1))})
    keeper = TokenKeeper(oauth(clock, http_clock), store, now=clock)
    graphql = f"https://{SHOP}/admin/api/2026-04/graphql.json"

    def answer(request):
        if request.headers[ACCESS_TOKEN_HEADER] == "shpat_first":
            store.tokens[SHOP] = expiring("shpat_second", "shprt_second", NOW + timedelta(hours=1))
            return 401, {"Content-Type": "application/json"}, '{"errors":"[API] Invalid API key or access token"}'
        return 200, {"Content-Type": "application/json"}, '{"data":{}}'

    rsps.add_callback("POST", graphql, callback=answer)
    client = HttpClient(base_url=f"https://{SHOP}", auth=keeper.auth(SHOP), sleep=http_clock.sleep,
                        monotonic=http_clock.monotonic)
    assert client.post_json("/admin/api/2026-04/graphql.json", {"query": "{shop{id}}"}, retry=True) == {"data": {}}
    assert [c.request.headers[ACCESS_TOKEN_HEADER] for c in rsps.calls] == ["shpat_first", "shpat_second"]

    rsps.replace("POST", graphql, status=401, json={"errors": "[API] Invalid API key or access token"})
    with pytest.raises(ProviderAuthError) as info:
        client.post_json("/admin/api/2026-04/graphql.json", {"query": "{shop{id}}"}, retry=True)
    assert "shpat_second" not in str(info.value)
    assert len(rsps.calls) == 3  # the stored token did not change: no second try


def test_tokens_round_trip_through_a_document(clock):
    tokens = expiring("shpat_x", "shprt_x", NOW + timedelta(hours=1))
    assert Tokens.from_document(json.loads(json.dumps(tokens.as_document()))) == tokens
    assert Tokens.from_document(Tokens("shpat_y").as_document()) == Tokens("shpat_y")


# ---------------------------------------------------------------- authorization-code grant

# shopify.md §6.1 Q1/Q2: secret "hush", literal HMACs from Shopify's Python library and docs.
Q1 = {"shop": "some-shop.myshopify.com", "code": "a94a110d86d2452eb3e2af4cfb8a3828", "timestamp": "1337178173",
      "hmac": "2cb1a277650a659f1b11e92a4a64275b128e037f2c3390e3c8fd2d8721dac9e2"}
Q2 = {"code": "0907a61c0c8d55e99db179b68161bc00", "shop": "some-shop.myshopify.com", "state": "0.6784241404160823",
      "timestamp": "1337178173", "hmac": "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf"}
Q_NOW = 1337178173 + 30


def test_the_official_callback_vector_verifies():
    callback = verify_callback(Q2, secrets=("hush",), expected_state="0.6784241404160823", now=Q_NOW)
    assert (callback.shop, callback.code) == ("some-shop.myshopify.com", "0907a61c0c8d55e99db179b68161bc00")


def test_the_official_install_request_vector_verifies_also_under_the_previous_secret():
    assert verify_install_request(Q1, secrets=("new-secret-after-rotation", "hush"), now=Q_NOW) == Q1["shop"]


@pytest.mark.parametrize("change, problem", [
    ({"hmac": "0" * 64}, "HMAC"),
    ({"shop": "evil-shop.myshopify.com"}, "HMAC"),  # signed for another shop
    ({"hmac": None}, "HMAC"),
    ({"state": "0.1234"}, "HMAC"),  # the state is signed too
], ids=["wrong-hmac", "tampered-shop", "no-hmac", "tampered-state"])
def test_a_tampered_callback_is_refused(change, problem):
    params = {k: v for k, v in {**Q2, **change}.items() if v is not None}
    with pytest.raises(InvalidOAuthRequest, match=problem):
        verify_callback(params, secrets=("hush",), expected_state=Q2["state"], now=Q_NOW)


@pytest.mark.parametrize("expected_state", [None, "", "0.6784241404160824"])
def test_the_callback_state_must_be_the_nonce_this_browser_was_given(expected_state):
    with pytest.raises(InvalidOAuthRequest, match="state"):
        verify_callback(Q2, secrets=("hush",), expected_state=expected_state, now=Q_NOW)


@pytest.mark.parametrize("offset", [-91, 91])
def test_a_stale_or_future_timestamp_is_refused(offset):
    with pytest.raises(InvalidOAuthRequest, match="timestamp"):
        verify_callback(Q2, secrets=("hush",), expected_state=Q2["state"], now=1337178173 + offset)


def signed(params: dict, secret: str = SECRET) -> dict:
    return {**params, "hmac": query_hmac(secret, params)}


@pytest.mark.parametrize("shop", [
    "some-shop.myshopify.com.evil.com",
    "foo.bar.myshopify.com",
    "%0a123.myshopify.com",
    "https://some-shop.myshopify.com",
    "some-shop.myshopify.io",
    " some-shop.myshopify.com",
    "-shop.myshopify.com",
])
def test_a_correctly_signed_callback_for_a_non_shop_host_is_refused(shop):
    params = signed({"code": "abc", "shop": shop, "state": "n0nce", "timestamp": str(Q_NOW)})
    with pytest.raises(InvalidOAuthRequest, match="shop"):
        verify_callback(params, secrets=(SECRET,), expected_state="n0nce", now=Q_NOW)


def test_a_signed_callback_without_a_code_is_refused():
    params = signed({"shop": SHOP, "state": "n0nce", "timestamp": str(Q_NOW)})
    with pytest.raises(InvalidOAuthRequest, match="code"):
        verify_callback(params, secrets=(SECRET,), expected_state="n0nce", now=Q_NOW)


def test_install_url_asks_for_an_offline_token_with_a_state_nonce():
    state = new_state()
    url = install_url(SHOP, client_id=CLIENT_ID, scopes=REQUIRED_SCOPES,
                      redirect_uri="https://connector.example.com/shopify/auth/callback", state=state)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", SHOP, "/admin/oauth/authorize")
    assert parse_qsl(parts.query, keep_blank_values=True) == [
        ("client_id", CLIENT_ID),
        ("scope", ",".join(REQUIRED_SCOPES)),
        ("redirect_uri", "https://connector.example.com/shopify/auth/callback"),
        ("state", state),
        ("grant_options[]", ""),
    ]
    assert len(state) >= 32 and new_state() != state


@pytest.mark.parametrize("kwargs", [
    {"shop": "evil.example.com"},
    {"redirect_uri": "http://connector.example.com/cb"},
    {"state": ""},
])
def test_install_url_refuses_bad_input(kwargs):
    args = {"shop": SHOP, "client_id": CLIENT_ID, "scopes": REQUIRED_SCOPES,
            "redirect_uri": "https://connector.example.com/cb", "state": "n0nce", **kwargs}
    shop = args.pop("shop")
    with pytest.raises(ValueError):
        install_url(shop, **args)


def test_the_whole_code_grant_ends_with_a_stored_expiring_token(rsps, clock, http_clock):
    state = new_state()
    query = signed({"code": "0907a61c0c8d55e99db179b68161bc00", "host": "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvYXVyb3JhLWNhbmRsZXM",
                    "shop": SHOP, "state": state, "timestamp": str(int(NOW.timestamp()))})
    rsps.post(TOKEN_URL, json=fx("oauth_token_expiring"))
    callback = verify_callback(query, secrets=(SECRET, PREVIOUS_SECRET), expected_state=state, now=NOW.timestamp())
    keeper = TokenKeeper(oauth(clock, http_clock), MemoryTokenStore(), now=clock)
    tokens = oauth(clock, http_clock).exchange_code(callback.shop, callback.code)
    keeper.adopt(callback.shop, tokens)

    assert sent(rsps.calls[0]) == {"client_id": CLIENT_ID, "client_secret": SECRET,
                                   "code": "0907a61c0c8d55e99db179b68161bc00", "expiring": 1}
    assert tokens.missing_scopes(REQUIRED_SCOPES) == []
    assert keeper.access_token(SHOP) == fx("oauth_token_expiring")["access_token"]
    assert admin_app_url(callback.host, CLIENT_ID) == f"https://admin.shopify.com/store/aurora-candles/apps/{CLIENT_ID}/"


@pytest.mark.parametrize("host", ["ZXZpbC5leGFtcGxlLmNvbQ", "not base64!", "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvLi4vZXZpbA"])
def test_admin_app_url_accepts_only_shopify_admin_hosts(host):
    with pytest.raises(InvalidOAuthRequest):
        admin_app_url(host, CLIENT_ID)


def test_shop_domain_normalises_case_and_refuses_anything_else():
    assert shop_domain("Aurora-Candles.MyShopify.com") == SHOP
    assert shop_domain("aurora-candles.myshopify.com/admin") is None
    assert shop_domain(None) is None
