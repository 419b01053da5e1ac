"""What the Shopify and WooCommerce webhook dialects share: base64 HMAC-SHA256
verification over the raw body, case-insensitive header lookup, and strict readers
for JSON payload fields that raise ``PayloadError`` naming the field."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping as _MappingABC
from typing import Mapping, Sequence

from connector.domain.model import PayloadError

MAX_ID = 2**64  # platform ids are 64-bit integers


def verify_b64_hmac(raw_body: bytes, signature: str | None, secrets: Sequence[str]) -> bool:
    """True when ``signature`` (the header value) is the HMAC of ``raw_body`` under any
    non-empty secret in ``secrets``.

    The header is base64-decoded before comparing, so surrounding whitespace (Ruby's
    ``Base64.encode64`` appends a newline) is tolerated. A missing, empty or undecodable
    header is simply not valid. Digests are compared with ``hmac.compare_digest``.
    """
    if not isinstance(raw_body, (bytes, bytearray, memoryview)):
        raise TypeError("raw_body must be the raw request bytes")
    keys = secret_list(secrets)
    provided = b64_digest(signature)
    if provided is None:
        return False
    body = memoryview(raw_body).cast("B")
    matched = False
    for key in keys:  # no early exit: try every secret
        if hmac.compare_digest(_hmac_sha256(key.encode("utf-8"), body), provided):
            matched = True
    return matched


# hashlib releases the GIL while it hashes 2,048 bytes or more in one call. In a
# threaded web process other request threads are waiting for it, so each release
# hands it away, and the verifying thread then waits for its turn again (two
# context switches) to go on: more than hashing a webhook body costs. Updating in
# smaller pieces keeps the GIL.
_HASH_PIECE = 2047


def _hmac_sha256(key: bytes, body: memoryview) -> bytes:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for start in range(0, len(body), _HASH_PIECE):
        mac.update(body[start:start + _HASH_PIECE])
    return mac.digest()


def secret_list(secrets: Sequence[str]) -> list[str]:
    if isinstance(secrets, (str, bytes)):
        # A bare string is a Sequence of one-character "secrets": refuse it loudly.
        raise TypeError("secrets must be a sequence of strings, not a single string")
    keys = []
    for secret in secrets:
        if not isinstance(secret, str):
            raise TypeError("each secret must be a str")
        if secret:
            keys.append(secret)
    return keys


def b64_digest(signature: object) -> bytes | None:
    if not isinstance(signature, str):
        return None
    text = signature.strip()
    if not text:
        return None
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeError):
        return None


def as_object(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, _MappingABC):
        raise PayloadError(f"{where}: expected a JSON object, got {show(value)}")
    return value


def optional_object(body: Mapping[str, object], field: str) -> Mapping[str, object] | None:
    value = body.get(field)
    if value is None:
        return None
    return as_object(value, field)


def positive_id(value: object, where: str) -> str:
    """A platform id (a positive 64-bit integer, as JSON number or digits) as exact text."""
    if isinstance(value, bool):
        raise PayloadError(f"{where}: expected an integer id, got {show(value)}")
    if isinstance(value, int):
        if not 0 < value < MAX_ID:
            raise PayloadError(f"{where}: expected a positive id, got {show(value)}")
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if 0 < len(text) <= 20 and text.isascii() and text.isdigit() and 0 < int(text) < MAX_ID:
            return text
    if value is None:
        raise PayloadError(f"{where}: missing id")
    raise PayloadError(f"{where}: expected an integer id, got {show(value)}")


def optional_text(body: Mapping[str, object], field: str, where: str) -> str | None:
    """A string field where null, empty and whitespace all mean 'not given'."""
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected a string or null, got {show(value)}")
    return value.strip() or None


def show(value: object) -> str:
    """Describe a bad value without echoing payload contents at length."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_ID:
        return "a very large integer"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value[:40])
    return type(value).__name__


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's value, looked up case-insensitively in a plain dict (any key case),
    werkzeug ``Headers``/``EnvironHeaders`` or any other Mapping. ``None`` if absent."""
    if headers is None:
        return None
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == wanted:
                value = candidate
                break
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if isinstance(value, str) else None


def header_text(headers: Mapping[str, str] | None, name: str) -> str | None:
    value = header(headers, name)
    if value is None:
        return None
    return value.strip() or None


def line_objects(raw: object):
    """Yield (where, line object, line id) for ``line_items``: a list of objects with
    unique positive ids, or PayloadError naming the offending entry."""
    if not isinstance(raw, (list, tuple)):
        raise PayloadError(f"line_items: expected a list, got {show(raw)}")
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"line_items[{index}]"
        line = as_object(item, where)
        line_id = positive_id(line.get("id"), f"{where}.id")
        if line_id in seen:
            raise PayloadError(f"{where}.id: duplicate line id {line_id}")
        seen.add(line_id)
        yield where, line, line_id

