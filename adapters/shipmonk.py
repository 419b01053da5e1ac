"""ShipMonk (API v1.024) as a ``Warehouse``.

Endpoints (all from ``shared/specs/shipmonk.json``; auth header ``Api-Key``):

* inventory: ``POST /v1/integrations/products/search`` ("Products for Inventory
  Sync", body ``SearchProductsInput``) returns ``{total, cursor}``; then
  ``GET /v1/integrations/products/search/paginate?cursor=&pageSize=`` returns
  ``{data, total, next_cursor}`` until ``next_cursor`` is null. The search
  creates nothing, so it is retried like a GET (``retry=True``).
* find order: ``GET /v1/integrations/orders?orderKey=<reference>&storeId=``
  (``{status, data: PublicApiOrderDetailOutput}``; 404 = not found).
* create order: ``POST /v1/integrations/order`` (``CreateOrUpdateOrderInput``;
  an upsert keyed on ``store_id`` + ``order_key``; our reference is the
  ``order_key``). Not retried automatically.
* shipments: ``GET /v1/integrations/orders-list?updatedAtStart=&page=&pageSize=&sortOrder=ASC``
  (``{status, data: {orders: [...]}}``; page-number pagination, no page count).
* health: ``GET /v1/integrations/warehouses?page=1&pageSize=1``.

Quantities per warehouse come from ``inventory.locations[]``. ShipMonk exposes
no "committed" field. The location's ``quantity_on_hand`` is documented as
"physically present (including allocated, quarantined and unavailable units)"
and ``quantity_available`` as "available to allocate to new orders", so::

    committed = max(quantity_on_hand - quantity_available
                    - quarantined_quantity - quantity_unavailable, 0)

i.e. the units on the shelf that are neither sellable nor blocked for another
reason, which is what is allocated to open orders. The raw fields are kept in
``InventoryRecord.raw`` so the rule can be revisited without a re-fetch.

The location id is the warehouse ``identifier`` (e.g. ``"KY1"``): that is the
code ``CreateOrUpdateOrderInput.warehouse`` takes, so an ``OutboundOrder``'s
``location_id`` round-trips. The numeric warehouse id is in ``raw``.

ShipMonk's order API exposes no numeric order id, so ``provider_order_id`` is
the ``order_key`` (our reference).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Callable, Iterator

from adapters.http import (
    expect_object,
    int_field,
    parse_time,
    utc_zulu,
    HttpClient,
    StaticToken,
    error_status,
    paginate_cursor,
    paginate_pages,
)
from connector.domain.model import (
    InventoryRecord,
    OutboundOrder,
    ProviderOrderRef,
    ProviderRejected,
    ProviderResponseError,
    Shipment,
)

log = logging.getLogger("connector.adapters.shipmonk")

PRODUCTION_URL = "https://api.shipmonk.com"
SANDBOX_URL = "https://sandbox.shipmonk.dev"

SEARCH_PATH = "/v1/integrations/products/search"
PAGINATE_PATH = "/v1/integrations/products/search/paginate"
ORDER_PATH = "/v1/integrations/order"
ORDERS_PATH = "/v1/integrations/orders"
ORDERS_LIST_PATH = "/v1/integrations/orders-list"
WAREHOUSES_PATH = "/v1/integrations/warehouses"

LOCATION_QUANTITY_FIELDS = (
    "quantity_on_hand",
    "quantity_available",
    "quantity_final",
    "quarantined_quantity",
    "quantity_unavailable",
)
# processing_status values that need a human
EXCEPTION_STATUSES = frozenset({"backorder", "unable_to_submit", "undeliverable"})
# actions_required flags that are deprecated and always false
_IGNORED_ACTIONS = frozenset({"ship_monk_hazmat_carrier_service_not_available"})
ORDERS_LIST_FILTERED_CAP = 10_000  # "If filters are used, this endpoint will return a maximum of 10,000 orders."


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ShipMonkWarehouse:
    provider = "shipmonk"

    def __init__(
        self,
        api_key: str | None = None,
        store_id: int | None = None,
        *,
        base_url: str = PRODUCTION_URL,
        client: HttpClient | None = None,
        inventory_page_size: int = 500,
        order_page_size: int = 100,
        max_pages: int = 10_000,
        now: Callable[[], datetime] = _utcnow,
    ):
        """``store_id`` is the numeric store the API key belongs to (required to
        create orders). ``now`` stamps ``ordered_at`` (OutboundOrder has no order date)."""
        if client is None:
            if not api_key:
                raise ValueError("ShipMonkWarehouse needs an api_key or a client")
            client = HttpClient(
                base_url=base_url,
                auth=StaticToken(header="Api-Key", prefix="", token=api_key),
                provider=self.provider,
            )
        if not 1 <= inventory_page_size <= 500:
            raise ValueError("inventory_page_size must be 1..500 (spec limit)")
        if not 1 <= order_page_size <= 100:
            raise ValueError("order_page_size must be 1..100 (spec limit)")
        self.client = client
        self.store_id = int(store_id) if store_id is not None else None
        self.inventory_page_size = inventory_page_size
        self.order_page_size = order_page_size
        self.max_pages = max_pages
        self._now = now

    # ------------------------------------------------------------ inventory

    def list_inventory(self) -> Iterator[InventoryRecord]:
        search = expect_object(
            self.client.post_json(
                SEARCH_PATH,
                {"sort": {"sort_by": "id", "sort_order": "ASC"}},
                retry=True,  # a search: creates nothing, safe to repeat
            ), "shipmonk",
            "POST products/search",
        )
        cursor = search.get("cursor")
        total = search.get("total")
        if cursor is None:
            if total not in (0, None):
                raise ProviderResponseError(f"shipmonk: search found {total} products but returned no cursor")
            return
        if not isinstance(cursor, str) or not cursor:
            raise ProviderResponseError("shipmonk: search cursor is not a string")

        def fetch(cur: str | None) -> tuple[list, str | None]:
            body = expect_object(
                self.client.get_json(PAGINATE_PATH, {"cursor": cur, "pageSize": self.inventory_page_size}), "shipmonk",
                "GET products/search/paginate",
            )
            data = body.get("data")
            if not isinstance(data, list):
                raise ProviderResponseError("shipmonk: paginate 'data' is not a list")
            nxt = body.get("next_cursor")
            if nxt is not None and not isinstance(nxt, str):
                raise ProviderResponseError("shipmonk: next_cursor is not a string")
            return data, nxt

        seen = 0
        for product in paginate_cursor(fetch, first_cursor=cursor, max_pages=self.max_pages, provider=self.provider):
            seen += 1
            yield from self._records(product)
        if isinstance(total, int) and seen < total:
            # the result set is frozen at search time, so a short count means lost pages
            raise ProviderResponseError(f"shipmonk: search promised {total} products, pagination returned {seen}")

    def _records(self, product: object) -> Iterator[InventoryRecord]:
        if not isinstance(product, dict):
            raise ProviderResponseError("shipmonk: product is not an object")
        # A gap fails the whole snapshot: skipped, the product's stock would vanish from
        # its node while the sync said OK (and without a SKU its old row cannot be found).
        sku = product.get("sku")
        if not isinstance(sku, str) or not sku:
            raise ProviderResponseError(f"shipmonk: product {product.get('id')!r} has no sku")
        inventory = product.get("inventory")
        if not isinstance(inventory, dict):
            raise ProviderResponseError(f"shipmonk: product {sku!r} has no inventory object")
        locations = inventory.get("locations")
        if not isinstance(locations, list):  # [] is fine: no stock in any warehouse
            raise ProviderResponseError(f"shipmonk: product {sku!r} has no inventory.locations list")
        for loc in locations:
            if not isinstance(loc, dict):
                raise ProviderResponseError(f"shipmonk: a location of {sku!r} is not an object")
            warehouse = loc.get("warehouse")
            if not isinstance(warehouse, dict) or not warehouse.get("identifier"):
                raise ProviderResponseError(f"shipmonk: a location of {sku!r} has no warehouse identifier")
            on_hand = int_field(loc, "quantity_on_hand", "shipmonk", sku)
            available = int_field(loc, "quantity_available", "shipmonk", sku)
            quarantined = int_field(loc, "quarantined_quantity", "shipmonk", sku)
            unavailable = int_field(loc, "quantity_unavailable", "shipmonk", sku)
            raw: dict[str, object] = {name: loc[name] for name in LOCATION_QUANTITY_FIELDS if name in loc}
            raw["warehouse_id"] = warehouse.get("id")
            raw["product_id"] = product.get("id")
            yield InventoryRecord(
                location_id=str(warehouse["identifier"]),
                sku=str(sku),
                on_hand=on_hand,
                committed=max(on_hand - available - quarantined - unavailable, 0),
                available=available,
                raw=raw,
            )

    # ------------------------------------------------------------ orders

    def find_order(self, reference: str) -> ProviderOrderRef | None:
        if not reference:
            raise ValueError("shipmonk: empty order reference")
        params: dict[str, object] = {"orderKey": reference}
        if self.store_id is not None:
            params["storeId"] = self.store_id
        try:
            body = self.client.get_json(ORDERS_PATH, params)
        except ProviderRejected as exc:
            if error_status(exc) == 404:  # the spec declares only 200; 404 = no such order
                return None
            raise
        body = expect_object(body, "shipmonk", "GET orders")
        order = body.get("data")
        if order is None:
            return None
        order = expect_object(order, "shipmonk", "GET orders data")
        key = order.get("order_key")
        if key != reference:
            raise ProviderResponseError(f"shipmonk: asked for order_key {reference!r}, got {key!r}")
        return ProviderOrderRef(provider_order_id=str(key), reference=reference, created=False)

    def create_order(self, order: OutboundOrder) -> ProviderOrderRef:
        existing = self.find_order(order.reference)
        if existing is not None:
            return existing
        body = self.order_body(order)
        # an upsert on (store_id, order_key), so a repeat would not duplicate;
        # still not retried here (brief: never auto-retry an order-creating POST)
        result = expect_object(self.client.post_json(ORDER_PATH, body, retry=False), "shipmonk", "POST order")
        if not isinstance(result.get("message"), str):
            raise ProviderResponseError("shipmonk: POST order answered without a message")
        return ProviderOrderRef(provider_order_id=order.reference, reference=order.reference, created=True)

    def order_body(self, order: OutboundOrder) -> dict[str, object]:
        """``CreateOrUpdateOrderInput`` for ``order`` (public for tests and dry runs)."""
        problems = []
        if self.store_id is None:
            problems.append("no store_id configured")
        if not order.lines:
            problems.append("no lines")
        if any(line.quantity <= 0 or not line.sku for line in order.lines):
            problems.append("a line without sku or positive quantity")
        if not order.address_lines or not order.ship_to.country:
            problems.append("incomplete address")
        if not order.shipping_method:
            problems.append("no shipping method")
        if problems:
            raise ProviderRejected(f"shipmonk: order {order.reference} cannot be submitted: {', '.join(problems)}")

        ship_to: dict[str, object] = {
            "name": order.ship_to_name,
            "street1": order.address_lines[0],
            "city": order.city,
            "country_code": order.ship_to.country,
        }
        if len(order.address_lines) > 1:
            ship_to["street2"] = ", ".join(a for a in order.address_lines[1:] if a)
        if order.ship_to.province:
            ship_to["state"] = order.ship_to.province
        if order.ship_to.postcode:
            ship_to["zip"] = order.ship_to.postcode
        if order.phone:
            ship_to["phone"] = order.phone

        body: dict[str, object] = {
            "store_id": self.store_id,
            "order_number": order.order_number,
            "order_key": order.reference,
            "items": [
                {"sku": line.sku, "quantity": line.quantity, "line_key": str(i)}
                for i, line in enumerate(order.lines, start=1)
            ],
            "ship_to": ship_to,
            # must match a Shipping Mapping; an unknown name waits in "Action Required"
            "requested_shipping_service": order.shipping_method,
            "ordered_at": utc_zulu(self._now()),
            "order_status": "unfulfilled",
        }
        if order.email:
            body["customer_email"] = order.email
        if order.location_id:
            body["warehouse"] = order.location_id  # identifier such as "KY1"
        return body

    # ------------------------------------------------------------ shipments

    def list_shipments(self, since: datetime) -> Iterator[Shipment]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        since_iso = utc_zulu(since)
        count = 0

        def fetch(page: int) -> list:
            body = expect_object(
                self.client.get_json(
                    ORDERS_LIST_PATH,
                    {
                        "updatedAtStart": since_iso,
                        "page": page,
                        "pageSize": self.order_page_size,
                        "sortOrder": "ASC",
                    },
                ), "shipmonk",
                "GET orders-list",
            )
            data = expect_object(body.get("data"), "shipmonk", "GET orders-list data")
            orders = data.get("orders")
            if not isinstance(orders, list):
                raise ProviderResponseError("shipmonk: orders-list 'orders' is not a list")
            return orders

        for order in paginate_pages(fetch, page_size=self.order_page_size, max_pages=self.max_pages, provider=self.provider):
            count += 1
            yield self._shipment(order)
        if count >= ORDERS_LIST_FILTERED_CAP:
            log.error(
                "shipmonk: orders-list returned %d orders since %s, its filtered maximum; "
                "later updates may be missing until the next window",
                count, since_iso,
            )

    def _shipment(self, order: object) -> Shipment:
        order = expect_object(order, "shipmonk", "order")
        key = order.get("order_key")
        if not key:
            raise ProviderResponseError("shipmonk: order without order_key")
        status = str(order.get("processing_status") or order.get("order_status") or "unknown")
        tracking = order.get("master_tracking_number") or None
        if tracking is None:
            for package in order.get("packages") or []:
                if isinstance(package, dict) and package.get("tracking_number"):
                    tracking = package["tracking_number"]
                    break
        shipment_data = order.get("shipment_data") if isinstance(order.get("shipment_data"), dict) else {}
        actions = order.get("actions_required") if isinstance(order.get("actions_required"), dict) else {}
        flagged = sorted(k for k, v in actions.items() if v is True and k not in _IGNORED_ACTIONS)
        exception = status in EXCEPTION_STATUSES or bool(flagged)
        detail = None
        if exception:
            detail = ", ".join(([status] if status in EXCEPTION_STATUSES else []) + [f"action_required:{f}" for f in flagged])
        return Shipment(
            provider_order_id=str(key),
            reference=str(key),
            status=status,
            tracking_number=tracking,
            carrier=(shipment_data.get("carrier") or None),
            shipped_at=parse_time(order.get("shipped_at"), "shipmonk"),
            delivered_at=None,  # ShipMonk reports delivery only as processing_status "delivered"
            exception=exception,
            exception_detail=detail,
        )

    # ------------------------------------------------------------ health

    def check(self) -> None:
        expect_object(self.client.get_json(WAREHOUSES_PATH, {"page": 1, "pageSize": 1}), "shipmonk", "GET warehouses")


# ---------------------------------------------------------------- helpers
