"""WooCommerce stock through the REST API v3: find products by SKU and batch-update stock.

Facts: /work/shared/reference/woocommerce.md §4 (sources: woocommerce/woocommerce
``class-wc-rest-controller.php`` ``batch_items``/``check_batch_limit``,
``class-wc-rest-crud-controller.php``, ``class-wc-rest-products-controller.php``).

* Base ``https://{store}/wp-json/wc/v3``; over HTTPS a consumer key and secret authenticate
  as HTTP Basic (username = key, password = secret). Over plain HTTP WooCommerce accepts
  only OAuth 1.0a, so this client refuses http:// stores instead of leaking the secret.
* ``GET /products?sku=A,B,C`` is an exact ``IN`` match over products *and* variations
  (variations carry ``parent_id``); ``per_page`` is at most 100; ``X-WP-TotalPages`` says
  how many pages there are.
* ``POST /products/batch`` and ``POST /products/{parent}/variations/batch`` take
  ``{"update": [...]}``, at most 100 objects per request (413
  ``woocommerce_rest_request_entity_too_large`` above that). Each item is saved on its
  own; a failed one comes back in place as ``{"id", "error": {"code", "message", "data"}}``
  inside an HTTP 200, so every item is checked.
* ``stock_quantity`` is applied only while the store option ``woocommerce_manage_stock``
  is on and the product manages stock, otherwise silently ignored (§4.2, §7.10); the
  update therefore sets ``manage_stock`` too and compares the quantity echoed back.
"""
from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from urllib.parse import urlsplit

from adapters.http import HttpClient, Redactor, basic_credentials
from connector.chunks import chunked
from connector.domain.model import (
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderResponseError,
)

log = logging.getLogger("connector.adapters.woocommerce_stock")

API_PREFIX = "/wp-json/wc/v3"
BATCH_LIMIT = 100  # "By default it's limited to up to 100 objects to be created, updated or deleted."
MAX_PER_PAGE = 100
# the product fields find_by_sku needs (``_fields`` trims the response, get_fields_for_response)
PRODUCT_FIELDS = "id,parent_id,sku,manage_stock,stock_quantity,meta_data"

# Per-region sellable figures live in product meta under one key per region.
REGION_META_PREFIX = "_mfc_available_"
_REGION_ID = re.compile(r"[A-Za-z0-9_-]+")


def region_meta_key(region_id: str) -> str:
    """``_mfc_available_<region>``: the product meta key holding one region's figure."""
    if not _REGION_ID.fullmatch(region_id or ""):
        raise ValueError(f"region id must be letters, digits, '-' or '_', got {region_id!r}")
    return REGION_META_PREFIX + region_id


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class WooItem:
    """A product or variation as ``GET /products?sku=`` shows it. ``manage_stock`` is true
    only when the item tracks its own stock (a variation answering ``"parent"`` does not).
    ``meta`` holds only our ``_mfc_available_*`` entries."""

    product_id: int
    parent_id: int | None
    stock_quantity: int | None
    manage_stock: bool
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WooStockUpdate:
    product_id: int
    parent_id: int | None  # set for a variation: it is updated through its parent's batch
    stock_quantity: int
    meta: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ItemResult:
    product_id: int
    parent_id: int | None
    ok: bool
    stock_quantity: int | None = None  # as the store echoed it back
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class WooStats:
    requests: Counter = field(default_factory=Counter)  # by "GET products", "POST products/batch", ...

    def copy(self) -> "WooStats":
        return WooStats(Counter(self.requests))


class ConsumerKeyAuth:
    """HTTP Basic with the REST API consumer key and secret (HTTPS only)."""

    def __init__(self, consumer_key: str, consumer_secret: str):
        if not consumer_key or not consumer_secret:
            raise ValueError("a consumer key and secret are required")
        credentials = basic_credentials(consumer_key, consumer_secret)
        self._header = "Basic " + credentials
        self._redactor = Redactor((consumer_key, consumer_secret, credentials))

    def apply(self, headers: MutableMapping[str, str]) -> None:
        headers["Authorization"] = self._header

    def invalidate(self) -> bool:
        return False  # API keys do not refresh: a 401 is final

    def redact(self, text: str) -> str:
        return self._redactor(text)

    def __repr__(self) -> str:
        return "ConsumerKeyAuth(key=***, secret=***)"


# ---------------------------------------------------------------- client


def rest_client(store_url: str | None, consumer_key: str | None, consumer_secret: str | None, *,
                sleep: Callable[[float], None] = time.sleep,
                monotonic: Callable[[], float] = time.monotonic) -> HttpClient:
    """The shared HTTP client at ``https://{store}/wp-json/wc/v3`` with the consumer key
    and secret as Basic auth; plain http:// is refused rather than leak the secret."""
    parts = urlsplit(store_url or "")
    if parts.scheme != "https" or not parts.netloc:
        raise ValueError(f"store_url must be an https:// URL (Basic auth over http is refused), got {store_url!r}")
    return HttpClient(base_url=store_url.rstrip("/") + API_PREFIX,
                      auth=ConsumerKeyAuth(consumer_key or "", consumer_secret or ""),
                      provider="woocommerce", sleep=sleep, monotonic=monotonic)


def collection_pages(client: HttpClient, path: str, params: Mapping[str, object], *, max_pages: int,
                     total_pages_required: bool) -> Iterator[list]:
    """GET a WP REST collection page by page (``per_page`` 100) and yield each page's
    list; ``X-WP-TotalPages`` says when to stop. Without that header: an error when
    ``total_pages_required``, else the page read is the last."""
    page = 1
    while True:
        resp = client.request("GET", path, params={**params, "per_page": MAX_PER_PAGE, "page": page})
        body = client.decode_json(resp)
        if not isinstance(body, list):
            raise ProviderResponseError(f"woocommerce: GET {path} did not answer a list")
        yield body
        total_pages = int_header(resp.headers.get("X-WP-TotalPages"))
        if total_pages is None and total_pages_required:
            raise ProviderResponseError(f"woocommerce: GET {path} answered without X-WP-TotalPages")
        if total_pages is None or page >= total_pages or not body:
            return
        if page >= max_pages:
            raise ProviderResponseError(f"woocommerce: more than {max_pages} pages of {path.rsplit('/', 1)[-1]}")
        page += 1


class WooCommerceStock:
    provider = "woocommerce"

    def __init__(
        self,
        store_url: str | None = None,
        consumer_key: str | None = None,
        consumer_secret: str | None = None,
        *,
        client: HttpClient | None = None,
        batch_size: int = BATCH_LIMIT,
        skus_per_request: int = MAX_PER_PAGE,
        max_pages: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        """``client`` (based at ``.../wp-json/wc/v3``) replaces the default HTTPS client in
        tests and the benchmark. ``batch_size`` may be lowered for a store that filters
        ``woocommerce_rest_batch_items_limit`` down; it can never exceed 100."""
        if not 1 <= batch_size <= BATCH_LIMIT:
            raise ValueError(f"batch_size must be 1..{BATCH_LIMIT}")
        if not 1 <= skus_per_request <= MAX_PER_PAGE:
            raise ValueError(f"skus_per_request must be 1..{MAX_PER_PAGE}")
        self.client = client or rest_client(store_url, consumer_key, consumer_secret, sleep=sleep, monotonic=monotonic)
        self.batch_size = batch_size
        self.skus_per_request = skus_per_request
        self.max_pages = max_pages
        self.stats = WooStats()

    # ------------------------------------------------------------ reads

    def find_by_sku(self, skus: Iterable[str]) -> dict[str, WooItem]:
        """SKU -> product or variation, for the SKUs the store has (exact match)."""
        wanted = []
        for sku in dict.fromkeys(s for s in skus if s):
            if "," in sku:
                # the sku parameter is split on commas, so this SKU cannot be asked for exactly
                log.warning("woocommerce: SKU %r contains a comma; cannot look it up", sku)
                continue
            wanted.append(sku)
        found: dict[str, WooItem] = {}
        for chunk in chunked(wanted, self.skus_per_request):
            exact = set(chunk)
            for product in self._product_pages(",".join(chunk)):
                sku = product.get("sku")
                if sku in exact:
                    found[sku] = _woo_item(product)
        return found

    def _product_pages(self, sku_param: str) -> Iterator[dict]:
        params = {"sku": sku_param, "_fields": PRODUCT_FIELDS}
        for page in collection_pages(self.client, "/products", params, max_pages=self.max_pages,
                                     total_pages_required=True):
            self.stats.requests["GET products"] += 1
            yield from (p for p in page if isinstance(p, dict))

    # ------------------------------------------------------------ writes

    def update_stock(self, items: Sequence[WooStockUpdate]) -> list[ItemResult]:
        """Set ``stock_quantity`` (and ``manage_stock: true``, and the given meta) for each item.

        Simple products go through ``/products/batch``, variations through their parent's
        ``/variations/batch``, ``batch_size`` per request. Results come back in the order of
        ``items``. A request that fails as a whole (5xx, timeout, rejected) marks its items
        failed and the others continue; a credential problem raises. Batch POSTs are not
        retried after an ambiguous failure: an absolute stock figure sent again later could
        overwrite an order the store took in between, so the caller reads fresh stock and
        decides again.
        """
        groups: dict[int | None, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(item.parent_id, []).append(index)
        results: list[ItemResult | None] = [None] * len(items)
        for parent_id, indexes in groups.items():
            path = "/products/batch" if parent_id is None else f"/products/{int(parent_id)}/variations/batch"
            for chunk in chunked(indexes, self.batch_size):
                batch = [items[i] for i in chunk]
                for i, result in zip(chunk, self._send_batch(path, batch)):
                    results[i] = result
        return [r for r in results if r is not None]

    def _send_batch(self, path: str, batch: Sequence[WooStockUpdate]) -> list[ItemResult]:
        assert len(batch) <= BATCH_LIMIT, "a larger batch is answered 413 woocommerce_rest_request_entity_too_large"
        body = {"update": [_update_body(item) for item in batch]}
        label = "POST products/batch" if path == "/products/batch" else "POST variations/batch"
        try:
            answer = self.client.post_json(path, body)
        except ProviderAuthError:
            raise
        except ProviderRejected as exc:
            if getattr(exc, "status", None) == 413:
                raise  # our batch limit is above the store's: a configuration bug, not an item failure
            return [_failed(item, "rejected", str(exc)) for item in batch]
        except ProviderError as exc:  # unavailable, or an answer we cannot read: outcome unknown
            return [_failed(item, type(exc).__name__, str(exc)) for item in batch]
        finally:
            self.stats.requests[label] += 1
        updated = answer.get("update") if isinstance(answer, dict) else None
        if not isinstance(updated, list) or len(updated) != len(batch):
            return [_failed(item, "unreadable_answer", f"{path} did not answer one update per item") for item in batch]
        return [_item_result(item, entry) for item, entry in zip(batch, updated)]


# ---------------------------------------------------------------- helpers


def int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _woo_item(product: Mapping[str, object]) -> WooItem:
    product_id = _optional_int(product.get("id"))
    if not product_id:
        raise ProviderResponseError(f"woocommerce: product {product.get('sku')!r} without an id")
    meta = {}
    for entry in product.get("meta_data") or []:
        if isinstance(entry, dict) and str(entry.get("key", "")).startswith(REGION_META_PREFIX):
            meta[str(entry["key"])] = str(entry.get("value"))
    return WooItem(
        product_id=product_id,
        parent_id=_optional_int(product.get("parent_id")) or None,  # 0 = not a variation
        stock_quantity=_optional_int(product.get("stock_quantity")),
        manage_stock=product.get("manage_stock") is True,
        meta=meta,
    )


def _update_body(item: WooStockUpdate) -> dict:
    body: dict = {"id": item.product_id, "manage_stock": True, "stock_quantity": item.stock_quantity}
    if item.meta:
        body["meta_data"] = [{"key": key, "value": value} for key, value in sorted(item.meta.items())]
    return body


def _failed(item: WooStockUpdate, code: str, message: str) -> ItemResult:
    return ItemResult(item.product_id, item.parent_id, ok=False, error_code=code, error_message=message[:300])


def _item_result(item: WooStockUpdate, entry: object) -> ItemResult:
    if not isinstance(entry, dict):
        return _failed(item, "unreadable_answer", "batch entry is not an object")
    if _optional_int(entry.get("id")) != item.product_id:
        return _failed(item, "unreadable_answer", f"batch entry is for id {entry.get('id')!r}")
    error = entry.get("error")
    if isinstance(error, dict):
        return _failed(item, str(error.get("code") or "error"), str(error.get("message") or ""))
    echoed = _optional_int(entry.get("stock_quantity"))
    if echoed != item.stock_quantity or entry.get("manage_stock") is not True:
        return ItemResult(item.product_id, item.parent_id, ok=False, stock_quantity=echoed,
                          error_code="stock_not_applied",
                          error_message=f"store kept stock_quantity {echoed!r} (is woocommerce_manage_stock on?)")
    return ItemResult(item.product_id, item.parent_id, ok=True, stock_quantity=echoed)
