"""The interfaces services depend on. Adapters satisfy them structurally.

``Warehouse`` is any place stock lives and orders can be handed to (a 3PL API,
a CSV feed). ``Storefront`` is a shop platform's webhook dialect. ``RefundSource``
reads which lines an order's refunds cover where the webhook does not say (WooCommerce).
``OrderFeed`` reads back the orders that changed, for the webhooks that never came, and
the store's webhooks themselves. ``PendingConnections`` holds WooCommerce connections
waiting for their wc-auth callback. ``ShopDirectory`` is where services read shops.
"""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Iterable, Iterator, Mapping, Protocol, Sequence

from connector.domain.model import (
    ConnectionOutcome,
    ConnectionState,
    InventoryRecord,
    OutboundOrder,
    PendingConnection,
    PolledOrder,
    ProviderOrderRef,
    RefundCreated,
    Shipment,
    StorefrontEvent,
    StoreWebhook,
)

if TYPE_CHECKING:
    from connector.config import ShopSettings


class Warehouse(Protocol):
    provider: str  # "shipbob", "shipmonk", ... used in logs and sync records

    def list_inventory(self) -> Iterable[InventoryRecord]:
        """Every SKU × provider location. Raises ProviderError on any failure;
        a caller must treat a partial iteration as a failed fetch."""

    def find_order(self, reference: str) -> ProviderOrderRef | None:
        """The provider's order carrying our reference, if one exists."""

    def create_order(self, order: OutboundOrder) -> ProviderOrderRef:
        """Look up ``order.reference`` first; create only when absent."""

    def list_shipments(self, since: datetime) -> Iterable[Shipment]:
        """Shipments updated at or after ``since``."""

    def check(self) -> None:
        """Raise ProviderError when credentials or the API do not work."""


class Storefront(Protocol):
    platform: str  # "shopify" | "woocommerce"

    def verify(self, raw_body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> bool:
        """True when the delivery's signature matches one of ``secrets``."""

    def topic(self, headers: Mapping[str, str]) -> str | None:
        """The delivery's topic header."""

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """The platform's id for this delivery (kept for support, not for deduplication)."""

    def event_id(self, headers: Mapping[str, str]) -> str | None:
        """The id of the event behind the delivery, where the platform sends one."""

    def dedupe_key(self, headers: Mapping[str, str], payload: object) -> str | None:
        """A key equal for deliveries that carry the same change."""

    def resource_id(self, topic: str, payload: object) -> str | None:
        """The order a delivery is about, where there is one."""

    def parse(self, shop_id: str, topic: str, payload: object) -> StorefrontEvent:
        """Turn a verified, JSON-decoded delivery into a domain event.
        Raises PayloadError when the body is not the shape the topic promises."""


class RefundSource(Protocol):
    def order_refunds(self, order_id: str) -> Sequence[RefundCreated]:
        """Every refund of the order with the lines and units it covers.
        Raises ProviderError (ProviderRejected when the order is gone)."""


class OrderFeed(Protocol):
    page_size: int  # orders in a full answer of modified_orders: a shorter one ends the listing

    def modified_orders(self, after: datetime, *, status: str = "any",
                        max_requests: int = 50) -> Iterator[Sequence[PolledOrder]]:
        """Orders of ``status`` changed after ``after``, oldest change first, a page at
        a time, each as the webhook it stands for. Raises ProviderError."""

    def webhooks(self) -> Sequence[StoreWebhook]:
        """The webhooks the store has configured, whatever their status. Raises ProviderError."""


class OrderWebhookSetup(Protocol):
    """Makes a store send every order topic to us (WooCommerce: adapters.woocommerce_connect)."""

    def ensure_order_webhooks(self, delivery_url: str) -> object:
        """One active webhook per order topic to ``delivery_url``, read back; the answer's
        ``webhooks`` are them. Raises an error whose message is a sentence for a creator."""


class PendingConnections(Protocol):
    """WooCommerce connections started and not yet called back (wc-auth's ``user_id``)."""

    def create(self, pending: PendingConnection) -> None:
        """Remember ``pending`` until it is taken (or expires)."""

    def take(self, nonce: str) -> PendingConnection | None:
        """The pending connection of ``nonce``, removed in the same atomic step, so of two
        callbacks carrying the same ``user_id`` exactly one gets it; None when unknown or
        already taken."""

    def finish(self, connection_id: str, outcome: ConnectionOutcome) -> None:
        """Record how the taken connection ``connection_id`` ended."""

    def state(self, connection_id: str) -> ConnectionState | None:
        """The connection, whether it was taken and how it ended; None when unknown."""


class ShopDirectory(Protocol):
    """The shops' configuration, as every service reads it (never ``Settings``). A running
    process follows changes made anywhere within a request or batch; each ``ShopSettings``
    carries the ``version`` it was resolved from."""

    def get(self, shop_id: str, *, including_inactive: bool = False) -> "ShopSettings | None":
        """The active shop (or, ``including_inactive``, a deactivated one too), or None."""

    def require(self, shop_id: str) -> "ShopSettings":
        """The active shop; KeyError naming it when there is none."""

    def by_domain(self, domain: str, *, including_inactive: bool = False) -> "ShopSettings | None":
        """The active shop whose Shopify domain or normalised WooCommerce URL is ``domain``
        (``including_inactive``: an uninstalled one too, for the webhooks that follow an uninstall)."""

    def ids(self) -> list[str]:
        """The active shops' ids, sorted."""

    def version(self, shop_id: str) -> int:
        """The shop's current configuration version (0: none)."""
