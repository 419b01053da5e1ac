"""A sync or a hand count that leaves a node holding fewer units than it has reserved:
the newest reservations there are routed again, or become exceptions that say why,
in the same transaction as the new count. Both ways of lowering stock are tested
alike; lines already at a 3PL stay where they are."""
from __future__ import annotations

import pytest

from connector.services.stock import set_manual_count
from tests.integration.test_sync import SHOP, fake_sb, inv, send_order  # noqa: F401 - fixtures below
from tests.integration.test_sync import clock, container, fakes, make_container, store  # noqa: F401

SKU = "CANDLE-CEDAR"


def by_sync(container, store, fakes, units):
    fake_sb(fakes).inventory = [inv(10, SKU, units), inv(156, "TEE-LOGO-M", 3)]
    container.clock.advance(minutes=1)
    outcome = container.sync.sync(store, SHOP)[0]
    assert outcome.ok, outcome.error
    return "sync"


def by_hand(container, store, fakes, units):
    container.clock.advance(minutes=1)
    set_manual_count(store, SHOP, "ne-micro", SKU, units, container.clock(), routing=container.inbox.routing)
    return "hand count"


LOWER = pytest.mark.parametrize("lower", [by_sync, by_hand], ids=["sync", "hand count"])


def two_orders_at_ne_micro(container, store, fakes, central_units):
    """ne-micro (a 3PL fed by ShipBob, forwarding orders) holds 5; an older order takes 3
    of them, a newer one 2. central, its backup, holds ``central_units``."""
    store.set_stock(SHOP, "central", SKU, on_hand=central_units, committed=0, available=central_units,
                    source="manual", now=container.clock())
    fake_sb(fakes).inventory = [inv(10, SKU, 5), inv(156, "TEE-LOGO-M", 3)]
    container.sync.sync(store, SHOP)
    older, _ = send_order(container, store, SKU, 3, order_id=301)
    container.clock.advance(minutes=1)
    newer, _ = send_order(container, store, SKU, 2, order_id=302)
    assert [store.current_decisions(SHOP, o)[0]["node_id"] for o in (older, newer)] == ["ne-micro", "ne-micro"]
    return older, newer


@LOWER
def test_the_newest_over_reserved_line_moves_to_another_node(container, store, fakes, lower):
    older, newer = two_orders_at_ne_micro(container, store, fakes, central_units=10)
    cause = lower(container, store, fakes, 4)

    assert store.active_reservations(SHOP, older)[0].node_id == "ne-micro"  # the first promise stands
    moved = store.current_decisions(SHOP, newer)[0]
    assert moved["node_id"] == "central", moved
    assert f"ne-micro holds 4 of {SKU} after the {cause} at" in moved["explanation"]
    assert "5 were reserved" in moved["explanation"]
    assert store.order(SHOP, newer).status == "routed"
    assert store.over_reserved(SHOP) == []
    assert store.reservation_totals_drift() == []
    # The forwarding job the newer order had at ne-micro is not sent with nothing in it.
    jobs = {(j["order_id"], j["node_id"]): j["status"] for j in store.forward_jobs(SHOP)}
    assert jobs == {(older, "ne-micro"): "pending", (newer, "ne-micro"): "cancelled"}
    assert container.forwarding.forward_due(store).failed == 0
    event = store.events(SHOP, "stock.over_reserved")[0]["detail"]
    assert (event["node_id"], event["sku"], event["available"], event["reserved"]) == ("ne-micro", SKU, 4, 5)


@LOWER
def test_a_line_no_node_can_take_becomes_an_exception_saying_why(container, store, fakes, lower):
    older, newer = two_orders_at_ne_micro(container, store, fakes, central_units=2)
    cause = lower(container, store, fakes, 0)

    # Both lines lose ne-micro; the older order is routed again first, but only the
    # newer one's 2 units fit at central.
    assert store.current_decisions(SHOP, newer)[0]["node_id"] == "central"
    stuck = store.current_decisions(SHOP, older)[0]
    assert stuck["node_id"] is None and stuck["exception"] == "partial_stock"
    assert stuck["explanation"].startswith(f"ne-micro holds 0 of {SKU} after the {cause} at ")
    assert "5 were reserved" in stuck["explanation"] and "central has 2" in stuck["explanation"]
    assert store.order(SHOP, older).status == "exception"
    assert [(e["order_id"], e["sku"]) for e in store.open_exceptions(SHOP)] == [(older, SKU)]
    assert store.over_reserved(SHOP) == []


@LOWER
def test_lines_already_at_the_3pl_stay_put_and_the_node_shows_over_reserved(container, store, fakes, lower):
    older, newer = two_orders_at_ne_micro(container, store, fakes, central_units=10)
    container.forwarding.forward_due(store)  # both orders are at the 3PL now
    third, _ = send_order(container, store, SKU, 1, order_id=303)  # not sent yet
    # Lowered at the moment the orders were sent: the 3PL's count may not include them yet,
    # so a sync does not hand their reservations over.
    container.clock.advance(minutes=-1)
    lower(container, store, fakes, 1)

    assert [store.active_reservations(SHOP, o)[0].node_id for o in (older, newer)] == ["ne-micro", "ne-micro"]
    assert store.current_decisions(SHOP, third)[0]["node_id"] == "central"
    assert store.over_reserved(SHOP) == [
        {"node_id": "ne-micro", "sku": SKU, "available": 1, "reserved": 5, "at_3pl": 5}]


def test_a_forward_job_cancelled_when_its_line_moved_is_due_again_when_the_line_comes_back(container, store, fakes):
    from connector import sandbox
    from tests.integration.test_sync import SECRET

    fake_sb(fakes).inventory = [inv(10, SKU, 2), inv(156, "TEE-LOGO-M", 3)]
    store.set_stock(SHOP, "central", SKU, on_hand=10, committed=0, available=10, source="manual",
                    now=container.clock())
    container.sync.sync(store, SHOP)
    order_id, payload = send_order(container, store, SKU, 2, order_id=401)
    by_hand(container, store, fakes, 0)
    assert store.current_decisions(SHOP, order_id)[0]["node_id"] == "central"
    assert [j["status"] for j in store.forward_jobs(SHOP)] == ["cancelled"]

    by_hand(container, store, fakes, 10)
    payload["line_items"][0].update(quantity=3, current_quantity=3)
    payload["updated_at"] = container.clock().isoformat()
    hook = sandbox.shopify_webhook(SECRET, payload, topic="orders/updated")
    container.inbox.ingest(store, "shopify", hook.body, hook.headers)
    container.inbox.process(store)
    assert store.current_decisions(SHOP, order_id)[0]["node_id"] == "ne-micro"
    assert [j["status"] for j in store.forward_jobs(SHOP)] == ["pending"]
    assert container.forwarding.forward_due(store).sent == 1
