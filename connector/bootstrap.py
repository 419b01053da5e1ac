"""The composition root: the one place that builds settings, stores, adapters
and services (shops come from the database, through ``Container.shops``). The web app, the CLI, the scheduler and the tests all call
``build``; nothing is built at import time."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from connector.config import ENCRYPTION_KEYS_ENV, ConfigError, ProviderConfig, Settings, ShopSettings, load_settings
from connector.secrets import KeyMissing, SecretBox
from connector.services.actions import ActionCentre
from connector.services.availability import Availability, storefront_client
from connector.services.forwarding import Forwarding
from connector.services.inbox import Inbox
from connector.services.metrics import Metrics
from connector.services.reconcile import OrderReconciliation
from connector.services.retention import Retention
from connector.services.shop_config import ImportResult, ShopConfiguration, StoredShopDirectory, resolver, sync_network
from connector.services import shopify_app
from connector.services.refunds import RefundLookups, woocommerce_orders_client
from connector.services.planning import Planning
from connector.services.store_connections import StoreConnections
from connector.services.sync import StockSync
from connector.services.transfers import Transfers
from connector.services.users import Users
from connector.store import Store
from connector.token_store import SqliteTokenStore


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
    shops: StoredShopDirectory
    shop_config: ShopConfiguration
    connections: StoreConnections
    storefronts: dict = field(default_factory=dict)
    shopify_app: shopify_app.ShopifyApp | None = None  # None: no [shopify] client_id / client secret
    shopify_tokens: SqliteTokenStore | None = None
    metrics: Metrics = field(default_factory=Metrics)
    actions: ActionCentre | None = None  # the action centre's steps (set by build)

    def open_store(self) -> Store:
        """A new connection: one per thread, request or job."""
        return Store.open(self.settings.database_path, self.settings.busy_timeout_ms)

    def init_database(self) -> list[str]:
        """Create or migrate the database and import the config file's shops the database lacks."""
        return self.init_with_shops()[0]

    def init_with_shops(self) -> tuple[list[str], list[ImportResult]]:
        """Migrate, then import each [shops.*] table of the file the database does not have yet;
        a shop already there is never overwritten (``kept`` when the file differs)."""
        store = self.open_store()
        try:
            applied = store.migrate()
            imported = self.shop_config.import_documents(store, self.settings.shop_documents, "connector init",
                                                         replace=False)
            with store.write():
                sync_network(store, [self.shops.require(shop_id) for shop_id in self.shops.ids()], self.clock())
            return applied, imported
        finally:
            store.close()


def build(settings: Settings | None = None, *, config_path: str | None = None,
          clock: Callable[[], datetime] = utc_now,
          warehouse_factory: Callable[[ProviderConfig], object] | None = None,
          storefront_client_factory: Callable[[ShopSettings], object | None] | None = None,
          woocommerce_orders_factory: Callable[[ShopSettings], object | None] | None = None,
          resolve_host: Callable[[str, int], object] | None = None) -> Container:
    """``warehouse_factory``, ``storefront_client_factory`` and ``woocommerce_orders_factory``
    replace the real 3PL, storefront inventory and WooCommerce orders adapters, and
    ``resolve_host`` the DNS lookup of a store being connected (tests and benchmarks pass their own)."""
    from adapters import shopify, woocommerce
    from adapters.woocommerce_connect import resolve_addresses
    from connector.connect_store import SqlitePendingConnections

    settings = settings if settings is not None else load_settings(config_path)
    try:
        box = SecretBox(settings.encryption_keys or os.environ.get(ENCRYPTION_KEYS_ENV, "").split(","))
    except KeyMissing as exc:
        raise ConfigError(str(exc)) from None
    shops = StoredShopDirectory(lambda: Store.open(settings.database_path, settings.busy_timeout_ms),
                                resolver(settings), box)
    storefronts = {"shopify": shopify.ShopifyStorefront(), "woocommerce": woocommerce.WooCommerceStorefront()}
    warehouses = WarehouseRegistry(shops, warehouse_factory or build_warehouse)
    contact_readers = {"shopify": shopify.shipping_contact, "woocommerce": woocommerce.shipping_contact}
    inbox = Inbox(settings, shops, storefronts, clock)
    planning = Planning(settings, shops, clock, inbox.routing)
    # One client per WooCommerce shop, for refunds' lines and for reconciliation alike.
    woocommerce_orders = PerShop(woocommerce_orders_factory or woocommerce_orders_client)
    shop_config = ShopConfiguration(settings, box, shops, clock)
    users = Users(lambda shop_id: shops.get(shop_id) is not None, clock)
    tokens = SqliteTokenStore(lambda: Store.open(settings.database_path, settings.busy_timeout_ms), box, clock)
    inbox.uninstalled = lambda store, shop_id, domain: shopify_app.uninstalled(store, shop_config, tokens, shop_id,
                                                                               domain)
    container = Container(
        settings=settings,
        clock=clock,
        inbox=inbox,
        sync=StockSync(settings, shops, warehouses, clock, inbox.routing),
        forwarding=Forwarding(settings, shops, warehouses, contact_readers, clock),
        refunds=RefundLookups(settings, shops, woocommerce_orders, inbox.routing, clock),
        reconcile=OrderReconciliation(settings, shops, woocommerce_orders, inbox, clock),
        retention=Retention(settings, clock),
        planning=planning,
        transfers=Transfers(clock),
        availability=Availability(settings, shops, clock, planning,
                                  PerShop(storefront_client_factory or storefront_client)),
        shops=shops,
        shop_config=shop_config,
        users=users,
        connections=StoreConnections(settings, shop_config, users, shops, clock,
                                     lambda store: SqlitePendingConnections(store, clock),
                                     resolve=resolve_host or resolve_addresses),
        storefronts=storefronts,
        shopify_app=_shopify_app(settings, shop_config, shops, tokens, clock),
        shopify_tokens=tokens,
    )
    container.actions = ActionCentre(settings, shops, clock, forwarding=container.forwarding, sync=container.sync,
                                     transfers=container.transfers, reconcile=container.reconcile, inbox=inbox,
                                     webhook_setup=woocommerce_webhook_setup, shopify_app=container.shopify_app)
    return container


def woocommerce_webhook_setup(shop: ShopSettings):
    """What repairs a WooCommerce shop's order webhooks: signed with the shop's current
    webhook secret (so nothing in its configuration changes), over its REST API key;
    None without one."""
    from adapters.woocommerce_connect import WooCommerceWebhooks
    from adapters.woocommerce_stock import rest_client

    keys = shop.storefront
    if shop.platform != "woocommerce" or not (keys.consumer_key and keys.consumer_secret) or not shop.secrets:
        return None
    return WooCommerceWebhooks(rest_client(shop.store_url, keys.consumer_key, keys.consumer_secret),
                               new_secret=lambda: shop.secrets[0])


def shopify_client_secrets(settings: Settings) -> tuple[str, ...]:
    """The app's client secret, then the previous one during a rotation (environment first)."""
    app, env = settings.shopify, settings.env
    found = (env.get("CONNECTOR_SHOPIFY_CLIENT_SECRET") or app.client_secret,
             env.get("CONNECTOR_SHOPIFY_PREVIOUS_CLIENT_SECRET") or app.previous_client_secret)
    return tuple(secret for secret in found if secret)


def _shopify_app(settings: Settings, shop_config: ShopConfiguration, shops, tokens: SqliteTokenStore,
                 clock) -> shopify_app.ShopifyApp | None:
    from adapters.shopify_auth import ShopifyOAuth, TokenKeeper
    from adapters.shopify_install import ShopifyInstall

    secrets = shopify_client_secrets(settings)
    if not settings.shopify.client_id or not secrets:
        return None
    keeper = TokenKeeper(ShopifyOAuth(settings.shopify.client_id, secrets[0], now=clock), tokens, now=clock)
    return shopify_app.ShopifyApp(settings, shop_config, shops, keeper, tokens,
                                  lambda domain: ShopifyInstall(domain, auth=keeper.auth(domain)), clock)


class PerShop:
    """A shop's storefront API client, built on first use and kept (one HTTP session,
    one throttle state per shop); None, kept too, when the shop has no credentials.
    Built again when the shop's configuration has a new version (new credentials)."""

    def __init__(self, factory: Callable[[ShopSettings], object | None]):
        self._factory = factory
        self._built: dict[str, tuple[int, object | None]] = {}

    def __call__(self, shop: ShopSettings):
        built = self._built.get(shop.id)
        if built is None or built[0] != shop.version:
            built = self._built[shop.id] = (shop.version, self._factory(shop))
        return built[1]


class WarehouseRegistry:
    """One adapter (and so one HTTP session and token cache) per provider account, built on
    first use, and again when the account's configuration changes (a new version of the shop
    that leaves the account as it was keeps its adapter and token)."""

    def __init__(self, shops, factory: Callable[[ProviderConfig], object]):
        self._shops = shops
        self._factory = factory
        self._built: dict[tuple[str, str], tuple[ProviderConfig, object]] = {}

    def __call__(self, shop_id: str, provider_id: str):
        key = (shop_id, provider_id)
        config = self._shops.require(shop_id).providers[provider_id]
        built = self._built.get(key)
        if built is None or built[0] != config:
            built = self._built[key] = (config, self._factory(config))
        return built[1]


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
