"""Allocation and transfer planning on random instances, several SKUs per call,
checked against independent LPs written from the modules' docstrings (scipy's
HiGHS), not against the modules' own graphs.

Costs are whole cents and demand comes in quarter units with whole lost-sale
costs, so the cent rounding the flow solver needs is exact and objectives must
agree to 1e-6."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from connector.domain import allocation
from connector.domain.allocation import Arc, SkuProblem, allocate
from connector.domain.rebalance import SkuPosition, TransferLane, plan_transfers

NODES = ["n0", "n1", "n2", "n3"]
REGIONS = ["r0", "r1", "r2"]
COSTS = [0.0, 0.5, 1.25, 3.0, 4.1, 9.99, 25.0]


@st.composite
def sku_problem(draw, sku: str) -> SkuProblem:
    nodes = NODES[: draw(st.integers(1, len(NODES)))]
    regions = REGIONS[: draw(st.integers(1, len(REGIONS)))]
    # Stock scarce against demand and most lanes cheaper than a lost sale, so that
    # many nodes have a positive price; some nodes absent, some regions without a forecast.
    stock = {n: draw(st.integers(0, 5)) for n in nodes if draw(st.integers(0, 4))}
    links = draw(st.lists(st.sampled_from([(n, r) for n in nodes for r in regions]), unique=True, max_size=8))
    arcs = tuple(Arc(n, r, draw(st.sampled_from(COSTS))) for n, r in links)
    demand = {r: draw(st.integers(0, 32)) / 4 for r in regions if draw(st.integers(0, 3))}
    return SkuProblem(sku, stock, arcs, demand, draw(st.sampled_from([5.0, 12.0, 30.0])))


@st.composite
def batches(draw) -> list[SkuProblem]:
    problems: list[SkuProblem] = []
    for i in range(draw(st.integers(1, 4))):
        p = draw(sku_problem(f"S{i}"))
        if problems and draw(st.booleans()):  # share the previous SKU's arcs tuple, as SKUs under one rule do
            p = replace(p, arcs=problems[-1].arcs)
        problems.append(p)
    return problems


def lp_objective(p: SkuProblem, stock: dict[str, int]) -> float:
    """Problem A exactly as the allocation docstring states it:
    min sum c f + L sum_r (d_r - g_r - q_r h_r), sum_r f_nr <= s_n,
    sum_n f_nr = g_r + h_r, 0 <= g_r <= floor(d_r), 0 <= h_r <= [q_r > 0]."""
    nodes = sorted({*stock, *(a.node_id for a in p.arcs)})
    regions = sorted({*p.demand, *(a.region_id for a in p.arcs)})
    d = np.array([p.demand.get(r, 0.0) for r in regions])
    q = d - np.floor(d)
    nf, nr, L = len(p.arcs), len(regions), p.lost_sale_cost
    c = np.concatenate([[a.unit_cost for a in p.arcs], -L * np.ones(nr), -L * q])
    a_ub = np.zeros((len(nodes), nf + 2 * nr))
    a_eq = np.zeros((nr, nf + 2 * nr))
    for j, arc in enumerate(p.arcs):
        a_ub[nodes.index(arc.node_id), j] = 1
        a_eq[regions.index(arc.region_id), j] = 1
    a_eq[:, nf:nf + nr] = -np.eye(nr)
    a_eq[:, nf + nr:] = -np.eye(nr)
    bounds = [(0, None)] * nf + [(0, math.floor(x)) for x in d] + [(0, 1 if x > 0 else 0) for x in q]
    if not len(c):  # no arcs and no regions: nothing to decide
        return 0.0
    res = linprog(c, A_ub=a_ub, b_ub=[stock.get(n, 0) for n in nodes], A_eq=a_eq, b_eq=np.zeros(nr),
                  bounds=bounds, method="highs")
    assert res.status == 0
    return float(res.fun + L * d.sum())


def milp_objective(p: SkuProblem) -> float:
    """The plain integer reading: whole units f, a region sells at most ceil(d_r),
    every unit of real forecast left unmet costs L."""
    nodes = sorted({*p.stock, *(a.node_id for a in p.arcs)})
    regions = sorted({*p.demand, *(a.region_id for a in p.arcs)})
    nf, nr = len(p.arcs), len(regions)
    c = np.concatenate([[a.unit_cost for a in p.arcs], p.lost_sale_cost * np.ones(nr)])
    by_node = np.zeros((len(nodes), nf + nr))
    by_region = np.zeros((nr, nf + nr))
    for j, arc in enumerate(p.arcs):
        by_node[nodes.index(arc.node_id), j] = 1
        by_region[regions.index(arc.region_id), j] = 1
    covered = by_region.copy()
    covered[:, nf:] = np.eye(nr)
    d = np.array([p.demand.get(r, 0.0) for r in regions])
    constraints = [
        LinearConstraint(by_node, -np.inf, [p.stock.get(n, 0) for n in nodes]),
        LinearConstraint(by_region, -np.inf, np.ceil(d)),
        LinearConstraint(covered, d, np.inf),
    ]
    if not len(c):
        return 0.0
    res = milp(c, constraints=constraints, integrality=np.r_[np.ones(nf), np.zeros(nr)], bounds=Bounds(0, np.inf))
    assert res.status == 0
    # Evaluated exactly at the solver's whole-unit flows: res.fun carries HiGHS's
    # feasibility tolerance on the continuous unmet-demand columns (up to L * 1e-7
    # per region), which is solver noise, not a difference between the formulations.
    flows = np.rint(res.x[:nf])
    unmet = np.maximum(d - by_region[:, :nf] @ flows, 0.0)
    return float(c[:nf] @ flows + p.lost_sale_cost * unmet.sum())


@settings(max_examples=150, deadline=None)
@given(batches())
def test_never_over_promises_and_uses_only_eligible_arcs(problems):
    for p, result in zip(problems, allocate(problems), strict=True):
        arcs = {(a.node_id, a.region_id) for a in p.arcs}
        assert set(result.units) <= arcs and set(result.planned) <= arcs
        for flows in (result.units, result.planned):
            assert all(q > 0 for q in flows.values())
            for n in {n for n, _ in flows}:
                assert sum(q for (m, _), q in flows.items() if m == n) <= p.stock.get(n, 0)
        for r, d in p.demand.items():
            assert sum(q for (_, s), q in result.planned.items() if s == r) <= math.ceil(d)
        assert result.by_region == {
            r: sum(q for (_, s), q in result.units.items() if s == r)
            for r in {*p.demand, *(a.region_id for a in p.arcs)}
        }


@settings(max_examples=100, deadline=None)
@given(batches())
def test_problem_a_matches_the_independent_lp_and_the_plain_integer_program(problems):
    for p, result in zip(problems, allocate(problems), strict=True):
        assert abs(result.expected_cost - lp_objective(p, dict(p.stock))) < 1e-6
        assert abs(result.expected_cost - milp_objective(p)) < 1e-6
        served = {r: sum(q for (_, s), q in result.planned.items() if s == r) for r in p.demand}
        assert result.unmet_demand == {r: max(0.0, d - served[r]) for r, d in p.demand.items()}


@settings(max_examples=60, deadline=None)
@given(batches())
def test_opportunity_cost_is_the_rise_in_the_optimum_when_a_unit_is_lost(problems):
    for p, result in zip(problems, allocate(problems), strict=True):
        base = lp_objective(p, dict(p.stock))
        for n, price in result.opportunity_cost.items():
            if p.stock.get(n, 0) == 0:
                assert price == 0.0
            else:
                assert abs(price - (lp_objective(p, {**p.stock, n: p.stock[n] - 1}) - base)) < 1e-6


@settings(max_examples=100, deadline=None)
@given(batches())
def test_problem_b_places_every_reachable_unit_and_serves_the_most_forecast(problems):
    for p, result in zip(problems, allocate(problems), strict=True):
        reaching = {a.node_id for a in p.arcs}
        for n in reaching:
            assert sum(q for (m, _), q in result.units.items() if m == n) == p.stock.get(n, 0)
        # Forecast first: units within each region's ceil(forecast) are as many as any
        # allocation can reach (max flow, independent LP).
        regions = sorted({a.region_id for a in p.arcs})
        nodes = sorted(reaching)
        a_ub = np.zeros((len(nodes) + len(regions), len(p.arcs)))
        for j, arc in enumerate(p.arcs):
            a_ub[nodes.index(arc.node_id), j] = 1
            a_ub[len(nodes) + regions.index(arc.region_id), j] = 1
        b_ub = [p.stock.get(n, 0) for n in nodes] + [math.ceil(p.demand.get(r, 0.0)) for r in regions]
        if p.arcs:
            best = -linprog(-np.ones(len(p.arcs)), A_ub=a_ub, b_ub=b_ub, method="highs").fun
        else:
            best = 0.0
        served = sum(min(result.by_region[r], math.ceil(p.demand.get(r, 0.0))) for r in regions)
        assert abs(served - best) < 1e-6


def b_objective(p: SkuProblem, units, tier_gap: float, overflow_tiers: int = 3) -> float:
    """Problem B's objective (cents) at whole-unit flows ``units``: lane costs minus
    the tier rewards of what each region receives, its tiers filled in order."""
    value = sum(round(100 * a.unit_cost) * units.get((a.node_id, a.region_id), 0) for a in p.arcs)
    for r in {a.region_id for a in p.arcs}:
        left = sum(q for (_, s), q in units.items() if s == r)
        forecast = math.ceil(p.demand.get(r, 0.0))
        for t, capacity in enumerate([forecast] + [max(forecast, 1)] * overflow_tiers):
            take = min(left, capacity)
            value -= take * (overflow_tiers + 1 - t) * tier_gap
            left -= take
    return value


def b_lp_optimum(p: SkuProblem, tier_gap: float, overflow_tiers: int = 3) -> float:
    """Problem B as the allocation docstring states it, as an LP: every unit at a node
    with an arc goes along one arc; a region's tiers 0..K take ceil(d), then max(ceil(d), 1)
    each, rewarded (K + 1 - t) * G per unit, and an unlimited last tier earns nothing."""
    if not p.arcs:
        return 0.0
    nodes = sorted({a.node_id for a in p.arcs})
    regions = sorted({a.region_id for a in p.arcs})
    tiers = overflow_tiers + 2
    nf, ny = len(p.arcs), len(regions) * tiers
    c = np.concatenate([[round(100 * a.unit_cost) for a in p.arcs],
                        [-(overflow_tiers + 1 - t) * tier_gap if t <= overflow_tiers else 0.0
                         for _ in regions for t in range(tiers)]])
    a_eq = np.zeros((len(nodes) + len(regions), nf + ny))
    for j, arc in enumerate(p.arcs):
        a_eq[nodes.index(arc.node_id), j] = 1
        a_eq[len(nodes) + regions.index(arc.region_id), j] = 1
    bounds = [(0, None)] * nf
    for i, r in enumerate(regions):
        forecast = math.ceil(p.demand.get(r, 0.0))
        a_eq[len(nodes) + i, nf + i * tiers: nf + (i + 1) * tiers] = -1
        bounds += [(0, forecast)] + [(0, max(forecast, 1))] * overflow_tiers + [(0, None)]
    b_eq = [p.stock.get(n, 0) for n in nodes] + [0] * len(regions)
    res = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    assert res.status == 0
    return float(res.fun)


@settings(max_examples=150, deadline=None)
@given(batches(), st.sampled_from([3, 0, 1]))
def test_problem_b_is_optimal_tiers_first_then_lane_cost(problems, tiers):
    # Any G above N * (max c - min c) makes tiers dominate lane cost, so every optimum
    # has the same objective under this larger G as under the solver's own. Objectives
    # are whole cents: less than half a cent apart is the LP solver's tolerance.
    gap = 1e6
    for p, result in zip(problems, allocate(problems, overflow_tiers=tiers), strict=True):
        assert b_objective(p, result.units, gap, tiers) == pytest.approx(b_lp_optimum(p, gap, tiers), abs=0.5)


@settings(max_examples=100, deadline=None)
@given(batches())
def test_pouring_agrees_with_the_flow_solver(problems):
    # SKUs with one node that can ship are poured, the rest solved; solving every
    # SKU instead must give the same optima and the same prices (not always the same
    # flows: ties between equally good regions may be broken either way).
    poured = allocate(problems)
    solved = allocation._allocate(problems, pour=False)
    for p, a, b in zip(problems, poured, solved, strict=True):
        assert a.expected_cost == pytest.approx(b.expected_cost, abs=1e-9)
        assert a.opportunity_cost == b.opportunity_cost
        assert b_objective(p, a.units, 1e6) == b_objective(p, b.units, 1e6)


# ---------------------------------------------------------------- transfers


@st.composite
def transfer_cases(draw):
    links = draw(st.lists(st.sampled_from([(a, b) for a in NODES for b in NODES if a != b]), unique=True, max_size=8))
    lanes = [TransferLane(a, b, draw(st.sampled_from(COSTS)), draw(st.integers(1, 5))) for a, b in links]
    positions = []
    for i in range(draw(st.integers(1, 3))):
        nodes = draw(st.lists(st.sampled_from(NODES), unique=True, min_size=1))
        positions.append(SkuPosition(
            f"S{i}",
            position={n: draw(st.integers(-2, 30)) for n in nodes},
            target={n: draw(st.integers(0, 20)) for n in nodes if draw(st.booleans())},
            floor={n: draw(st.integers(0, 20)) for n in nodes if draw(st.booleans())},
            unit_value=10.0,
        ))
    return positions, lanes, draw(st.sampled_from([5.0, 10.0, 30.0]))


def levels(pos: SkuPosition) -> tuple[dict[str, int], dict[str, int]]:
    """Spare and deficit straight from the SkuPosition definitions."""
    nodes = {*pos.position, *pos.target, *pos.floor}
    spare = {n: max(0, pos.position.get(n, 0) - max(pos.target.get(n, 0), pos.floor.get(n, 0))) for n in nodes}
    deficit = {n: max(0, pos.target.get(n, 0) - pos.position.get(n, 0)) for n in nodes}
    return spare, deficit


def transfer_lp(pos: SkuPosition, lanes: list[TransferLane], shortage: float) -> float:
    """min sum c x + S sum_n (e_n - inflow_n), outflow_n <= spare_n, inflow_n <= e_n."""
    spare, deficit = levels(pos)
    nodes = sorted(set(spare) | {l.from_node for l in lanes} | {l.to_node for l in lanes})
    c = np.array([l.unit_cost - shortage for l in lanes])  # each unit moved fills one unit of deficit
    a_ub = np.zeros((2 * len(nodes), len(lanes)))
    for j, l in enumerate(lanes):
        a_ub[nodes.index(l.from_node), j] = 1
        a_ub[len(nodes) + nodes.index(l.to_node), j] = 1
    b_ub = [spare.get(n, 0) for n in nodes] + [deficit.get(n, 0) for n in nodes]
    constant = shortage * sum(deficit.values())
    if not lanes:
        return constant
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
    assert res.status == 0
    return float(res.fun + constant)


def plan_cost(pos: SkuPosition, plan, shortage: float) -> float:
    _, deficit = levels(pos)
    mine = [t for t in plan if t.sku == pos.sku]
    filled = sum(t.units for t in mine)
    return sum(t.units * t.unit_cost for t in mine) + shortage * (sum(deficit.values()) - filled)


def assert_feasible(positions, lanes, plan, minimum):
    configured = {(l.from_node, l.to_node): l for l in lanes}
    for pos in positions:
        spare, deficit = levels(pos)
        mine = [t for t in plan if t.sku == pos.sku]
        for t in mine:
            lane = configured[(t.from_node, t.to_node)]
            assert (t.unit_cost, t.lead_days) == (lane.unit_cost, lane.lead_days)
            assert t.units >= minimum
        for n in {*spare, *(t.from_node for t in mine), *(t.to_node for t in mine)}:
            assert sum(t.units for t in mine if t.from_node == n) <= spare.get(n, 0)  # never below max(target, floor)
            assert sum(t.units for t in mine if t.to_node == n) <= deficit.get(n, 0)  # never over target
    keys = [(t.sku, t.from_node, t.to_node) for t in plan]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


@settings(max_examples=150, deadline=None)
@given(transfer_cases())
def test_transfer_plan_is_optimal_and_feasible(case):
    positions, lanes, shortage = case
    plan = plan_transfers(positions, lanes, min_transfer_units=1, shortage_cost=shortage)
    assert_feasible(positions, lanes, plan, 1)
    for pos in positions:
        assert abs(plan_cost(pos, plan, shortage) - transfer_lp(pos, lanes, shortage)) < 1e-6


@settings(max_examples=150, deadline=None)
@given(transfer_cases(), st.integers(2, 6))
def test_minimum_transfer_repair_keeps_the_plan_feasible(case, minimum):
    positions, lanes, shortage = case
    plan = plan_transfers(positions, lanes, min_transfer_units=minimum, shortage_cost=shortage)
    assert_feasible(positions, lanes, plan, minimum)
