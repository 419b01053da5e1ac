"""WooCommerce refund lookups: read which lines a refund covers, then stop shipping them.

A WooCommerce ``order.updated`` names the order's refunds but keeps the ordered
quantities; processing it (``services.orders``) records a lookup for every refund
not seen before. This job reads the refunds from the store's REST API outside any
transaction, then, in one write transaction per order, applies the refunds whose
lookup is still pending (one deleted meanwhile was dropped by a later webhook) and
shrinks or releases the reservations. Recording is idempotent, so a lookup that runs
twice applies nothing twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from connector.config import Settings, ShopSettings
from connector.domain.model import ProviderError, ProviderRejected
from connector.ports import RefundSource, ShopDirectory
from connector.services.forwarding import retry_delay
from connector.services.orders import ShopRouting, apply_refund
from connector.store import Store


@dataclass
class RefundLookupReport:
    applied: int = 0  # refunds whose lines were recorded and applied
    orders: int = 0  # orders whose refunds were read
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class RefundLookups:
    def __init__(self, settings: Settings, shops: ShopDirectory, clients: Callable[[ShopSettings], RefundSource | None],
                 routing: Callable[[Store, str, datetime], ShopRouting], clock: Callable[[], datetime]):
        """``clients``: shop -> its WooCommerce orders client (``order_refunds``), or
        None without REST API credentials (the composition root keeps one per shop).
        ``routing``: ``Inbox.routing``."""
        self.settings = settings
        self.shops = shops
        self.clients = clients
        self.routing = routing
        self.clock = clock

    def look_up_due(self, store: Store, limit: int = 100) -> RefundLookupReport:
        report = RefundLookupReport()
        max_attempts = self.settings.scheduler.forward_max_attempts
        for due in store.due_refund_lookups(self.clock(), limit):
            shop_id, order_id, refund_ids = due["shop_id"], due["order_id"], due["refund_ids"]
            shop = self.shops.get(shop_id)
            client = self.clients(shop) if shop is not None else None
            if client is None:
                reason = ("the shop is no longer configured" if shop is None else
                          f"no WooCommerce REST API key for this shop ([shops.{shop_id}.storefront] "
                          "consumer_key and consumer_secret)")
                self._fail(store, shop_id, order_id, refund_ids, reason, due["attempts"] + 1, report)
                continue
            try:
                refunds = client.order_refunds(order_id)
            except ProviderError as exc:
                attempts = due["attempts"] + 1
                error = f"{type(exc).__name__}: {exc}"[:500]
                if isinstance(exc, ProviderRejected) or attempts >= max_attempts:
                    self._fail(store, shop_id, order_id, refund_ids, error, attempts, report)
                else:
                    now = self.clock()
                    with store.write():
                        store.finish_refund_lookups(shop_id, order_id, refund_ids, status="pending", now=now,
                                                    error=error, next_attempt_at=now + retry_delay(attempts))
                    report.retrying += 1
                    report.errors.append(f"{shop_id} order {order_id}: {error}")
                continue
            now = self.clock()
            with store.write():
                pending = store.pending_refund_lookups(shop_id, order_id)
                routing = self.routing(store, shop_id, now)
                for refund in refunds:
                    if refund.refund_id in pending:
                        apply_refund(store, routing, refund, shop_id, now, order_nets_out_refunds=False)
                        report.applied += 1
                # Done: the refunds read, and those asked for but not in the answer (deleted
                # meanwhile; nothing to apply). A refund asked for after the read stays pending.
                answered = {refund.refund_id for refund in refunds} | set(refund_ids)
                store.finish_refund_lookups(shop_id, order_id, pending & answered, status="done", now=now)
            report.orders += 1
        return report

    def _fail(self, store: Store, shop_id: str, order_id: str, refund_ids: list[str], error: str, attempts: int,
              report: RefundLookupReport) -> None:
        """The refunds' lines cannot be read: the order keeps its reservations, and the
        creator sees why in the audit log (``connector exceptions`` lists it)."""
        now = self.clock()
        with store.write():
            store.finish_refund_lookups(shop_id, order_id, refund_ids, status="failed", now=now, error=error)
            store.event(shop_id, "refund.lookup_failed", order_id,
                        {"refund_ids": refund_ids, "attempts": attempts, "error": error}, now)
        report.failed += 1
        report.errors.append(f"{shop_id} order {order_id}: {error}")


def woocommerce_orders_client(shop: ShopSettings):
    """The real WooCommerce orders client for a shop, or None (not WooCommerce, or no API key)."""
    from adapters.woocommerce_orders import WooCommerceOrders

    config = shop.storefront
    if shop.platform != "woocommerce" or not (config.consumer_key and config.consumer_secret):
        return None
    return WooCommerceOrders(shop.store_url, config.consumer_key, config.consumer_secret)
