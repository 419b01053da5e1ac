"""In-memory test doubles. Only tests (and the explicit sandbox) build these;
the composition root's real factory never does."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from connector.domain.model import (
    InventoryRecord,
    OutboundOrder,
    ProviderError,
    ProviderOrderRef,
    Shipment,
)


class FakeWarehouse:
    """A 3PL that keeps inventory, orders and shipments in lists.

    ``fail_next`` makes the next calls raise (a list of exceptions, consumed in
    order); ``fail_after_records`` makes ``list_inventory`` die part-way, as a
    paginated fetch that breaks on page 3 would.
    """

    provider = "fake"

    def __init__(self, inventory: Iterable[InventoryRecord] = ()):
        self.inventory: list[InventoryRecord] = list(inventory)
        self.orders: dict[str, OutboundOrder] = {}
        self.shipments: list[Shipment] = []
        self.fail_next: list[ProviderError] = []
        self.fail_after_records: int | None = None
        self.create_calls = 0
        self.lookups = 0

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def list_inventory(self) -> Iterable[InventoryRecord]:
        self._maybe_fail()
        for index, record in enumerate(self.inventory):
            if self.fail_after_records is not None and index >= self.fail_after_records:
                from connector.domain.model import ProviderUnavailable

                raise ProviderUnavailable("fake: connection dropped mid-pagination")
            yield record

    def find_order(self, reference: str) -> ProviderOrderRef | None:
        self.lookups += 1
        if reference in self.orders:
            return ProviderOrderRef(f"fake-{reference}", reference, created=False)
        return None

    def create_order(self, order: OutboundOrder) -> ProviderOrderRef:
        existing = self.find_order(order.reference)
        if existing is not None:
            return existing
        self._maybe_fail()
        self.create_calls += 1
        self.orders[order.reference] = order
        return ProviderOrderRef(f"fake-{order.reference}", order.reference, created=True)

    def list_shipments(self, since: datetime) -> Iterable[Shipment]:
        self._maybe_fail()
        return [s for s in self.shipments if (s.shipped_at or since) >= since]

    def check(self) -> None:
        self._maybe_fail()
