"""Weekly demand per SKU x region, from order history.

Pure and deterministic: the same history, policy and lookups give the same
forecasts. Time only enters as aware datetimes passed in by the caller.

How a (SKU, region) is forecast, by the SKU's weeks of history ``n`` (its
history starts at its first sale in any region, so a region where an
established SKU never sold has ``n`` real zero weeks):

* ``n >= trend_min_weeks``: damped Holt ("holt") on the SKU's own weeks.
* fewer weeks: exponential smoothing (EWMA) of the level, no trend. When the
  SKU has a *reference* (a configured prior, else its category's average) the
  smoother starts from the reference instead of the first week, so the
  reference keeps a weight of ``(1 - alpha) ** n`` and the SKU's own weeks take
  over gradually (alpha 0.3: 70 % after one week, 49 % after two, 12 % after
  six). With fewer than two weeks the method names the reference ("prior" or
  "category"), from two on "ewma": the number moves smoothly either way.
* no weeks and no reference: "none", zero demand.

Forecasts are the baseline (no launch uplift); ``uplifted_weeks`` applies
uplifts to a horizon.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from typing import Callable, Iterable, Mapping, Sequence

WEEK = timedelta(weeks=1)
NEW_SKU_WEEKS = 2  # fewer weeks of own history: the SKU is new and leans on a reference
MIN_SIGMA_ERRORS = 4  # fewer one-step errors are too few to size safety stock on: Poisson sigma instead


@dataclass(frozen=True)
class LaunchUplift:
    """Demand for SKUs matching ``pattern`` is ``factor`` x baseline in [starts, ends)."""

    pattern: str  # exact SKU or fnmatch glob
    starts: datetime
    ends: datetime
    factor: float

    def __post_init__(self) -> None:
        _require_aware(self.starts, "starts")
        _require_aware(self.ends, "ends")
        if self.ends <= self.starts:
            raise ValueError(f"launch {self.pattern!r}: ends must be after starts")
        if not self.factor >= 0:  # also rejects NaN
            raise ValueError(f"launch {self.pattern!r}: factor must be >= 0, got {self.factor}")

    def matches(self, sku: str) -> bool:
        return sku == self.pattern or fnmatchcase(sku, self.pattern)


@dataclass(frozen=True)
class ForecastPolicy:
    alpha: float = 0.3  # level smoothing
    beta: float = 0.1  # trend smoothing
    trend_min_weeks: int = 6  # fewer weeks of history: no trend, plain EWMA
    # The trend is multiplied by ``damping`` every week it is carried forward, so
    # a run of rising weeks (often a viral post that will fade) fades out of the
    # forecast instead of being extrapolated at full strength. 0.95 is mid-range
    # of the 0.8-0.98 usually fitted; 1 is plain Holt.
    damping: float = 0.95
    # Not read by forecast_demand (history carries no dates to discount past
    # launches with): callers hand these to uplifted_weeks / planning.node_targets.
    launches: tuple[LaunchUplift, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        if not 0 <= self.beta <= 1:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if not 0 < self.damping <= 1:
            raise ValueError(f"damping must be in (0, 1], got {self.damping}")
        if self.trend_min_weeks < NEW_SKU_WEEKS:
            raise ValueError(f"trend_min_weeks must be >= {NEW_SKU_WEEKS}, got {self.trend_min_weeks}")


@dataclass(frozen=True)
class Forecast:
    sku: str
    region: str
    weekly: float  # baseline units/week for the coming week (no uplift), >= 0
    sigma: float  # std dev of weekly demand: RMS of one-step errors, or sqrt(weekly) with little history
    method: str  # "holt" | "ewma" | "category" | "prior" | "none"
    weeks_of_history: int


def weekly_buckets(
    sales: Iterable[tuple[str, str, datetime, int]], *, as_of: datetime, weeks: int
) -> dict[tuple[str, str], list[float]]:
    """Units per complete week, oldest first, per (sku, region) that sold in the window.

    Week ``i`` of ``weeks`` is the half-open interval
    ``[as_of - (weeks - i) * 7d, as_of - (weeks - i - 1) * 7d)``: a sale exactly on
    a boundary belongs to the week that starts there, a sale at or after
    ``as_of`` is not counted. Weeks are exact 7 x 24 h in UTC, so a DST change
    does not stretch or shrink one.

    A SKU's series start at the week of its first sale (in any region, including
    sales before the window): weeks before a product existed are not zero demand.
    A region where the SKU never sold in the window has no key; forecast_demand
    treats it as zeros over the SKU's history.
    """
    _require_aware(as_of, "as_of")
    if weeks < 1:
        raise ValueError(f"weeks must be >= 1, got {weeks}")
    end = as_of.astimezone(timezone.utc)
    start = end - weeks * WEEK
    first_sale: dict[str, datetime] = {}
    totals: dict[tuple[str, str], list[float]] = {}
    for sku, region, ordered_at, units in sales:
        _require_aware(ordered_at, "ordered_at")
        if units < 0:
            raise ValueError(f"{sku} in {region} at {ordered_at.isoformat()}: negative units {units}")
        ordered_at = ordered_at.astimezone(timezone.utc)
        if units == 0 or ordered_at >= end:  # a fully refunded line is no demand, and does not start history
            continue
        if sku not in first_sale or ordered_at < first_sale[sku]:
            first_sale[sku] = ordered_at
        if ordered_at >= start:
            totals.setdefault((sku, region), [0.0] * weeks)[(ordered_at - start) // WEEK] += units
    return {
        key: buckets[max(0, (first_sale[key[0]] - start) // WEEK):]
        for key, buckets in sorted(totals.items())
    }


def forecast_demand(
    history: Mapping[tuple[str, str], Sequence[float]],
    *,
    skus: Iterable[str],
    regions: Iterable[str],
    policy: ForecastPolicy,
    category_of: Callable[[str], str | None],
    prior_weekly: Callable[[str], float | None],
) -> dict[tuple[str, str], Forecast]:
    """A forecast for every requested (sku, region); see the module docstring.

    ``history[(sku, region)]``: units per week, oldest first, all ending with
    the same week (``weekly_buckets``). A SKU's history is its longest series:
    a missing region counts as zeros over it, a shorter one is padded with
    zeros in front (the SKU was on sale there, nobody bought).

    ``prior_weekly(sku)``: units/week across all regions, or None. A
    configured prior wins over the category average: it is what the creator
    told us, the category is our guess.

    References: the prior is split over ``regions`` by the shop's overall
    regional mix (all history; evenly when there is none). The category
    reference for a region is the mean, over the other SKUs of the same
    category with at least two weeks of history, of their own-data forecast.
    """
    regions = sorted(set(regions))
    span: dict[str, int] = {}
    for (sku, _), series in history.items():
        span[sku] = max(span.get(sku, 0), len(series))

    def own(sku: str, region: str) -> list[float]:
        series = list(history.get((sku, region), ()))
        return [0.0] * (span.get(sku, 0) - len(series)) + series

    own_fits: dict[tuple[str, str], tuple[float, list[float], str]] = {}

    def fit_own(sku: str, region: str) -> tuple[float, list[float], str]:
        key = (sku, region)
        if key not in own_fits:
            series = own(sku, region)
            if len(series) >= policy.trend_min_weeks:
                own_fits[key] = (*_holt(series, policy), "holt")
            else:
                own_fits[key] = (*_ewma(series, policy.alpha, None), "ewma")
        return own_fits[key]

    categories: dict[str, str | None] = {}

    def category(sku: str) -> str | None:
        if sku not in categories:
            categories[sku] = category_of(sku)
        return categories[sku]

    regional_units = {region: 0.0 for region in regions}
    for (_, region), series in history.items():
        if region in regional_units:
            regional_units[region] += sum(series)
    all_units = sum(regional_units.values())

    # Per category and region: the sum of its established SKUs' own forecasts and how many
    # there are, computed once, so each SKU's reference costs one lookup (a sum over its peers
    # per SKU made a 20,000-SKU catalogue quadratic).
    peers_by_category: dict[str, list[str]] = {}
    for peer in sorted(span):
        if span[peer] >= NEW_SKU_WEEKS and (peer_category := category(peer)) is not None:
            peers_by_category.setdefault(peer_category, []).append(peer)
    totals: dict[tuple[str, str], tuple[float, int]] = {}

    def category_totals(cat: str, region: str) -> tuple[float, int]:
        if (cat, region) not in totals:
            peers = peers_by_category.get(cat, [])
            totals[(cat, region)] = math.fsum(max(0.0, fit_own(peer, region)[0]) for peer in peers), len(peers)
        return totals[(cat, region)]

    def reference(sku: str, region: str) -> tuple[float, str] | None:
        prior = prior_weekly(sku)
        if prior is not None:
            if not prior >= 0:
                raise ValueError(f"prior weekly demand for {sku} must be >= 0, got {prior}")
            share = regional_units[region] / all_units if all_units > 0 else 1 / len(regions)
            return prior * share, "prior"
        cat = category(sku)
        if cat is None:
            return None
        total, count = category_totals(cat, region)
        if span.get(sku, 0) >= NEW_SKU_WEEKS:  # the SKU is its own peer there: take itself out
            total, count = total - max(0.0, fit_own(sku, region)[0]), count - 1
        if not count:
            return None
        return max(0.0, total) / count, "category"

    forecasts: dict[tuple[str, str], Forecast] = {}
    for sku in sorted(set(skus)):
        for region in regions:
            series = own(sku, region)
            n = len(series)
            ref = reference(sku, region) if n < policy.trend_min_weeks else None
            if ref is not None:
                weekly, errors = _ewma(series, policy.alpha, ref[0])
                method = "ewma" if n >= NEW_SKU_WEEKS else ref[1]
            elif n:
                weekly, errors, method = fit_own(sku, region)
            else:
                forecasts[(sku, region)] = Forecast(sku, region, 0.0, 0.0, "none", 0)
                continue
            weekly = max(0.0, weekly)
            if len(errors) >= MIN_SIGMA_ERRORS:
                sigma = math.sqrt(sum(e * e for e in errors) / len(errors))
            else:
                sigma = math.sqrt(weekly)  # demand counts are at least Poisson-noisy: variance = mean
            forecasts[(sku, region)] = Forecast(sku, region, weekly, sigma, method, n)
    return forecasts


def uplifted_weeks(sku: str, *, start: datetime, weeks: float, launches: Sequence[LaunchUplift]) -> float:
    """The horizon [start, start + weeks) in weeks of baseline demand for ``sku``.

    Each week counts once; the part of the horizon inside a launch window
    matching the SKU counts the launch's factor times. Where matching launches
    overlap, the largest factor applies: two announcements of the same drop (an
    exact rule and a glob) are one spike, not two compounding ones. The same for
    every region of a SKU, so callers planning many regions compute it once.
    """
    _require_aware(start, "start")
    if weeks < 0:
        raise ValueError(f"weeks must be >= 0, got {weeks}")
    matching = [launch for launch in launches if launch.matches(sku)]
    if not matching:
        return weeks
    start = start.astimezone(timezone.utc)
    end = start + weeks * WEEK
    cuts = sorted({start, end} | {
        moment for launch in matching for moment in (launch.starts, launch.ends) if start < moment < end
    })
    total = weeks
    for a, b in zip(cuts, cuts[1:]):
        # Every launch boundary inside the horizon is a cut, so a launch covers a segment fully or not at all.
        factor = max((launch.factor for launch in matching if launch.starts <= a and b <= launch.ends), default=1.0)
        total += (factor - 1.0) * ((b - a) / WEEK)
    return total


# ---------------------------------------------------------------- smoothing


def _ewma(series: Sequence[float], alpha: float, level: float | None) -> tuple[float, list[float]]:
    """Final level and one-step errors. ``level``: the starting level (a
    reference), or None to start from the first week (which then has no error)."""
    if level is None:
        level, series = series[0], series[1:]
    errors: list[float] = []
    for x in series:
        errors.append(x - level)
        level += alpha * (x - level)
    return level, errors


def _holt(series: Sequence[float], policy: ForecastPolicy) -> tuple[float, list[float]]:
    """Damped Holt: next week's forecast and the one-step errors.

    Starts from a robust line through the first ``trend_min_weeks`` weeks (a
    single week-to-week difference is too noisy for spiky demand),
    then per week: predicted = level + damping * trend, level moves alpha of the
    way to the actual week, trend beta of the way to the level's change.
    """
    level, trend = _line(series[: policy.trend_min_weeks])
    errors: list[float] = []
    for x in series[1:]:
        predicted = level + policy.damping * trend
        errors.append(x - predicted)
        new_level = predicted + policy.alpha * (x - predicted)
        trend = policy.beta * (new_level - level) + (1 - policy.beta) * policy.damping * trend
        level = new_level
    return level + policy.damping * trend, errors


def _line(points: Sequence[float]) -> tuple[float, float]:
    """Theil-Sen line through at least two points: intercept (at week 0) and slope.

    Medians, not least squares: a launch spike in the first weeks is one
    outlier, and a least-squares slope through it would start the smoother on
    a steep downward trend that drives a steadily selling SKU's forecast to zero.
    """
    slope = statistics.median(
        (points[j] - points[i]) / (j - i) for i in range(len(points)) for j in range(i + 1, len(points))
    )
    return statistics.median(y - slope * t for t, y in enumerate(points)), slope


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {moment!r}")
