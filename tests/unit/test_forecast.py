"""Demand forecast: weekly buckets, smoothing, new SKUs, launch uplift.

Numbers are small enough to check by hand; the comments show the arithmetic.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from connector.domain.forecast import (
    Forecast,
    ForecastPolicy,
    LaunchUplift,
    forecast_demand,
    uplifted_weeks,
    weekly_buckets,
)

AS_OF = datetime(2026, 11, 23, tzinfo=timezone.utc)  # a Monday, 00:00 UTC
WEEK = timedelta(weeks=1)
RISING = [10, 20, 30, 40, 50, 60, 70, 80]


def forecast(history, *, skus=None, regions=("r",), policy=ForecastPolicy(), categories=None, priors=None):
    categories = categories or {}
    priors = priors or {}
    return forecast_demand(
        history, skus=skus if skus is not None else {sku for sku, _ in history}, regions=regions,
        policy=policy, category_of=categories.get, prior_weekly=priors.get,
    )


def one(history, sku="A", region="r", **kw) -> Forecast:
    return forecast(history, **kw)[(sku, region)]


# ---------------------------------------------------------------- weekly buckets


def test_sale_exactly_on_a_week_boundary_belongs_to_the_week_it_starts():
    last_week_starts = AS_OF - WEEK
    sales = [
        ("A", "r", last_week_starts, 5),
        ("A", "r", last_week_starts - timedelta(seconds=1), 3),
        ("A", "r", AS_OF, 100),  # the week now starting is incomplete: not counted
        ("A", "r", AS_OF - 4 * WEEK, 1),  # first instant of the window
    ]
    assert weekly_buckets(sales, as_of=AS_OF, weeks=4) == {("A", "r"): [1, 0, 3, 5]}


def test_weeks_are_placed_by_instant_whatever_the_timezone():
    new_york = ZoneInfo("America/New_York")
    sales = [
        ("A", "r", datetime(2026, 11, 15, 19, 0, tzinfo=new_york), 2),  # = 2026-11-16 00:00 UTC: last week
        ("A", "r", datetime(2026, 11, 15, 18, 59, tzinfo=new_york), 1),  # a minute earlier: the week before
    ]
    assert weekly_buckets(sales, as_of=AS_OF.astimezone(new_york), weeks=2) == {("A", "r"): [1, 2]}


def test_history_starts_at_the_skus_first_sale_in_any_region():
    sales = [
        ("B", "east", AS_OF - 2 * WEEK + timedelta(days=1), 4),  # B first sells in week 2 of 4
        ("C", "west", AS_OF - 3 * WEEK, 1),  # C first sells in the west in week 1 ...
        ("C", "east", AS_OF - timedelta(hours=1), 6),  # ... so the east's weeks 1-2 are real zeros
    ]
    assert weekly_buckets(sales, as_of=AS_OF, weeks=4) == {
        ("B", "east"): [4, 0],
        ("C", "east"): [0, 0, 6],
        ("C", "west"): [1, 0, 0],
    }


def test_a_sale_before_the_window_means_the_whole_window_is_history():
    sales = [("D", "r", AS_OF - 10 * WEEK, 50), ("D", "r", AS_OF - timedelta(days=1), 2)]
    assert weekly_buckets(sales, as_of=AS_OF, weeks=4) == {("D", "r"): [0, 0, 0, 2]}


def test_fully_refunded_lines_do_not_start_history():
    sales = [("E", "r", AS_OF - 4 * WEEK, 0), ("E", "r", AS_OF - timedelta(days=1), 2)]
    assert weekly_buckets(sales, as_of=AS_OF, weeks=4) == {("E", "r"): [2]}


@pytest.mark.parametrize("sales, as_of", [
    ([("A", "r", AS_OF - WEEK, -1)], AS_OF),
    ([("A", "r", datetime(2026, 11, 20), 1)], AS_OF),
    ([], datetime(2026, 11, 23)),
])
def test_negative_units_and_naive_datetimes_are_refused(sales, as_of):
    with pytest.raises(ValueError):
        weekly_buckets(sales, as_of=as_of, weeks=4)


# ---------------------------------------------------------------- own history


def test_holt_picks_up_a_rising_trend_that_ewma_lags():
    holt = one({("A", "r"): RISING})
    ewma = one({("A", "r"): RISING}, policy=ForecastPolicy(trend_min_weeks=9))
    assert (holt.method, ewma.method) == ("holt", "ewma")
    assert ewma.weekly < 80 < holt.weekly < 90  # EWMA trails the last week; damped Holt passes it but not the line


def test_undamped_holt_follows_a_straight_line_exactly():
    # The initial line is 10 + 10t; with no damping every prediction is exact,
    # so the next week is 90 and there is no error to make sigma from.
    result = one({("A", "r"): RISING}, policy=ForecastPolicy(damping=1.0))
    assert (result.weekly, result.sigma) == (pytest.approx(90.0), 0.0)


def test_damped_holt_by_hand():
    # Start: line through weeks 0-1, level 0, trend 10. alpha 0.3, beta 0.1, damping 0.95.
    # week 1: predicted 0 + 0.95*10 = 9.5; level 9.5 + 0.3*0.5 = 9.65; trend 0.1*9.65 + 0.9*0.95*10 = 9.515
    # week 2: predicted 9.65 + 0.95*9.515 = 18.68925; level 18.68925 + 0.3*1.31075 = 19.082475;
    #         trend 0.1*(19.082475 - 9.65) + 0.855*9.515 = 9.0785725
    # next:   19.082475 + 0.95*9.0785725 = 27.70711888
    result = one({("A", "r"): [0, 10, 20]}, policy=ForecastPolicy(trend_min_weeks=2))
    assert (result.method, result.weekly) == ("holt", pytest.approx(27.70711888))


def test_ewma_below_trend_min_weeks():
    result = one({("A", "r"): [10, 20, 40]})
    assert result.method == "ewma"
    assert result.weekly == pytest.approx(21.1)  # 10 -> 10 + 0.3*10 = 13 -> 13 + 0.3*27 = 21.1


def test_flat_series_has_no_one_step_error():
    result = one({("A", "r"): [50] * 8})
    assert (result.method, result.weekly, result.sigma) == ("holt", pytest.approx(50.0), 0.0)


def test_sigma_is_poisson_with_too_few_one_step_errors():
    result = one({("A", "r"): [50, 50, 50]})  # two one-step errors
    assert result.sigma == pytest.approx(math.sqrt(50))


def test_sigma_is_the_rms_of_one_step_errors():
    # EWMA from 50: errors +10 (level 53), -13 (level 49.1), +10.9 (52.37), -12.37.
    result = one({("A", "r"): [50, 60, 40, 60, 40]})
    errors = [10, -13, 10.9, -12.37]
    assert result.sigma == pytest.approx(math.sqrt(sum(e * e for e in errors) / 4))


def test_a_launch_spike_in_the_first_weeks_does_not_become_a_falling_trend():
    result = one({("A", "r"): [500] + [50] * 7})
    assert result.method == "holt"
    assert result.weekly == pytest.approx(50.0)


def test_a_region_where_an_established_sku_never_sold_is_zero_demand():
    result = forecast({("A", "east"): [10] * 8}, regions=("east", "west"))[("A", "west")]
    assert (result.weekly, result.weeks_of_history, result.method) == (0.0, 8, "holt")


def test_no_history_and_no_reference_is_no_demand():
    assert one({}, skus=["A"]) == Forecast("A", "r", 0.0, 0.0, "none", 0)


def test_forecasts_only_requested_skus_and_regions():
    result = forecast({("A", "r"): [5] * 3, ("B", "r"): [5] * 3}, skus=["B"], regions=["r", "s"])
    assert set(result) == {("B", "r"), ("B", "s")}


# ---------------------------------------------------------------- new SKUs


CATEGORY_HISTORY = {
    ("A", "east"): [100] * 8, ("A", "west"): [20] * 8,  # holt: 100 and 20
    ("B", "east"): [60] * 3,  # ewma 60; B never sold west: 0 there
    ("D", "east"): [1000] * 8,  # another category
    ("E", "east"): [500],  # same category, one week: not yet a peer
}
CATEGORIES = {"A": "candles", "B": "candles", "C": "candles", "E": "candles", "D": "mugs"}


def test_new_sku_takes_its_categorys_average_regional_demand():
    result = forecast(CATEGORY_HISTORY, skus=["C"], regions=["east", "west"], categories=CATEGORIES)
    east, west = result[("C", "east")], result[("C", "west")]
    assert (east.weekly, west.weekly) == (pytest.approx(80.0), pytest.approx(10.0))  # (100+60)/2, (20+0)/2
    assert (east.method, east.weeks_of_history) == ("category", 0)
    assert east.sigma == pytest.approx(math.sqrt(80.0))


def test_one_week_of_own_data_is_blended_with_the_category():
    # E's peers are A and B (not E itself): east reference 80; E sold 500 in its one week.
    result = forecast(CATEGORY_HISTORY, skus=["E"], regions=["east"], categories=CATEGORIES)[("E", "east")]
    assert (result.method, result.weeks_of_history) == ("category", 1)
    assert result.weekly == pytest.approx(0.3 * 500 + 0.7 * 80)


@pytest.mark.parametrize("weeks", range(6))
def test_own_weeks_take_over_from_the_category_gradually(weeks):
    # Category reference 100, the SKU sells 40 a week: 40 + 60 * 0.7^n.
    history = {("A", "r"): [100] * 8, ("N", "r"): [40] * weeks}
    result = one(history, sku="N", categories={"A": "c", "N": "c"}, skus=["N"])
    assert result.weekly == pytest.approx(40 + 60 * 0.7 ** weeks)
    assert result.method == ("category" if weeks < 2 else "ewma")


def test_from_trend_min_weeks_on_only_own_history_counts():
    history = {("A", "r"): [100] * 8, ("N", "r"): [40] * 6}
    result = one(history, sku="N", categories={"A": "c", "N": "c"})
    assert (result.method, result.weekly) == ("holt", pytest.approx(40.0))


def test_prior_is_split_by_the_shops_regional_mix():
    history = {("A", "east"): [100, 50], ("A", "west"): [50, 50], ("B", "east"): [50]}  # east 200, west 100
    result = forecast(history, skus=["N"], regions=["east", "west"], priors={"N": 30.0})
    assert (result[("N", "east")].weekly, result[("N", "west")].weekly) == (pytest.approx(20.0), pytest.approx(10.0))
    assert result[("N", "east")].method == "prior"


def test_prior_is_split_evenly_when_the_shop_has_no_history():
    result = forecast({}, skus=["N"], regions=["east", "west"], priors={"N": 30.0})
    assert [f.weekly for f in result.values()] == [pytest.approx(15.0), pytest.approx(15.0)]


def test_a_configured_prior_wins_over_the_category():
    history = {("A", "r"): [100] * 8}
    result = one(history, sku="N", skus=["N"], categories={"A": "c", "N": "c"}, priors={"N": 7.0})
    assert (result.method, result.weekly) == ("prior", pytest.approx(7.0))


def test_a_negative_prior_is_refused():
    with pytest.raises(ValueError):
        one({}, sku="N", skus=["N"], priors={"N": -1.0})


# ---------------------------------------------------------------- launch uplift


T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
TEN = Forecast("CANDLE-1", "r", weekly=10.0, sigma=3.0, method="holt", weeks_of_history=20)


def launch(starts_week, ends_week, factor=3.0, pattern="CANDLE-1"):
    return LaunchUplift(pattern, T0 + starts_week * WEEK, T0 + ends_week * WEEK, factor)


@pytest.mark.parametrize("launches, expected", [
    ((), 40),
    ((launch(-1, 10),), 120),  # the whole horizon inside the launch: 4 weeks x 30
    ((launch(1, 2),), 60),  # one of four weeks tripled: 40 + 1 x 20
    ((launch(3.5, 10),), 50),  # the last half week tripled: 40 + 0.5 x 20
    ((launch(-3, 0),), 40),  # ends as the horizon starts
    ((launch(4, 6),), 40),  # starts as the horizon ends
    ((launch(1, 2, pattern="MUG-*"),), 40),  # another SKU's launch
    ((launch(1, 2, pattern="CANDLE-*"),), 60),  # glob
    ((launch(0, 2, 2.0, "CANDLE-*"), launch(1, 3)), 90),  # overlap takes the larger: 10 x (2 + 3 + 3 + 1)
])
def test_launch_uplift_applies_to_the_part_of_the_horizon_inside_the_window(launches, expected):
    assert TEN.weekly * uplifted_weeks(TEN.sku, start=T0, weeks=4, launches=launches) == pytest.approx(expected)


def test_launch_window_must_be_aware_and_ordered():
    with pytest.raises(ValueError):
        LaunchUplift("A", T0, T0, 2.0)
    with pytest.raises(ValueError):
        LaunchUplift("A", datetime(2026, 12, 1), datetime(2026, 12, 8), 2.0)


# ---------------------------------------------------------------- properties


weeks_series = st.lists(st.floats(0, 1000, allow_nan=False), max_size=12)
histories = st.dictionaries(
    st.tuples(st.sampled_from(["A", "B", "C", "D"]), st.sampled_from(["east", "west"])), weeks_series, max_size=8,
)
categories = st.dictionaries(st.sampled_from(["A", "B", "C", "D", "N"]), st.sampled_from(["x", "y"]))


@settings(max_examples=300, deadline=None)
@given(histories, categories, st.dictionaries(st.sampled_from(["C", "N"]), st.floats(0, 500)),
       st.integers(2, 8), st.floats(0.05, 1), st.floats(0, 1))
def test_forecasts_are_never_negative(history, cats, priors, trend_min, alpha, beta):
    policy = ForecastPolicy(alpha=alpha, beta=beta, trend_min_weeks=trend_min)
    result = forecast(history, skus=["A", "B", "C", "D", "N"], regions=["east", "west"], policy=policy,
                      categories=cats, priors=priors)
    assert len(result) == 10
    for f in result.values():
        assert f.weekly >= 0 and f.sigma >= 0 and math.isfinite(f.weekly) and math.isfinite(f.sigma)


@settings(max_examples=300, deadline=None)
@given(histories, categories, st.floats(0.1, 50))
def test_scaling_all_history_scales_the_forecast(history, cats, k):
    skus = ["A", "B", "C", "D", "N"]
    base = forecast(history, skus=skus, regions=["east", "west"], categories=cats)
    scaled = forecast({key: [k * x for x in series] for key, series in history.items()},
                      skus=skus, regions=["east", "west"], categories=cats)
    for key, f in base.items():
        assert scaled[key].weekly == pytest.approx(k * f.weekly, rel=1e-9, abs=1e-6)
        assert scaled[key].method == f.method


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["east", "west"]),
                          st.integers(-6 * 7 * 24, 24), st.integers(0, 9))))
def test_buckets_hold_every_unit_sold_in_the_window_and_share_a_start_per_sku(rows):
    sales = [(sku, region, AS_OF + timedelta(hours=h), units) for sku, region, h, units in rows]
    result = weekly_buckets(sales, as_of=AS_OF, weeks=4)
    in_window = sum(units for _, _, h, units in rows if -4 * 7 * 24 <= h < 0)
    assert sum(sum(series) for series in result.values()) == in_window
    for sku in ("A", "B"):
        assert len({len(series) for (s, _), series in result.items() if s == sku}) <= 1


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 10), st.floats(0, 10), st.lists(st.tuples(st.floats(-5, 15), st.floats(0.1, 5),
                                                              st.floats(0, 5)), max_size=3))
def test_uplifted_weeks_add_up_over_a_split_horizon(first, second, windows):
    launches = [launch(start, start + length, factor, "CANDLE-*") for start, length, factor in windows]
    whole = uplifted_weeks("CANDLE-1", start=T0, weeks=first + second, launches=launches)
    split = (uplifted_weeks("CANDLE-1", start=T0, weeks=first, launches=launches)
             + uplifted_weeks("CANDLE-1", start=T0 + first * WEEK, weeks=second, launches=launches))
    assert whole == pytest.approx(split, rel=1e-6, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from("ABCDEFGHIJ"),
                       st.tuples(st.sampled_from(["c1", "c2", None]),
                                 st.one_of(st.just([]), st.lists(st.integers(0, 90), min_size=8, max_size=8))),
                       min_size=1))
def test_a_new_skus_reference_is_the_mean_of_its_categorys_other_established_skus(catalogue):
    # Established SKUs (8 weeks: their own trend fit) and new ones (no sales); a new SKU's
    # forecast is the mean over the others of its category of their own forecasts.
    history = {(sku, "r"): series for sku, (_, series) in catalogue.items() if series}
    categories = {sku: category for sku, (category, _) in catalogue.items() if category}
    result = forecast(history, skus=list(catalogue), categories=categories)
    for sku, (category, series) in catalogue.items():
        if series or category is None:
            continue
        peers = [result[(peer, "r")].weekly for peer, (c, s) in catalogue.items() if c == category and s]
        got = result[(sku, "r")]
        if peers:
            assert (got.method, got.weekly) == ("category", pytest.approx(sum(peers) / len(peers)))
        else:
            assert got.method == "none"
