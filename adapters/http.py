"""The one HTTP client every 3PL adapter is built on.

Modelled on singer-sdk's REST streams: a single place that knows about
authentication, timeouts, pacing, retriable vs. fatal errors, backoff and
pagination, so that provider adapters only describe endpoints and mappings.

Error mapping (the classes live in ``connector.domain.model``):

* 429, 500, 502, 503, 504, connection errors and timeouts are *retriable*.
  When the attempts are used up the client raises ``ProviderUnavailable``.
* 401 asks the auth object to refresh once and retries once; a second 401 (or
  an auth that cannot refresh) raises ``ProviderAuthError``. 403 also raises
  ``ProviderAuthError`` (credentials valid but lacking a scope).
* Any other 4xx raises ``ProviderRejected`` immediately (no retry).
* A 2xx whose body is not the JSON we were promised raises
  ``ProviderResponseError``; so does a paginator that never ends.

Retry safety: GET, HEAD, PUT, DELETE and OPTIONS are retried by default. A
POST (or PATCH) is retried only when the caller passes ``retry=True`` (e.g. a
search that creates nothing). A transport failure is judged by when it happened:
before the request left this machine (connect timeout, refused connection,
unknown host) it is retried even for a POST, as is a 429 (the provider refused
it). After it left — a read timeout, a connection reset or closed before or
during the answer, a body shorter than its Content-Length or its chunks
promised, a 2xx JSON body that ends inside the document — it is a retriable
failure for a safe request and, like a 5xx, an unknown outcome for an unsafe
one: ``ProviderOutcomeUnknown`` at once, and the caller's lookup-before-create
makes its own later retry safe.

Every exception raised here carries ``provider``, ``method``, ``path``,
``status`` (``None`` for network errors), ``attempts`` and ``body_excerpt``
attributes. Messages and logs never contain request headers or tokens: a server
may echo the whole request into its error body, so every message and excerpt
passes through the client's ``Redactor`` (every credential the adapter registered
when it built the client, in each form an echo can show it) and its auth's
``redact`` before it leaves this module.
"""
from __future__ import annotations

import base64
import email.utils
import html
import json as _json
import logging
import random as _random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Iterator, Mapping, MutableMapping, Protocol, Sequence, TypeVar
from urllib.parse import quote, quote_plus, urljoin, urlsplit

import requests
import urllib3.exceptions

from connector.domain.model import (
    ProviderAuthError,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
)

log = logging.getLogger("connector.http")

T = TypeVar("T")

RETRIABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
DEFAULT_TIMEOUT = (3.05, 30.0)
DEFAULT_USER_AGENT = "micro-fulfillment-connector/0.1 (+python-requests)"
_EXCERPT_CHARS = 300
# Failures of the connection rather than of the request. ChunkedEncodingError is what
# requests raises for any body cut short (also one with a Content-Length).
_TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                     requests.exceptions.ContentDecodingError)


class TruncatedBody(requests.RequestException):
    """A 2xx body that ends inside its JSON document: the answer was cut off in transit
    (a close-delimited body carries no length that would tell)."""


def _never_left(error: BaseException) -> bool:
    """True when a transport failure happened before the request left this machine,
    so nothing can have been done with it: a connect timeout, a refused connection,
    an unknown host."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0], "reason", None) if isinstance(error, requests.ConnectionError) and error.args else None
    return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))
# Redaction runs before an excerpt is cut, over this much more text, so a secret
# straddling the cut is masked whole instead of leaving its first characters behind.
_LONGEST_SECRET = 4096


# ---------------------------------------------------------------- auth


class Auth(Protocol):
    """What ``HttpClient`` needs from an authentication scheme."""

    def apply(self, headers: MutableMapping[str, str]) -> None:
        """Add the credential header(s) to an outgoing request."""

    def invalidate(self) -> bool:
        """Forget the current credential after a 401. True when a new one can be
        obtained (so one retry is worthwhile), False when it is static."""

    def redact(self, text: str) -> str:
        """``text`` with any live secret replaced by ``***``."""


class Redactor:
    """Masks credentials in text that is about to leave an adapter (error messages,
    body excerpts): each registered secret in every form a server echoing the request
    back can show it: raw (a header), percent-encoded (a query or form value), escaped
    inside a JSON string (a JSON body) and HTML-escaped. Composite forms such as an
    HTTP Basic value are registered by the caller (``basic_credentials``). Values
    shorter than 4 characters are ignored: masking them would garble the text."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        self._forms: tuple[str, ...] = ()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        forms = set(self._forms)
        for secret in secrets:
            if secret and len(secret) >= 4:
                forms.update((secret, quote(secret, safe=""), quote(secret), quote_plus(secret),
                              _json.dumps(secret)[1:-1], _json.dumps(secret, ensure_ascii=False)[1:-1],
                              html.escape(secret)))
        # longest first: a secret that contains another is masked whole
        self._forms = tuple(sorted(forms, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, "***")
        return text


def basic_credentials(user: str, password: str) -> str:
    """The base64 part of an ``Authorization: Basic`` header."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class StaticToken:
    """A credential that never changes: ShipBob PATs (``Authorization: Bearer
    <pat>``), ShipMonk keys (``StaticToken(token=key, header="Api-Key", prefix="")``)."""

    def __init__(self, header: str = "Authorization", prefix: str = "Bearer ", *, token: str):
        if not token:
            raise ValueError("StaticToken needs a non-empty token")
        self.header = header
        self.prefix = prefix
        self._token = token
        self._redactor = Redactor((token,))

    def apply(self, headers: MutableMapping[str, str]) -> None:
        headers[self.header] = f"{self.prefix}{self._token}"

    def invalidate(self) -> bool:
        return False  # nothing to refresh: a 401 is final

    def redact(self, text: str) -> str:
        return self._redactor(text)

    def __repr__(self) -> str:  # never show the token
        return f"StaticToken(header={self.header!r}, token=***)"


class RefreshingToken:
    """A short-lived credential fetched on demand (OAuth refresh token, client
    credentials, ...).

    ``fetch()`` returns ``(token, expires_in_seconds | None)``; ``None`` means the
    token does not expire. The token is fetched lazily on first use, cached until
    ``expires_in - margin`` seconds have passed on the injected monotonic clock,
    and fetched again after ``invalidate()`` (which the client calls on a 401).
    ``fetch`` should raise a ``ProviderError`` itself when the provider refuses.
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[str, float | None]],
        header: str = "Authorization",
        prefix: str = "Bearer ",
        *,
        margin: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self.header = header
        self.prefix = prefix
        self.margin = margin
        self._monotonic = monotonic
        self._token: str | None = None
        self._expires_at: float | None = None  # monotonic deadline; None = never
        self._previous: list[str] = []  # old tokens, still redacted from messages
        self._lock = threading.Lock()
        self.fetch_count = 0

    def token(self) -> str:
        with self._lock:
            now = self._monotonic()
            if self._token is None or (self._expires_at is not None and now >= self._expires_at):
                token, expires_in = self._fetch()
                if not token:
                    raise ProviderAuthError("token endpoint returned an empty token")
                self.fetch_count += 1
                if self._token:
                    self._previous = (self._previous + [self._token])[-4:]
                self._token = token
                if expires_in is None:
                    self._expires_at = None
                else:
                    # never cache for less than zero seconds, even when the
                    # provider's lifetime is shorter than our margin
                    self._expires_at = now + max(float(expires_in) - self.margin, 0.0)
            return self._token

    def apply(self, headers: MutableMapping[str, str]) -> None:
        headers[self.header] = f"{self.prefix}{self.token()}"

    def invalidate(self) -> bool:
        with self._lock:
            if self._token:
                self._previous = (self._previous + [self._token])[-4:]
            self._token = None
            self._expires_at = None
        return True

    def redact(self, text: str) -> str:
        return Redactor([self._token, *self._previous])(text)

    def __repr__(self) -> str:
        return f"RefreshingToken(header={self.header!r}, token=***)"


# ---------------------------------------------------------------- errors


def _make_error(
    cls: type[ProviderError],
    message: str,
    *,
    provider: str,
    method: str,
    path: str,
    status: int | None = None,
    attempts: int = 1,
    body_excerpt: str | None = None,
    redact: Callable[[str], str] | None = None,
) -> ProviderError:
    if redact is not None:
        message = redact(message)
    err = cls(message)
    err.provider = provider  # type: ignore[attr-defined]
    err.method = method  # type: ignore[attr-defined]
    err.path = path  # type: ignore[attr-defined]
    err.status = status  # type: ignore[attr-defined]
    err.attempts = attempts  # type: ignore[attr-defined]
    err.body_excerpt = body_excerpt  # type: ignore[attr-defined]
    return err


def error_status(err: BaseException) -> int | None:
    """The HTTP status an error from this module carries, if any."""
    return getattr(err, "status", None)


# ---------------------------------------------------------------- client


@dataclass
class _Attempt:
    response: requests.Response | None
    error: requests.RequestException | None


class HttpClient:
    """One ``requests.Session`` per adapter instance, with retries and pacing.

    ``path_or_url`` arguments are either a path relative to ``base_url`` or an
    absolute URL (a next-page link); absolute URLs must stay on the base URL's
    scheme and host so credentials never leak to another host. Redirects are
    not followed for the same reason (``requests`` only strips
    ``Authorization`` on a cross-host redirect, not e.g. ``Api-Key``).
    """

    def __init__(
        self,
        *,
        base_url: str,
        auth: Auth | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_cap: float | None = None,
        min_interval: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
        wall_time: Callable[[], float] = time.time,
        user_agent: str = DEFAULT_USER_AGENT,
        provider: str = "http",
        session: requests.Session | None = None,
        default_headers: Mapping[str, str] | None = None,
        secrets: Iterable[str | None] = (),
        hide_path: bool = False,
    ):
        """``secrets``: credentials this client sends that ``auth`` does not know about
        (a refresh token in a body, a signed URL's query, a header); more can be added
        later with ``client.redactor.add``. ``hide_path``: logs and errors name every path
        "/…" (an address that is itself a credential, like a chat channel's webhook)."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if timeout is None:
            raise ValueError("a timeout is mandatory")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc.lower())
        self.auth = auth
        self.redactor = Redactor(secrets)
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap if retry_after_cap is not None else backoff_cap * 4
        self.min_interval = min_interval
        self.provider = provider
        self.hide_path = hide_path
        self._sleep = sleep
        self._monotonic = monotonic
        self._random = random
        self._wall_time = wall_time
        self.session = session if session is not None else requests.Session()
        self.session.headers["User-Agent"] = user_agent
        if self.session.headers.get("Accept") in (None, "*/*"):
            self.session.headers["Accept"] = "application/json"
        if default_headers:
            self.session.headers.update(default_headers)
        self._pace_lock = threading.Lock()
        self._last_request_at: float | None = None

    # ------------------------------------------------------------ urls

    def url_for(self, path_or_url: str) -> str:
        if path_or_url.lower().startswith(("http://", "https://")):
            url = path_or_url
        elif path_or_url.startswith("/"):
            url = self.base_url + path_or_url
        else:
            url = urljoin(self.base_url + "/", path_or_url)
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc.lower()) != self._origin:
            raise ProviderResponseError(self.redact(
                f"{self.provider}: refusing to send credentials to {parts.scheme}://{parts.netloc} "
                f"(configured for {self._origin[0]}://{self._origin[1]})"
            ))
        return url

    # ------------------------------------------------------------ requests

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, object] | None = None,
        json: object = None,
        data: object = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
    ) -> requests.Response:
        """Send one logical request, retrying per the module's policy; returns a
        2xx response or raises a ``ProviderError``."""
        return self._request(method, path_or_url, params=params, json=json, data=data, headers=headers,
                             retry=retry, decode=False)[0]

    def _request(self, method: str, path_or_url: str, *, params: Mapping[str, object] | None, json: object,
                 data: object, headers: Mapping[str, str] | None, retry: bool | None, decode: bool
                 ) -> tuple[requests.Response, object]:
        """``request``; with ``decode`` also the body's JSON, a body cut short being a
        transport failure (retried like a dropped connection)."""
        method = method.upper()
        url = self.url_for(path_or_url)
        path = "/…" if self.hide_path else (urlsplit(url).path or "/")
        retry_unsafe = (method in IDEMPOTENT_METHODS) if retry is None else retry
        refreshed = False
        attempt = 0
        last_status: int | None = None
        last_error: str | None = None

        while True:
            attempt += 1
            outcome = self._send(method, url, path, attempt, params=params, json=json, data=data, headers=headers)
            resp = outcome.response

            if resp is not None and 200 <= resp.status_code < 300:
                if not decode:
                    return resp, None
                try:
                    return resp, self.decode_json(resp, cut_short_raises=True)
                except TruncatedBody as cut:
                    resp, outcome = None, _Attempt(None, cut)

            if resp is not None and resp.status_code == 401:
                if not refreshed and self.auth is not None and self.auth.invalidate():
                    refreshed = True  # one free retry with a fresh credential
                    attempt -= 1
                    continue
                raise self._error(ProviderAuthError, "credentials refused (401)", method, path, resp, attempt)
            if resp is not None and resp.status_code == 403:
                raise self._error(ProviderAuthError, "access forbidden (403)", method, path, resp, attempt)

            if resp is not None and resp.status_code not in RETRIABLE_STATUSES:
                if 300 <= resp.status_code < 400 or resp.status_code < 200:
                    raise self._error(
                        ProviderResponseError, f"unexpected HTTP {resp.status_code}", method, path, resp, attempt
                    )
                raise self._error(ProviderRejected, f"rejected with HTTP {resp.status_code}", method, path, resp, attempt)

            # retriable failure: a 429/5xx response or a network error
            if resp is not None:
                last_status, last_error = resp.status_code, None
                never_processed = resp.status_code == 429
            else:
                last_status, last_error = None, type(outcome.error).__name__
                never_processed = _never_left(outcome.error)
            may_retry = retry_unsafe or never_processed
            if not may_retry or attempt >= self.max_attempts:
                what = f"HTTP {last_status}" if last_status is not None else last_error
                if may_retry:
                    why = f"gave up after {attempt} attempts"
                else:
                    why = (f"outcome unknown, not retried ({method} is not safe to repeat; look it up first) "
                           f"after {attempt} attempt(s)")
                excerpt = self._excerpt(resp) if resp is not None else None
                raise _make_error(
                    ProviderUnavailable if may_retry else ProviderOutcomeUnknown,
                    f"{self.provider}: {method} {path} {why}; last: {what}",
                    provider=self.provider,
                    method=method,
                    path=path,
                    status=last_status,
                    attempts=attempt,
                    body_excerpt=excerpt,
                    redact=self.redact,
                )
            delay = self._retry_delay(resp, attempt)
            log.warning(
                "%s %s %s: retriable failure (%s) on attempt %d/%d; retrying in %.2fs",
                self.provider,
                method,
                path,
                f"HTTP {last_status}" if last_status is not None else last_error,
                attempt,
                self.max_attempts,
                delay,
            )
            if delay > 0:
                self._sleep(delay)

    def _send(
        self,
        method: str,
        url: str,
        path: str,
        attempt: int,
        *,
        params: Mapping[str, object] | None,
        json: object,
        data: object,
        headers: Mapping[str, str] | None,
    ) -> _Attempt:
        req_headers: dict[str, str] = dict(headers or {})
        if self.auth is not None:
            self.auth.apply(req_headers)  # may fetch a token (outside the pacing)
        self._pace()
        started = self._monotonic()
        try:
            resp = self.session.request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                headers=req_headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except _TRANSPORT_ERRORS as exc:
            elapsed = self._monotonic() - started
            log.info(
                "%s %s %s -> %s attempt=%d elapsed=%.3fs",
                self.provider, method, path, type(exc).__name__, attempt, elapsed,
            )
            return _Attempt(None, exc)
        except requests.RequestException as exc:  # invalid URL etc.: a bug, not an outage
            raise _make_error(
                ProviderRejected,
                f"{self.provider}: {method} {path} could not be sent ({type(exc).__name__})",
                provider=self.provider,
                method=method,
                path=path,
                attempts=attempt,
                redact=self.redact,
            ) from None
        elapsed = self._monotonic() - started
        log.info(
            "%s %s %s -> %d attempt=%d elapsed=%.3fs",
            self.provider, method, path, resp.status_code, attempt, elapsed,
        )
        return _Attempt(resp, None)

    def _pace(self) -> None:
        if self.min_interval <= 0:
            return
        with self._pace_lock:
            now = self._monotonic()
            if self._last_request_at is not None:
                wait = self._last_request_at + self.min_interval - now
                if wait > 0:
                    self._sleep(wait)
                    now = self._monotonic()
            self._last_request_at = now

    def _retry_delay(self, resp: requests.Response | None, attempt: int) -> float:
        if resp is not None:
            hinted = self._retry_after(resp)
            if hinted is not None:
                return min(hinted, self.retry_after_cap)
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        return self._random() * ceiling  # "full jitter"

    def _retry_after(self, resp: requests.Response) -> float | None:
        """Seconds the provider asked us to wait: ``Retry-After`` (seconds or an
        HTTP date) or ShipBob's ``x-retry-after`` (seconds); the larger wins."""
        waits: list[float] = []
        for name in ("Retry-After", "x-retry-after"):
            raw = resp.headers.get(name)
            if raw is None:
                continue
            raw = raw.strip()
            try:
                waits.append(max(float(raw), 0.0))
                continue
            except ValueError:
                pass
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError, IndexError):
                continue
            if when is None:
                continue
            if when.tzinfo is None:
                continue
            waits.append(max(when.timestamp() - self._wall_time(), 0.0))
        return max(waits) if waits else None

    # ------------------------------------------------------------ errors

    def redact(self, text: str) -> str:
        """``text`` with every credential this client holds masked."""
        text = self.redactor(text)
        return self.auth.redact(text) if self.auth is not None else text

    def _excerpt(self, resp: requests.Response) -> str:
        return _excerpt(resp, self.redact)

    def _error(
        self,
        cls: type[ProviderError],
        what: str,
        method: str,
        path: str,
        resp: requests.Response,
        attempts: int,
    ) -> ProviderError:
        excerpt = self._excerpt(resp)
        message = f"{self.provider}: {method} {path} {what}"
        if excerpt:
            message += f": {excerpt}"
        return _make_error(
            cls,
            message,
            provider=self.provider,
            method=method,
            path=path,
            status=resp.status_code,
            attempts=attempts,
            body_excerpt=excerpt,
            redact=self.redact,
        )

    # ------------------------------------------------------------ json helpers

    def decode_json(self, resp: requests.Response, *, cut_short_raises: bool = False) -> object:
        """The response body as JSON, or ``ProviderResponseError``."""
        return decode_json(resp, provider=self.provider, redact=self.redact, cut_short_raises=cut_short_raises)

    def get_json(
        self,
        path: str,
        params: Mapping[str, object] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> object:
        return self._request("GET", path, params=params, json=None, data=None, headers=headers, retry=None,
                             decode=True)[1]

    def post_json(
        self,
        path: str,
        json: object,
        *,
        headers: Mapping[str, str] | None = None,
        retry: bool = False,
    ) -> object:
        return self._request("POST", path, params=None, json=json, data=None, headers=headers, retry=retry,
                             decode=True)[1]

    def close(self) -> None:
        self.session.close()


def decode_json(
    resp: requests.Response,
    *,
    provider: str = "http",
    redact: Callable[[str], str] | None = None,
    cut_short_raises: bool = False,
) -> object:
    """The body as JSON. A body that ends inside the document was cut off in transit:
    ``TruncatedBody`` when ``cut_short_raises`` (the client's retry loop), else
    ``ProviderUnavailable`` (``ProviderOutcomeUnknown`` for an unsafe method); any
    other problem is a ``ProviderResponseError``."""
    method = resp.request.method if resp.request is not None else "?"
    path = urlsplit(resp.url or "").path or "?"

    def fail(what: str) -> ProviderResponseError:
        excerpt = _excerpt(resp, redact)
        return _make_error(  # type: ignore[return-value]
            ProviderResponseError,
            f"{provider}: {method} {path} returned {what}: {excerpt!r}",
            provider=provider,
            method=method or "?",
            path=path,
            status=resp.status_code,
            body_excerpt=excerpt,
            redact=redact,
        )

    ctype = resp.headers.get("Content-Type", "")
    if ctype and "json" not in ctype.lower():
        raise fail(f"non-JSON content ({ctype.split(';')[0]})")
    if not resp.content:
        raise fail("an empty body where JSON was expected")
    try:
        return resp.json()
    except ValueError as exc:
        if not (isinstance(exc, _json.JSONDecodeError) and _ends_inside_document(exc)):
            raise fail("malformed JSON") from None
    if cut_short_raises:
        raise TruncatedBody(f"{provider}: {method} {path}: the JSON body ends inside the document")
    unsafe = method not in IDEMPOTENT_METHODS
    raise _make_error(
        ProviderOutcomeUnknown if unsafe else ProviderUnavailable,
        f"{provider}: {method} {path}: the answer was cut off (its JSON body ends inside the document)"
        + ("; outcome unknown — look it up before trying again" if unsafe else ""),
        provider=provider, method=method or "?", path=path, status=resp.status_code, redact=redact,
    )


def _ends_inside_document(exc: _json.JSONDecodeError) -> bool:
    """True when the text is a cut-off prefix of a JSON document: the parser failed at
    the end, or inside a last token that runs to the end (a string, a literal, a number)."""
    rest = exc.doc[exc.pos:].rstrip()
    return (not rest or exc.msg.startswith("Unterminated string")
            or any(literal.startswith(rest) for literal in ("true", "false", "null"))
            or not rest.strip("-+0123456789.eE")
            or (exc.msg.startswith("Invalid \\uXXXX") and len(rest) < 6))


def _excerpt(resp: requests.Response, redact: Callable[[str], str] | None) -> str:
    """The start of the body on one line, credentials masked before it is cut."""
    try:
        text = resp.text or ""
    except Exception:  # pragma: no cover - undecodable body
        text = repr(resp.content[: _EXCERPT_CHARS + _LONGEST_SECRET])
    text = " ".join(text.split())[: _EXCERPT_CHARS + _LONGEST_SECRET]
    if redact is not None:
        text = redact(text)
    return text[:_EXCERPT_CHARS]


# ---------------------------------------------------------------- pagination


def paginate_cursor(
    fetch_page: Callable[[str | None], tuple[Sequence[T], str | None]],
    max_pages: int = 10_000,
    *,
    first_cursor: str | None = None,
    provider: str = "http",
) -> Iterator[T]:
    """Yield every item of a cursor-paginated listing.

    ``fetch_page(cursor)`` returns ``(items, next_cursor)``; it is called first
    with ``first_cursor`` and stops when ``next_cursor`` is ``None`` or ``""``.
    The cursor may be anything string-like: an opaque token, a next-page URL, a
    page number. Raises ``ProviderResponseError`` when a cursor repeats, when a
    non-empty page is identical to the previous one (a provider ignoring the
    cursor) or after ``max_pages`` pages.
    """
    seen: set[str] = set()
    if first_cursor is not None:
        seen.add(first_cursor)
    cursor = first_cursor
    previous: list[T] | None = None
    for page_no in range(1, max_pages + 1):
        items, next_cursor = fetch_page(cursor)
        items = list(items)
        if items and previous is not None and items == previous:
            raise ProviderResponseError(
                f"{provider}: page {page_no} is identical to the previous page; the paginator is not advancing"
            )
        yield from items
        if next_cursor is None or next_cursor == "":
            return
        if next_cursor in seen:
            raise ProviderResponseError(
                f"{provider}: pagination cursor repeated after {page_no} page(s); refusing to loop"
            )
        seen.add(next_cursor)
        previous = items
        cursor = next_cursor
    raise ProviderResponseError(f"{provider}: pagination did not end within {max_pages} pages")


def paginate_links(
    client: HttpClient,
    path: str,
    *,
    extract: Callable[[object], tuple[Sequence[T], str | None]],
    params: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = None,
    max_pages: int = 10_000,
) -> Iterator[T]:
    """Yield every item of a listing whose pages link to the next one.

    The first page is ``GET path?params``; ``extract(body)`` returns ``(items,
    next_url_or_None)`` and the next URL (absolute, or relative to the base URL)
    is followed verbatim, without re-sending ``params``. Off-host links are
    refused by ``HttpClient.url_for``.
    """

    def fetch(url: str | None) -> tuple[Sequence[T], str | None]:
        if url is None:
            body = client.get_json(path, params, headers=headers)
        else:
            body = client.get_json(url, headers=headers)
        items, next_url = extract(body)
        if next_url:
            next_url = client.url_for(next_url)  # normalise relative links, check host
        return items, next_url

    return paginate_cursor(fetch, max_pages=max_pages, provider=client.provider)


def paginate_pages(
    fetch_page: Callable[[int], Sequence[T]],
    *,
    page_size: int,
    first_page: int = 1,
    max_pages: int = 10_000,
    provider: str = "http",
) -> Iterator[T]:
    """Yield every item of a page-number listing (``Page``/``Limit`` style).

    ``fetch_page(n)`` returns page ``n``'s items; a page shorter than
    ``page_size`` is the last. Loop detection as in ``paginate_cursor`` (a
    provider that ignores the page parameter returns the same page again).
    """

    def fetch(cursor: str | None) -> tuple[Sequence[T], str | None]:
        page = first_page if cursor is None else int(cursor)
        items = list(fetch_page(page))
        return items, (str(page + 1) if len(items) >= page_size else None)

    return paginate_cursor(fetch, max_pages=max_pages, provider=provider)


# ---------------------------------------------------------------- provider timestamps


def parse_time(value: object, provider: str = "") -> datetime | None:
    """A provider's ISO-8601 timestamp ("Z", an offset, or none: read as UTC) as an aware
    datetime; None when absent or unparseable (logged when ``provider`` is named)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        if provider:
            log.warning("%s: unparseable timestamp %r ignored", provider, value[:40])
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def utc_zulu(moment: datetime) -> str:
    """"2026-11-22T15:00:00Z" — for APIs that take UTC with a Z."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_naive(moment: datetime) -> str:
    """"2026-11-22T15:00:00" — for APIs whose filters take UTC without an offset."""
    return _utc(moment).replace(tzinfo=None).isoformat(timespec="seconds")


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("timestamps sent to providers must be timezone-aware")
    return moment.astimezone(timezone.utc)


# ---------------------------------------------------------------- response readers


def graphql_error_code(error: object) -> str | None:
    """A GraphQL error's code: top-level ``code`` (ShipHero) or ``extensions.code`` (the spec's place, Shopify)."""
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    if code is None and isinstance(error.get("extensions"), dict):
        code = error["extensions"].get("code")
    return None if code is None else str(code)


def describe_graphql_errors(errors: list) -> str:
    """The first few entries of a GraphQL ``errors`` list in one line, for logs and exceptions."""
    parts = []
    for error in errors[:5]:
        if isinstance(error, dict):
            text = str(error.get("message") or "unknown error")
            code = graphql_error_code(error)
            if code is not None:
                text += f" (code {code})"
            if error.get("request_id"):
                text += f" [request_id {error['request_id']}]"
            parts.append(text)
        else:
            parts.append(str(error)[:200])
    return "; ".join(parts)


def expect_object(body: object, provider: str, what: str) -> dict:
    """``body`` when it is a JSON object, else a ProviderResponseError naming the call."""
    if not isinstance(body, dict):
        raise ProviderResponseError(f"{provider}: {what} did not return a JSON object")
    return body


def int_field(record: Mapping[str, object], name: str, provider: str, sku: object) -> int:
    """An integer quantity field of a provider record (bools and missing values refused)."""
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProviderResponseError(f"{provider}: {name} of sku {sku!r} is missing or not an integer: {value!r}")
    return value

