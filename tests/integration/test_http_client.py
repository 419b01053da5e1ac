"""adapters.http: retries, backoff, auth refresh, JSON decoding, pagination,
pacing and secret hygiene. Nothing here sleeps for real or touches a network."""
from __future__ import annotations

import email.utils
import json
import logging

import pytest
import requests
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import FakeClock

from adapters.http import (
    HttpClient,
    RefreshingToken,
    StaticToken,
    paginate_cursor,
    paginate_links,
    paginate_pages,
)
from connector.domain.model import (
    ProviderAuthError,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
)

BASE = "https://api.example-3pl.test"
URL = BASE + "/v1/things"
TOKEN = "pat_live_9f8e7d6c5b4a39281706"



@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(clock: FakeClock, **kw) -> HttpClient:
    kw.setdefault("auth", StaticToken(token=TOKEN))
    return HttpClient(
        base_url=BASE,
        provider="acme3pl",
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        wall_time=clock.wall_time,
        random=lambda: 0.5,
        **kw,
    )


# ---------------------------------------------------------------- retries


def test_429_with_retry_after_seconds_then_success(rsps, clock):
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "7"}, json={"message": "slow down"})
    rsps.add(responses.GET, URL, json={"ok": True})
    assert make_client(clock).get_json("/v1/things") == {"ok": True}
    assert clock.sleeps == [7.0]
    assert len(rsps.calls) == 2


def test_429_with_retry_after_http_date(rsps, clock):
    when = email.utils.formatdate(clock.wall_time() + 12, usegmt=True)
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": when})
    rsps.add(responses.GET, URL, json=[])
    assert make_client(clock).get_json("/v1/things") == []
    assert clock.sleeps == [pytest.approx(12.0, abs=1.0)]


def test_429_with_shipbob_x_retry_after(rsps, clock):
    rsps.add(
        responses.GET,
        URL,
        status=429,
        headers={"x-retry-after": "25", "x-remaining-calls": "0"},
        json={"statusCode": 429, "message": "Rate limit is exceeded. Try again in 25 seconds."},
    )
    rsps.add(responses.GET, URL, json={"ok": 1})
    assert make_client(clock).get_json("/v1/things") == {"ok": 1}
    assert clock.sleeps == [25.0]


def test_retry_after_is_capped(rsps, clock):
    rsps.add(responses.GET, URL, status=503, headers={"Retry-After": "86400"})
    rsps.add(responses.GET, URL, json={})
    make_client(clock, backoff_cap=30.0).get_json("/v1/things")
    assert clock.sleeps == [120.0]  # backoff_cap * 4


def test_500_then_success_uses_jittered_backoff(rsps, clock):
    rsps.add(responses.GET, URL, status=500, body="oops")
    rsps.add(responses.GET, URL, json={"ok": True})
    assert make_client(clock, backoff_base=0.5).get_json("/v1/things") == {"ok": True}
    assert clock.sleeps == [0.25]  # random() 0.5 * min(cap, 0.5 * 2**0)


def test_all_5xx_raise_unavailable_after_max_attempts(rsps, clock):
    for status in (500, 502, 503, 504, 503):
        rsps.add(responses.GET, URL, status=status)
    with pytest.raises(ProviderUnavailable) as info:
        make_client(clock, max_attempts=5, backoff_base=1.0, backoff_cap=3.0).get_json("/v1/things")
    err = info.value
    assert len(rsps.calls) == 5
    assert err.attempts == 5 and err.status == 503
    msg = str(err)
    assert "acme3pl" in msg and "GET" in msg and "/v1/things" in msg and "503" in msg and "5 attempts" in msg
    # exponential, capped, full jitter (random() fixed at 0.5)
    assert clock.sleeps == [0.5, 1.0, 1.5, 1.5]


@pytest.mark.parametrize(
    "exc",
    [requests.ConnectTimeout("connect timed out"), requests.ReadTimeout("read timed out"), requests.ConnectionError("reset")],
    ids=["connect-timeout", "read-timeout", "connection-error"],
)
def test_network_error_then_success(rsps, clock, exc):
    rsps.add(responses.GET, URL, body=exc)
    rsps.add(responses.GET, URL, json={"ok": True})
    assert make_client(clock).get_json("/v1/things") == {"ok": True}
    assert len(rsps.calls) == 2


def test_network_errors_exhausted(rsps, clock):
    rsps.add(responses.GET, URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ProviderUnavailable) as info:
        make_client(clock, max_attempts=3).get_json("/v1/things")
    assert len(rsps.calls) == 3
    assert info.value.status is None and "ReadTimeout" in str(info.value)


def test_404_is_rejected_without_retry(rsps, clock):
    rsps.add(responses.GET, URL, status=404, json={"title": "Not Found", "detail": "no such thing"})
    with pytest.raises(ProviderRejected) as info:
        make_client(clock).get_json("/v1/things")
    assert not isinstance(info.value, ProviderAuthError)
    assert len(rsps.calls) == 1 and clock.sleeps == []
    assert info.value.status == 404 and "no such thing" in str(info.value)


def test_422_body_excerpt_is_short(rsps, clock):
    rsps.add(responses.POST, URL, status=422, body="x" * 5000, content_type="text/plain")
    with pytest.raises(ProviderRejected) as info:
        make_client(clock).request("POST", "/v1/things", json={})
    assert len(info.value.body_excerpt) <= 300


def test_post_is_not_retried_on_503(rsps, clock):
    rsps.add(responses.POST, URL, status=503)
    rsps.add(responses.POST, URL, json={"id": 1}, status=201)
    with pytest.raises(ProviderOutcomeUnknown) as info:
        make_client(clock).request("POST", "/v1/things", json={"a": 1})
    assert len(rsps.calls) == 1 and info.value.attempts == 1
    assert "not retried" in str(info.value)


def test_post_is_not_retried_on_read_timeout(rsps, clock):
    rsps.add(responses.POST, URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ProviderOutcomeUnknown):
        make_client(clock).request("POST", "/v1/things", json={"a": 1})
    assert len(rsps.calls) == 1


def test_post_with_retry_true_is_retried(rsps, clock):
    rsps.add(responses.POST, URL, status=503)
    rsps.add(responses.POST, URL, json={"cursor": "abc"})
    assert make_client(clock).post_json("/v1/things", {"q": 1}, retry=True) == {"cursor": "abc"}
    assert len(rsps.calls) == 2


@pytest.mark.parametrize("first", ["429", "connect-timeout"])
def test_post_is_retried_when_never_processed(rsps, clock, first):
    if first == "429":
        rsps.add(responses.POST, URL, status=429, headers={"x-retry-after": "3"})
    else:
        rsps.add(responses.POST, URL, body=requests.ConnectTimeout("connect timed out"))
    rsps.add(responses.POST, URL, json={"id": 7}, status=201)
    assert make_client(clock).post_json("/v1/things", {"a": 1}) == {"id": 7}
    assert len(rsps.calls) == 2


def test_put_is_retried_by_default(rsps, clock):
    rsps.add(responses.PUT, URL, status=502)
    rsps.add(responses.PUT, URL, json={})
    make_client(clock).request("PUT", "/v1/things", json={})
    assert len(rsps.calls) == 2


def test_redirect_is_not_followed(rsps, clock):
    rsps.add(responses.GET, URL, status=302, headers={"Location": "https://evil.example/steal"})
    with pytest.raises(ProviderResponseError):
        make_client(clock).get_json("/v1/things")
    assert len(rsps.calls) == 1


# ---------------------------------------------------------------- auth


def test_401_refreshes_once_then_succeeds(rsps, clock):
    tokens = iter(["tok-first-1111", "tok-second-2222"])
    auth = RefreshingToken(lambda: (next(tokens), 3600), monotonic=clock.monotonic)
    rsps.add(responses.GET, URL, status=401, json={"message": "expired"})
    rsps.add(responses.GET, URL, json={"ok": True})
    assert make_client(clock, auth=auth).get_json("/v1/things") == {"ok": True}
    assert [c.request.headers["Authorization"] for c in rsps.calls] == [
        "Bearer tok-first-1111",
        "Bearer tok-second-2222",
    ]
    assert auth.fetch_count == 2 and clock.sleeps == []


def test_401_twice_raises_auth_error(rsps, clock):
    tokens = iter(["tok-first-1111", "tok-second-2222", "tok-third-3333"])
    auth = RefreshingToken(lambda: (next(tokens), None), monotonic=clock.monotonic)
    rsps.add(responses.GET, URL, status=401)
    with pytest.raises(ProviderAuthError) as info:
        make_client(clock, auth=auth).get_json("/v1/things")
    assert len(rsps.calls) == 2 and info.value.status == 401
    assert isinstance(info.value, ProviderRejected)


def test_401_with_static_token_is_final(rsps, clock):
    rsps.add(responses.GET, URL, status=401)
    with pytest.raises(ProviderAuthError):
        make_client(clock).get_json("/v1/things")
    assert len(rsps.calls) == 1


def test_403_is_an_auth_error_without_retry(rsps, clock):
    rsps.add(responses.GET, URL, status=403, json={"detail": "missing scope inventory_read"})
    with pytest.raises(ProviderAuthError):
        make_client(clock).get_json("/v1/things")
    assert len(rsps.calls) == 1


def test_refreshing_token_caches_until_expiry_minus_margin(clock):
    issued = []

    def fetch():
        issued.append(f"tok-{len(issued)}-abcd")
        return issued[-1], 120.0

    auth = RefreshingToken(fetch, margin=60.0, monotonic=clock.monotonic)
    headers: dict[str, str] = {}
    auth.apply(headers)
    assert headers["Authorization"] == "Bearer tok-0-abcd"
    clock.t += 59
    auth.apply(headers)
    assert auth.fetch_count == 1
    clock.t += 2  # 61 s: past 120 - 60
    auth.apply(headers)
    assert headers["Authorization"] == "Bearer tok-1-abcd" and auth.fetch_count == 2
    assert auth.invalidate() is True
    auth.apply(headers)
    assert auth.fetch_count == 3


def test_refreshing_token_without_expiry_is_fetched_once(clock):
    auth = RefreshingToken(lambda: ("forever-token", None), header="X-Api-Key", prefix="", monotonic=clock.monotonic)
    headers: dict[str, str] = {}
    for _ in range(3):
        clock.t += 10_000
        auth.apply(headers)
    assert headers == {"X-Api-Key": "forever-token"} and auth.fetch_count == 1


def test_static_token_custom_header(rsps, clock):
    rsps.add(responses.GET, URL, json={})
    make_client(clock, auth=StaticToken(header="Api-Key", prefix="", token="sm-key-123456")).get_json("/v1/things")
    sent = rsps.calls[0].request.headers
    assert sent["Api-Key"] == "sm-key-123456" and "Authorization" not in sent
    assert "sm-key" not in repr(StaticToken(header="Api-Key", prefix="", token="sm-key-123456"))


# ---------------------------------------------------------------- json


@pytest.mark.parametrize("body", ['{"items": [1, 2}', '{"a": tru}', "{'a': 1}", '[1,,2]', '{"a": "\\q"}'])
def test_malformed_json_raises_response_error(rsps, clock, body):
    rsps.add(responses.GET, URL, body=body, content_type="application/json")
    with pytest.raises(ProviderResponseError) as info:
        make_client(clock).get_json("/v1/things")
    assert "malformed JSON" in str(info.value)
    assert len(rsps.calls) == 1  # a parse error is not retried


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_json_values, ascii_only=st.booleans(), data=st.data())
def test_a_body_cut_inside_its_json_is_a_transport_failure_never_malformed(value, ascii_only, data):
    """Every proper prefix of a JSON document that does not parse is classified as cut
    off in transit: retried for a GET (here: every attempt cut, so it gives up as
    unavailable), an unknown outcome for a POST — never a ProviderResponseError."""
    doc = json.dumps(value, ensure_ascii=ascii_only)
    cut = data.draw(st.integers(min_value=1, max_value=max(len(doc) - 1, 1)))
    prefix = doc[:cut]
    try:
        json.loads(prefix)
        return  # a shorter number ("12" of "123") is itself a document: nothing to tell
    except ValueError:
        pass
    clock = FakeClock()
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, URL, body=prefix.encode(), content_type="application/json")
        mock.add(responses.POST, URL, body=prefix.encode(), content_type="application/json")
        with pytest.raises(ProviderUnavailable) as got:
            make_client(clock, max_attempts=2).get_json("/v1/things")
        assert not isinstance(got.value, ProviderOutcomeUnknown) and got.value.attempts == 2
        with pytest.raises(ProviderOutcomeUnknown):
            make_client(clock).post_json("/v1/things", {"a": 1})


def test_html_instead_of_json_raises_response_error(rsps, clock):
    rsps.add(responses.GET, URL, body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(ProviderResponseError, match="non-JSON"):
        make_client(clock).get_json("/v1/things")


def test_empty_body_raises_response_error(rsps, clock):
    rsps.add(responses.GET, URL, body="", content_type="application/json")
    with pytest.raises(ProviderResponseError, match="empty body"):
        make_client(clock).get_json("/v1/things")


# ---------------------------------------------------------------- hygiene


def test_every_request_carries_timeout_and_user_agent(rsps, clock):
    rsps.add(responses.GET, URL, status=503)
    rsps.add(responses.GET, URL, json={})
    rsps.add(responses.POST, URL, json={})
    client = make_client(clock)
    client.get_json("/v1/things", {"a": "1"})
    client.post_json("/v1/things", {"b": 2})
    assert len(rsps.calls) == 3
    for call in rsps.calls:
        assert call.request.req_kwargs["timeout"] == (3.05, 30.0)
        assert call.request.headers["User-Agent"].startswith("micro-fulfillment-connector/")
        assert call.request.headers["Accept"] == "application/json"


def test_timeout_is_mandatory():
    with pytest.raises(ValueError):
        HttpClient(base_url=BASE, timeout=None)  # type: ignore[arg-type]


def test_tokens_never_appear_in_logs_or_errors(rsps, clock, caplog):
    caplog.set_level(logging.DEBUG)
    rsps.add(responses.GET, URL, status=429, headers={"Retry-After": "1"})
    rsps.add(responses.GET, URL, json={})
    rsps.add(responses.GET, BASE + "/v1/echo", status=400, json={"detail": f"bad header Bearer {TOKEN}"})
    rsps.add(responses.GET, BASE + "/v1/denied", status=401, json={"detail": f"token {TOKEN} revoked"})
    client = make_client(clock)
    client.get_json("/v1/things")
    errors = []
    for path in ("/v1/echo", "/v1/denied"):
        with pytest.raises(ProviderRejected) as info:
            client.get_json(path)
        errors.append(info.value)
    assert caplog.records, "expected request logs"
    assert any("/v1/things" in r.getMessage() and "429" in r.getMessage() for r in caplog.records)
    assert TOKEN not in caplog.text
    for err in errors:
        assert TOKEN not in str(err) and TOKEN not in (err.body_excerpt or "")
        assert "***" in str(err)


@pytest.mark.parametrize("padding", [275, 285, 294])
def test_a_token_cut_by_the_excerpt_is_masked_whole(rsps, clock, padding):
    """Masking runs before the excerpt is cut: no first characters of a token survive."""
    rsps.add(responses.GET, URL, status=400, body="x" * padding + TOKEN + " and more")
    with pytest.raises(ProviderRejected) as info:
        make_client(clock).get_json("/v1/things")
    assert TOKEN[:6] not in str(info.value) and TOKEN[:6] not in info.value.body_excerpt
    assert len(info.value.body_excerpt) <= 300


def test_off_host_urls_are_refused(rsps, clock):
    client = make_client(clock)
    with pytest.raises(ProviderResponseError, match="refusing"):
        client.get_json("https://attacker.example/v1/things")
    assert len(rsps.calls) == 0


# ---------------------------------------------------------------- pacing


def test_min_interval_paces_requests(rsps, clock):
    rsps.add(responses.GET, URL, json={})
    client = make_client(clock, min_interval=60 / 150)
    for _ in range(3):
        client.get_json("/v1/things")
    assert clock.sleeps == [pytest.approx(0.4), pytest.approx(0.4)]
    clock.t += 5  # idle for a while: no wait needed
    client.get_json("/v1/things")
    assert len(clock.sleeps) == 2


def test_pacing_and_backoff_combine(rsps, clock):
    rsps.add(responses.GET, URL, status=429, headers={"x-retry-after": "2"})
    rsps.add(responses.GET, URL, json={})
    make_client(clock, min_interval=0.4).get_json("/v1/things")
    assert clock.sleeps == [2.0]  # the retry wait already exceeds the pacing interval


# ---------------------------------------------------------------- pagination


def test_paginate_cursor_reads_all_pages():
    pages = {None: ([1, 2], "c1"), "c1": ([3], "c2"), "c2": ([4], None)}
    assert list(paginate_cursor(lambda c: pages[c])) == [1, 2, 3, 4]


def test_paginate_cursor_detects_repeated_cursor():
    calls = []

    def fetch(cursor):
        calls.append(cursor)
        return [len(calls)], "same-cursor"

    with pytest.raises(ProviderResponseError, match="repeated"):
        list(paginate_cursor(fetch, max_pages=1000))
    assert len(calls) == 2


def test_paginate_cursor_detects_identical_pages():
    calls = []

    def fetch(cursor):
        calls.append(cursor)
        return [{"sku": "A"}, {"sku": "B"}], f"cursor-{len(calls)}"  # fresh cursor, same page

    with pytest.raises(ProviderResponseError, match="identical"):
        list(paginate_cursor(fetch))
    assert len(calls) == 2


def test_paginate_cursor_is_bounded():
    calls = []

    def fetch(cursor):
        calls.append(cursor)
        return [len(calls)], f"cursor-{len(calls)}"

    with pytest.raises(ProviderResponseError, match="within 25 pages"):
        list(paginate_cursor(fetch, max_pages=25))
    assert len(calls) == 25


def test_paginate_cursor_first_cursor_counts_as_seen():
    with pytest.raises(ProviderResponseError, match="repeated"):
        list(paginate_cursor(lambda c: ([c], "start"), first_cursor="start"))


def test_paginate_pages_stops_on_short_page_and_detects_ignored_page_param():
    data = {1: ["a", "b"], 2: ["c", "d"], 3: ["e"]}
    assert list(paginate_pages(lambda n: data[n], page_size=2)) == ["a", "b", "c", "d", "e"]
    with pytest.raises(ProviderResponseError, match="identical"):
        list(paginate_pages(lambda n: ["a", "b"], page_size=2))


def test_paginate_links_follows_next_and_refuses_foreign_hosts(rsps, clock):
    rsps.add(responses.GET, URL, json={"items": [1, 2], "next": "/v1/things?Cursor=p2"})
    rsps.add(responses.GET, URL + "?Cursor=p2", json={"items": [3], "next": BASE + "/v1/things?Cursor=p3"},
             match=[responses.matchers.query_param_matcher({"Cursor": "p2"})])
    rsps.add(responses.GET, URL + "?Cursor=p3", json={"items": [4], "next": "https://other.example/v1/things?Cursor=p4"},
             match=[responses.matchers.query_param_matcher({"Cursor": "p3"})])
    client = make_client(clock)
    got = []
    with pytest.raises(ProviderResponseError, match="refusing"):
        for item in paginate_links(client, "/v1/things", params={"PageSize": "2"},
                                   extract=lambda b: (b["items"], b["next"])):
            got.append(item)
    assert got == [1, 2, 3]  # page 3 names a foreign next link: fail before yielding it
    assert len(rsps.calls) == 3


def test_paginate_links_detects_a_next_link_loop(rsps, clock):
    rsps.add(responses.GET, URL, json={"items": [1], "next": BASE + "/v1/things?Cursor=x"})
    client = make_client(clock)
    with pytest.raises(ProviderResponseError):
        list(paginate_links(client, "/v1/things", extract=lambda b: (b["items"], b["next"])))
    assert len(rsps.calls) <= 3
