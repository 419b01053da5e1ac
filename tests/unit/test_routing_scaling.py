"""Routing work grows linearly with an order's lines (no timing: counted work).

A 3,300-line order once took seconds because every line's runner-up plan was
built, checked and scored over the whole order. Here the work is counted as the
Python lines the domain package executes plus the stock and price look-ups, for
the same order shape at n, 2n and 4n lines: doubling the lines may at most
(about) double the work. A quadratic step makes each doubling cost ~4x.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from connector.domain.model import Rule
from connector.domain.routing import Router
from tests.unit.test_routing import NOW, network, node, order

DOMAIN = str(Path(__import__("connector.domain", fromlist=["x"]).__file__).parent)
SKUS = ["A", "B", "C", "D", "E", "F"]


class CountingMap(dict):
    """A stock or price map that counts every look-up."""

    reads = 0

    def get(self, key, default=None):
        CountingMap.reads += 1
        return super().get(key, default)

    def __getitem__(self, key):
        CountingMap.reads += 1
        return super().__getitem__(key)


def domain_work(fn) -> int:
    """Python lines executed in connector/domain while ``fn`` runs, plus map look-ups."""
    lines = 0

    def local(frame, event, arg):
        nonlocal lines
        if event == "line":
            lines += 1
        return local

    def global_(frame, event, arg):
        return local if frame.f_code.co_filename.startswith(DOMAIN) else None

    CountingMap.reads = 0
    previous = sys.gettrace()
    sys.settrace(global_)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return lines + CountingMap.reads


def split_network():
    # No node stocks every SKU: the greedy cover, per-line best and runner-ups all run.
    return network([node("a", {"east": (1, 5.0)}), node("b", {"east": (1, 6.0)}),
                    node("c", {"east": (2, 4.0)}, priority=10)])


def scenario(kind: str, lines: int):
    net = split_network()
    skus = [SKUS[i % len(SKUS)] for i in range(lines)]
    big = lines * 3
    stock = {("a", s): big for s in SKUS[:4]} | {("b", s): big for s in SKUS[2:]} | {("c", s): big for s in SKUS[::2]}
    opportunity = None
    if kind == "one node has it all":  # same SKUs repeated: the common-best shortcut does not apply
        stock = {(n, s): big for n in "abc" for s in SKUS}
    elif kind == "priced":
        opportunity = CountingMap({(n, s): 0.25 * (i % 3) for i, (n, s) in enumerate(stock)})
    elif kind == "stock runs out":  # the last lines of each SKU find nothing left: exceptions
        stock = {key: lines // 8 for key in stock}
    elif kind == "fastest first":
        net = network(list(net.nodes.values()), rules=(Rule.FASTEST, Rule.MOST_STOCK, Rule.SINGLE_SHIPMENT))
    return net, order(*[(sku, 1 + i % 2) for i, sku in enumerate(skus)]), CountingMap(stock), opportunity


@pytest.mark.parametrize("kind", ["split", "one node has it all", "priced", "stock runs out", "fastest first"])
def test_routing_work_grows_linearly_with_lines(kind):
    work = {}
    for lines in (100, 200, 400):
        net, big_order, stock, opportunity = scenario(kind, lines)
        router = Router(net)
        result = None

        def run():
            nonlocal result
            result = router.route(big_order, "east", stock, {}, NOW, opportunity)

        work[lines] = domain_work(run)
        assert len(result.decisions) == lines
        assert result.routed  # the order shape really exercises planning
    assert work[200] <= 2.3 * work[100], work
    assert work[400] <= 2.3 * work[200], work
