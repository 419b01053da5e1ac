"""ShipBob (Developer API 2026-01) as a ``Warehouse``.

Endpoints (all from ``shared/specs/shipbob.json``):

* inventory: ``GET /2026-01/inventory-level/locations`` (operation
  ``get-all-inventory-levels-grouped-by-fulfillment-center``), ``PageSize``,
  response ``Inventory.InventoryQuantityFcResponsePagedResponse`` =
  ``{items, first, prev, next, last}``; ``next`` is followed verbatim.
* find order: ``GET /2026-01/order?ReferenceIds=<ref>`` (``get-orders``),
  optional ``shipbob_channel_id`` header, response ``Orders.OrderViewModelArray``.
* create order: ``POST /2026-01/order`` (``create-order``), required
  ``shipbob_channel_id`` header, body ``Orders.CreateOrderModel``, 201
  ``Orders.OrderViewModel``. Never retried automatically.
* shipments: ``GET /2026-01/order?LastUpdateStartDate=…&Page=&Limit=``; each
  order's ``shipments[]`` (``Orders.ShipmentViewModel``).
* channel discovery / health: ``GET /2026-01/channel`` (``get-channels``).

Rate limit: 150 requests/minute per user and application, hence the default
pacing of 60/150 s between requests; 429s carry ``x-retry-after``.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Iterator, Mapping

from adapters.http import (
    expect_object,
    int_field,
    parse_time,
    utc_zulu,
    Auth,
    HttpClient,
    StaticToken,
    error_status,
    paginate_links,
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

log = logging.getLogger("connector.adapters.shipbob")

API = "/2026-01"
PRODUCTION_URL = "https://api.shipbob.com"
SANDBOX_URL = "https://sandbox-api.shipbob.com"
RATE_LIMIT_PER_MINUTE = 150

QUANTITY_FIELDS = (
    "on_hand_quantity",
    "committed_quantity",
    "fulfillable_quantity",
    "awaiting_quantity",
    "internal_transfer_quantity",
)
EXCEPTION_STATUSES = frozenset({"Exception", "OnHold"})
WRITE_SCOPE = "orders_write"


class ShipBobWarehouse:
    provider = "shipbob"

    def __init__(
        self,
        token: str | None = None,
        channel_id: str | None = None,
        *,
        base_url: str = PRODUCTION_URL,
        client: HttpClient | None = None,
        auth: Auth | None = None,
        order_type: str = "DTC",
        inventory_page_size: int = 250,
        order_page_size: int = 250,
        max_pages: int = 10_000,
    ):
        """``token`` is a Personal Access Token (sent as ``Authorization: Bearer``);
        pass ``auth`` instead for OAuth (e.g. a ``RefreshingToken``), or a ready
        ``client``. ``channel_id`` is the channel with ``orders_write`` scope; when
        omitted it is discovered from ``GET /2026-01/channel`` on first need.
        """
        if client is None:
            if auth is None:
                if not token:
                    raise ValueError("ShipBobWarehouse needs a token, an auth or a client")
                auth = StaticToken(token=token)
            client = HttpClient(
                base_url=base_url,
                auth=auth,
                provider=self.provider,
                min_interval=60.0 / RATE_LIMIT_PER_MINUTE,
            )
        self.client = client
        self._channel_id = str(channel_id) if channel_id not in (None, "") else None
        self.order_type = order_type
        self.inventory_page_size = inventory_page_size
        self.order_page_size = order_page_size
        self.max_pages = max_pages

    # ------------------------------------------------------------ channel

    @property
    def channel_id(self) -> str:
        """The channel orders are created in (discovered once when not configured)."""
        if self._channel_id is None:
            self._channel_id = self._discover_channel()
        return self._channel_id

    def _discover_channel(self) -> str:
        def extract(body: object) -> tuple[list, str | None]:
            body = expect_object(body, "shipbob", "GET /2026-01/channel")
            return list(body.get("items") or []), body.get("next")

        candidates = []
        for channel in paginate_links(self.client, f"{API}/channel", extract=extract, max_pages=self.max_pages):
            if isinstance(channel, dict) and WRITE_SCOPE in (channel.get("scopes") or []):
                candidates.append(channel)
        if not candidates:
            raise ProviderRejected(f"shipbob: no channel with the {WRITE_SCOPE} scope is visible to this token")
        if len(candidates) > 1:
            log.warning(
                "shipbob: %d channels have %s; using %s (configure channel_id to choose)",
                len(candidates), WRITE_SCOPE, candidates[0].get("id"),
            )
        return str(candidates[0]["id"])

    # ------------------------------------------------------------ inventory

    def list_inventory(self) -> Iterator[InventoryRecord]:
        def extract(body: object) -> tuple[list, str | None]:
            body = expect_object(body, "shipbob", "GET /2026-01/inventory-level/locations")
            items = body.get("items")
            if items is None:
                items = []
            if not isinstance(items, list):
                raise ProviderResponseError("shipbob: inventory-level/locations 'items' is not a list")
            nxt = body.get("next")
            if nxt is not None and not isinstance(nxt, str):
                raise ProviderResponseError("shipbob: inventory-level/locations 'next' is not a URL")
            return items, nxt

        pages = paginate_links(
            self.client,
            f"{API}/inventory-level/locations",
            params={"PageSize": str(self.inventory_page_size)},
            extract=extract,
            max_pages=self.max_pages,
        )
        for item in pages:
            yield from self._records(item)

    def _records(self, item: object) -> Iterator[InventoryRecord]:
        if not isinstance(item, dict):
            raise ProviderResponseError("shipbob: inventory item is not an object")
        # A gap fails the whole snapshot: skipped, the item's stock would vanish from its
        # node while the sync said OK (and without a SKU its old row cannot be found).
        sku = item.get("sku")
        if not isinstance(sku, str) or not sku:
            raise ProviderResponseError(f"shipbob: inventory item {item.get('inventory_id')!r} has no sku")
        locations = item.get("locations")
        if not isinstance(locations, list):  # [] is fine: no stock at any fulfillment center
            raise ProviderResponseError(f"shipbob: inventory item {sku!r} has no locations list")
        for loc in locations:
            if not isinstance(loc, dict) or loc.get("location_id") is None:
                raise ProviderResponseError(f"shipbob: a location of sku {sku!r} has no location_id")
            raw: dict[str, object] = {"inventory_id": item.get("inventory_id")}
            for name in QUANTITY_FIELDS:
                if name in loc:
                    raw[name] = loc[name]
            yield InventoryRecord(
                location_id=str(loc["location_id"]),
                sku=str(sku),
                on_hand=int_field(loc, "on_hand_quantity", "shipbob", sku),
                committed=int_field(loc, "committed_quantity", "shipbob", sku),
                available=int_field(loc, "fulfillable_quantity", "shipbob", sku),
                raw=raw,
            )

    # ------------------------------------------------------------ orders

    def find_order(self, reference: str) -> ProviderOrderRef | None:
        if not reference or "," in reference:
            # ReferenceIds is a comma-separated list: a comma would search for two orders
            raise ValueError(f"shipbob: unusable order reference {reference!r}")
        body = self.client.get_json(
            f"{API}/order",
            {"ReferenceIds": reference, "Page": 1, "Limit": 50},
            headers={"shipbob_channel_id": self.channel_id},
        )
        if not isinstance(body, list):
            raise ProviderResponseError("shipbob: GET /2026-01/order did not return a list")
        matches = [o for o in body if isinstance(o, dict) and o.get("reference_id") == reference]
        if not matches:
            return None
        if len(matches) > 1:
            log.warning("shipbob: %d orders carry reference %s; using the oldest", len(matches), reference)
        order = min(matches, key=lambda o: o.get("id") if isinstance(o.get("id"), int) else 0)
        return ProviderOrderRef(provider_order_id=_order_id(order), reference=reference, created=False)

    def create_order(self, order: OutboundOrder) -> ProviderOrderRef:
        existing = self.find_order(order.reference)
        if existing is not None:
            return existing
        body = self.order_body(order)
        try:
            created = self.client.post_json(
                f"{API}/order",
                body,
                headers={"shipbob_channel_id": self.channel_id},
                retry=False,  # creates an order: the caller retries later, after a lookup
            )
        except ProviderRejected as exc:
            # 422 is what ShipBob answers for a duplicate reference_id: a
            # concurrent or earlier attempt won. Anything else is a real refusal.
            if error_status(exc) == 422:
                again = self.find_order(order.reference)
                if again is not None:
                    return again
            raise
        created = expect_object(created, "shipbob", "POST /2026-01/order")
        return ProviderOrderRef(provider_order_id=_order_id(created), reference=order.reference, created=True)

    def order_body(self, order: OutboundOrder) -> dict[str, object]:
        """``Orders.CreateOrderModel`` for ``order`` (public for tests and dry runs)."""
        problems = []
        if not order.address_lines or not order.address_lines[0].strip():
            problems.append("no street address")
        if not order.city:
            problems.append("no city")
        if not order.ship_to.country:
            problems.append("no country")
        if not order.lines:
            problems.append("no lines")
        if any(line.quantity <= 0 or not line.sku for line in order.lines):
            problems.append("a line without sku or positive quantity")
        if problems:
            raise ProviderRejected(f"shipbob: order {order.reference} cannot be submitted: {', '.join(problems)}")

        address: dict[str, object] = {
            "address1": order.address_lines[0],
            "city": order.city,
            "country": order.ship_to.country,
        }
        if len(order.address_lines) > 1:
            address["address2"] = ", ".join(a for a in order.address_lines[1:] if a)
        if order.ship_to.province:
            address["state"] = order.ship_to.province
        if order.ship_to.postcode:
            address["zip_code"] = order.ship_to.postcode
        recipient: dict[str, object] = {"name": order.ship_to_name, "address": address}
        if order.email:
            recipient["email"] = order.email
        if order.phone:
            recipient["phone_number"] = order.phone

        body: dict[str, object] = {
            "reference_id": order.reference,
            "order_number": order.order_number,
            "type": self.order_type,
            "shipping_method": _shipping_method(order),
            "recipient": recipient,
            # by reference_id (= seller SKU); "name" is required by the schema and
            # only used when ShipBob has no product with that reference_id
            "products": [
                {"reference_id": line.sku, "name": line.sku, "quantity": line.quantity} for line in order.lines
            ],
        }
        if order.location_id:
            try:
                body["location_id"] = int(order.location_id)
            except ValueError:
                raise ProviderRejected(
                    f"shipbob: location_id {order.location_id!r} is not a ShipBob fulfillment center id"
                ) from None
        return body

    # ------------------------------------------------------------ shipments

    def list_shipments(self, since: datetime) -> Iterator[Shipment]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        since_utc = since.astimezone(timezone.utc)
        params_base = {"LastUpdateStartDate": utc_zulu(since_utc)}
        headers = {"shipbob_channel_id": self.channel_id}

        def fetch(page: int) -> list:
            body = self.client.get_json(
                f"{API}/order", {**params_base, "Page": page, "Limit": self.order_page_size}, headers=headers
            )
            if not isinstance(body, list):
                raise ProviderResponseError("shipbob: GET /2026-01/order did not return a list")
            return body

        orders = paginate_pages(fetch, page_size=self.order_page_size, max_pages=self.max_pages, provider=self.provider)
        for order in orders:
            if not isinstance(order, dict):
                raise ProviderResponseError("shipbob: order is not an object")
            for shipment in order.get("shipments") or []:
                mapped = self._shipment(order, shipment)
                if mapped is not None and _updated_since(shipment, since_utc):
                    yield mapped

    def _shipment(self, order: Mapping[str, object], shipment: object) -> Shipment | None:
        if not isinstance(shipment, dict):
            raise ProviderResponseError("shipbob: shipment is not an object")
        tracking = shipment.get("tracking") or {}
        if not isinstance(tracking, dict):
            tracking = {}
        status = str(shipment.get("status") or "None")
        details = [
            str(d.get("description") or d.get("name"))
            for d in (shipment.get("status_details") or [])
            if isinstance(d, dict) and (d.get("description") or d.get("name"))
        ]
        exception = status in EXCEPTION_STATUSES
        return Shipment(
            provider_order_id=_order_id(order),
            reference=(order.get("reference_id") or shipment.get("reference_id")),  # type: ignore[arg-type]
            status=status,
            tracking_number=tracking.get("tracking_number") or None,
            carrier=tracking.get("carrier") or None,
            shipped_at=(parse_time(shipment.get("actual_fulfillment_date"), "shipbob")
                        or parse_time(tracking.get("shipping_date"), "shipbob")),
            delivered_at=parse_time(shipment.get("delivery_date"), "shipbob"),
            exception=exception,
            exception_detail=("; ".join(details) or status) if exception else None,
        )

    # ------------------------------------------------------------ health

    def check(self) -> None:
        body = self.client.get_json(f"{API}/channel", {"RecordsPerPage": 1})
        expect_object(body, "shipbob", "GET /2026-01/channel")


# ---------------------------------------------------------------- helpers


def _shipping_method(order: OutboundOrder) -> str:
    # must match a Ship Option Mapping in the merchant portal (the node's shipping_method(s))
    if not order.shipping_method:
        raise ProviderRejected(f"shipbob: order {order.reference} has no shipping method")
    return order.shipping_method


def _order_id(order: Mapping[str, object]) -> str:
    oid = order.get("id")
    if oid is None or oid == "":
        raise ProviderResponseError("shipbob: order without id")
    return str(oid)






def _updated_since(shipment: Mapping[str, object], since: datetime) -> bool:
    stamps = [
        parse_time(shipment.get(k), "shipbob")
        for k in ("last_update_at", "last_tracking_update_at", "delivery_date", "actual_fulfillment_date", "created_date")
    ]
    known = [s for s in stamps if s is not None]
    return not known or max(known) >= since
