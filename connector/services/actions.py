"""The steps the action centre offers beside its items (other than an exception's own
steps, ``services.exceptions``): each checks that the thing still needs it and
belongs to the shop, takes the step, and writes who took it to the audit log. The
web page and the CLI call these alike.

A step that no longer applies (someone else was quicker, the job was sent
meanwhile) is refused with ``ActionRefused`` and a sentence for the person; a thing
of another shop, or none at all, is ``NotFound`` (a 404 on the page).

Steps that call out (a sync, reading the store back, repairing its webhooks) make
their HTTP calls outside the write lock, as the services they reuse do. Retrying
background work puts it back in its queue, due now; the scheduler's next run (within
a minute) takes it, the same way a first attempt is taken.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from connector.actions_store import ActionsStore
from connector.config import Settings, ShopSettings
from connector.ports import OrderWebhookSetup, ShopDirectory
from connector.services.forwarding import Forwarding
from connector.services.inbox import Inbox
from connector.services.reconcile import WEBHOOK_PATH as WOOCOMMERCE_WEBHOOK_PATH, OrderReconciliation
from connector.services.stock import Rerouted, resolve_over_reserved, set_manual_count, when_text
from connector.services.sync import StockSync, SyncOutcome
from connector.services.transfers import TRANSITIONS, TransferError, Transfers
from connector.store import Store

TRANSFER_STEPS = tuple(TRANSITIONS)  # approve, reject, ship, receive
_STATUS_WORDS = {"proposed": "waiting for approval", "approved": "approved", "in_transit": "on its way",
                 "received": "received", "rejected": "rejected"}


class ActionRefused(Exception):
    """The step does not apply (any more); the message says why, for the person."""


class NotFound(ActionRefused):
    """No such thing in this shop."""


@dataclass(frozen=True)
class RepairOutcome:
    webhooks: int  # the store's order webhooks to us, active now
    detail: str


class ActionCentre:
    def __init__(self, settings: Settings, shops: ShopDirectory, clock: Callable[[], datetime], *,
                 forwarding: Forwarding, sync: StockSync, transfers: Transfers, reconcile: OrderReconciliation,
                 inbox: Inbox, webhook_setup: Callable[[ShopSettings], OrderWebhookSetup | None],
                 shopify_app=None):
        """``webhook_setup``: shop -> what sets up its order webhooks (WooCommerce, with
        the shop's REST API key), or None; ``shopify_app``: services.shopify_app.ShopifyApp
        when the app is configured."""
        self.settings = settings
        self.shops = shops
        self.clock = clock
        self.forwarding = forwarding
        self.sync = sync
        self.transfers = transfers
        self.reconcile = reconcile
        self.inbox = inbox
        self.webhook_setup = webhook_setup
        self.shopify_app = shopify_app

    # ------------------------------------------------------------ hand-offs to 3PLs

    def retry_forward(self, store: Store, shop_id: str, job_id: int, by: str) -> dict:
        """A failed hand-off, or one whose outcome is unknown, is due again now. The 3PL
        is asked first whether it has the order (the adapters look our reference up before
        they create), so a retry never sends it twice."""
        now = self.clock()
        with store.write():
            job = self._job(store, shop_id, job_id)
            order = store.order(shop_id, job["order_id"])
            number = order.number if order else job["order_id"]
            unknown = job["status"] == "pending" and job["attempts"] >= self.settings.scheduler.forward_max_attempts
            if job["status"] != "failed" and not unknown:
                raise ActionRefused(_forward_not_stuck(job, number))
            ActionsStore(store).requeue_forward_job(job_id, now)
            store.event(shop_id, "forward.retry", job["order_id"],
                        {"job_id": job_id, "node_id": job["node_id"], "was": job["status"], "by": by}, now)
        return store.forward_job(job_id)

    def amendment_done(self, store: Store, shop_id: str, job_id: int, by: str) -> int:
        """The 3PL's order now matches the changed order (``Forwarding.amended``)."""
        self._job(store, shop_id, job_id)
        closed = self.forwarding.amended(store, job_id, by)
        if not closed:
            raise ActionRefused("Nothing waits to be changed at the 3PL for this order any more "
                                "(someone marked it done, or it shipped).")
        return closed

    def _job(self, store: Store, shop_id: str, job_id: int) -> dict:
        job = store.forward_job(job_id)
        if job is None or job["shop_id"] != shop_id:
            raise NotFound(f"There is no hand-off {job_id} in this shop.")
        return job

    # ------------------------------------------------------------ stock

    def sync_now(self, store: Store, shop_id: str, provider: str, by: str) -> SyncOutcome:
        """Fetch the stock of every node ``provider`` feeds now (``StockSync.sync_provider``:
        the fetch outside the write lock, the new counts in one transaction)."""
        shop = self.shops.require(shop_id)
        if provider not in shop.providers:
            raise NotFound(f"This shop has no 3PL connection or feed {provider!r}.")
        nodes = sorted(node_id for node_id, source in shop.sources.items() if source.provider == provider)
        if not nodes:
            raise ActionRefused(f"No node takes its stock from {provider} any more: nothing to sync.")
        outcome = self.sync.sync_provider(store, shop_id, provider, nodes)
        with store.write():
            store.event(shop_id, "sync.requested", provider,
                        {"by": by, "ok": outcome.ok, "rows": outcome.rows, "error": outcome.error,
                         "rerouted": len(outcome.rerouted)}, self.clock())
        return outcome

    def resolve_over_reserved(self, store: Store, shop_id: str, node_id: str, by: str) -> list[Rerouted]:
        """Move the newest orders reserved beyond what ``node_id`` holds to other nodes (or
        to the exceptions, saying why); orders its 3PL already has stay."""
        shop = self._shop_node(shop_id, node_id)
        now = self.clock()
        with store.write():
            rows = store.over_reserved(shop_id, [node_id])
            if not rows:
                raise ActionRefused(f"{_name(shop, node_id)} holds enough for every order reserved there now: "
                                    "nothing to move.")
            if all(row["reserved"] <= row["at_3pl"] for row in rows):
                raise ActionRefused(f"Every order over what {_name(shop, node_id)} holds is already at its 3PL: "
                                    "those stay; check with the 3PL that it can ship them.")
            rerouted = resolve_over_reserved(store, self.inbox.routing(store, shop_id, now), shop_id, [node_id],
                                             f"move asked for by {by} at {when_text(now)}", now)
            store.event(shop_id, "stock.over_reserved_moved", node_id,
                        {"by": by, "moved": [[r.order_number, r.line_id, r.to_node] for r in rerouted]}, now)
        return rerouted

    def count(self, store: Store, shop_id: str, node_id: str, sku: str, quantity: int, by: str
              ) -> tuple[int | None, list[Rerouted]]:
        """A hand count of ``sku`` at a node whose stock is typed in (``set_manual_count``)."""
        shop = self._shop_node(shop_id, node_id)
        source = shop.sources[node_id]
        if source.provider:
            raise ActionRefused(f"{_name(shop, node_id)} takes its stock from {source.provider}: its next sync "
                                "would overwrite a count. Sync it instead.")
        if quantity < 0:
            raise ActionRefused("A count is a whole number of units, 0 or more.")
        return set_manual_count(store, shop_id, node_id, sku, quantity, self.clock(),
                                routing=self.inbox.routing, actor=by)

    def _shop_node(self, shop_id: str, node_id: str) -> ShopSettings:
        shop = self.shops.require(shop_id)
        if node_id not in shop.network.nodes:
            raise NotFound(f"This shop has no node {node_id!r}.")
        return shop

    # ------------------------------------------------------------ transfers

    def transfer(self, store: Store, shop_id: str, transfer_id: int, step: str, by: str, *,
                 units: int | None = None, note: str | None = None) -> dict:
        """approve, reject (with an optional note), ship (``units``: fewer than planned) or
        receive a transfer of this shop (``Transfers``)."""
        if step not in TRANSFER_STEPS:
            raise ActionRefused(f"Pick one of {', '.join(TRANSFER_STEPS)}.")
        row = store.transfer(transfer_id)
        if row is None or row["shop_id"] != shop_id:
            raise NotFound(f"There is no transfer {transfer_id} in this shop.")
        allowed, _ = TRANSITIONS[step]
        if row["status"] not in allowed:
            who = f" by {row['decided_by']}" if row["decided_by"] and row["status"] in ("approved", "rejected") else ""
            raise ActionRefused(f"Transfer #{transfer_id} is already {_STATUS_WORDS[row['status']]}{who}: "
                                "nothing changed.")
        try:
            if step == "reject":
                return self.transfers.reject(store, transfer_id, by, note or None)
            if step == "ship":
                return self.transfers.ship(store, transfer_id, by, units)
            return getattr(self.transfers, step)(store, transfer_id, by)
        except TransferError as exc:  # e.g. the source cannot spare the units, or someone was quicker
            raise ActionRefused(str(exc)) from None

    # ------------------------------------------------------------ the store's deliveries

    def retry_webhooks(self, store: Store, shop_id: str, by: str, inbox_id: int | None = None) -> list[int]:
        """Failed deliveries (or one) back to the inbox for one more try each; processed
        within seconds by the web process or the scheduler, like any delivery."""
        now = self.clock()
        with store.write():
            ids = ActionsStore(store).requeue_failed_webhooks(shop_id, inbox_id)
            if not ids:
                raise ActionRefused("No delivery from the store waits to be tried again.")
            store.event(shop_id, "webhook.retry", shop_id, {"ids": ids, "by": by}, now)
        return ids

    def retry_refund_lookup(self, store: Store, shop_id: str, order_id: str, by: str) -> int:
        """The order's failed refund lookups are asked again at the next run (every minute)."""
        now = self.clock()
        with store.write():
            count = ActionsStore(store).requeue_refund_lookups(shop_id, order_id, now)
            if not count:
                raise ActionRefused(f"No refund of order {order_id} waits to be read again.")
            store.event(shop_id, "refund.retry", order_id, {"refunds": count, "by": by}, now)
        return count

    def reconcile_now(self, store: Store, shop_id: str, by: str):
        """Read the store's changed orders back and check its webhooks now (``OrderReconciliation``);
        what a missed webhook would have brought is processed at once. Returns its ShopReconcile."""
        shop = self.shops.require(shop_id)
        if shop.platform != "woocommerce":
            raise ActionRefused("Only WooCommerce stores are read back; Shopify resends what it could not deliver.")
        report = self.reconcile.reconcile(store, shop_id)
        if report.skipped:
            raise ActionRefused("The store cannot be read back without its REST API key: connect the store again "
                                "from its settings.")
        if report.stored:
            self.inbox.process(store)
        result = report.shops[0]
        with store.write():
            store.event(shop_id, "reconcile.requested", shop_id,
                        {"by": by, "read": result.read, "stored": result.stored, "error": result.error,
                         "webhook_problems": result.webhook_problems}, self.clock())
        return result

    def repair_webhooks(self, store: Store, shop_id: str, by: str) -> RepairOutcome:
        """Make the store send every order change to us again: WooCommerce's webhooks of
        ours re-activated (signed with the shop's current secret) and a missing topic
        created, then read back; a Shopify app that subscribes per shop subscribes again."""
        shop = self.shops.require(shop_id)
        public_url = self.settings.web.public_url
        if not public_url:
            raise ActionRefused("This service's public address ([web] public_url) is not set, so the store cannot "
                                "be told where to send its webhooks.")
        if shop.platform == "shopify":
            return self._resubscribe_shopify(store, shop, by)
        setup = self.webhook_setup(shop)
        if setup is None:
            raise ActionRefused("The store's webhooks cannot be repaired from here without its REST API key: "
                                "connect the store again, or set them Active in WooCommerce > Settings > Advanced "
                                "> Webhooks.")
        try:
            done = setup.ensure_order_webhooks(public_url + WOOCOMMERCE_WEBHOOK_PATH)
        except Exception as exc:  # noqa: BLE001 - the adapter's errors are sentences for a creator
            raise ActionRefused(f"The webhooks could not be repaired: {exc}") from None
        count = len(done.webhooks)
        with store.write():
            store.set_webhook_problems(shop_id, [])
            store.event(shop_id, "webhooks.repaired", shop_id, {"by": by, "webhooks": count}, self.clock())
        return RepairOutcome(count, f"The store sends its {count} order webhooks to this service again.")

    def _resubscribe_shopify(self, store: Store, shop: ShopSettings, by: str) -> RepairOutcome:
        if self.shopify_app is None or not self.settings.shopify.subscribe_webhooks:
            raise ActionRefused("This app's Shopify webhooks come with the app (shopify.app.toml): deploy the app "
                                "again to restore them.")
        try:
            created = self.shopify_app.resubscribe(shop.shop_domain)
        except Exception as exc:  # noqa: BLE001 - the adapter's errors are sentences for a creator
            raise ActionRefused(f"The webhooks could not be subscribed again: {exc}") from None
        with store.write():
            store.event(shop.id, "webhooks.repaired", shop.id, {"by": by, "created": len(created)}, self.clock())
        return RepairOutcome(len(created), f"Subscribed {len(created)} missing webhook(s) again; the rest were there.")


def _forward_not_stuck(job: dict, number: str) -> str:
    provider = job["provider"]
    return {
        "sent": f"Order {number} was already handed to {provider}: nothing to try again.",
        "shipped": f"Order {number} has already shipped from {provider}.",
        "sending": f"Order {number} is being handed to {provider} right now.",
        "cancelled": f"Order {number} no longer goes to {provider} (cancelled or routed elsewhere).",
        "pending": f"Order {number} is already queued for {provider}; it is tried again by itself.",
    }.get(job["status"], f"Order {number}'s hand-off to {provider} is {job['status']}.")


def _name(shop: ShopSettings, node_id: str) -> str:
    node = shop.network.nodes[node_id]
    return node.name or node_id
