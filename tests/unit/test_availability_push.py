"""The "never overwrite the store's own decrement" rule (connector.domain.availability_push)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.domain.availability_push import reconcile_quantity

# (case, desired, known, current, reserved_since_known, expected)
CASES = [
    # We set 10. A customer bought 2: the store shows 8 at once. Our inbox has processed the
    # order, so our reservation grew by 2 and desired already says 8: nothing to hold back.
    ("inbox already processed the order", 8, 10, 8, 2, 8),
    # Same order, but the webhook is still queued: our figure still says 10. Pushing 10
    # would resell the 2 units; the unexplained decrement is kept off the store.
    ("order not yet processed", 10, 10, 8, 0, 8),
    # Two orders of 1 and 2 at the store; our inbox has processed only the first.
    ("one of two orders processed", 9, 10, 7, 1, 7),
    # The 3PL received 5 more (desired 10 -> 15) while an order of 2 is still unprocessed:
    # the restock goes out, minus the pending order.
    ("restock while an order is pending", 15, 10, 8, 0, 13),
    # The store restocked a cancelled order (8 -> 10 after we knew 8) that we released too:
    # desired already counts those units back.
    ("store restocked a cancelled order we also released", 10, 8, 10, 0, 10),
    # Shopify decremented location A, but our router sent the order to node B. At A our
    # reservations did not grow, so A keeps the decrement for now...
    ("order routed to a different node: the store's location", 10, 10, 8, 0, 8),
    # ...and at B the store never decremented while our reservation grew: desired stands.
    ("order routed to a different node: the node we chose", 3, 5, 5, 2, 3),
    # More unexplained orders than we want to sell: never below zero.
    ("unexplained decrement larger than desired", 1, 10, 4, 0, 0),
    # Our reservations grew by more than the store decremented (an order taken on another
    # channel): that is not a store decrement to protect.
    ("reservations exceed the store's decrement", 6, 10, 9, 4, 6),
    # A negative reservation delta (a release) explains nothing.
    ("released reservations explain nothing", 12, 10, 8, -3, 10),
    ("no known value: nothing to measure against", 7, None, 3, 0, 7),
    ("not stocked at the store", 7, 10, None, 0, 7),
    ("negative desired is clamped", -2, None, None, 0, 0),
]


@pytest.mark.parametrize(
    "desired, known, current, reserved, expected",
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_reconcile_quantity(desired, known, current, reserved, expected):
    assert reconcile_quantity(desired, known, current, reserved) == expected


@given(
    desired=st.integers(0, 10_000),
    known=st.integers(0, 10_000),
    current=st.integers(0, 10_000),
    reserved=st.integers(-100, 10_000),
)
def test_properties(desired, known, current, reserved):
    result = reconcile_quantity(desired, known, current, reserved)
    assert 0 <= result <= desired
    # never holds back more than the store itself took off
    assert desired - result <= max(0, known - current)
    if current >= known:
        assert result == desired
    # accounting for more of the store's orders never lowers what we push
    assert reconcile_quantity(desired, known, current, reserved + 1) >= result


# ---------------------------------------------------------------- carrying a hold forward


def held_after(desired: int, known: int, current: int, held: int, growth: int) -> tuple[int, int]:
    """One push as the availability service does it: (quantity set, units held back now)."""
    from connector.domain.availability_push import carry_hold

    effective, explained = carry_hold(desired, held, growth)
    quantity = reconcile_quantity(effective, known, current, explained)
    return quantity, max(0, desired - quantity)


def test_a_hold_survives_the_next_push_while_the_inbox_is_behind():
    # Store had 10, took an order of 2 we have not processed: we set 8 and hold 2.
    assert held_after(desired=10, known=10, current=8, held=0, growth=0) == (8, 2)
    # Next push, inbox still behind, nothing new at the store: still 8, not back to 10.
    assert held_after(desired=10, known=8, current=8, held=2, growth=0) == (8, 2)
    # The inbox routes that order here: desired drops to 8, growth 2 explains the hold.
    assert held_after(desired=8, known=8, current=8, held=2, growth=2) == (8, 0)


def test_growth_is_not_counted_twice_for_an_old_hold_and_a_new_decrement():
    # Held 2 from before; the store took another 2 (current 6); our inbox processed only
    # the first order (growth 2, desired 8). Two units are still unexplained.
    assert held_after(desired=8, known=8, current=6, held=2, growth=2) == (6, 2)


def test_an_order_routed_elsewhere_releases_the_hold_at_this_location():
    # The store decremented this location, our router reserved the units at another
    # node: the SKU's reservations grew, this location's desired stays 10.
    assert held_after(desired=10, known=8, current=8, held=2, growth=2) == (10, 0)
