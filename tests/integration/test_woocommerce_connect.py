"""Our four order webhooks over WooCommerce's REST API v3 (woocommerce.md §1.6, §1.7), against
a `responses` store that keeps webhooks the way the REST docs show them ("Webhooks": create,
retrieve, list, update, delete with ``force``): created, adopted on a second run, confirmed,
rolled back; each way connecting fails, with its message, and no credential in any of them."""
from __future__ import annotations

import base64
import copy
import itertools
import json
import logging
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from adapters.woocommerce_connect import (
    ORDER_TOPICS,
    KeysRefused,
    StoreUnreachable,
    StoreUrlInvalid,
    WebhooksRefused,
    WebhookSetup,
    WooCommerceWebhooks,
    WooConnectError,
    WooKeys,
    connect_client,
)
from tests.conftest import fixture_json
from tests.integration.test_secret_redaction import _echo_text, assert_no_secret, forms, secret
from tests.support import FakeClock

STORE = "https://shop.example.com"
API = f"{STORE}/wp-json/wc/v3"
DELIVERY = "https://connector.example.com/webhooks/woocommerce"
KEYS = WooKeys(1, "user-id", "ck_0123456789abcdef0123456789abcdef01234567",
               "cs_fedcba9876543210fedcba9876543210fedcba98", "read_write")
PUBLIC = ["93.184.216.34"]


def public(host, port):
    return PUBLIC


class Store:
    """The webhooks endpoints of one store. Each webhook is the documented resource
    (``webhook_created.json``) with its own id, name, status, topic and delivery URL;
    ``secrets`` keeps what a write set (the API never shows it back).

    ``refuse[kind]`` (kinds ``GET all``, ``POST``, ``PUT``, ``GET one``, ``DELETE``) lists
    the answers to that kind's successive requests: ``None`` answers normally, an
    exception is raised as the transport's, ``"lost"`` (POST) creates the webhook and then
    loses the answer, anything else is ``(status, JSON body)``. ``intercept[kind]``
    answers every request of that kind itself."""

    def __init__(self, hooks=()):
        self.hooks: dict[int, dict] = {}
        self.secrets: dict[int, str] = {}
        self.ids = itertools.count(142)
        self.refuse: dict[str, list] = {}
        self.intercept: dict[str, object] = {}
        for hook in hooks:
            self.add(**hook)

    def add(self, topic, delivery_url, status="active", name=None, secret=None):
        webhook_id = next(self.ids)
        hook = copy.deepcopy(fixture_json("woocommerce", "webhook_created.json"))
        resource, event = topic.split(".")
        hook.update(id=webhook_id, name=name or f"Webhook {webhook_id}", status=status, topic=topic,
                    resource=resource, event=event, delivery_url=delivery_url)
        hook["_links"]["self"][0]["href"] = f"{API}/webhooks/{webhook_id}"
        self.hooks[webhook_id] = hook
        if secret:
            self.secrets[webhook_id] = secret
        return webhook_id

    def install(self, rsps):
        rsps.add_callback(responses.GET, f"{API}/webhooks", callback=lambda r: self.answer("GET all", r))
        rsps.add_callback(responses.POST, f"{API}/webhooks", callback=lambda r: self.answer("POST", r))
        one = re.compile(rf"{re.escape(API)}/webhooks/(\d+)(\?.*)?$")
        for method in (responses.GET, responses.PUT, responses.DELETE):
            rsps.add_callback(method, one, callback=lambda r: self.answer(
                "GET one" if r.method == "GET" else r.method, r))

    def answer(self, kind, request):
        if kind in self.intercept:
            return self.intercept[kind](request)
        queue = self.refuse.get(kind)
        planned = queue.pop(0) if queue else None
        if isinstance(planned, Exception):
            raise planned
        if planned == "lost":
            self.create(request)
            raise requests.ReadTimeout("read timed out")
        if planned is not None:
            status, body = planned
            if isinstance(body, str):  # a page, not the API
                return status, {"Content-Type": "text/html; charset=UTF-8"}, body
            return status, {"Content-Type": "application/json"}, json.dumps(body)
        return {"GET all": self.list, "POST": self.create}.get(kind, self.one)(request)

    def list(self, request):
        assert parse_qs(urlsplit(request.url).query)["status"] == ["all"]
        return (200, {"X-WP-Total": str(len(self.hooks)), "X-WP-TotalPages": "1",
                      "Content-Type": "application/json"}, json.dumps(list(self.hooks.values())))

    def create(self, request):
        body = json.loads(request.body)
        if not body.get("delivery_url", "").startswith(("http://", "https://")):
            return 400, {}, json.dumps(fixture_json("woocommerce", "webhook_invalid_delivery_url.json"))
        webhook_id = self.add(body["topic"], body["delivery_url"], body.get("status", "active"), body.get("name"),
                              body.get("secret"))
        return 201, {"Content-Type": "application/json"}, json.dumps(self.hooks[webhook_id])

    def one(self, request):
        webhook_id = int(re.search(r"/webhooks/(\d+)", request.url).group(1))
        if webhook_id not in self.hooks:
            return 404, {}, json.dumps({"code": "woocommerce_rest_shop_webhook_invalid_id", "message": "Invalid ID.",
                                        "data": {"status": 404}})
        hook = self.hooks[webhook_id]
        if request.method == "DELETE":
            if parse_qs(urlsplit(request.url).query).get("force") != ["true"]:
                return 501, {}, json.dumps({"code": "woocommerce_rest_trash_not_supported",
                                            "message": "Webhooks do not support trashing.", "data": {"status": 501}})
            del self.hooks[webhook_id]
            self.secrets.pop(webhook_id, None)
        elif request.method == "PUT":
            body = json.loads(request.body)
            if "secret" in body:
                self.secrets[webhook_id] = body["secret"]
            hook.update({k: v for k, v in body.items() if k in ("status", "name", "delivery_url")})
        return 200, {"Content-Type": "application/json"}, json.dumps(hook)

    def ours(self):
        return sorted((h["topic"], h["status"]) for h in self.hooks.values() if h["delivery_url"] == DELIVERY)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def webhooks(clock, **kw) -> WooCommerceWebhooks:
    client = connect_client(STORE, KEYS, resolve=public, sleep=clock.sleep, monotonic=clock.monotonic)
    return WooCommerceWebhooks(client, **kw)


def calls(rsps):
    return [(c.request.method, urlsplit(c.request.url).path.removeprefix("/wp-json/wc/v3")) for c in rsps.calls]


# ---------------------------------------------------------------- creating and confirming


def test_the_four_order_webhooks_are_created_with_a_secret_each_and_confirmed(clock, rsps):
    store = Store([{"topic": "customer.created", "delivery_url": "http://requestb.in/1g0sxmo1"}])
    store.install(rsps)
    setup = webhooks(clock).ensure_order_webhooks(DELIVERY)

    assert [h.topic for h in setup.webhooks] == sorted(ORDER_TOPICS) == [
        "order.created", "order.deleted", "order.restored", "order.updated"]
    assert store.ours() == [(topic, "active") for topic in sorted(ORDER_TOPICS)]
    assert setup.created == tuple(h.webhook_id for h in setup.webhooks) == ("143", "144", "145", "146")
    # each secret is its own, long, URL-safe, and the one the store was given
    secrets_ = setup.secrets()
    assert len(set(secrets_.values())) == 4
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{40,}", s) for s in secrets_.values())
    assert {str(k): v for k, v in store.secrets.items()} == secrets_
    posts = [json.loads(c.request.body) for c in rsps.calls if c.request.method == "POST"]
    assert [(p["topic"], p["delivery_url"], p["status"]) for p in posts] == [
        (t, DELIVERY, "active") for t in sorted(ORDER_TOPICS)]
    assert all(p["name"].startswith("Micro-fulfillment connector") for p in posts)
    # listed once, each created once, each read back
    assert calls(rsps) == [("GET", "/webhooks")] + [("POST", "/webhooks")] * 4 + [
        ("GET", f"/webhooks/{i}") for i in ("143", "144", "145", "146")]
    expected = "Basic " + base64.b64encode(f"{KEYS.consumer_key}:{KEYS.consumer_secret}".encode()).decode()
    assert all(c.request.headers["Authorization"] == expected for c in rsps.calls)
    assert all(h.secret not in repr(h) for h in setup.webhooks)


def test_a_second_run_with_the_secrets_it_saved_finds_the_webhooks_and_sends_nothing_new(clock, rsps):
    store = Store()
    store.install(rsps)
    first = webhooks(clock).ensure_order_webhooks(DELIVERY)
    rsps.calls.reset()

    again = webhooks(clock).ensure_order_webhooks(DELIVERY + "/", known_secrets=first.secrets())
    assert again.created == ()
    assert again.secrets() == first.secrets()
    assert [m for m, _ in calls(rsps)] == ["GET"] * 5  # the list, then each read back
    assert len(store.hooks) == 4


def test_our_webhooks_whose_secrets_we_lost_are_given_new_ones_and_reactivated_not_duplicated(clock, rsps):
    store = Store([{"topic": "order.created", "delivery_url": DELIVERY, "status": "disabled", "secret": "old"},
                   {"topic": "order.updated", "delivery_url": DELIVERY.upper().replace("/WEBHOOKS/WOOCOMMERCE",
                                                                                       "/webhooks/woocommerce")},
                   {"topic": "order.deleted", "delivery_url": "https://elsewhere.example.com/hook"}])
    store.install(rsps)
    setup = webhooks(clock).ensure_order_webhooks(DELIVERY)

    by_topic = {h.topic: h for h in setup.webhooks}
    assert (by_topic["order.created"].webhook_id, by_topic["order.created"].created) == ("142", False)
    assert (by_topic["order.updated"].webhook_id, by_topic["order.updated"].created) == ("143", False)
    assert by_topic["order.deleted"].created and by_topic["order.restored"].created  # someone else's is not ours
    assert store.hooks[142]["status"] == "active" and store.secrets[142] == by_topic["order.created"].secret != "old"
    puts = [(c.request.url.rsplit("/", 1)[1], json.loads(c.request.body)) for c in rsps.calls
            if c.request.method == "PUT"]
    assert [(i, sorted(b)) for i, b in puts] == [("142", ["secret", "status"]), ("143", ["secret", "status"])]
    assert len(store.hooks) == 5


def test_a_known_webhook_that_was_disabled_is_reactivated_keeping_its_secret(clock, rsps):
    store = Store([{"topic": t, "delivery_url": DELIVERY, "status": "disabled" if t == "order.updated" else "active"}
                   for t in ORDER_TOPICS])
    store.install(rsps)
    known = {str(i): f"secret-{i}" for i in store.hooks}
    setup = webhooks(clock).ensure_order_webhooks(DELIVERY, known_secrets=known)
    assert setup.secrets() == known and setup.created == ()
    puts = [json.loads(c.request.body) for c in rsps.calls if c.request.method == "PUT"]
    assert puts == [{"status": "active"}]
    assert store.ours() == [(t, "active") for t in sorted(ORDER_TOPICS)]


def test_a_create_whose_answer_was_lost_is_looked_up_not_sent_again(clock, rsps):
    store = Store()
    store.refuse["POST"] = ["lost"]
    store.install(rsps)
    setup = webhooks(clock).ensure_order_webhooks(DELIVERY)
    assert store.ours() == [(t, "active") for t in sorted(ORDER_TOPICS)]
    assert [m for m, _ in calls(rsps)].count("POST") == 4  # the lost one was found in the list
    assert setup.created == ("142", "143", "144", "145")
    assert store.secrets[142] == setup.secrets()["142"]


# ---------------------------------------------------------------- failures, rolled back


def _problem(name):
    return fixture_json("woocommerce", name)


@pytest.mark.parametrize("kind, answer, error, says", [
    ("GET all", (401, _problem("rest_authentication_error.json")), KeysRefused,
     r"refused our API key when we tried to list .* \(HTTP 401\): Consumer key is invalid\."),
    ("GET all", (404, _problem("rest_no_route.json")), StoreUnreachable, "no WooCommerce REST API"),
    ("GET all", (301, "<a href='https://www.shop.example.com/'>moved</a>"), StoreUnreachable,
     r"redirected us \(HTTP 301\)"),
    ("GET all", (503, {}), StoreUnreachable, "could not reach the store to list"),
    ("GET all", requests.ConnectionError("connection reset"), StoreUnreachable, "could not reach the store"),
    ("GET all", (200, "<html>maintenance</html>"), StoreUnreachable, "made no sense"),
    ("POST", (403, _problem("rest_cannot_create.json")), KeysRefused,
     r"create the order.\w+ webhook \(HTTP 403\): Sorry, you are not allowed to create resources"),
    ("POST", (400, _problem("webhook_invalid_delivery_url.json")), WebhooksRefused,
     r"refused to create the order.\w+ webhook \(HTTP 400\): Webhook delivery URL must be a valid URL"),
    ("POST", (200, {"id": 999}), WebhooksRefused, "not a webhook"),
])
def test_each_failure_is_told_plainly(clock, rsps, kind, answer, error, says):
    store = Store()
    store.refuse[kind] = [answer] * 10
    store.install(rsps)
    with pytest.raises(error, match=says) as info:
        webhooks(clock).ensure_order_webhooks(DELIVERY)
    assert isinstance(info.value, WooConnectError)
    assert store.ours() == []


@pytest.mark.parametrize("refuse", [
    {"POST": [None, (400, _problem("webhook_invalid_delivery_url.json"))]},
    {"POST": [None, None, (503, {})]},
    {"POST": [None, requests.ReadTimeout("read timed out")]},  # the lookup finds nothing: not created
    {"GET one": [None] * 2 + [requests.ConnectionError("reset")] * 5},
    {"GET one": [None, (200, {**_problem("webhook_created.json"), "id": 143, "topic": "order.deleted",
                              "status": "disabled"})]},
], ids=["second-create-refused", "third-create-unavailable", "create-outcome-unknown", "read-back-unreachable",
        "read-back-disabled"])
def test_webhooks_created_before_a_failure_are_deleted_again(clock, rsps, refuse):
    store = Store([{"topic": "order.created", "delivery_url": DELIVERY}])  # ours already: adopted, never deleted
    store.refuse = refuse
    store.install(rsps)
    with pytest.raises(WooConnectError):
        webhooks(clock).ensure_order_webhooks(DELIVERY)
    deletes = [c.request for c in rsps.calls if c.request.method == "DELETE"]
    assert deletes, "nothing was rolled back"
    assert all(parse_qs(urlsplit(r.url).query) == {"force": ["true"]} for r in deletes)
    assert [h["topic"] for h in store.hooks.values()] == ["order.created"]


def test_a_webhook_that_could_not_be_deleted_again_is_named_on_the_error(clock, rsps):
    store = Store()
    store.refuse = {"POST": [None, (400, _problem("webhook_invalid_delivery_url.json"))],
                    "DELETE": [(503, {})] * 5}
    store.install(rsps)
    with pytest.raises(WebhooksRefused) as info:
        webhooks(clock).ensure_order_webhooks(DELIVERY)
    assert [webhook_id for webhook_id, _ in info.value.left_on_store] == ["142"]
    assert "gave up after 5 attempts" in info.value.left_on_store[0][1]
    assert store.ours() == [("order.created", "active")]


def test_a_paused_webhook_fails_confirmation_with_its_status(clock, rsps):
    store = Store()
    store.refuse["GET one"] = [(200, {**_problem("webhook_created.json"), "id": 142, "topic": "order.created",
                                      "delivery_url": DELIVERY, "status": "paused"})]
    store.install(rsps)
    with pytest.raises(WebhooksRefused, match=r"did not keep webhook #142 for order.created: its status is 'paused'"):
        webhooks(clock).ensure_order_webhooks(DELIVERY)


def test_rollback_after_a_later_step_deletes_what_was_created_and_reports_what_it_could_not(clock, rsps):
    store = Store([{"topic": "order.created", "delivery_url": DELIVERY}])
    store.install(rsps)
    hooks = webhooks(clock)
    setup = hooks.ensure_order_webhooks(DELIVERY)
    assert setup.created == ("143", "144", "145")
    del store.hooks[144]  # deleted by hand meanwhile: already gone is fine
    store.refuse["DELETE"] = [(401, _problem("rest_authentication_error.json"))]  # the first one is refused
    failed = hooks.rollback(setup)
    assert [webhook_id for webhook_id, _ in failed] == ["143"]
    assert "Consumer key is invalid" in failed[0][1]
    assert sorted(store.hooks) == [142, 143]
    assert hooks.rollback(WebhookSetup(())) == []


def test_a_delivery_url_wordpress_rejects_creates_nothing(clock, rsps):
    store = Store()
    store.install(rsps)
    with pytest.raises(WebhooksRefused, match="ports 443 and 8080"):
        webhooks(clock).ensure_order_webhooks("https://connector.example.com:5000/webhooks/woocommerce")
    assert not rsps.calls


def test_a_store_that_is_not_https_or_resolves_privately_is_never_contacted(clock, rsps):
    with pytest.raises(StoreUrlInvalid, match="https://"):
        connect_client("http://shop.example.com", KEYS, resolve=public)
    with pytest.raises(StoreUrlInvalid, match="private or local"):
        connect_client(STORE, KEYS, resolve=lambda host, port: ["127.0.0.1"])
    assert connect_client("https://127.0.0.1:8443", KEYS, allow_private=True).base_url == \
        "https://127.0.0.1:8443/wp-json/wc/v3"
    assert not rsps.calls


# ---------------------------------------------------------------- no credential in any error

ECHO_KEYS = WooKeys(1, "u", "ck_" + "E" * 40, "cs_" + "F" * 40, "read_write")
ECHO_MODES = ("400", "401", "403", "503", "200-unexpected")


@pytest.mark.parametrize("stage", ["list", "create", "update", "read back"])
@pytest.mark.parametrize("mode", ECHO_MODES)
def test_no_key_or_webhook_secret_in_any_error_from_an_echoing_store(clock, caplog, mode, stage):
    """As tests/integration/test_secret_redaction.py: the store echoes the whole request
    (headers with the Basic credentials, the body with a webhook's new secret) into its
    answer at one stage; neither the keys nor any webhook secret may reach the error."""
    caplog.set_level(logging.DEBUG)
    issued: list[str] = []

    def new_secret():
        issued.append(secret(f"hook{len(issued)}"))
        return issued[-1]

    store = Store([{"topic": "order.updated", "delivery_url": DELIVERY}] if stage == "update" else [])
    kind = {"list": "GET all", "create": "POST", "update": "PUT", "read back": "GET one"}[stage]
    method = kind.split()[0]

    def answer(request):
        # the body first, so that the new secret sits inside the excerpt an error keeps
        text = f"{request.body.decode() if isinstance(request.body, bytes) else request.body or ''}\n" \
               f"{_echo_text(request)}"
        if mode == "200-unexpected":
            return 200, {"Content-Type": "text/html"}, f"<html><pre>{text}</pre></html>"
        return int(mode), {"Content-Type": "text/plain", "Retry-After": "0"}, text

    store.intercept[kind] = answer
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        store.install(rsps)
        client = connect_client(STORE, ECHO_KEYS, resolve=public, sleep=clock.sleep, monotonic=clock.monotonic)
        with pytest.raises(WooConnectError) as info:
            WooCommerceWebhooks(client, new_secret=new_secret).ensure_order_webhooks(DELIVERY)
        echoed = "".join(_echo_text(c.request) for c in rsps.calls if c.request.method == method)
    credentials = (ECHO_KEYS.consumer_key, ECHO_KEYS.consumer_secret,
                   base64.b64encode(f"{ECHO_KEYS.consumer_key}:{ECHO_KEYS.consumer_secret}".encode()).decode(),
                   *issued)
    assert any(form in echoed for value in credentials for form in forms(value)), "the echo carried nothing"
    if stage in ("create", "update"):
        assert any(form in echoed for value in issued for form in forms(value))
    seen = [str(info.value), repr(info.value), caplog.text]
    cause = info.value.__cause__ or info.value.__context__
    while cause is not None:
        seen += [str(cause), str(getattr(cause, "body_excerpt", "") or "")]
        cause = cause.__cause__ or cause.__context__
    assert_no_secret("\n".join(seen), credentials, f"woocommerce_connect {mode} ({stage})")
