"""The composition root: the one place that builds settings, stores, adapters
and services. The web app, the CLI, the scheduler and the tests all call
``build``; nothing is built at import time."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from connector.config import ProviderConfig, Settings, ShopSettings, load_settings
from connector.services.availability import Availability, storefront_client
from connector.services.forwarding import Forwarding
from connector.services.inbox import Inbox
from connector.services.reconcile import OrderReconciliation
from connector.services.retention import Retention
from connector.services.refunds import RefundLookups, woocommerce_orders_client
from connector.services.planning import Planning
from connector.services.sync import StockSync
from connector.services.transfers import Transfers
from connector.services.users import Users
from connector.store import Store


CSV_DEFAULT_LOCATION = "default"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Container:
    settings: Settings
    clock: Callable[[], datetime]
    inbox: Inbox
    sync: StockSync
    forwarding: Forwarding
    refunds: RefundLookups
    reconcile: OrderReconciliation
    retention: Retention
    planning: Planning
    transfers: Transfers
    availability: Availability
    users: Users
    storefronts: dict = field(default_factory=dict)

    def open_store(self) -> Store:
        """A new connection: one per thread, request or job."""
        return Store.open(self.settings.database_path, self.settings.busy_timeout_ms)

    def init_database(self) -> list[str]:
        """Create or migrate the database and load shops, regions and nodes from the config."""
        store = self.open_store()
        try:
            applied = store.migrate()
            sync_network(store, self.settings, self.clock())
            return applied
        finally:
            store.close()


def build(settings: Settings | None = None, *, config_path: str | None = None,
          clock: Callable[[], datetime] = utc_now,
          warehouse_factory: Callable[[ProviderConfig], object] | None = None,
          storefront_client_factory: Callable[[ShopSettings], object | None] | None = None,
          woocommerce_orders_factory: Callable[[ShopSettings], object | None] | None = None) -> Container:
    """``warehouse_factory``, ``storefront_client_factory`` and ``woocommerce_orders_factory``
    replace the real 3PL, storefront inventory and WooCommerce orders adapters (tests and
    benchmarks pass their own)."""
    from adapters import shopify, woocommerce

    settings = settings if settings is not None else load_settings(config_path)
    storefronts = {"shopify": shopify.ShopifyStorefront(), "woocommerce": woocommerce.WooCommerceStorefront()}
    warehouses = WarehouseRegistry(settings, warehouse_factory or build_warehouse)
    contact_readers = {"shopify": shopify.shipping_contact, "woocommerce": woocommerce.shipping_contact}
    inbox = Inbox(settings, storefronts, clock)
    planning = Planning(settings, clock, inbox.routing)
    # One client per WooCommerce shop, for refunds' lines and for reconciliation alike.
    woocommerce_orders = PerShop(woocommerce_orders_factory or woocommerce_orders_client)
    return Container(
        settings=settings,
        clock=clock,
        inbox=inbox,
        sync=StockSync(settings, warehouses, clock, inbox.routing),
        forwarding=Forwarding(settings, warehouses, contact_readers, clock),
        refunds=RefundLookups(settings, woocommerce_orders, inbox.routing, clock),
        reconcile=OrderReconciliation(settings, woocommerce_orders, inbox, clock),
        retention=Retention(settings, clock),
        planning=planning,
        transfers=Transfers(clock),
        availability=Availability(settings, clock, planning, PerShop(storefront_client_factory or storefront_client)),
        users=Users(lambda shop_id: shop_id in settings.shops, clock),
        storefronts=storefronts,
    )


class PerShop:
    """A shop's storefront API client, built on first use and kept (one HTTP session,
    one throttle state per shop); None, kept too, when the shop has no credentials."""

    def __init__(self, factory: Callable[[ShopSettings], object | None]):
        self._factory = factory
        self._built: dict[str, object | None] = {}

    def __call__(self, shop: ShopSettings):
        if shop.id not in self._built:
            self._built[shop.id] = self._factory(shop)
        return self._built[shop.id]


class WarehouseRegistry:
    """One adapter (and so one HTTP session and token cache) per provider account, built on first use."""

    def __init__(self, settings: Settings, factory: Callable[[ProviderConfig], object]):
        self._settings = settings
        self._factory = factory
        self._built: dict[tuple[str, str], object] = {}

    def __call__(self, shop_id: str, provider_id: str):
        key = (shop_id, provider_id)
        if key not in self._built:
            self._built[key] = self._factory(self._settings.shops[shop_id].providers[provider_id])
        return self._built[key]


def build_warehouse(config: ProviderConfig):
    """The real adapter for a configured provider account."""
    from adapters import csv_feed, extensiv, shipbob, shiphero, shipmonk

    if config.type == "shipbob":
        return shipbob.ShipBobWarehouse(config.token, config.channel_id,
                                        base_url=config.base_url or shipbob.PRODUCTION_URL)
    if config.type == "shipmonk":
        return shipmonk.ShipMonkWarehouse(config.token, config.store_id,
                                          base_url=config.base_url or shipmonk.PRODUCTION_URL)
    if config.type == "shiphero":
        return shiphero.ShipHeroWarehouse(config.refresh_token, customer_account_id=config.customer_account_id,
                                          base_url=config.base_url or shiphero.PRODUCTION_URL)
    if config.type == "extensiv":
        return extensiv.ExtensivWarehouse(config.client_id, config.client_secret, tpl=config.tpl,
                                          user_login_id=config.user_login_id, customer_id=config.customer_id,
                                          facility_id=config.facility_id, carrier=config.carrier,
                                          billing_code=config.billing_code, account=config.account,
                                          base_url=config.base_url or extensiv.PRODUCTION_URL)
    if config.type == "csv":
        # Rows without a location column belong to the feed's node that sets no provider_location.
        return csv_feed.CsvFeedWarehouse(config.url or config.path, default_location=CSV_DEFAULT_LOCATION)
    raise ValueError(f"unknown provider type {config.type!r}")


def sync_network(store: Store, settings: Settings, now: datetime) -> None:
    """Configuration is the source of truth for shops, regions and nodes."""
    shops, regions, nodes = [], [], []
    for shop in settings.shops.values():
        network = shop.network
        shops.append({"id": shop.id, "platform": shop.platform, "domain": shop.shop_domain or shop.store_url,
                      "timezone": shop.timezone})
        for region in network.regions.values():
            regions.append({
                "shop_id": shop.id, "id": region.id, "name": region.name, "promise_days": region.promise_days,
                "fallback": region.fallback,
                "spec": json.dumps({"countries": sorted(region.countries), "provinces": sorted(region.provinces),
                                    "postal_prefixes": sorted(region.postal_prefixes)}),
            })
        for node in network.nodes.values():
            nodes.append({
                "shop_id": shop.id, "id": node.id, "name": node.name, "kind": node.kind, "role": node.role,
                "status": node.status.value, "priority": node.priority,
                "spec": json.dumps({
                    "lanes": {r: {"transit_days": l.transit_days, "cost_per_order": l.cost_per_order}
                              for r, l in node.lanes.items()},
                    "capabilities": sorted(node.capabilities),
                    "cutoff": node.cutoff.isoformat() if node.cutoff else None,
                    "daily_capacity": node.daily_capacity,
                    "active_from": node.active_from, "active_until": node.active_until,
                    "backups": list(node.backups),
                }, default=str),
            })
    store.sync_shops(shops, regions, nodes, now)
