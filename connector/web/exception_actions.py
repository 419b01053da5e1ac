"""Acting on one exception line from a page: the route-to chooser (every node with what
shipping the line from it costs in transit days and stock), shipping it from a chosen
node, re-evaluating the order now, and dismissing the line with a note. The action
centre (/actions) links and posts here; each action goes through
``services.exceptions.ExceptionActions``, audited as the signed-in person."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from connector.domain.manual_route import REASON_TEXT
from connector.services.exceptions import ExceptionActionError
from connector.web import current_store
from connector.web.auth import _safe_next, login_required
from connector.web.settings import _actor

bp = Blueprint("exceptions", __name__, url_prefix="/actions")


def _service():
    return current_app.extensions["connector"].exceptions


@bp.get("/exceptions/<order_id>/<line_id>")
@login_required
def choose(shop_id: str, order_id: str, line_id: str):
    return _chooser(shop_id, order_id, line_id)


@bp.post("/exceptions/<order_id>/<line_id>/route")
@login_required
def route(shop_id: str, order_id: str, line_id: str):
    order = _own_order(shop_id, order_id)
    node_id = request.form.get("node_id", "")
    try:
        option = _service().route_to(current_store(), shop_id, order_id, line_id, node_id, _actor(),
                                     request.form.get("note"))
    except ExceptionActionError as exc:
        return _chooser(shop_id, order_id, line_id, route_error=str(exc), status=422)
    flash(f"Order {order.number}, line {line_id}: now ships from {node_id} ({option.cost_text()}).")
    return _back(order_id, line_id)


@bp.post("/exceptions/<order_id>/<line_id>/dismiss")
@login_required
def dismiss(shop_id: str, order_id: str, line_id: str):
    order = _own_order(shop_id, order_id)
    note = request.form.get("note", "")
    try:
        _service().dismiss(current_store(), shop_id, order_id, line_id, note, _actor())
    except ExceptionActionError as exc:
        return _chooser(shop_id, order_id, line_id, dismiss_error=str(exc), note=note, status=422)
    flash(f"Order {order.number}, line {line_id}: dismissed, handled outside the connector ({note.strip()}).")
    return _back(order_id, line_id)


@bp.post("/orders/<order_id>/reevaluate")
@login_required
def reevaluate(shop_id: str, order_id: str):
    order = _own_order(shop_id, order_id)
    try:
        outcomes = _service().reevaluate(current_store(), shop_id, order_id, _actor())
    except ExceptionActionError as exc:
        flash(str(exc))
        outcomes = []
    for outcome in outcomes:
        flash(outcome.sentence())
    target = _safe_next(request.form.get("next"))
    if target:
        return redirect(target)
    line_id = request.form.get("line_id") or next((o.line_id for o in outcomes), None)
    if line_id is None:  # nothing to show a chooser for: the order's lines are all settled
        line_id = next((d["line_id"] for d in current_store().current_decisions(shop_id, order_id)), None)
    if line_id is None:
        abort(404)
    return redirect(url_for("exceptions.choose", order_id=order.id, line_id=line_id))


def _own_order(shop_id: str, order_id: str):
    """The signed-in shop's order; another shop's (or none) is a 404."""
    order = current_store().order(shop_id, order_id)
    if order is None:
        abort(404)
    return order


def _back(order_id: str, line_id: str):
    """Where the form came from when it is a page of this site, else the chooser."""
    return redirect(_safe_next(request.form.get("next"))
                    or url_for("exceptions.choose", order_id=order_id, line_id=line_id))


def _chooser(shop_id: str, order_id: str, line_id: str, *, route_error: str | None = None,
             dismiss_error: str | None = None, note: str = "", status: int = 200):
    store = current_store()
    order = _own_order(shop_id, order_id)
    line = next((l for l in store.order_lines(shop_id, order_id) if l["line_id"] == line_id), None)
    if line is None:
        abort(404)
    decision = next((d for d in store.current_decisions(shop_id, order_id) if d["line_id"] == line_id), None)
    try:
        options, settled = _service().options(store, shop_id, order_id, line_id), None
    except ExceptionActionError as exc:  # routed meanwhile, the order closed, a line we do not route
        options, settled = [], str(exc)
    shop = current_app.extensions["connector"].shops.get(shop_id)
    if shop is None:
        abort(404)
    network = shop.network
    back = _safe_next(request.values.get("next"))
    return render_template(
        "actions/choose.html", order=order, line=line, decision=decision, options=options, settled=settled,
        region=network.regions.get(order.region_id) if order.region_id else None,
        reason=REASON_TEXT.get(decision["exception"]) if decision and decision["exception"] else None,
        route_error=route_error, dismiss_error=dismiss_error, note=note, back=back,
        here=url_for("exceptions.choose", order_id=order_id, line_id=line_id),
    ), status
