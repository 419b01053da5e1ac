"""Extensiv 3PL Warehouse Manager (formerly 3PL Central, "SecureWMS") as a ``Warehouse``.

Facts: shared/reference/3pl.md §4.

* Auth: OAuth2 client credentials, ``POST https://secure-wms.com/AuthServer/api/Token``
  with ``Authorization: Basic base64(clientId:clientSecret)`` and JSON body
  ``{"grant_type": "client_credentials", "tpl": "{<guid>}", "user_login_id": "<id>"}``;
  the bearer token lasts ~30-60 min and must be refreshed at least every 30 min.
* Inventory: ``GET /inventory?pgsiz=&pgnum=&rql=customerIdentifier.id==N[;facilityIdentifier.id==F]
  &sort=receivedDate`` -> ``{totalResults, _embedded: {item: [{receiveItemId, customerIdentifier
  {id}, facilityIdentifier {id}, itemIdentifier {sku, id}, qualifier, onHandQty, availableQty,
  onHoldQty, onHold, quarantined, ...}]}}``: one row per receive item (a receipt line at a
  location), each naming its customer and facility. Sources: Extensiv's REL pages
  rels/inventory/inventory and Rels/hal (bare ``item`` key, page size up to 1000) as quoted in
  ``Njdonatelli/Extensiv-MCP-Server`` docs/research/api_reference_notes.md §2/§4; sample rows
  in ``singer-io/tap-3plcentral`` tap_tplcentral/samples/inventory.json (the tap reads the list
  as ``ResourceList`` and sorts on ``receivedDate``); Stitch's schema
  ``stitchdata/docs`` _integration-schemas/3plcentral/inventory.md.
  Why not ``/inventory/stocksummaries``: its documented parameters are only pgsiz, pgnum, rql
  and orderednotallocated and its rows carry no customer (same notes, §4), so a warehouse-wide
  login cannot tell one customer's stock from another's there; ``/inventory/stockdetails``
  needs both customerid and facilityid (``Drewcrandall/ExtensivSharp``
  Endpoints/Inventory/GET_StockDetails.cs), i.e. one walk per facility.
  Keys are matched case-insensitively (``TotalResults``/``ResourceList`` also occur).
* Orders: ``GET /orders?rql=...`` to look our reference (``referenceNum``) up, then
  ``POST /orders`` (not idempotent, never repeated automatically). Shipments come
  from ``GET /orders`` filtered on ``readOnly.lastModifiedDate``.
"""
from __future__ import annotations

import logging
import math
import re
import time
from datetime import datetime
from typing import Any, Callable, Collection, Iterator, Mapping, Sequence

from adapters.http import parse_time, utc_naive, HttpClient, RefreshingToken, basic_credentials, paginate_cursor
from connector.domain.model import (
    InventoryRecord,
    OutboundOrder,
    ProviderAuthError,
    ProviderOrderRef,
    ProviderRejected,
    ProviderResponseError,
    Shipment,
)

log = logging.getLogger("connector.adapters.extensiv")

PRODUCTION_URL = "https://secure-wms.com"
TOKEN_PATH = "/AuthServer/api/Token"
INVENTORY_PATH = "/inventory"
ORDERS_PATH = "/orders"
HAL_JSON = "application/hal+json"
MAX_TOKEN_LIFETIME = 30 * 60.0  # §4: "refresh ... no less than every 30 minutes"
# 3PL WM order status (readOnly.status): 0 open, 1 closed (complete), 2 cancelled.
STATUS_CANCELLED = 2
# characters an RQL value may carry unquoted (our references are made of these)
_RQL_SAFE = re.compile(r"[A-Za-z0-9._:#/@+\-]+")


class ExtensivWarehouse:
    """One customer of one Extensiv 3PL Warehouse Manager account.

    ``client_id``/``client_secret``/``tpl``/``user_login_id`` are the REST API
    credentials (§4 Authentication). ``customer_id`` scopes every call (§4: "Every
    call must be scoped to the correct customer"); stock rows of any other customer are
    dropped even when the server ignores the filter. ``facility_id`` restricts inventory
    to one facility (the same way) and is the default facility for new orders.
    """

    provider = "extensiv"

    def __init__(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        tpl: str | None = None,
        user_login_id: str | None = None,
        customer_id: int | str,
        facility_id: int | str | None = None,
        carrier: str | None = None,
        billing_code: str = "Prepaid",
        account: str | None = None,
        qualifiers: Collection[str] | None = ("",),
        base_url: str = PRODUCTION_URL,
        client: HttpClient | None = None,
        auth_client: HttpClient | None = None,
        page_size: int = 500,
        max_pages: int = 10_000,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        """New orders carry ``billingCode`` (on the order) and ``routingInfo`` {``carrier``,
        ``mode`` = the order's shipping method, ``account``}; billing code, carrier and mode
        are required by the WMS. Order model as in public clients, e.g.
        ``Drewcrandall/ExtensivSharp`` Models/Orders/Order.cs (``billingCode`` top level) and
        RoutingInfo.cs (scacCode, carrier, mode, account; no billing code).
        ``qualifiers``: which inventory qualifiers count as sellable stock (default:
        only the blank qualifier, which is what orders we create without a qualifier
        can be allocated from); ``None`` sums every qualifier."""
        if client is None:
            if not (client_id and client_secret and tpl and user_login_id):
                raise ValueError(
                    "ExtensivWarehouse needs client_id, client_secret, tpl and user_login_id (or a client)"
                )
            token_client = auth_client or HttpClient(
                base_url=base_url, provider=self.provider, sleep=sleep, monotonic=monotonic
            )
            # the client credentials: Basic header and body of the token request
            credentials = (client_id, client_secret, tpl, basic_credentials(client_id, client_secret))
            token_client.redactor.add(*credentials)
            fetch = _token_fetcher(token_client, client_id, client_secret, tpl, user_login_id)
            client = HttpClient(
                base_url=base_url,
                auth=RefreshingToken(fetch, monotonic=monotonic),
                provider=self.provider,
                sleep=sleep,
                monotonic=monotonic,
                default_headers={"Accept": f"{HAL_JSON}, application/json"},
                secrets=credentials,
            )
        self.client = client
        self.customer_id = str(customer_id)
        self.facility_id = str(facility_id) if facility_id not in (None, "") else None
        self.carrier = carrier
        self.billing_code = billing_code
        self.account = account
        self.qualifiers = None if qualifiers is None else frozenset(q or "" for q in qualifiers)
        self.page_size = page_size
        self.max_pages = max_pages

    # ------------------------------------------------------------ paging

    def _pages(self, path: str, params: Mapping[str, object], list_key: str) -> Iterator[dict]:
        """Every row of a ``pgnum``/``pgsiz`` listing (§4 Pagination): ask for the next
        page while fewer rows than ``totalResults`` have arrived (or, without a total,
        while pages come back full). An empty page before the total is reached, a
        page identical to the previous one and ``max_pages`` are errors."""
        received = 0

        def fetch(cursor: str | None) -> tuple[Sequence[dict], str | None]:
            nonlocal received
            page = 1 if cursor is None else int(cursor)
            body = self.client.get_json(path, {**params, "pgsiz": self.page_size, "pgnum": page})
            rows = _rows(body, list_key, f"GET {path}")
            total = _total(body, f"GET {path}")
            received += len(rows)
            if total is None:
                more = len(rows) >= self.page_size
            else:
                if not rows and received < total:
                    raise ProviderResponseError(
                        f"extensiv: GET {path} page {page} is empty but totalResults={total} "
                        f"and only {received} rows arrived"
                    )
                more = received < total
            return rows, (str(page + 1) if more and rows else None)

        return paginate_cursor(fetch, max_pages=self.max_pages, provider=self.provider)

    # ------------------------------------------------------------ Warehouse protocol

    def list_inventory(self) -> list[InventoryRecord]:
        """Per-facility stock of our customer: location_id = facilityIdentifier.id, sku =
        itemIdentifier.sku, summed over the receive items (receipts, lots, locations):
        on_hand = onHandQty; committed = onHandQty - availableQty (``available`` is the
        unallocated quantity, ExtensivSharp Models/Inventory/StockDetail.cs); available =
        availableQty - onHoldQty (whether availableQty already excludes held units is not
        documented, so they are taken off: never oversell), and nothing from a receive item
        that is on hold or quarantined (ibid.: "isOnHold ... explicitly held", "quarantined
        ... implicitly held", so not allocatable). Rows of another customer, or of another
        facility when ``facility_id`` is set, are never counted: the RQL filter asks the
        server for our rows only and each row's own identifiers are checked again here."""
        rql = f"customerIdentifier.id=={self.customer_id}"
        if self.facility_id is not None:
            rql += f";facilityIdentifier.id=={self.facility_id}"
        params = {"rql": rql, "sort": "receivedDate"}
        grouped: dict[tuple[str, str], list[dict]] = {}
        seen_items: set[str] = set()
        foreign = 0
        for row in self._pages(INVENTORY_PATH, params, "resourceList"):
            if _identifier(row, "customerIdentifier") != self.customer_id:
                foreign += 1
                continue
            facility = _identifier(row, "facilityIdentifier")
            if self.facility_id is not None and facility != self.facility_id:
                foreign += 1
                continue
            sku, qualifier = _item_key(row)
            receive_item = _get(row, "receiveItemId")
            if receive_item is not None:
                # a row that moved across a page boundary between two requests comes twice
                if str(receive_item) in seen_items:
                    continue
                seen_items.add(str(receive_item))
            if self.qualifiers is not None and qualifier not in self.qualifiers:
                log.debug("extensiv: skipping %s at facility %s with qualifier %r", sku, facility, qualifier)
                continue
            grouped.setdefault((facility, sku), []).append(row)
        if foreign:
            log.warning("extensiv: ignored %d inventory rows of other customers or facilities "
                        "(the server did not apply the filter %s)", foreign, rql)
        records = []
        for (facility, sku), rows in grouped.items():
            on_hand = unallocated = committed = available = on_hold = held = 0.0
            for row in rows:
                row_on_hand = _quantity(row, "onHandQty", sku)
                row_available = _quantity(row, "availableQty", sku)
                row_on_hold = _quantity(row, "onHoldQty", sku, missing=0.0)
                on_hand += row_on_hand
                unallocated += row_available
                committed += max(0.0, row_on_hand - row_available)
                on_hold += row_on_hold
                if _get(row, "onHold") is True or _get(row, "quarantined") is True:
                    held += row_available
                else:
                    available += max(0.0, row_available - row_on_hold)
            # the provider's own fields, summed over the receive items (one row each could be thousands)
            raw = {
                "receiveItems": len(rows),
                "onHandQty": on_hand,
                "availableQty": unallocated,
                "onHoldQty": on_hold,
                "heldOrQuarantinedQty": held,
            }
            records.append(
                InventoryRecord(
                    location_id=facility,
                    sku=sku,
                    # whole units only: round stock down and commitments up, never overselling
                    on_hand=math.floor(on_hand),
                    committed=math.ceil(committed),
                    available=math.floor(available),
                    raw=raw,
                )
            )
        return records

    def find_order(self, reference: str) -> ProviderOrderRef | None:
        if not _RQL_SAFE.fullmatch(reference):
            raise ProviderRejected(
                f"extensiv: reference {reference!r} has characters an RQL filter cannot carry"
            )
        params = {
            "pgsiz": 10,
            "pgnum": 1,
            "rql": f"readOnly.customerIdentifier.id=={self.customer_id};referenceNum=={reference}",
        }
        body = self.client.get_json(ORDERS_PATH, params)
        matches = []
        for order in _rows(body, "resourceList", f"GET {ORDERS_PATH}"):
            # RQL may match loosely (case); only an exact referenceNum counts
            if _get(order, "referenceNum") == reference:
                matches.append(_order_id(order))
        if not matches:
            return None
        chosen = min(matches, key=_numeric_first)  # the oldest order wins
        if len(matches) > 1:
            log.warning("extensiv: %d orders carry reference %s; using %s", len(matches), reference, chosen)
        return ProviderOrderRef(provider_order_id=chosen, reference=reference, created=False)

    def create_order(self, order: OutboundOrder) -> ProviderOrderRef:
        existing = self.find_order(order.reference)
        if existing is not None:
            return existing
        body = self._order_body(order)
        # §4: order creation is not idempotent -> never repeated by the client (retry=False);
        # an ambiguous failure surfaces and the caller's next attempt looks up first.
        response = self.client.request(
            "POST",
            ORDERS_PATH,
            json=body,
            headers={"Content-Type": f"{HAL_JSON}; charset=utf-8"},
            retry=False,
        )
        created = self.client.decode_json(response)
        if not isinstance(created, dict):
            raise ProviderResponseError("extensiv: POST /orders answered with a non-object body")
        return ProviderOrderRef(provider_order_id=_order_id(created), reference=order.reference, created=True)

    def list_shipments(self, since: datetime) -> list[Shipment]:
        """Orders modified at or after ``since`` that were shipped (closed with a
        process date) or cancelled; open orders are not shipments yet."""
        params = {
            "detail": "All",
            "sort": "readOnly.lastModifiedDate",
            "rql": f"readOnly.customerIdentifier.id=={self.customer_id};"
            f"readOnly.lastModifiedDate=ge={utc_naive(since)}",
        }
        shipments = []
        for order in self._pages(ORDERS_PATH, params, "resourceList"):
            shipment = _shipment(order)
            if shipment is not None:
                shipments.append(shipment)
        return shipments

    def check(self) -> None:
        """Token works and the customer's inventory answers."""
        body = self.client.get_json(
            INVENTORY_PATH, {"rql": f"customerIdentifier.id=={self.customer_id}", "pgsiz": 1, "pgnum": 1}
        )
        _rows(body, "resourceList", f"GET {INVENTORY_PATH}")

    # ------------------------------------------------------------ mapping out

    def _order_body(self, order: OutboundOrder) -> dict:
        facility = order.location_id or self.facility_id
        if not facility:
            raise ProviderRejected("extensiv: no facility for the order (set location_id or facility_id)")
        if not (self.carrier and self.billing_code):
            raise ProviderRejected("extensiv: carrier and billing_code must be configured to create orders")
        if not order.shipping_method:
            raise ProviderRejected(f"extensiv: order {order.reference} has no shipping method (routingInfo.mode)")
        lines = list(order.address_lines)
        routing = {"carrier": self.carrier, "mode": order.shipping_method}
        if self.account:
            routing["account"] = self.account
        return {
            "customerIdentifier": {"id": _id_value(self.customer_id)},
            "facilityIdentifier": {"id": _id_value(facility)},
            "referenceNum": order.reference,
            "poNum": order.order_number,
            "billingCode": self.billing_code,
            "shipTo": {
                "name": order.ship_to_name,
                "address1": lines[0] if lines else "",
                "address2": ", ".join(lines[1:]),
                "city": order.city,
                "state": order.ship_to.province or "",
                "zip": order.ship_to.postcode or "",
                "country": order.ship_to.country or "",
                "phoneNumber": order.phone or "",
                "emailAddress": order.email or "",
            },
            "routingInfo": routing,
            "orderItems": [{"itemIdentifier": {"sku": line.sku}, "qty": line.quantity} for line in order.lines],
        }


# ---------------------------------------------------------------- auth


def _token_fetcher(
    token_client: HttpClient, client_id: str, client_secret: str, tpl: str, user_login_id: str
) -> Callable[[], tuple[str, float | None]]:
    basic = basic_credentials(client_id, client_secret)
    tpl_value = tpl if tpl.startswith("{") else "{" + tpl + "}"  # §4: "tpl": "{<guid>}"
    body = {"grant_type": "client_credentials", "tpl": tpl_value, "user_login_id": str(user_login_id)}

    def fetch() -> tuple[str, float | None]:
        try:
            # issuing a token has no side effect, so the client may retry it
            answer = token_client.post_json(TOKEN_PATH, body, headers={"Authorization": f"Basic {basic}"}, retry=True)
        except ProviderRejected as exc:
            if isinstance(exc, ProviderAuthError):
                raise
            raise ProviderAuthError(f"extensiv: client credentials refused: {exc}") from None
        if not isinstance(answer, dict):
            raise ProviderResponseError("extensiv: token endpoint answered with a non-object body")
        token = _get(answer, "access_token")
        if not isinstance(token, str) or not token:
            raise ProviderResponseError("extensiv: token endpoint answered without an access_token")
        expires_in = _get(answer, "expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
            expires_in = MAX_TOKEN_LIFETIME
        return token, min(float(expires_in), MAX_TOKEN_LIFETIME)

    return fetch


# ---------------------------------------------------------------- parsing helpers


def _get(obj: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """``obj[key]`` matched case-insensitively (§4: PascalCase and camelCase both occur)."""
    if key in obj:
        return obj[key]
    lowered = key.lower()
    for name, value in obj.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return default


def _rows(body: object, list_key: str, what: str) -> list[dict]:
    if not isinstance(body, dict):
        raise ProviderResponseError(f"extensiv: {what} answered with a non-object body")
    rows = _get(body, list_key)
    if rows is None:
        embedded = _get(body, "_embedded")  # HAL form: {"_embedded": {"<rel>": [...]}}
        if isinstance(embedded, dict):
            lists = [value for value in embedded.values() if isinstance(value, list)]
            if len(lists) == 1:
                rows = lists[0]
    if rows is None:
        total = _total(body, what)
        if total == 0:
            return []
        raise ProviderResponseError(f"extensiv: {what} answered without a '{list_key}' list")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ProviderResponseError(f"extensiv: {what} '{list_key}' is not a list of objects")
    return rows


def _total(body: Mapping[str, Any], what: str) -> int | None:
    total = _get(body, "totalResults")
    if total is None:
        return None
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise ProviderResponseError(f"extensiv: {what} totalResults is not a count: {total!r}")
    return total


def _identifier(row: Mapping[str, Any], name: str) -> str:
    """``row[name].id`` as text; a row without it cannot be attributed, so it fails the snapshot."""
    identifier = _get(row, name)
    value = _get(identifier, "id") if isinstance(identifier, dict) else None
    if value is None or isinstance(value, bool) or str(value) == "":
        raise ProviderResponseError(f"extensiv: inventory row without {name}.id: {row!r:.200}")
    return str(value)


def _item_key(row: Mapping[str, Any]) -> tuple[str, str]:
    item = _get(row, "itemIdentifier")
    sku = _get(item, "sku") if isinstance(item, dict) else None
    if not isinstance(sku, str) or not sku:
        raise ProviderResponseError(f"extensiv: inventory row without itemIdentifier.sku: {row!r:.200}")
    return sku, str(_get(row, "qualifier") or "")


_REQUIRED = object()


def _quantity(row: Mapping[str, Any], name: str, sku: str, missing: Any = _REQUIRED) -> float:
    value = _get(row, name)
    if value is None and missing is not _REQUIRED:
        return missing
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProviderResponseError(f"extensiv: inventory row for {sku!r} has a non-numeric {name}: {value!r}")
    return value


def _order_id(order: Mapping[str, Any]) -> str:
    read_only = _get(order, "readOnly")
    order_id = _get(read_only, "orderId") if isinstance(read_only, dict) else None
    if order_id is None:
        order_id = _get(order, "orderId")
    if order_id is None or isinstance(order_id, bool) or str(order_id) == "":
        raise ProviderResponseError("extensiv: order without readOnly.orderId")
    return str(order_id)


def _numeric_first(order_id: str) -> tuple[int, str]:
    return (int(order_id), "") if order_id.isdigit() else (2**63, order_id)


def _id_value(value: str) -> int | str:
    return int(value) if value.isdigit() else value




def _shipment(order: Mapping[str, Any]) -> Shipment | None:
    read_only = _get(order, "readOnly")
    read_only = read_only if isinstance(read_only, dict) else {}
    status = _get(read_only, "status")
    closed = _get(read_only, "isClosed") is True
    processed = parse_time(_get(read_only, "processDate"))
    routing = _get(order, "routingInfo")
    routing = routing if isinstance(routing, dict) else {}
    packages = _get(read_only, "packages") or _get(order, "packages") or []
    tracking = _get(routing, "trackingNumber") or next(
        (
            _get(p, "trackingNumber")
            for p in packages
            if isinstance(p, dict) and _get(p, "trackingNumber")
        ),
        None,
    )
    reference = _get(order, "referenceNum") or None
    if status == STATUS_CANCELLED:
        return Shipment(
            provider_order_id=_order_id(order),
            reference=reference,
            status="cancelled",
            exception=True,
            exception_detail="order cancelled in the warehouse",
        )
    if not (closed and processed is not None):
        return None  # still open: not shipped yet
    return Shipment(
        provider_order_id=_order_id(order),
        reference=reference,
        status="shipped",
        tracking_number=tracking or None,
        carrier=_get(routing, "carrier") or None,
        shipped_at=processed,
    )
