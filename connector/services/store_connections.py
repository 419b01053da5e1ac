"""Connecting a WooCommerce store from our page, end to end (issue 16 §3).

1. ``start``: the creator gives the store's address, an email and a password for our
   pages. The password is hashed at once; the pending connection (store, email, hash)
   is stored and the creator is sent to the store's wc-auth grant screen with a signed
   one-time ``user_id`` (adapters.woocommerce_connect).
2. ``complete``: WooCommerce POSTs the new keys to our https callback. The ``user_id``
   is redeemed (once), the keys are used on the pending connection's own address only,
   the four order webhooks are created and confirmed, and only then, in ONE transaction,
   the shop (safe defaults, the keys encrypted), the user and the start of order
   reconciliation are saved. Any failure deletes the webhooks created, saves nothing of
   the shop and is answered with a status other than 200, so WooCommerce deletes the key
   it made (woocommerce.md §3); the failure is kept on the pending connection for the
   page the creator returns to.

One generated secret signs all four webhooks of a store: they send the same store's
orders to the same URL, so four secrets would protect nothing more, and one keeps the
shop's single write-only ``webhook_secret`` (encrypted, rotatable, overridable from the
environment) as it is for every other shop.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterable
from urllib.parse import urlencode, urlsplit

from adapters.woocommerce_connect import (
    StoreUrlInvalid,
    UserIdInvalid,
    UserIdSigner,
    WooCommerceWebhooks,
    WooConnectError,
    authorize_url,
    connect_client,
    parse_callback,
    redeem_user_id,
    resolve_addresses,
    start_connection,
    validate_store_url,
)
from connector.config import InvalidShop, Settings
from connector.domain.model import ConnectionOutcome, ConnectionState
from connector.ports import PendingConnections
from connector.services.reconcile import WEBHOOK_PATH
from connector.services.users import UserError, hash_password, normalise_email
from connector.shop_store import ShopConfigStore, ShopExists
from connector.store import Store

log = logging.getLogger("connector.woocommerce_connect")

APP_NAME = "Micro-fulfillment connector"  # what the store's grant screen names
CALLBACK_PATH = "/woocommerce/callback"
RETURN_PATH = "/woocommerce/connected"
DEFAULT_REGION = "everywhere"


class NotConfigured(Exception):
    """This deployment cannot connect stores (no https public URL); the message says why."""


class FormProblems(ValueError):
    """What is wrong with the connect form, by field."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


@dataclass(frozen=True)
class Started:
    connection_id: str
    authorize_url: str


@dataclass(frozen=True)
class CallbackAnswer:
    status: int  # exactly 200 only when everything was saved
    message: str


def starter_document(store_url: str, webhook_secret: str, consumer_key: str, consumer_secret: str) -> dict:
    """A just-connected store's configuration: safe until the creator sets it up. One
    region catching every address, no nodes (so every order line waits for a human, with
    its reason, instead of being sent anywhere), and no availability push (with no nodes
    it would set every product's stock to 0 in the store)."""
    return {
        "platform": "woocommerce",
        "store_url": store_url,
        "webhook_secret": webhook_secret,
        "timezone": "UTC",
        "default_region": DEFAULT_REGION,
        "regions": [{"id": DEFAULT_REGION, "name": "Everywhere", "promise_days": 7}],
        "nodes": [],
        "storefront": {"push": False, "consumer_key": consumer_key, "consumer_secret": consumer_secret},
    }


class StoreConnections:
    def __init__(self, settings: Settings, shop_config, users, shops, clock: Callable[[], datetime],
                 pending: Callable[[Store], PendingConnections], *,
                 resolve: Callable[[str, int], Iterable[str]] = resolve_addresses,
                 sleep: Callable[[float], None] | None = None, monotonic: Callable[[], float] | None = None):
        """``pending``: a store -> its PendingConnections. ``resolve``/``sleep``/``monotonic``
        reach the store's REST client (tests pass their own)."""
        self.settings = settings
        self.shop_config = shop_config
        self.users = users
        self.shops = shops
        self.clock = clock
        self.pending = pending
        self.resolve = resolve
        self.http_timing = {k: v for k, v in (("sleep", sleep), ("monotonic", monotonic)) if v is not None}

    # ------------------------------------------------------------ our addresses

    def public_url(self) -> str:
        """``[web] public_url`` without a trailing slash; NotConfigured unless it is https
        (wc-auth refuses a callback over plain http, woocommerce.md §3)."""
        url = (self.settings.web.public_url or "").strip().rstrip("/")
        if not url:
            raise NotConfigured("Connecting a WooCommerce store is not set up on this service yet: its operator "
                                "must set [web] public_url to the service's public https:// address.")
        parts = urlsplit(url)
        if parts.scheme.lower() != "https" or not parts.netloc:
            raise NotConfigured("Connecting a WooCommerce store needs this service on https: its operator must set "
                                "[web] public_url to an https:// address (WooCommerce sends the keys only over https).")
        return url

    def _signer(self) -> UserIdSigner:
        return UserIdSigner(self.settings.web_secret_key)

    # ------------------------------------------------------------ 1. the form

    def start(self, store: Store, store_url: str, email: str, password: str) -> Started:
        """Check the form, store the pending connection (the password only as its hash) and
        return where to send the creator. FormProblems (every field's) or NotConfigured."""
        public = self.public_url()
        problems = self.users.account_problems(store, email, password)
        try:
            url = validate_store_url(store_url)
        except StoreUrlInvalid as exc:
            problems["store_url"] = _sentence(str(exc))
        else:
            if self.shops.by_domain(url) is not None:
                problems["store_url"] = "This store is connected already: sign in with the email you gave then."
        if problems:
            raise FormProblems({k: _sentence(v) for k, v in problems.items()})
        connection_id = secrets.token_urlsafe(16)
        user_id = start_connection(self.pending(store), self._signer(), connection_id=connection_id, store_url=url,
                                   now=self.clock(), email=normalise_email(email),
                                   password_hash=hash_password(password))
        target = authorize_url(url, app_name=APP_NAME, user_id=user_id,
                               return_url=f"{public}{RETURN_PATH}?" + urlencode({"c": connection_id}),
                               callback_url=f"{public}{CALLBACK_PATH}")
        return Started(connection_id, target)

    def state(self, store: Store, connection_id: str) -> ConnectionState | None:
        return self.pending(store).state(connection_id)

    # ------------------------------------------------------------ 2. the callback

    def complete(self, store: Store, body: bytes) -> CallbackAnswer:
        try:
            delivery_url = self.public_url() + WEBHOOK_PATH
        except NotConfigured as exc:  # the user_id stays unspent
            return CallbackAnswer(503, str(exc))
        pending_connections = self.pending(store)
        try:
            pending = redeem_user_id(pending_connections, self._signer(), _user_id_of(body), self.clock())
        except UserIdInvalid as exc:
            return CallbackAnswer(403, str(exc))
        try:
            keys = parse_callback(body)
        except WooConnectError as exc:
            return self._failed(pending_connections, pending.connection_id, exc.kind, str(exc), 400)
        webhooks = setup = None
        try:
            secret = secrets.token_urlsafe(32)  # URL-safe: WooCommerce's entity decoding leaves it as it is
            webhooks = WooCommerceWebhooks(
                connect_client(pending.store_url, keys, resolve=self.resolve, **self.http_timing), app_name=APP_NAME,
                new_secret=lambda: secret)
            setup = webhooks.ensure_order_webhooks(delivery_url)
            shop_id = self._save(store, pending, keys, secret, len(setup.webhooks))
        except WooConnectError as exc:
            return self._failed(pending_connections, pending.connection_id, exc.kind, _with_leftovers(exc), 502)
        except Exception as exc:  # noqa: BLE001 - whatever stopped the save, the webhooks go and nothing stays
            left = webhooks.rollback(setup) if webhooks is not None and setup is not None else []
            message = _save_failure(exc)
            if left:
                message += " " + _leftover_sentence(left)
            return self._failed(pending_connections, pending.connection_id, "save", message,
                                409 if isinstance(exc, (InvalidShop, ShopExists, UserError)) else 503)
        self.shops.refresh()  # this process serves the new shop at once; others within 2 s
        log.info("woocommerce store %s connected as shop %s", pending.store_url, shop_id)
        return CallbackAnswer(200, f"connected as shop {shop_id}")

    def _save(self, store: Store, pending, keys, secret: str, webhook_count: int) -> str:
        """The shop, its user, reconciliation's start and the outcome: one transaction."""
        lookback = self.settings.scheduler.reconcile_first_lookback_hours
        with store.write():
            shop_id = self._free_shop_id(store, pending.store_url)
            self.shop_config.create(store, shop_id, starter_document(pending.store_url, secret, keys.consumer_key,
                                                                     keys.consumer_secret),
                                    f"woocommerce-connect:{pending.email}")
            self.users.add_hashed(store, pending.email, pending.password_hash, shop_id)
            # Reconciliation reads orders changed since this moment (the scheduler's next run
            # finds the shop through the directory); nothing older is imported.
            store.advance_order_poll(shop_id, self.clock() - timedelta(hours=lookback))
            store.event(shop_id, "woocommerce.connected", shop_id,
                        {"store_url": pending.store_url, "key_id": keys.key_id, "webhooks": webhook_count},
                        self.clock())
            self.pending(store).finish(pending.connection_id, ConnectionOutcome(
                True, "connected", "connected", shop_id, webhook_count))
        return shop_id

    def _failed(self, pending_connections: PendingConnections, connection_id: str, kind: str, message: str,
                status: int) -> CallbackAnswer:
        try:
            pending_connections.finish(connection_id, ConnectionOutcome(False, kind, message))
        except sqlite3.Error:
            log.exception("could not record the failure of WooCommerce connection %s", connection_id)
        log.warning("woocommerce connection %s failed (%s): %s", connection_id, kind, message)
        return CallbackAnswer(status, message)

    @staticmethod
    def _free_shop_id(store: Store, store_url: str) -> str:
        parts = urlsplit(store_url)
        base = re.sub(r"[^a-z0-9]+", "-", f"{parts.hostname or ''}{parts.path}".lower()).strip("-")[:56] or "store"
        configs, shop_id, n = ShopConfigStore(store), base, 1
        while configs.get(shop_id) is not None:
            n += 1
            shop_id = f"{base}-{n}"
        return shop_id


def _user_id_of(body: bytes) -> object:
    try:
        data = json.loads(body[:8192])
    except (ValueError, UnicodeDecodeError):
        return None
    return data.get("user_id") if isinstance(data, dict) else None


def _with_leftovers(exc: WooConnectError) -> str:
    return str(exc) + (" " + _leftover_sentence(exc.left_on_store) if exc.left_on_store else "")


def _leftover_sentence(left) -> str:
    ids = ", ".join(f"#{webhook_id}" for webhook_id, _ in left)
    return (f"Webhooks {ids} could not be deleted from the store: delete them in WooCommerce > Settings > "
            "Advanced > Webhooks.")


def _save_failure(exc: Exception) -> str:
    if isinstance(exc, UserError):
        return f"the account could not be created: {exc}; start again with another email"
    if isinstance(exc, InvalidShop):
        return "the store could not be saved: " + "; ".join(str(p) for p in exc.problems)
    if isinstance(exc, ShopExists):
        return f"the store could not be saved: {exc}"
    log.error("saving a connected WooCommerce store failed: %s: %s", type(exc).__name__, exc)
    return "the connection could not be saved (the service was busy or failed); nothing was kept: start again"


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."
