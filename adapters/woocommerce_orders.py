"""WooCommerce order refunds through the REST API v3: which lines a refund covers.

An ``order.updated`` webhook tells us a refund exists (the order's ``refunds`` list) but
not which lines it covers; ``GET /wp-json/wc/v3/orders/<id>/refunds`` does (REST API
docs, "Order refunds": ``page``, ``per_page`` default 10, and the ``X-WP-TotalPages``
header every WP REST collection sends). Reads only, so the shared client's retries on
429/5xx are safe. Authentication as in :mod:`adapters.woocommerce_stock`: the consumer
key and secret as HTTP Basic over HTTPS.
"""
from __future__ import annotations

import time
from typing import Callable

from adapters.http import HttpClient
from adapters.woocommerce import parse_refunds
from adapters.woocommerce_stock import collection_pages, rest_client
from connector.domain.model import PayloadError, ProviderResponseError, RefundCreated


class WooCommerceOrders:
    provider = "woocommerce"

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
