"""Order routing: which node ships each line, by which rule, and why.

Pure and deterministic: the same order, network, stock, usage and time give the
same decisions. Lines are never split across nodes; a line no node can ship
becomes an exception with a precise reason while the rest of the order is
still routed (so the stock for what can ship is held).

How a decision is made:

1. Candidates, in stages. Stage 0: usable nodes whose lane to the order's
   region meets the region's promise. Stage 1: backups of the nodes that serve
   the region (promise relaxed). Stage 2+: the same for the region's fallback
   chain. A mode restriction ("disruption: all US regions from
   midwest-partner") replaces all stages with the named nodes, promise relaxed.
2. Eligibility per line: the node meets the SKU's handling (cold chain,
   fragile, oversized capability, max transit days) and has the sellable stock.
3. Candidate plans (every single-node plan, a greedy fewest-shipments cover,
   and every line at its individually best node) are scored by a key: lines
   left unrouted, the latest stage used, shipments from ranked-down nodes (past cutoff, at
   capacity, degraded), then the mode's rule chain, then node ids. The lowest
   key wins; the first key position where it beats the runner-up is the rule
   that decided.

The ``cheapest`` rule counts what a shipment really costs: the lane's cost per
order plus, when the allocation has priced it, the opportunity cost of the
units it drains from that node (the allocation's dual prices, per unit). A
cheap node that alone serves another region's forecast demand is then not
emptied today for an order a slightly dearer node could ship (the dual-price
policy of Acimovic & Graves).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

from connector.domain.model import (
    ExceptionReason,
    Handling,
    Lane,
    LineDecision,
    Network,
    Node,
    NodeStatus,
    Order,
    OrderLine,
    Restriction,
    RoutingResult,
    Rule,
    SkuRule,
)

RULE_TEXT = {
    "coverage": "ships the most lines",
    "promise": "nodes that meet the region's promise come first",
    "availability": "nodes past cutoff, at capacity or degraded are ranked down",
    Rule.SINGLE_SHIPMENT.value: "fewest shipments",
    Rule.FASTEST.value: "fastest transit to the region",
    Rule.PRIORITY.value: "node priority",
    Rule.CHEAPEST.value: "lowest cost per order, counting the opportunity cost of the stock used",
    Rule.MOST_STOCK.value: "most stock left",
    "tiebreak": "equal on every rule; node id decides",
    "only_option": "the only node that can ship it",
}

_NO_RULE = SkuRule(pattern="*")


@dataclass(frozen=True)
class _Candidate:
    node: Node
    lane: Lane
    stage: int
    note: str  # "", "backup for X", "fallback region R", "restricted by disruption mode"
    penalty: int
    penalty_notes: tuple[str, ...]


@dataclass(frozen=True)
class _Line:
    line: OrderLine
    sku: str
    rule: SkuRule


class Router:
    """Routes orders for one shop's network. Build once, call ``route`` per order."""

    def __init__(self, network: Network):
        self.network = network
        self._rule_cache: dict[str, SkuRule] = {}
        self._exact_rules = {r.pattern: r for r in network.sku_rules if not _is_glob(r.pattern)}
        self._glob_rules = [r for r in network.sku_rules if _is_glob(r.pattern)]
        self._tz = ZoneInfo(network.timezone)
        self._static_candidates: dict[str, list[tuple[Node, Lane, int, str]]] = {}
        self._oversized_capable = any(
            Handling.OVERSIZED.value in n.capabilities for n in network.nodes.values()
        )

    # ------------------------------------------------------------ public

    def sku_rule(self, sku: str) -> SkuRule:
        rule = self._rule_cache.get(sku)
        if rule is None:
            rule = self._exact_rules.get(sku)
            if rule is None:
                rule = next((r for r in self._glob_rules if fnmatchcase(sku, r.pattern)), _NO_RULE)
            self._rule_cache[sku] = rule
        return rule

    def route(
        self,
        order: Order,
        region_id: str | None,
        sellable: Mapping[tuple[str, str], int],
        orders_today: Mapping[str, int],
        now: datetime,
        opportunity: Mapping[tuple[str, str], float] | None = None,
        prepared: "PreparedRoute | None" = None,
    ) -> RoutingResult:
        """``sellable[(node_id, sku)]``: units free to promise (available minus our
        reservations). ``orders_today[node_id]``: orders already routed to the node
        in the shop's current local day. ``now``: an aware datetime.
        ``opportunity[(node_id, sku)]``: the allocation's dual price of one unit
        there (missing means 0). ``prepared``: a result ``prepare`` made earlier,
        returned as it is when these inputs are the ones it was made from."""
        if prepared is not None and prepared.router is self and prepared.inputs == self._inputs(
                order, region_id, sellable, orders_today, now, opportunity):
            return prepared.result
        opportunity = opportunity or {}
        mode = self.network.routing.mode
        lines, skipped = self._routable_lines(order)
        if not lines:
            return RoutingResult(region_id, mode, (), skipped)
        region = self.network.regions.get(region_id) if region_id else None
        if region is None:
            where = _describe_address(order)
            return RoutingResult(
                region_id,
                mode,
                tuple(
                    _exception(l, ExceptionReason.NO_REGION, f"no region matches {where} and no default region is set")
                    for l in lines
                ),
                skipped,
            )

        candidates = self._candidates(region.id, orders_today, now)
        decisions: dict[str, LineDecision] = {}
        eligible: dict[str, list[_Candidate]] = {}
        for item in lines:
            if Handling.OVERSIZED in item.rule.handling and not self._oversized_capable:
                decisions[item.line.line_id] = _exception(
                    item, ExceptionReason.NEEDS_HUMAN, f"{item.sku} is oversized and no node is marked oversized-capable"
                )
                continue
            handled = [c for c in candidates if item.rule.handled_by(c.node, c.lane)]
            stocked = [c for c in handled if sellable.get((c.node.id, item.sku), 0) >= item.line.quantity]
            if stocked:
                eligible[item.line.line_id] = stocked
            else:
                decisions[item.line.line_id] = self._diagnose(item, region.id, candidates, handled, sellable,
                                                              orders_today, now)

        if eligible:
            routable = [item for item in lines if item.line.line_id in eligible]
            for decision in self._plan(routable, eligible, sellable, region.id, opportunity):
                decisions[decision.line_id] = decision
        ordered = tuple(decisions[item.line.line_id] for item in lines)
        return RoutingResult(region.id, mode, ordered, skipped)

    def prepare(
        self,
        order: Order,
        region_id: str | None,
        sellable: Mapping[tuple[str, str], int],
        orders_today: Mapping[str, int],
        now: datetime,
        opportunity: Mapping[tuple[str, str], float] | None = None,
    ) -> "PreparedRoute":
        """``route`` now, kept with what it was computed from, to be handed to ``route``
        later (the services route before taking the write lock, and inside it only
        check that nothing the plan rests on has changed)."""
        return PreparedRoute(self, self._inputs(order, region_id, sellable, orders_today, now, opportunity),
                             self.route(order, region_id, sellable, orders_today, now, opportunity))

    def _inputs(self, order, region_id, sellable, orders_today, now, opportunity) -> tuple:
        """Everything a routing result depends on; ``now`` only through the nodes'
        states (usable, window, cutoff, capacity), so a plan made a moment earlier
        still holds unless one of them changed."""
        return (order.lines, order.ship_to, region_id, dict(sellable), dict(orders_today), dict(opportunity or {}),
                tuple(self.node_state(n, orders_today, now) for n in self.network.nodes.values()))

    # ------------------------------------------------------------ candidates

    def _routable_lines(self, order: Order) -> tuple[list[_Line], tuple[tuple[str, str], ...]]:
        lines: list[_Line] = []
        skipped: list[tuple[str, str]] = []
        for line in order.lines:
            reason = skip_reason(line)
            if reason:
                skipped.append((line.line_id, reason))
            else:
                lines.append(_Line(line, line.sku, self.sku_rule(line.sku)))
        return lines, tuple(skipped)

    def node_state(self, node: Node, orders_today: Mapping[str, int], now: datetime) -> "NodeState":
        return node_state(node, now, self._tz, orders_today)

    def _candidates(self, region_id: str, orders_today: Mapping[str, int], now: datetime) -> list[_Candidate]:
        """The region's candidate nodes, usable now, with today's penalties."""
        static = self._static_candidates.get(region_id)
        if static is None:
            static = self._static_candidates[region_id] = self._region_candidates(region_id)
        candidates = []
        for node, lane, stage, note in static:
            state = self.node_state(node, orders_today, now)
            if state.usable:
                candidates.append(_Candidate(node, lane, stage, note, len(state.ranked_down), state.ranked_down))
        return candidates

    def _region_candidates(self, region_id: str) -> list[tuple[Node, Lane, int, str]]:
        """Who may ship to a region, in stages, before anyone's status is looked at
        (that changes by the minute; this only when the network does)."""
        nodes = self.network.nodes
        seen: dict[str, tuple[Node, Lane, int, str]] = {}

        def add(node: Node, lane: Lane, stage: int, note: str) -> None:
            if node.id not in seen:
                seen[node.id] = (node, lane, stage, note)

        restriction, first = first_stage(self.network, region_id)
        if restriction is not None:
            note = f"{self.network.routing.mode.value} mode restricts this region to {', '.join(restriction.nodes)}"
            for node, lane in first:
                add(node, lane, 0, note)
            return list(seen.values())

        stage = 0
        visited: set[str] = set()
        current: str | None = region_id
        while current is not None and current not in visited:
            visited.add(current)
            target = self.network.regions[current]
            fallback_note = "" if current == region_id else f"fallback region {current}"
            serving = sorted((n for n in nodes.values() if current in n.lanes), key=lambda n: n.id)
            for node, lane in promise_lanes(self.network, current):
                add(node, lane, stage, fallback_note)
            stage += 1
            for primary in serving:
                for backup_id in primary.backups:
                    backup = nodes[backup_id]
                    lane = backup.lanes.get(current)
                    if lane is not None:
                        add(backup, lane, stage, f"backup for {primary.id}" + (f", {fallback_note}" if fallback_note else ""))
            stage += 1
            current = target.fallback
        return list(seen.values())

    # ------------------------------------------------------------ plans

    def _plan(
        self,
        lines: Sequence[_Line],
        eligible: Mapping[str, list[_Candidate]],
        sellable: Mapping[tuple[str, str], int],
        region_id: str,
        opportunity: Mapping[tuple[str, str], float],
    ) -> list[LineDecision]:
        chain = self.network.routing.current.rules
        by_node: dict[str, _Candidate] = {}
        for options in eligible.values():
            for c in options:
                by_node[c.node.id] = c

        keys: dict[tuple[str, str], tuple] = {}

        def node_key(c: _Candidate, sku: str) -> tuple:
            key = keys.get((c.node.id, sku))
            if key is None:
                parts: list = [c.stage, c.penalty]
                for rule in chain:
                    if rule is Rule.FASTEST:
                        parts.append(c.lane.transit_days)
                    elif rule is Rule.PRIORITY:
                        parts.append(c.node.priority)
                    elif rule is Rule.CHEAPEST:
                        parts.append(c.lane.cost_per_order + opportunity.get((c.node.id, sku), 0.0))
                    elif rule is Rule.MOST_STOCK:
                        parts.append(-sellable.get((c.node.id, sku), 0))
                parts.append(c.node.id)
                key = keys[(c.node.id, sku)] = tuple(parts)
            return key

        plans: list[dict[str, str]] = []
        # Every node that can ship the whole order alone (also the runner-ups that
        # make "tiebreak" or "cheapest" the honest name of the deciding rule).
        everywhere = set.intersection(*({c.node.id for c in eligible[l.line.line_id]} for l in lines))
        for node_id in sorted(everywhere):
            plan = {l.line.line_id: node_id for l in lines}
            if _fits(plan, lines, sellable):
                plans.append(plan)
        # The shortcut's proof needs a per-node cost that does not grow with the
        # lines shipped; opportunity costs are per unit, so they take the full search.
        if opportunity or not self._common_best(lines, eligible, sellable, node_key):
            # Greedy cover: fewest shipments when no single node can do it.
            greedy = _greedy_cover(lines, eligible, sellable, node_key)
            if greedy is not None:
                plans.append(greedy)
            # Each line at its own best node; when same-SKU lines compete for stock,
            # this also routes whatever still fits.
            plans.append(_each_at_best(lines, eligible, sellable, node_key))

        scored = {}
        for plan in plans:
            scored.setdefault(tuple(sorted(plan.items())), (self._plan_key(plan, lines, by_node, sellable, chain, opportunity), plan))
        best_key, best = min(scored.values(), key=lambda kp: kp[0])
        others = [key for key, _ in scored.values() if key != best_key]
        deciding = self._deciding_rule(best, best_key, others, lines, eligible, by_node, sellable, chain,
                                       opportunity, node_key)

        region = self.network.regions[region_id]
        shipments = len(set(best.values()))
        decisions = []
        for item in lines:
            node_id = best.get(item.line.line_id)
            if node_id is None:
                decisions.append(
                    _exception(item, ExceptionReason.PARTIAL_STOCK, f"other lines of this order took the sellable {item.sku}")
                )
                continue
            c = by_node[node_id]
            decisions.append(
                LineDecision(
                    line_id=item.line.line_id,
                    sku=item.sku,
                    quantity=item.line.quantity,
                    node_id=node_id,
                    rule=deciding,
                    explanation=_explain(item, c, region, deciding, shipments,
                                         opportunity.get((node_id, item.sku), 0.0)),
                )
            )
        return decisions

    @staticmethod
    def _common_best(lines, eligible, sellable, node_key) -> list[dict[str, str]]:
        """The common case, decided without the multi-node search: one node is every
        line's best by node key, the SKUs differ, and it has the stock. Shipping
        everything from it is then minimal on every plan-key position (adding a node
        can only raise a max or a sum, and no other node beats it for any line), and
        the greedy cover and per-line best plans would both be that same plan."""
        if len({l.sku for l in lines}) != len(lines):
            return []
        best = {min(eligible[l.line.line_id], key=lambda c: node_key(c, l.sku)).node.id for l in lines}
        if len(best) != 1:
            return []
        plan = dict.fromkeys((l.line.line_id for l in lines), best.pop())
        return [plan] if _fits(plan, lines, sellable) else []

    def _plan_key(
        self,
        plan: Mapping[str, str],
        lines: Sequence[_Line],
        by_node: Mapping[str, _Candidate],
        sellable: Mapping[tuple[str, str], int],
        chain: Sequence[Rule],
        opportunity: Mapping[tuple[str, str], float],
    ) -> tuple:
        tally = _Tally(plan, lines, sellable, opportunity, chain)
        prefix = _key_prefix([by_node[n] for n in tally.used], len(lines) - len(plan), tally.drained,
                             tally.least_left(), chain)
        return (*prefix, tuple(plan.get(l.line.line_id, "") for l in lines))

    def _deciding_rule(
        self,
        best: Mapping[str, str],
        best_key: tuple,
        others: Sequence[tuple],
        lines: Sequence[_Line],
        eligible: Mapping[str, list[_Candidate]],
        by_node: Mapping[str, _Candidate],
        sellable: Mapping[tuple[str, str], int],
        chain: Sequence[Rule],
        opportunity: Mapping[tuple[str, str], float],
        node_key,
    ) -> str:
        """The rule that decided: the first key position where the best plan beats its
        closest rival. Rivals are the other candidate plans (``others``: their keys) and,
        for each line, the best plan with that line moved to its next-best node, where
        that still fits.

        A key's last position (the plan's node per line) differs between any two plans,
        so a rival that ties the best on every position before it loses to the tiebreak,
        and only those positions are compared. One moved line changes them only through
        the nodes used, two (node, SKU) stock levels and one line's opportunity cost, so
        each moved rival is scored from the best plan's tallies in time that does not grow
        with the order (scoring each one over the whole order made routing quadratic)."""
        labels = ["coverage", "promise", "availability", *[r.value for r in chain], "tiebreak"]
        rivals = [key[:-1] for key in others]
        tally = _Tally(best, lines, sellable, opportunity, chain)
        unrouted = len(lines) - len(best)
        for item in lines:
            current = best.get(item.line.line_id)
            runner_up = min((c for c in eligible[item.line.line_id] if c.node.id != current),
                            key=lambda c: node_key(c, item.sku), default=None)
            if runner_up is None:
                continue
            moved = tally.moved(item, current, runner_up.node.id)
            if moved is not None:
                used, drained, least_left = moved
                rivals.append(_key_prefix([by_node[n] for n in used], unrouted - (current is None), drained,
                                          least_left, chain))
        if not rivals:
            return "only_option"
        best_prefix, closest = best_key[:-1], min(rivals)
        if closest == best_prefix:
            return "tiebreak"
        return labels[next(i for i, (a, b) in enumerate(zip(best_prefix, closest)) if a != b)]

    # ------------------------------------------------------------ exceptions

    def _diagnose(
        self,
        item: _Line,
        region_id: str,
        candidates: Sequence[_Candidate],
        handled: Sequence[_Candidate],
        sellable: Mapping[tuple[str, str], int],
        orders_today: Mapping[str, int],
        now: datetime,
    ) -> LineDecision:
        """Why no node can ship the line: the reason, then every node that could have
        served the region (its own, backups, fallback regions, slower lanes) and what
        blocks each one, so the one fix that would route it is in plain sight."""
        static = self._static_candidates[region_id]
        allowed = {node.id for node, *_ in static}
        others = [n for n in self.network.nodes.values() if region_id in n.lanes and n.id not in allowed]
        if not static and not others:
            return _exception(item, ExceptionReason.NO_NODE_SERVES_REGION, f"no node ships to region {region_id}")
        blocked = sorted([self._blocker(item, node, lane, region_id, sellable, orders_today, now)
                          for node, lane, _, _ in static]
                         + [self._outside_stages(node, region_id) for node in others])
        why = ", ".join(f"{node_id} {reason}" for node_id, reason in blocked)
        if handled:
            return _exception(item, ExceptionReason.PARTIAL_STOCK, f"needs {item.line.quantity} × {item.sku}; {why}")
        if candidates:
            return _exception(item, ExceptionReason.HANDLING_CONSTRAINT,
                              f"{item.sku} needs {_describe_handling(item.rule)}; {why}")
        restriction, _ = first_stage(self.network, region_id)
        if restriction is not None:
            mode = self.network.routing.mode.value
            return _exception(item, ExceptionReason.NODES_UNAVAILABLE,
                              f"every node {mode} mode allows for {region_id} is unavailable: {why}")
        if all(not self.node_state(n, orders_today, now).usable for n in [*(n for n, *_ in static), *others]):
            return _exception(item, ExceptionReason.NODES_UNAVAILABLE,
                              f"every node serving {region_id} is unavailable: {why}")
        promise = self.network.regions[region_id].promise_days
        return _exception(item, ExceptionReason.NO_NODE_SERVES_REGION,
                          f"no usable node reaches {region_id} within its {promise}d promise "
                          f"and no backup or fallback region can: {why}")

    def _blocker(self, item: _Line, node: Node, lane: Lane, region_id: str, sellable: Mapping[tuple[str, str], int],
                 orders_today: Mapping[str, int], now: datetime) -> tuple[str, str]:
        """What keeps one of the region's candidate nodes from shipping the line."""
        state = self.node_state(node, orders_today, now)
        if not state.usable:
            return node.id, state.unusable_because or ""
        missing = [h.value for h in sorted(item.rule.handling, key=lambda h: h.value) if h.value not in node.capabilities]
        if missing:
            return node.id, f"lacks {' and '.join(missing)}"
        if not item.rule.handled_by(node, lane):
            return node.id, f"has a {lane.transit_days}d lane ({item.sku} allows {item.rule.max_transit_days}d)"
        ranked_down = f" (ranked down: {', '.join(state.ranked_down)})" if state.ranked_down else ""
        return node.id, f"has {sellable.get((node.id, item.sku), 0)}{ranked_down}"

    def _outside_stages(self, node: Node, region_id: str) -> tuple[str, str]:
        """Why a node with a lane to the region is no candidate for it at all."""
        if first_stage(self.network, region_id)[0] is not None:
            return node.id, f"left out by {self.network.routing.mode.value} mode"
        promise = self.network.regions[region_id].promise_days
        return node.id, f"has a {node.lanes[region_id].transit_days}d lane (promise {promise}d)"


@dataclass(frozen=True)
class PreparedRoute:
    """A routing result made ahead by ``Router.prepare``, with its router and inputs."""

    router: Router
    inputs: tuple
    result: RoutingResult


@dataclass(frozen=True)
class NodeState:
    """How routing treats a node at one moment: whether it may take orders (and why
    not), and what ranks it below the others (it still ships when they cannot)."""

    usable: bool
    unusable_because: str | None = None
    ranked_down: tuple[str, ...] = ()

    def describe(self) -> str:
        if not self.usable:
            return self.unusable_because or "unusable"
        return "ranked down: " + ", ".join(self.ranked_down) if self.ranked_down else "active"


def node_state(node: Node, now: datetime, tz: ZoneInfo, orders_today: Mapping[str, int]) -> NodeState:
    """The one place that decides whether routing may use a node at ``now`` and what
    ranks it down; ``connector nodes`` shows the same, so the two cannot disagree.
    ``orders_today``: orders routed to each node in the shop's local day (``tz``)."""
    if not node.usable(now):
        if node.status in (NodeStatus.OFFLINE, NodeStatus.PAUSED):
            why = f"{node.status.value} ({node.status_note})" if node.status_note else node.status.value
        elif node.active_from is not None and now < node.active_from:
            why = f"outside its active window (opens {_local(node.active_from, tz)})"
        else:
            why = f"outside its active window (closed {_local(node.active_until, tz)})"
        return NodeState(False, why)
    notes = []
    if node.status is NodeStatus.DEGRADED:
        notes.append(f"node degraded ({node.status_note})" if node.status_note else "node degraded")
    if node.cutoff is not None and now.astimezone(tz).time() >= node.cutoff:
        notes.append(f"past {node.cutoff.strftime('%H:%M')} cutoff")
    if node.daily_capacity is not None and orders_today.get(node.id, 0) >= node.daily_capacity:
        notes.append(f"at daily capacity {node.daily_capacity}")
    return NodeState(True, None, tuple(notes))


def _local(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z") if moment else "?"


# ---------------------------------------------------------------- helpers


def first_stage(network: Network, region_id: str) -> tuple[Restriction | None, list[tuple[Node, Lane]]]:
    """Routing's first stage for a region, before anyone's status is looked at: when the
    current mode restricts the region, that restriction and its nodes with a lane to it
    (promise relaxed, in the restriction's order); else none and ``promise_lanes``."""
    restriction = next((r for r in network.routing.current.restrictions if r.applies_to(region_id)), None)
    if restriction is None:
        return None, promise_lanes(network, region_id)
    nodes = [network.nodes[n] for n in dict.fromkeys(restriction.nodes)]
    return restriction, [(node, node.lanes[region_id]) for node in nodes if region_id in node.lanes]


def promise_lanes(network: Network, region_id: str) -> list[tuple[Node, Lane]]:
    """Every node whose lane to the region meets its promise, by node id."""
    promise = network.regions[region_id].promise_days
    return [(node, node.lanes[region_id]) for node in sorted(network.nodes.values(), key=lambda n: n.id)
            if region_id in node.lanes and node.lanes[region_id].transit_days <= promise]


def skip_reason(line: OrderLine) -> str | None:
    """Why a line is not routed at all (recorded on the line), or None."""
    if not line.requires_shipping:
        return "does not require shipping"
    if line.fulfilled_by:
        return f"shipped by another fulfillment service ({line.fulfilled_by})"
    if not line.sku:
        return "has no SKU"
    if line.quantity <= 0:
        return "nothing left to ship (quantity 0)"
    return None


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _describe_handling(rule: SkuRule) -> str:
    parts = [h.value for h in sorted(rule.handling, key=lambda h: h.value)]
    if rule.max_transit_days is not None:
        parts.append(f"at most {rule.max_transit_days} transit days")
    return " and ".join(parts) or "no special handling"


def _describe_address(order: Order) -> str:
    a = order.ship_to
    if a is None:
        return "an order with no shipping address"
    return "/".join(p for p in (a.country, a.province, a.postcode) if p) or "an empty address"


def _exception(item: _Line, reason: ExceptionReason, why: str) -> LineDecision:
    return LineDecision(
        line_id=item.line.line_id,
        sku=item.sku,
        quantity=item.line.quantity,
        node_id=None,
        rule="exception",
        explanation=f"{reason.value}: {why}",
        exception=reason,
    )


def _fits(plan: Mapping[str, str], lines: Sequence[_Line], sellable: Mapping[tuple[str, str], int]) -> bool:
    need: dict[tuple[str, str], int] = {}
    for item in lines:
        node_id = plan.get(item.line.line_id)
        if node_id is not None:
            key = (node_id, item.sku)
            need[key] = need.get(key, 0) + item.line.quantity
    return all(sellable.get(k, 0) >= q for k, q in need.items())


def _key_prefix(cands: Sequence[_Candidate], unrouted: int, drained: float, least_left: int,
                chain: Sequence[Rule]) -> tuple:
    """A plan's key but for its last (tiebreak) position: lines left unrouted, the latest
    stage used, shipments from ranked-down nodes, then the mode's rules. ``cands``: the
    nodes it uses, by id; ``drained``: the opportunity cost of its units; ``least_left``:
    the least stock any (node, SKU) it draws on keeps."""
    key: list = [unrouted, max(c.stage for c in cands), sum(c.penalty for c in cands)]
    for rule in chain:
        if rule is Rule.SINGLE_SHIPMENT:
            key.append(len(cands))
        elif rule is Rule.FASTEST:
            key.append(max(c.lane.transit_days for c in cands))
        elif rule is Rule.PRIORITY:
            key.append(max(c.node.priority for c in cands))
        elif rule is Rule.CHEAPEST:
            key.append(round(sum(c.lane.cost_per_order for c in cands) + drained, 6))
        elif rule is Rule.MOST_STOCK:
            key.append(-least_left)
    return tuple(key)


class _Tally:
    """What a plan's key is made of, counted once, so that the same plan with one line
    moved elsewhere can be scored without going over the order again."""

    def __init__(self, plan: Mapping[str, str], lines: Sequence[_Line], sellable: Mapping[tuple[str, str], int],
                 opportunity: Mapping[tuple[str, str], float], chain: Sequence[Rule]):
        self.sellable = sellable
        self.opportunity = opportunity if Rule.CHEAPEST in chain else {}
        self.lines_at: dict[str, int] = {}  # node -> lines shipped from it
        self.lines_of: dict[tuple[str, str], int] = {}  # (node, sku) -> lines drawing on it
        self.left: dict[tuple[str, str], int] = {}  # (node, sku) -> stock left after the plan
        self.drained = 0.0
        for item in lines:
            node_id = plan.get(item.line.line_id)
            if node_id is None:
                continue
            key = (node_id, item.sku)
            self.lines_at[node_id] = self.lines_at.get(node_id, 0) + 1
            self.lines_of[key] = self.lines_of.get(key, 0) + 1
            self.left[key] = self.left.get(key, sellable.get(key, 0)) - item.line.quantity
            if self.opportunity:
                self.drained += item.line.quantity * self.opportunity.get(key, 0.0)
        self.used = sorted(self.lines_at)
        self._lowest = sorted((v, k) for k, v in self.left.items()) if Rule.MOST_STOCK in chain else None

    def least_left(self) -> int:
        return self._lowest[0][0] if self._lowest else 0

    def moved(self, item: _Line, from_node: str | None, to_node: str) -> tuple[list[str], float, int] | None:
        """The plan with ``item`` moved from ``from_node`` (None: unrouted) to ``to_node``:
        its nodes by id, opportunity cost and least stock left; None when it does not fit."""
        q = item.line.quantity
        to_key = (to_node, item.sku)
        to_left = self.left.get(to_key, self.sellable.get(to_key, 0)) - q
        if to_left < 0:
            return None
        used = self.used if to_node in self.lines_at else sorted([*self.used, to_node])
        drained = self.drained + q * self.opportunity.get(to_key, 0.0) if self.opportunity else 0.0
        changed = {to_key: to_left}
        if from_node is not None:
            from_key = (from_node, item.sku)
            if self.lines_at[from_node] == 1:
                used = [n for n in used if n != from_node]
            if self.opportunity:
                drained -= q * self.opportunity.get(from_key, 0.0)
            if self.lines_of[from_key] > 1:
                changed[from_key] = self.left[from_key] + q
            else:
                changed[from_key] = None  # no line draws on it any more
        least_left = 0
        if self._lowest is not None:
            unchanged = next((v for v, k in self._lowest if k not in changed), None)
            least_left = min(v for v in (unchanged, *changed.values()) if v is not None)
        return used, drained, least_left


def _greedy_cover(lines, eligible, sellable, node_key) -> dict[str, str] | None:
    remaining = [l for l in lines]
    stock = dict(sellable)
    plan: dict[str, str] = {}
    while remaining:
        coverage: dict[str, list[_Line]] = {}
        cands: dict[str, _Candidate] = {}
        for item in remaining:
            for c in eligible[item.line.line_id]:
                cands[c.node.id] = c
                coverage.setdefault(c.node.id, []).append(item)
        best_node = None
        best_rank = None
        for node_id, items in coverage.items():
            fitting = _take_fitting(node_id, items, stock, commit=False)
            if not fitting:
                continue
            rank = (-len(fitting), node_key(cands[node_id], fitting[0].sku))
            if best_rank is None or rank < best_rank:
                best_rank, best_node = rank, node_id
        if best_node is None:
            return None
        for item in _take_fitting(best_node, coverage[best_node], stock, commit=True):
            plan[item.line.line_id] = best_node
        remaining = [item for item in remaining if item.line.line_id not in plan]
    return plan


def _take_fitting(node_id: str, items, stock: dict, commit: bool) -> list[_Line]:
    taken = []
    local = stock if commit else dict()
    for item in items:
        key = (node_id, item.sku)
        have = local[key] if key in local else stock.get(key, 0)
        if have >= item.line.quantity:
            local[key] = have - item.line.quantity
            taken.append(item)
    return taken


def _each_at_best(lines, eligible, sellable, node_key) -> dict[str, str]:
    """Each line to its best node that still has the stock; lines that fit nowhere are left out."""
    stock = dict(sellable)
    plan = {}
    for item in lines:
        options = sorted(eligible[item.line.line_id], key=lambda c: node_key(c, item.sku))
        chosen = next((c for c in options if stock.get((c.node.id, item.sku), 0) >= item.line.quantity), None)
        if chosen is not None:
            stock[(chosen.node.id, item.sku)] -= item.line.quantity
            plan[item.line.line_id] = chosen.node.id
    return plan


def _explain(item: _Line, c: _Candidate, region, rule: str, shipments: int, unit_opportunity: float) -> str:
    lane = c.lane
    if lane.region_id == region.id and lane.transit_days <= region.promise_days:
        reach = f"{lane.transit_days}d to {region.id} within its {region.promise_days}d promise"
    else:
        reach = f"{lane.transit_days}d to {lane.region_id}, beyond {region.id}'s {region.promise_days}d promise"
    parts = [f"{item.line.quantity} × {item.sku} from {c.node.id}", reach]
    if c.note:
        parts.append(c.note)
    if c.penalty_notes:
        parts.append("ranked down: " + ", ".join(c.penalty_notes))
    if unit_opportunity > 0:
        parts.append(f"opportunity cost {unit_opportunity:.2f}/unit")
    parts.append(f"{shipments} shipment{'s' if shipments != 1 else ''} for this order")
    parts.append(f"decided by {rule} ({RULE_TEXT.get(rule, rule)})")
    return "; ".join(parts)
