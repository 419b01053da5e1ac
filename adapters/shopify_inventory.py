"""Shopify inventory through the GraphQL Admin API: find items, read and set ``available``.

Facts: /work/shared/reference/shopify.md §0, §4, §5, checked against the shopify.dev pages
named below.

* ``POST https://{shop}/admin/api/{version}/graphql.json`` with the header
  ``X-Shopify-Access-Token``; version 2026-04 unless configured.
* ``inventorySetQuantities(input:) @idempotent(key:)`` sets absolute quantities. From
  2026-04 every quantity must carry ``changeFromQuantity`` (compare-and-set: a mismatch
  answers ``CHANGE_FROM_QUANTITY_STALE``; ``null`` opts out) and the ``@idempotent`` key
  is mandatory; a retry with the same key and variables returns the first result
  (§4.2). Input arrays hold at most 250 items (shopify.dev/docs/api/usage/limits).
* ``inventoryActivate(inventoryItemId:, locationId:)`` stocks an item at a location. From
  2026-04 it too needs ``@idempotent``, and without ``available``/``onHand`` it keeps the
  quantities an earlier, deactivated level had instead of starting at zero
  (changelog "inventoryActivate now preserves available quantity"), so the quantity it
  answers with is the one to compare against afterwards.
* Reads: ``productVariants(query: "sku:...")`` -> ``inventoryItem.id``;
  ``InventoryItem.inventoryLevel(locationId:)`` is null where the item is not stocked.
* Cost (§5): every answer carries ``extensions.cost`` with ``requestedQueryCost`` and
  ``throttleStatus {maximumAvailable, currentlyAvailable, restoreRate}``; a request the
  bucket cannot pay for answers HTTP 200 with ``errors[].extensions.code == "THROTTLED"``.
  Requests are paced from the last status so a well-behaved run is never throttled; a
  THROTTLED answer waits ``(requestedQueryCost - currentlyAvailable) / restoreRate`` and
  sends the identical body again (same idempotency key). 429/5xx are retried by the
  shared client, also for mutations: the idempotency key makes a repeat safe.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from adapters.http import HttpClient, StaticToken, describe_graphql_errors, graphql_error_code, paginate_cursor
from connector.chunks import chunked
from connector.domain.model import (
    ProviderAuthError,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
)

log = logging.getLogger("connector.adapters.shopify_inventory")

DEFAULT_API_VERSION = "2026-04"
TOKEN_HEADER = "X-Shopify-Access-Token"
MAX_QUANTITIES_PER_CALL = 250  # "Input arguments that accept an array have a maximum size of 250"
MAX_PAGE_SIZE = 250
MAX_QUERY_COST = 1000  # a single query may not request more
QUANTITY_NAME = "available"

# InventorySetQuantitiesUserErrorCode values this client acts on (§4.2)
STALE = "CHANGE_FROM_QUANTITY_STALE"
NOT_STOCKED = "ITEM_NOT_STOCKED_AT_LOCATION"
CONCURRENT_REQUEST = "IDEMPOTENCY_CONCURRENT_REQUEST"
PREVIOUS_ATTEMPT_FAILED = "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED"

_SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")  # as connector.config checks it
_API_VERSION = re.compile(r"\d{4}-\d{2}|unstable")

# Shopify's cost rules (rate-limits page): an object costs 1, scalars 0, a connection
# 2 + first x (cost of one node); a mutation field costs 10.
_MUTATION_COST = 10

SET_QUANTITIES_MUTATION = """
mutation inventorySetQuantities($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id reason referenceDocumentUri }
    userErrors { code field message }
  }
}
"""

ACTIVATE_MUTATION = """
mutation inventoryActivate($inventoryItemId: ID!, $locationId: ID!, $idempotencyKey: String!) {
  inventoryActivate(inventoryItemId: $inventoryItemId, locationId: $locationId) @idempotent(key: $idempotencyKey) {
    inventoryLevel { id quantities(names: ["available"]) { name quantity } }
    userErrors { field message }
  }
}
"""

VARIANTS_BY_SKU_QUERY = """
query productVariantsBySku($first: Int!, $after: String, $query: String!) {
  productVariants(first: $first, after: $after, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes { sku inventoryItem { id } }
  }
}
"""


def levels_query(location_count: int) -> str:
    """``nodes(ids:)`` over InventoryItems with one aliased ``inventoryLevel`` per location
    (``l0``, ``l1``, ...; variables ``$l0``, ``$l1``, ...)."""
    params = "".join(f", $l{i}: ID!" for i in range(location_count))
    levels = " ".join(
        f'l{i}: inventoryLevel(locationId: $l{i}) {{ quantities(names: ["available"]) {{ name quantity }} }}'
        for i in range(location_count)
    )
    return f"query inventoryLevels($ids: [ID!]!{params}) {{ nodes(ids: $ids) {{ ... on InventoryItem {{ id {levels} }} }} }}"


def levels_query_cost(item_count: int, location_count: int) -> int:
    """Requested cost of :func:`levels_query`: per item the InventoryItem (1) and per
    location its InventoryLevel (1) and quantities list (counted as 1)."""
    return item_count * (1 + 2 * location_count)


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class QuantitySet:
    """One ``InventoryQuantityInput``. ``change_from`` is the quantity we believe the store
    holds now; ``None`` is sent as an explicit ``null``, which opts out of the check."""

    item_gid: str
    location_gid: str
    quantity: int
    change_from: int | None


@dataclass(frozen=True)
class QuantityError:
    code: str | None
    message: str
    field: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetResult:
    """What ``inventorySetQuantities`` answered.

    ``applied`` is true only for an answer without userErrors. Shopify's pages do not say
    whether the other quantities of a call with userErrors are applied (the community
    example of a failed call shows ``inventoryAdjustmentGroup: null``), so any userError
    means "nothing applied". That stays safe if Shopify did apply some: every quantity
    carries ``changeFromQuantity``, so sending an applied one again comes back stale
    instead of being applied twice (the caller then re-reads and decides again).
    """

    applied: bool
    item_errors: Mapping[int, tuple[QuantityError, ...]]  # index into the quantities sent
    call_errors: tuple[QuantityError, ...]  # userErrors not pointing at one quantity
    adjustment_group_id: str | None = None

    @property
    def needs_new_key(self) -> bool:
        """The key's earlier attempt failed: Shopify asks for a new key (§4.2)."""
        return any(e.code == PREVIOUS_ATTEMPT_FAILED for e in self.call_errors)


@dataclass
class ShopifyStats:
    """What this client has spent; callers diff two snapshots."""

    requests: Counter = field(default_factory=Counter)  # answered POSTs by operation, THROTTLED ones too
    throttled: int = 0
    paced_waits: int = 0
    paced_wait_s: float = 0.0

    def copy(self) -> "ShopifyStats":
        return ShopifyStats(Counter(self.requests), self.throttled, self.paced_waits, self.paced_wait_s)


@dataclass(frozen=True)
class _Bucket:
    maximum: float
    available: float
    restore_rate: float
    seen_at: float  # monotonic time of the answer that reported it


# ---------------------------------------------------------------- client


class ShopifyInventory:
    """Inventory reads and writes for one shop."""

    provider = "shopify"

    def __init__(
        self,
        shop_domain: str,
        access_token: str | None = None,
        *,
        api_version: str = DEFAULT_API_VERSION,
        client: HttpClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        max_throttle_retries: int = 5,
        default_throttle_wait: float = 1.0,
        concurrent_retry_wait: float = 1.0,
        max_concurrent_retries: int = 3,
        read_cost_budget: int = 500,
        skus_per_query: int = 50,
        max_pages: int = 1000,
        new_key: Callable[[], str] = lambda: str(uuid.uuid4()),
    ):
        """``client`` replaces the default HTTPS client (tests, the benchmark's local server);
        ``sleep``/``monotonic`` are injected so tests never sleep."""
        if not _SHOP_DOMAIN.fullmatch(shop_domain or ""):
            raise ValueError(f"shop_domain must look like name.myshopify.com, got {shop_domain!r}")
        if not _API_VERSION.fullmatch(api_version):
            raise ValueError(f"api_version must be YYYY-MM or 'unstable', got {api_version!r}")
        if not 0 < read_cost_budget <= MAX_QUERY_COST:
            raise ValueError(f"read_cost_budget must be 1..{MAX_QUERY_COST}")
        if not 0 < skus_per_query <= MAX_PAGE_SIZE:
            raise ValueError(f"skus_per_query must be 1..{MAX_PAGE_SIZE}")
        if client is None:
            if not access_token:
                raise ValueError("ShopifyInventory needs an access_token or a client")
            client = HttpClient(
                base_url=f"https://{shop_domain}",
                auth=StaticToken(header=TOKEN_HEADER, prefix="", token=access_token),
                provider=self.provider,
                sleep=sleep,
                monotonic=monotonic,
            )
        self.client = client
        self.shop_domain = shop_domain
        self.api_version = api_version
        self.path = f"/admin/api/{api_version}/graphql.json"
        self.max_throttle_retries = max_throttle_retries
        self.default_throttle_wait = default_throttle_wait
        self.concurrent_retry_wait = concurrent_retry_wait
        self.max_concurrent_retries = max_concurrent_retries
        self.read_cost_budget = read_cost_budget
        self.skus_per_query = skus_per_query
        self.max_pages = max_pages
        self.new_key = new_key
        self.stats = ShopifyStats()
        self._sleep = sleep
        self._monotonic = monotonic
        self._bucket: _Bucket | None = None
        # requestedQueryCost Shopify reported for (operation, our estimate): better than the formula
        self._seen_cost: dict[tuple[str, int], int] = {}

    # ------------------------------------------------------------ transport

    def graphql(self, query: str, variables: Mapping[str, Any], operation: str, *, cost: int,
                retry: bool = True) -> dict:
        """Send one document whose cost we estimate at ``cost``; returns ``data``. The shop's
        one paced GraphQL transport: other Shopify adapters (``adapters.shopify_install``,
        ``adapters.shopify_fulfillment``) use it too.

        THROTTLED answers wait and resend the identical body (a mutation's idempotency key
        included); other GraphQL errors raise. ``retry=False`` for a mutation without an
        idempotency key: a lost answer then raises ``ProviderOutcomeUnknown`` for the caller
        to look up instead of being sent again.
        """
        payload = {"query": query, "variables": dict(variables)}
        estimate = cost
        cost = self._seen_cost.get((operation, estimate), estimate)
        throttled = 0
        while True:
            self._pace(cost)
            try:
                # retry: queries are safe, and a mutation with an idempotency key returns the
                # first result when repeated after a 5xx or a timeout
                body = self.client.post_json(self.path, payload, retry=retry)
            except ProviderAuthError as exc:
                raise ProviderAuthError(
                    f"shopify: shop {self.shop_domain} refused the access token for {operation} ({exc})"
                ) from exc
            self.stats.requests[operation] += 1
            if not isinstance(body, dict):
                raise ProviderResponseError(f"shopify: {operation} answered with a non-object JSON body")
            requested = self._observe_cost(body)
            if requested is not None:
                self._seen_cost[(operation, estimate)] = requested
                cost = requested
            errors = body.get("errors")
            if errors:
                if not isinstance(errors, list):
                    raise ProviderResponseError(
                        f"shopify: {operation} 'errors' is not a list: {self.client.redact(str(errors))[:200]}"
                    )
                codes = {graphql_error_code(e) for e in errors}
                if "THROTTLED" in codes:
                    if throttled >= self.max_throttle_retries:
                        raise ProviderUnavailable(f"shopify: {operation} still THROTTLED after {throttled} waits")
                    throttled += 1
                    wait = self._throttle_wait(cost)
                    self.stats.throttled += 1
                    log.warning("shopify: %s THROTTLED (cost %s); waiting %.2fs (%d/%d)",
                                operation, cost, wait, throttled, self.max_throttle_retries)
                    self._sleep(wait)
                    continue
                described = self.client.redact(describe_graphql_errors(errors))  # a server may echo the request
                if "ACCESS_DENIED" in codes:
                    raise ProviderAuthError(f"shopify: shop {self.shop_domain} denied {operation}: {described}")
                raise ProviderRejected(f"shopify: {operation} failed: {described}")
            data = body.get("data")
            if not isinstance(data, dict):
                raise ProviderResponseError(f"shopify: {operation} answered without data")
            return data

    def _observe_cost(self, body: Mapping[str, Any]) -> int | None:
        """Remember the bucket the answer reports; returns its requestedQueryCost."""
        extensions = body.get("extensions")
        cost = extensions.get("cost") if isinstance(extensions, dict) else None
        if not isinstance(cost, dict):
            return None
        status = cost.get("throttleStatus")
        if isinstance(status, dict):
            numbers = [status.get(k) for k in ("maximumAvailable", "currentlyAvailable", "restoreRate")]
            if all(_is_number(n) for n in numbers) and numbers[2] > 0:
                self._bucket = _Bucket(float(numbers[0]), float(numbers[1]), float(numbers[2]), self._monotonic())
        requested = cost.get("requestedQueryCost")
        return int(requested) if _is_number(requested) else None

    def _pace(self, cost: int) -> None:
        """Wait until the leaky bucket, as last reported and refilled since, holds ``cost``."""
        bucket = self._bucket
        if bucket is None:
            return  # nothing known yet: the first answer tells us
        available = min(bucket.maximum, bucket.available + (self._monotonic() - bucket.seen_at) * bucket.restore_rate)
        needed = min(float(cost), bucket.maximum)
        if available >= needed - 1e-6:  # float noise after an exact wait is not worth a sleep
            return
        wait = (needed - available) / bucket.restore_rate
        self.stats.paced_waits += 1
        self.stats.paced_wait_s += wait
        log.info("shopify: pacing %.2fs for a request costing %s (bucket %.0f)", wait, cost, available)
        self._sleep(wait)

    def _throttle_wait(self, requested: int) -> float:
        """(requestedQueryCost - currentlyAvailable) / restoreRate from the THROTTLED answer."""
        bucket = self._bucket
        if bucket is None:
            return self.default_throttle_wait
        if requested > bucket.maximum:
            raise ProviderRejected(
                f"shopify: a request costing {requested} can never fit a bucket of {bucket.maximum:g}"
            )
        wait = (requested - bucket.available) / bucket.restore_rate
        # the answer said THROTTLED even though the figures say it fits (another app's
        # burst, a bucket Shopify lowered): wait a little instead of not at all
        return wait if wait > 0 else self.default_throttle_wait

    # ------------------------------------------------------------ lookups

    def inventory_items(self, skus: Iterable[str]) -> dict[str, str]:
        """SKU -> InventoryItem gid, for the SKUs that name exactly one variant.

        A SKU shared by variants with different inventory items is left out (and logged):
        pushing to either would be a guess. SKUs not found are simply absent.
        """
        wanted = list(dict.fromkeys(s for s in skus if s))
        found: dict[str, str] = {}
        ambiguous: set[str] = set()
        for chunk in chunked(wanted, self.skus_per_query):
            exact = set(chunk)
            search = " OR ".join(f"sku:{_search_value(sku)}" for sku in chunk)
            for node in self._variant_pages(search, min(MAX_PAGE_SIZE, len(chunk))):
                sku = node.get("sku")
                item = node.get("inventoryItem")
                if sku not in exact:
                    continue  # the search matched more than the exact SKU
                if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                    raise ProviderResponseError(f"shopify: variant with SKU {sku!r} without inventoryItem.id")
                if found.setdefault(sku, item["id"]) != item["id"]:
                    ambiguous.add(sku)
        for sku in sorted(ambiguous):
            log.warning("shopify: SKU %r belongs to several inventory items; not pushed", sku)
            del found[sku]
        return found

    def _variant_pages(self, search: str, first: int) -> Iterator[dict]:
        return self.connection_nodes(VARIANTS_BY_SKU_QUERY, {"query": search}, "productVariants", first=first,
                                     cost=2 + first * 2)  # connection + per variant: the variant and its inventoryItem

    def connection_nodes(self, query: str, variables: Mapping[str, Any], field: str, *, first: int,
                         cost: int) -> Iterator[dict]:
        """Every node of the connection ``field`` (``nodes`` + ``pageInfo``), a page of ``first``
        at a time; ``query`` takes ``$first`` and ``$after``."""
        def fetch(cursor: str | None) -> tuple[Sequence[dict], str | None]:
            data = self.graphql(query, {**variables, "first": first, "after": cursor}, field, cost=cost)
            connection = data.get(field)
            nodes = connection.get("nodes") if isinstance(connection, dict) else None
            info = connection.get("pageInfo") if isinstance(connection, dict) else None
            if not isinstance(nodes, list) or not isinstance(info, dict):
                raise ProviderResponseError(f"shopify: {field} lacks nodes/pageInfo")
            if info.get("hasNextPage") is True:
                end = info.get("endCursor")
                if not isinstance(end, str) or not end:
                    raise ProviderResponseError(f"shopify: {field} hasNextPage without an endCursor")
                return [n for n in nodes if isinstance(n, dict)], end
            return [n for n in nodes if isinstance(n, dict)], None

        return paginate_cursor(fetch, max_pages=self.max_pages, provider=self.provider)

    def read_available(
        self, item_ids: Iterable[str], location_ids: Iterable[str]
    ) -> dict[tuple[str, str], int | None]:
        """``available`` for every item x location; ``None`` where the item is not stocked.

        Items Shopify does not know (a deleted variant, a gid of another type) are left out.
        Each query stays within ``read_cost_budget`` (well under the 1,000 a single query
        may request) so the leaky bucket refills while the next one is paced.
        """
        items = list(dict.fromkeys(item_ids))
        locations = list(dict.fromkeys(location_ids))
        result: dict[tuple[str, str], int | None] = {}
        if not items or not locations:
            return result
        max_locations = max(1, (self.read_cost_budget - 1) // 2)  # at least one item must fit
        for loc_chunk in chunked(locations, max_locations):
            per_query = max(1, min(MAX_PAGE_SIZE, self.read_cost_budget // levels_query_cost(1, len(loc_chunk))))
            query = levels_query(len(loc_chunk))
            for id_chunk in chunked(items, per_query):
                variables: dict[str, Any] = {"ids": id_chunk}
                variables.update({f"l{i}": loc for i, loc in enumerate(loc_chunk)})
                data = self.graphql(query, variables, "inventoryLevels",
                                     cost=levels_query_cost(len(id_chunk), len(loc_chunk)))
                nodes = data.get("nodes")
                if not isinstance(nodes, list) or len(nodes) != len(id_chunk):
                    raise ProviderResponseError("shopify: nodes(ids:) did not answer one entry per id")
                for requested_id, node in zip(id_chunk, nodes):
                    if not isinstance(node, dict) or node.get("id") != requested_id:
                        continue  # unknown item, or not an InventoryItem
                    for i, loc in enumerate(loc_chunk):
                        result[(requested_id, loc)] = _available(node.get(f"l{i}"), requested_id, loc)
        return result

    # ------------------------------------------------------------ writes

    def set_available(
        self,
        quantities: Sequence[QuantitySet],
        *,
        reason: str,
        reference_uri: str,
        idempotency_key: str,
    ) -> SetResult:
        """One ``inventorySetQuantities`` call for at most 250 quantities.

        ``idempotency_key`` must be new for new variables and the same for a repeat of the
        same variables. IDEMPOTENCY_CONCURRENT_REQUEST ("in progress, please try again") is
        retried here with the same key after ``concurrent_retry_wait``; every other userError
        is returned for the caller to act on.
        """
        if not quantities:
            raise ValueError("set_available needs at least one quantity")
        if len(quantities) > MAX_QUANTITIES_PER_CALL:
            raise ValueError(f"at most {MAX_QUANTITIES_PER_CALL} quantities per call, got {len(quantities)}")
        if not idempotency_key:
            raise ValueError("an idempotency key is mandatory from API 2026-04")
        variables = {
            "input": {
                "name": QUANTITY_NAME,
                "reason": reason,
                "referenceDocumentUri": reference_uri,
                "quantities": [
                    {
                        "inventoryItemId": q.item_gid,
                        "locationId": q.location_gid,
                        "quantity": q.quantity,
                        "changeFromQuantity": q.change_from,
                    }
                    for q in quantities
                ],
            },
            "idempotencyKey": idempotency_key,
        }
        attempt = 0
        while True:
            data = self.graphql(SET_QUANTITIES_MUTATION, variables, "inventorySetQuantities",
                                 cost=_MUTATION_COST + 2)  # + inventoryAdjustmentGroup + userErrors
            result = _set_result(data.get("inventorySetQuantities"), len(quantities))
            if attempt < self.max_concurrent_retries and any(e.code == CONCURRENT_REQUEST for e in result.call_errors):
                attempt += 1
                log.info("shopify: idempotency key %s still in progress; retrying in %.1fs",
                         idempotency_key, self.concurrent_retry_wait)
                self._sleep(self.concurrent_retry_wait)
                continue
            return result

    def activate(self, item_gid: str, location_gid: str) -> int:
        """Stock ``item_gid`` at ``location_gid``; returns its ``available`` there afterwards
        (zero for a new level, the old figure for a re-activated one). userErrors raise
        ``ProviderRejected``."""
        variables = {"inventoryItemId": item_gid, "locationId": location_gid, "idempotencyKey": self.new_key()}
        data = self.graphql(ACTIVATE_MUTATION, variables, "inventoryActivate",
                             cost=_MUTATION_COST + 3)  # + inventoryLevel, quantities, userErrors
        payload = data.get("inventoryActivate")
        if not isinstance(payload, dict) or not isinstance(payload.get("userErrors"), list):
            raise ProviderResponseError("shopify: inventoryActivate answered without userErrors")
        if payload["userErrors"]:
            raise ProviderRejected(
                f"shopify: inventoryActivate {item_gid} at {location_gid}: {describe_graphql_errors(payload['userErrors'])}"
            )
        available = _available(payload.get("inventoryLevel"), item_gid, location_gid)
        if available is None:
            raise ProviderResponseError(f"shopify: inventoryActivate {item_gid} answered without an inventoryLevel")
        return available


# ---------------------------------------------------------------- helpers


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _search_value(sku: str) -> str:
    """A SKU as a double-quoted search value: quoting keeps spaces, ``:``, ``(`` and ``)``
    literal; backslash and double quote are escaped with a backslash (search-syntax page)."""
    return '"' + sku.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _available(level: object, item_gid: str, location_gid: str) -> int | None:
    """The ``available`` quantity of an InventoryLevel, None for a missing level."""
    if level is None:
        return None
    quantities = level.get("quantities") if isinstance(level, dict) else None
    if isinstance(quantities, list):
        for entry in quantities:
            if isinstance(entry, dict) and entry.get("name") == QUANTITY_NAME:
                value = entry.get("quantity")
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
    raise ProviderResponseError(f"shopify: inventory level of {item_gid} at {location_gid} without an available quantity")


def _quantity_index(path: object, count: int) -> int | None:
    """``["input", "quantities", "3", "changeFromQuantity"]`` -> 3 (within the call's size)."""
    if not isinstance(path, list):
        return None
    for position, part in enumerate(path[:-1]):
        if part == "quantities":
            raw = str(path[position + 1])
            if raw.isdigit() and int(raw) < count:
                return int(raw)
    return None


def _set_result(payload: object, count: int) -> SetResult:
    if not isinstance(payload, dict) or not isinstance(payload.get("userErrors"), list):
        raise ProviderResponseError("shopify: inventorySetQuantities answered without userErrors")
    by_index: dict[int, list[QuantityError]] = {}
    call_errors: list[QuantityError] = []
    for raw in payload["userErrors"]:
        if not isinstance(raw, dict):
            raise ProviderResponseError(f"shopify: inventorySetQuantities userError is not an object: {raw!r}")
        path = raw.get("field")
        error = QuantityError(
            code=raw.get("code") if isinstance(raw.get("code"), str) else None,
            message=str(raw.get("message") or ""),
            field=tuple(str(p) for p in path) if isinstance(path, list) else (),
        )
        index = _quantity_index(path, count)
        if index is None:
            call_errors.append(error)
        else:
            by_index.setdefault(index, []).append(error)
    group = payload.get("inventoryAdjustmentGroup")
    group_id = group.get("id") if isinstance(group, dict) and isinstance(group.get("id"), str) else None
    return SetResult(
        applied=not payload["userErrors"],
        item_errors={i: tuple(errors) for i, errors in by_index.items()},
        call_errors=tuple(call_errors),
        adjustment_group_id=group_id,
    )
