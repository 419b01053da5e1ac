"""The interfaces services depend on. Adapters satisfy them structurally.

``Warehouse`` is any place stock lives and orders can be handed to (a 3PL API,
a CSV feed). ``Storefront`` is a shop platform's webhook dialect.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping, Protocol, Sequence

from connector.domain.model import (
    InventoryRecord,
    OutboundOrder,
    ProviderOrderRef,
    Shipment,
    StorefrontEvent,
)


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

    def parse(self, shop_id: str, topic: str, payload: object) -> StorefrontEvent:
        """Turn a verified, JSON-decoded delivery into a domain event.
        Raises PayloadError when the body is not the shape the topic promises."""
