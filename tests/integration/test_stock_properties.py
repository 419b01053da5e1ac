"""Properties of moving and counting stock over any sequence of steps (hypothesis),
against a real SQLite store: moving stock never creates it, and no node is left
holding fewer units than it has reserved."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from connector import sandbox
from connector.config import file_shops, settings_from_dict
from connector.domain.model import Address, Order, OrderLine
from connector.services.inbox import Inbox
from connector.services.orders import apply_order
from connector.services.shop_config import StaticShopDirectory, sync_network
from connector.services.stock import set_manual_count
from connector.services.transfers import TransferError, Transfers
from connector.store import Store
from tests.conftest import START, FixedClock

SHOP = sandbox.SHOPIFY_SHOP
SKU = "CANDLE-FIG"
# The nodes that hold CANDLE-FIG for New York City: the pop-up, the micro-warehouse and its backup.
NODES = ["popup-soho", "ne-micro", "central"]
SETTINGS = settings_from_dict(sandbox.demo_config(START, ":memory:", "s", "w"))
SHOPS = StaticShopDirectory(file_shops(SETTINGS))

steps = st.lists(st.one_of(
    st.tuples(st.just("recount"), st.sampled_from(NODES), st.integers(0, 12)),
    st.tuples(st.just("order"), st.integers(1, 6)),
    st.tuples(st.just("plan"), st.sampled_from(NODES), st.sampled_from(NODES), st.integers(1, 12)),
    st.tuples(st.just("ship"), st.integers(0, 5), st.one_of(st.none(), st.integers(1, 12))),
    st.tuples(st.just("receive"), st.integers(0, 5)),
), max_size=25)


def network_units(store: Store) -> int:
    shelves = sum(r["available"] for r in store.stock_rows(SHOP) if r["sku"] == SKU)
    return shelves + sum(units for (_, sku), units in store.inbound_units(SHOP, ["in_transit"]).items() if sku == SKU)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=3, max_size=3), steps)
def test_moving_stock_never_creates_it_and_no_node_stays_over_reserved(initial, sequence):
    clock = FixedClock(START)
    store = Store.open(":memory:")
    store.migrate()
    with store.write():
        sync_network(store, map(SHOPS.require, SHOPS.ids()), clock())
    routing = Inbox(SETTINGS, SHOPS, {}, clock).routing
    transfers = Transfers(clock)
    for node_id, units in zip(NODES, initial):
        store.set_stock(SHOP, node_id, SKU, on_hand=units, committed=0, available=units, source="test", now=clock())
    planned: list[int] = []
    for number, step in enumerate(sequence):
        clock.advance(minutes=1)
        before = network_units(store)
        expected_change = 0
        kind = step[0]
        if kind == "recount":
            _, node_id, units = step
            expected_change = units - (store.stock_level(SHOP, node_id, SKU) or 0)
            set_manual_count(store, SHOP, node_id, SKU, units, clock(), routing=routing)
        elif kind == "order":
            order = Order(SHOP, f"o{number}", f"#{number}", "shopify", clock(), clock(), Address("US", "NY", "10012"),
                          (OrderLine("1", SKU, step[1]),))
            with store.write():
                apply_order(store, routing(store, SHOP, clock()), order, clock())
        elif kind == "plan":
            _, source, destination, units = step
            if source != destination:
                planned.append(store.add_transfer(SHOP, sku=SKU, from_node=source, to_node=destination, units=units,
                                                  unit_cost=1.0, lead_days=1, status="approved", emergency=False,
                                                  approval_reason="test", now=clock()))
        elif planned:
            transfer_id = planned[step[1] % len(planned)]
            try:
                if kind == "ship":
                    transfers.ship(store, transfer_id, "prop", units=step[2])
                else:
                    transfers.receive(store, transfer_id, "prop")
            except TransferError:
                pass  # refused: nothing may have changed
        assert network_units(store) == before + expected_change, (step, before)
        assert store.over_reserved(SHOP) == [], step
        assert store.reservation_totals_drift() == []
    store.close()
