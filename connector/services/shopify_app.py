"""The Shopify app's install lifecycle: a shop's first page load inside the admin (token
exchange) or an authorization-code callback creates the shop; its locations are offered
as nodes; ``app/uninstalled`` deactivates it and forgets its tokens.

**Safe defaults.** A new install is a shop that can hold orders but sends none anywhere:
one "Everywhere" region (the default region, so every address has one) and *no nodes*. An
order arriving before the creator adds a node is stored and waits in the exceptions queue
("no node"), where it is visible and nothing has been reserved or forwarded. A node appears
only when the creator adds one of the store's locations ("Add as node"), with a lane to
every region at the region's promise, which they then refine on the settings pages.

**Webhooks.** With ``[shopify] subscribe_webhooks = false`` (the default) the app is
deployed with ``shopify.app.toml``, whose app-specific subscriptions deliver every shop's
order and compliance webhooks: nothing is subscribed per shop. With ``true`` each install
subscribes the order topics and ``app/uninstalled`` through the Admin API (the compliance
topics can only come from the TOML). The subscription happens before the shop is created,
so a failed one is tried again at the next page load.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from adapters.shopify_auth import REQUIRED_SCOPES, missing_scopes
from connector.config import Settings, ShopSettings
from connector.services.shop_config import InvalidShop, ShopConfiguration, ShopExists
from connector.store import Store

log = logging.getLogger("connector.shopify_app")

DEFAULT_REGION = "everywhere"
DEFAULT_PROMISE_DAYS = 7
WEBHOOK_PATH = "/webhooks/shopify"
CALLBACK_PATH = "/shopify/auth/callback"


def new_shop_document(domain: str) -> dict:
    """A new install's configuration: valid, and routing nothing until a node is added."""
    return {
        "platform": "shopify",
        "shop_domain": domain,
        "timezone": "UTC",
        "regions": [{"id": DEFAULT_REGION, "name": "Everywhere", "promise_days": DEFAULT_PROMISE_DAYS}],
        "default_region": DEFAULT_REGION,
        "nodes": [],
    }


@dataclass(frozen=True)
class OfferedLocation:
    location: object  # adapters.shopify_install.ShopLocation
    node_id: str | None  # the node it already is, if any


class ShopifyApp:
    def __init__(self, settings: Settings, shop_config: ShopConfiguration, shops, keeper, tokens,
                 install_for: Callable[[str], object], clock: Callable[[], datetime]):
        """``keeper``: adapters.shopify_auth.TokenKeeper over ``tokens`` (connector.token_store);
        ``install_for(domain)``: that shop's adapters.shopify_install.ShopifyInstall."""
        self.settings = settings
        self.shop_config = shop_config
        self.shops = shops
        self.keeper = keeper
        self.tokens = tokens
        self.install_for = install_for
        self.clock = clock

    @property
    def client_id(self) -> str:
        return self.keeper.oauth.client_id

    # ------------------------------------------------------------ installing

    def ensure_installed(self, store: Store, domain: str, session_token: str, user: str) -> str:
        """The shop id behind a verified session token; on a shop without stored tokens (a new
        install, a reinstall) token exchange first, then the install. Raises the adapter's
        InvalidSubjectToken when Shopify refuses the session token."""
        shop = self.shops.by_domain(domain)
        if shop is not None and shop.platform == "shopify" and self.tokens.has(domain):
            return shop.id
        self.keeper.exchange(domain, session_token)
        return self.installed(store, domain, f"shopify install (user {user})")

    def installed(self, store: Store, domain: str, actor: str) -> str:
        """Tokens for ``domain`` are stored: subscribe its webhooks where the TOML does not, and
        create the shop with safe defaults (or reactivate it after an uninstall)."""
        if self.settings.shopify.subscribe_webhooks:
            self.resubscribe(domain)
        existing = next((row for row in self.shop_config.list(store)
                         if row["platform"] == "shopify" and row["store"] == domain), None)
        if existing is None:
            shop_id = self._new_shop_id(store, domain)
            try:
                self.shop_config.create(store, shop_id, new_shop_document(domain), actor)
            except (ShopExists, InvalidShop):
                # Two first page loads at once: the other one created it (same store, or the id).
                again = next((row for row in self.shop_config.list(store)
                              if row["platform"] == "shopify" and row["store"] == domain), None)
                if again is None:
                    raise
                return again["shop_id"]
            log.info("shopify: %s installed the app as shop %s", domain, shop_id)
            return shop_id
        if not existing["active"]:
            self.shop_config.activate(store, existing["shop_id"], actor)
            log.info("shopify: %s installed the app again (shop %s)", domain, existing["shop_id"])
        return existing["shop_id"]

    def resubscribe(self, domain: str) -> list:
        """Subscribe the shop's webhook topics to us where a subscription is missing (used
        when ``[shopify] subscribe_webhooks`` is on); returns the subscriptions created."""
        return self.install_for(domain).subscribe(self.settings.web.public_url + WEBHOOK_PATH)

    def _new_shop_id(self, store: Store, domain: str) -> str:
        base = re.sub(r"[^a-z0-9-]", "-", domain.split(".", 1)[0].lower()).strip("-")[:56] or "shop"
        taken = {row["shop_id"] for row in self.shop_config.list(store)}
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def access(self, store: Store, domain: str) -> tuple[frozenset[str] | None, list[str]]:
        """The scopes of the token stored for ``domain`` (None: none stored) and the required
        ones it lacks: whether the app can do its work in that store."""
        granted = self.tokens.granted_scopes(store, domain)
        return granted, [] if granted is None else missing_scopes(REQUIRED_SCOPES, granted)

    # ------------------------------------------------------------ locations as nodes

    def locations(self, shop: ShopSettings) -> list[OfferedLocation]:
        """The store's locations, each with the node it already is (adapter errors pass through)."""
        nodes = {gid: node_id for node_id, gid in shop.shopify_locations.items()}
        return [OfferedLocation(location, nodes.get(location.gid))
                for location in self.install_for(shop.shop_domain).locations()]

    def add_location(self, store: Store, shop: ShopSettings, gid: str, expected_version: int, actor: str) -> str:
        """Add the store location ``gid`` as a node (lanes to every region at its promise);
        the new node's id. Stale ``expected_version``: StaleVersion, nothing saved."""
        location = next((offer.location for offer in self.locations(shop) if offer.location.gid == gid), None)
        if location is None:
            raise LookupError(f"the store has no location {gid}")
        document, _ = self.shop_config.document(store, shop.id)
        if any(node.get("shopify_location") == gid for node in document.get("nodes", [])):
            raise ValueError(f"{location.name} is already a node")
        node_id = _free_id(_slug(location.name), {node["id"] for node in document.get("nodes", [])})
        document.setdefault("nodes", []).append({
            "id": node_id,
            "name": location.name,
            "kind": "3pl" if location.fulfillment_service else "central_warehouse",
            "lanes": [{"region": region["id"], "transit_days": region["promise_days"], "cost_per_order": 0.0}
                      for region in document["regions"]],
            "shopify_location": gid,
        })
        self.shop_config.update(store, shop.id, document, expected_version, actor)
        return node_id


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:56] or "location"


def _free_id(base: str, taken: set[str]) -> str:
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def uninstalled(store: Store, shop_config: ShopConfiguration, tokens, shop_id: str, domain: str | None) -> None:
    """``app/uninstalled``: the shop stops being served and its tokens are forgotten (its data
    stays until ``shop/redact``). Runs inside the inbox's transaction; a redelivery changes nothing."""
    if domain:
        tokens.drop(store, domain)
    if shop_config.directory.get(shop_id) is not None:
        shop_config.deactivate(store, shop_id, "shopify app/uninstalled")
