"""What the connection status page and the home page show about a shop's connections: the
store (tokens or keys), its order webhooks, and each 3PL connection with its newest good
sync and why its last attempt failed. Read once here, shown by both pages."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from connector.config import ShopSettings, storefront_secret_env_name
from connector.domain.model import Node
from connector.domain.setup import (Fix, SetupCheck, no_provider_check, nodes_check, provider_check,
                                    shopify_store_check, webhooks_check, woocommerce_store_check)
from connector.store import Store, parse_ts


@dataclass(frozen=True)
class ProviderHealth:
    id: str
    type: str
    nodes: tuple[Node, ...]  # the nodes it feeds, in the configuration's order
    last_sync_ok: str | None  # the newest good sync of any of them
    error: str | None  # why the last attempt failed, when one of them is failing
    error_at: str | None


@dataclass(frozen=True)
class WebhookHealth:
    problems: tuple[str, ...]  # what the last read-back found wrong with the store's webhooks (WooCommerce)
    checked_at: str | None  # the last good read-back (WooCommerce)
    reconcile_error: str | None  # why the last read-back failed
    failed_deliveries: int  # updates that arrived but could not be applied


@dataclass(frozen=True)
class SetupStatus:
    store: SetupCheck
    nodes: SetupCheck
    webhooks: SetupCheck
    providers: tuple[SetupCheck, ...]  # one per 3PL connection, or the one saying there is none

    @property
    def checks(self) -> tuple[SetupCheck, ...]:
        return (self.store, self.nodes, self.webhooks, *self.providers)


def provider_health(store: Store, shop: ShopSettings) -> list[ProviderHealth]:
    state = store.sync_state(shop.id)
    health = []
    for provider_id, provider in shop.providers.items():
        fed = [node for node_id, node in shop.network.nodes.items() if shop.sources[node_id].provider == provider_id]
        synced = [state[node.id] for node in fed if node.id in state]
        oks = [row["last_ok_at"] for row in synced if row.get("last_ok_at")]
        failing = [row for row in synced if row.get("last_error")]
        health.append(ProviderHealth(provider_id, provider.type, tuple(fed), max(oks) if oks else None,
                                     failing[0]["last_error"] if failing else None,
                                     failing[0]["last_attempt_at"] if failing else None))
    return health


def webhook_health(store: Store, shop: ShopSettings) -> WebhookHealth:
    poll = (store.order_poll(shop.id) or {}) if shop.platform == "woocommerce" else {}
    return WebhookHealth(tuple(json.loads(poll.get("webhook_problems") or "[]")), poll.get("last_ok_at") or None,
                         poll.get("last_error"), len(store.failed_webhooks(shop.id)))


def setup_status(store: Store, shop: ShopSettings, *, shopify_app, stale_after: timedelta,
                 now: datetime) -> SetupStatus:
    """``shopify_app``: connector.services.shopify_app.ShopifyApp, None when this service is
    not set up as one; ``stale_after``: how long routing trusts a sync ([sync] stale_after_minutes)."""
    hooks = webhook_health(store, shop)
    webhooks = webhooks_check(shop.platform, problems=hooks.problems, checked_at=parse_ts(hooks.checked_at),
                              reconcile_error=hooks.reconcile_error, failed_deliveries=hooks.failed_deliveries,
                              now=now)
    providers = tuple(provider_check(h.id, h.type, fed_nodes=[n.name for n in h.nodes],
                                     last_ok_at=parse_ts(h.last_sync_ok), error=h.error, now=now,
                                     stale_after=stale_after)
                      for h in provider_health(store, shop)) or (no_provider_check(),)
    # A Shopify app's shop adds the store's locations as nodes; any shop can add one by hand.
    add = (Fix("Add one of the store's locations", "shopify_app.locations")
           if shopify_app is not None and shop.platform == "shopify" else Fix("Add a node", "settings.node_new"))
    nodes = nodes_check([node.status for node in shop.network.nodes.values()], add=add)
    return SetupStatus(_store_check(store, shop, shopify_app), nodes, webhooks, providers)


def _store_check(store: Store, shop: ShopSettings, shopify_app) -> SetupCheck:
    if shop.platform == "woocommerce":
        return woocommerce_store_check(
            shop.store_url, has_keys=bool(shop.storefront.consumer_key and shop.storefront.consumer_secret),
            config_hint=_config_hint(shop.id, "consumer_key", "consumer_secret"))
    granted, missing = (shopify_app.access(store, shop.shop_domain) if shopify_app is not None and shop.shop_domain
                        else (None, []))
    can_install = shopify_app is not None and shop.shop_domain and shopify_app.settings.web.public_url
    return shopify_store_check(shop.shop_domain, granted_scopes=granted, missing_scopes=missing,
                               configured_token=bool(shop.storefront.access_token),
                               install=Fix("Connect the store", "shopify_app.install", {"shop": shop.shop_domain})
                               if can_install else None,
                               config_hint=_config_hint(shop.id, "access_token"))


def _config_hint(shop_id: str, *keys: str) -> str:
    names = " and ".join(keys)
    variables = " and ".join(storefront_secret_env_name(shop_id, key) for key in keys)
    return (f"The service's operator sets {names} under [shops.{shop_id}.storefront] in the shop's configuration "
            f"(connector shops import), or in the environment as {variables}.")
