"""Order reconciliation: read back the orders that changed, for the webhooks that never came.

WooCommerce delivers each webhook once: a delivery that fails (our 503 while the
database is busy, a deploy, a network fault) is never retried, and after several
failures in a row WooCommerce disables the webhook altogether (woocommerce.md §1.5,
§7). So every ``reconcile_every_seconds`` each WooCommerce shop's orders modified
since the newest change already read are listed through its REST API, and each goes
into the inbox under the key its webhook has (order id, modification time, status).
An order whose webhook arrived is a duplicate and costs nothing; one that was missed
is stored and processed like the webhook (routed, reserved, cancelled, refunded).

The watermark is the store's own modification time of the newest order read, never
our clock, so clock skew cannot open a gap; each run starts ``reconcile_overlap_minutes``
before it, for orders saved with a time a moment before they became visible. Orders
in the trash (``order.deleted`` missed) are read as a second listing. Each page is
stored in one transaction; the watermark moves at the end of a run that read every
listing to its end, or up to where a listing cut short by ``reconcile_max_requests``
got. A run that fails leaves it: the next reads the same window again, and what was
stored already is a duplicate.

Each run also lists the store's webhooks: one of ours that WooCommerce disabled (or an
admin paused), or an order topic with no webhook to us at all, is recorded with what to
do about it, shown by ``connector exceptions`` and written to the audit log when it
changes. Reconciliation keeps orders flowing meanwhile, minutes late instead of seconds.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Sequence
from urllib.parse import urlsplit

from connector.config import Settings, ShopSettings
from connector.domain.model import PolledOrder, ProviderError, StoreWebhook
from connector.ports import OrderFeed, ShopDirectory
from connector.services.inbox import Inbox
from connector.store import Store, parse_ts

log = logging.getLogger("connector.reconcile")

# "any" is every status but the trash; an order trashed without its webhook is in the second.
LISTINGS = ("any", "trash")
# The topics a WooCommerce shop must send us, and where (connector.web.webhooks' route).
ORDER_TOPICS = ("order.created", "order.updated", "order.deleted", "order.restored")
WEBHOOK_PATH = "/webhooks/woocommerce"


@dataclass
class ShopReconcile:
    shop_id: str
    read: int = 0  # orders listed
    stored: int = 0  # of them, new to the inbox: no webhook had brought that change (yet)
    watermark: datetime | None = None
    error: str | None = None
    webhook_problems: list[str] = field(default_factory=list)


@dataclass
class ReconcileReport:
    shops: list[ShopReconcile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # shops without an orders API key

    @property
    def stored(self) -> int:
        return sum(s.stored for s in self.shops)

    @property
    def failed(self) -> list[ShopReconcile]:
        return [s for s in self.shops if s.error]


class OrderReconciliation:
    def __init__(self, settings: Settings, shops: ShopDirectory, clients: Callable[[ShopSettings], OrderFeed | None], inbox: Inbox,
                 clock: Callable[[], datetime]):
        """``clients``: shop -> its WooCommerce orders client, or None without REST API
        credentials (the composition root keeps one per shop)."""
        self.settings = settings
        self.shops = shops
        self.clients = clients
        self.inbox = inbox
        self.clock = clock

    def reconcile(self, store: Store, shop_id: str | None = None) -> ReconcileReport:
        report = ReconcileReport()
        for shop in map(self.shops.require, self.shops.ids()):
            if shop.platform != "woocommerce" or (shop_id and shop.id != shop_id):
                continue
            client = self.clients(shop)
            if client is None:
                report.skipped.append(shop.id)
                continue
            report.shops.append(self._reconcile_shop(store, shop.id, client))
        return report

    def _reconcile_shop(self, store: Store, shop_id: str, client: OrderFeed) -> ShopReconcile:
        config = self.settings.scheduler
        result = ShopReconcile(shop_id)
        state = store.order_poll(shop_id)
        watermark = parse_ts(state["watermark"]) if state else None
        start = (watermark - timedelta(minutes=config.reconcile_overlap_minutes) if watermark is not None
                 else self.clock() - timedelta(hours=config.reconcile_first_lookback_hours))
        newest: datetime | None = None
        # Where a listing may have more to read: the watermark must not pass it, or the
        # other listing's newer orders would carry it past orders not read yet.
        unfinished: list[datetime] = []
        try:
            for status in LISTINGS:
                last, full = None, False
                for page in client.modified_orders(start, status=status,
                                                   max_requests=config.reconcile_max_requests):
                    if page:
                        last = self._store_page(store, shop_id, page, result)
                        newest = max(newest, last) if newest else last
                    full = len(page) >= client.page_size
                if full:  # the last page was full: cut short, or the listing ends exactly there
                    unfinished.append(last)
        except ProviderError as exc:
            result.error = f"{type(exc).__name__}: {exc}"[:500]
        checked = result.error is None  # an unreachable store says nothing new about its webhooks
        if checked:
            try:
                result.webhook_problems = webhook_problems(client.webhooks())
            except ProviderError as exc:
                result.webhook_problems = [
                    f"the store's webhooks could not be listed ({type(exc).__name__}: {exc})"[:500]]
        now = self.clock()
        with store.write():
            before = json.loads(state["webhook_problems"] or "[]") if state else []
            if checked and before != result.webhook_problems:
                store.set_webhook_problems(shop_id, result.webhook_problems)
                store.event(shop_id, "webhooks.unhealthy" if result.webhook_problems else "webhooks.healthy", shop_id,
                            {"problems": result.webhook_problems, "before": before}, now)
                for problem in result.webhook_problems:
                    log.warning("%s: %s", shop_id, problem)
            elif not checked:
                result.webhook_problems = before
            mark = min(unfinished) if unfinished else newest
            if mark is not None and result.error is None:
                store.advance_order_poll(shop_id, mark)
            failures = store.finish_order_poll(shop_id, now, result.error)
            if result.error and failures == 1:
                # Once per outage: the audit log says reconciliation stopped, `connector reconcile` says why.
                store.event(shop_id, "reconcile.failed", shop_id, {"error": result.error}, now)
        state = store.order_poll(shop_id)
        result.watermark = parse_ts(state["watermark"])
        if result.stored:
            log.warning("%s: %d order changes reached the inbox by reconciliation, not by webhook",
                        shop_id, result.stored)
        return result

    def _store_page(self, store: Store, shop_id: str, page: Sequence[PolledOrder], result: ShopReconcile) -> datetime:
        """Store one page's orders in the inbox in one transaction; returns the newest
        modification time on it."""
        now = self.clock()
        stored = 0
        with store.write():
            for polled in page:
                outcome = self.inbox.store_polled(store, shop_id, "woocommerce", polled, now)
                stored += not outcome.body.get("duplicate")
            store.count_order_poll(shop_id, len(page), stored)
        result.read += len(page)
        result.stored += stored
        return max(p.modified_at for p in page)


def webhook_problems(hooks: Sequence[StoreWebhook]) -> list[str]:
    """What keeps the store's order changes from reaching us by webhook, as sentences a
    creator can act on: our webhooks that are not active, and order topics none of ours
    sends. Webhooks to other services are none of our business."""
    ours = [h for h in hooks if urlsplit(h.delivery_url).path.rstrip("/").endswith(WEBHOOK_PATH)]
    problems = []
    for hook in sorted(ours, key=lambda h: (h.topic, h.webhook_id)):
        if hook.status == "active":
            continue
        why = ("WooCommerce disabled it after deliveries failed" if hook.status == "disabled"
               else f"it is {hook.status}")
        problems.append(f"webhook #{hook.webhook_id} ({hook.topic} to {hook.delivery_url}) does not deliver: {why}; "
                        "set it Active again in WooCommerce > Settings > Advanced > Webhooks")
    for topic in ORDER_TOPICS:
        if not any(h.topic == topic for h in ours):
            problems.append(f"no webhook sends {topic} to this service: add one (delivery URL "
                            f"https://<this service>{WEBHOOK_PATH}, the shop's webhook_secret)")
    return problems
