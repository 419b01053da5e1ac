"""The connector's vocabulary: plain, immutable data with no I/O.

Everything here is built by config loading, the store or an adapter and handed
to the pure functions in this package. Time is always passed in as an aware
``datetime``; nothing here reads a clock.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Literal, Mapping, Union


class NodeStatus(str, enum.Enum):
    ACTIVE = "active"
    DEGRADED = "degraded"
    OFFLINE = "offline"
    PAUSED = "paused"


class Mode(str, enum.Enum):
    NORMAL = "normal"
    PEAK = "peak"
    DISRUPTION = "disruption"


class Handling(str, enum.Enum):
    COLD_CHAIN = "cold_chain"
    FRAGILE = "fragile"
    OVERSIZED = "oversized"


class Rule(str, enum.Enum):
    """Preference rules a mode's chain is made of, most important first."""

    SINGLE_SHIPMENT = "single_shipment"  # whole order from one node: fewest shipments
    FASTEST = "fastest"  # fewest transit days to the region
    PRIORITY = "priority"  # node priority (lower number first)
    CHEAPEST = "cheapest"  # lowest cost per order (summed over shipments)
    MOST_STOCK = "most_stock"  # most sellable stock left after the order


class ExceptionReason(str, enum.Enum):
    """Why a line could not be routed automatically; each goes to a human."""

    NO_REGION = "no_region"  # ship-to address matches no region and there is no default
    NO_NODE_SERVES_REGION = "no_node_serves_region"  # no node has a lane to the region
    NODES_UNAVAILABLE = "nodes_unavailable"  # nodes serve it, but all are offline/paused/out of window
    HANDLING_CONSTRAINT = "handling_constraint"  # nodes serve it, none meets the SKU's handling
    PARTIAL_STOCK = "partial_stock"  # eligible nodes exist, none has enough sellable stock
    NEEDS_HUMAN = "needs_human"  # e.g. oversized with no capable node


# ---------------------------------------------------------------- network


@dataclass(frozen=True)
class Region:
    """A demand zone. Matching specificity: postal prefix > province > country."""

    id: str
    name: str
    promise_days: int
    countries: frozenset[str] = frozenset()  # ISO 3166-1 alpha-2, upper case
    provinces: frozenset[str] = frozenset()  # ISO 3166-2 style "US-NY"
    postal_prefixes: frozenset[str] = frozenset()  # "US:100" (country, normalised prefix)
    fallback: str | None = None  # region id tried when nothing here can serve


@dataclass(frozen=True)
class Lane:
    """How a node serves one region."""

    region_id: str
    transit_days: int
    cost_per_order: float


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    kind: str
    role: str
    lanes: Mapping[str, Lane]  # region id -> lane
    capabilities: frozenset[str] = frozenset()
    status: NodeStatus = NodeStatus.ACTIVE
    cutoff: time | None = None  # local daily order cutoff, in the shop's timezone
    daily_capacity: int | None = None  # orders per local day
    active_from: datetime | None = None  # temporary nodes (pop-ups, events)
    active_until: datetime | None = None
    backups: tuple[str, ...] = ()
    priority: int = 100  # lower is preferred
    status_note: str | None = None  # why the node is degraded/offline right now (e.g. stale stock)

    def in_window(self, now: datetime) -> bool:
        if self.active_from is not None and now < self.active_from:
            return False
        if self.active_until is not None and now >= self.active_until:
            return False
        return True

    def usable(self, now: datetime) -> bool:
        """May take orders at ``now``: active or degraded, and inside its active window."""
        return self.status in (NodeStatus.ACTIVE, NodeStatus.DEGRADED) and self.in_window(now)


@dataclass(frozen=True)
class SkuRule:
    """Handling rules for SKUs matching ``pattern`` (exact or fnmatch glob)."""

    pattern: str
    handling: frozenset[Handling] = frozenset()
    max_transit_days: int | None = None
    tier: str | None = None
    unit_value: float | None = None  # what a unit is worth: lost-sale cost, transfer approval value
    prior_weekly_units: float | None = None  # demand assumed for a new SKU (all regions, per week)
    category: str | None = None  # SKUs forecast alike when one has no history of its own

    def handled_by(self, node: "Node", lane: "Lane") -> bool:
        """Whether ``node`` can ship these SKUs over ``lane``: every handling need is one of
        its capabilities, and the lane is within the max transit days."""
        return (all(h.value in node.capabilities for h in self.handling)
                and (self.max_transit_days is None or lane.transit_days <= self.max_transit_days))


@dataclass(frozen=True)
class Restriction:
    """In a mode, orders to ``regions`` may only ship from ``nodes``."""

    regions: frozenset[str]  # region ids; "*" means every region
    nodes: tuple[str, ...]

    def applies_to(self, region_id: str) -> bool:
        return "*" in self.regions or region_id in self.regions


@dataclass(frozen=True)
class ModePolicy:
    rules: tuple[Rule, ...]
    restrictions: tuple[Restriction, ...] = ()


@dataclass(frozen=True)
class RoutingPolicy:
    mode: Mode
    modes: Mapping[Mode, ModePolicy]

    @property
    def current(self) -> ModePolicy:
        return self.modes[self.mode]


@dataclass(frozen=True)
class Network:
    """One shop's fulfilment network: everything routing needs besides stock."""

    shop_id: str
    timezone: str
    regions: Mapping[str, Region]
    nodes: Mapping[str, Node]
    sku_rules: tuple[SkuRule, ...]
    routing: RoutingPolicy
    default_region: str | None = None


# ---------------------------------------------------------------- orders


@dataclass(frozen=True)
class Address:
    country: str | None  # ISO alpha-2
    province: str | None  # province/state code as the platform gives it ("NY", "CA")
    postcode: str | None


OrderState = Literal["open", "awaiting_payment", "cancelled", "fulfilled"]


@dataclass(frozen=True)
class OrderLine:
    line_id: str
    sku: str | None
    quantity: int  # what is still to ship: ordered minus removed/refunded
    requires_shipping: bool = True
    title: str = ""
    # Another fulfillment service that ships this line (a Shopify fulfillment service
    # app's handle, e.g. print on demand); None: the merchant's own, ours to route.
    fulfilled_by: str | None = None


@dataclass(frozen=True)
class Order:
    shop_id: str
    order_id: str  # platform's id, as text (Shopify ids exceed 2**53)
    number: str  # what the creator sees: "#1001", "727"
    platform: str
    created_at: datetime
    updated_at: datetime  # ordering key for out-of-order deliveries
    ship_to: Address | None
    lines: tuple[OrderLine, ...]
    state: OrderState = "open"
    customer_id: str | None = None
    # None: the line quantities already net out refunds (Shopify's current_quantity).
    # A tuple (WooCommerce): the quantities are as ordered and these refunds exist on
    # the order; their line quantities are only in the refunds endpoint.
    refund_ids: tuple[str, ...] | None = None
    # When the store marked the order completed (WooCommerce date_completed): its parts shipped.
    fulfilled_at: datetime | None = None


# ---------------------------------------------------------------- storefront events


@dataclass(frozen=True)
class OrderUpsert:
    """orders/create, orders/updated, order.created, order.updated, order.restored."""

    order: Order


@dataclass(frozen=True)
class OrderDeleted:
    """WooCommerce order.deleted (trashed): release everything it held."""

    order_id: str


@dataclass(frozen=True)
class RefundLine:
    line_id: str
    quantity: int


@dataclass(frozen=True)
class RefundCreated:
    order_id: str
    refund_id: str
    lines: tuple[RefundLine, ...]
    created_at: datetime | None = None  # Shopify: a refund older than the stored order update is already in it


@dataclass(frozen=True)
class FulfillmentReported:
    """Shopify fulfillments/create and fulfillments/update: one shipment of some of an
    order's lines from one location, with its tracking and the carrier's latest word."""

    fulfillment_id: str
    order_id: str
    location_id: str | None  # Shopify's numeric location id
    status: str  # pending | open | success | cancelled | error | failure
    shipment_status: str | None  # label_printed, in_transit, out_for_delivery, attempted_delivery, delivered, failure...
    created_at: datetime  # when the fulfillment was made: the parcel's ship time
    updated_at: datetime  # when it last changed: for a delivered one, the delivery
    tracking_company: str | None = None
    tracking_numbers: tuple[str, ...] = ()
    tracking_urls: tuple[str, ...] = ()
    lines: tuple[tuple[str, int], ...] = ()  # (order line id, quantity) in this fulfillment


@dataclass(frozen=True)
class CustomerDataRequest:
    customer_id: str | None
    order_ids: tuple[str, ...]
    request_id: str | None


@dataclass(frozen=True)
class CustomerRedact:
    customer_id: str | None
    order_ids: tuple[str, ...]


@dataclass(frozen=True)
class ShopRedact:
    pass


@dataclass(frozen=True)
class AppUninstalled:
    pass


@dataclass(frozen=True)
class Ignored:
    """A delivery we accept and record but do not act on, with the reason why."""

    reason: str


@dataclass(frozen=True)
class PolledOrder:
    """An order read back from the store's API in case its webhook never came
    (reconciliation). It is stored in the inbox as the webhook it stands for."""

    order_id: str
    modified_at: datetime  # the store's own modification time, UTC
    topic: str  # the webhook topic whose body this is
    dedupe_key: str  # that webhook's inbox key, so a delivered one is a duplicate
    body: bytes  # the JSON body that webhook would carry


@dataclass(frozen=True)
class StoreWebhook:
    """A webhook as the store has it configured (WooCommerce: ``GET /webhooks``)."""

    webhook_id: str
    name: str
    status: str  # WooCommerce: active | paused (by an admin) | disabled (after failed deliveries)
    topic: str
    delivery_url: str


@dataclass(frozen=True)
class PendingConnection:
    """A WooCommerce connection a creator started on our page, waiting for wc-auth to POST
    the new API keys to our callback. ``nonce`` is the random part of the signed one-time
    ``user_id`` sent to wc-auth and the key it is taken back by, once."""

    nonce: str
    connection_id: str  # ours: what the callback's keys will be saved under
    store_url: str  # the normalised https address the creator typed: the only one the keys are used on
    expires_at: datetime
    # The account the creator asked for on our page, created with the shop (never the password itself).
    email: str = ""
    password_hash: str = field(default="", repr=False)


@dataclass(frozen=True)
class ConnectionOutcome:
    """How a pending WooCommerce connection ended, for the page the creator returns to."""

    connected: bool
    kind: str  # "connected", or the failure's kind (adapters.woocommerce_connect.WooConnectError.kind, "save")
    message: str  # for the creator; never a key or a secret
    shop_id: str | None = None
    webhooks: int = 0  # order webhooks active on the store


@dataclass(frozen=True)
class ConnectionState:
    pending: PendingConnection
    taken: bool  # its callback came (the one-time user_id is spent)
    outcome: ConnectionOutcome | None  # None: not taken yet, or the callback is still at work


StorefrontEvent = Union[
    OrderUpsert,
    OrderDeleted,
    RefundCreated,
    FulfillmentReported,
    CustomerDataRequest,
    CustomerRedact,
    ShopRedact,
    AppUninstalled,
    Ignored,
]


class PayloadError(ValueError):
    """A signed delivery whose body is not the shape its topic promises."""


# ---------------------------------------------------------------- routing results


@dataclass(frozen=True)
class LineDecision:
    line_id: str
    sku: str
    quantity: int
    node_id: str | None  # None: the line is an exception
    rule: str  # the preference rule that decided, or "exception"
    explanation: str
    exception: ExceptionReason | None = None


@dataclass(frozen=True)
class RoutingResult:
    region_id: str | None
    mode: Mode
    decisions: tuple[LineDecision, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (line id, reason) for lines not routed at all

    @property
    def routed(self) -> tuple[LineDecision, ...]:
        return tuple(d for d in self.decisions if d.node_id is not None)

    @property
    def exceptions(self) -> tuple[LineDecision, ...]:
        return tuple(d for d in self.decisions if d.node_id is None)


# ---------------------------------------------------------------- warehouses (3PLs)


@dataclass(frozen=True)
class ShippingContact:
    """Who and where a parcel goes: read from the stored order body only when an
    order is handed to a 3PL (the order tables keep just country/province/postcode)."""

    name: str
    address_lines: tuple[str, ...]
    city: str
    address: Address
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class InventoryRecord:
    """One SKU at one provider location, as a warehouse adapter reports it.

    ``location_id`` and ``sku`` are the provider's; the sync service maps them
    to our node and SKU through configuration. ``raw`` keeps the provider's own
    quantity fields because their meanings differ between providers.
    """

    location_id: str
    sku: str
    on_hand: int
    committed: int
    available: int
    raw: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ShipmentLine:
    sku: str
    quantity: int


@dataclass(frozen=True)
class OutboundOrder:
    """A routed order (the part of it one node ships) handed to a 3PL."""

    reference: str  # our idempotency key, unique per (shop, order, node)
    order_number: str
    ship_to_name: str
    ship_to: Address
    address_lines: tuple[str, ...]
    city: str
    email: str | None
    phone: str | None
    lines: tuple[ShipmentLine, ...]
    location_id: str | None = None  # provider location to ship from, when it matters
    shipping_method: str | None = None  # the 3PL's name for the service (the node's config, per region)


@dataclass(frozen=True)
class ProviderOrderRef:
    provider_order_id: str
    reference: str
    created: bool  # False when an existing order with our reference was found


@dataclass(frozen=True)
class Shipment:
    provider_order_id: str
    reference: str | None
    status: str
    tracking_number: str | None = None
    carrier: str | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    exception: bool = False
    exception_detail: str | None = None


# ---------------------------------------------------------------- provider errors
# Defined here, not in adapters/, so services can catch them without knowing
# which adapter raised.


class ProviderError(Exception):
    """An outside system (3PL, storefront API) did not do what we asked."""


class ProviderUnavailable(ProviderError):
    """Transient: timeouts, connection errors, 5xx, 429 — retries exhausted."""


class ProviderOutcomeUnknown(ProviderUnavailable):
    """A request that is not safe to repeat failed after it left (a read timeout, a
    dropped or cut answer, a 5xx): the provider may have acted on it. Look up what
    it holds before trying again."""


class ProviderRejected(ProviderError):
    """Permanent: the provider refused the request (4xx other than 401/429)."""


class ProviderAuthError(ProviderRejected):
    """Credentials refused, also after one token refresh."""


class ProviderResponseError(ProviderError):
    """The provider answered, but not in the documented shape (bad JSON, missing fields,
    a paginator that never ends)."""
