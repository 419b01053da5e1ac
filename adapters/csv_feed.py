"""CSV stock feeds for partners without an API (print shop, co-packer, pop-up).

The partner drops a file ``sku,quantity[,location]`` somewhere we can read: a
local path (a synced folder, an upload) or an HTTPS URL. The file is parsed
completely and strictly before anything is returned: one bad line makes the
whole file fail with every problem listed by line number, so a half-edited
spreadsheet never turns into "these SKUs are now at zero".

A CSV node only reports stock; it cannot receive orders through us.
"""
from __future__ import annotations

import csv
import io
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping, Sequence
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from adapters.http import HttpClient, basic_credentials
from connector.domain.model import (
    InventoryRecord,
    OutboundOrder,
    ProviderOrderRef,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    Shipment,
)

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_QUANTITY = 2**31 - 1  # far above any real shelf; keeps typos like 1e12 out of the store
REQUIRED_COLUMNS = ("sku", "quantity")
OPTIONAL_COLUMNS = ("location",)
KNOWN_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
ORDER_REFUSAL = "csv feed nodes do not accept orders; fulfil them from the storefront"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


class CsvFeedError(ProviderResponseError):
    """The feed was read but is not a valid stock file. ``errors`` lists every problem,
    each prefixed with its line number ("line 4: quantity 'abc' is not a whole number")."""

    def __init__(self, errors: Sequence[str], source: str = "csv feed", shown: int = 20):
        self.errors: list[str] = list(errors)
        self.source = source
        head = "; ".join(self.errors[:shown])
        more = len(self.errors) - shown
        tail = f"; ... and {more} more" if more > 0 else ""
        count = len(self.errors)
        super().__init__(f"{source}: {count} problem{'s' if count != 1 else ''}: {head}{tail}")


def _show(value: str, limit: int = 40) -> str:
    """A cell quoted for an error message, shortened so one giant cell cannot flood it."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return f"'{value}'"


def parse_inventory_csv(
    data: bytes,
    *,
    default_location: str | None,
    source: str = "csv feed",
    allow_empty: bool = False,
) -> list[InventoryRecord]:
    """Parse a whole feed strictly. Returns records only when the file has no problem at
    all; otherwise raises ``CsvFeedError`` listing every problem found."""
    try:
        text = data.decode("utf-8-sig")  # tolerates (and drops) a UTF-8 BOM
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CsvFeedError(
            [f"line {line}: not valid UTF-8 text (save the file as 'CSV UTF-8')"], source
        ) from None

    errors: list[str] = []
    records: list[InventoryRecord] = []
    # newline="" lets the csv module handle CRLF, LF and quoted line breaks itself.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    header_line = 0
    first_seen: dict[tuple[str, str], int] = {}
    previous_end = 0
    try:
        for row in reader:
            line = previous_end + 1  # first physical line of this record
            previous_end = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line (or only separators): skipped
            if header is None:
                header_line = line
                header = [cell.strip().lower() for cell in row]
                header_errors = _check_header(header, line, default_location)
                if header_errors:
                    raise CsvFeedError(header_errors, source)
                continue
            record = _parse_row(row, header, line, default_location, errors, first_seen)
            if record is not None:
                records.append(record)
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: unreadable CSV ({exc})")

    if header is None and not errors:
        errors.append("line 1: file is empty; expected a header row 'sku,quantity[,location]'")
    elif header is not None and not records and not errors and not allow_empty:
        errors.append(
            f"line {header_line}: the file has a header but no stock rows "
            "(an empty feed is refused so it cannot zero every SKU)"
        )
    if errors:
        raise CsvFeedError(errors, source)
    return records


def _check_header(header: list[str], line: int, default_location: str | None) -> list[str]:
    errors: list[str] = []
    if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
        return [
            f"line {line}: header {_show(header[0])} is not comma-separated; "
            "expected 'sku,quantity[,location]'"
        ]
    for position, name in enumerate(header, start=1):
        if not name:
            errors.append(f"line {line}: column {position} has no name")
    unexpected = [name for name in header if name and name not in KNOWN_COLUMNS]
    if unexpected:
        names = ", ".join(_show(name) for name in unexpected)
        errors.append(
            f"line {line}: unexpected column{'s' if len(unexpected) > 1 else ''} {names}; "
            "allowed columns are sku, quantity and optionally location"
        )
    for name in KNOWN_COLUMNS:
        if header.count(name) > 1:
            errors.append(f"line {line}: column '{name}' appears {header.count(name)} times")
    for name in REQUIRED_COLUMNS:
        if name not in header:
            errors.append(f"line {line}: missing column '{name}'")
    if "location" not in header and default_location is None:
        errors.append(
            f"line {line}: no 'location' column and no default_location configured for this feed"
        )
    return errors


def _parse_row(
    row: list[str],
    header: list[str],
    line: int,
    default_location: str | None,
    errors: list[str],
    first_seen: dict[tuple[str, str], int],
) -> InventoryRecord | None:
    if len(row) != len(header):
        if len(row) < len(header):
            missing = ", ".join(header[len(row):])
            errors.append(
                f"line {line}: {len(row)} value{'s' if len(row) != 1 else ''} but the header "
                f"has {len(header)} columns (missing {missing})"
            )
        else:
            errors.append(
                f"line {line}: {len(row)} values but the header has only {len(header)} columns"
            )
        return None
    cells = dict(zip(header, row))
    ok = True

    sku = cells["sku"].strip()
    if not sku:
        errors.append(f"line {line}: empty sku")
        ok = False

    raw_quantity = cells["quantity"].strip()
    quantity = 0
    if not raw_quantity:
        errors.append(f"line {line}: empty quantity")
        ok = False
    elif not _WHOLE_NUMBER.fullmatch(raw_quantity):
        errors.append(f"line {line}: quantity {_show(raw_quantity)} is not a whole number")
        ok = False
    else:
        quantity = int(raw_quantity)
        if quantity < 0:
            errors.append(f"line {line}: quantity {quantity} is negative")
            ok = False
        elif quantity > MAX_QUANTITY:
            errors.append(f"line {line}: quantity {raw_quantity} is too large")
            ok = False

    location = cells.get("location", "").strip() or default_location
    if location is None:
        errors.append(f"line {line}: empty location and no default_location configured")
        ok = False

    if sku and location is not None:
        key = (location, sku)
        if key in first_seen:
            errors.append(
                f"line {line}: duplicate sku {_show(sku)} for location {_show(location)} "
                f"(first on line {first_seen[key]})"
            )
            ok = False
        else:
            first_seen[key] = line

    if not ok:
        return None
    assert location is not None
    return InventoryRecord(
        location_id=location,
        sku=sku,
        on_hand=quantity,
        committed=0,
        available=quantity,
        raw=dict(cells),
    )


def _redact(url: str) -> str:
    """A URL fit for logs and error messages: no credentials, query or fragment
    (signed download links carry their secret there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class CsvFeedWarehouse:
    """A node whose stock arrives as a CSV file (local path or HTTPS URL)."""

    provider = "csv"

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        default_location: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        allow_empty: bool = False,
        headers: Mapping[str, str] | None = None,
        client: HttpClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``source``: a file path, or an ``https://`` URL (``http://`` only for
        127.0.0.1/localhost). ``default_location`` is used for rows without a location.
        ``headers`` are sent with URL fetches (e.g. an Authorization header). ``client``:
        a ready ``adapters.http.HttpClient`` for the URL's origin (else one is built,
        with ``sleep`` injected for its backoff)."""
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.default_location = default_location
        self.max_bytes = max_bytes
        self.allow_empty = allow_empty
        self._headers = dict(headers or {})
        self._url: str | None = None
        self._path: Path | None = None
        text = os.fspath(source)
        if "://" in text:
            self._url = _validate_url(text)
            self._label = f"csv feed {_redact(text)}"
        else:
            self._path = Path(text)
            self._label = f"csv feed {self._path}"
        self._client = client
        if self._url is not None and client is None:
            parts = urlsplit(self._url)
            self._client = HttpClient(
                base_url=f"{parts.scheme}://{parts.netloc}",
                provider=self.provider,
                sleep=sleep,
                default_headers={"Accept": "text/csv, text/plain;q=0.9, */*;q=0.5"},
            )
        if self._url is not None and self._client is not None:
            self._client.redactor.add(*_credentials(self._url, self._headers))

    # ------------------------------------------------------------ Warehouse protocol

    def list_inventory(self) -> list[InventoryRecord]:
        data = self._read()
        try:
            return self._parse(data)
        except CsvFeedError:
            if self._client is None:
                raise
            text = data.decode("utf-8", "replace")
            masked = self._client.redact(text)
            if masked == text:
                raise
        # The answer carries this feed's own credentials (an error page echoing the
        # request?): its problems are described from a copy with them masked, since
        # the messages quote cells, lower-cased and cut short where masking misses them.
        self._parse(masked.encode("utf-8"))
        raise CsvFeedError(["the answer echoes this feed's credentials; refused"], self._label)

    def _parse(self, data: bytes) -> list[InventoryRecord]:
        return parse_inventory_csv(
            data,
            default_location=self.default_location,
            source=self._label,
            allow_empty=self.allow_empty,
        )

    def find_order(self, reference: str) -> ProviderOrderRef | None:
        raise ProviderRejected(ORDER_REFUSAL)

    def create_order(self, order: OutboundOrder) -> ProviderOrderRef:
        raise ProviderRejected(ORDER_REFUSAL)

    def list_shipments(self, since: datetime) -> list[Shipment]:
        return []

    def check(self) -> None:
        """The file exists, is readable and within the size limit / the URL answers 2xx."""
        if self._path is not None:
            size = self._local_size()
            self._check_size(size)
            try:
                with self._path.open("rb") as handle:
                    handle.read(1)
            except OSError as exc:
                raise ProviderUnavailable(f"{self._label}: cannot read file ({exc})") from exc
            return
        self._fetch_url()

    # ------------------------------------------------------------ reading

    def _read(self) -> bytes:
        if self._path is not None:
            self._check_size(self._local_size())
            try:
                with self._path.open("rb") as handle:
                    data = handle.read(self.max_bytes + 1)
            except OSError as exc:
                raise ProviderUnavailable(f"{self._label}: cannot read file ({exc})") from exc
            self._check_size(len(data))  # the file may have grown since stat()
            return data
        return self._fetch_url()

    def _local_size(self) -> int:
        assert self._path is not None
        try:
            if not self._path.is_file():
                if self._path.exists():
                    raise ProviderRejected(f"{self._label}: not a regular file")
                raise ProviderUnavailable(f"{self._label}: file not found")
            return self._path.stat().st_size
        except OSError as exc:
            raise ProviderUnavailable(f"{self._label}: cannot read file ({exc})") from exc

    def _check_size(self, size: int) -> None:
        if size > self.max_bytes:
            raise CsvFeedError(
                [f"file is larger than the {self.max_bytes:,}-byte limit ({size:,} bytes or more)"],
                self._label,
            )

    def _fetch_url(self) -> bytes:
        """GET the feed through the shared client (retries 429/5xx/network errors;
        4xx -> ProviderRejected, 401/403 -> ProviderAuthError, exhausted -> Unavailable)."""
        assert self._url is not None and self._client is not None
        response = self._client.request("GET", self._url, headers=self._headers or None)
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.strip().isdigit():
            self._check_size(int(declared))
        data = response.content
        self._check_size(len(data))
        return data


def _credentials(url: str, headers: Mapping[str, str]) -> list[str]:
    """What a fetch of ``url`` with ``headers`` sends that must never be shown: every
    query value (signed links carry their signature there), the URL's user and password
    (and the Basic value requests builds from them), every header value and the
    credential after its scheme ("Bearer <token>")."""
    parts = urlsplit(url)
    found = [value for _, value in parse_qsl(parts.query, keep_blank_values=True)]
    if parts.username or parts.password:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        found += [user, password, basic_credentials(user, password)]
    for value in headers.values():
        found += [value, value.partition(" ")[2]]
    return found


def _validate_url(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https":
        if not parts.hostname:
            raise ValueError(f"csv feed URL has no host: {_redact(url)}")
        return url
    if scheme == "http":
        if parts.hostname in _LOOPBACK_HOSTS:
            return url
        raise ValueError(
            f"csv feed URL {_redact(url)} uses plain http://; only https:// is allowed "
            "(http:// is accepted for 127.0.0.1/localhost only)"
        )
    raise ValueError(f"csv feed source {_redact(url)}: unsupported scheme {scheme!r}; use https://")
