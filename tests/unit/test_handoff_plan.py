"""Which fulfillment orders move where, which may not and why, and what a shipment fulfils:
plain data in, plans out (connector/domain/handoff.py)."""
from __future__ import annotations

from connector.domain.handoff import FulfillmentOrder, FulfillmentOrderLine, fulfilment_lines, plan_moves

CENTRAL, NE, GARAGE = "gid://shopify/Location/101", "gid://shopify/Location/102", "gid://shopify/Location/105"


def fo(gid, location, lines, status="OPEN", request="UNSUBMITTED", actions=("MOVE", "CREATE_FULFILLMENT")):
    return FulfillmentOrder(gid, status, request, location, f"loc {location[-3:]}", frozenset(actions),
                            tuple(FulfillmentOrderLine(f"{gid}-{line_id}", line_id, sku, units)
                                  for line_id, sku, units in lines))


ORDER = fo("FO1", CENTRAL, [("1", "CANDLE-FIG", 2), ("2", "CANDLE-CEDAR", 1)])


def test_all_lines_to_one_other_location_move_the_whole_fulfillment_order():
    plan = plan_moves([ORDER], {"1": ("ne-micro", NE), "2": ("ne-micro", NE)})
    assert [(m.fulfillment_order_id, m.location_id, m.node_id, m.lines) for m in plan.moves] == [
        ("FO1", NE, "ne-micro", None)]
    assert plan.refusals == () and plan.in_place == frozenset()


def test_lines_to_two_locations_move_only_those_lines():
    plan = plan_moves([ORDER], {"1": ("ne-micro", NE), "2": ("garage", GARAGE)})
    assert sorted((m.node_id, m.lines) for m in plan.moves) == [
        ("garage", (("FO1-2", 1),)), ("ne-micro", (("FO1-1", 2),))]


def test_a_line_staying_put_keeps_the_rest_of_the_fulfillment_order_there():
    plan = plan_moves([ORDER], {"1": ("central", CENTRAL), "2": ("garage", GARAGE)})
    assert [(m.node_id, m.lines) for m in plan.moves] == [("garage", (("FO1-2", 1),))]
    assert plan.in_place == frozenset({"central"})


def test_lines_already_where_they_belong_ask_for_nothing():
    plan = plan_moves([fo("FO1", NE, [("1", "A", 2), ("2", "B", 1)])], {"1": ("ne-micro", NE), "2": ("ne-micro", NE)})
    assert plan.moves == () and plan.refusals == () and plan.in_place == frozenset({"ne-micro"})


def test_work_started_is_never_moved_and_says_why():
    started = fo("FO1", CENTRAL, [("1", "A", 2)], status="IN_PROGRESS", actions=("CREATE_FULFILLMENT",))
    plan = plan_moves([started], {"1": ("ne-micro", NE)})
    assert plan.moves == ()
    assert [(r.node_id, r.reason) for r in plan.refusals] == [
        ("ne-micro", "Shopify's fulfillment order at loc 101 was not moved: work on it has started in Shopify (in progress)")]


def test_a_submitted_request_or_a_missing_move_action_is_refused():
    submitted = fo("FO1", CENTRAL, [("1", "A", 2)], request="SUBMITTED", actions=())
    assert "a fulfillment request was already sent" in plan_moves([submitted], {"1": ("n", NE)}).refusals[0].reason
    no_move = fo("FO1", CENTRAL, [("1", "A", 2)], actions=("CREATE_FULFILLMENT",))
    assert "does not offer to move it" in plan_moves([no_move], {"1": ("n", NE)}).refusals[0].reason


def test_fulfilled_lines_are_left_out():
    done = fo("FO1", CENTRAL, [("1", "A", 0), ("2", "B", 1)])
    plan = plan_moves([done], {"1": ("n", NE), "2": ("n", NE)})
    assert [(m.lines) for m in plan.moves] == [None]  # the one unfulfilled line: the whole order moves


def test_a_shipment_fulfils_only_its_lines_at_its_location_and_never_more_than_is_left():
    at_garage = fo("FO2", GARAGE, [("1", "A", 2), ("3", "C", 1)])
    elsewhere = fo("FO1", CENTRAL, [("2", "B", 1)])
    assert fulfilment_lines([elsewhere, at_garage], GARAGE, {"1": 5, "2": 1}) == {"FO2": (("FO2-1", 2),)}
    closed = fo("FO3", GARAGE, [("1", "A", 2)], status="CLOSED", actions=())
    assert fulfilment_lines([closed], GARAGE, {"1": 2}) == {}


def test_a_title_that_looks_like_a_formula_stays_text_in_the_csv():
    from datetime import date

    from connector.services.handoff import PackingDay, Pick, pick_list_csv

    day = PackingDay("garage", "Garage", date(2026, 11, 22),
                     (Pick("MUG-1", "=HYPERLINK(\"x\")", 2, ("#1", "#2")),), (), ())
    assert pick_list_csv(day).splitlines()[1] == "garage,2026-11-22,MUG-1,\"'=HYPERLINK(\"\"x\"\")\",2,#1 #2"
