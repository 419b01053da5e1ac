"""Webhooks in: verify and store durably (``ingest``), then apply each stored
delivery exactly once (``process_inbox``).

Exactly once: a batch of deliveries is processed inside one ``BEGIN IMMEDIATE``
transaction, each delivery in its own savepoint, and its inbox row is marked
processed in that same transaction. A process killed mid-batch commits
nothing, so the rows stay pending and the next run does them; two processes
draining at once take turns on SQLite's write lock and never see the same
pending row.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Mapping

from connector.config import Settings, ShopSettings, normalise_store_url
from connector.ports import ShopDirectory
from connector.domain.model import (
    AppUninstalled,
    CustomerDataRequest,
    CustomerRedact,
    FulfillmentReported,
    Ignored,
    OrderDeleted,
    OrderUpsert,
    PayloadError,
    PolledOrder,
    RefundCreated,
    ShopRedact,
    StorefrontEvent,
)
from connector.domain.health import Freshness, StalePolicy, apply_freshness
from connector.services.group_commit import CommitAlone, GroupCommit
from connector.services.shipments import apply_fulfillment
from connector.services.orders import (
    ShopRouting, apply_order, apply_refund, close_order, prepare_route, request_push,
)
from connector.store import InboxRow, Store, parse_ts

log = logging.getLogger("connector.inbox")

# The header an inbox row read back from the store's API carries instead of a webhook's.
POLLED_HEADER = "x-connector-source"
# Headers worth keeping with the body (the rest is transport noise).
_KEPT_HEADER_PREFIXES = ("x-shopify-", "x-wc-webhook-")
_KEPT_HEADERS = {"content-type", "user-agent"}
# Deliveries for a shop that is no longer active (uninstalled): the uninstall itself and the
# privacy requests Shopify sends afterwards (shop/redact 48 hours later).
AFTER_UNINSTALL_TOPICS = frozenset({"app/uninstalled", "shop/redact", "customers/redact", "customers/data_request"})
# A batch ends before the order that would take it past this many lines, so a large order
# is processed in a transaction of its own, routed just before it (see ``Inbox.process``).
BATCH_LINES = 500
# Orders with at least this many lines are routed before the write lock is taken; a smaller
# one routes in well under a millisecond, and later orders of a batch would find the stock
# changed by earlier ones and route again anyway.
PREPARE_LINES = 50


@dataclass(frozen=True)
class IngestOutcome:
    status: int
    body: dict
    inbox_id: int | None = None

    @property
    def queued(self) -> bool:
        return self.status == 200 and self.body.get("status") == "pending" and not self.body.get("duplicate")


@dataclass
class ProcessReport:
    processed: int = 0
    failed: int = 0
    retrying: int = 0
    statuses: dict = field(default_factory=dict)


class Inbox:
    """The webhook use cases. One per process; stores are passed per call
    because each thread/request/job has its own connection."""

    def __init__(self, settings: Settings, shops: ShopDirectory, storefronts: Mapping[str, object], clock: Callable[[], datetime],
                 pause: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.shops = shops
        self.storefronts = storefronts
        self.clock = clock
        self.pause = pause
        self._routing: dict[str, tuple[tuple, ShopRouting]] = {}
        # (store, shop id, shop domain) on app/uninstalled: deactivate the shop, drop its tokens.
        self.uninstalled: Callable[[Store, str, str | None], None] | None = None

    def routing(self, store: Store, shop_id: str, now: datetime) -> ShopRouting:
        """The shop's routing with node health folded in; rebuilt only when health changes."""
        shop = self.shops.require(shop_id)
        network, factors = shop.network, {}
        synced = [node_id for node_id, source in shop.sources.items() if source.provider]
        if synced:
            state = store.sync_state(shop_id)
            freshness = {n: Freshness(parse_ts(state[n]["last_ok_at"]) if n in state else None,
                                      state[n]["last_error"] if n in state else None) for n in synced}
            sync = self.settings.sync
            policy = StalePolicy(timedelta(minutes=sync.stale_after_minutes), sync.stale_policy == "exclude",
                                 sync.stale_discount)
            network, factors = apply_freshness(network, freshness, policy, now)
        # The shop's configuration version too: a changed document is a new routing.
        key = (shop.version, tuple(sorted((n.id, n.status.value, n.status_note or "") for n in network.nodes.values()
                                          if n.status_note)))
        cached = self._routing.get(shop_id)
        if cached is None or cached[0] != key:
            forward = {n: s.provider for n, s in shop.sources.items() if s.forward_orders}
            storefront = shop.storefront
            push_after = timedelta(seconds=storefront.debounce_seconds) if storefront.push else None
            routing = ShopRouting(network, factors, forward, push_after, shop.version)
            cached = self._routing[shop_id] = (key, routing)
        return cached[1]

    # ------------------------------------------------------------ ingest

    def ingest(self, store: Store | CommitAlone | GroupCommit, platform: str, raw_body: bytes,
               headers: Mapping[str, str]) -> IngestOutcome:
        """Verify and store one delivery. ``store`` only has to ``insert_webhook``: a
        Store commits the row itself; the web's writers (connector.services.group_commit)
        also do, but raise ``NotStored`` instead of a store error."""
        storefront = self.storefronts[platform]
        if platform == "woocommerce" and storefront.is_ping(raw_body, headers):
            return IngestOutcome(200, {"ok": True, "ping": True})
        shop = self._shop_for(platform, storefront, headers)
        # Signature before anything is parsed or stored.
        if shop is None or not storefront.verify(raw_body, headers, shop.secrets):
            return IngestOutcome(401, {"error": "unauthorized", "detail": "unknown shop or invalid signature"})
        now = self.clock()
        kept = _kept_headers(headers)
        topic = storefront.topic(headers) or ""
        try:
            if not topic:
                raise PayloadError("the topic header is missing")
            payload = load_payload(raw_body)
            event = storefront.parse(shop.id, topic, payload)
        # JSONDecodeError and UnicodeDecodeError are ValueErrors; RecursionError is json's
        # answer to deeply nested arrays/objects (a few hundred kB of "[[[[...").
        except (ValueError, PayloadError, RecursionError) as exc:
            message = f"unparseable body: {exc}" if not isinstance(exc, PayloadError) else str(exc)
            inbox_id, _ = store.insert_webhook(
                shop_id=shop.id, platform=platform, topic=topic or "(none)",
                dedupe_key=self._delivery_key(storefront, headers) or _body_key(raw_body),
                webhook_id=None, event_id=None, resource_id=None, headers=kept, body=raw_body, received_at=now,
                status="rejected", last_error=message[:500],
            )
            return IngestOutcome(400, {"error": "bad_request", "detail": message[:500]}, inbox_id)
        return _store_event(
            store, event, shop_id=shop.id, platform=platform, topic=topic,
            dedupe_key=_storable(storefront.dedupe_key(headers, payload)) or _body_key(raw_body),
            webhook_id=self._delivery_key(storefront, headers), event_id=storefront.event_id(headers),
            resource_id=storefront.resource_id(topic, payload), headers=kept, body=raw_body, now=now,
        )

    def store_polled(self, store: Store, shop_id: str, platform: str, polled: PolledOrder,
                     now: datetime) -> IngestOutcome:
        """Put an order read back from the store's API (reconciliation) into the inbox as
        the webhook it stands for, under that webhook's key: when the webhook came, this
        is a duplicate and nothing is stored. One the parser refuses is kept as
        ``rejected`` with the reason, as a webhook would be."""
        kept = {POLLED_HEADER: "reconciliation"}
        try:
            event = self.storefronts[platform].parse(shop_id, polled.topic, load_payload(polled.body))
        except (ValueError, PayloadError, RecursionError) as exc:
            inbox_id, duplicate = store.insert_webhook(
                shop_id=shop_id, platform=platform, topic=polled.topic, dedupe_key=_storable(polled.dedupe_key),
                webhook_id=None, event_id=None, resource_id=polled.order_id, headers=kept, body=polled.body,
                received_at=now, status="rejected", last_error=str(exc)[:500],
            )
            return IngestOutcome(400, {"error": "bad_request", "detail": str(exc)[:500], "duplicate": duplicate},
                                 inbox_id)
        return _store_event(store, event, shop_id=shop_id, platform=platform, topic=polled.topic,
                            dedupe_key=_storable(polled.dedupe_key), webhook_id=None, event_id=None,
                            resource_id=polled.order_id, headers=kept, body=polled.body, now=now)

    def _shop_for(self, platform: str, storefront, headers: Mapping[str, str]) -> ShopSettings | None:
        if platform == "shopify":
            key = storefront.shop_domain(headers)
        else:
            source = storefront.source(headers)
            key = normalise_store_url(source) if source else None
        after_uninstall = storefront.topic(headers) in AFTER_UNINSTALL_TOPICS
        shop = self.shops.by_domain(key, including_inactive=after_uninstall) if key else None
        return shop if shop is not None and shop.platform == platform else None

    @staticmethod
    def _delivery_key(storefront, headers) -> str | None:
        return storefront.delivery_id(headers)

    # ------------------------------------------------------------ processing

    def process(self, store: Store, limit: int | None = None, batch_size: int | None = None) -> ProcessReport:
        """Drain pending deliveries (at most ``limit``), batch by batch."""
        report = ProcessReport()
        batch = batch_size or self.settings.processing.batch_size
        while limit is None or report.processed + report.failed + report.retrying < limit:
            size = batch if limit is None else min(batch, limit - report.processed - report.failed - report.retrying)
            # Parse the deliveries and route their new orders before taking the write lock;
            # inside it, a plan whose inputs are unchanged is only written (see prepare_route).
            pending = store.next_pending_webhooks(size, self.clock())
            events = self._prepare(store, pending)
            with store.write():
                rows = store.next_pending_webhooks(len(events) or size, self.clock())
                for row in rows:
                    self._process_one(store, row, report, events.get(row.id))
            if len(rows) < size and len(events) == len(pending):
                break
            self.pause(self.settings.processing.pause_between_batches_ms / 1000)
        return report

    def _prepare(self, store: Store, rows: list[InboxRow]) -> dict[int, StorefrontEvent | None]:
        """The leading ``rows`` that make a batch (up to BATCH_LINES order lines, at least
        one row), each parsed (None: ``_apply`` will meet and record the error), with the
        routes of their large new orders prepared in the shops' ``ShopRouting.prepared``."""
        now = self.clock()
        events: dict[int, StorefrontEvent | None] = {}
        lines = 0
        for _, routing in self._routing.values():
            routing.prepared.clear()  # plans of rows another drainer took meanwhile
        for row in rows:
            try:
                event = self.storefronts[row.platform].parse(row.shop_id, row.topic, load_payload(row.body))
            except Exception:  # noqa: BLE001 - parsed again in the transaction, where the error is recorded
                event = None
            size = len(event.order.lines) if isinstance(event, OrderUpsert) else 1
            if events and lines + size > BATCH_LINES:
                break
            events[row.id], lines = event, lines + size
            if isinstance(event, OrderUpsert) and size >= PREPARE_LINES and self.shops.get(row.shop_id):
                try:
                    prepare_route(store, self.routing(store, row.shop_id, now), event.order, now)
                except Exception:  # noqa: BLE001 - only a head start; processing meets and records any error
                    log.exception("inbox %s: routing ahead failed; it is routed in the transaction", row.id)
        return events

    def _process_one(self, store: Store, row: InboxRow, report: ProcessReport,
                     event: StorefrontEvent | None = None) -> None:
        now = self.clock()
        try:
            with store.savepoint():
                outcome = self._apply(store, row, now, event)
                store.mark_webhook(row.id, "processed", now)
        except Exception as exc:  # noqa: BLE001 - one bad delivery must not stop the others
            log.exception("inbox %s (%s %s) failed", row.id, row.shop_id, row.topic)
            error = f"{type(exc).__name__}: {exc}"[:500]
            if row.attempts + 1 >= self.settings.processing.max_attempts:
                store.mark_webhook(row.id, "failed", now, error)
                store.event(row.shop_id, "webhook.failed", str(row.id), {"topic": row.topic, "error": error}, now)
                report.failed += 1
            else:
                store.retry_webhook_later(row.id, error, now + timedelta(seconds=2 ** (row.attempts + 1)))
                report.retrying += 1
            return
        report.processed += 1
        report.statuses[outcome] = report.statuses.get(outcome, 0) + 1

    def _apply(self, store: Store, row: InboxRow, now: datetime, event: StorefrontEvent | None = None) -> str:
        if self.shops.get(row.shop_id, including_inactive=row.topic in AFTER_UNINSTALL_TOPICS) is None:
            return "shop_not_configured"
        if event is None:
            event = self.storefronts[row.platform].parse(row.shop_id, row.topic, load_payload(row.body))
        shop_id = row.shop_id
        if isinstance(event, OrderUpsert):
            return apply_order(store, self.routing(store, shop_id, now), event.order, now)
        if isinstance(event, OrderDeleted):
            if store.order(shop_id, event.order_id) is None:
                return "unknown_order"
            skus = {l["sku"] for l in store.order_lines(shop_id, event.order_id) if l["sku"]}
            request_push(store, self.routing(store, shop_id, now), shop_id, skus, now)
            return close_order(store, shop_id, event.order_id, "cancelled", now)
        if isinstance(event, RefundCreated):
            return apply_refund(store, self.routing(store, shop_id, now), event, shop_id, now) or "unknown_order"
        if isinstance(event, FulfillmentReported):
            return apply_fulfillment(store, self.shops.require(shop_id), event, now)
        if isinstance(event, CustomerDataRequest):
            export = store.customer_data(shop_id, event.customer_id, event.order_ids)
            store.event(shop_id, "privacy.data_request", event.request_id, export, now)
            self._minimise(store, row, {"customer_id": event.customer_id, "orders_requested": event.order_ids})
            return "data_request_recorded"
        if isinstance(event, CustomerRedact):
            count = store.redact_customer(shop_id, event.customer_id, event.order_ids)
            store.event(shop_id, "privacy.customer_redacted", event.customer_id,
                        {"orders": list(event.order_ids), "orders_redacted": count}, now)
            self._minimise(store, row, {"customer_id": event.customer_id, "orders_to_redact": event.order_ids})
            return "customer_redacted"
        if isinstance(event, ShopRedact):
            counts = store.delete_shop_data(shop_id, keep_inbox_id=row.id)
            store.set_shop_status(shop_id, "redacted", now)
            store.event(shop_id, "privacy.shop_redacted", shop_id, {"rows_deleted": counts}, now)
            return "shop_redacted"
        if isinstance(event, AppUninstalled):
            store.set_shop_status(shop_id, "uninstalled", now)
            store.event(shop_id, "shop.uninstalled", shop_id, {}, now)
            if self.uninstalled is not None:
                shop = self.shops.get(shop_id, including_inactive=True)
                self.uninstalled(store, shop_id, shop.shop_domain if shop else None)
            self._minimise(store, row, {})
            return "uninstalled"
        return "ignored"

    @staticmethod
    def _minimise(store: Store, row: InboxRow, kept: dict) -> None:
        """Compliance bodies carry emails and phone numbers: keep only the ids we acted on."""
        store.replace_webhook_body(row.id, json.dumps(kept, default=list).encode())


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth storing, as the sender spelled them."""
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(_KEPT_HEADER_PREFIXES) or lowered in _KEPT_HEADERS:
            kept[name] = value
    return kept


def _body_key(raw_body: bytes) -> str:
    """The dedupe key of a delivery that carries none: a hash of its body. Only
    computed when needed; hashlib releases the GIL for bodies over 2 kB, and in a
    threaded web process each release hands the GIL to a waiting thread and back."""
    return "sha256:" + hashlib.sha256(raw_body).hexdigest()


def _storable(text: str | None) -> str | None:
    """Payload-derived text as SQLite can store it: JSON may carry lone surrogates
    ("\\ud800"), which are not UTF-8 and would make the insert raise."""
    return None if text is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


# How valid UTF-8 JSON text can carry a UTF-16 surrogate: as a string escape.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def load_payload(raw: bytes | str) -> object:
    """A body's JSON, decoded as processing will decode it again, and storable.

    ``json.loads`` of bytes decodes them with ``surrogatepass``, so surrogates encoded
    in the bytes are taken; here they are not text, so a ValueError (400, rejected). A
    lone surrogate escape (``"\\ud800"``) is valid JSON but not text SQLite can store:
    in every string (and key) it is replaced by its escape written out (``\\ud800``),
    so the order is stored and applied, and shows what was sent (see README, webhooks).
    A valid pair (an emoji) is one character and stays as it is.
    """
    text = raw if isinstance(raw, str) else bytes(raw).decode(json.detect_encoding(raw))
    payload = json.loads(text)
    return _storable_strings(payload) if _SURROGATE_ESCAPE.search(text) else payload


def _storable_strings(value: object) -> object:
    if isinstance(value, str):
        return _storable(value)
    if isinstance(value, list):
        return [_storable_strings(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable_strings(item) for key, item in value.items()}
    return value


def _store_event(store: Store | CommitAlone | GroupCommit, event: StorefrontEvent, *, shop_id: str, platform: str,
                 topic: str, dedupe_key: str, webhook_id: str | None, event_id: str | None,
                 resource_id: str | None, headers: Mapping[str, str], body: bytes, now: datetime) -> IngestOutcome:
    """Store a parsed delivery: pending, or ignored with the reason; 200 either way."""
    status = "ignored" if isinstance(event, Ignored) else "pending"
    inbox_id, duplicate = store.insert_webhook(
        shop_id=shop_id, platform=platform, topic=topic, dedupe_key=dedupe_key, webhook_id=webhook_id,
        event_id=event_id, resource_id=resource_id, headers=headers, body=body, received_at=now, status=status,
        last_error=_storable(event.reason) if isinstance(event, Ignored) else None,
    )
    return IngestOutcome(200, {"ok": True, "id": inbox_id, "duplicate": duplicate, "status": status}, inbox_id)
