"""ShopifyInstall against `responses` fixtures shaped from shopify.md §2.6 and §4.4:
the shop's locations over every page, and webhook subscriptions for installs outside
shopify.app.toml (listed first, created when missing, userErrors surfaced)."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from adapters.shopify import TOPICS
from adapters.shopify_auth import ShopifyOAuth, TokenKeeper, Tokens
from adapters.shopify_install import (
    API_TOPICS,
    COMPLIANCE_TOPICS,
    ShopifyInstall,
    ShopLocation,
    topic_enum,
    topic_name,
)
from connector.domain.model import ProviderRejected, ProviderResponseError
from tests.support import FakeClock

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
SHOP = "aurora-candles.myshopify.com"
TOKEN = "shpat_0123456789abcdef0123456789abcdef"
GRAPHQL = f"https://{SHOP}/admin/api/2026-04/graphql.json"
URI = "https://connector.example.com/webhooks/shopify"


def fx(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def install(clock: FakeClock) -> ShopifyInstall:
    return ShopifyInstall(SHOP, TOKEN, sleep=clock.sleep, monotonic=clock.monotonic)


def bodies(rsps) -> list[dict]:
    return [json.loads(c.request.body) for c in rsps.calls]


# ---------------------------------------------------------------- locations


def test_locations_are_read_over_every_page_inactive_and_app_managed_ones_included(rsps, clock):
    rsps.post(GRAPHQL, json=fx("locations_page1"))
    rsps.post(GRAPHQL, json=fx("locations_page2"))

    locations = install(clock).locations()

    sent = bodies(rsps)
    assert [b["variables"] for b in sent] == [
        {"first": 100, "after": None},
        {"first": 100, "after": fx("locations_page1")["data"]["locations"]["pageInfo"]["endCursor"]},
    ]
    assert "includeInactive: true, includeLegacy: true" in sent[0]["query"]
    assert all(c.request.headers["X-Shopify-Access-Token"] == TOKEN for c in rsps.calls)
    assert locations == [
        ShopLocation("gid://shopify/Location/124656943", "Brooklyn studio", True, True, "US", "NY", "11201", None),
        ShopLocation("gid://shopify/Location/124656944", "SoHo pop-up", False, False, "US", "NY", "10012", None),
        ShopLocation("gid://shopify/Location/124656945", "ShipBob Reno", True, True, "US", "NV", "89502", "shipbob"),
        ShopLocation("gid://shopify/Location/124656946", "London partner", True, True, "GB", None, "E1 6AN", None),
    ]


@pytest.mark.parametrize("change", [
    {"isActive": None},
    {"name": 7},
    {"id": None},
    {"address": "Brooklyn"},
], ids=["no-isActive", "name-not-text", "no-id", "address-not-object"])
def test_a_location_without_its_documented_fields_is_a_response_error(rsps, clock, change):
    page = fx("locations_page2")
    page["data"]["locations"]["nodes"][0].update(change)
    rsps.post(GRAPHQL, json=page)
    with pytest.raises(ProviderResponseError):
        install(clock).locations()


def test_locations_use_an_expiring_token_from_the_keeper(rsps, clock):
    now = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)

    class Store:
        tokens = Tokens("shpat_expiring", expires_at=now + timedelta(hours=1), refresh_token="shprt_x")

        def load(self, shop):
            return self.tokens

        def save_if(self, shop, expected, new):
            return False

    keeper = TokenKeeper(ShopifyOAuth("client-id", "shpss_secret"), Store(), now=lambda: now)
    rsps.post(GRAPHQL, json=fx("locations_page2"))
    locations = ShopifyInstall(SHOP, auth=keeper.auth(SHOP), sleep=clock.sleep, monotonic=clock.monotonic).locations()
    assert len(locations) == 2
    assert rsps.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_expiring"


# ---------------------------------------------------------------- webhook subscriptions


def test_topics_map_to_the_graphql_enum_and_back():
    for topic in TOPICS:
        assert topic_name(topic_enum(topic)) == topic
    assert topic_enum("orders/create") == "ORDERS_CREATE"
    assert topic_enum("app/uninstalled") == "APP_UNINSTALLED"


def test_api_topics_are_what_the_endpoint_handles_less_the_compliance_ones():
    assert set(API_TOPICS) == TOPICS - COMPLIANCE_TOPICS
    assert set(API_TOPICS) >= {"orders/create", "orders/updated", "orders/cancelled", "refunds/create",
                               "app/uninstalled"}


def test_subscribe_creates_only_what_is_missing_for_our_uri(rsps, clock):
    rsps.post(GRAPHQL, json=fx("webhook_subscriptions"))
    rsps.post(GRAPHQL, json=fx("webhook_subscription_create"))

    created = install(clock).subscribe(URI, ["orders/create", "orders/updated"])

    listing, create = bodies(rsps)
    assert listing["variables"] == {"topics": ["ORDERS_CREATE", "ORDERS_UPDATED"], "first": 100, "after": None}
    # orders/create already delivers to URI; orders/updated only to another host
    assert create["variables"] == {"topic": "ORDERS_UPDATED", "webhookSubscription": {"uri": URI, "format": "JSON"}}
    assert "webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription)" in create["query"]
    assert [(s.topic, s.uri) for s in created] == [("orders/updated", URI)]


def test_subscribe_by_default_covers_every_api_topic(rsps, clock):
    listing = fx("webhook_subscriptions")
    listing["data"]["webhookSubscriptions"]["nodes"] = []
    rsps.post(GRAPHQL, json=listing)

    def create(request):
        variables = json.loads(request.body)["variables"]
        answer = fx("webhook_subscription_create")
        answer["data"]["webhookSubscriptionCreate"]["webhookSubscription"]["topic"] = variables["topic"]
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    rsps.add_callback("POST", GRAPHQL, callback=create)
    created = install(clock).subscribe(URI)
    assert sorted(s.topic for s in created) == sorted(API_TOPICS)


def test_a_user_error_names_the_topic_and_is_raised(rsps, clock):
    listing = fx("webhook_subscriptions")
    listing["data"]["webhookSubscriptions"]["nodes"] = []
    answer = fx("webhook_subscription_create_user_errors")
    answer["data"]["webhookSubscriptionCreate"]["userErrors"] = [
        {"field": ["webhookSubscription", "uri"], "message": "Address is invalid"}]
    rsps.post(GRAPHQL, json=listing)
    rsps.post(GRAPHQL, json=answer)
    with pytest.raises(ProviderRejected, match="refunds/create.*Address is invalid"):
        install(clock).subscribe(URI, ["refunds/create"])


def test_a_create_refused_as_taken_is_confirmed_by_listing_again(rsps, clock):
    """The first attempt's answer was lost, the client's retry is refused as taken."""
    empty = fx("webhook_subscriptions")
    empty["data"]["webhookSubscriptions"]["nodes"] = []
    exists = copy.deepcopy(empty)
    exists["data"]["webhookSubscriptions"]["nodes"] = [
        {"id": "gid://shopify/WebhookSubscription/4759309", "topic": "APP_UNINSTALLED", "uri": URI}]
    rsps.post(GRAPHQL, json=empty)
    rsps.post(GRAPHQL, status=502)
    rsps.post(GRAPHQL, json=fx("webhook_subscription_create_user_errors"))
    rsps.post(GRAPHQL, json=exists)

    assert install(clock).subscribe(URI, ["app/uninstalled"]) == []
    assert len(rsps.calls) == 4


def test_taken_without_our_subscription_behind_it_is_an_error(rsps, clock):
    empty = fx("webhook_subscriptions")
    empty["data"]["webhookSubscriptions"]["nodes"] = []
    rsps.post(GRAPHQL, json=empty)
    rsps.post(GRAPHQL, json=fx("webhook_subscription_create_user_errors"))
    rsps.post(GRAPHQL, json=empty)
    with pytest.raises(ProviderRejected, match="already been taken"):
        install(clock).subscribe(URI, ["app/uninstalled"])


@pytest.mark.parametrize("topics, uri, problem", [
    (["shop/redact"], URI, "compliance"),
    (["products/update"], URI, "does not handle"),
    (["orders/create"], "http://connector.example.com/webhooks/shopify", "https"),
])
def test_subscribe_refuses_what_it_cannot_or_should_not_do_before_any_call(rsps, clock, topics, uri, problem):
    with pytest.raises(ValueError, match=problem):
        install(clock).subscribe(uri, topics)
    assert not rsps.calls
