"""TOML + environment -> typed settings, with one clear message per problem.

The file is read from ``--config PATH`` or ``CONNECTOR_CONFIG``. Secrets may be
left out of the file and supplied by environment variables instead:

- ``CONNECTOR_SHOPIFY_CLIENT_SECRET`` / ``CONNECTOR_SHOPIFY_PREVIOUS_CLIENT_SECRET``
- ``CONNECTOR_SHOP_<ID>_WEBHOOK_SECRET`` (ID upper-cased, non-alphanumerics as ``_``)
- ``CONNECTOR_SHOP_<ID>_<PROVIDER>_<TOKEN|REFRESH_TOKEN|CLIENT_SECRET>`` for 3PL accounts
- ``CONNECTOR_SHOP_<ID>_<ACCESS_TOKEN|CONSUMER_KEY|CONSUMER_SECRET|API_KEY>`` for the storefront push and API
- ``CONNECTOR_DATABASE`` overrides ``[database] path``.

Every problem becomes a line of a ``ConfigError`` naming the key (all of them, not
just the first); the CLI prints one ``config error:`` line each and exits with status 2.

Shops are not deployment settings: each ``[shops.<id>]`` table is a shop's configuration
document in import format. ``validate_shop`` is the one validation every way in uses (this
file, ``connector shops import``, the settings pages); ``resolve_shop`` turns a stored
document into ``ShopSettings``.
"""
from __future__ import annotations

import functools
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connector.domain.allocation import DEGRADED_PENALTY
from connector.domain.shop_rules import (
    PROVIDER_SECRET_KEYS,
    Problem,
    _env_id,
    aware,
    check_shop,
    provider_secret_env_name,
    secret_env_name,
)
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
    """A configuration problem, already phrased for the person fixing the file (one
    problem a line)."""


class InvalidShop(ValueError):
    """A shop document with problems; nothing was saved. ``problems``: every one, with its path."""

    def __init__(self, shop_id: str, problems: list[Problem]):
        self.shop_id = shop_id
        self.problems = problems
        super().__init__("\n".join(f"shops.{shop_id}.{p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SecretKey:
    """Marks a key whose value is a credential: a config error names the key but
    never shows the value (see ``_describe``)."""


Secret = Annotated[str, _SecretKey()]


@functools.cache  # fixed once the sections are defined; walking them per call made a save ~0.5 s
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
    # This service's public https origin (https://connector.example.com): where stores send webhooks
    # and the wc-auth callback; the Shopify OAuth redirect URI (+ /shopify/auth/callback) and
    # API-subscribed webhooks (+ /webhooks/shopify) are built from it. http:// is refused at load
    # (WooCommerce sends keys only over https; Shopify requires https redirect URIs).
    public_url: str = Field("", pattern=r"^(https://[A-Za-z0-9.-]+(:\d+)?/?)?$")

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")


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
    handoff_every_seconds: int = Field(30, ge=1)  # how often decisions and shipments are written to the stores
    # Exception lines are routed again when stock arrives or the configuration changes; this
    # periodic look catches what time changes (a pop-up's window opening) and what a change's
    # batch (exceptions_batch orders, the oldest first) left over.
    exceptions_every_seconds: int = Field(60, ge=10)
    exceptions_batch: int = Field(100, ge=1, le=10_000)
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
    # The app's client id (Dev Dashboard; shopify.app.toml's client_id). With the client secret
    # it enables the Shopify app pages: session tokens, token exchange, installs.
    client_id: str = ""
    client_secret: Secret = ""
    previous_client_secret: Secret = ""  # kept during rotation: Shopify may sign with it for an hour
    # false: shopify.app.toml's [[webhooks.subscriptions]] deliver every shop's webhooks (the app
    # is deployed with `shopify app deploy`). true: each install subscribes the order and
    # app/uninstalled topics through the Admin API to [web] public_url + /webhooks/shopify.
    subscribe_webhooks: bool = False


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
    url: Secret | None = None  # CSV feed over HTTPS (a secret: feed URLs often carry a signature or token)
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
    nodes: list[NodeConfig] = []  # none yet (a store just connected): every order line waits for a human
    skus: list[SkuConfig] = []
    routing: RoutingConfig = RoutingConfig()
    providers: dict[Identifier, ProviderConfig] = {}
    planning: PlanningConfig = PlanningConfig()
    rebalance: RebalanceConfig = RebalanceConfig()
    storefront: StorefrontConfig = StorefrontConfig()


class EncryptionConfig(_Strict):
    # A file holding CONNECTOR_ENCRYPTION_KEYS=<key>[,<older key>...] (relative to this file), used
    # when that variable is not set; `connector demo --dir DIR` writes one. Keep it 0600, outside backups.
    keys_file: str | None = None


class FileConfig(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    web: WebConfig = WebConfig()
    processing: ProcessingConfig = ProcessingConfig()
    sync: SyncConfig = SyncConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    shopify: ShopifyAppConfig = ShopifyAppConfig()
    encryption: EncryptionConfig = EncryptionConfig()
    # Each [shops.<id>] table is a shop's configuration in import format: `connector init`
    # imports the shops the database lacks (validated like every other way in).
    shops: dict[Identifier, dict[str, Any]] = {}


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
    version: int = 0  # of the stored configuration this was resolved from (0: not stored)

    @property
    def timezone(self) -> str:
        return self.network.timezone


@dataclass(frozen=True)
class Settings:
    database_path: Path
    busy_timeout_ms: int
    web: WebConfig
    processing: ProcessingConfig
    # The file's [shops.*] tables (already validated): what `connector init` imports. Services
    # read shops from the database, through a ShopDirectory, never from here.
    shop_documents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = "<memory>"
    sync: SyncConfig = SyncConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    web_secret_key: str = ""  # [web] secret_key, or CONNECTOR_WEB_SECRET_KEY
    shopify: ShopifyAppConfig = ShopifyAppConfig()
    base_dir: Path = Path(".")  # relative paths in shop documents (csv feeds) are read from here
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # secrets a shop may take from the environment
    encryption_keys: tuple[str, ...] = field(default=(), repr=False)  # from the environment or [encryption] keys_file


def normalise_store_url(url: str) -> str:
    """"https://Shop.Example.com/" -> "https://shop.example.com" (as WooCommerce's
    X-WC-Webhook-Source is compared)."""
    url = url.strip()
    match = re.match(r"^(https?)://([^/]+)(/.*)?$", url, re.IGNORECASE)
    if not match:
        return url.rstrip("/")
    scheme, host, path = match.group(1).lower(), match.group(2).lower(), (match.group(3) or "")
    return f"{scheme}://{host}{path.rstrip('/')}"


STOREFRONT_SECRET_KEYS = ("access_token", "consumer_key", "consumer_secret", "api_key")


def storefront_secret_env_name(shop_id: str, key: str) -> str:
    return f"CONNECTOR_SHOP_{_env_id(shop_id)}_{key.upper()}"


# ---------------------------------------------------------------- loading


ENCRYPTION_KEYS_ENV = "CONNECTOR_ENCRYPTION_KEYS"


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
    problems = [problem.under(f"shops.{shop_id}")
                for shop_id, document in parsed.shops.items()
                for problem in validate_shop(shop_id, document, app=parsed.shopify, env=env, base_dir=base_dir)]
    if not problems:
        problems = [p.under("shops") for p in duplicate_stores(
            {shop_id: store_key(document) for shop_id, document in parsed.shops.items()})]
    if problems:
        raise ConfigError("\n".join(f"{source}: {problem}" for problem in problems))
    db_path = Path(env.get("CONNECTOR_DATABASE") or parsed.database.path)
    if not db_path.is_absolute() and str(db_path) != ":memory:":
        db_path = base_dir / db_path
    return Settings(
        database_path=db_path,
        busy_timeout_ms=parsed.database.busy_timeout_ms,
        web=parsed.web,
        processing=parsed.processing,
        shop_documents=parsed.shops,
        source=source,
        sync=parsed.sync,
        scheduler=parsed.scheduler,
        privacy=parsed.privacy,
        web_secret_key=env.get(WEB_SECRET_KEY_ENV) or parsed.web.secret_key,
        shopify=parsed.shopify,
        base_dir=base_dir,
        env={k: v for k, v in env.items() if k.startswith("CONNECTOR_")},
        encryption_keys=_encryption_keys(env, parsed.encryption, base_dir, source),
    )


def _encryption_keys(env: Mapping[str, str], config: EncryptionConfig, base_dir: Path, source: str) -> tuple[str, ...]:
    """The keys from CONNECTOR_ENCRYPTION_KEYS, else from [encryption] keys_file (a line
    ``CONNECTOR_ENCRYPTION_KEYS=...``); empty when neither is there (checked where a key is needed)."""
    value = env.get(ENCRYPTION_KEYS_ENV, "")
    if not value and config.keys_file:
        file = Path(config.keys_file) if Path(config.keys_file).is_absolute() else base_dir / config.keys_file
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"{source}: encryption.keys_file: cannot read {file}: {exc.strerror}") from None
        for line in lines:
            name, _, rest = line.strip().partition("=")
            if name.strip() == ENCRYPTION_KEYS_ENV:
                value = rest.strip().strip('"')
        if not value:
            raise ConfigError(f"{source}: encryption.keys_file: {file} has no {ENCRYPTION_KEYS_ENV}= line")
    return tuple(key.strip() for key in value.split(",") if key.strip())


def store_key(document: Mapping[str, Any]) -> str:
    """What identifies a shop's store: its Shopify domain or normalised WooCommerce URL."""
    url = document.get("store_url")
    return document.get("shop_domain") or (normalise_store_url(url) if isinstance(url, str) else "") or ""


def duplicate_stores(keys: Mapping[str, str]) -> list[Problem]:
    """A problem for each shop whose store another shop (earlier in ``keys``) already is."""
    seen: dict[str, str] = {}
    problems = []
    for shop_id, key in keys.items():
        if key in seen:
            problems.append(Problem(shop_id, f"same store as shops.{seen[key]} ({key})"))
        seen.setdefault(key, shop_id)
    return problems


def _describe(exc: ValidationError) -> str:
    messages = [str(problem) for problem in _shape_problems(exc)]
    shown = messages[:5]
    more = f" (and {len(messages) - 5} more)" if len(messages) > 5 else ""
    return "; ".join(shown) + more


def _shape_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        key = _key_path(error["loc"])
        if error["type"] == "extra_forbidden":
            problems.append(Problem(key, "unknown key"))
        elif error["type"] == "missing":
            problems.append(Problem(key, "required key is missing"))
        else:
            message = error["msg"].removeprefix("Value error, ")
            hidden = _secrets_in(error["loc"], error.get("input"))
            if hidden is None:
                got = "" if "got " in message else f" (got {error.get('input')!r})"
            else:  # a credential: named, never shown, not even inside a table or list
                for value in hidden:
                    message = message.replace(value, "***")
                got = ""
            problems.append(Problem(key, f"{message}{got}"))
    return problems


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




# ---------------------------------------------------------------- one shop's document


def validate_shop(shop_id: str, document: Any, *, app: ShopifyAppConfig | None = None,
                  env: Mapping[str, str] | None = None, base_dir: Path | None = None) -> list[Problem]:
    """Every problem of a shop's configuration document, each with its path inside the shop:
    shape and types (the pydantic models), then meaning (``domain.shop_rules``). Secrets the
    deployment supplies (``env``, the Shopify app's client secret) count as given."""
    return check_shop_document(shop_id, document, app=app, env=env, base_dir=base_dir)[1]


@dataclass(frozen=True)
class CheckedShop:
    """A valid document, parsed once: a save diffs and resolves it without validating again."""

    shop_id: str
    parsed: "_ParsedShop"

    def with_defaults(self) -> dict:
        """The document with every default filled in (what a diff compares)."""
        return self.parsed.shop.model_dump()

    def resolve(self, version: int) -> ShopSettings:
        return _build_shop(self.shop_id, self.parsed, version)


def check_shop_document(shop_id: str, document: Any, *, app: ShopifyAppConfig | None = None,
               env: Mapping[str, str] | None = None,
               base_dir: Path | None = None) -> tuple[CheckedShop | None, list[Problem]]:
    """``validate_shop``, keeping the parsed document when there is no problem."""
    parsed, problems = _parse_shop(shop_id, document, app or ShopifyAppConfig(), env or {}, base_dir or Path.cwd())
    return (CheckedShop(shop_id, parsed) if parsed is not None and not problems else None), problems


def resolve_shop(shop_id: str, document: Any, *, app: ShopifyAppConfig | None = None,
                 env: Mapping[str, str] | None = None, base_dir: Path | None = None, version: int = 0) -> ShopSettings:
    """The ``ShopSettings`` of a valid document; ``InvalidShop`` (every problem) otherwise."""
    parsed, problems = _parse_shop(shop_id, document, app or ShopifyAppConfig(), env or {}, base_dir or Path.cwd())
    if problems:
        raise InvalidShop(shop_id, problems)
    return _build_shop(shop_id, parsed, version)


@dataclass(frozen=True)
class _ParsedShop:
    shop: "ShopConfig"
    tz: ZoneInfo
    secrets: tuple[str, ...]
    providers: Mapping[str, ProviderConfig]
    storefront: StorefrontConfig


def _parse_shop(shop_id: str, document: Any, app: ShopifyAppConfig, env: Mapping[str, str],
                base_dir: Path) -> tuple[_ParsedShop | None, list[Problem]]:
    try:
        shop = ShopConfig.model_validate(document)
    except ValidationError as exc:
        return None, _shape_problems(exc)
    problems: list[Problem] = []
    try:
        tz: ZoneInfo | None = ZoneInfo(shop.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = None
        problems.append(Problem("timezone", f"unknown time zone {shop.timezone!r}"))

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
        problems.append(Problem("webhook_secret", f"missing: set it in the file{hint}, or the environment "
                                                  f"variable {secret_env_name(shop_id)}"))

    providers = {}
    for provider_id, provider in shop.providers.items():
        overrides: dict[str, Any] = {key: env[name] for key in PROVIDER_SECRET_KEYS
                                     if (name := provider_secret_env_name(shop_id, provider_id, key)) in env}
        if provider.path and not Path(provider.path).is_absolute():
            overrides["path"] = str(base_dir / provider.path)  # relative to the config file, like the database
        providers[provider_id] = provider.model_copy(update=overrides)
    storefront = shop.storefront.model_copy(update={
        key: env[name] for key in STOREFRONT_SECRET_KEYS if (name := storefront_secret_env_name(shop_id, key)) in env
    })
    data = shop.model_dump()
    data["providers"] = {provider_id: provider.model_dump() for provider_id, provider in providers.items()}
    data["storefront"] = storefront.model_dump()
    problems += check_shop(shop_id, data, tz)
    if problems:
        return None, problems
    return _ParsedShop(shop, tz, tuple(secrets), providers, storefront), []


def _build_shop(shop_id: str, parsed: _ParsedShop, version: int) -> ShopSettings:
    shop, tz = parsed.shop, parsed.tz
    domain_nodes: dict[str, Node] = {}
    for node in shop.nodes:
        domain_nodes[node.id] = Node(
            id=node.id,
            name=node.name,
            kind=node.kind,
            role=node.role,
            lanes={lane.region: Lane(lane.region, lane.transit_days, lane.cost_per_order) for lane in node.lanes},
            capabilities=frozenset(node.capabilities),
            status=node.status,
            cutoff=time.fromisoformat(node.cutoff) if node.cutoff else None,
            daily_capacity=node.daily_capacity,
            active_from=aware(node.active_from, tz),
            active_until=aware(node.active_until, tz),
            backups=tuple(node.backups),
            priority=node.priority,
        )
    modes: dict[Mode, ModePolicy] = {}
    for mode in Mode:
        mode_config = shop.routing.modes.get(mode, ModeConfig())
        restrictions = tuple(Restriction(frozenset(r.regions), tuple(r.nodes)) for r in mode_config.restrict)
        modes[mode] = ModePolicy(tuple(mode_config.rules), restrictions)
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
    sources = {}
    for node in shop.nodes:
        if node.stock_source == "manual":
            sources[node.id] = NodeSource(node.id, None, None, False)
        else:
            sources[node.id] = NodeSource(node.id, node.stock_source, node.provider_location, node.forward_orders,
                                          node.shipping_method, dict(node.shipping_methods))
    planning = shop.planning.model_copy(update={"launches": [
        launch.model_copy(update={"starts": aware(launch.starts, tz), "ends": aware(launch.ends, tz)})
        for launch in shop.planning.launches
    ]})
    rebalance = shop.rebalance.model_copy(update={"launch_lock_at": aware(shop.rebalance.launch_lock_at, tz)})
    return ShopSettings(
        id=shop_id,
        platform=shop.platform,
        shop_domain=shop.shop_domain,
        store_url=normalise_store_url(shop.store_url) if shop.store_url else None,
        secrets=parsed.secrets,
        network=network,
        providers=parsed.providers,
        sources=sources,
        planning=planning,
        rebalance=rebalance,
        storefront=parsed.storefront,
        shopify_locations={n.id: n.shopify_location for n in shop.nodes if n.shopify_location},
        node_lead_time_days={n.id: n.lead_time_days for n in shop.nodes if n.lead_time_days is not None},
        version=version,
    )


def file_shops(settings: Settings) -> dict[str, ShopSettings]:
    """The config file's shops, resolved as they would be once imported (version 0): for
    benchmarks and tests that route without a database. Services use a ShopDirectory."""
    return {shop_id: resolve_shop(shop_id, document, app=settings.shopify, env=settings.env,
                                  base_dir=settings.base_dir)
            for shop_id, document in settings.shop_documents.items()}
