"""WooCommerce orders read back through the REST API v3.

- Refunds: an ``order.updated`` webhook tells us a refund exists (the order's
  ``refunds`` list) but not which lines it covers; ``GET /orders/<id>/refunds`` does
  (REST API docs, "Order refunds": ``page``, ``per_page`` default 10, and the
  ``X-WP-TotalPages`` header every WP REST collection sends).
- Reconciliation: WooCommerce sends a webhook once and never again (a failed delivery
  is not retried, and enough failures in a row disable the webhook: woocommerce.md
  §1.5, §7), so orders changed since a time are read back with ``GET /orders``
  (``modified_after`` with ``dates_are_gmt``, ``orderby=modified``, ``order=asc``: the
  CRUD controller's collection parameters). ``GET /webhooks`` ("List all webhooks")
  shows whether the store still delivers orders to us.

Reads only, so the shared client's retries on 429/5xx are safe. Authentication as in
:mod:`adapters.woocommerce_stock`: the consumer key and secret as HTTP Basic over HTTPS.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator, Mapping

from adapters.http import HttpClient
from adapters.webhook_payloads import positive_id
from adapters.woocommerce import gmt_timestamp, order_state_key, parse_refunds
from adapters.woocommerce_stock import MAX_PER_PAGE, collection_pages, int_header, rest_client
from connector.domain.model import PayloadError, PolledOrder, ProviderResponseError, RefundCreated, StoreWebhook

# The webhook a polled order stands for: its body is the order as the REST API shows it.
POLLED_TOPIC = "order.updated"
# WordPress keeps modification times to the second.
_SECOND = timedelta(seconds=1)


class WooCommerceOrders:
    provider = "woocommerce"
    page_size = MAX_PER_PAGE  # orders per answer of modified_orders

    def __init__(self, store_url: str | None = None, consumer_key: str | None = None,
                 consumer_secret: str | None = None, *, client: HttpClient | None = None, max_pages: int = 100,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic):
        """``client`` (based at ``.../wp-json/wc/v3``) replaces the HTTPS client in tests."""
        self.client = client or rest_client(store_url, consumer_key, consumer_secret, sleep=sleep, monotonic=monotonic)
        self.max_pages = max_pages

    def order_refunds(self, order_id: str) -> tuple[RefundCreated, ...]:
        """Every refund of the order, with the order lines and units each one covers.
        Raises ``ProviderRejected`` (404: the order is gone) and the client's other
        ``ProviderError``s; ``ProviderResponseError`` when the answer is not the
        documented list."""
        path = f"/orders/{order_id}/refunds"
        raw = [refund for page in collection_pages(self.client, path, {}, max_pages=self.max_pages,
                                                     total_pages_required=False) for refund in page]
        try:
            return parse_refunds(order_id, raw)
        except PayloadError as exc:
            raise ProviderResponseError(f"woocommerce: GET {path}: {exc}") from exc

    def webhooks(self) -> tuple[StoreWebhook, ...]:
        """Every webhook the store has (``status=all``: active, paused and disabled)."""
        raw = [hook for page in collection_pages(self.client, "/webhooks", {"status": "all"},
                                                 max_pages=self.max_pages, total_pages_required=False)
               for hook in page]
        try:
            return tuple(store_webhook(item, index) for index, item in enumerate(raw))
        except PayloadError as exc:
            raise ProviderResponseError(f"woocommerce: GET /webhooks: {exc}") from exc

    def modified_orders(self, after: datetime, *, status: str = "any",
                        max_requests: int = 50) -> Iterator[list[PolledOrder]]:
        """Orders of ``status`` (``any``: every status but trash; ``trash``) modified
        after ``after``, oldest change first, one answer at a time.

        Pages by keyset, not by page number: an order modified while we read moves to
        the end of a page-numbered listing and shifts the rest up, so one could be
        skipped. Each request asks for what changed after the last time read, less a
        second (times have one-second resolution, so more orders may share the last
        one; a re-read order is a duplicate in the inbox, not a second order). When a
        full page sits inside one second (a bulk edit), that second is read by page
        number. Stops after ``max_requests`` requests (the caller sees where it got to
        from the orders' times and resumes from there). Raises the client's
        ``ProviderError``s, and ``ProviderResponseError`` when an order lacks its id or
        modification time.
        """
        cursor = after.astimezone(timezone.utc).replace(microsecond=0)
        requests = 0
        while requests < max_requests:
            page, _ = self._orders_page(status, cursor, None, 1)
            requests += 1
            if page:
                yield page
            if len(page) < MAX_PER_PAGE:
                return
            last = page[-1].modified_at
            if page[0].modified_at < last:
                cursor = last - _SECOND
                continue
            # A full page within one second: it is page 1 of that second's orders (none
            # changed between the cursor and it), so read the rest by page number.
            number, pages = 2, None
            while (pages is None or number <= pages) and requests < max_requests:
                crowded, pages = self._orders_page(status, last - _SECOND, last + _SECOND, number)
                requests += 1
                if not crowded:
                    break
                yield crowded
                number += 1
            cursor = last

    def _orders_page(self, status: str, after: datetime, before: datetime | None,
                     page: int) -> tuple[list[PolledOrder], int | None]:
        params: dict[str, object] = {
            "status": status, "modified_after": _wp_time(after), "dates_are_gmt": "true",
            "orderby": "modified", "order": "asc", "per_page": MAX_PER_PAGE, "page": page,
        }
        if before is not None:
            params["modified_before"] = _wp_time(before)
        resp = self.client.request("GET", "/orders", params=params)
        body = self.client.decode_json(resp)
        if not isinstance(body, list):
            raise ProviderResponseError("woocommerce: GET /orders did not answer a list")
        try:
            orders = [_polled(item, index) for index, item in enumerate(body)]
        except PayloadError as exc:
            raise ProviderResponseError(f"woocommerce: GET /orders: {exc}") from exc
        return orders, int_header(resp.headers.get("X-WP-TotalPages"))


def _wp_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` in UTC, as ``dates_are_gmt=true`` compares it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _polled(item: object, index: int) -> PolledOrder:
    if not isinstance(item, Mapping):
        raise PayloadError(f"orders[{index}]: expected an order object")
    order_id = positive_id(item.get("id"), f"orders[{index}].id")
    modified = gmt_timestamp(item, "date_modified_gmt")
    key = order_state_key(order_id, item)
    if modified is None or key is None:
        raise PayloadError(f"orders[{index}].date_modified_gmt: missing")
    # A lone surrogate (JSON "\ud800") is not UTF-8: written back as that same escape.
    body = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "backslashreplace")
    return PolledOrder(order_id, modified, POLLED_TOPIC, key, body)


def store_webhook(item: object, index: int) -> StoreWebhook:
    if not isinstance(item, Mapping):
        raise PayloadError(f"webhooks[{index}]: expected a webhook object")
    texts = {}
    for field in ("status", "topic", "delivery_url"):
        value = item.get(field)
        if not isinstance(value, str):
            raise PayloadError(f"webhooks[{index}].{field}: expected text, got {str(value)[:40]!r}")
        texts[field] = value
    name = item.get("name")
    return StoreWebhook(positive_id(item.get("id"), f"webhooks[{index}].id"), name if isinstance(name, str) else "",
                        texts["status"], texts["topic"], texts["delivery_url"])
