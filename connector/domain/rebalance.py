"""Rebalancing: which transfers top nodes up to their target, and which need approval.

Transfers (``plan_transfers``). For one SKU, per node n: position p_n (sellable
now plus approved / in-transit inbound), target t_n, floor m_n (its safety
stock). Deficit e_n = max(0, t_n - p_n); a node may send at most
a_n = max(0, p_n - max(t_n, m_n)) (its spare). A node with a deficit has no
spare, so senders and receivers are disjoint and transfers are direct: one
configured lane, never relayed through a third node. Exact problem, per SKU:

    min   sum_lanes c_l x_l + S * sum_n (e_n - sum_(l into n) x_l)
    s.t.  sum_(l out of n) x_l <= a_n,  sum_(l into n) x_l <= e_n,  x_l >= 0

with S = ``shortage_cost`` per unit of deficit left unfilled. Receivers are only
topped up to target, never over it: small, frequent top-ups rather than big
restocks. It is solved for all SKUs at once as one min-cost flow (as in
``allocation``): senders supply a_n, lanes sender -> receiver (cost c_l), a
sender -> sink arc for spare that stays (cost 0), receiver -> sink arcs of
capacity e_n (cost -S); money in rounded cents (see ``allocation``). A lane
costing more than S per unit is never used.

Minimum transfer size, a repair after the exact solve: transfers below
``min_transfer_units``, taken in output order, are raised to the minimum when the
source can still spare the extra units and the destination still lacks them
(so it is never overfilled), and dropped otherwise. Raising uses spare left
after every other planned transfer; dropping gives its units back for the
transfers after it. (At the exact optimum a source that still spares units and
a destination that still lacks them are not joined by a lane cheaper than the
shortage, so a raise mostly uses what an earlier drop gave back.)

Approval (``approval_for``), checked in this order: over the unit or value
threshold, a transfer needs approval, even an emergency and even before the
launch lock; after the launch lock (``now >= launch_lock_at``) it needs approval
unless it is an emergency (the destination has fewer than
``emergency_cover_days`` of cover); otherwise it is auto-approved.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time
from typing import Mapping, Sequence

import numpy as np

from connector.domain.allocation import solve_min_cost_flow, to_cents


@dataclass(frozen=True)
class TransferLane:
    from_node: str
    to_node: str
    unit_cost: float
    lead_days: int


@dataclass(frozen=True)
class SkuPosition:
    sku: str
    position: Mapping[str, int]  # node -> sellable now + inbound (approved / in transit) units
    target: Mapping[str, int]  # node -> target level (lead-time demand + safety)
    floor: Mapping[str, int]  # node -> units it must keep (its safety stock); never sends below max(target, floor)
    unit_value: float


@dataclass(frozen=True)
class PlannedTransfer:
    sku: str
    from_node: str
    to_node: str
    units: int
    unit_cost: float
    lead_days: int


def plan_transfers(
    positions: Sequence[SkuPosition], lanes: Sequence[TransferLane], *, min_transfer_units: int, shortage_cost: float
) -> list[PlannedTransfer]:
    """Transfers for every SKU (module docstring), sorted by (SKU, from, to)."""
    if min_transfer_units < 1:
        raise ValueError("min_transfer_units must be >= 1")
    if not (math.isfinite(shortage_cost) and shortage_cost > 0):
        raise ValueError("shortage_cost must be finite and > 0")
    if len({pos.sku for pos in positions}) != len(positions):
        raise ValueError("a SKU has more than one position")
    out_of: dict[str, list[TransferLane]] = {}
    for lane in lanes:
        if not (math.isfinite(lane.unit_cost) and lane.unit_cost >= 0):
            raise ValueError(f"lane {lane.from_node} -> {lane.to_node}: unit_cost must be finite and >= 0")
        if any(l.to_node == lane.to_node for l in out_of.get(lane.from_node, ())):
            raise ValueError(f"more than one lane {lane.from_node} -> {lane.to_node}")
        out_of.setdefault(lane.from_node, []).append(lane)

    # One component per SKU that has a usable lane: its senders, its receivers, a sink.
    spare_of: list[dict[str, int]] = []
    deficit_of: list[dict[str, int]] = []
    used: list[tuple[int, TransferLane]] = []
    lane_tail, lane_head, lane_cap = [], [], []
    keep_tail, keep_head, keep_cap = [], [], []
    fill_tail, fill_head, fill_cap = [], [], []
    sinks, sink_demand = [], []
    v = 0
    for k, pos in enumerate(positions):
        spare, deficit = _spare_and_deficit(pos)
        spare_of.append(spare)
        deficit_of.append(deficit)
        usable = [lane for n in sorted(spare) for lane in out_of.get(n, ()) if lane.to_node in deficit]
        if not usable:
            continue
        senders = sorted({lane.from_node for lane in usable})
        receivers = sorted({lane.to_node for lane in usable})
        index = {n: v + i for i, n in enumerate(senders + receivers)}
        sink = v + len(index)
        for lane in usable:
            used.append((k, lane))
            lane_tail.append(index[lane.from_node])
            lane_head.append(index[lane.to_node])
            lane_cap.append(min(spare[lane.from_node], deficit[lane.to_node]))
        for n in senders:
            keep_tail.append(index[n])
            keep_head.append(sink)
            keep_cap.append(spare[n])
        for n in receivers:
            fill_tail.append(index[n])
            fill_head.append(sink)
            fill_cap.append(deficit[n])
        sinks.append(sink)
        sink_demand.append(sum(spare[n] for n in senders))
        v = sink + 1

    planned: dict[tuple[int, str, str], int] = {}
    if used:
        costs = to_cents([lane.unit_cost for _, lane in used])
        arrays = [np.asarray(x, dtype=np.int64) for x in
                  (lane_tail + keep_tail + fill_tail, lane_head + keep_head + fill_head,
                   lane_cap + keep_cap + fill_cap)]
        all_costs = np.concatenate([
            costs, np.zeros(len(keep_tail), dtype=np.int64),
            np.full(len(fill_tail), -int(to_cents(shortage_cost)), dtype=np.int64),
        ])
        supplies = np.concatenate([np.asarray(keep_cap, dtype=np.int64), -np.asarray(sink_demand, dtype=np.int64)])
        flows = solve_min_cost_flow(*arrays, all_costs, np.asarray(keep_tail + sinks), supplies)
        for i in np.flatnonzero(flows[: len(used)]).tolist():
            k, lane = used[i]
            planned[(k, lane.from_node, lane.to_node)] = int(flows[i])

    lane_of = {(lane.from_node, lane.to_node): lane for lane in lanes}
    transfers = []
    for k, src, dst, units in _repair(planned, spare_of, deficit_of, min_transfer_units, positions):
        lane = lane_of[(src, dst)]
        transfers.append(PlannedTransfer(positions[k].sku, src, dst, units, lane.unit_cost, lane.lead_days))
    return transfers


def _spare_and_deficit(pos: SkuPosition) -> tuple[dict[str, int], dict[str, int]]:
    levels = (*pos.position.values(), *pos.target.values(), *pos.floor.values())
    if any(isinstance(q, bool) or not isinstance(q, (int, np.integer)) for q in levels):
        raise ValueError(f"{pos.sku}: position, target and floor must be whole units")
    spare, deficit = {}, {}
    for n in {*pos.position, *pos.target, *pos.floor}:
        have, target = pos.position.get(n, 0), pos.target.get(n, 0)
        keep = max(target, pos.floor.get(n, 0))
        if have > keep:
            spare[n] = have - keep
        elif target > have:
            deficit[n] = target - have
    return spare, deficit


def _repair(
    planned: Mapping[tuple[int, str, str], int], spare_of: Sequence[Mapping[str, int]],
    deficit_of: Sequence[Mapping[str, int]], minimum: int, positions: Sequence[SkuPosition],
) -> list[tuple[int, str, str, int]]:
    """Apply the minimum transfer size (module docstring); output in (SKU, from, to) order."""
    spare_left = [dict(s) for s in spare_of]
    need_left = [dict(d) for d in deficit_of]
    for (k, src, dst), units in planned.items():
        spare_left[k][src] -= units
        need_left[k][dst] -= units
    result = []
    for k, src, dst in sorted(planned, key=lambda key: (positions[key[0]].sku, key[1], key[2])):
        units = planned[(k, src, dst)]
        if units < minimum:
            extra = minimum - units
            if spare_left[k][src] >= extra and need_left[k][dst] >= extra:
                spare_left[k][src] -= extra
                need_left[k][dst] -= extra
                units = minimum
            else:
                spare_left[k][src] += units
                need_left[k][dst] += units
                continue
        result.append((k, src, dst, units))
    return result


# ---------------------------------------------------------------- approval


@dataclass(frozen=True)
class ApprovalPolicy:
    launch_lock_at: datetime | None  # from then on, no stock moves without approval except emergencies
    units_over: int | None  # a transfer of more units than this always needs approval
    value_over: float | None  # ... or of more value (units x unit value) than this
    emergency_cover_days: float  # a destination with less cover than this is an emergency


@dataclass(frozen=True)
class Approval:
    needed: bool
    emergency: bool
    reason: str  # one line, for the person approving


def approval_for(
    transfer: PlannedTransfer, *, unit_value: float, destination_cover_days: float, policy: ApprovalPolicy,
    now: datetime,
) -> Approval:
    """Whether ``transfer`` needs a human's approval at ``now`` (module docstring)."""
    emergency = destination_cover_days < policy.emergency_cover_days
    urgent = f"emergency: destination has {destination_cover_days:.1f} days of cover"
    over = []
    if policy.units_over is not None and transfer.units > policy.units_over:
        over.append(f"over {policy.units_over} units")
    value = transfer.units * unit_value
    if policy.value_over is not None and value > policy.value_over:
        over.append(f"over {policy.value_over:,.2f} in value ({value:,.2f})")
    if over:
        reason = " and ".join(over) + ": needs approval"
        return Approval(True, emergency, f"{reason} ({urgent})" if emergency else reason)
    lock = policy.launch_lock_at
    if lock is not None and now >= lock:
        since = f"launch lock since {_when(lock)}"
        if emergency:
            return Approval(False, True, f"{urgent}; exempt from the {since}")
        return Approval(True, False, f"{since}: needs approval")
    return Approval(False, emergency, f"{urgent}; auto-approved" if emergency else "auto-approved")


def _when(moment: datetime) -> str:
    # A lock is usually set for a day; show the time only when it has one.
    return moment.strftime("%Y-%m-%d") if moment.time() == time(0) else moment.strftime("%Y-%m-%d %H:%M %Z").strip()
