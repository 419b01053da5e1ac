"""WooCommerce's webhook dialect: signatures, pings, headers and payloads -> domain events.

Pure functions plus one small stateless class. Nothing here does I/O, reads a clock
or knows about Flask or the store. Facts and sources: /work/shared/reference/woocommerce.md
(§1 webhooks, §2 the order JSON, §6 test data, §7 gotchas).

* Signature (§1.2): ``X-WC-Webhook-Signature`` is the base64 of HMAC-SHA256 over the exact
  body bytes, keyed with the webhook secret (WooCommerce HTML-entity-decodes the stored
  secret first, so configure the decoded secret here).
* The ping sent when a webhook is created or activated (§1.3) is an unsigned form body
  ``webhook_id=<N>`` with no ``X-WC-Webhook-*`` headers.
* Order payloads (§1.1, §2) are the REST v3 order resource built at delivery time;
  ``order.deleted`` carries only ``{"id": N}``.
* ``X-WC-Webhook-Delivery-ID`` is built from the webhook id and the current second; it is
  not an idempotency key (§1.1). WooCommerce never retries (§7.2) but coalesces (§7.7).
* Refunds (§1.4: ``woocommerce_order_refunded`` and ``woocommerce_delete_order_refund``
  send ``order.updated``): the order's ``line_items`` keep their ordered quantities and
  its ``refunds`` list holds only ``{id, reason, total}``. Which lines a refund covers is
  in ``GET /orders/<id>/refunds``: each refund's ``line_items`` carry a negative
  ``quantity`` and the order's line id in the meta ``_refunded_item_id`` (REST API docs,
  "Order refunds"); :func:`parse_refunds` reads that list.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping as _MappingABC
from datetime import datetime, timezone
from typing import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from adapters.webhook_payloads import (
    line_objects,
    verify_b64_hmac,
    as_object,
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
    Ignored,
    Order,
    OrderDeleted,
    OrderLine,
    OrderUpsert,
    PayloadError,
    RefundCreated,
    RefundLine,
    StorefrontEvent,
)

PLATFORM = "woocommerce"

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"
SOURCE_HEADER = "X-WC-Webhook-Source"
DELIVERY_ID_HEADER = "X-WC-Webhook-Delivery-ID"
WEBHOOK_HEADER_PREFIX = "x-wc-webhook-"

UPSERT_TOPICS = frozenset({"order.created", "order.updated", "order.restored"})
TOPICS = UPSERT_TOPICS | frozenset({"order.deleted"})

MAX_QUANTITY = 2**31 - 1

# Order status -> what it means for fulfilment (woocommerce.md §1.4, §2).
DRAFT_STATUSES = frozenset({"draft", "auto-draft", "checkout-draft", "new"})
STATUS_STATES = {
    "processing": "open",
    "on-hold": "open",
    "pending": "awaiting_payment",
    "failed": "awaiting_payment",
    "cancelled": "cancelled",
    "refunded": "cancelled",
    "trash": "cancelled",
    "completed": "fulfilled",
    "ready-for-pickup": "fulfilled",
}

_PING_BODY = re.compile(rb"webhook_id=[0-9]{1,20}")


# ---------------------------------------------------------------- signatures


def webhook_signature(secret: str, raw_body: bytes) -> str:
    """Base64 of HMAC-SHA256(secret, raw_body): the ``X-WC-Webhook-Signature`` value."""
    digest = hmac.new(secret.encode("utf-8"), bytes(raw_body), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_webhook(raw_body: bytes, signature: str | None, secrets: Sequence[str]) -> bool:
    """True when ``signature`` is the HMAC of ``raw_body`` under any non-empty secret.

    The header is base64-decoded (surrounding whitespace tolerated) and the digests are
    compared with ``hmac.compare_digest``. A missing, empty or undecodable header is not
    valid. Empty secrets are skipped: an unconfigured secret must never verify.
    """
    return verify_b64_hmac(raw_body, signature, secrets)


def is_ping(raw_body: bytes, headers: Mapping[str, str] | None) -> bool:
    """The unsigned creation/activation ping (woocommerce.md §1.3): the body is exactly
    ``webhook_id=<digits>`` and the request carries no ``X-WC-Webhook-*`` header at all
    (in particular no signature and no topic). Anything else is not a ping."""
    if not isinstance(raw_body, (bytes, bytearray, memoryview)):
        return False
    if _PING_BODY.fullmatch(bytes(raw_body)) is None:
        return False
    if headers is None:
        return True
    for key, _value in headers.items():
        if isinstance(key, str) and key.lower().startswith(WEBHOOK_HEADER_PREFIX):
            return False
    return True


# ---------------------------------------------------------------- payloads


def parse_webhook(shop_id: str, topic: str, payload: object) -> StorefrontEvent:
    """Turn a verified, JSON-decoded WooCommerce delivery into a domain event.

    Raises :class:`PayloadError` (naming the field) when the body does not have the
    shape its topic promises; never any other exception for JSON input.
    """
    if not isinstance(topic, str):
        return Ignored(f"unhandled topic {type(topic).__name__}")
    if topic not in TOPICS:
        return Ignored(f"unhandled topic {topic}")
    body = as_object(payload, "payload")
    if topic == "order.deleted":
        return OrderDeleted(positive_id(body.get("id"), "id"))
    status = body.get("status")
    if not isinstance(status, str) or not status.strip():
        raise PayloadError(f"status: expected an order status, got {show(status)}")
    status = status.strip()
    if status in DRAFT_STATUSES:
        return Ignored(f"draft order status {status}")
    state = STATUS_STATES.get(status)
    if state is None:
        return Ignored(f"unhandled order status {status[:40]}")
    return OrderUpsert(_order(shop_id, body, state))


def _order(shop_id: str, body: Mapping[str, object], state: str) -> Order:
    order_id = positive_id(body.get("id"), "id")
    created_at = gmt_timestamp(body, "date_created_gmt")
    if created_at is None:
        # Site-local time without an offset: treated as UTC when GMT is missing.
        created_at = gmt_timestamp(body, "date_created")
    if created_at is None:
        raise PayloadError("date_created_gmt: missing (and no date_created)")
    updated_at = gmt_timestamp(body, "date_modified_gmt") or created_at
    return Order(
        shop_id=shop_id,
        order_id=order_id,
        number=_order_number(body, order_id),
        platform=PLATFORM,
        created_at=created_at,
        updated_at=updated_at,
        ship_to=_ship_to(body),
        lines=_lines(body.get("line_items")),
        state=state,
        customer_id=_customer_id(body.get("customer_id")),
        refund_ids=_refund_ids(body.get("refunds")),
        fulfilled_at=_completed_at(body) if state == "fulfilled" else None,
    )


def _completed_at(body: Mapping[str, object]) -> datetime | None:
    """When a ``completed`` order was completed (the shop marks it so once it shipped);
    None for any other status (``ready-for-pickup`` has not left yet)."""
    if str(body.get("status")).strip() != "completed":
        return None
    return gmt_timestamp(body, "date_completed_gmt") or gmt_timestamp(body, "date_completed")


def _refund_ids(raw: object) -> tuple[str, ...]:
    """The ids of the order's ``refunds`` entries (absent or null: none)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PayloadError(f"refunds: expected a list, got {show(raw)}")
    return tuple(dict.fromkeys(positive_id(as_object(item, f"refunds[{i}]").get("id"), f"refunds[{i}].id")
                               for i, item in enumerate(raw)))


REFUNDED_ITEM_META = "_refunded_item_id"


def parse_refunds(order_id: str, payload: object) -> tuple[RefundCreated, ...]:
    """``GET /orders/<order_id>/refunds`` -> one event per refund: the order's line id
    (the ``_refunded_item_id`` meta) and the units refunded (``-quantity``). A refund of
    an amount only has no lines. Raises :class:`PayloadError` naming the field when the
    answer does not have the documented shape."""
    if not isinstance(payload, list):
        raise PayloadError(f"refunds: expected a list, got {show(payload)}")
    refunds = []
    for index, item in enumerate(payload):
        where = f"refunds[{index}]"
        refund = as_object(item, where)
        lines: dict[str, int] = {}
        raw_lines = refund.get("line_items")
        for line_where, line, _refund_line_id in line_objects([] if raw_lines is None else raw_lines):
            quantity = line.get("quantity")
            if isinstance(quantity, bool) or not isinstance(quantity, int) or not -MAX_QUANTITY <= quantity <= 0:
                raise PayloadError(f"{where}.{line_where}.quantity: expected zero or a negative integer, "
                                   f"got {show(quantity)}")
            if quantity == 0:  # an amount refunded against the line, no units
                continue
            line_id = _refunded_item_id(line.get("meta_data"), f"{where}.{line_where}.meta_data")
            lines[line_id] = lines.get(line_id, 0) - quantity
        refunds.append(RefundCreated(
            order_id=order_id,
            refund_id=positive_id(refund.get("id"), f"{where}.id"),
            lines=tuple(RefundLine(line_id, quantity) for line_id, quantity in lines.items()),
            created_at=gmt_timestamp(refund, "date_created_gmt"),
        ))
    return tuple(refunds)


def _refunded_item_id(raw: object, where: str) -> str:
    if not isinstance(raw, list):
        raise PayloadError(f"{where}: expected a list, got {show(raw)}")
    for index, entry in enumerate(raw):
        meta = as_object(entry, f"{where}[{index}]")
        if meta.get("key") == REFUNDED_ITEM_META:
            return positive_id(meta.get("value"), f"{where}[{index}].value")
    raise PayloadError(f"{where}: no {REFUNDED_ITEM_META} entry naming the refunded order line")


def _order_number(body: Mapping[str, object], order_id: str) -> str:
    number = body.get("number")
    if isinstance(number, str) and number.strip():
        return number.strip()
    if isinstance(number, int) and not isinstance(number, bool) and 0 < number < MAX_ID:
        return str(number)
    return order_id


def _ship_to(body: Mapping[str, object]) -> Address | None:
    """``shipping``, or ``billing`` when shipping has no country (virtual orders, stores
    that do not collect a shipping address). None when neither holds anything."""
    shipping = _address(body, "shipping")
    billing = _address(body, "billing")
    if shipping is not None and shipping.country is not None:
        return shipping
    if billing is not None and billing.country is not None:
        return billing
    if shipping is not None and (shipping.province is not None or shipping.postcode is not None):
        return shipping
    return None


def _address(body: Mapping[str, object], field: str) -> Address | None:
    raw = body.get(field)
    if raw is None or (isinstance(raw, list) and not raw):  # PHP encodes an empty array as []
        return None
    address = as_object(raw, field)
    country = optional_text(address, "country", f"{field}.country")
    return Address(
        country=None if country is None else country.upper(),
        province=optional_text(address, "state", f"{field}.state"),
        postcode=optional_text(address, "postcode", f"{field}.postcode"),
    )


def _customer_id(value: object) -> str | None:
    if value is None or value == "0" or (type(value) is int and value == 0):
        return None  # 0 is a guest checkout
    return positive_id(value, "customer_id")


def _lines(raw: object) -> tuple[OrderLine, ...]:
    lines = []
    for where, line, line_id in line_objects(raw):
        quantity = line.get("quantity")
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 0 <= quantity <= MAX_QUANTITY
        ):
            raise PayloadError(
                f"{where}.quantity: expected a non-negative integer (at most {MAX_QUANTITY}), "
                f"got {show(quantity)}"
            )
        name = line.get("name")
        if name is None:
            name = ""
        elif not isinstance(name, str):
            raise PayloadError(f"{where}.name: expected a string, got {show(name)}")
        lines.append(
            OrderLine(
                line_id=line_id,
                sku=optional_text(line, "sku", f"{where}.sku"),
                quantity=quantity,
                requires_shipping=True,  # the order JSON has no per-line shipping flag
                title=name,
            )
        )
    return tuple(lines)


# ---------------------------------------------------------------- field helpers


def gmt_timestamp(body: Mapping[str, object], field: str) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SS`` without an offset, read as UTC (an explicit offset is
    honoured). None when the field is absent, null or empty."""
    value = body.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{field}: expected an ISO-8601 timestamp, got {show(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise PayloadError(f"{field}: not an ISO-8601 timestamp: {value[:40]!r}") from None


# ---------------------------------------------------------------- headers / class


def normalise_source(url: str | None) -> str | None:
    """``https://Shop.Example.com/`` -> ``https://shop.example.com``: scheme and host
    lower-cased, trailing slashes stripped, any path (WordPress in a subdirectory) kept."""
    if not isinstance(url, str) or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    normalised = urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, "")
    )
    return normalised.rstrip("/")


def order_state_key(order_id: str, payload: Mapping[str, object]) -> str | None:
    """The inbox key of one state of an order: its id, modification time and status.
    Equal for a webhook and for the same order read back from the REST API (the
    webhook body is the REST body), so a polled order the webhook already brought is
    a duplicate. None without a modification time."""
    status = payload.get("status")
    status = status.strip() if isinstance(status, str) else ""
    for field in ("date_modified_gmt", "date_modified"):
        modified = payload.get(field)
        if isinstance(modified, str) and modified.strip():
            return f"order:{order_id}:{modified.strip()}:{status}"
    return None


class WooCommerceStorefront:
    """The :class:`connector.ports.Storefront` for WooCommerce webhooks. Stateless."""

    platform = PLATFORM

    def verify(self, raw_body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> bool:
        return verify_webhook(raw_body, header(headers, SIGNATURE_HEADER), secrets)

    def is_ping(self, raw_body: bytes, headers: Mapping[str, str]) -> bool:
        return is_ping(raw_body, headers)

    def topic(self, headers: Mapping[str, str]) -> str | None:
        return header_text(headers, TOPIC_HEADER)

    def source(self, headers: Mapping[str, str]) -> str | None:
        """``X-WC-Webhook-Source`` (the store's home URL), normalised."""
        return normalise_source(header(headers, SOURCE_HEADER))

    def event_id(self, headers: Mapping[str, str]) -> str | None:
        """WooCommerce deliveries carry no event id."""
        return None

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        """``X-WC-Webhook-Delivery-ID``: for logs only, not an idempotency key."""
        return header_text(headers, DELIVERY_ID_HEADER)

    def dedupe_key(self, headers: Mapping[str, str], payload: object) -> str | None:
        """A key equal for deliveries that carry the same order state.

        The delivery id changes every second for the same content (§1.1), so for
        created/updated/restored the key is the order id, its modification time and
        its status: the time has one-second resolution, and a status change saved in
        the same second (pending -> processing) is a different state, not a repeat.
        ``order.deleted`` has no date in its body, so its key uses the delivery id.
        None when the payload has no usable id (or no date / delivery id to key on).
        """
        topic = self.topic(headers)
        if topic not in TOPICS or not isinstance(payload, _MappingABC):
            return None
        try:
            order_id = positive_id(payload.get("id"), "id")
        except PayloadError:
            return None
        if topic == "order.deleted":
            delivery = self.delivery_id(headers)
            return None if delivery is None else f"order:{order_id}:deleted:{delivery}"
        return order_state_key(order_id, payload)

    def resource_id(self, topic: str, payload: object) -> str | None:
        """The order id an event is about, or None. Never raises."""
        if not isinstance(topic, str) or topic not in TOPICS:
            return None
        if not isinstance(payload, _MappingABC):
            return None
        try:
            return positive_id(payload.get("id"), "id")
        except PayloadError:
            return None

    parse = staticmethod(parse_webhook)


def shipping_contact(payload: object) -> ShippingContact | None:
    """The order's shipping address (billing when shipping is empty), as a 3PL needs it."""
    if not isinstance(payload, Mapping):
        return None
    billing = payload.get("billing") if isinstance(payload.get("billing"), Mapping) else {}
    shipping = payload.get("shipping") if isinstance(payload.get("shipping"), Mapping) else {}
    source = shipping if isinstance(shipping.get("country"), str) and shipping.get("country") else billing
    if not source:
        return None

    def text(block: Mapping, key: str) -> str:
        value = block.get(key)
        return value.strip() if isinstance(value, str) else ""

    return ShippingContact(
        name=" ".join(p for p in (text(source, "first_name"), text(source, "last_name")) if p),
        address_lines=tuple(line for line in (text(source, "address_1"), text(source, "address_2")) if line),
        city=text(source, "city"),
        address=Address(text(source, "country").upper() or None, text(source, "state") or None,
                        text(source, "postcode") or None),
        email=text(billing, "email") or None,
        phone=text(shipping, "phone") or text(billing, "phone") or None,
    )

