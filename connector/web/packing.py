"""The packing room: for a node without an API (the garage, a pop-up, a partner), the pick
list and packing slips of a day (on screen, printable, CSV) and "Mark shipped" per order,
which records the shipment and has it written back to the store (``services.handoff``)."""
from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for

from connector import handoff_store
from connector.services.handoff import ShipError, packing_nodes, pick_list_csv
from connector.web import current_store
from connector.web.auth import current_user, login_required

bp = Blueprint("packing", __name__, url_prefix="/packing")

SHIP_FIELDS = ("carrier", "tracking_number", "tracking_url")


def _actor() -> str:
    """Who marked it shipped: the signed-in person (as the settings pages audit)."""
    user = current_user()
    return f"web:{user.email}" if user is not None else "web"


def _choice(shop_id: str):
    """(container, shop, packing nodes, node id, day) from the query and form: the shop's first
    packing node and today (its local date) unless chosen. Another shop's node, or a node that
    hands its orders to a 3PL, is a 404."""
    container = current_app.extensions["connector"]
    shop = container.shops.get(shop_id)
    if shop is None:
        abort(404)
    nodes = packing_nodes(shop)
    node_id = (request.values.get("node") or (nodes[0] if nodes else "")).strip()
    if nodes and node_id not in nodes:
        abort(404, "This shop has no such node to pack at.")
    raw_day = (request.values.get("day") or "").strip()
    try:
        day = date.fromisoformat(raw_day) if raw_day else container.clock().astimezone(ZoneInfo(shop.timezone)).date()
    except ValueError:
        abort(400, "The day must be a date like 2026-11-22.")
    return container, shop, nodes, node_id, day


@bp.get("/")
@login_required
def index(shop_id: str):
    return _page(shop_id, "packing/index.html")


@bp.get("/print")
@login_required
def print_view(shop_id: str):
    return _page(shop_id, "packing/print.html")


@bp.get("/csv")
@login_required
def csv(shop_id: str):
    container, shop, nodes, node_id, day = _choice(shop_id)
    if not nodes:
        abort(404, "This shop has no node to pack at.")
    packed = container.handoff.pick_list(current_store(), shop, node_id, day)
    return Response(pick_list_csv(packed), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="pick-list-{node_id}-{day.isoformat()}.csv"'})


@bp.post("/ship")
@login_required
def ship(shop_id: str):
    container, shop, nodes, node_id, day = _choice(shop_id)
    order_id = (request.form.get("order_id") or "").strip()
    store = current_store()
    found = store.find_orders(order_id, shop_id) if order_id else []
    if not nodes or not found or found[0]["id"] != order_id:  # another shop's order: this shop has none
        abort(404)
    values = {name: request.form.get(name, "") for name in SHIP_FIELDS}
    try:
        shipped = container.handoff.mark_shipped(store, shop_id, order_id, node_id, values["carrier"],
                                                 values["tracking_number"], values["tracking_url"], _actor())
    except ShipError as exc:
        if exc.field in SHIP_FIELDS:  # beside its field on the order's slip
            return _page(shop_id, "packing/index.html", errors={order_id: {exc.field: str(exc)}},
                         values={order_id: values}), 400
        # The order is not on this list (shipped already, or moved elsewhere): said above the list.
        return _page(shop_id, "packing/index.html", problem=str(exc)), 409
    flash(f"Order {shipped['number']} is marked shipped from {node_id}; the store will be told with the tracking.")
    return redirect(url_for("packing.index", node=node_id, day=day.isoformat()))


def _page(shop_id: str, template: str, errors: dict | None = None, values: dict | None = None,
          problem: str | None = None):
    container, shop, nodes, node_id, day = _choice(shop_id)
    store = current_store()
    packed = container.handoff.pick_list(store, shop, node_id, day) if nodes else None
    shipped = handoff_store.shipped_from(store, shop_id, node_id) if nodes else []
    names = {n: shop.network.nodes[n].name for n in nodes}
    return render_template(template, shop=shop, nodes=nodes, names=names, node_id=node_id, day=day, packed=packed,
                           shipped=shipped, errors=errors or {}, values=values or {}, problem=problem)


@bp.post("/handoffs/<order_id>/retry")
@login_required
def retry_handoff(shop_id: str, order_id: str):
    """Tell the store about the order again (the action beside a refused move)."""
    store = current_store()
    found = store.find_orders(order_id, shop_id)
    if not found or found[0]["id"] != order_id:  # another shop's order: this shop has none
        abort(404)
    done = current_app.extensions["connector"].handoff.retry(store, shop_id, order_id, _actor())
    flash(f"Order {done['number']} will be written to the store again at the next hand-off, in under a minute.")
    back = request.form.get("next") or ""
    # Only a path of this site: never an address elsewhere (browsers read //host and /\host as one).
    local = back.startswith("/") and not back.startswith(("//", "/\\"))
    return redirect(back if local else url_for("packing.index"))
