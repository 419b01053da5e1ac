"""Stock freshness: a node whose stock data is stale (or whose source is failing)
is degraded, and routing either trusts only part of its stock or none of it.

Pure: the caller passes the last successful sync of each synced node and the time.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Mapping

from connector.domain.model import Network, NodeStatus


@dataclass(frozen=True)
class StalePolicy:
    max_age: timedelta
    exclude: bool  # True: stale nodes are not routed to; False: their stock is discounted
    discount: float  # share of a stale node's sellable stock routing may promise


@dataclass(frozen=True)
class Freshness:
    last_ok_at: datetime | None  # last successful full sync
    last_error: str | None = None  # the latest failure, if the latest attempt failed


def apply_freshness(
    network: Network, freshness: Mapping[str, Freshness], policy: StalePolicy, now: datetime
) -> tuple[Network, dict[str, float]]:
    """The network as routing should see it now, and per-node factors for sellable stock.

    Only nodes in ``freshness`` (those synced from a provider or feed) can go stale;
    counts typed in by hand do not age. Paused/offline nodes stay as configured.
    """
    nodes = dict(network.nodes)
    factors: dict[str, float] = {}
    for node_id, fresh in freshness.items():
        node = nodes.get(node_id)
        if node is None or node.status in (NodeStatus.OFFLINE, NodeStatus.PAUSED):
            continue
        if fresh.last_ok_at is not None and now - fresh.last_ok_at <= policy.max_age:
            continue
        age = "never synced" if fresh.last_ok_at is None else f"stock data {age_text(now - fresh.last_ok_at)} old"
        if fresh.last_error:
            age += f"; last sync failed: {fresh.last_error[:120]}"
        if policy.exclude:
            nodes[node_id] = replace(node, status=NodeStatus.OFFLINE, status_note=f"{age}; excluded until a sync succeeds")
            factors[node_id] = 0.0
        else:
            share = f"{policy.discount:.0%}"
            nodes[node_id] = replace(node, status=NodeStatus.DEGRADED, status_note=f"{age}; stock counted at {share}")
            factors[node_id] = policy.discount
    return replace(network, nodes=nodes), factors


def discounted(sellable: Mapping[tuple[str, str], int], factors: Mapping[str, float]) -> dict[tuple[str, str], int]:
    """Sellable units after the stale discount, rounded down (never promise a unit we may not have)."""
    if not factors:
        return dict(sellable)
    return {key: int(qty * factors.get(key[0], 1.0)) for key, qty in sellable.items()}


def age_text(delta: timedelta) -> str:
    """A duration as people say it: "12 min", "3 h", "2 days" (a moment is "0 min")."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"
