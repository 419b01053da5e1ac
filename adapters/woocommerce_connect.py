"""Connecting a WooCommerce store: the address a creator types, wc-auth, and our order webhooks.

Facts: /work/shared/reference/woocommerce.md §3 (``/wc-auth/v1/authorize``, the callback),
§1.3 (the ping), §1.6 (delivery URLs WordPress accepts), §1.7 (webhooks over REST);
app-ui.md §4 (the plain-permalink form of the authorize URL).

The flow this module serves (the page and the storage come from the caller):

1. ``validate_store_url`` turns what the creator typed into ``https://host[/path]``.
2. ``start_connection`` records a ``PendingConnection`` and returns a signed one-time
   ``user_id``; ``authorize_url`` sends the creator to the store's grant screen with it.
3. WooCommerce POSTs the new keys to our https callback, unsigned. ``parse_callback``
   checks the body and ``redeem_user_id`` the ``user_id``: our signature, not expired,
   and taken from ``PendingConnections`` exactly once. The keys are then only ever used
   on the pending connection's own ``store_url``, never on an address from the callback.
4. ``connect_client`` builds the REST client (https only, a host that resolves to a
   public address), and ``WooCommerceWebhooks.ensure_order_webhooks`` creates (or adopts)
   the four order webhooks with a generated secret each and confirms them; anything it
   created is deleted again when a step fails, and ``rollback`` does the same for a
   step the caller takes afterwards (saving the connection), so nothing is half-saved.

Every failure a creator can meet is a ``WooConnectError`` whose message says what to
do; none carries a key or a secret (the REST client redacts what a server echoes).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, Iterable, Mapping
from urllib.parse import urlencode, urlsplit

from adapters.http import HttpClient
from adapters.woocommerce import TOPICS
from adapters.woocommerce_orders import WooCommerceOrders, store_webhook
from adapters.woocommerce_stock import rest_client
from connector.config import normalise_store_url
from connector.domain.model import (
    PayloadError,
    PendingConnection,
    ProviderAuthError,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderUnavailable,
    StoreWebhook,
)
from connector.ports import PendingConnections

SCOPE = "read_write"  # a ``write`` key cannot GET and a ``read`` key cannot create webhooks (§3)
ORDER_TOPICS = tuple(sorted(TOPICS))
# Ports wp_http_validate_url lets a delivery go to by default (§1.6; 80 is plain http only).
DELIVERY_PORTS = frozenset({443, 8080})
USER_ID_TTL = timedelta(minutes=30)  # time to log in to WordPress and press "Approve"
_MAX_CALLBACK_BYTES = 8192
_CONNECTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
# consumer keys are "ck_" / "cs_" + wc_rand_hash() (40 hex digits); a little slack for other versions
_CONSUMER_KEY = re.compile(r"ck_[A-Za-z0-9]{32,128}")
_CONSUMER_SECRET = re.compile(r"cs_[A-Za-z0-9]{32,128}")
# Where a creator pasting an admin or API address meant the site itself.
_WORDPRESS_PATHS = re.compile(r"/(wp-admin|wp-login\.php|wp-json|wc-auth|index\.php)(/.*)?$", re.IGNORECASE)
# Names that never reach a public server.
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan")


# ---------------------------------------------------------------- errors


class WooConnectError(Exception):
    """A step of connecting a store failed; the message is for the creator. ``kind`` names
    the class of failure for a page to branch on."""

    kind = "error"
    # (webhook id, why) of webhooks created on the way that could not be deleted again
    left_on_store: tuple[tuple[str, str], ...] = ()


class StoreUrlInvalid(WooConnectError, ValueError):
    kind = "store_url"


class StoreUnreachable(WooConnectError):
    kind = "unreachable"


class KeysRefused(WooConnectError):
    kind = "keys_refused"


class WebhooksRefused(WooConnectError):
    kind = "webhooks_refused"


class CallbackInvalid(WooConnectError, ValueError):
    kind = "callback"


class UserIdInvalid(WooConnectError):
    kind = "user_id"


# ---------------------------------------------------------------- addresses


def validate_store_url(text: str, *, allow_private: bool = False) -> str:
    """The store address a creator typed as ``https://host[:port][/path]``, normalised as
    WooCommerce's ``X-WC-Webhook-Source`` is compared (``normalise_store_url``).

    ``shop.example.com`` gets ``https://``; ``http://`` is refused (over plain http
    WooCommerce takes keys only with OAuth 1.0a, and we never send them in the clear);
    a query or fragment is dropped, and so is an admin or API path pasted from the
    browser (``/wp-admin/...``, ``/wp-json/...``), while a WordPress installed in a
    sub-directory keeps it. Loopback, private and link-local addresses and local names
    are refused unless ``allow_private`` (tests and the sandbox). Raises ``StoreUrlInvalid``.
    """
    text = (text or "").strip()
    if not text:
        raise StoreUrlInvalid("enter your store's address, e.g. https://shop.example.com")
    if len(text) > 2000:
        raise StoreUrlInvalid("that store address is too long")
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        text = "https://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "http":
        raise StoreUrlInvalid("the store must be served over https:// (WooCommerce API keys are never sent over "
                              "plain http); switch the site to https and enter its https:// address")
    if scheme != "https":
        raise StoreUrlInvalid(f"the store address must start with https://, not {scheme}://")
    host, port = _host_and_port(parts, StoreUrlInvalid, "store address")
    _check_host(host, allow_private, StoreUrlInvalid, "the store")
    path = _WORDPRESS_PATHS.sub("", parts.path)
    if re.search(r"[\s\\]", path):
        raise StoreUrlInvalid("the store address has spaces or backslashes in its path")
    netloc = _netloc(host, port)
    return normalise_store_url(f"https://{netloc}{path}")


def check_delivery_url(url: str, *, allow_private: bool = False) -> str:
    """Our webhook endpoint as WordPress will accept it for deliveries (§1.6): https, a
    public host, port 443 or 8080. Checked before any webhook is created, because the
    REST API accepts such a URL and the store then silently fails every delivery."""
    parts = urlsplit((url or "").strip())
    if parts.scheme.lower() != "https":
        raise WebhooksRefused(f"the webhook delivery URL must be https://, got {url!r}")
    host, port = _host_and_port(parts, WebhooksRefused, "webhook delivery URL")
    if (port or 443) not in DELIVERY_PORTS and not allow_private:
        raise WebhooksRefused(f"WordPress delivers webhooks only to ports 443 and 8080 (and 80 over http), "
                              f"not {port}: serve this service's webhooks on 443")
    _check_host(host, allow_private, WebhooksRefused, "the webhook delivery URL")
    return normalise_store_url(url)


def _host_and_port(parts, error: type[WooConnectError], what: str) -> tuple[str, int | None]:
    if "@" in parts.netloc:
        raise error(f"the {what} must not contain a user name or password")
    try:
        port = parts.port
    except ValueError:
        raise error(f"the {what} has an invalid port") from None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise error(f"the {what} has no host name")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise error(f"the {what}'s host name {host[:80]!r} is not valid") from None
    if not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f:.]+", host):
        raise error(f"the {what}'s host name {host[:80]!r} is not valid")
    return host, port


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port in (None, 443) else f"{shown}:{port}"


def _check_host(host: str, allow_private: bool, error: type[WooConnectError], what: str) -> None:
    if allow_private:
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if not address.is_global:
            raise error(f"{what} is at a private or local address ({host}); enter its public https:// address")
        return
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host:
        raise error(f"{what} ({host}) is not a public host name; enter its public https:// address")


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``socket.getaddrinfo``)."""
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def check_public_address(store_url: str, *, resolve: Callable[[str, int], Iterable[str]] = resolve_addresses) -> None:
    """Refuse a store whose host name resolves to a loopback, private or link-local
    address: the callback is unsigned, so anyone can start a connection to any address
    and have this server send requests there. Raises ``StoreUnreachable`` for an unknown
    host and ``StoreUrlInvalid`` for a private one."""
    parts = urlsplit(store_url)
    host = parts.hostname or ""
    try:
        addresses = list(resolve(host, parts.port or 443))
    except (OSError, UnicodeError):
        addresses = []
    if not addresses:
        raise StoreUnreachable(f"could not find {host}: check the store's address")
    for text in addresses:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise StoreUnreachable(f"{host} resolved to something that is not an address") from None
        if not address.is_global:
            raise StoreUrlInvalid(f"{host} resolves to a private or local address ({address}); "
                                  "enter the store's public https:// address")


# ---------------------------------------------------------------- wc-auth


def authorize_url(store_url: str, *, app_name: str, user_id: str, return_url: str, callback_url: str,
                  plain_permalinks: bool = False) -> str:
    """The store's grant screen: ``{store}/wc-auth/v1/authorize?app_name&scope=read_write
    &user_id&return_url&callback_url`` (§3), every value URL-encoded. ``plain_permalinks``
    gives ``{store}/?wc-auth-version=1&wc-auth-route=authorize&...``, which a store whose
    permalinks are "Plain" (no rewrite rules) answers instead (app-ui.md §4).
    WooCommerce refuses a ``callback_url`` that is not https, so that is refused here first."""
    if not app_name.strip():
        raise ValueError("app_name must not be empty")
    if not callback_url.lower().startswith("https://"):
        raise ValueError(f"wc-auth requires an https:// callback_url, got {callback_url!r}")
    if urlsplit(return_url).scheme.lower() not in ("http", "https") or not urlsplit(return_url).netloc:
        raise ValueError(f"return_url must be an absolute URL, got {return_url!r}")
    params = {"app_name": app_name, "scope": SCOPE, "user_id": user_id, "return_url": return_url,
              "callback_url": callback_url}
    base = store_url.rstrip("/")
    if plain_permalinks:
        return f"{base}/?" + urlencode({"wc-auth-version": "1", "wc-auth-route": "authorize", **params})
    return f"{base}/wc-auth/v1/authorize?" + urlencode(params)


@dataclass(frozen=True)
class UserIdClaims:
    nonce: str
    connection_id: str
    expires_at: datetime


class UserIdSigner:
    """The ``user_id`` we hand to wc-auth: ``<nonce>.<connection id>.<expiry>.<signature>``,
    the signature an HMAC-SHA256 with the server's secret over the rest. It comes back in
    the unsigned callback and in the return URL; only this server can make one, and it
    says which pending connection the keys belong to."""

    _DOMAIN = b"micro-fulfillment-connector wc-auth user_id v1\n"

    def __init__(self, secret: bytes | str):
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(key) < 32:
            raise ValueError("the user_id signing secret must be at least 32 bytes")
        self._key = key

    def issue(self, connection_id: str, now: datetime, ttl: timedelta = USER_ID_TTL) -> tuple[str, UserIdClaims]:
        if not _CONNECTION_ID.fullmatch(connection_id):
            raise ValueError(f"connection id must be 1-64 letters, digits, '-' or '_', got {connection_id!r}")
        claims = UserIdClaims(secrets.token_urlsafe(24), connection_id, _whole_second(now + ttl))
        payload = f"{claims.nonce}.{connection_id}.{int(claims.expires_at.timestamp())}"
        return f"{payload}.{self._sign(payload)}", claims

    def verify(self, token: object, now: datetime) -> UserIdClaims:
        """The claims of a ``user_id`` this signer issued that has not expired, else
        ``UserIdInvalid`` (the signature is checked first, in constant time)."""
        parts = token.split(".") if isinstance(token, str) and len(token) <= 256 else []
        if len(parts) != 4:
            raise UserIdInvalid("this connection link is not valid: start connecting again")
        nonce, connection_id, expires, signature = parts
        expected = self._sign(f"{nonce}.{connection_id}.{expires}").encode("ascii")
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise UserIdInvalid("this connection link is not valid: start connecting again")
        if not (_NONCE.fullmatch(nonce) and _CONNECTION_ID.fullmatch(connection_id) and expires.isdigit()):
            raise UserIdInvalid("this connection link is not valid: start connecting again")
        expires_at = datetime.fromtimestamp(int(expires), tz=now.tzinfo)
        if now >= expires_at:
            raise UserIdInvalid("this connection link has expired: start connecting again")
        return UserIdClaims(nonce, connection_id, expires_at)

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, self._DOMAIN + payload.encode("utf-8", "replace"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _whole_second(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.replace(microsecond=0)


def start_connection(pending: PendingConnections, signer: UserIdSigner, *, connection_id: str, store_url: str,
                     now: datetime, ttl: timedelta = USER_ID_TTL, email: str = "", password_hash: str = "") -> str:
    """Record a pending connection to ``store_url`` (already validated), with the account
    to create when it completes, and return the one-time ``user_id`` to send to wc-auth."""
    token, claims = signer.issue(connection_id, now, ttl)
    pending.create(PendingConnection(claims.nonce, connection_id, store_url, claims.expires_at, email, password_hash))
    return token


def redeem_user_id(pending: PendingConnections, signer: UserIdSigner, user_id: object,
                   now: datetime) -> PendingConnection:
    """The pending connection a callback's ``user_id`` stands for, taken so that it
    cannot be used again. ``UserIdInvalid`` for a forged, expired or replayed one."""
    claims = signer.verify(user_id, now)
    taken = pending.take(claims.nonce)
    if taken is None:
        raise UserIdInvalid("this connection was already completed (or never started): start connecting again")
    if taken.connection_id != claims.connection_id or now >= taken.expires_at:
        raise UserIdInvalid("this connection link has expired: start connecting again")
    return taken


@dataclass(frozen=True)
class WooKeys:
    """What wc-auth POSTs to the callback (§3, ``WC_Auth::create_keys``)."""

    key_id: int
    user_id: str
    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)
    key_permissions: str


def parse_callback(body: bytes | str) -> WooKeys:
    """The wc-auth callback's JSON body, checked: ``key_id`` a positive integer,
    ``user_id`` text, a ``ck_``/``cs_`` key pair, and ``key_permissions`` exactly
    ``read_write`` (a ``read`` key cannot create webhooks and a ``write`` key cannot
    read orders). Raises ``CallbackInvalid`` naming the field, never quoting a key, and
    ``KeysRefused`` for other permissions. The callback should answer any error with a
    status other than 200: WooCommerce then deletes the key it has just made (§3)."""
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
    if len(raw) > _MAX_CALLBACK_BYTES:
        raise CallbackInvalid("the callback body is too large")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CallbackInvalid("the callback body is not JSON") from None
    if not isinstance(data, dict):
        raise CallbackInvalid("the callback body is not a JSON object")
    key_id = data.get("key_id")
    if isinstance(key_id, str) and key_id.isdigit():
        key_id = int(key_id)
    if isinstance(key_id, bool) or not isinstance(key_id, int) or key_id <= 0:
        raise CallbackInvalid("key_id: expected a positive integer")
    user_id = data.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        raise CallbackInvalid("user_id: missing")
    for name, pattern in (("consumer_key", _CONSUMER_KEY), ("consumer_secret", _CONSUMER_SECRET)):
        value = data.get(name)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise CallbackInvalid(f"{name}: missing or not a WooCommerce {name.replace('_', ' ')}")
    permissions = data.get("key_permissions")
    if permissions != SCOPE:
        shown = permissions if isinstance(permissions, str) and len(permissions) <= 20 else "?"
        raise KeysRefused(f"the store granted {shown!r} access, but connecting needs read_write (to read orders "
                          "and create webhooks): connect again and approve read/write access")
    return WooKeys(key_id, user_id, data["consumer_key"], data["consumer_secret"], permissions)


# ---------------------------------------------------------------- webhooks over REST


def connect_client(store_url: str, keys: WooKeys, *, allow_private: bool = False,
                   resolve: Callable[[str, int], Iterable[str]] = resolve_addresses,
                   sleep: Callable[[float], None] = time.sleep,
                   monotonic: Callable[[], float] = time.monotonic) -> HttpClient:
    """The REST client for a store being connected (``woocommerce_stock.rest_client``:
    https only, the keys as Basic auth and registered with its redactor), after checking
    the address again and, unless ``allow_private``, that its host resolves to public
    addresses only."""
    store_url = validate_store_url(store_url, allow_private=allow_private)
    if not allow_private:
        check_public_address(store_url, resolve=resolve)
    return rest_client(store_url, keys.consumer_key, keys.consumer_secret, sleep=sleep, monotonic=monotonic)


@dataclass(frozen=True)
class OrderWebhook:
    webhook_id: str
    topic: str
    delivery_url: str
    secret: str = field(repr=False)
    created: bool  # by this run (rollback deletes it); False: one of ours the store already had


@dataclass(frozen=True)
class WebhookSetup:
    webhooks: tuple[OrderWebhook, ...]

    @property
    def created(self) -> tuple[str, ...]:
        return tuple(hook.webhook_id for hook in self.webhooks if hook.created)

    def secrets(self) -> dict[str, str]:
        """Webhook id -> the secret it signs deliveries with."""
        return {hook.webhook_id: hook.secret for hook in self.webhooks}


class WooCommerceWebhooks:
    """Our four order webhooks on one store, over ``/wp-json/wc/v3/webhooks`` (§1.7)."""

    def __init__(self, client: HttpClient, *, app_name: str = "Micro-fulfillment connector",
                 allow_private: bool = False, new_secret: Callable[[], str] = lambda: secrets.token_urlsafe(32)):
        """``new_secret``: URL-safe base64 has no ``&``, so WooCommerce's HTML-entity decoding
        of the secret (§7.6) leaves it as it is."""
        self.client = client
        self.app_name = app_name
        self.allow_private = allow_private
        self._new_secret = new_secret
        self._listing = WooCommerceOrders(client=client)

    def ensure_order_webhooks(self, delivery_url: str, *,
                              known_secrets: Mapping[str, str] | None = None) -> WebhookSetup:
        """One active webhook per order topic delivering to ``delivery_url``, confirmed by
        reading each back. The store's webhooks are listed first and one of ours found
        there is kept (its secret in ``known_secrets``: nothing sent) or given a new secret
        and re-activated with an idempotent PUT; only a missing topic is created, and
        that POST is never repeated blindly: an unknown outcome is looked up in the list.
        When any step fails, the webhooks this call created are deleted before the error
        is raised (any that could not be are in its ``left_on_store``)."""
        delivery_url = check_delivery_url(delivery_url, allow_private=self.allow_private)
        known = dict(known_secrets or {})
        existing = self._call("list the store's webhooks", self._listing.webhooks)
        done: list[OrderWebhook] = []
        try:
            for topic in ORDER_TOPICS:
                done.append(self._ensure(topic, delivery_url, existing, known))
            setup = WebhookSetup(tuple(done))
            self.confirm(setup)
        except Exception as exc:
            left = self.rollback(WebhookSetup(tuple(done)))
            if left and isinstance(exc, WooConnectError):
                exc.left_on_store = tuple(left)
            raise
        return setup

    def confirm(self, setup: WebhookSetup) -> None:
        """Read each webhook back: it must exist, be active and send its topic to its URL."""
        for hook in setup.webhooks:
            seen = self._read(f"/webhooks/{hook.webhook_id}", "GET", f"read back webhook #{hook.webhook_id}")
            problems = []
            if seen.status != "active":
                problems.append(f"its status is {seen.status!r}, not active")
            if seen.topic != hook.topic:
                problems.append(f"it sends {seen.topic!r}")
            if not _same_url(seen.delivery_url, hook.delivery_url):
                problems.append(f"it delivers to {seen.delivery_url!r}")
            if problems:
                raise WebhooksRefused(f"the store did not keep webhook #{hook.webhook_id} for {hook.topic}: "
                                      + "; ".join(problems))

    def rollback(self, setup: WebhookSetup) -> list[tuple[str, str]]:
        """Delete every webhook ``setup`` created (``force=true``: webhooks have no trash);
        one already gone counts as deleted. Never raises: it runs while another error is
        on its way; returns (webhook id, why) for each it could not delete."""
        failed = []
        for webhook_id in setup.created:
            try:
                self.client.request("DELETE", f"/webhooks/{webhook_id}", params={"force": "true"})
            except ProviderRejected as exc:
                if getattr(exc, "status", None) != 404:
                    failed.append((webhook_id, str(exc)))
            except ProviderError as exc:
                failed.append((webhook_id, str(exc)))
        return failed

    # ------------------------------------------------------------ steps

    def _ensure(self, topic: str, delivery_url: str, existing: Iterable[StoreWebhook],
                known: Mapping[str, str]) -> OrderWebhook:
        ours = sorted((h for h in existing if h.topic == topic and _same_url(h.delivery_url, delivery_url)),
                      key=lambda h: (h.webhook_id not in known, int(h.webhook_id)))
        if ours:
            hook = ours[0]
            if hook.webhook_id in known:
                if hook.status != "active":
                    self._put(hook.webhook_id, {"status": "active"})
                return OrderWebhook(hook.webhook_id, topic, delivery_url, known[hook.webhook_id], created=False)
            secret = self._generate_secret()
            self._put(hook.webhook_id, {"status": "active", "secret": secret})
            return OrderWebhook(hook.webhook_id, topic, delivery_url, secret, created=False)
        secret = self._generate_secret()
        body = {"name": f"{self.app_name}: {topic}", "topic": topic, "delivery_url": delivery_url,
                "secret": secret, "status": "active"}
        try:
            created = self._read("/webhooks", "POST", f"create the {topic} webhook", json_body=body)
        except StoreUnreachable as unknown:
            if not isinstance(unknown.__cause__, ProviderOutcomeUnknown):
                raise
            # The POST may have been carried out: look before anything is sent again.
            before = {h.webhook_id for h in existing}
            found = [h for h in self._call("list the store's webhooks", self._listing.webhooks)
                     if h.webhook_id not in before and h.topic == topic and _same_url(h.delivery_url, delivery_url)]
            if not found:
                raise
            created = min(found, key=lambda h: int(h.webhook_id))
        return OrderWebhook(created.webhook_id, topic, delivery_url, secret, created=True)

    def _generate_secret(self) -> str:
        secret = self._new_secret()
        self.client.redactor.add(secret)  # sent in a body a failing store may echo back
        return secret

    def _put(self, webhook_id: str, body: Mapping[str, str]) -> None:
        self._read(f"/webhooks/{webhook_id}", "PUT", f"update webhook #{webhook_id}", json_body=body)

    def _read(self, path: str, method: str, what: str, *, json_body: object = None) -> StoreWebhook:
        def send() -> object:
            resp = self.client.request(method, path, json=json_body, retry=False if method == "POST" else None)
            return self.client.decode_json(resp)

        answer = self._call(what, send)
        try:
            return store_webhook(answer, 0)
        except PayloadError as exc:
            raise WebhooksRefused(f"could not {what}: the store's answer is not a webhook ({exc})") from None

    def _call(self, what: str, step: Callable[[], object]):
        """``step()``, its ``ProviderError`` told as the creator's kind of failure."""
        try:
            return step()
        except ProviderAuthError as exc:
            raise KeysRefused(f"the store refused our API key when we tried to {what} "
                              f"(HTTP {getattr(exc, 'status', '?')}): {_store_says(exc)}. Connect again and "
                              "approve read/write access as a user who can manage WooCommerce") from exc
        except ProviderUnavailable as exc:
            raise StoreUnreachable(f"could not reach the store to {what}: {_store_says(exc)}") from exc
        except ProviderRejected as exc:
            status = getattr(exc, "status", None)
            if status == 404 and what.startswith("list"):
                raise StoreUnreachable("the store answered, but has no WooCommerce REST API at /wp-json/wc/v3: "
                                       "check the address (the WordPress site's home page), that WooCommerce "
                                       "is active and that permalinks are not 'Plain'") from exc
            raise WebhooksRefused(f"the store refused to {what} (HTTP {status}): {_store_says(exc)}") from exc
        except ProviderError as exc:
            status = getattr(exc, "status", None)
            if status is not None and 300 <= status < 400:
                raise StoreUnreachable(f"the store redirected us (HTTP {status}) when we tried to {what}: enter "
                                       "its exact address, as the browser shows it on the home page") from exc
            raise StoreUnreachable(f"the store's answer made no sense when we tried to {what}: "
                                   f"{_store_says(exc)}") from exc


def _store_says(exc: ProviderError) -> str:
    """WooCommerce's own error message when the body is its ``{"code", "message"}``
    error object, else the (redacted) client error."""
    excerpt = getattr(exc, "body_excerpt", None) or ""
    try:
        body = json.loads(excerpt)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        code = body.get("code")
        return f"{body['message'][:200]}" + (f" ({code})" if isinstance(code, str) else "")
    return str(exc)


def _same_url(a: str, b: str) -> bool:
    return normalise_store_url(a) == normalise_store_url(b)
