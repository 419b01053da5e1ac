"""Risk levels and the projected stock of a node (connector/domain/inventory.py)."""
from __future__ import annotations

import pytest

from connector.domain.inventory import Risk, arrival_day, classify, project_units


def risk(sellable=50, position=None, weekly=70.0, lead=7.0, reorder_point=90):
    return classify(sellable=sellable, position=sellable if position is None else position, weekly_demand=weekly,
                    lead_time_days=lead, reorder_point=reorder_point)


def test_no_forecast_demand_is_not_a_risk_even_when_empty():
    assert risk(sellable=0, weekly=0.0) is Risk.NO_DEMAND
    assert not Risk.NO_DEMAND.at_risk


def test_nothing_sellable_with_demand_is_out_of_stock_even_with_a_transfer_coming():
    assert risk(sellable=0, position=500) is Risk.OUT_OF_STOCK
    assert Risk.OUT_OF_STOCK.at_risk


def test_cover_shorter_than_the_lead_time_is_a_stockout_risk():
    # 10 a day: 69 units last 6.9 days, a refill takes 7
    assert risk(sellable=69) is Risk.STOCKOUT_RISK
    assert Risk.STOCKOUT_RISK.at_risk
    # exactly the lead time of cover is not short of it, but it is below the reorder point (90)
    assert risk(sellable=70) is Risk.BELOW_REORDER_POINT


def test_a_planned_transfer_counts_toward_cover_as_the_reorder_command_counts_it():
    assert risk(sellable=30, position=75) is Risk.BELOW_REORDER_POINT
    assert risk(sellable=30, position=91) is Risk.OK


def test_at_the_reorder_point_it_is_time_to_reorder_and_above_it_ok():
    assert risk(sellable=90) is Risk.BELOW_REORDER_POINT
    assert risk(sellable=91) is Risk.OK
    assert not Risk.BELOW_REORDER_POINT.at_risk and not Risk.OK.at_risk


def test_levels_sort_most_urgent_first_and_say_what_they_mean():
    assert sorted(Risk) == [Risk.OUT_OF_STOCK, Risk.STOCKOUT_RISK, Risk.BELOW_REORDER_POINT, Risk.OK, Risk.NO_DEMAND]
    assert Risk.STOCKOUT_RISK.label == "Runs out before a refill"
    assert all(level.label and level.explanation for level in Risk)


def test_projection_runs_down_by_the_daily_demand_and_stops_at_zero():
    p = project_units("popup", sellable=30, weekly_demand=70.0, arrivals={}, days=6)
    assert p.units == (30, 20, 10, 0, 0, 0)
    assert p.runs_out_on == 3


def test_a_transfer_refills_on_its_arrival_day_from_what_is_left():
    p = project_units("popup", sellable=30, weekly_demand=70.0, arrivals={5: 40}, days=8)
    assert p.units == (30, 20, 10, 0, 0, 40, 30, 20)  # demand on the empty days is not owed later
    assert p.runs_out_on == 3
    on_time = project_units("popup", sellable=30, weekly_demand=70.0, arrivals={3: 40}, days=6)
    assert on_time.units == (30, 20, 10, 40, 30, 20) and on_time.runs_out_on is None


def test_an_overdue_transfer_lands_today():
    assert arrival_day(-1.5) == 0
    assert arrival_day(0) == 0
    assert arrival_day(2.1) == 3
    p = project_units("n", sellable=0, weekly_demand=7.0, arrivals={0: 5}, days=3)
    assert p.units == (5, 4, 3) and p.runs_out_on is None


def test_without_demand_stock_stays_and_never_runs_out():
    p = project_units("hub", sellable=0, weekly_demand=0.0, arrivals={}, days=3)
    assert p.units == (0, 0, 0) and p.runs_out_on is None
    with pytest.raises(ValueError):
        project_units("hub", sellable=1, weekly_demand=1.0, arrivals={}, days=0)
