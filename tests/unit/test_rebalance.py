"""Transfer planning and approval rules, on hand-checkable instances."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connector.domain.rebalance import (
    Approval,
    ApprovalPolicy,
    PlannedTransfer,
    SkuPosition,
    TransferLane,
    approval_for,
    plan_transfers,
)

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
LOCK = datetime(2026, 12, 1, tzinfo=timezone.utc)


def position(sku="X", position=None, target=None, floor=None, unit_value=10.0) -> SkuPosition:
    return SkuPosition(sku, position or {}, target or {}, floor or {}, unit_value)


def plan(positions, lanes, minimum=1, shortage=20.0):
    return plan_transfers(positions, lanes, min_transfer_units=minimum, shortage_cost=shortage)


def moves(transfers) -> list[tuple[str, str, str, int]]:
    return [(t.sku, t.from_node, t.to_node, t.units) for t in transfers]


# ---------------------------------------------------------------- plan_transfers


def test_tops_nodes_up_to_target_from_the_hub():
    lanes = [TransferLane("hub", "east", 1.0, 2), TransferLane("hub", "west", 1.5, 3)]
    result = plan([position(position={"hub": 100, "east": 4, "west": 9},
                            target={"hub": 20, "east": 10, "west": 10})], lanes)
    assert result == [
        PlannedTransfer("X", "hub", "east", 6, 1.0, 2),
        PlannedTransfer("X", "hub", "west", 1, 1.5, 3),
    ]


def test_sender_keeps_the_larger_of_target_and_floor():
    lanes = [TransferLane("hub", "east", 1.0, 2)]
    by_floor = position(position={"hub": 35, "east": 0}, target={"hub": 20, "east": 50}, floor={"hub": 30})
    by_target = position(position={"hub": 35, "east": 0}, target={"hub": 32, "east": 50}, floor={"hub": 30})
    assert moves(plan([by_floor], lanes)) == [("X", "hub", "east", 5)]
    assert moves(plan([by_target], lanes)) == [("X", "hub", "east", 3)]


def test_scarce_spare_goes_through_the_cheaper_lane_first():
    lanes = [TransferLane("hub", "east", 3.0, 2), TransferLane("hub", "west", 1.0, 2)]
    result = plan([position(position={"hub": 14, "east": 0, "west": 0},
                            target={"hub": 10, "east": 5, "west": 3})], lanes)
    assert moves(result) == [("X", "hub", "east", 1), ("X", "hub", "west", 3)]


def test_a_lane_dearer_than_the_shortage_is_not_used():
    lanes = [TransferLane("hub", "east", 25.0, 2)]
    assert plan([position(position={"hub": 50, "east": 0}, target={"east": 5})], lanes, shortage=20.0) == []


def test_transfers_only_along_configured_lanes_and_never_relayed():
    # east has spare, west needs stock, but the only lanes are east -> hub -> west.
    lanes = [TransferLane("east", "hub", 1.0, 1), TransferLane("hub", "west", 1.0, 1)]
    result = plan([position(position={"east": 20, "west": 0, "hub": 5},
                            target={"east": 5, "west": 8, "hub": 5})], lanes)
    assert result == []


def test_node_to_node_lanes_are_lanes_like_any_other():
    lanes = [TransferLane("east", "west", 2.0, 1)]
    result = plan([position(position={"east": 20, "west": 0}, target={"east": 5, "west": 8})], lanes)
    assert moves(result) == [("X", "east", "west", 8)]


def test_several_skus_at_once_in_sku_then_lane_order():
    lanes = [TransferLane("hub", "west", 1.0, 2), TransferLane("hub", "east", 1.0, 2)]
    positions = [
        position("B", {"hub": 9, "east": 0}, {"east": 2}),
        position("A", {"hub": 9, "west": 1, "east": 0}, {"west": 4, "east": 1}),
    ]
    assert moves(plan(positions, lanes)) == [
        ("A", "hub", "east", 1), ("A", "hub", "west", 3), ("B", "hub", "east", 2),
    ]


def test_small_transfer_is_dropped_when_the_source_cannot_spare_the_minimum():
    lanes = [TransferLane("hub", "east", 1.0, 2)]
    pos = position(position={"hub": 22, "east": 0}, target={"hub": 20, "east": 10})  # the hub spares 2
    assert moves(plan([pos], lanes)) == [("X", "hub", "east", 2)]
    assert moves(plan([pos], lanes, minimum=5)) == []


def test_small_transfer_is_dropped_when_the_minimum_would_overfill_the_destination():
    lanes = [TransferLane("hub", "east", 1.0, 2)]
    pos = position(position={"hub": 90, "east": 8}, target={"hub": 20, "east": 10})  # east lacks 2
    assert moves(plan([pos], lanes, minimum=5)) == []


def test_transfer_at_or_above_the_minimum_is_kept():
    lanes = [TransferLane("hub", "east", 1.0, 2), TransferLane("hub", "west", 30.0, 2)]
    # hub spares 10, east lacks 3, west lacks 20 but its lane costs more than the shortage.
    pos = position(position={"hub": 30, "east": 7, "west": 0}, target={"hub": 20, "east": 10, "west": 20})
    assert moves(plan([pos], lanes, minimum=3)) == [("X", "hub", "east", 3)]


def test_dropping_a_small_transfer_frees_spare_for_the_next_one():
    lanes = [TransferLane("hub", "a", 1.0, 1), TransferLane("hub", "b", 2.0, 1)]
    # hub spares 6: exact plan a 2 (cheap, all a needs), b 4 (b lacks 9).
    pos = position(position={"hub": 16, "a": 3, "b": 1}, target={"hub": 10, "a": 5, "b": 10})
    assert moves(plan([pos], lanes)) == [("X", "hub", "a", 2), ("X", "hub", "b", 4)]
    # Minimum 5: a's 2 cannot be raised (a lacks only 2), dropped; its units let b's 4 become 5.
    assert moves(plan([pos], lanes, minimum=5)) == [("X", "hub", "b", 5)]


def test_missing_nodes_count_as_zero_and_negative_positions_are_deficits():
    lanes = [TransferLane("hub", "east", 1.0, 2)]
    result = plan([position(position={"hub": 10, "east": -3}, target={"east": 2})], lanes)
    assert moves(result) == [("X", "hub", "east", 5)]


@pytest.mark.parametrize("kwargs, lanes, message", [
    ({"min_transfer_units": 0, "shortage_cost": 1.0}, [], "min_transfer_units"),
    ({"min_transfer_units": 1, "shortage_cost": 0.0}, [], "shortage_cost"),
    ({"min_transfer_units": 1, "shortage_cost": 1.0},
     [TransferLane("a", "b", 1.0, 1), TransferLane("a", "b", 2.0, 2)], "more than one lane"),
    ({"min_transfer_units": 1, "shortage_cost": 1.0}, [TransferLane("a", "b", -1.0, 1)], "unit_cost"),
])
def test_bad_input_is_refused(kwargs, lanes, message):
    with pytest.raises(ValueError, match=message):
        plan_transfers([position(position={"a": 5})], lanes, **kwargs)


def test_a_sku_listed_twice_is_refused():
    with pytest.raises(ValueError, match="more than one position"):
        plan([position(position={"a": 5}), position(position={"b": 5})], [])


def test_fractional_units_are_refused():
    with pytest.raises(ValueError, match="whole units"):
        plan([position(position={"a": 5.5})], [])


# ---------------------------------------------------------------- approval_for


def transfer(units=10) -> PlannedTransfer:
    return PlannedTransfer("X", "hub", "east", units, 1.0, 2)


def policy(lock=LOCK, units_over=500, value_over=10_000.0, cover=1.0) -> ApprovalPolicy:
    return ApprovalPolicy(launch_lock_at=lock, units_over=units_over, value_over=value_over, emergency_cover_days=cover)


def decide(units=10, value=10.0, cover=5.0, now=NOW, **kw) -> Approval:
    return approval_for(transfer(units), unit_value=value, destination_cover_days=cover, policy=policy(**kw), now=now)


def test_small_transfer_before_the_lock_is_auto_approved():
    assert decide() == Approval(False, False, "auto-approved")


def test_lock_applies_from_its_exact_moment():
    assert decide(now=LOCK - timedelta(microseconds=1)).needed is False
    assert decide(now=LOCK) == Approval(True, False, "launch lock since 2026-12-01: needs approval")


def test_lock_with_a_time_of_day_shows_it():
    lock = LOCK + timedelta(hours=14)
    assert decide(now=lock, lock=lock).reason == "launch lock since 2026-12-01 14:00 UTC: needs approval"


def test_emergency_is_exempt_from_the_lock():
    assert decide(now=LOCK, cover=0.8) == Approval(
        False, True, "emergency: destination has 0.8 days of cover; exempt from the launch lock since 2026-12-01"
    )


def test_emergency_threshold_is_strictly_below():
    assert decide(now=LOCK, cover=1.0) == Approval(True, False, "launch lock since 2026-12-01: needs approval")


def test_emergency_before_the_lock_is_auto_approved_and_flagged():
    assert decide(cover=0.2) == Approval(False, True, "emergency: destination has 0.2 days of cover; auto-approved")


def test_unit_threshold_is_strictly_above():
    assert decide(units=500).needed is False
    assert decide(units=501) == Approval(True, False, "over 500 units: needs approval")


def test_value_threshold_is_strictly_above():
    assert decide(units=100, value=100.0).needed is False  # exactly 10,000
    assert decide(units=100, value=100.01) == Approval(
        True, False, "over 10,000.00 in value (10,001.00): needs approval"
    )


def test_thresholds_apply_even_to_emergencies_and_before_the_lock():
    assert decide(units=600, value=20.0, cover=0.5) == Approval(
        True, True,
        "over 500 units and over 10,000.00 in value (12,000.00): needs approval "
        "(emergency: destination has 0.5 days of cover)",
    )


def test_no_lock_and_no_thresholds_means_auto_approved():
    assert decide(units=10**6, lock=None, units_over=None, value_over=None, now=LOCK) == Approval(
        False, False, "auto-approved"
    )
