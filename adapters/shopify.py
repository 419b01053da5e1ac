"""Shopify's webhook dialect: signatures, headers and payloads -> domain events.

Pure functions plus one small stateless class. Nothing here does I/O, reads a clock
or knows about Flask or the store. Facts and sources: /work/shared/reference/shopify.md
(§2 webhooks, §3 order payloads, §6 test vectors).

* Webhook signature (§2.2): ``X-Shopify-Hmac-Sha256`` is the base64 of HMAC-SHA256 over
  the *raw* request body, keyed with the app's client secret. After a secret rotation
  Shopify may keep signing with the old secret for up to an hour, so several secrets
  can be tried.
* OAuth install request (§1.2, §6.1): hex HMAC-SHA256 of the sorted ``k=v`` pairs
  (without ``hmac``) joined by ``&``.
* Payloads (§3): the REST Order / Refund resources; ids are 64-bit integers and are
  kept as text.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping as _MappingABC
from datetime import datetime, timezone
from typing import Mapping, Sequence

from adapters.webhook_payloads import (
    line_objects,
    verify_b64_hmac,
    as_object,
    optional_object,
    positive_id,
    optional_text,
    show,
    header,
    header_text,
    MAX_ID,
)
from connector.domain.model import (
    ShippingContact,
    Address,
    AppUninstalled,
    CustomerDataRequest,
    CustomerRedact,
    FulfillmentReported,
    Ignored,
    Order,
    OrderLine,
    OrderUpsert,
    PayloadError,
    RefundCreated,
    RefundLine,
    ShopRedact,
    StorefrontEvent,
)

PLATFORM = "shopify"

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"
SHOP_DOMAIN_HEADER = "X-Shopify-Shop-Domain"
WEBHOOK_ID_HEADER = "X-Shopify-Webhook-Id"
EVENT_ID_HEADER = "X-Shopify-Event-Id"

MAX_QUANTITY = 2**31 - 1  # anything larger is not a real line quantity
# A line's ``fulfillment_service`` when the merchant ships it (§3.1); any other value is
# the handle of a fulfillment service app that ships the line itself (§4.4).
MERCHANT_FULFILLMENT = "manual"

ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/cancelled"})
# Shipments (the REST Fulfillment resource as the webhook body): ship times, tracking, delivery.
FULFILLMENT_TOPICS = frozenset({"fulfillments/create", "fulfillments/update"})
TOPICS = ORDER_TOPICS | FULFILLMENT_TOPICS | frozenset(
    {
        "refunds/create",
        "app/uninstalled",
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    }
)


# ---------------------------------------------------------------- signatures


def webhook_hmac(secret: str, raw_body: bytes) -> str:
    """Base64 of HMAC-SHA256(secret, raw_body): the ``X-Shopify-Hmac-Sha256`` value."""
    digest = hmac.new(secret.encode("utf-8"), bytes(raw_body), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_webhook(raw_body: bytes, signature: str | None, secrets: Sequence[str]) -> bool:
    """True when ``signature`` (the header value) is the HMAC of ``raw_body`` under any
    non-empty secret in ``secrets``.

    The header is base64-decoded before comparing, so surrounding whitespace (Ruby's
    ``Base64.encode64`` appends a newline) is tolerated. A missing, empty or undecodable
    header is simply not valid. Digests are compared with ``hmac.compare_digest``.
    """
    return verify_b64_hmac(raw_body, signature, secrets)


def query_hmac(secret: str, params: Mapping[str, str]) -> str:
    """Hex HMAC-SHA256 of the OAuth/install query: every parameter but ``hmac`` as
    ``k=v``, sorted, joined with ``&``.

    Delimiters inside keys and values are escaped the way Shopify's Python library does
    (``%``→``%25``, ``=`` in keys→``%3D``, ``&``→``%26``) so one query cannot be
    re-split into another; Shopify's real parameters (letters, digits, ``.`` and ``-``)
    are unaffected.
    """
    pairs = []
    for key, value in params.items():
        if key == "hmac":
            continue
        k = str(key).replace("%", "%25").replace("=", "%3D")
        v = str(value).replace("%", "%25")
        pairs.append(f"{k}={v}".replace("&", "%26"))
    message = "&".join(sorted(pairs))
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_query(params: Mapping[str, str], secret: str) -> bool:
    """True when ``params["hmac"]`` is the :func:`query_hmac` of the other parameters.

    Only the signature is checked here; the caller still checks ``shop``, ``state`` and
    the timestamp (shopify.md §1.2).
    """
    if not isinstance(secret, str) or not secret:
        return False
    provided = params.get("hmac")
    if not isinstance(provided, str) or not provided.strip():
        return False
    expected = query_hmac(secret, params)
    return hmac.compare_digest(expected.encode("ascii"), provided.strip().lower().encode("utf-8"))


# ---------------------------------------------------------------- payloads


def parse_webhook(shop_id: str, topic: str, payload: object) -> StorefrontEvent:
    """Turn a verified, JSON-decoded Shopify delivery into a domain event.

    Raises :class:`PayloadError` (naming the field) when the body does not have the
    shape its topic promises; never any other exception for JSON input.
    """
    if not isinstance(topic, str):
        return Ignored(f"unhandled topic {type(topic).__name__}")
    if topic not in TOPICS:
        return Ignored(f"unhandled topic {topic}")
    body = as_object(payload, "payload")
    if topic in ORDER_TOPICS:
        return OrderUpsert(_order(shop_id, topic, body))
    if topic == "refunds/create":
        return _refund(body)
    if topic in FULFILLMENT_TOPICS:
        return _fulfillment(body)
    if topic == "customers/data_request":
        request = optional_object(body, "data_request")
        return CustomerDataRequest(
            customer_id=_customer_id(body),
            order_ids=_id_list(body, "orders_requested"),
            request_id=None if request is None else _optional_id(request, "data_request.id", "id"),
        )
    if topic == "customers/redact":
        return CustomerRedact(
            customer_id=_customer_id(body),
            order_ids=_id_list(body, "orders_to_redact"),
        )
    if topic == "shop/redact":
        return ShopRedact()
    return AppUninstalled()  # app/uninstalled: the only topic left in TOPICS


def _order(shop_id: str, topic: str, body: Mapping[str, object]) -> Order:
    order_id = positive_id(body.get("id"), "id")
    created_at = _timestamp(body.get("created_at"), "created_at")
    updated_raw = body.get("updated_at")
    updated_at = created_at if updated_raw is None else _timestamp(updated_raw, "updated_at")
    cancelled_at = body.get("cancelled_at")
    if cancelled_at is not None and not isinstance(cancelled_at, str):
        raise PayloadError(f"cancelled_at: expected a timestamp or null, got {show(cancelled_at)}")
    fulfillment_status = body.get("fulfillment_status")
    if cancelled_at or topic == "orders/cancelled":
        state = "cancelled"
    elif fulfillment_status == "fulfilled":
        state = "fulfilled"
    else:
        state = "open"
    return Order(
        shop_id=shop_id,
        order_id=order_id,
        number=_order_number(body, order_id),
        platform=PLATFORM,
        created_at=created_at,
        updated_at=updated_at,
        ship_to=_ship_to(body.get("shipping_address")),
        lines=_lines(body.get("line_items")),
        state=state,
        customer_id=_customer_id(body),
    )


def _order_number(body: Mapping[str, object], order_id: str) -> str:
    name = body.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    number = body.get("order_number")
    if isinstance(number, int) and not isinstance(number, bool) and 0 < number < MAX_ID:
        return str(number)
    if isinstance(number, str) and number.strip():
        return number.strip()
    return order_id


def _ship_to(raw: object) -> Address | None:
    if raw is None:
        return None
    address = as_object(raw, "shipping_address")
    country = optional_text(address, "country_code", "shipping_address.country_code")
    return Address(
        country=None if country is None else country.upper(),
        province=optional_text(address, "province_code", "shipping_address.province_code"),
        postcode=optional_text(address, "zip", "shipping_address.zip"),
    )


def _lines(raw: object) -> tuple[OrderLine, ...]:
    lines = []
    for where, line, line_id in line_objects(raw):
        # current_quantity already nets out refunds and removals (shopify.md §3.1).
        if line.get("current_quantity") is not None:
            quantity = _quantity(line.get("current_quantity"), f"{where}.current_quantity")
        else:
            quantity = _quantity(line.get("quantity"), f"{where}.quantity")
        requires_shipping = line.get("requires_shipping")
        if requires_shipping is None:
            requires_shipping = True
        elif not isinstance(requires_shipping, bool):
            raise PayloadError(
                f"{where}.requires_shipping: expected true/false, got {show(requires_shipping)}"
            )
        title = line.get("title")
        if title is None:
            title = ""
        elif not isinstance(title, str):
            raise PayloadError(f"{where}.title: expected a string, got {show(title)}")
        service = optional_text(line, "fulfillment_service", f"{where}.fulfillment_service")
        lines.append(
            OrderLine(
                line_id=line_id,
                sku=optional_text(line, "sku", f"{where}.sku"),
                quantity=quantity,
                requires_shipping=requires_shipping,
                title=title,
                fulfilled_by=None if service is None or service.lower() == MERCHANT_FULFILLMENT else service,
            )
        )
    return tuple(lines)


def _refund(body: Mapping[str, object]) -> RefundCreated:
    raw_lines = body.get("refund_line_items")
    if raw_lines is None:
        raw_lines = []
    if not isinstance(raw_lines, (list, tuple)):
        raise PayloadError(f"refund_line_items: expected a list, got {show(raw_lines)}")
    lines = []
    for index, item in enumerate(raw_lines):
        where = f"refund_line_items[{index}]"
        line = as_object(item, where)
        lines.append(
            RefundLine(
                line_id=positive_id(line.get("line_item_id"), f"{where}.line_item_id"),
                quantity=_quantity(line.get("quantity"), f"{where}.quantity"),
            )
        )
    created = body.get("created_at")
    return RefundCreated(
        order_id=positive_id(body.get("order_id"), "order_id"),
        refund_id=positive_id(body.get("id"), "id"),
        lines=tuple(lines),
        created_at=None if created is None else _timestamp(created, "created_at"),
    )


def _fulfillment(body: Mapping[str, object]) -> FulfillmentReported:
    """The Fulfillment resource: ``status`` (pending, open, success, cancelled, error,
    failure), the carrier's ``shipment_status`` (null until it reports), tracking, the
    location it shipped from and the order lines it holds."""
    status = optional_text(body, "status", "status")
    if status is None:
        raise PayloadError("status: missing")
    created_at = _timestamp(body.get("created_at"), "created_at")
    updated_raw = body.get("updated_at")
    lines = []
    for where, line, line_id in line_objects(body.get("line_items") or []):
        lines.append((line_id, _quantity(line.get("quantity"), f"{where}.quantity")))
    return FulfillmentReported(
        fulfillment_id=positive_id(body.get("id"), "id"),
        order_id=positive_id(body.get("order_id"), "order_id"),
        location_id=_optional_id(body, "location_id", "location_id"),
        status=status.lower(),
        shipment_status=(optional_text(body, "shipment_status", "shipment_status") or "").lower() or None,
        created_at=created_at,
        updated_at=created_at if updated_raw is None else _timestamp(updated_raw, "updated_at"),
        tracking_company=optional_text(body, "tracking_company", "tracking_company"),
        tracking_numbers=_texts(body, "tracking_numbers", "tracking_number"),
        tracking_urls=_texts(body, "tracking_urls", "tracking_url"),
        lines=tuple(lines),
    )


def _texts(body: Mapping[str, object], plural: str, singular: str) -> tuple[str, ...]:
    """A list of strings (``tracking_numbers``), or the one ``singular`` field when the list is absent."""
    raw = body.get(plural)
    if raw is None:
        one = optional_text(body, singular, singular)
        return (one,) if one else ()
    if not isinstance(raw, (list, tuple)):
        raise PayloadError(f"{plural}: expected a list of strings, got {show(raw)}")
    values = []
    for index, value in enumerate(raw):
        if not isinstance(value, str):
            raise PayloadError(f"{plural}[{index}]: expected a string, got {show(value)}")
        if value.strip():
            values.append(value.strip())
    return tuple(values)


def _customer_id(body: Mapping[str, object]) -> str | None:
    customer = optional_object(body, "customer")
    if customer is None:
        return None
    return _optional_id(customer, "customer.id", "id")


def _id_list(body: Mapping[str, object], field: str) -> tuple[str, ...]:
    raw = body.get(field)
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise PayloadError(f"{field}: expected a list of ids, got {show(raw)}")
    return tuple(positive_id(value, f"{field}[{index}]") for index, value in enumerate(raw))


# ---------------------------------------------------------------- field helpers


def _optional_id(body: Mapping[str, object], where: str, field: str) -> str | None:
    value = body.get(field)
    return None if value is None else positive_id(value, where)


def _quantity(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_QUANTITY:
        raise PayloadError(
            f"{where}: expected a non-negative integer (at most {MAX_QUANTITY}), got {show(value)}"
        )
    return value


def _timestamp(value: object, where: str) -> datetime:
    """ISO-8601 with a UTC offset (Shopify always sends one) -> aware datetime in UTC."""
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected an ISO-8601 timestamp, got {show(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise PayloadError(f"{where}: not an ISO-8601 timestamp: {value[:40]!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PayloadError(f"{where}: timestamp has no UTC offset: {value[:40]!r}")
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError:
        raise PayloadError(f"{where}: timestamp out of range: {value[:40]!r}") from None


# ---------------------------------------------------------------- headers / class


class ShopifyStorefront:
    """The :class:`connector.ports.Storefront` for Shopify webhooks. Stateless."""

    platform = PLATFORM

    def verify(self, raw_body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> bool:
        return verify_webhook(raw_body, header(headers, HMAC_HEADER), secrets)

    def topic(self, headers: Mapping[str, str]) -> str | None:
        return header_text(headers, TOPIC_HEADER)

    def shop_domain(self, headers: Mapping[str, str]) -> str | None:
        domain = header_text(headers, SHOP_DOMAIN_HEADER)
        return None if domain is None else domain.lower()

    def dedupe_key(self, headers: Mapping[str, str], payload: object) -> str | None:
        """``X-Shopify-Webhook-Id``: "Use to identify and deduplicate individual
        deliveries" (shopify.md §2.1, §2.4)."""
        return header_text(headers, WEBHOOK_ID_HEADER)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """For Shopify the delivery id is the deduplication key itself."""
        return self.dedupe_key(headers, None)

    def event_id(self, headers: Mapping[str, str]) -> str | None:
        """``X-Shopify-Event-Id``: shared by all deliveries of one merchant action."""
        return header_text(headers, EVENT_ID_HEADER)

    def resource_id(self, topic: str, payload: object) -> str | None:
        """The order id an event is about, or None. Never raises."""
        if not isinstance(topic, str) or not isinstance(payload, _MappingABC):
            return None
        if topic.startswith("orders/"):
            field = "id"
        elif topic == "refunds/create" or topic in FULFILLMENT_TOPICS:
            field = "order_id"
        else:
            return None
        try:
            return positive_id(payload.get(field), field)
        except PayloadError:
            return None

    parse = staticmethod(parse_webhook)


def shipping_contact(payload: object) -> ShippingContact | None:
    """The order's shipping address as a 3PL needs it, or None when it has none."""
    if not isinstance(payload, Mapping):
        return None
    raw = payload.get("shipping_address")
    if not isinstance(raw, Mapping):
        return None

    def text(key: str) -> str:
        value = raw.get(key)
        return value.strip() if isinstance(value, str) else ""

    name = text("name") or " ".join(p for p in (text("first_name"), text("last_name")) if p)
    customer = payload.get("customer") if isinstance(payload.get("customer"), Mapping) else {}
    email = next((v for v in (payload.get("email"), payload.get("contact_email"), customer.get("email"))
                  if isinstance(v, str) and v), None)
    return ShippingContact(
        name=name,
        address_lines=tuple(line for line in (text("address1"), text("address2")) if line),
        city=text("city"),
        address=Address(text("country_code").upper() or None, text("province_code") or None, text("zip") or None),
        email=email,
        phone=text("phone") or None,
    )

