"""What quantity to push to a storefront so we never overwrite the store's own decrement.

A storefront (Shopify, WooCommerce) lowers ``available`` itself the moment an order is
placed, before our webhook for that order has been processed. If we then pushed our
sellable figure unchanged, the store would briefly sell units that are already gone.
"""
from __future__ import annotations


def reconcile_quantity(desired: int, known: int | None, current: int | None, reserved_since_known: int = 0) -> int:
    """The quantity to set at the store for one (item, location).

    * ``desired``: our sellable figure now.
    * ``known``: the value we last set or read at the store (None: we never knew one).
    * ``current``: what the store holds now (None: not tracked there, nothing to protect).
    * ``reserved_since_known``: units our own reservations at this node grew by since
      ``known`` was recorded, i.e. the store's orders that ``desired`` already reflects.

    The store's decrement is ``d = known - current``. The part our reservations do not
    explain yet is ``u = max(0, d - max(0, reserved_since_known))``: orders the store
    took that our inbox has not processed. Those units are kept off the store:
    ``max(0, desired - u)``. When the store went up instead (``current > known``, e.g. it
    restocked a cancelled order that we have released too), ``desired`` already says it
    all. Without a ``known`` or ``current`` there is no decrement to measure.

    The protection is measured from ``known``: once the result is stored as the new
    ``known`` (and ``reserved_since_known`` restarts from zero), an order the inbox has
    still not processed no longer shows as a decrement, and the next push would overwrite
    it. Callers must not push a key again while its inbox lags behind that order.
    """
    if known is None or current is None:
        return max(0, desired)
    decrement = known - current
    if decrement <= 0:
        return max(0, desired)
    unexplained = max(0, decrement - max(0, reserved_since_known))
    return max(0, desired - unexplained)


def carry_hold(desired: int, held: int, reserved_growth: int) -> tuple[int, int]:
    """Carry units held back at an earlier push into this one.

    ``reconcile_quantity`` measures the store's decrement against ``known``; once the
    reduced quantity has been set, it becomes the new ``known`` and that decrement is no
    longer visible. So the caller records ``held`` (units it kept off the store for
    orders its inbox had not processed) with the SKU's reservations at that moment, and
    at the next push hands in ``reserved_growth`` = how much those reservations grew
    since. Growth first explains the held units (those orders have now been routed),
    and only what is left over explains a new decrement.

    Returns ``(desired, reserved_since_known)`` to pass to ``reconcile_quantity``: the
    desired figure lowered by the hold still unexplained, and the growth still unused.
    Together they keep ``held + new decrement - growth`` units off the store, never
    counting one reservation twice.
    """
    growth = max(0, reserved_growth)
    still_held = max(0, held - growth)
    return max(0, desired - still_held), max(0, growth - held)
