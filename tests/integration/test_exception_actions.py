"""Acting on exception lines (options, route by hand, re-evaluate, dismiss) and their
automatic second look when stock arrives, the configuration changes or time passes:
services over a real SQLite file, orders arriving as signed Shopify webhooks."""
from __future__ import annotations

from datetime import timedelta

import pytest

from connector import sandbox
from connector.exception_store import ExceptionStore
from connector.services.exceptions import ExceptionActionError
from connector.services.stock import set_manual_count
from tests.integration.test_sync import NOW, SECRET, SHOP, fake_sb, inv, send_order  # noqa: F401 - fixtures below
from tests.integration.test_sync import clock, container, fakes, make_container, store  # noqa: F401

SKU = "CANDLE-CEDAR"
LINE_OF = {}


@pytest.fixture(autouse=True)
def synced(container, store, fakes):
    """ne-micro and west-3pl (fed by ShipBob) synced just now, so routing counts their stock whole."""
    fake_sb(fakes).inventory = [inv(10, "TEE-LOGO-M", 0), inv(156, "TEE-LOGO-M", 0)]
    assert container.sync.sync(store, SHOP)[0].ok


def stock(store, node_id, units, sku=SKU):
    """Stock written straight into the database: no hook sees it."""
    store.set_stock(SHOP, node_id, sku, on_hand=units, committed=0, available=units, source="manual", now=NOW)


def exception_order(container, store, quantity=2, order_id=401, **address):
    """An order to New York City (1-day promise) for ``quantity`` × SKU that nothing can ship."""
    order_id, payload = send_order(container, store, SKU, quantity, order_id=order_id, **address)
    decision = store.current_decisions(SHOP, order_id)[0]
    assert decision["node_id"] is None and decision["exception"] == "partial_stock", decision
    LINE_OF[order_id] = payload
    return order_id, decision["line_id"]


def update_order(container, store, order_id, quantity):
    """An orders/updated webhook for the order: the same line, ``quantity`` of it, later."""
    payload = dict(LINE_OF[order_id])
    container.clock.advance(minutes=1)
    payload["updated_at"] = container.clock().isoformat()
    payload["line_items"] = [dict(payload["line_items"][0], quantity=quantity, current_quantity=quantity)]
    hook = sandbox.shopify_webhook(SECRET, payload, topic="orders/updated")
    assert container.inbox.ingest(store, "shopify", hook.body, hook.headers).status == 200
    container.inbox.process(store)


def events(store, kind):
    return store.events(SHOP, kind)


# ---------------------------------------------------------------- options


def test_options_show_every_node_with_what_it_costs_and_why_it_cannot(container, store):
    order_id, line_id = exception_order(container, store)
    stock(store, "central", 5)
    options = {o.node_id: o for o in container.exceptions.options(store, SHOP, order_id, line_id)}

    assert set(options) == set(container.shops.require(SHOP).network.nodes)
    central = options["central"]
    assert central.can_take and central.routed_as == "active"
    assert (central.transit_days, central.promise_days, central.sellable_now, central.sellable_after) == (2, 1, 5, 3)
    assert central.cost_text().startswith("2 transit days against the 1-day promise; one more parcel at 8.90")
    assert central.cost_text().endswith("leaves 3 sellable at central")
    assert "slower than nyc-metro's 1-day promise" in central.warnings[0]
    assert options["ne-micro"].refusals == ("ne-micro has 0 sellable CANDLE-CEDAR, the line needs 2",)
    assert "west-3pl has no lane to New York City metro (nyc-metro)" in options["west-3pl"].refusals
    assert any("lacks fragile" in r for r in options["cold-room"].refusals)
    # Those that can take it come first.
    assert next(iter(options.values())).node_id == "central"


def test_options_use_routings_own_verdict_on_a_node(container, store):
    order_id, line_id = exception_order(container, store)
    stock(store, "ne-micro", 5)
    container.shop_config.set_node_status(store, SHOP, "ne-micro", "offline", "flooded", "test")
    # The configuration change's own re-look finds ne-micro offline: still an exception.
    assert store.current_decisions(SHOP, order_id)[0]["node_id"] is None
    option = next(o for o in container.exceptions.options(store, SHOP, order_id, line_id) if o.node_id == "ne-micro")
    routing = container.inbox.routing(store, SHOP, container.clock())
    verdict = routing.router.node_state(routing.network.nodes["ne-micro"], {}, container.clock()).describe()
    assert option.routed_as == verdict == "offline"
    assert option.refusals == ("ne-micro is offline",)


def test_options_of_a_line_that_is_no_exception_say_why(container, store):
    stock(store, "ne-micro", 5)
    order_id, _ = send_order(container, store, SKU, 1, order_id=402)
    line_id = store.current_decisions(SHOP, order_id)[0]["line_id"]
    with pytest.raises(ExceptionActionError, match=r"is not an exception \(it ships from ne-micro\)"):
        container.exceptions.options(store, SHOP, order_id, line_id)
    with pytest.raises(ExceptionActionError, match="no order nope"):
        container.exceptions.options(store, SHOP, "nope", line_id)


# ---------------------------------------------------------------- route by hand


def test_route_to_reserves_explains_counts_and_audits(container, store):
    order_id, line_id = exception_order(container, store)
    stock(store, "central", 5)
    container.exceptions.route_to(store, SHOP, order_id, line_id, "central", "web:ana@example.com",
                                  note="customer agreed to wait a day")

    decision = store.current_decisions(SHOP, order_id)[0]
    assert (decision["node_id"], decision["rule"], decision["exception"]) == ("central", "manual", None)
    assert decision["explanation"].startswith("2 × CANDLE-CEDAR from central, chosen by web:ana@example.com; "
                                              "2 transit days against the 1-day promise")
    assert "leaves 3 sellable at central" in decision["explanation"]
    assert decision["explanation"].endswith("note: customer agreed to wait a day")
    assert [(r.node_id, r.quantity) for r in store.active_reservations(SHOP, order_id)] == [("central", 2)]
    assert store.order(SHOP, order_id).status == "routed"
    assert store.open_exceptions(SHOP) == []
    day = container.inbox.routing(store, SHOP, container.clock()).local_day(container.clock())
    assert store.orders_today(SHOP, day) == {"central": 1}
    [event] = events(store, "exception.routed_by_hand")
    assert event["subject"] == order_id
    assert event["detail"]["by"] == "web:ana@example.com" and "leaves 3 sellable" in event["detail"]["cost"]
    # The next order update keeps the choice: the line holds its reservation.
    update_order(container, store, order_id, 2)
    assert store.current_decisions(SHOP, order_id)[0]["rule"] == "manual"


def test_route_to_a_node_that_forwards_orders_queues_its_hand_over(container, store):
    order_id, line_id = exception_order(container, store)
    container.shop_config.set_node_status(store, SHOP, "ne-micro", "paused", "stocktake", "test")
    stock(store, "ne-micro", 5)
    option = container.exceptions.route_to(store, SHOP, order_id, line_id, "ne-micro", "cli")
    # Paused is allowed knowingly: the warning is in the explanation.
    assert "paused: it ships this line only because you choose it" in option.warnings[0]
    assert "paused" in store.current_decisions(SHOP, order_id)[0]["explanation"]
    assert [(j["node_id"], j["status"]) for j in store.forward_jobs(SHOP)] == [("ne-micro", "pending")]


@pytest.mark.parametrize("node_id, message", [
    ("west-3pl", "cannot ship from west-3pl: west-3pl has no lane to New York City metro"),
    ("ne-micro", "ne-micro has 1 sellable CANDLE-CEDAR, the line needs 2"),
    ("cold-room", "cold-room lacks fragile, which CANDLE-CEDAR needs"),
    ("nowhere", "This shop has no node 'nowhere'"),
])
def test_route_to_refuses_a_node_that_cannot_ship_the_line(container, store, node_id, message):
    order_id, line_id = exception_order(container, store)
    stock(store, "ne-micro", 1)
    stock(store, "west-3pl", 9)
    stock(store, "cold-room", 9)
    with pytest.raises(ExceptionActionError, match=message):
        container.exceptions.route_to(store, SHOP, order_id, line_id, node_id, "cli")
    assert store.active_reservations(SHOP, order_id) == []
    assert store.current_decisions(SHOP, order_id)[0]["exception"] == "partial_stock"


def test_route_to_refuses_an_offline_node(container, store):
    order_id, line_id = exception_order(container, store)
    container.shop_config.set_node_status(store, SHOP, "ne-micro", "offline", "flooded", "test")
    stock(store, "ne-micro", 5)
    with pytest.raises(ExceptionActionError, match="ne-micro is offline"):
        container.exceptions.route_to(store, SHOP, order_id, line_id, "ne-micro", "cli")


# ---------------------------------------------------------------- dismiss


def test_dismiss_needs_a_note_and_keeps_the_reason_the_note_and_who(container, store):
    order_id, line_id = exception_order(container, store)
    with pytest.raises(ExceptionActionError, match="Give a note"):
        container.exceptions.dismiss(store, SHOP, order_id, line_id, "  ", "cli")
    container.exceptions.dismiss(store, SHOP, order_id, line_id, "shipped from the studio by hand", "cli")

    assert store.open_exceptions(SHOP) == []
    [row] = ExceptionStore(store).dismissed(SHOP)
    assert (row["exception"], row["dismissed_by"], row["dismissed_note"]) == (
        "partial_stock", "cli", "shipped from the studio by hand")
    assert store.order(SHOP, order_id).status == "dismissed"
    assert events(store, "exception.dismissed")[0]["subject"] == order_id
    with pytest.raises(ExceptionActionError, match="already dismissed by cli"):
        container.exceptions.dismiss(store, SHOP, order_id, line_id, "again", "cli")


def test_a_dismissed_line_stays_dismissed_until_the_line_changes(container, store):
    order_id, line_id = exception_order(container, store)
    container.exceptions.dismiss(store, SHOP, order_id, line_id, "handled outside", "cli")
    stock(store, "ne-micro", 9)

    update_order(container, store, order_id, 2)  # the same line: stays dismissed, even with stock now
    decision = store.current_decisions(SHOP, order_id)[0]
    assert decision["dismissed_note"] == "handled outside" and decision["node_id"] is None
    assert store.open_exceptions(SHOP) == [] and store.active_reservations(SHOP, order_id) == []
    container.exceptions.recheck(store)  # the periodic look leaves it too
    assert store.current_decisions(SHOP, order_id)[0]["dismissed_note"] == "handled outside"

    update_order(container, store, order_id, 3)  # the line changed: routed as any line
    decision = store.current_decisions(SHOP, order_id)[0]
    assert decision["node_id"] == "ne-micro" and decision["dismissed_at"] is None
    assert store.order(SHOP, order_id).status == "routed"


# ---------------------------------------------------------------- re-evaluate


def test_reevaluate_says_what_happened(container, store):
    order_id, line_id = exception_order(container, store)
    [still] = container.exceptions.reevaluate(store, SHOP, order_id, "cli")
    assert still.node_id is None and "is still an exception: partial_stock" in still.sentence()

    stock(store, "ne-micro", 5)  # typed into the database by hand: no hook saw it
    [routed] = container.exceptions.reevaluate(store, SHOP, order_id, "cli")
    assert routed.node_id == "ne-micro"
    assert routed.sentence().endswith("now ships from ne-micro.")
    assert store.current_decisions(SHOP, order_id)[0]["explanation"].startswith(
        "routed at 10:00 when cli re-evaluated it: 2 × CANDLE-CEDAR from ne-micro")
    assert len(events(store, "exception.reevaluated")) == 2
    with pytest.raises(ExceptionActionError, match="has no open exception to re-evaluate"):
        container.exceptions.reevaluate(store, SHOP, order_id, "cli")


# ---------------------------------------------------------------- on their own


def test_a_sync_that_brings_stock_routes_the_exception_in_its_transaction(container, store, fakes):
    order_id, _ = exception_order(container, store)
    fake_sb(fakes).inventory = [inv(10, SKU, 6)]
    container.clock.advance(minutes=2)
    outcome = container.sync.sync(store, SHOP)[0]

    assert [(o.order_id, o.node_id) for o in outcome.exceptions_routed] == [(order_id, "ne-micro")]
    decision = store.current_decisions(SHOP, order_id)[0]
    assert decision["explanation"].startswith("routed automatically at 10:02 after stock arrived at ne-micro (sync): ")
    assert store.order(SHOP, order_id).status == "routed"
    [event] = events(store, "exception.routed_automatically")
    assert "after stock arrived at ne-micro (sync)" in event["detail"]["why"]


def test_a_hand_count_and_a_received_transfer_route_exceptions(container, store):
    first, _ = exception_order(container, store, order_id=411)
    second, _ = exception_order(container, store, order_id=412)
    set_manual_count(store, SHOP, "ne-micro", SKU, 2, container.clock(), routing=container.inbox.routing,
                     stock_arrived=container.exceptions.stock_arrived)
    assert store.current_decisions(SHOP, first)[0]["explanation"].startswith(
        "routed automatically at 10:00 after stock arrived at ne-micro (hand count)")
    assert store.current_decisions(SHOP, second)[0]["node_id"] is None  # the oldest got the two units

    stock(store, "central", 4)
    with store.write():
        transfer_id = store.add_transfer(SHOP, sku=SKU, from_node="central", to_node="ne-micro", units=4,
                                         unit_cost=0.5, lead_days=1, status="approved", emergency=False,
                                         approval_reason="", now=container.clock())
    container.transfers.ship(store, transfer_id, "cli")  # takes central's 4: nothing can ship the second order
    assert store.current_decisions(SHOP, second)[0]["node_id"] is None
    container.transfers.receive(store, transfer_id, "cli")
    decision = store.current_decisions(SHOP, second)[0]
    assert decision["node_id"] == "ne-micro", decision
    assert f"after stock arrived at ne-micro (transfer #{transfer_id} received)" in decision["explanation"]


def test_a_node_back_to_active_and_a_mode_switch_route_exceptions(container, store):
    container.shop_config.set_node_status(store, SHOP, "ne-micro", "offline", "flooded", "test")
    order_id, _ = exception_order(container, store)
    stock(store, "ne-micro", 5)  # no hook: ne-micro is offline anyway
    container.clock.advance(minutes=5)
    container.shop_config.set_node_status(store, SHOP, "ne-micro", "active", "dry again", "test")
    assert store.current_decisions(SHOP, order_id)[0]["explanation"].startswith(
        "routed automatically at 10:05 after ne-micro was set active: ")

    west, _ = exception_order(container, store, order_id=421, zip_code="94110", province="CA")
    stock(store, "central", 3)  # central serves us-west in 4 days (beyond the 3-day promise, no backup of it)
    assert store.current_decisions(SHOP, west)[0]["node_id"] is None
    container.shop_config.set_mode(store, SHOP, "disruption", None, "test")  # us-west from central only
    decision = store.current_decisions(SHOP, west)[0]
    assert decision["node_id"] == "central", decision
    assert decision["explanation"].startswith("routed automatically at 10:05 after the switch to disruption mode")


def test_the_periodic_recheck_routes_when_a_popup_window_opens_and_writes_nothing_otherwise(container, store):
    document, version = container.shop_config.document(store, SHOP)
    popup = next(n for n in document["nodes"] if n["id"] == "popup-soho")
    popup["active_from"] = (container.clock() + timedelta(hours=1)).isoformat()
    popup["backups"] = []
    container.shop_config.update(store, SHOP, document, version, "test")
    for node_id in ("ne-micro", "central"):
        container.shop_config.set_node_status(store, SHOP, node_id, "offline", "closed", "test")
    order_id, _ = exception_order(container, store)
    stock(store, "popup-soho", 4)

    rows = store.conn.execute("SELECT count(*) FROM routing_decisions").fetchone()[0]
    assert container.exceptions.recheck(store)[SHOP] == 0
    assert store.conn.execute("SELECT count(*) FROM routing_decisions").fetchone()[0] == rows  # nothing new

    container.clock.advance(hours=1, minutes=1)
    assert container.exceptions.recheck(store)[SHOP] == 1
    decision = store.current_decisions(SHOP, order_id)[0]
    assert decision["node_id"] == "popup-soho"
    assert decision["explanation"].startswith("routed automatically at 11:01 after popup-soho's active window opened")


def test_a_change_looks_at_a_bounded_batch_the_oldest_first_and_the_recheck_does_the_rest(container, store):
    container.exceptions.batch = 1
    older, _ = exception_order(container, store, order_id=431)
    container.clock.advance(minutes=1)
    newer, _ = exception_order(container, store, order_id=432)
    set_manual_count(store, SHOP, "ne-micro", SKU, 4, container.clock(), routing=container.inbox.routing,
                     stock_arrived=container.exceptions.stock_arrived)
    assert store.current_decisions(SHOP, older)[0]["node_id"] == "ne-micro"
    assert store.current_decisions(SHOP, newer)[0]["node_id"] is None  # beyond the batch
    assert container.exceptions.recheck(store)[SHOP] == 1
    assert store.current_decisions(SHOP, newer)[0]["explanation"].startswith(
        "routed automatically at 10:01 on the regular re-check")


def test_a_line_whose_sku_changes_is_routed_again_not_left_without_a_decision(container, store):
    """Found by tests/integration/test_exception_properties.py: the old SKU's reservation
    went, and the line was left with no decision at all."""
    stock(store, "ne-micro", 5)
    stock(store, "ne-micro", 5, sku="CANDLE-FIG")
    order_id, payload = send_order(container, store, SKU, 2, order_id=441)
    LINE_OF[order_id] = payload
    payload["line_items"][0]["sku"] = "CANDLE-FIG"
    update_order(container, store, order_id, 2)
    [decision] = store.current_decisions(SHOP, order_id)
    assert (decision["sku"], decision["node_id"]) == ("CANDLE-FIG", "ne-micro")
    assert [(r.sku, r.quantity) for r in store.active_reservations(SHOP, order_id)] == [("CANDLE-FIG", 2)]
