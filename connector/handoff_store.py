"""SQL for the hand-off to the store (tables from migration 0015_store_handoffs).

``store_handoffs`` is a durable queue: one row per order for its routing decisions
(kind ``decision``, node_id ``""``) and one per order x node shipped from the packing room
(kind ``shipment``, its carrier, tracking and lines in ``detail``). A change queues the
row again (``generation`` + 1); the scheduler claims due rows, talks to the store outside
any transaction and finishes them; a row whose generation moved on while it was being
sent stays due. ``handoff_refusals`` holds the moves the store refused, with its reason,
until a later move of that order and node succeeds or the order closes.

Everything here runs inside the caller's transaction unless it says otherwise.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Iterable, Sequence

from connector.store import LineAt3pl, Store, ts

DECISION = "decision"
SHIPMENT = "shipment"


def queue_decision_change(store: Store, shop_id: str, order_id: str, now: datetime) -> None:
    """The order's routing decisions changed: tell the store (again). Called by
    ``Store.save_decisions`` in the same transaction as the decisions."""
    _queue(store, shop_id, order_id, DECISION, "", None, now)


def queue_shipment(store: Store, shop_id: str, order_id: str, node_id: str, detail: dict, now: datetime) -> None:
    """A node shipped (part of) the order: write the fulfillment / note back to the store.
    A second parcel from the same node keeps the lines of the first (they stay shipped)."""
    before = store._one("SELECT detail FROM store_handoffs WHERE shop_id = ? AND order_id = ? AND kind = ? "
                        "AND node_id = ?", (shop_id, order_id, SHIPMENT, node_id))
    earlier = json.loads(before[0]).get("lines", []) if before and before[0] else []
    _queue(store, shop_id, order_id, SHIPMENT, node_id, json.dumps({**detail, "lines": earlier + detail["lines"]}), now)


def _queue(store: Store, shop_id: str, order_id: str, kind: str, node_id: str, detail: str | None,
           now: datetime) -> None:
    # A row being sent keeps its claim: its sender sees the new generation when it finishes
    # and leaves the row due, so one order is never sent by two processes at once.
    store.conn.execute(
        "INSERT INTO store_handoffs (shop_id, order_id, kind, node_id, status, generation, attempts, "
        "next_attempt_at, detail, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 1, 0, ?, ?, ?, ?) "
        "ON CONFLICT (shop_id, order_id, kind, node_id) DO UPDATE SET generation = generation + 1, "
        "status = CASE WHEN status = 'sending' THEN 'sending' ELSE 'pending' END, attempts = 0, "
        "next_attempt_at = excluded.next_attempt_at, detail = COALESCE(excluded.detail, detail), "
        "last_error = NULL, updated_at = excluded.updated_at",
        (shop_id, order_id, kind, node_id, ts(now), detail, ts(now), ts(now)),
    )


def queue_again(store: Store, shop_id: str, order_id: str, now: datetime) -> int:
    """Someone asks for another try (a location chosen, a fulfillment order marked open in
    Shopify): the order's decision is told again, and its shipments the store did not get are
    tried again now. Returns how many hand-offs are due."""
    queue_decision_change(store, shop_id, order_id, now)
    return 1 + store.conn.execute(
        "UPDATE store_handoffs SET status = 'pending', attempts = 0, next_attempt_at = ?, updated_at = ? "
        "WHERE shop_id = ? AND order_id = ? AND kind = ? AND status IN ('failed', 'skipped', 'pending')",
        (ts(now), ts(now), shop_id, order_id, SHIPMENT)).rowcount


def claim_due(store: Store, now: datetime, limit: int, shop_id: str | None = None,
              stale_claim_after_s: int = 600) -> list[dict]:
    """Claim due rows in one write transaction of its own (oldest first). A claim older
    than ``stale_claim_after_s`` (a process died while sending) is taken again: every
    hand-off reads the store's state before it writes, so nothing is done twice."""
    stale = ts(now - timedelta(seconds=stale_claim_after_s))
    shop_filter, params = ("AND shop_id = ?", (shop_id,)) if shop_id else ("", ())
    with store.write():
        rows = store._dicts(
            "SELECT * FROM store_handoffs WHERE ((status = 'pending' AND next_attempt_at <= ?) "
            f"OR (status = 'sending' AND claimed_at <= ?)) {shop_filter} ORDER BY next_attempt_at, id LIMIT ?",
            (ts(now), stale, *params, limit),
        )
        store.conn.executemany("UPDATE store_handoffs SET status = 'sending', claimed_at = ? WHERE id = ?",
                               [(ts(now), row["id"]) for row in rows])
    for row in rows:
        row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
        row["written"] = json.loads(row["written"]) if row["written"] else None
    return rows


def finish(store: Store, row: dict, *, status: str, now: datetime, error: str | None = None,
           next_attempt_at: datetime | None = None, written: object = None) -> None:
    """Record how one claimed row ended: ``done``, ``pending`` (retry at ``next_attempt_at``),
    ``failed`` or ``skipped``. When the row was queued again while it was being sent, it
    stays due now (the new generation has not been sent) and its attempts start over.
    ``written``: what the store now holds (kept to decide what the next change must write)."""
    store.conn.execute(
        "UPDATE store_handoffs SET "
        "status = CASE WHEN generation = ? THEN ? ELSE 'pending' END, "
        "attempts = CASE WHEN generation = ? THEN attempts + 1 ELSE 0 END, "
        "next_attempt_at = CASE WHEN generation = ? THEN ? ELSE ? END, "
        "last_error = ?, claimed_at = NULL, written = COALESCE(?, written), updated_at = ?, "
        "done_at = CASE WHEN ? = 'done' THEN ? ELSE done_at END WHERE id = ?",
        (row["generation"], status, row["generation"], row["generation"],
         ts(next_attempt_at) if next_attempt_at else None, ts(now), error,
         json.dumps(written) if written is not None else None, ts(now), status, ts(now), row["id"]),
    )


def handoffs(store: Store, shop_id: str | None = None, statuses: Sequence[str] | None = None,
             order_id: str | None = None) -> list[dict]:
    clauses, params = [], []
    for column, value in (("shop_id", shop_id), ("order_id", order_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if statuses:
        clauses.append(f"status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = store._dicts(f"SELECT * FROM store_handoffs {where} ORDER BY id", params)
    for row in rows:
        row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
    return rows


# ---------------------------------------------------------------- refused moves


def refuse(store: Store, shop_id: str, order_id: str, node_id: str, reason: str, now: datetime) -> bool:
    """Record a refused move; True when it is new or its reason changed (worth an audit line)."""
    before = store._one("SELECT reason FROM handoff_refusals WHERE shop_id = ? AND order_id = ? AND node_id = ?",
                        (shop_id, order_id, node_id))
    store.conn.execute(
        "INSERT INTO handoff_refusals (shop_id, order_id, node_id, reason, at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO UPDATE SET reason = excluded.reason, at = CASE WHEN reason = excluded.reason THEN at "
        "ELSE excluded.at END", (shop_id, order_id, node_id, reason, ts(now)))
    return before is None or before[0] != reason


def clear_refusals(store: Store, shop_id: str, order_id: str, node_ids: Iterable[str] | None = None) -> int:
    """The order's refusals (only ``node_ids``' when given) are over: moved, or closed."""
    if node_ids is None:
        return store.conn.execute("DELETE FROM handoff_refusals WHERE shop_id = ? AND order_id = ?",
                                  (shop_id, order_id)).rowcount
    nodes = list(node_ids)
    if not nodes:
        return 0
    return store.conn.execute(
        f"DELETE FROM handoff_refusals WHERE shop_id = ? AND order_id = ? AND node_id IN ({','.join('?' * len(nodes))})",
        (shop_id, order_id, *nodes)).rowcount


def refused_moves(store: Store, shop_id: str) -> list[dict]:
    """Moves the store refused for the shop's open orders, oldest first: order_id, number,
    node_id, reason, at. A closed order's refusal no longer matters and is not listed."""
    return store._dicts(
        "SELECT f.order_id, o.number, f.node_id, f.reason, f.at FROM handoff_refusals f "
        "JOIN orders o ON o.shop_id = f.shop_id AND o.id = f.order_id "
        "WHERE f.shop_id = ? AND o.state = 'open' ORDER BY f.at, f.order_id, f.node_id",
        (shop_id,),
    )


# ---------------------------------------------------------------- packing room


def shipped_lines(store: Store, shop_id: str, order_id: str) -> dict[str, LineAt3pl]:
    """Lines a node without an API shipped (marked shipped): like lines a 3PL shipped, they
    stay where they are whatever a later update of the order says."""
    lines: dict[str, LineAt3pl] = {}
    for node_id, detail in store._all(
            "SELECT node_id, detail FROM store_handoffs WHERE shop_id = ? AND order_id = ? AND kind = ?",
            (shop_id, order_id, SHIPMENT)):
        for line_id, sku, quantity in json.loads(detail or "{}").get("lines", ()):
            lines[line_id] = LineAt3pl(job_id=0, node_id=node_id, sku=sku, quantity=quantity, shipped=True)
    return lines


def shipped_nodes(store: Store, shop_id: str, order_id: str) -> set[str]:
    """Nodes that shipped their part of the order: marked shipped here, or reported shipped by a 3PL."""
    rows = store._all(
        "SELECT node_id FROM store_handoffs WHERE shop_id = ? AND order_id = ? AND kind = ? "
        "UNION SELECT node_id FROM forward_jobs WHERE shop_id = ? AND order_id = ? AND status = 'shipped'",
        (shop_id, order_id, SHIPMENT, shop_id, order_id))
    return {row[0] for row in rows}


def to_pack(store: Store, shop_id: str, node_id: str) -> list[dict]:
    """Every line of an open order still reserved at the node (so not shipped yet), with
    its order's number and the line's title, oldest reservation first."""
    return store._dicts(
        "SELECT r.order_id, o.number, r.line_id, r.sku, r.quantity, r.created_at, COALESCE(l.title, '') AS title "
        "FROM reservations r JOIN orders o ON o.shop_id = r.shop_id AND o.id = r.order_id "
        "LEFT JOIN order_lines l ON l.shop_id = r.shop_id AND l.order_id = r.order_id AND l.line_id = r.line_id "
        "WHERE r.shop_id = ? AND r.node_id = ? AND r.status = 'active' AND o.state = 'open' "
        "ORDER BY r.created_at, r.order_id, r.line_id",
        (shop_id, node_id),
    )


def shipped_from(store: Store, shop_id: str, node_id: str, limit: int = 20) -> list[dict]:
    """The node's latest "mark shipped"s and how far telling the store has got: order_id,
    number, status, attempts, last_error, detail (carrier, tracking), created_at, done_at."""
    rows = store._dicts(
        "SELECT h.order_id, o.number, h.status, h.attempts, h.last_error, h.detail, h.created_at, h.done_at "
        "FROM store_handoffs h JOIN orders o ON o.shop_id = h.shop_id AND o.id = h.order_id "
        "WHERE h.shop_id = ? AND h.kind = ? AND h.node_id = ? ORDER BY h.id DESC LIMIT ?",
        (shop_id, SHIPMENT, node_id, limit),
    )
    for row in rows:
        row["detail"] = json.loads(row["detail"]) if row["detail"] else {}
    return rows
