"""Setup status: is the store connected, are its order webhooks healthy, is each 3PL
syncing, and where to fix each one that is not.

Pure: the caller reads the facts (tokens, webhook read-backs, sync state) and passes them
in with the time; each check says what it found in plain words and where to fix it.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Mapping, Sequence

from connector.domain.health import age_text
from connector.domain.model import NodeStatus


class CheckState(str, enum.Enum):
    OK = "ok"
    PROBLEM = "problem"
    WAITING = "waiting"  # nothing known yet (never synced, never checked): not wrong, not proven


@dataclass(frozen=True)
class Fix:
    """Where the creator fixes a check: a page of this app (endpoint + URL values)."""

    label: str
    endpoint: str
    args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SetupCheck:
    key: str  # "store", "nodes", "webhooks", "3pl:<provider id>", "3pl"
    title: str
    state: CheckState
    summary: str  # one line: what was found
    details: tuple[str, ...] = ()  # each problem found, in the provider's or store's words
    fix: Fix | None = None
    # The "needs you" kinds (connector.domain.attention) that list this same trouble with its
    # action: while one of them is listed, this check is not counted a second time.
    covered_by: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return self.state is not CheckState.PROBLEM


# -------------------------------------------------------------------- the store


def shopify_store_check(domain: str | None, *, granted_scopes: frozenset[str] | None, missing_scopes: Sequence[str],
                        configured_token: bool, install: Fix | None, config_hint: str) -> SetupCheck:
    """``granted_scopes``: the app's stored token's scopes (None: no token stored);
    ``missing_scopes``: the required ones it lacks; ``configured_token``: an Admin API token
    in the shop's configuration; ``install``: where the app's install starts, if this service
    is set up as the app; ``config_hint``: where a token goes in the configuration instead."""
    store = domain or "your store"
    if granted_scopes is not None and not missing_scopes:
        return SetupCheck("store", "Store connected", CheckState.OK, f"Connected to {store} through the app.")
    if granted_scopes is not None:
        return SetupCheck(
            "store", "Store connected", CheckState.PROBLEM,
            f"The app lacks access it needs at {store}: {', '.join(missing_scopes)}.",
            ("Until it is granted, stock and routing decisions may not reach the store.",),
            install and Fix("Grant the access", install.endpoint, install.args))
    if configured_token:
        return SetupCheck("store", "Store connected", CheckState.OK,
                          f"Connected to {store} with the Admin API token of this shop's configuration.")
    return SetupCheck(
        "store", "Store connected", CheckState.PROBLEM,
        f"Not connected: orders from {store} arrive, but this service cannot reach its Admin API.",
        ("Without access it cannot publish stock per location or read the store's locations.",
         *(() if install else (config_hint,))), install)


def woocommerce_store_check(store_url: str | None, *, has_keys: bool, config_hint: str) -> SetupCheck:
    store = store_url or "your store"
    if has_keys:
        return SetupCheck("store", "Store connected", CheckState.OK, f"Connected to {store} with its REST API keys.")
    return SetupCheck(
        "store", "Store connected", CheckState.PROBLEM,
        f"No REST API keys for {store}: orders arrive, but missed ones cannot be read back and stock is not "
        "published.", (config_hint,))


# -------------------------------------------------------------------- nodes


def nodes_check(statuses: Sequence[NodeStatus], *, add: Fix) -> SetupCheck:
    """The shop's nodes as configured (``statuses``: each node's); ``add``: where one is added."""
    if not statuses:
        return SetupCheck("nodes", "Nodes", CheckState.PROBLEM,
                          "No node routes orders yet: every order waits in the exceptions until you add one.", (), add)
    resting = [status.value for status in statuses if status in (NodeStatus.PAUSED, NodeStatus.OFFLINE)]
    taking = len(statuses) - len(resting)
    summary = f"{taking} node{'s take' if taking != 1 else ' takes'} orders"
    if resting:
        summary += " (" + ", ".join(f"{resting.count(s)} {s}" for s in sorted(set(resting))) + ")"
    if not taking:
        return SetupCheck("nodes", "Nodes", CheckState.PROBLEM, summary + ": orders wait in the exceptions.", (),
                          Fix("See the nodes", "settings.nodes"))
    return SetupCheck("nodes", "Nodes", CheckState.OK, summary + ".")


# -------------------------------------------------------------------- order webhooks

WEBHOOK_KINDS = frozenset({"webhook_disabled", "webhooks_failed", "reconcile_failing"})


def webhooks_check(platform: str, *, problems: Sequence[str], checked_at: datetime | None,
                   reconcile_error: str | None, failed_deliveries: int, now: datetime) -> SetupCheck:
    """WooCommerce's webhooks are read back with its orders (``problems``: what that found
    wrong); Shopify's are the app's own subscriptions, so only failed deliveries show there."""
    details = list(problems)
    if reconcile_error:
        details.append(f"The last read-back of orders failed: {reconcile_error}")
    if failed_deliveries:
        details.append(f"{failed_deliveries} order update{'s' if failed_deliveries != 1 else ''} arrived but could "
                       "not be applied.")
    fix = Fix("See the webhooks", "settings.status")
    if details:
        summary = (f"{len(details)} problem{'s' if len(details) != 1 else ''} with the order updates from your store.")
        return SetupCheck("webhooks", "Order webhooks", CheckState.PROBLEM, summary, tuple(details), fix, WEBHOOK_KINDS)
    if platform == "woocommerce" and checked_at is None:
        return SetupCheck("webhooks", "Order webhooks", CheckState.WAITING,
                          "Not checked yet: the first read-back of your store's orders checks them.", (), fix)
    if platform == "woocommerce":
        return SetupCheck("webhooks", "Order webhooks", CheckState.OK,
                          f"Healthy: all four are active and point here (checked {age_text(now - checked_at)} ago).")
    return SetupCheck("webhooks", "Order webhooks", CheckState.OK,
                      "Healthy: Shopify sends each order as it changes, and every update was applied.")


# -------------------------------------------------------------------- 3PL connections

SYNC_KINDS = frozenset({"sync_failing", "sync_stale"})


def provider_check(provider_id: str, provider_type: str, *, fed_nodes: Sequence[str], last_ok_at: datetime | None,
                   error: str | None, now: datetime, stale_after: timedelta) -> SetupCheck:
    """One 3PL connection: synced and when, failing and why, stale, or not used yet."""
    key, title = f"3pl:{provider_id}", f"{provider_id} ({provider_type})"
    edit = Fix("Check its settings", "settings.provider_edit", {"provider_id": provider_id})
    if not fed_nodes:
        return SetupCheck(key, title, CheckState.WAITING, "Feeds no node yet, so it is never synced.", (),
                          Fix("Choose the nodes it feeds", "settings.nodes"))
    feeds = f"Feeds {', '.join(fed_nodes)}."
    synced = "never synced" if last_ok_at is None else f"last synced {age_text(now - last_ok_at)} ago"
    if error:
        return SetupCheck(key, title, CheckState.PROBLEM, f"Failing: {error} ({synced}).", (feeds,), edit, SYNC_KINDS)
    if last_ok_at is None:
        return SetupCheck(key, title, CheckState.WAITING, "Not synced yet: the first sync runs on its schedule.",
                          (feeds,), Fix("Test the connection", "settings.status"))
    if now - last_ok_at > stale_after:
        return SetupCheck(
            key, title, CheckState.PROBLEM,
            f"Stale: {synced}; routing trusts stock for {age_text(stale_after)} after a sync.", (feeds,),
            Fix("Test the connection", "settings.status"), SYNC_KINDS)
    return SetupCheck(key, title, CheckState.OK, f"Synced {age_text(now - last_ok_at)} ago.", (feeds,))


def no_provider_check() -> SetupCheck:
    return SetupCheck("3pl", "3PL connections", CheckState.OK,
                      "No 3PL is connected: every node's stock is typed in by hand.", (),
                      Fix("Connect a 3PL", "settings.provider_new"))
