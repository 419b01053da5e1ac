"""Shopify app authentication: session tokens, token exchange, expiring offline tokens
and their refresh, and the authorization-code grant for installs outside the admin.

Facts and sources: /work/shared/reference/shopify.md §1 and app-ui.md §2.

* **Session tokens** (§1.4): an HS256 JWT signed with the app's client secret (or, during
  a rotation, the previous one); ``aud`` is the client id, ``dest`` the shop's
  ``https://{shop}.myshopify.com`` origin and ``iss`` that origin + ``/admin``; ``exp`` and
  ``nbf`` hold with 10 s of leeway (Shopify's Python and Ruby libraries); every claim of
  ``iss dest aud sub exp nbf iat jti sid`` must be present. PyJWT checks the signature,
  the audience and the presence of the claims; the times are checked here against an
  injected clock.
* **Token exchange** (§1.4): ``POST https://{shop}/admin/oauth/access_token`` with
  ``grant_type=urn:ietf:params:oauth:grant-type:token-exchange``, the session token as
  ``subject_token`` (type ``…:id_token``), ``requested_token_type`` the offline access token
  and ``expiring: 1``. A 400 ``invalid_subject_token`` means the session token is bad or
  stale: :class:`InvalidSubjectToken`, which the web layer answers with 401 and
  ``X-Shopify-Retry-Invalid-Session-Request: 1`` so App Bridge retries with a fresh one.
* **Expiring offline tokens** (§1.3): the access token lasts an hour, the refresh token
  90 days; ``grant_type=refresh_token`` gives a new pair and Shopify invalidates the old
  refresh token once the new one is used. "If your app doesn't receive a response from a
  refresh request, then retry the same request immediately with the same refresh_token":
  a refresh is therefore sent with retries. :class:`TokenKeeper` refreshes within 60 s of
  expiry, one refresh per shop at a time: a per-shop lock in the process, and across
  processes a compare-and-set on the stored refresh token (:class:`TokenStore.save_if`).
* **Authorization-code grant** (§1.2): install URL with ``client_id``, ``scope``,
  ``redirect_uri``, a ``state`` nonce and an empty ``grant_options[]`` (offline); the
  callback's hex query HMAC (``adapters.shopify.verify_query``, §6.1 vectors), the shop
  hostname, the state and the timestamp are checked before the code is exchanged.

Every credential a request carries (client secret, session token, refresh token, code) is
registered with the HTTP client's redactor, so no error or log line shows one.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
import secrets as _secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Mapping, MutableMapping, Protocol, Sequence
from urllib.parse import urlencode

import jwt

from adapters.http import HttpClient, Redactor, error_status
from adapters.shopify import verify_query
from connector.domain.model import (
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
)

log = logging.getLogger("connector.adapters.shopify_auth")

PROVIDER = "shopify"
TOKEN_PATH = "/admin/oauth/access_token"
SESSION_TOKEN_LEEWAY = 10  # seconds, as Shopify's Python and Ruby libraries
REQUIRED_CLAIMS = ("iss", "dest", "aud", "sub", "exp", "nbf", "iat", "jti", "sid")
REFRESH_MARGIN = timedelta(seconds=60)  # refresh an access token this close to its expiry
# |now - timestamp| allowed on a signed install request or callback: Shopify's JS library's
# tolerance (the docs name none); the state nonce already limits a callback to one use.
QUERY_TIMESTAMP_TOLERANCE = 90
RETRY_INVALID_SESSION_HEADER = "X-Shopify-Retry-Invalid-Session-Request"
ACCESS_TOKEN_HEADER = "X-Shopify-Access-Token"

# What the app asks for: orders (webhooks, reconciliation), locations (offered as nodes),
# inventory (availability push), products (SKU -> inventory item) and the fulfillment-order
# scopes that reading an order's fulfillment orders, fulfillmentOrderMove and fulfillmentCreate
# need for merchant-managed and 3PL-assigned orders (§4.5; a write scope grants its read).
# shopify.app.toml lists exactly these (tests/unit/test_shopify_app_toml.py).
REQUIRED_SCOPES = (
    "read_inventory",
    "read_locations",
    "read_orders",
    "read_products",
    "write_inventory",
    "write_merchant_managed_fulfillment_orders",
    "write_third_party_fulfillment_orders",
)

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_ACCESS_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"

# Bare shop hostnames only: letters, digits and hyphens, then .myshopify.com (§1.2; the same
# rule as connector.config's shop_domain). Anything else, e.g. "x.myshopify.com.evil.com",
# "a.b.myshopify.com" or an URL, is refused.
_SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")
_SHOP_ORIGIN = re.compile(r"https://([a-z0-9][a-z0-9-]*\.myshopify\.com)")
_OAUTH_ERROR = re.compile(r'"error"\s*:\s*"([A-Za-z0-9_.-]+)"')


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------- errors


class InvalidSessionToken(Exception):
    """A session token that fails verification. The message says which check failed and
    never contains the token."""


class InvalidSubjectToken(ProviderAuthError):
    """Token exchange refused the session token (400 ``invalid_subject_token``): the web
    layer answers 401 with ``X-Shopify-Retry-Invalid-Session-Request: 1``."""


class ReauthorizationNeeded(ProviderAuthError):
    """No usable offline token for the shop: none stored, the refresh token expired, or
    Shopify refused the refresh. A page inside the admin gets a new one by token
    exchange; outside it, by the authorization-code grant."""


class InvalidOAuthRequest(Exception):
    """A signed install request or OAuth callback that fails a check (HMAC, shop, state,
    timestamp, missing code). Nothing from it may be used."""


# ---------------------------------------------------------------- shop names


def shop_domain(value: object) -> str | None:
    """``value`` as a bare ``{shop}.myshopify.com`` hostname (lower-cased), or None when it is
    not one."""
    if not isinstance(value, str):
        return None
    candidate = value.strip().lower()
    return candidate if _SHOP_DOMAIN.fullmatch(candidate) else None


# ---------------------------------------------------------------- session tokens


@dataclass(frozen=True)
class SessionToken:
    """The verified claims the app uses."""

    shop: str  # {shop}.myshopify.com
    user_id: str  # sub
    session_id: str  # sid
    expires_at: datetime


def verify_session_token(
    token: str,
    *,
    client_id: str,
    secrets: Sequence[str],
    now: Callable[[], datetime] = _utc_now,
    leeway: float = SESSION_TOKEN_LEEWAY,
) -> SessionToken:
    """Verify an App Bridge session token; returns its shop and user or raises
    :class:`InvalidSessionToken`.

    ``secrets``: the client secret first, then the previous one during a rotation; a
    signature valid under any of them is accepted.
    """
    keys = [s for s in secrets if isinstance(s, str) and s]
    if not client_id or not keys:
        raise ValueError("verify_session_token needs the client id and at least one client secret")
    if not isinstance(token, str) or not token.strip():
        raise InvalidSessionToken("session token missing")
    claims: dict | None = None
    for key in keys:
        try:
            claims = jwt.decode(
                token.strip(),
                key,
                algorithms=["HS256"],
                audience=client_id,
                # the times are checked below against the injected clock
                options={"require": list(REQUIRED_CLAIMS), "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False},
            )
            break
        except jwt.InvalidSignatureError:
            continue  # perhaps signed with the other secret of a rotation
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidSessionToken(f"session token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidAudienceError:
            raise InvalidSessionToken("session token is for another app (aud is not our client id)") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidSessionToken("session token is not signed with HS256") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidSessionToken(f"session token is malformed ({type(exc).__name__})") from None
    if claims is None:
        raise InvalidSessionToken("session token signature does not match the client secret")

    dest = claims["dest"]
    match = _SHOP_ORIGIN.fullmatch(dest) if isinstance(dest, str) else None
    if match is None:
        raise InvalidSessionToken("session token dest is not a https://{shop}.myshopify.com origin")
    if claims["iss"] != f"{dest}/admin":
        raise InvalidSessionToken("session token iss does not match its dest")
    at = now().timestamp()
    exp, nbf = claims["exp"], claims["nbf"]
    for name, value in (("exp", exp), ("nbf", nbf), ("iat", claims["iat"])):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidSessionToken(f"session token {name} is not a number")
    if at > exp + leeway:
        raise InvalidSessionToken("session token expired")
    if at < nbf - leeway:
        raise InvalidSessionToken("session token is not valid yet (nbf in the future)")
    for name in ("sub", "sid"):
        if not isinstance(claims[name], str) or not claims[name]:
            raise InvalidSessionToken(f"session token {name} is not a string")
    return SessionToken(
        shop=match.group(1),
        user_id=claims["sub"],
        session_id=claims["sid"],
        expires_at=datetime.fromtimestamp(exp, timezone.utc),
    )


# ---------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Tokens:
    """A shop's offline access token, with its refresh token when it expires.

    ``expires_at`` None: a non-expiring token (custom apps, installs before the switch).
    """

    access_token: str
    scopes: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    refresh_token: str | None = None
    refresh_token_expires_at: datetime | None = None

    def needs_refresh(self, now: datetime, margin: timedelta = REFRESH_MARGIN) -> bool:
        return self.expires_at is not None and now >= self.expires_at - margin

    def refreshable(self, now: datetime) -> bool:
        return bool(self.refresh_token) and (
            self.refresh_token_expires_at is None or now < self.refresh_token_expires_at)

    def missing_scopes(self, required: Iterable[str]) -> list[str]:
        """Required scopes this token lacks; a granted ``write_x`` covers ``read_x`` (§1.2)."""
        return missing_scopes(required, self.scopes)

    def as_document(self) -> dict:
        """Plain JSON-able data for a store (the store encrypts the token values)."""
        return {
            "access_token": self.access_token,
            "scopes": sorted(self.scopes),
            "expires_at": _iso(self.expires_at),
            "refresh_token": self.refresh_token,
            "refresh_token_expires_at": _iso(self.refresh_token_expires_at),
        }

    @classmethod
    def from_document(cls, document: Mapping[str, object]) -> "Tokens":
        return cls(
            access_token=str(document["access_token"]),
            scopes=frozenset(str(s) for s in document.get("scopes") or ()),
            expires_at=_from_iso(document.get("expires_at")),
            refresh_token=document.get("refresh_token") or None,  # type: ignore[arg-type]
            refresh_token_expires_at=_from_iso(document.get("refresh_token_expires_at")),
        )

    def __repr__(self) -> str:  # never show a token
        return (f"Tokens(access_token=***, scopes={sorted(self.scopes)!r}, expires_at={self.expires_at!r}, "
                f"refresh_token={'***' if self.refresh_token else None})")


def missing_scopes(required: Iterable[str], granted: frozenset[str]) -> list[str]:
    """Required scopes ``granted`` lacks; a granted ``write_x`` covers ``read_x`` (§1.2)."""
    return [scope for scope in required if not _covered(scope, granted)]


def _covered(scope: str, granted: frozenset[str]) -> bool:
    if scope in granted:
        return True
    return scope.startswith("read_") and "write_" + scope[len("read_"):] in granted


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat()


def _from_iso(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


# ---------------------------------------------------------------- the token endpoint


class ShopifyOAuth:
    """The app's calls to ``/admin/oauth/access_token`` (one HTTP client per call: they are
    rare, and each carries its own credentials to redact)."""

    provider = PROVIDER

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        now: Callable[[], datetime] = _utc_now,
        timeout: float | tuple[float, float] = (3.05, 10.0),
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        scheme: str = "https",
    ):
        """``scheme`` is "http" only for a loopback test server."""
        if not client_id or not client_secret:
            raise ValueError("ShopifyOAuth needs the app's client id and client secret")
        self.client_id = client_id
        self._client_secret = client_secret
        self._now = now
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._monotonic = monotonic
        self._scheme = scheme

    def __repr__(self) -> str:
        return f"ShopifyOAuth(client_id={self.client_id!r}, client_secret=***)"

    def exchange_session_token(self, shop: str, session_token: str) -> Tokens:
        """Token exchange for an expiring offline token (§1.4). A refused session token
        raises :class:`InvalidSubjectToken`. Sent with retries: a repeat only yields a newer
        token, which retires one we never received."""
        body = {
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": session_token,
            "subject_token_type": ID_TOKEN_TYPE,
            "requested_token_type": OFFLINE_ACCESS_TOKEN_TYPE,
            "expiring": 1,
        }
        try:
            return self._grant(shop, body, (session_token,), retry=True, what="token exchange")
        except ProviderRejected as exc:
            if oauth_error(exc) == "invalid_subject_token":
                raise InvalidSubjectToken(
                    f"shopify: {shop} refused the session token in token exchange (invalid_subject_token)"
                ) from None
            raise

    def refresh(self, shop: str, refresh_token: str) -> Tokens:
        """A new access and refresh token (§1.3). Retried with the same refresh token, as
        Shopify asks for a refresh whose answer was lost. A refused refresh token raises
        :class:`ReauthorizationNeeded`."""
        body = {
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
        try:
            return self._grant(shop, body, (refresh_token,), retry=True, what="token refresh")
        except ProviderAuthError:
            raise
        except ProviderRejected as exc:
            raise ReauthorizationNeeded(
                f"shopify: {shop} refused the refresh token (HTTP {error_status(exc)}, "
                f"{oauth_error(exc) or 'no error code'}); the shop must authorize the app again"
            ) from None

    def exchange_code(self, shop: str, code: str) -> Tokens:
        """The authorization-code grant's last step (§1.2 step 4), for an expiring offline
        token. Not retried after it left: a code is single-use, so a repeat could only fail."""
        body = {"client_id": self.client_id, "client_secret": self._client_secret, "code": code, "expiring": 1}
        return self._grant(shop, body, (code,), retry=False, what="code exchange")

    def _grant(self, shop: str, body: Mapping[str, object], credentials: Sequence[str], *, retry: bool,
               what: str) -> Tokens:
        domain = shop_domain(shop)
        if domain is None:
            raise ValueError(f"not a {{shop}}.myshopify.com hostname: {shop!r}")
        client = HttpClient(
            base_url=f"{self._scheme}://{domain}",
            provider=self.provider,
            timeout=self._timeout,
            max_attempts=self._max_attempts,
            backoff_cap=2.0,  # a merchant is waiting on a page
            sleep=self._sleep,
            monotonic=self._monotonic,
            secrets=(self._client_secret, *credentials),
        )
        try:
            answer = client.post_json(TOKEN_PATH, dict(body), retry=retry)
            return _tokens_from_answer(answer, self._now(), f"{domain} {what}")
        finally:
            client.close()


def oauth_error(exc: BaseException) -> str | None:
    """The OAuth ``error`` code in a refused token request's body (``invalid_subject_token``),
    read from the error's (redacted) body excerpt."""
    found = _OAUTH_ERROR.search(str(getattr(exc, "body_excerpt", "") or ""))
    return found.group(1) if found else None


def _tokens_from_answer(answer: object, now: datetime, what: str) -> Tokens:
    """The token endpoint's JSON (§1.2 step 4) as :class:`Tokens`; lifetimes become
    instants measured from ``now``, the time the answer arrived."""
    if not isinstance(answer, dict):
        raise ProviderResponseError(f"shopify: {what} did not answer a JSON object")
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise ProviderResponseError(f"shopify: {what} answered without an access_token")
    scope = answer.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise ProviderResponseError(f"shopify: {what} answered a scope that is not a string")
    refresh = answer.get("refresh_token")
    if refresh is not None and (not isinstance(refresh, str) or not refresh):
        raise ProviderResponseError(f"shopify: {what} answered an empty or non-string refresh_token")

    def instant(name: str) -> datetime | None:
        seconds = answer.get(name)
        if seconds is None:
            return None
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise ProviderResponseError(f"shopify: {what} answered {name}={seconds!r}, not a positive integer")
        return now + timedelta(seconds=seconds)

    return Tokens(
        access_token=token,
        scopes=frozenset(s.strip() for s in (scope or "").split(",") if s.strip()),
        expires_at=instant("expires_in"),
        refresh_token=refresh,
        refresh_token_expires_at=instant("refresh_token_expires_in"),
    )


# ---------------------------------------------------------------- keeping tokens fresh


class TokenStore(Protocol):
    """Where a shop's tokens live (a later store module keeps them encrypted in SQLite)."""

    def load(self, shop: str) -> Tokens | None:
        """The shop's current tokens, or None."""

    def save_if(self, shop: str, expected_refresh_token: str | None, new: Tokens) -> bool:
        """Store ``new`` only when the stored refresh token is still ``expected_refresh_token``
        (None: no tokens stored, or tokens without a refresh token), in one atomic step
        (e.g. ``UPDATE ... WHERE shop = ? AND refresh_token IS ?``). True when stored."""


class TokenKeeper:
    """Hands out a shop's access token, refreshing it when it is within ``margin`` of expiry.

    One refresh per shop at a time: threads of this process wait on a per-shop lock and
    then find the new token already stored. Across processes the stored refresh token is
    the compare-and-set key: a process that refreshed but finds another process's new
    tokens stored keeps those and drops its own. That is safe because Shopify answers the
    same refresh token with the same new tokens within a short window (§1.3), so both
    processes received one pair; and a refresh that Shopify refuses because another
    process already used the token is resolved by reading what that process stored.
    """

    def __init__(
        self,
        oauth: ShopifyOAuth,
        store: TokenStore,
        *,
        now: Callable[[], datetime] = _utc_now,
        margin: timedelta = REFRESH_MARGIN,
        max_store_attempts: int = 5,
    ):
        self.oauth = oauth
        self.store = store
        self._now = now
        self.margin = margin
        self.max_store_attempts = max_store_attempts
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, shop: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(shop, threading.Lock())

    def access_token(self, shop: str) -> str:
        return self.tokens(shop).access_token

    def tokens(self, shop: str) -> Tokens:
        """The shop's tokens, refreshed first when the access token is about to expire.

        Raises :class:`ReauthorizationNeeded` when there are none or they cannot be
        refreshed. A refresh that fails for a transient reason (Shopify unreachable) while
        the current access token has not expired yet returns the current one.
        """
        current = self._load(shop)
        if not current.needs_refresh(self._now(), self.margin):
            return current
        with self._lock(shop):
            current = self._load(shop)  # another thread may have refreshed meanwhile
            if not current.needs_refresh(self._now(), self.margin):
                return current
            return self._refresh(shop, current)

    def _load(self, shop: str) -> Tokens:
        tokens = self.store.load(shop)
        if tokens is None:
            raise ReauthorizationNeeded(f"shopify: no access token stored for {shop}")
        return tokens

    def _refresh(self, shop: str, current: Tokens) -> Tokens:
        if not current.refreshable(self._now()):
            raise ReauthorizationNeeded(f"shopify: the access token of {shop} expired and cannot be refreshed")
        assert current.refresh_token is not None
        try:
            fresh = self.oauth.refresh(shop, current.refresh_token)
        except ReauthorizationNeeded:
            stored = self._load(shop)
            if stored.refresh_token != current.refresh_token:
                return stored  # another process used the refresh token first and stored the result
            raise
        except ProviderUnavailable as exc:
            if current.expires_at is not None and self._now() < current.expires_at:
                log.warning("shopify: refreshing the token of %s failed (%s); its current token is still valid",
                            shop, type(exc).__name__)
                return current
            raise
        if self.store.save_if(shop, current.refresh_token, fresh):
            log.info("shopify: refreshed the access token of %s", shop)
            return fresh
        stored = self._load(shop)  # another process refreshed at the same moment: keep its tokens
        log.info("shopify: another process refreshed the token of %s first; using its tokens", shop)
        return stored

    def exchange(self, shop: str, session_token: str) -> Tokens:
        """Token exchange for ``shop`` and store the result (first page load after an
        install, or after :class:`ReauthorizationNeeded`). The newest token retires older
        ones at Shopify, so it replaces whatever is stored."""
        fresh = self.oauth.exchange_session_token(shop, session_token)
        self.adopt(shop, fresh)
        return fresh

    def adopt(self, shop: str, fresh: Tokens) -> None:
        """Store tokens just obtained by exchange or code grant, replacing what is stored."""
        with self._lock(shop):
            for _ in range(self.max_store_attempts):
                stored = self.store.load(shop)
                if self.store.save_if(shop, None if stored is None else stored.refresh_token, fresh):
                    return
        raise ProviderError(f"shopify: tokens of {shop} kept changing; the new token was not stored")

    def auth(self, shop: str) -> "KeeperAuth":
        """An ``adapters.http.Auth`` sending the shop's current token (for ``HttpClient``)."""
        return KeeperAuth(self, shop)


class KeeperAuth:
    """``X-Shopify-Access-Token`` from a :class:`TokenKeeper`. After a 401 one retry is
    worthwhile only when the store holds another token by then (another process refreshed
    or re-authorized the shop)."""

    header = ACCESS_TOKEN_HEADER

    def __init__(self, keeper: TokenKeeper, shop: str):
        self._keeper = keeper
        self.shop = shop
        self._redactor = Redactor()
        self._sent: str | None = None

    def apply(self, headers: MutableMapping[str, str]) -> None:
        tokens = self._keeper.tokens(self.shop)
        self._redactor.add(tokens.access_token, tokens.refresh_token)
        self._sent = tokens.access_token
        headers[self.header] = tokens.access_token

    def invalidate(self) -> bool:
        stored = self._keeper.store.load(self.shop)
        return stored is not None and stored.access_token != self._sent

    def redact(self, text: str) -> str:
        return self._redactor(text)

    def __repr__(self) -> str:
        return f"KeeperAuth(shop={self.shop!r}, token=***)"


# ---------------------------------------------------------------- authorization-code grant


def new_state() -> str:
    """A fresh, unguessable ``state`` nonce for one authorization request."""
    return _secrets.token_urlsafe(24)


def install_url(shop: str, *, client_id: str, scopes: Iterable[str], redirect_uri: str, state: str) -> str:
    """Where to send the merchant to grant access (§1.2 step 2). ``grant_options[]`` is
    empty: an offline token, as Shopify's Ruby and JS libraries send it."""
    domain = shop_domain(shop)
    if domain is None:
        raise ValueError(f"not a {{shop}}.myshopify.com hostname: {shop!r}")
    if not redirect_uri.startswith("https://"):
        raise ValueError("redirect_uri must be an https URL allowed in the app's configuration")
    if not state:
        raise ValueError("a state nonce is required")
    query = urlencode([
        ("client_id", client_id),
        ("scope", ",".join(scopes)),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("grant_options[]", ""),
    ])
    return f"https://{domain}/admin/oauth/authorize?{query}"


@dataclass(frozen=True)
class OAuthCallback:
    shop: str
    code: str
    host: str | None  # base64 of the admin host, for the redirect into the admin (step 5)


def verify_install_request(params: Mapping[str, str], *, secrets: Sequence[str], now: float) -> str:
    """Check a signed request Shopify sends to the app URL (§1.2 step 1); returns the shop."""
    return _verify_signed_query(params, secrets, now)


def verify_callback(params: Mapping[str, str], *, secrets: Sequence[str], expected_state: str | None,
                    now: float) -> OAuthCallback:
    """Check the OAuth callback (§1.2 step 3): HMAC under the client secret (or the
    previous one), a bare ``*.myshopify.com`` shop, the state nonce we set, a fresh
    timestamp and a code. Raises :class:`InvalidOAuthRequest`."""
    shop = _verify_signed_query(params, secrets, now)
    state = params.get("state")
    if not expected_state or not isinstance(state, str) or not hmac.compare_digest(
            state.encode("utf-8"), expected_state.encode("utf-8")):
        raise InvalidOAuthRequest("OAuth callback state does not match the one this browser was given")
    code = params.get("code")
    if not isinstance(code, str) or not code:
        raise InvalidOAuthRequest("OAuth callback without a code")
    host = params.get("host")
    return OAuthCallback(shop=shop, code=code, host=host if isinstance(host, str) and host else None)


def _verify_signed_query(params: Mapping[str, str], secrets: Sequence[str], now: float) -> str:
    keys = [s for s in secrets if isinstance(s, str) and s]
    if not keys:
        raise ValueError("verifying a signed query needs the client secret")
    if not any(verify_query(params, key) for key in keys):
        raise InvalidOAuthRequest("HMAC of the query does not match")
    shop = params.get("shop")
    domain = shop_domain(shop) if isinstance(shop, str) and shop == shop.strip() else None
    if domain is None:
        raise InvalidOAuthRequest("shop is not a {shop}.myshopify.com hostname")
    stamp = params.get("timestamp")
    if not isinstance(stamp, str) or not stamp.isdigit():
        raise InvalidOAuthRequest("timestamp missing or not an integer")
    if abs(now - int(stamp)) > QUERY_TIMESTAMP_TOLERANCE:
        raise InvalidOAuthRequest(f"timestamp is more than {QUERY_TIMESTAMP_TOLERANCE} s away from now")
    return domain


def admin_app_url(host: str, client_id: str) -> str:
    """Where an embedded app sends the merchant after the grant (§1.2 step 5):
    ``https://{base64-decoded host}/apps/{client_id}/``. ``host`` comes without its base64
    padding; only Shopify admin hosts are accepted."""
    try:
        decoded = base64.b64decode(host + "=" * (-len(host) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidOAuthRequest("host is not base64") from None
    if not (re.fullmatch(r"admin\.shopify\.com/store/[a-z0-9][a-z0-9-]*", decoded)
            or re.fullmatch(r"[a-z0-9][a-z0-9-]*\.myshopify\.com/admin", decoded)):
        raise InvalidOAuthRequest("host is not a Shopify admin")
    return f"https://{decoded}/apps/{client_id}/"
