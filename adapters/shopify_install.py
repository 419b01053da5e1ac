"""What a new Shopify install reads and sets up through the GraphQL Admin API: the shop's
locations (offered as nodes) and, for installs whose webhooks ``shopify.app.toml`` does
not manage (custom apps made in the admin), the order webhook subscriptions.

Facts: /work/shared/reference/shopify.md §2.5-2.6 and §4.4.

* ``locations`` returns only active, merchant-managed locations by default;
  ``includeInactive`` and ``includeLegacy`` (the locations fulfillment-service apps such as a
  3PL's manage) are set so every place stock can be is offered, marked with ``isActive``
  and ``fulfillsOnlineOrders``.
* ``webhookSubscriptionCreate(topic:, webhookSubscription: {uri, format})``: the topic in
  screaming case (``ORDERS_CREATE``); shop-specific subscriptions are deleted by Shopify
  after repeated failures, app-specific (TOML) ones are not. Compliance topics cannot be
  subscribed through the API (§2.5). Existing subscriptions are listed first and only the
  missing ones created; a create whose answer was lost and that Shopify refuses on the
  retry ("address ... already been taken") is confirmed by listing again.

Requests go through ``ShopifyInventory.graphql``: the same HTTP client, cost-bucket
pacing, THROTTLED handling and redaction as the inventory calls.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable

from adapters.http import Auth, HttpClient, describe_graphql_errors
from adapters.shopify import TOPICS
from adapters.shopify_inventory import DEFAULT_API_VERSION, ShopifyInventory
from connector.domain.model import ProviderRejected, ProviderResponseError

COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
# What an install outside shopify.app.toml subscribes through the API: every topic the
# webhook endpoint handles except the compliance ones, which only the TOML can carry.
API_TOPICS = tuple(sorted(TOPICS - COMPLIANCE_TOPICS))

LOCATIONS_PAGE = 100
_LOCATION_COST = 3  # Location, its address and its fulfillmentService: one object each
WEBHOOKS_PAGE = 100
_MUTATION_COST = 10

LOCATIONS_QUERY = """
query locations($first: Int!, $after: String) {
  locations(first: $first, after: $after, includeInactive: true, includeLegacy: true) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id name isActive fulfillsOnlineOrders
      address { countryCode provinceCode zip }
      fulfillmentService { handle serviceName }
    }
  }
}
"""

WEBHOOK_SUBSCRIPTIONS_QUERY = """
query webhookSubscriptions($first: Int!, $after: String, $topics: [WebhookSubscriptionTopic!]) {
  webhookSubscriptions(first: $first, after: $after, topics: $topics) {
    pageInfo { hasNextPage endCursor }
    nodes { id topic uri }
  }
}
"""

WEBHOOK_SUBSCRIPTION_CREATE = """
mutation webhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {
    userErrors { field message }
    webhookSubscription { id topic uri }
  }
}
"""


@dataclass(frozen=True)
class ShopLocation:
    gid: str
    name: str
    active: bool
    fulfills_online_orders: bool
    country: str | None
    province: str | None
    zip: str | None
    fulfillment_service: str | None  # the handle of the app that manages it (a 3PL), if any


@dataclass(frozen=True)
class WebhookSubscription:
    gid: str
    topic: str  # as in the webhook header: "orders/create"
    uri: str


def topic_enum(topic: str) -> str:
    """``orders/create`` -> ``ORDERS_CREATE`` (WebhookSubscriptionTopic)."""
    return topic.replace("/", "_").upper()


def topic_name(enum: str) -> str:
    """``ORDERS_CREATE`` -> ``orders/create`` (every topic we use has one slash after its
    first word: ``app/uninstalled``, ``refunds/create``)."""
    first, _, rest = enum.lower().partition("_")
    return f"{first}/{rest}"


class ShopifyInstall:
    """Install-time reads and writes for one shop."""

    provider = "shopify"

    def __init__(
        self,
        shop_domain: str,
        access_token: str | None = None,
        *,
        auth: Auth | None = None,
        client: HttpClient | None = None,
        api_version: str = DEFAULT_API_VERSION,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        """One of ``access_token`` (a fixed token), ``auth`` (e.g. ``TokenKeeper.auth(shop)``,
        refreshing an expiring token) or ``client``."""
        if client is None and auth is not None:
            client = HttpClient(base_url=f"https://{shop_domain}", auth=auth, provider=self.provider,
                                sleep=sleep, monotonic=monotonic)
        self.api = ShopifyInventory(shop_domain, access_token, api_version=api_version, client=client,
                                    sleep=sleep, monotonic=monotonic)

    # ------------------------------------------------------------ locations

    def locations(self) -> list[ShopLocation]:
        """Every location of the shop, inactive and app-managed ones included."""
        return [_location(node) for node in self.api.connection_nodes(
            LOCATIONS_QUERY, {}, "locations", first=LOCATIONS_PAGE, cost=2 + LOCATIONS_PAGE * _LOCATION_COST)]

    # ------------------------------------------------------------ webhooks

    def webhook_subscriptions(self, topics: Iterable[str] = API_TOPICS) -> list[WebhookSubscription]:
        variables = {"topics": [topic_enum(t) for t in topics]}
        return [_subscription(node) for node in self.api.connection_nodes(
            WEBHOOK_SUBSCRIPTIONS_QUERY, variables, "webhookSubscriptions", first=WEBHOOKS_PAGE,
            cost=2 + WEBHOOKS_PAGE)]

    def subscribe(self, uri: str, topics: Iterable[str] = API_TOPICS) -> list[WebhookSubscription]:
        """Make sure each topic delivers to ``uri``; returns the subscriptions created.

        Compliance topics are refused (only ``shopify.app.toml`` can carry them). A
        userError other than "already taken" raises ``ProviderRejected`` naming the topic.
        """
        wanted = list(dict.fromkeys(topics))
        refused = sorted(set(wanted) & COMPLIANCE_TOPICS)
        if refused:
            raise ValueError(f"compliance topics can only be subscribed in shopify.app.toml: {', '.join(refused)}")
        unknown = sorted(set(wanted) - TOPICS)
        if unknown:
            raise ValueError(f"the webhook endpoint does not handle {', '.join(unknown)}")
        if not uri.startswith("https://"):
            raise ValueError("webhook uri must be https")
        present = {s.topic for s in self.webhook_subscriptions(wanted) if s.uri == uri}
        created = []
        for topic in wanted:
            if topic in present:
                continue
            subscription = self._create(topic, uri)
            if subscription is not None:
                created.append(subscription)
        return created

    def _create(self, topic: str, uri: str) -> WebhookSubscription | None:
        data = self.api.graphql(
            WEBHOOK_SUBSCRIPTION_CREATE,
            {"topic": topic_enum(topic), "webhookSubscription": {"uri": uri, "format": "JSON"}},
            "webhookSubscriptionCreate",
            cost=_MUTATION_COST + 2,  # + webhookSubscription + userErrors
        )
        payload = data.get("webhookSubscriptionCreate")
        if not isinstance(payload, dict) or not isinstance(payload.get("userErrors"), list):
            raise ProviderResponseError("shopify: webhookSubscriptionCreate answered without userErrors")
        errors = payload["userErrors"]
        if errors:
            taken = all("taken" in str(e.get("message", "")).lower() for e in errors if isinstance(e, dict))
            # The shared client retries a POST whose answer was lost; if the first attempt
            # did create the subscription, the retry is refused as taken: look it up.
            if taken and any(s.uri == uri for s in self.webhook_subscriptions([topic])):
                return None
            raise ProviderRejected(
                f"shopify: webhookSubscriptionCreate {topic} -> {uri}: {describe_graphql_errors(errors)}")
        return _subscription(payload.get("webhookSubscription"))


def _text(node: dict, name: str, what: str, *, optional: bool = False) -> str | None:
    value = node.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not optional and not value):
        raise ProviderResponseError(f"shopify: {what} {name} is missing or not a string")
    return value


def _location(node: dict) -> ShopLocation:
    gid = _text(node, "id", "location")
    what = f"location {gid}"
    address = node.get("address")
    if address is not None and not isinstance(address, dict):
        raise ProviderResponseError(f"shopify: {what} address is not an object")
    address = address or {}
    service = node.get("fulfillmentService")
    flags = {}
    for name in ("isActive", "fulfillsOnlineOrders"):
        if not isinstance(node.get(name), bool):
            raise ProviderResponseError(f"shopify: {what} {name} is not a boolean")
        flags[name] = node[name]
    return ShopLocation(
        gid=gid,  # type: ignore[arg-type]
        name=_text(node, "name", what),  # type: ignore[arg-type]
        active=flags["isActive"],
        fulfills_online_orders=flags["fulfillsOnlineOrders"],
        country=_text(address, "countryCode", what, optional=True),
        province=_text(address, "provinceCode", what, optional=True),
        zip=_text(address, "zip", what, optional=True),
        fulfillment_service=_text(service, "handle", what, optional=True) if isinstance(service, dict) else None,
    )


def _subscription(node: object) -> WebhookSubscription:
    if not isinstance(node, dict):
        raise ProviderResponseError("shopify: webhook subscription missing from the answer")
    gid = _text(node, "id", "webhook subscription")
    return WebhookSubscription(
        gid=gid,  # type: ignore[arg-type]
        topic=topic_name(_text(node, "topic", f"webhook subscription {gid}")),  # type: ignore[arg-type]
        uri=_text(node, "uri", f"webhook subscription {gid}"),  # type: ignore[arg-type]
    )
