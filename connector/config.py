"""TOML + environment -> typed settings, with one clear message per problem.

The file is read from ``--config PATH`` or ``CONNECTOR_CONFIG``. Secrets may be
left out of the file and supplied by environment variables instead:

- ``CONNECTOR_SHOPIFY_CLIENT_SECRET`` / ``CONNECTOR_SHOPIFY_PREVIOUS_CLIENT_SECRET``
- ``CONNECTOR_SHOP_<ID>_WEBHOOK_SECRET`` (ID upper-cased, non-alphanumerics as ``_``)
- ``CONNECTOR_SHOP_<ID>_<PROVIDER>_<TOKEN|REFRESH_TOKEN|CLIENT_SECRET>`` for 3PL accounts
- ``CONNECTOR_SHOP_<ID>_<ACCESS_TOKEN|CONSUMER_KEY|CONSUMER_SECRET|API_KEY>`` for the storefront push and API
- ``CONNECTOR_DATABASE`` overrides ``[database] path``.

Every problem becomes a ``ConfigError`` naming the key; the CLI prints it and
exits with status 2.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connector.domain.allocation import DEGRADED_PENALTY
from connector.domain.model import (
    Handling,
    Lane,
    Mode,
    ModePolicy,
    Network,
    Node,
    NodeStatus,
    Region,
    Restriction,
    RoutingPolicy,
    Rule,
    SkuRule,
)

CONFIG_ENV = "CONNECTOR_CONFIG"
WEB_SECRET_KEY_ENV = "CONNECTOR_WEB_SECRET_KEY"
KNOWN_CAPABILITIES = frozenset({"cold_chain", "fragile", "oversized", "pickup", "kitting"})
DEFAULT_RULES = (Rule.SINGLE_SHIPMENT, Rule.FASTEST, Rule.PRIORITY, Rule.CHEAPEST, Rule.MOST_STOCK)

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]


class ConfigError(Exception):
    """A configuration problem, already phrased for the person fixing the file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SecretKey:
    """Marks a key whose value is a credential: a config error names the key but
    never shows the value (see ``_describe``)."""


Secret = Annotated[str, _SecretKey()]


def secret_keys() -> frozenset[str]:
    """The names of every key marked ``Secret`` (or ``Secret | None``) in any config section."""
    def marked(info) -> bool:
        metadata = [*info.metadata, *(m for arg in get_args(info.annotation) for m in getattr(arg, "__metadata__", ()))]
        return any(isinstance(meta, _SecretKey) for meta in metadata)

    return frozenset(name for model in _Strict.__subclasses__() for name, info in model.model_fields.items()
                     if marked(info))


class DatabaseConfig(_Strict):
    path: str = "connector.db"
    busy_timeout_ms: int = Field(5000, ge=0)


class WebConfig(_Strict):
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Signs the pages' session cookies and one-time login links (or CONNECTOR_WEB_SECRET_KEY);
    # the web app refuses to start without one of at least 32 characters.
    secret_key: Secret = ""
    # Reverse proxies in front of the app (nginx: 1): the client's address and scheme are
    # read from that many X-Forwarded-* hops; 0 trusts none (direct connections).
    proxy_hops: int = Field(0, ge=0, le=5)
    process_inbox: bool = True  # drain the inbox in a background thread of each web process
    # After a webhook wakes that thread it waits this long, so a burst is applied in
    # a few large batches instead of one write transaction per delivery.
    inbox_batch_window_ms: int = Field(100, ge=0, le=10_000)
    # Smaller batches than [processing] batch_size: the web worker shares its process
    # and the write lock with requests waiting to be answered.
    inbox_batch_size: int = Field(10, ge=1, le=1000)
    # Group commit: with several requests in flight per process (gunicorn gthread),
    # the webhooks that arrive together are stored in one transaction (by the request
    # that found no commit under way), so they share one fsync'd commit; each is
    # answered once that commit returned.
    group_commit: bool = True
    group_commit_max_rows: int = Field(64, ge=1, le=1000)  # rows per transaction
    # How long a group's leader waits for more rows after its own; 0: a group is
    # whatever queued up while the previous commit ran.
    group_commit_max_wait_ms: float = Field(0, ge=0, le=10)
    # Deliveries waiting for a commit, per process; one more is answered 503.
    group_commit_queue_size: int = Field(256, ge=1, le=100_000)


class ProcessingConfig(_Strict):
    batch_size: int = Field(50, ge=1, le=1000)
    max_attempts: int = Field(5, ge=1)
    # Pause between full batches so webhook inserts and other drainers get the
    # write lock (SQLite's busy handler polls; a drainer that re-locks at once starves them).
    pause_between_batches_ms: float = Field(1.0, ge=0, le=1000)


class SyncConfig(_Strict):
    stale_after_minutes: int = Field(120, ge=1)  # stock older than this makes its node degraded
    stale_policy: Literal["discount", "exclude"] = "discount"  # what routing does with a stale node
    stale_discount: float = Field(0.5, gt=0, le=1)  # share of a stale node's stock routing may promise
    incremental_every_minutes: int = Field(30, ge=1)
    nightly_at: str = "02:30"  # local time in each shop's timezone

    @field_validator("nightly_at")
    @classmethod
    def _nightly_format(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"nightly_at must be HH:MM (24 h), got {value!r}")
        return value


class SchedulerConfig(_Strict):
    inbox_every_seconds: int = Field(2, ge=1)
    forward_every_seconds: int = Field(60, ge=1)
    forward_max_attempts: int = Field(8, ge=1)  # then the forwarding shows as an exception
    shipments_every_minutes: int = Field(15, ge=1)
    push_every_seconds: int = Field(2, ge=1)  # how often due (debounced) storefront pushes are run
    refunds_every_seconds: int = Field(60, ge=1)  # how often WooCommerce refunds' lines are looked up
    # WooCommerce never redelivers a webhook: read back the orders that changed.
    reconcile_every_seconds: int = Field(300, ge=10)
    reconcile_overlap_minutes: int = Field(10, ge=0, le=1440)  # re-read this much before the last change seen
    reconcile_first_lookback_hours: int = Field(24, ge=0, le=24 * 90)  # a shop's first run starts this far back
    reconcile_max_requests: int = Field(50, ge=1, le=10_000)  # per shop and run (100 orders each); the rest next run
    retention_every_hours: int = Field(24, ge=1, le=24 * 7)  # how often old personal data is minimised
    misfire_grace_seconds: int = Field(300, ge=1)


class PrivacyConfig(_Strict):
    # Order deliveries hold the buyer's name, address, email and phone, and are needed only
    # until the order is done with: after this many days they are cut to nothing (an order
    # whose 3PL hand-over is still due keeps its own). Stock accounting keeps no personal data.
    keep_personal_data_days: int = Field(90, ge=7, le=3650)


class LaunchConfig(_Strict):
    skus: str = Field("*", min_length=1)  # exact SKU or glob
    starts: datetime
    ends: datetime
    uplift: float = Field(gt=0, le=100)  # demand multiplier inside the window


class PlanningConfig(_Strict):
    """Forecast, safety stock and the allocation that storefront availability follows."""

    history_weeks: int = Field(26, ge=1, le=156)
    horizon_weeks: float = Field(4, gt=0, le=52)  # the demand the allocation plans stock for
    alpha: float = Field(0.3, gt=0, le=1)  # level smoothing
    beta: float = Field(0.1, ge=0, le=1)  # trend smoothing
    lead_time_days: int = Field(14, ge=0, le=365)  # hub -> node replenishment
    supplier_lead_time_days: int | None = Field(None, ge=0, le=365)  # supplier -> hub (default lead_time_days)
    review_days: int = Field(7, ge=1, le=90)
    service_level: float | None = Field(0.95, gt=0.5, lt=1)
    safety_days: float | None = Field(None, ge=0, le=365)
    hub: Identifier | None = None  # the node that replenishes the others
    lost_sale_cost: float = Field(20.0, gt=0)  # per unit, for SKUs without unit_value
    degraded_penalty: float = Field(DEGRADED_PENALTY, ge=0)  # extra cost per unit from a degraded node
    launches: list[LaunchConfig] = []


class TransferLaneConfig(_Strict):
    from_node: Identifier
    to_node: Identifier
    cost_per_unit: float = Field(ge=0)
    lead_days: int = Field(2, ge=0, le=120)


class RebalanceConfig(_Strict):
    lanes: list[TransferLaneConfig] = []
    min_transfer_units: int = Field(1, ge=1)
    launch_lock_at: datetime | None = None  # from then on every transfer needs approval, emergencies aside
    approval_units_over: int | None = Field(None, ge=1)
    approval_value_over: float | None = Field(None, gt=0)
    emergency_cover_days: float = Field(2.0, ge=0)


class StorefrontConfig(_Strict):
    """Pushing availability to the store, and the read API for storefront widgets."""

    push: bool = True
    api_version: str = Field("2026-04", pattern=r"^20\d\d-(01|04|07|10)$")  # Shopify Admin GraphQL
    access_token: Secret = ""  # Shopify Admin API token
    consumer_key: Secret = ""  # WooCommerce REST key (read_write)
    consumer_secret: Secret = ""
    debounce_seconds: float = Field(5.0, ge=0, le=3600)  # after orders: wait, then push once
    api_key: Secret = ""  # for GET /api/availability

    @field_validator("api_version")
    @classmethod
    def _supported_version(cls, value: str) -> str:
        if value < "2026-04":
            raise ValueError("must be 2026-04 or later (changeFromQuantity and @idempotent are required from 2026-04)")
        return value


class ShopifyAppConfig(_Strict):
    client_secret: Secret = ""
    previous_client_secret: Secret = ""  # kept during rotation: Shopify may sign with it for an hour


PROVIDER_SECRET_KEYS = ("token", "refresh_token", "client_secret")
# What each provider needs before it can be built (secrets may come from the environment).
_PROVIDER_REQUIRED = {
    "shipbob": ("token",),
    "shipmonk": ("token",),
    "shiphero": ("refresh_token",),
    "extensiv": ("client_id", "client_secret", "tpl", "user_login_id", "customer_id"),
    "csv": (),
}
# What a provider account needs on top to receive orders (a node with forward_orders).
_FORWARD_REQUIRED = {"shipbob": ("channel_id",), "shipmonk": ("store_id",), "extensiv": ("carrier",)}


class ProviderConfig(_Strict):
    """A 3PL account (or feed) that one or more nodes get their stock from."""

    type: Literal["shipbob", "shipmonk", "shiphero", "extensiv", "csv"]
    base_url: str | None = None  # e.g. ShipBob's sandbox https://sandbox-api.shipbob.com
    token: Secret = ""  # ShipBob personal access token, ShipMonk API key
    channel_id: str | None = None  # ShipBob: the channel with write scopes (needed to forward orders)
    store_id: int | None = None  # ShipMonk store
    refresh_token: Secret = ""  # ShipHero
    customer_account_id: str | None = None  # ShipHero, for 3PL accounts
    client_id: Secret = ""  # Extensiv client credentials
    client_secret: Secret = ""
    tpl: Secret | None = None  # Extensiv 3PL key
    user_login_id: str | None = None
    customer_id: int | None = None  # Extensiv customer the stock belongs to
    facility_id: int | None = None
    carrier: str | None = None  # Extensiv routingInfo.carrier of forwarded orders, e.g. "UPS"
    billing_code: str = "Prepaid"  # Extensiv order billingCode (Prepaid, Collect, ThirdParty, ...)
    account: str | None = None  # Extensiv routingInfo.account: the carrier account to bill, if any
    url: str | None = None  # CSV feed over HTTPS
    path: str | None = None  # CSV feed on disk
    sku_map: dict[str, str] = {}  # provider SKU -> our SKU, where they differ

    def provider_sku(self, sku: str) -> str:
        """Our SKU as the provider knows it (``sku_map`` read backwards, for forwarded
        lines). ValueError when our SKU is, unmapped, a provider SKU that means another of ours."""
        for provider_sku, ours in self.sku_map.items():
            if ours == sku:
                return provider_sku
        if sku in self.sku_map:
            raise ValueError(f"our SKU {sku!r} is the provider's SKU for our {self.sku_map[sku]!r} (sku_map); "
                             f"map {sku!r} too")
        return sku


class LaneConfig(_Strict):
    region: Identifier
    transit_days: int = Field(ge=0, le=60)
    cost_per_order: float = Field(ge=0)


class NodeConfig(_Strict):
    id: Identifier
    name: str
    kind: Literal[
        "central_warehouse",
        "regional_hub",
        "micro_warehouse",
        "3pl",
        "cold_storage",
        "popup",
        "event_storage",
        "dropship",
        "local_partner",
        "garage",
    ]
    role: Literal["launch_buffer", "evergreen", "event_support", "regional_replenishment", "backup"] = "evergreen"
    lanes: list[LaneConfig] = Field(min_length=1)
    capabilities: list[str] = []
    cutoff: str | None = None  # "HH:MM" local to the shop's timezone
    daily_capacity: int | None = Field(None, ge=0)
    status: NodeStatus = NodeStatus.ACTIVE
    active_from: datetime | None = None
    active_until: datetime | None = None
    backups: list[Identifier] = []
    priority: int = 100
    stock_source: str = "manual"  # "manual" (counts typed in) or a provider id from [shops.X.providers]
    provider_location: str | None = None  # the provider's location/warehouse/facility id for this node
    forward_orders: bool = False  # hand routed orders to the provider (else the storefront's 3PL app does)
    # The 3PL's name for the service forwarded orders ship with, and per region (its promise) where it differs.
    shipping_method: str | None = None
    shipping_methods: dict[Identifier, str] = {}
    shopify_location: str | None = Field(None, pattern=r"^gid://shopify/Location/\d+$")
    lead_time_days: int | None = Field(None, ge=0, le=365)  # replenishment lead time to this node

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - KNOWN_CAPABILITIES)
        if unknown:
            raise ValueError(f"unknown capability {', '.join(unknown)} (known: {', '.join(sorted(KNOWN_CAPABILITIES))})")
        return value

    @field_validator("shipping_method", "shipping_methods")
    @classmethod
    def _no_blank_method(cls, value):
        if any(not m.strip() for m in ([value] if isinstance(value, str) else (value or {}).values())):
            raise ValueError("a shipping method must not be empty (the 3PL's name for the service)")
        return value

    @field_validator("cutoff")
    @classmethod
    def _cutoff_format(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"cutoff must be HH:MM (24 h), got {value!r}")
        return value


class RegionConfig(_Strict):
    id: Identifier
    name: str
    promise_days: int = Field(ge=0, le=60)
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = []
    provinces: list[Annotated[str, Field(pattern=r"^[A-Z]{2}-[A-Z0-9]{1,3}$")]] = []
    postal_prefixes: list[Annotated[str, Field(pattern=r"^[A-Z]{2}:[A-Za-z0-9 ]+$")]] = []
    fallback: Identifier | None = None


class SkuConfig(_Strict):
    pattern: str = Field(min_length=1)
    handling: list[Handling] = []
    max_transit_days: int | None = Field(None, ge=0)
    tier: Literal["A", "B", "C"] | None = None
    unit_value: float | None = Field(None, gt=0)
    prior_weekly_units: float | None = Field(None, ge=0)
    category: str | None = None


class RestrictionConfig(_Strict):
    regions: list[str] = Field(min_length=1)  # region ids, or "*"
    nodes: list[Identifier] = Field(min_length=1)


class ModeConfig(_Strict):
    rules: list[Rule] = Field(default_factory=lambda: list(DEFAULT_RULES), min_length=1)
    restrict: list[RestrictionConfig] = []


class RoutingConfig(_Strict):
    mode: Mode = Mode.NORMAL
    modes: dict[Mode, ModeConfig] = {}


class ShopConfig(_Strict):
    platform: Literal["shopify", "woocommerce"]
    shop_domain: str | None = None  # Shopify: {shop}.myshopify.com
    store_url: str | None = None  # WooCommerce: the store's home URL
    webhook_secret: Secret = ""
    timezone: str = "UTC"
    default_region: Identifier | None = None
    regions: list[RegionConfig] = Field(min_length=1)
    nodes: list[NodeConfig] = Field(min_length=1)
    skus: list[SkuConfig] = []
    routing: RoutingConfig = RoutingConfig()
    providers: dict[Identifier, ProviderConfig] = {}
    planning: PlanningConfig = PlanningConfig()
    rebalance: RebalanceConfig = RebalanceConfig()
    storefront: StorefrontConfig = StorefrontConfig()


class FileConfig(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    web: WebConfig = WebConfig()
    processing: ProcessingConfig = ProcessingConfig()
    sync: SyncConfig = SyncConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    shopify: ShopifyAppConfig = ShopifyAppConfig()
    shops: dict[Identifier, ShopConfig] = Field(min_length=1)


# ---------------------------------------------------------------- resolved settings


@dataclass(frozen=True)
class NodeSource:
    """Where a node's stock is known from, and whether we forward its orders."""

    node_id: str
    provider: str | None  # provider id; None for counts typed in by hand
    location: str | None
    forward_orders: bool
    shipping_method: str | None = None
    shipping_methods: Mapping[str, str] = field(default_factory=dict)

    def shipping_method_for(self, region_id: str | None) -> str | None:
        """The 3PL service for an order to ``region_id`` (validated at load to exist)."""
        return self.shipping_methods.get(region_id or "", self.shipping_method)


@dataclass(frozen=True)
class ShopSettings:
    id: str
    platform: str
    shop_domain: str | None
    store_url: str | None
    secrets: tuple[str, ...]  # current first; the previous one during a rotation
    network: Network
    providers: Mapping[str, ProviderConfig]
    sources: Mapping[str, NodeSource]
    planning: PlanningConfig = PlanningConfig()
    rebalance: RebalanceConfig = RebalanceConfig()
    storefront: StorefrontConfig = StorefrontConfig()  # secrets resolved from the environment
    shopify_locations: Mapping[str, str] = field(default_factory=dict)  # node id -> Shopify location gid
    node_lead_time_days: Mapping[str, int] = field(default_factory=dict)  # replenishment lead time overrides

    @property
    def timezone(self) -> str:
        return self.network.timezone


@dataclass(frozen=True)
class Settings:
    database_path: Path
    busy_timeout_ms: int
    web: WebConfig
    processing: ProcessingConfig
    shops: Mapping[str, ShopSettings]
    source: str = "<memory>"
    sync: SyncConfig = SyncConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    web_secret_key: str = ""  # [web] secret_key, or CONNECTOR_WEB_SECRET_KEY

    def shop_by_domain(self, domain: str) -> ShopSettings | None:
        """The shop whose Shopify domain or normalised WooCommerce URL is ``domain``."""
        return self._by_domain.get(domain)

    @cached_property
    def _by_domain(self) -> dict[str, ShopSettings]:
        return {shop.shop_domain or shop.store_url or "": shop for shop in self.shops.values()}


def normalise_store_url(url: str) -> str:
    """"https://Shop.Example.com/" -> "https://shop.example.com" (as WooCommerce's
    X-WC-Webhook-Source is compared)."""
    url = url.strip()
    match = re.match(r"^(https?)://([^/]+)(/.*)?$", url, re.IGNORECASE)
    if not match:
        return url.rstrip("/")
    scheme, host, path = match.group(1).lower(), match.group(2).lower(), (match.group(3) or "")
    return f"{scheme}://{host}{path.rstrip('/')}"


def _env_id(value: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", value.upper())


def secret_env_name(shop_id: str) -> str:
    return f"CONNECTOR_SHOP_{_env_id(shop_id)}_WEBHOOK_SECRET"


STOREFRONT_SECRET_KEYS = ("access_token", "consumer_key", "consumer_secret", "api_key")


def storefront_secret_env_name(shop_id: str, key: str) -> str:
    return f"CONNECTOR_SHOP_{_env_id(shop_id)}_{key.upper()}"


def provider_secret_env_name(shop_id: str, provider_id: str, key: str) -> str:
    return f"CONNECTOR_SHOP_{_env_id(shop_id)}_{_env_id(provider_id)}_{key.upper()}"


# ---------------------------------------------------------------- loading


def load_settings(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"no configuration: pass --config PATH or set {CONFIG_ENV}")
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return settings_from_dict(raw, env=env, base_dir=file.resolve().parent, source=str(file))


def settings_from_dict(
    raw: Mapping[str, Any], env: Mapping[str, str] | None = None, base_dir: Path | None = None, source: str = "<dict>"
) -> Settings:
    env = {} if env is None else env
    try:
        parsed = FileConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe(exc)}") from None
    base_dir = base_dir or Path.cwd()
    shops = {shop_id: _shop_settings(shop_id, shop, parsed.shopify, env, source, base_dir)
             for shop_id, shop in parsed.shops.items()}
    _check_unique_domains(shops, source)
    db_path = Path(env.get("CONNECTOR_DATABASE") or parsed.database.path)
    if not db_path.is_absolute() and str(db_path) != ":memory:":
        db_path = base_dir / db_path
    return Settings(
        database_path=db_path,
        busy_timeout_ms=parsed.database.busy_timeout_ms,
        web=parsed.web,
        processing=parsed.processing,
        shops=shops,
        source=source,
        sync=parsed.sync,
        scheduler=parsed.scheduler,
        privacy=parsed.privacy,
        web_secret_key=env.get(WEB_SECRET_KEY_ENV) or parsed.web.secret_key,
    )


def _describe(exc: ValidationError) -> str:
    messages = []
    for error in exc.errors():
        key = _key_path(error["loc"])
        if error["type"] == "extra_forbidden":
            messages.append(f"{key}: unknown key")
        elif error["type"] == "missing":
            messages.append(f"{key}: required key is missing")
        else:
            message = error["msg"].removeprefix("Value error, ")
            hidden = _secrets_in(error["loc"], error.get("input"))
            if hidden is None:
                got = "" if "got " in message else f" (got {error.get('input')!r})"
            else:  # a credential: named, never shown, not even inside a table or list
                for value in hidden:
                    message = message.replace(value, "***")
                got = ""
            messages.append(f"{key}: {message}{got}")
    shown = messages[:5]
    more = f" (and {len(messages) - 5} more)" if len(messages) > 5 else ""
    return "; ".join(shown) + more


def _secrets_in(loc: tuple, value: Any) -> list[str] | None:
    """The credentials an erroneous input holds (its strings, when it sits under a
    secret key; the values of secret keys inside it), or None when it holds none."""
    keys = secret_keys()
    found: list[str] = []

    def walk(item: Any, secret: bool) -> None:
        if isinstance(item, Mapping):
            for name, inner in item.items():
                walk(inner, secret or name in keys)
        elif isinstance(item, (list, tuple)):
            for inner in item:
                walk(inner, secret)
        elif secret:
            found.append(str(item))

    under_secret = any(part in keys for part in loc if isinstance(part, str))
    walk(value, under_secret)
    return found if found or under_secret else None


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _shop_settings(
    shop_id: str, shop: ShopConfig, app: ShopifyAppConfig, env: Mapping[str, str], source: str, base_dir: Path
) -> ShopSettings:
    where = f"shops.{shop_id}"

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{source}: {where}.{key}: {problem}")

    try:
        ZoneInfo(shop.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail("timezone", f"unknown time zone {shop.timezone!r}") from None

    if shop.platform == "shopify":
        if not shop.shop_domain or not re.fullmatch(r"[a-z0-9][a-z0-9-]*\.myshopify\.com", shop.shop_domain):
            raise fail("shop_domain", f"must be {{shop}}.myshopify.com for a Shopify shop, got {shop.shop_domain!r}")
        if shop.store_url:
            raise fail("store_url", "is for WooCommerce shops; a Shopify shop has shop_domain")
    else:
        if not shop.store_url or not re.match(r"^https?://[^/\s]+", shop.store_url):
            raise fail("store_url", f"must be the store's http(s) home URL for a WooCommerce shop, got {shop.store_url!r}")
        if shop.shop_domain:
            raise fail("shop_domain", "is for Shopify shops; a WooCommerce shop has store_url")

    secret = env.get(secret_env_name(shop_id)) or shop.webhook_secret
    secrets: list[str] = [secret] if secret else []
    if shop.platform == "shopify":
        for candidate in (
            env.get("CONNECTOR_SHOPIFY_CLIENT_SECRET") or app.client_secret,
            env.get("CONNECTOR_SHOPIFY_PREVIOUS_CLIENT_SECRET") or app.previous_client_secret,
        ):
            if candidate and candidate not in secrets:
                secrets.append(candidate)
    if not secrets:
        hint = " or [shopify] client_secret" if shop.platform == "shopify" else ""
        raise fail("webhook_secret", f"missing: set it in the file{hint}, or the environment variable {secret_env_name(shop_id)}")

    regions = _unique(shop.regions, f"{where}.regions", source)
    nodes = _unique(shop.nodes, f"{where}.nodes", source)
    for i, region in enumerate(shop.regions):
        if region.fallback is not None and region.fallback not in regions:
            raise fail(f"regions[{i}].fallback", f"region {region.fallback!r} is not defined")
        if region.fallback == region.id:
            raise fail(f"regions[{i}].fallback", "a region cannot fall back to itself")
        if not (region.countries or region.provinces or region.postal_prefixes):
            raise fail(f"regions[{i}]", f"region {region.id!r} matches nothing: give countries, provinces or postal_prefixes")
    _check_cycle({r.id: [r.fallback] if r.fallback else [] for r in shop.regions}, f"{where}.regions", "fallbacks",
                 source)
    if shop.default_region is not None and shop.default_region not in regions:
        raise fail("default_region", f"region {shop.default_region!r} is not defined")

    tz = ZoneInfo(shop.timezone)
    domain_nodes: dict[str, Node] = {}
    for i, node in enumerate(shop.nodes):
        lanes: dict[str, Lane] = {}
        for j, lane in enumerate(node.lanes):
            if lane.region not in regions:
                raise fail(f"nodes[{i}].lanes[{j}].region", f"node {node.id!r} serves undefined region {lane.region!r}")
            if lane.region in lanes:
                raise fail(f"nodes[{i}].lanes[{j}].region", f"node {node.id!r} lists region {lane.region!r} twice")
            lanes[lane.region] = Lane(lane.region, lane.transit_days, lane.cost_per_order)
        for j, backup in enumerate(node.backups):
            if backup not in nodes:
                raise fail(f"nodes[{i}].backups[{j}]", f"backup node {backup!r} is not defined")
            if backup == node.id:
                raise fail(f"nodes[{i}].backups[{j}]", "a node cannot be its own backup")
        active_from = _aware(node.active_from, tz)
        active_until = _aware(node.active_until, tz)
        if active_from and active_until and active_from >= active_until:
            raise fail(f"nodes[{i}].active_until", "must be after active_from")
        domain_nodes[node.id] = Node(
            id=node.id,
            name=node.name,
            kind=node.kind,
            role=node.role,
            lanes=lanes,
            capabilities=frozenset(node.capabilities),
            status=node.status,
            cutoff=time.fromisoformat(node.cutoff) if node.cutoff else None,
            daily_capacity=node.daily_capacity,
            active_from=active_from,
            active_until=active_until,
            backups=tuple(node.backups),
            priority=node.priority,
        )
    _check_cycle({n.id: list(n.backups) for n in shop.nodes}, f"{where}.nodes", "backups", source)
    for i, region in enumerate(shop.regions):
        if not any(region.id in n.lanes for n in domain_nodes.values()) and region.fallback is None:
            raise fail(f"regions[{i}]", f"no node serves region {region.id!r} and it has no fallback")

    modes: dict[Mode, ModePolicy] = {}
    for mode in Mode:
        mode_config = shop.routing.modes.get(mode, ModeConfig())
        restrictions = []
        for k, restriction in enumerate(mode_config.restrict):
            key = f"routing.modes.{mode.value}.restrict[{k}]"
            for region_id in restriction.regions:
                if region_id != "*" and region_id not in regions:
                    raise fail(f"{key}.regions", f"region {region_id!r} is not defined")
            for node_id in restriction.nodes:
                if node_id not in nodes:
                    raise fail(f"{key}.nodes", f"node {node_id!r} is not defined")
            restrictions.append(Restriction(frozenset(restriction.regions), tuple(restriction.nodes)))
        if len(set(mode_config.rules)) != len(mode_config.rules):
            raise fail(f"routing.modes.{mode.value}.rules", "a rule is listed twice")
        modes[mode] = ModePolicy(tuple(mode_config.rules), tuple(restrictions))

    network = Network(
        shop_id=shop_id,
        timezone=shop.timezone,
        regions={
            r.id: Region(
                id=r.id,
                name=r.name,
                promise_days=r.promise_days,
                countries=frozenset(r.countries),
                provinces=frozenset(r.provinces),
                postal_prefixes=frozenset(p.upper() for p in r.postal_prefixes),
                fallback=r.fallback,
            )
            for r in shop.regions
        },
        nodes=domain_nodes,
        sku_rules=tuple(
            SkuRule(pattern=s.pattern, handling=frozenset(s.handling), max_transit_days=s.max_transit_days, tier=s.tier,
                    unit_value=s.unit_value, prior_weekly_units=s.prior_weekly_units, category=s.category)
            for s in shop.skus
        ),
        routing=RoutingPolicy(mode=shop.routing.mode, modes=modes),
        default_region=shop.default_region,
    )
    providers = {pid: _provider_settings(shop_id, pid, p, env, fail, base_dir) for pid, p in shop.providers.items()}
    sources = _node_sources(shop, providers, fail)
    _check_planning(shop, nodes, tz, fail)
    storefront = shop.storefront.model_copy(update={
        key: env[name] for key in STOREFRONT_SECRET_KEYS if (name := storefront_secret_env_name(shop_id, key)) in env
    })
    if storefront.consumer_key and not (shop.store_url or "").lower().startswith("https://"):
        # The REST API key goes as HTTP Basic auth: over http:// anyone on the path reads it.
        raise fail("store_url", f"must be https:// when a REST API key (storefront consumer_key) is set, "
                                f"got {shop.store_url!r}")
    planning = shop.planning.model_copy(update={"launches": [
        launch.model_copy(update={"starts": _aware(launch.starts, tz), "ends": _aware(launch.ends, tz)})
        for launch in shop.planning.launches
    ]})
    rebalance = shop.rebalance.model_copy(update={"launch_lock_at": _aware(shop.rebalance.launch_lock_at, tz)})
    return ShopSettings(
        id=shop_id,
        platform=shop.platform,
        shop_domain=shop.shop_domain,
        store_url=normalise_store_url(shop.store_url) if shop.store_url else None,
        secrets=tuple(secrets),
        network=network,
        providers=providers,
        sources=sources,
        planning=planning,
        rebalance=rebalance,
        storefront=storefront,
        shopify_locations={n.id: n.shopify_location for n in shop.nodes if n.shopify_location},
        node_lead_time_days={n.id: n.lead_time_days for n in shop.nodes if n.lead_time_days is not None},
    )


def _check_planning(shop: ShopConfig, nodes: set[str], tz: ZoneInfo, fail) -> None:
    planning, rebalance = shop.planning, shop.rebalance
    if planning.hub is not None and planning.hub not in nodes:
        raise fail("planning.hub", f"node {planning.hub!r} is not defined")
    for i, launch in enumerate(planning.launches):
        if _aware(launch.ends, tz) <= _aware(launch.starts, tz):
            raise fail(f"planning.launches[{i}].ends", "must be after starts")
    seen: set[tuple[str, str]] = set()
    for i, lane in enumerate(rebalance.lanes):
        for key in ("from_node", "to_node"):
            if getattr(lane, key) not in nodes:
                raise fail(f"rebalance.lanes[{i}].{key}", f"node {getattr(lane, key)!r} is not defined")
        if lane.from_node == lane.to_node:
            raise fail(f"rebalance.lanes[{i}]", "a transfer lane needs two different nodes")
        if (lane.from_node, lane.to_node) in seen:
            raise fail(f"rebalance.lanes[{i}]", f"lane {lane.from_node} -> {lane.to_node} is listed twice")
        seen.add((lane.from_node, lane.to_node))
    for i, node in enumerate(shop.nodes):
        if node.shopify_location and shop.platform != "shopify":
            raise fail(f"nodes[{i}].shopify_location", "is for Shopify shops")


def _provider_settings(shop_id: str, provider_id: str, provider: ProviderConfig, env: Mapping[str, str],
                       fail, base_dir: Path) -> ProviderConfig:
    overrides: dict[str, Any] = {key: env[name] for key in PROVIDER_SECRET_KEYS
                                 if (name := provider_secret_env_name(shop_id, provider_id, key)) in env}
    if provider.path and not Path(provider.path).is_absolute():
        overrides["path"] = str(base_dir / provider.path)  # relative to the config file, like the database
    provider = provider.model_copy(update=overrides)
    for key in _PROVIDER_REQUIRED[provider.type]:
        if not getattr(provider, key):
            hint = (f" (or the environment variable {provider_secret_env_name(shop_id, provider_id, key)})"
                    if key in PROVIDER_SECRET_KEYS else "")
            raise fail(f"providers.{provider_id}.{key}", f"required for a {provider.type} provider{hint}")
    if provider.type == "csv" and bool(provider.url) == bool(provider.path):
        raise fail(f"providers.{provider_id}", "a csv provider needs exactly one of url or path")
    by_ours: dict[str, str] = {}
    for provider_sku, ours in provider.sku_map.items():
        if ours in by_ours:
            # forwarded lines map ours -> theirs: two of theirs for one of ours is ambiguous
            raise fail(f"providers.{provider_id}.sku_map", f"provider SKUs {by_ours[ours]!r} and {provider_sku!r} "
                                                           f"both map to our {ours!r}; a forwarded {ours!r} could be "
                                                           "either (map each to its own SKU)")
        by_ours[ours] = provider_sku
    if provider.url and not re.match(r"^https?://", provider.url):
        raise fail(f"providers.{provider_id}.url", f"must be an http(s) URL, got {provider.url!r}")
    return provider


def _node_sources(shop: ShopConfig, providers: Mapping[str, ProviderConfig], fail) -> dict[str, NodeSource]:
    sources: dict[str, NodeSource] = {}
    claimed: dict[tuple[str, str | None], str] = {}
    for i, node in enumerate(shop.nodes):
        if (node.shipping_method or node.shipping_methods) and not node.forward_orders:
            key = "shipping_method" if node.shipping_method else "shipping_methods"
            raise fail(f"nodes[{i}].{key}", "only used with forward_orders = true")
        for region_id in node.shipping_methods:
            if region_id not in {r.id for r in shop.regions}:
                raise fail(f"nodes[{i}].shipping_methods", f"region {region_id!r} is not defined")
        if node.forward_orders and not node.shipping_method:
            if not node.shipping_methods:
                raise fail(f"nodes[{i}].shipping_method", "required to forward orders: the 3PL's name for the "
                                                          "service (or shipping_methods per region)")
            missing = sorted({r.id for r in shop.regions} - set(node.shipping_methods))
            if missing:
                raise fail(f"nodes[{i}].shipping_methods", f"no method for region {', '.join(missing)} "
                                                           "(add them or a default shipping_method)")
        if node.stock_source == "manual":
            if node.forward_orders:
                raise fail(f"nodes[{i}].forward_orders", "needs a stock_source provider to forward orders to")
            sources[node.id] = NodeSource(node.id, None, None, False)
            continue
        provider = providers.get(node.stock_source)
        if provider is None:
            raise fail(f"nodes[{i}].stock_source", f"provider {node.stock_source!r} is not defined "
                                                   "(use \"manual\" or an id from providers)")
        if provider.type != "csv" and not node.provider_location:
            raise fail(f"nodes[{i}].provider_location", f"required: which {provider.type} location is node {node.id!r}")
        if node.forward_orders and provider.type == "csv":
            raise fail(f"nodes[{i}].forward_orders", "a csv feed cannot receive orders")
        for key in _FORWARD_REQUIRED.get(provider.type, ()) if node.forward_orders else ():
            if getattr(provider, key) in (None, ""):
                raise fail(f"providers.{node.stock_source}.{key}",
                           f"required to forward orders to {provider.type} (nodes[{i}].forward_orders)")
        key = (node.stock_source, node.provider_location)
        if key in claimed:
            raise fail(f"nodes[{i}].provider_location",
                       f"{node.stock_source} location {node.provider_location!r} already feeds node {claimed[key]!r}")
        claimed[key] = node.id
        sources[node.id] = NodeSource(node.id, node.stock_source, node.provider_location, node.forward_orders,
                                      node.shipping_method, dict(node.shipping_methods))
    return sources


def _aware(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    """TOML local date-times are read in the shop's time zone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=tz)


def _unique(items: list, where: str, source: str) -> set[str]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            raise ConfigError(f"{source}: {where}[{i}].id: {item.id!r} is defined twice")
        seen.add(item.id)
    return seen


def _check_cycle(graph: Mapping[str, list[str]], where: str, key: str, source: str) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = path[path.index(node):] + [node]
            raise ConfigError(f"{source}: {where}: {key} form a cycle: {' -> '.join(cycle)}")
        state[node] = 1
        for nxt in graph.get(node, []):
            visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])


def _check_unique_domains(shops: Mapping[str, ShopSettings], source: str) -> None:
    seen: dict[str, str] = {}
    for shop in shops.values():
        key = shop.shop_domain or shop.store_url or ""
        if key in seen:
            raise ConfigError(f"{source}: shops.{shop.id}: same store as shops.{seen[key]} ({key})")
        seen[key] = shop.id
