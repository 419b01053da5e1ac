"""Settings sections about how orders and stock move: SKU rules, the routing mode and
each mode's rule order, planning and rebalancing, transfers awaiting a decision, the
routing preview and the configuration history. Registered on the ``settings``
blueprint; every save of the shop's document goes through ``settings_forms``."""
from __future__ import annotations

import copy
import math
import re
from dataclasses import replace

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from connector.config import DEFAULT_RULES, PlanningConfig, RebalanceConfig
from connector.domain.model import Address, ExceptionReason, Handling, Mode, Rule
from connector.services.routing_preview import preview, preview_order
from connector.services.transfers import TransferError
from connector.web import current_store
from connector.web import settings_forms as forms
from connector.web.auth import login_required
from connector.web.settings import _actor, bp

# ---------------------------------------------------------------- words for a creator

MODE_WORDS = {
    Mode.NORMAL: "Everyday selling.",
    Mode.PEAK: "A sell-out, a drop or launch week: speed and stock first.",
    Mode.DISRUPTION: "Something broke (a port, a carrier, a warehouse): orders go only along the paths "
                     "you set below until it is fixed.",
}
RULE_WORDS = {
    Rule.SINGLE_SHIPMENT: ("Single shipment", "Send the whole order from one place when one place has it all: "
                                              "one parcel for the buyer instead of several."),
    Rule.FASTEST: ("Fastest", "The place that reaches the buyer's region in the fewest days."),
    Rule.PRIORITY: ("Priority", "The place you ranked first (each place's priority number; lower goes first)."),
    Rule.CHEAPEST: ("Cheapest", "The lowest shipping cost per order."),
    Rule.MOST_STOCK: ("Most stock", "The place with the most units left after this order, so no place runs dry."),
}
# What else can decide a line in the preview (steps before a mode's own rules, and the ends).
DECIDED_WORDS = {
    "coverage": "covers the most of the order",
    "promise": "meets the region's delivery promise",
    "availability": "working normally (not past its cutoff, full or struggling)",
    "only_option": "the only place that can ship it",
    "tiebreak": "a tie, settled by the places' order",
    **{rule.value: words[0] for rule, words in RULE_WORDS.items()},
}
EXCEPTION_WORDS = {
    ExceptionReason.NO_REGION: "the address is in none of your regions",
    ExceptionReason.NO_NODE_SERVES_REGION: "no place ships to this region",
    ExceptionReason.NODES_UNAVAILABLE: "the places that ship there are closed or paused",
    ExceptionReason.HANDLING_CONSTRAINT: "no place can handle this product for this region",
    ExceptionReason.PARTIAL_STOCK: "not enough stock in any one place",
    ExceptionReason.NEEDS_HUMAN: "it needs a person's look",
}
HANDLING_WORDS = {Handling.COLD_CHAIN.value: "Needs cold storage", Handling.FRAGILE.value: "Fragile",
                  Handling.OVERSIZED.value: "Oversized"}
PER_PAGE = 25


# ---------------------------------------------------------------- SKU rules


def _sku_fields(index: int) -> list[forms.Field]:
    at = f"skus[{index}]"
    return [
        forms.Field(f"{at}.pattern", "Product code (SKU) or pattern", optional=False,
                    help="An exact SKU, or a pattern with * for any text: CANDLE-* covers every candle. "
                         "An exact SKU wins over a pattern; among patterns the first in the list wins."),
        forms.Field(f"{at}.handling", "Handling", "multi", tuple(HANDLING_WORDS.items()),
                    help="Only places that can handle it ship it."),
        forms.Field(f"{at}.max_transit_days", "Longest time on the road (days)", "int",
                    help="For things that spoil or melt: only places that reach the buyer within this many days."),
        forms.Field(f"{at}.tier", "Tier", "choice",
                    (("A", "A: sells fast, keep it close to buyers"), ("B", "B: sells now and then, stage it for "
                                                                         "campaigns"), ("C", "C: slow, keep it central"))),
        forms.Field(f"{at}.unit_value", "Value of one unit", "float",
                    help="What a missed sale costs, and what transfer approval limits count."),
        forms.Field(f"{at}.prior_weekly_units", "Expected units a week (new products)", "float",
                    help="Until it has its own sales: how many sell a week, all regions together."),
        forms.Field(f"{at}.category", "Category",
                    help="A new product with no sales yet is forecast like the others in its category."),
    ]


@bp.get("/sku-rules")
@login_required
def sku_rules(shop_id: str):
    document, version = forms.load(shop_id)
    rules = list(enumerate(document.get("skus") or []))
    query = (request.args.get("q") or "").strip()
    if query:
        needle = query.casefold()
        rules = [(i, r) for i, r in rules if needle in " ".join(
            str(v) for v in (r.get("pattern"), r.get("category"), r.get("tier"), *(r.get("handling") or ()))
            if v).casefold()]
    pages = max(1, math.ceil(len(rules) / PER_PAGE))
    page = min(max(_int(request.args.get("page"), 1), 1), pages)
    shown = rules[(page - 1) * PER_PAGE:page * PER_PAGE]
    return render_template("settings/sku_rules.html", rules=shown, total=len(rules), query=query, page=page,
                           pages=pages, version=version, handling_words=HANDLING_WORDS,
                           all_count=len(document.get("skus") or []))


@bp.route("/sku-rules/new", methods=("GET", "POST"))
@login_required
def sku_rule_new(shop_id: str):
    document, _ = forms.load(shop_id)
    return _sku_rule_form(shop_id, len(document.get("skus") or []), new=True)


@bp.route("/sku-rules/<int:rule>", methods=("GET", "POST"))
@login_required
def sku_rule(shop_id: str, rule: int):
    return _sku_rule_form(shop_id, rule, new=False)


def _sku_rule_form(shop_id: str, index: int, *, new: bool):
    document, version = forms.load(shop_id)
    count = len(document.get("skus") or [])
    if not new and not 0 <= index < count:
        abort(404)
    fields = _sku_fields(index)
    errors: dict[str, str] = {}
    raw: dict[str, str] = {}
    stale = None
    if request.method == "POST":
        if not new and "remove" in request.form:
            changed = dict(document, skus=[r for i, r in enumerate(document["skus"]) if i != index])
            outcome = forms.save(shop_id, changed, request.form.get("version"), _actor())
            if outcome.saved:
                flash(f"Rule {document['skus'][index].get('pattern')} removed (version {outcome.version}).")
                return redirect(url_for("settings.sku_rules"))
            errors, stale = outcome.errors, outcome.stale
        else:
            result = forms.apply_form(document, request.form, fields)
            errors, raw = result.errors, result.raw
            if not errors:
                outcome = forms.save(shop_id, result.document, request.form.get("version"), _actor())
                if outcome.saved:
                    pattern = forms.get_path(result.document, f"skus[{index}].pattern")
                    flash(f"Rule {pattern} saved (version {outcome.version}).")
                    return redirect(url_for("settings.sku_rules", q=pattern))
                errors, stale = outcome.errors, outcome.stale
    return render_template("settings/sku_rule.html", document=document, version=version, fields=fields,
                           errors=errors, raw=raw, stale=stale, new=new, index=index)


# ---------------------------------------------------------------- routing


def _mode_rules(document: dict, mode: Mode) -> list[str]:
    rules = forms.get_path(document, f"routing.modes.{mode.value}.rules")
    return list(rules) if rules else [r.value for r in DEFAULT_RULES]


def _restrict_rows(document: dict, mode: Mode) -> forms.Rows:
    return forms.Rows(f"routing.modes.{mode.value}.restrict", [
        forms.Field("regions", "Orders to these regions", "lines",
                    help="Region ids, comma-separated; * for every region."),
        forms.Field("nodes", "ship only from these places", "lines", help="Node ids, comma-separated, in order."),
    ], len(forms.get_path(document, f"routing.modes.{mode.value}.restrict") or []))


@bp.route("/routing", methods=("GET", "POST"))
@login_required
def routing(shop_id: str):
    """The one mode switch, and per mode its restrictions and the order of its rules."""
    document, version = forms.load(shop_id)
    errors: dict[str, str] = {}
    raw: dict[str, str] = {}
    stale = None
    posted = request.form.get("form") if request.method == "POST" else None
    if posted == "mode":
        mode = request.form.get("mode", "")
        if mode not in {m.value for m in Mode}:
            errors["routing.mode"] = "pick one of the modes"
        else:
            outcome = forms.set_mode(shop_id, mode, None, request.form.get("version"), _actor())
            if outcome.saved:
                flash(f"Routing mode is now {mode} (version {outcome.version}).")
                return redirect(url_for("settings.routing"))
            errors, stale = outcome.errors, outcome.stale
    elif posted == "rules":
        mode = _posted_mode(request.form.get("mode"))
        rules = _mode_rules(document, mode)
        action, _, value = (request.form.get("action") or "").partition(":")
        if action in ("up", "down") and value.isdigit():
            rules = forms.moved(rules, int(value), -1 if action == "up" else 1)
        elif action == "remove" and value in rules:
            rules.remove(value)
        elif action == "add" and request.form.get("rule") in {r.value for r in Rule}:
            rules.append(request.form["rule"])
        else:  # nothing asked that this form offers: nothing to save
            return redirect(url_for("settings.routing") + f"#rules-{mode.value}")
        changed = copy.deepcopy(document)
        forms.set_path(changed, f"routing.modes.{mode.value}.rules", rules)
        outcome = forms.save(shop_id, changed, request.form.get("version"), _actor())
        if outcome.saved:
            if action in ("up", "down"):  # the moved rule's button gets the focus back (autofocus, no #fragment)
                return redirect(url_for("settings.routing", moved=f"{mode.value}:{action}:{value}"))
            return redirect(url_for("settings.routing") + f"#rules-{mode.value}")
        errors, stale = outcome.errors, outcome.stale
    elif posted == "restrict":
        mode = _posted_mode(request.form.get("mode"))
        rows = _restrict_rows(document, mode)
        result = forms.apply_form(document, request.form, [rows])
        errors, raw = result.errors, result.raw
        if not errors:
            outcome = forms.save(shop_id, result.document, request.form.get("version"), _actor())
            if outcome.saved:
                flash(f"Restrictions for {mode.value} saved (version {outcome.version}).")
                return redirect(url_for("settings.routing") + f"#restrict-{mode.value}")
            errors, stale = result.as_shown(outcome.errors), outcome.stale
    current = Mode(forms.get_path(document, "routing.mode") or Mode.NORMAL.value)
    modes = [{"mode": m, "words": MODE_WORDS[m], "rules": _mode_rules(document, m),
              "restrict": forms.get_path(document, f"routing.modes.{m.value}.restrict") or [],
              "rows": _restrict_rows(document, m)} for m in Mode]
    return render_template("settings/routing.html", document=document, version=version, errors=errors, raw=raw,
                           stale=stale, current=current, modes=modes, rule_words=RULE_WORDS, posted=posted,
                           posted_mode=request.form.get("mode"), all_rules=list(Rule),
                           focus=_focus_after(request.args.get("moved"), modes),
                           mode_fields=[forms.Field("routing.mode", "Mode")])


def _focus_after(moved: str | None, modes: list[dict]) -> str | None:
    """After a rule moved ("peak:down:0"): "mode:index:button" of the button to focus, the
    same direction again while the rule can still go that way, else the other one."""
    parts = (moved or "").split(":")
    if len(parts) != 3:
        return None
    mode, action, index = parts
    rules = next((m["rules"] for m in modes if m["mode"].value == mode), None)
    if rules is None or action not in ("up", "down") or not index.isdigit() or len(rules) < 2:
        return None
    at = min(max(int(index) + (1 if action == "down" else -1), 0), len(rules) - 1)
    can_go = at < len(rules) - 1 if action == "down" else at > 0
    return f"{mode}:{at}:{action if can_go else ('up' if action == 'down' else 'down')}"


def _posted_mode(value: str | None) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        abort(400, "unknown mode")


# ---------------------------------------------------------------- planning and rebalancing


def _with_defaults(fields: list[forms.Field], model) -> list[forms.Field]:
    """Each empty input shows the default it leaves in force (from the configuration model)."""
    def default(spec: forms.Field) -> str:
        value = model.model_fields[spec.path.rsplit(".", 1)[-1]].default
        return f"default: {value}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return [replace(spec, placeholder=default(spec)) for spec in fields]


PLANNING_FIELDS = [
    forms.Field("planning.hub", "Hub (the place that tops up the others)", help="A node id; leave empty for none."),
    forms.Field("planning.lead_time_days", "Days to move stock from the hub to another place", "int"),
    forms.Field("planning.supplier_lead_time_days", "Days for the supplier to restock the hub", "int",
                help="Empty: the same as the line above."),
    forms.Field("planning.review_days", "Top up every ... days", "int"),
    forms.Field("planning.horizon_weeks", "Plan stock for the next ... weeks", "float"),
    forms.Field("planning.history_weeks", "Weeks of past orders the forecast reads", "int"),
    forms.Field("planning.service_level", "How often a place should not run out (0.5 to 0.99)", "float",
                help="0.95: 19 times in 20. Sets the safety stock."),
    forms.Field("planning.safety_days", "Or keep this many days of sales as safety stock", "float",
                help="When both are set, the larger safety stock wins."),
    forms.Field("planning.lost_sale_cost", "Cost of a missed sale, per unit", "float",
                help="For products without their own value (SKU rules)."),
    forms.Field("planning.degraded_penalty", "Extra cost per unit from a struggling place", "float"),
    forms.Field("planning.alpha", "How fast the forecast follows recent sales (0 to 1)", "float"),
    forms.Field("planning.beta", "How much the forecast follows a trend (0 to 1)", "float"),
]
PLANNING_FIELDS = _with_defaults(PLANNING_FIELDS, PlanningConfig)
REBALANCE_FIELDS = [
    forms.Field("rebalance.launch_lock_at", "Launch lock from", "datetime",
                help="From then on no stock moves without approval, except emergencies (local time)."),
    forms.Field("rebalance.approval_units_over", "Approval needed for transfers over ... units", "int"),
    forms.Field("rebalance.approval_value_over", "Approval needed for transfers worth over ...", "float",
                help="Units × each product's value."),
    forms.Field("rebalance.emergency_cover_days", "Emergency: a place with less than ... days of stock", "float",
                help="may be topped up without approval, even after the launch lock."),
    forms.Field("rebalance.min_transfer_units", "Smallest transfer (units)", "int"),
]
REBALANCE_FIELDS = _with_defaults(REBALANCE_FIELDS, RebalanceConfig)


def _planning_rows(document: dict) -> list[forms.Rows]:
    return [
        forms.Rows("planning.launches", [
            forms.Field("skus", "Products (SKU or pattern)", optional=False),
            forms.Field("starts", "From", "datetime", optional=False),
            forms.Field("ends", "Until", "datetime", optional=False),
            forms.Field("uplift", "Sales multiplied by", "float", optional=False),
        ], len(forms.get_path(document, "planning.launches") or [])),
        forms.Rows("rebalance.lanes", [
            forms.Field("from_node", "From", optional=False),
            forms.Field("to_node", "To", optional=False),
            forms.Field("cost_per_unit", "Cost per unit", "float", optional=False),
            forms.Field("lead_days", "Days on the way", "int"),
        ], len(forms.get_path(document, "rebalance.lanes") or [])),
    ]


@bp.route("/planning", methods=("GET", "POST"))
@login_required
def planning(shop_id: str):
    document, version = forms.load(shop_id)
    rows = _planning_rows(document)
    errors: dict[str, str] = {}
    raw: dict[str, str] = {}
    stale = None
    if request.method == "POST":
        result = forms.apply_form(document, request.form, PLANNING_FIELDS + REBALANCE_FIELDS + rows)
        errors, raw = result.errors, result.raw
        if not errors:
            outcome = forms.save(shop_id, result.document, request.form.get("version"), _actor())
            if outcome.saved:
                flash(f"Saved (version {outcome.version}).")
                return redirect(url_for("settings.planning"))
            errors, stale = result.as_shown(outcome.errors), outcome.stale
    all_fields = PLANNING_FIELDS + REBALANCE_FIELDS + [f for each in rows for f in each.fields()]
    return render_template("settings/planning.html", document=document, version=version, errors=errors, raw=raw,
                           stale=stale, planning_fields=PLANNING_FIELDS, rebalance_fields=REBALANCE_FIELDS,
                           row_lists=rows, all_fields=all_fields)


# ---------------------------------------------------------------- transfers

WAITING = ("proposed", "approved", "in_transit")
ACTIONS = {"proposed": ("approve", "reject"), "approved": ("ship", "reject"), "in_transit": ("receive",)}
ACTION_WORDS = {"approve": "Approve", "reject": "Reject", "ship": "Mark shipped", "receive": "Mark received"}


@bp.get("/transfers")
@login_required
def transfers(shop_id: str):
    rows = current_store().transfers(shop_id, WAITING)
    return render_template("settings/transfers.html", transfers=rows, actions=ACTIONS, action_words=ACTION_WORDS)


@bp.route("/transfers/<int:transfer_id>", methods=("GET", "POST"))
@login_required
def transfer(shop_id: str, transfer_id: int):
    store = current_store()
    row = store.transfer(transfer_id)
    if row is None or row["shop_id"] != shop_id:  # another shop's transfer: this shop has no such transfer
        abort(404)
    error = None
    if request.method == "POST":
        action = request.form.get("action", "")
        service = current_app.extensions["connector"].transfers
        try:
            if action == "approve":
                service.approve(store, transfer_id, _actor())
            elif action == "reject":
                service.reject(store, transfer_id, _actor(), (request.form.get("note") or "").strip() or None)
            elif action == "ship":
                units = (request.form.get("units") or "").strip()
                if units and not units.isdigit():
                    raise TransferError("units must be a whole number")
                service.ship(store, transfer_id, _actor(), int(units) if units else None)
            elif action == "receive":
                service.receive(store, transfer_id, _actor())
            else:
                raise TransferError("pick approve, reject, ship or receive")
        except TransferError as exc:
            error = str(exc)
        else:
            done = store.transfer(transfer_id)
            flash(f"Transfer {transfer_id} ({done['units']} × {done['sku']}, {done['from_node']} → "
                  f"{done['to_node']}) is now {done['status'].replace('_', ' ')}.")
            return redirect(url_for("settings.transfers"))
        row = store.transfer(transfer_id)
    return render_template("settings/transfer.html", transfer=row, actions=ACTIONS, action_words=ACTION_WORDS,
                           error=error), (200 if error is None else 409)


# ---------------------------------------------------------------- routing preview

_LINE = re.compile(r"^\s*(\S+?)\s*(?:[x×*]\s*|\s)\s*(\d+)\s*$|^\s*(\S+)\s*$")


def parse_lines(text: str) -> tuple[list[tuple[str, int]], str | None]:
    """One product per line: "CANDLE-FIG 2", "CANDLE-FIG x 2" or just "CANDLE-FIG" (1)."""
    lines: list[tuple[str, int]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            return [], f"line {number}: write a SKU and a quantity, like CANDLE-FIG 2"
        sku, quantity = (match.group(1), int(match.group(2))) if match.group(1) else (match.group(3), 1)
        if quantity < 1:
            return [], f"line {number}: the quantity must be at least 1"
        lines.append((sku, quantity))
    if not lines:
        return [], "give at least one SKU"
    if len(lines) > 50:
        return [], "at most 50 lines"
    return lines, None


@bp.get("/preview", endpoint="preview")
@login_required
def preview_page(shop_id: str):
    container = current_app.extensions["connector"]
    values = {key: (request.args.get(key) or "").strip() for key in ("country", "province", "postcode", "lines")}
    errors: dict[str, str] = {}
    previews = None
    if "lines" in request.args:
        if not re.fullmatch(r"[A-Za-z]{2}", values["country"]):
            errors["country"] = "a two-letter country code, like US or GB"
        lines, problem = parse_lines(values["lines"])
        if problem:
            errors["lines"] = problem
        if not errors:
            shop = container.shops.require(shop_id)
            store, now = current_store(), container.clock()
            routing_view = container.inbox.routing(store, shop_id, now)
            province = values["province"].upper() or None
            ship_to = Address(values["country"].upper(), province, values["postcode"] or None)
            previews = preview(store, routing_view, preview_order(shop_id, shop.platform, ship_to, lines, now), now)
    return render_template("settings/preview.html", values=values, errors=errors, previews=previews,
                           decided_words=DECIDED_WORDS, exception_words=EXCEPTION_WORDS, mode_words=MODE_WORDS)


# ---------------------------------------------------------------- history


@bp.get("/history")
@login_required
def history(shop_id: str):
    container = current_app.extensions["connector"]
    rows = list(reversed(container.shop_config.history(current_store(), shop_id)))
    pages = max(1, math.ceil(len(rows) / PER_PAGE))
    page = min(max(_int(request.args.get("page"), 1), 1), pages)
    shown = rows[(page - 1) * PER_PAGE:page * PER_PAGE]
    return render_template("settings/history.html", rows=shown, page=page, pages=pages,
                           tz=container.shops.require(shop_id).timezone)


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() else default
