"""ShipHero (public GraphQL API) as a ``Warehouse``. Facts: shared/reference/3pl.md §2.

* Endpoint ``POST https://public-api.shiphero.com/graphql``; token from
  ``POST /auth/refresh`` with ``{"refresh_token": ...}`` (the "Third-Party
  Developer" user's static refresh token; access tokens last 28 days).
* Inventory: ``warehouse_products`` -> ``WarehouseProductsQueryResult {request_id,
  complexity, data: WarehouseProductConnection}``, Relay pagination
  ``data(first:, after:) { pageInfo { hasNextPage endCursor } edges { node } }``;
  one row per SKU x warehouse.
* Orders: ``orders(partner_order_id:)`` lookup, then ``order_create(data:
  CreateOrderInput)``; our reference travels as ``partner_order_id``.
* Shipments: ``shipments(date_from:)`` with ``shipping_labels``.
* Errors: GraphQL answers HTTP 200 with ``errors[]`` (``message``, ``operation``,
  ``field``, ``request_id``, numeric ``code``) and the affected field ``null``.
  Credit throttling arrives that way too and is retried here for queries only.
"""
from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from typing import Any, Callable, Iterator, Mapping, Sequence

from adapters.http import HttpClient, RefreshingToken, describe_graphql_errors, paginate_cursor, parse_time, utc_naive
from connector.domain.model import (
    InventoryRecord,
    OutboundOrder,
    ProviderAuthError,
    ProviderOrderRef,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    Shipment,
)

log = logging.getLogger("connector.adapters.shiphero")

PRODUCTION_URL = "https://public-api.shiphero.com"
GRAPHQL_PATH = "/graphql"
REFRESH_PATH = "/auth/refresh"

# Credit throttling (§2 "Rate limits"): the not-enough-credits error. ShipHero reports
# it in errors[] with code 30 and a wait such as time_remaining "6 seconds"; the text
# also says "... wait N seconds ...". Either marker is accepted.
THROTTLE_CODES = frozenset({30})
_THROTTLE_TEXT = re.compile(r"not enough credits", re.IGNORECASE)
_SECONDS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)", re.IGNORECASE)

WAREHOUSE_PRODUCT_FIELDS = (
    "id",
    "legacy_id",
    "sku",
    "warehouse_id",
    "warehouse_identifier",
    "on_hand",
    "allocated",
    "available",
    "backorder",
    "reserve_inventory",
    "non_sellable_quantity",
    "sell_ahead",
    "updated_at",
)

INVENTORY_QUERY = """
query WarehouseProducts($customer_account_id: String, $warehouse_id: String, $first: Int, $after: String) {
  warehouse_products(customer_account_id: $customer_account_id, warehouse_id: $warehouse_id) {
    request_id
    complexity
    data(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { node { %s } }
    }
  }
}
""" % " ".join(WAREHOUSE_PRODUCT_FIELDS)

FIND_ORDER_QUERY = """
query OrderByPartnerId($partner_order_id: String, $customer_account_id: String) {
  orders(partner_order_id: $partner_order_id, customer_account_id: $customer_account_id) {
    request_id
    complexity
    data(first: 5) {
      edges { node { id legacy_id order_number partner_order_id shop_name fulfillment_status } }
    }
  }
}
"""

CREATE_ORDER_MUTATION = """
mutation OrderCreate($data: CreateOrderInput!) {
  order_create(data: $data) {
    request_id
    complexity
    order { id legacy_id order_number partner_order_id }
  }
}
"""

SHIPMENTS_QUERY = """
query Shipments($date_from: ISODateTime, $first: Int, $after: String) {
  shipments(date_from: $date_from) {
    request_id
    complexity
    data(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges {
        node {
          id
          order_id
          warehouse_id
          created_date
          delivered
          picked_up
          refunded
          needs_refund
          completed
          order { id order_number partner_order_id }
          shipping_labels { id status tracking_number carrier shipping_method created_date delivered refunded }
        }
      }
    }
  }
}
"""

CHECK_QUERY = """
query Check($customer_account_id: String) {
  warehouse_products(customer_account_id: $customer_account_id) {
    request_id
    complexity
    data(first: 1) { edges { node { id } } }
  }
}
"""


class ShipHeroWarehouse:
    """ShipHero through its GraphQL API.

    ``refresh_token`` is the developer user's refresh token (§2 Authentication).
    ``customer_account_id`` scopes every call to one brand of a 3PL account.
    ``warehouse_id`` restricts inventory to one warehouse (default: all).
    """

    provider = "shiphero"

    def __init__(
        self,
        refresh_token: str | None = None,
        *,
        customer_account_id: str | None = None,
        warehouse_id: str | None = None,
        shop_name: str = "micro-fulfillment-connector",
        base_url: str = PRODUCTION_URL,
        client: HttpClient | None = None,
        auth_client: HttpClient | None = None,
        page_size: int = 100,
        max_pages: int = 10_000,
        max_throttle_retries: int = 5,
        max_throttle_wait: float = 60.0,
        default_throttle_wait: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        """``client``/``auth_client`` are for tests or sharing; otherwise both are built
        with ``sleep``/``monotonic`` injected."""
        if client is None:
            if not refresh_token:
                raise ValueError("ShipHeroWarehouse needs a refresh_token or a client")
            token_client = auth_client or HttpClient(
                base_url=base_url, provider=self.provider, sleep=sleep, monotonic=monotonic
            )
            token_client.redactor.add(refresh_token)  # it travels in the /auth/refresh body
            auth = RefreshingToken(self._token_fetcher(token_client, refresh_token), monotonic=monotonic)
            client = HttpClient(
                base_url=base_url, auth=auth, provider=self.provider, sleep=sleep, monotonic=monotonic,
                secrets=(refresh_token,),
            )
        self.client = client
        self.customer_account_id = customer_account_id
        self.warehouse_id = warehouse_id
        self.shop_name = shop_name
        self.page_size = page_size
        self.max_pages = max_pages
        self.max_throttle_retries = max_throttle_retries
        self.max_throttle_wait = max_throttle_wait
        self.default_throttle_wait = default_throttle_wait
        self._sleep = sleep

    # ------------------------------------------------------------ auth

    def _token_fetcher(self, token_client: HttpClient, refresh_token: str) -> Callable[[], tuple[str, float | None]]:
        def fetch() -> tuple[str, float | None]:
            # §2 Authentication: POST /auth/refresh {"refresh_token": ...} -> access_token
            # (+ expires_in seconds). Issuing a token has no side effect: retry is safe.
            try:
                body = token_client.post_json(REFRESH_PATH, {"refresh_token": refresh_token}, retry=True)
            except ProviderRejected as exc:
                if isinstance(exc, ProviderAuthError):
                    raise
                raise ProviderAuthError(f"shiphero: refresh token refused: {exc}") from None
            if not isinstance(body, dict) or not isinstance(body.get("access_token"), str) or not body["access_token"]:
                raise ProviderResponseError("shiphero: /auth/refresh answered without an access_token")
            expires_in = body.get("expires_in")
            if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
                expires_in = None
            return body["access_token"], expires_in

        return fetch

    # ------------------------------------------------------------ graphql

    def _graphql(self, query: str, variables: Mapping[str, Any], operation: str, *, mutation: bool = False) -> dict:
        """Run one operation; returns ``data[operation]``.

        Queries are retried by the shared client on 429/5xx/network errors and here on
        credit throttling (HTTP 200 + errors[]), waiting the indicated time, at most
        ``max_throttle_retries`` times. A mutation is sent once: the client does not
        repeat a POST after an ambiguous failure, and throttling raises
        ``ProviderUnavailable`` so the caller's lookup-before-create decides later.
        """
        payload = {"query": query, "variables": {k: v for k, v in variables.items() if v is not None}}
        throttled = 0
        while True:
            body = self.client.post_json(GRAPHQL_PATH, payload, retry=not mutation)
            if not isinstance(body, dict):
                raise ProviderResponseError(f"shiphero: {operation} answered with a non-object JSON body")
            errors = body.get("errors")
            if errors:
                if not isinstance(errors, list):
                    raise ProviderResponseError(f"shiphero: {operation} 'errors' is not a list")
                wait = _throttle_wait(errors, self.default_throttle_wait)
                if wait is not None:
                    if mutation:
                        raise ProviderUnavailable(
                            f"shiphero: {operation} throttled (not enough credits; wait {wait:g}s); "
                            "mutation not repeated automatically"
                        )
                    if throttled >= self.max_throttle_retries:
                        raise ProviderUnavailable(
                            f"shiphero: {operation} still throttled after {throttled} waits"
                        )
                    throttled += 1
                    wait = min(wait, self.max_throttle_wait)
                    log.warning("shiphero: %s throttled; waiting %.1fs (%d/%d)",
                                operation, wait, throttled, self.max_throttle_retries)
                    self._sleep(wait)
                    continue
                raise ProviderRejected(
                    self.client.redact(f"shiphero: {operation} failed: {describe_graphql_errors(errors)}")
                )
            data = body.get("data")
            if not isinstance(data, dict) or not isinstance(data.get(operation), dict):
                raise ProviderResponseError(f"shiphero: {operation} answered without data.{operation}")
            return data[operation]

    def _connection_pages(
        self, query: str, variables: Mapping[str, Any], operation: str
    ) -> Iterator[dict]:
        """Every node of ``operation { data(first:, after:) }`` (§2 Pagination)."""

        def fetch(cursor: str | None) -> tuple[Sequence[dict], str | None]:
            result = self._graphql(query, {**variables, "first": self.page_size, "after": cursor}, operation)
            connection = result.get("data")
            if not isinstance(connection, dict):
                raise ProviderResponseError(f"shiphero: {operation}.data is not a connection")
            edges = connection.get("edges")
            info = connection.get("pageInfo")
            if not isinstance(edges, list) or not isinstance(info, dict):
                raise ProviderResponseError(f"shiphero: {operation}.data lacks edges/pageInfo")
            nodes = []
            for edge in edges:
                node = edge.get("node") if isinstance(edge, dict) else None
                if not isinstance(node, dict):
                    raise ProviderResponseError(f"shiphero: {operation} edge without a node")
                nodes.append(node)
            if info.get("hasNextPage") is True:
                end = info.get("endCursor")
                if not isinstance(end, str) or not end:
                    raise ProviderResponseError(f"shiphero: {operation} hasNextPage without an endCursor")
                return nodes, end
            return nodes, None

        return paginate_cursor(fetch, max_pages=self.max_pages, provider=self.provider)

    # ------------------------------------------------------------ Warehouse protocol

    def list_inventory(self) -> list[InventoryRecord]:
        """Every SKU x warehouse row; fetched completely before returning."""
        variables = {"customer_account_id": self.customer_account_id, "warehouse_id": self.warehouse_id}
        return [
            _inventory_record(node)
            for node in self._connection_pages(INVENTORY_QUERY, variables, "warehouse_products")
        ]

    def find_order(self, reference: str) -> ProviderOrderRef | None:
        result = self._graphql(
            FIND_ORDER_QUERY,
            {"partner_order_id": reference, "customer_account_id": self.customer_account_id},
            "orders",
        )
        connection = result.get("data")
        edges = connection.get("edges") if isinstance(connection, dict) else None
        if not isinstance(edges, list):
            raise ProviderResponseError("shiphero: orders.data lacks edges")
        for edge in edges:
            node = edge.get("node") if isinstance(edge, dict) else None
            # the filter should be exact; check anyway so a fuzzy match never counts
            if isinstance(node, dict) and node.get("partner_order_id") == reference and node.get("id"):
                return ProviderOrderRef(provider_order_id=str(node["id"]), reference=reference, created=False)
        return None

    def create_order(self, order: OutboundOrder) -> ProviderOrderRef:
        existing = self.find_order(order.reference)
        if existing is not None:
            return existing
        result = self._graphql(
            CREATE_ORDER_MUTATION, {"data": self._order_input(order)}, "order_create", mutation=True
        )
        created = result.get("order")
        if not isinstance(created, dict) or not created.get("id"):
            raise ProviderResponseError("shiphero: order_create answered without order.id")
        return ProviderOrderRef(provider_order_id=str(created["id"]), reference=order.reference, created=True)

    def list_shipments(self, since: datetime) -> list[Shipment]:
        """Shipments created at or after ``since`` (``shipments(date_from:)``)."""
        variables = {"date_from": utc_naive(since)}
        shipments: list[Shipment] = []
        for node in self._connection_pages(SHIPMENTS_QUERY, variables, "shipments"):
            shipments.append(_shipment(node))
        return shipments

    def check(self) -> None:
        self._graphql(CHECK_QUERY, {"customer_account_id": self.customer_account_id}, "warehouse_products")

    # ------------------------------------------------------------ mapping out

    def _order_input(self, order: OutboundOrder) -> dict:
        """``CreateOrderInput`` (§2 Orders; line items need sku, partner_line_item_id,
        quantity and a non-null price, which we do not know: "0.00")."""
        first_name, _, last_name = order.ship_to_name.strip().partition(" ")
        lines = list(order.address_lines)
        address = {
            "first_name": first_name,
            "last_name": last_name,
            "address1": lines[0] if lines else "",
            "address2": ", ".join(lines[1:]),
            "city": order.city,
            "state": order.ship_to.province or "",
            "state_code": order.ship_to.province or "",
            "zip": order.ship_to.postcode or "",
            "country": order.ship_to.country or "",
            "country_code": order.ship_to.country or "",
            "email": order.email or "",
            "phone": order.phone or "",
        }
        line_items = []
        for index, line in enumerate(order.lines, start=1):
            item = {
                "sku": line.sku,
                "partner_line_item_id": f"{order.reference}-{index}",
                "quantity": line.quantity,
                "price": "0.00",
            }
            if order.location_id:
                item["warehouse_id"] = order.location_id
            line_items.append(item)
        data: dict[str, Any] = {
            "order_number": order.order_number,
            "partner_order_id": order.reference,
            "shop_name": self.shop_name,
            "fulfillment_status": "pending",
            "shipping_address": address,
            "line_items": line_items,
        }
        if order.email:
            data["email"] = order.email
        if order.shipping_method:
            # CreateShippingLinesInput needs title and price; ShipHero's shipping rules
            # match the method (what the node's shipping_method(s) configure).
            data["shipping_lines"] = {"title": order.shipping_method, "method": order.shipping_method,
                                      "price": "0.00"}
        if self.customer_account_id:
            data["customer_account_id"] = self.customer_account_id
        return data


# ---------------------------------------------------------------- helpers


def _throttle_wait(errors: list, default: float) -> float | None:
    """Seconds to wait when ``errors`` contains a credit-throttling error, else None."""
    for error in errors:
        if not isinstance(error, dict):
            continue
        code = error.get("code")
        message = str(error.get("message") or "")
        if code not in THROTTLE_CODES and not _THROTTLE_TEXT.search(message):
            continue
        for hint in (error.get("time_remaining"), message):
            if isinstance(hint, (int, float)) and not isinstance(hint, bool):
                return max(float(hint), 0.0)
            if isinstance(hint, str):
                found = _SECONDS.search(hint)
                if found:
                    return float(found.group(1))
        return default
    return None


def _int_field(node: Mapping[str, Any], name: str, *, required: bool = True) -> int:
    value = node.get(name)
    if value is None and not required:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProviderResponseError(
            f"shiphero: warehouse product {node.get('sku')!r} has a non-integer {name}: {value!r}"
        )
    return value


def _inventory_record(node: Mapping[str, Any]) -> InventoryRecord:
    sku = node.get("sku")
    warehouse_id = node.get("warehouse_id")
    if not isinstance(sku, str) or not sku:
        raise ProviderResponseError(f"shiphero: warehouse product {node.get('id')!r} without a sku")
    if not isinstance(warehouse_id, str) or not warehouse_id:
        raise ProviderResponseError(f"shiphero: warehouse product {sku!r} without a warehouse_id")
    # §2 semantics: on_hand = physically there; allocated = owed to open orders and in
    # stock; available = on_hand + sell_ahead - allocated (may be negative).
    return InventoryRecord(
        location_id=warehouse_id,
        sku=sku,
        on_hand=_int_field(node, "on_hand"),
        committed=_int_field(node, "allocated"),
        available=_int_field(node, "available"),
        raw=dict(node),
    )




def _shipment(node: Mapping[str, Any]) -> Shipment:
    order = node.get("order") if isinstance(node.get("order"), dict) else {}
    order_id = node.get("order_id") or order.get("id")
    if not order_id:
        raise ProviderResponseError(f"shiphero: shipment {node.get('id')!r} without an order_id")
    labels = [label for label in (node.get("shipping_labels") or []) if isinstance(label, dict)]
    usable = [label for label in labels if not label.get("refunded") and str(label.get("status") or "").lower() != "voided"]
    label = usable[0] if usable else (labels[0] if labels else {})
    delivered = bool(node.get("delivered")) or any(bool(l.get("delivered")) for l in usable)
    if labels and not usable:
        status = "cancelled"  # every label voided/refunded
    elif delivered:
        status = "delivered"
    else:
        status = "shipped"
    return Shipment(
        provider_order_id=str(order_id),
        reference=order.get("partner_order_id") or None,
        status=status,
        tracking_number=label.get("tracking_number") or None,
        carrier=label.get("carrier") or None,
        shipped_at=parse_time(node.get("created_date")),
        delivered_at=None,  # ShipHero reports only a delivered flag, no time
    )
