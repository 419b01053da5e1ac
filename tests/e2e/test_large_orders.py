"""Large orders and the write lock: a new order is routed before the write transaction,
which then only checks that the plan's inputs are unchanged and writes it; a large order
gets a transaction of its own."""
from __future__ import annotations

import contextlib

import pytest

from connector.domain.routing import Router
from connector.services.inbox import BATCH_LINES, PREPARE_LINES
from connector.store import Store
from tests.conftest import SHOPIFY_SHOP
from tests.e2e.test_webhooks import nyc_order, reservations

SKUS = ["CANDLE-FIG", "CANDLE-CEDAR", "ZINE-04", "TEE-LOGO-M"]


def big_order(order_id: int, lines: int, now) -> dict:
    order = nyc_order(order_id, order_id % 100_000, lines=(("CANDLE-FIG", 1),), now=now)
    template = order["line_items"][0]
    order["line_items"] = [{**template, "id": order_id * 10_000 + i, "sku": SKUS[i % len(SKUS)], "quantity": 1,
                            "current_quantity": 1, "fulfillable_quantity": 1} for i in range(lines)]
    return order


@pytest.fixture
def plans_made(monkeypatch, store):
    """Each full routing computation (Router._plan), and whether the write lock was held."""
    made: list[bool] = []
    original = Router._plan

    def recording(self, *args, **kwargs):
        made.append(store.conn.in_transaction)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Router, "_plan", recording)
    return made


def test_a_new_order_is_planned_before_the_write_transaction(post_shopify, container, store, clock, plans_made):
    order = big_order(7_100_001, PREPARE_LINES, clock())
    assert post_shopify(order).status_code == 200

    assert container.inbox.process(store).processed == 1

    assert plans_made == [False]  # planned once, outside; inside only checked and written
    held = reservations(store, SHOPIFY_SHOP, str(order["id"]))
    assert len(held) + len([d for d in store.current_decisions(SHOPIFY_SHOP, str(order["id"]))
                            if d["node_id"] is None]) == PREPARE_LINES
    assert store.reservation_totals_drift() == []


def test_a_plan_whose_stock_changed_meanwhile_is_made_again_inside(post_shopify, container, store, clock,
                                                                   plans_made, monkeypatch):
    order = big_order(7_100_002, PREPARE_LINES, clock())
    assert post_shopify(order).status_code == 200
    original = type(container.inbox)._prepare
    emptied: list[tuple[str, str]] = []

    def then_stock_changes(self, store_, rows):
        events = original(self, store_, rows)
        [prepared] = self.routing(store_, SHOPIFY_SHOP, clock()).prepared.values()
        first = prepared.result.routed[0]
        emptied.append((first.node_id, first.sku))
        store_.set_stock(SHOPIFY_SHOP, first.node_id, first.sku, on_hand=0, committed=0, available=0,
                         source="test", now=clock())  # e.g. a sync lands between plan and write
        return events

    monkeypatch.setattr(type(container.inbox), "_prepare", then_stock_changes)
    assert container.inbox.process(store).processed == 1

    assert plans_made == [False, True]
    held = reservations(store, SHOPIFY_SHOP, str(order["id"])).values()
    assert held and all((node_id, sku) != emptied[0] for node_id, sku, _ in held)
    assert store.reservation_totals_drift() == []


def test_a_large_order_gets_a_transaction_of_its_own(post_shopify, container, store, clock, monkeypatch):
    small = [nyc_order(7_200_000 + i, 10 + i, lines=(("ZINE-04", 1),), now=clock()) for i in range(4)]
    large = big_order(7_200_100, BATCH_LINES + 1, clock())
    for payload in [*small[:2], large, *small[2:]]:
        assert post_shopify(payload).status_code == 200
    batches: list[list[str]] = []
    original_write = Store.write

    @contextlib.contextmanager
    def write(self):
        batches.append([])
        with original_write(self) as s:
            yield s

    original_apply = type(container.inbox)._apply

    def apply(self, store_, row, now, event=None):
        batches[-1].append(event.order.order_id if event is not None else "?")
        return original_apply(self, store_, row, now, event)

    monkeypatch.setattr(Store, "write", write)
    monkeypatch.setattr(type(container.inbox), "_apply", apply)
    assert container.inbox.process(store).processed == 5

    ids = [str(o["id"]) for o in small]
    assert [b for b in batches if b] == [ids[:2], [str(large["id"])], ids[2:]]
