"""The action centre (/actions): everything that needs the creator, grouped, each item
with its reason, how long it has waited and its actions beside it; and the POST routes
of those actions (an exception's own steps are the ``exceptions`` blueprint's).

Every step goes through ``services.actions.ActionCentre`` (the CLI calls the same),
audited as the signed-in person. Done: a notice, and back to ``next`` (the page the
form was on). Refused (it no longer applies): the page again with the reason in red
beside that action, HTTP 409. Another shop's job, transfer or node: 404.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

from connector.domain.attention import by_section, plural, waited
from connector.services.actions import ActionRefused, NotFound
from connector.services.attention import needs_you
from connector.web import current_store
from connector.web.auth import _safe_next, login_required
from connector.web.settings import _actor

bp = Blueprint("actions", __name__, url_prefix="/actions")


def action_key(endpoint: str, args) -> str:
    """Which action a refusal belongs to: its endpoint and URL values."""
    return endpoint + "?" + "&".join(f"{k}={v}" for k, v in sorted(dict(args).items()))


@bp.app_template_global()
def attention_waited(item) -> str | None:
    return waited(item.since, _container().clock())


@bp.app_template_global()
def endpoint_exists(endpoint: str) -> bool:
    """An action's page is served here (the exceptions' chooser comes with its own blueprint)."""
    return endpoint in current_app.view_functions


@bp.get("")
@login_required
def index(shop_id: str):
    return _page(shop_id)


def _page(shop_id: str, errors: dict[str, str] | None = None, status: int = 200):
    container = _container()
    shop = container.shops.get(shop_id)
    if shop is None:
        abort(404, f"Shop {shop_id} is not configured on this service.")
    items = needs_you(current_store(), shop, container.settings, container.clock())
    return render_template("actions/index.html", shop=shop, sections=by_section(items), count=len(items),
                           errors=errors or {}, action_key=action_key), status


def _container():
    return current_app.extensions["connector"]


def _done(message: str):
    flash(message)
    return redirect(_safe_next(request.form.get("next")) or url_for("actions.index"))


def _step(shop_id: str, run, message):
    """Run one action: done -> notice and back; refused -> the page with the reason beside it."""
    try:
        result = run(_container().actions, current_store(), _actor())
    except NotFound:
        abort(404)
    except ActionRefused as exc:
        args = {**request.view_args, **request.args.to_dict()}
        return _page(shop_id, {action_key(request.endpoint, args): str(exc)}, 409)
    return _done(message(result))


@bp.post("/forward/<int:job_id>/retry")
@login_required
def retry_forward(shop_id: str, job_id: int):
    return _step(shop_id, lambda actions, store, by: actions.retry_forward(store, shop_id, job_id, by),
                 lambda job: f"Order hand-off {job_id} to {job['provider']} will be tried again within a minute "
                             "(the 3PL is asked first whether it already has it).")


@bp.post("/forward/<int:job_id>/amended")
@login_required
def amendment_done(shop_id: str, job_id: int):
    return _step(shop_id, lambda actions, store, by: actions.amendment_done(store, shop_id, job_id, by),
                 lambda closed: f"Marked done: {plural(closed, 'line change')} made at the 3PL.")


@bp.post("/sync/<provider>")
@login_required
def sync(shop_id: str, provider: str):
    def run(actions, store, by):
        outcome = actions.sync_now(store, shop_id, provider, by)
        if not outcome.ok:  # the sync ran and failed: the reason stays beside its button
            raise ActionRefused(f"The sync failed: {outcome.error}. The previous stock is kept.")
        return outcome

    def message(outcome):
        rows = ", ".join(f"{n}: {plural(c, 'SKU')}" for n, c in outcome.rows.items())
        moved = f"; {plural(len(outcome.rerouted), 'order line')} routed again" if outcome.rerouted else ""
        return f"Synced {provider} — {rows}{moved}."
    return _step(shop_id, run, message)


@bp.post("/transfers/<int:transfer_id>/<step>")
@login_required
def transfer(shop_id: str, transfer_id: int, step: str):
    def run(actions, store, by):
        units = (request.form.get("units") or "").strip()
        if units and not units.isdigit():
            raise ActionRefused("Units must be a whole number.")
        return actions.transfer(store, shop_id, transfer_id, step, by, units=int(units) if units else None,
                                note=(request.form.get("note") or "").strip() or None)
    return _step(shop_id, run, lambda t: f"Transfer #{transfer_id} ({t['units']} × {t['sku']}, {t['from_node']} → "
                                         f"{t['to_node']}) is now {t['status'].replace('_', ' ')}.")


@bp.post("/nodes/<node_id>/over-reserved")
@login_required
def resolve_over_reserved(shop_id: str, node_id: str):
    def message(rerouted):
        moved = sum(1 for r in rerouted if r.to_node)
        return (f"{plural(len(rerouted), 'order line')} moved off {node_id}: {moved} to another node, "
                f"{len(rerouted) - moved} to Orders to decide.")
    return _step(shop_id, lambda actions, store, by: actions.resolve_over_reserved(store, shop_id, node_id, by),
                 message)


@bp.post("/nodes/<node_id>/count")
@login_required
def count(shop_id: str, node_id: str):
    sku = request.values.get("sku", "")

    def run(actions, store, by):
        quantity = (request.form.get("quantity") or "").strip()
        if not quantity.isdigit():
            raise ActionRefused("Type the units counted: a whole number, 0 or more.")
        if not sku:
            raise ActionRefused("Which SKU was counted is missing; reload the page.")
        return actions.count(store, shop_id, node_id, sku, int(quantity), by)

    def message(result):
        previous, rerouted = result
        moved = f"; {plural(len(rerouted), 'order line')} routed again" if rerouted else ""
        return f"Count saved: {node_id} holds {request.form['quantity']} of {sku} (was {previous}){moved}."
    return _step(shop_id, run, message)


@bp.post("/webhooks/retry")
@login_required
def retry_webhooks(shop_id: str):
    return _step(shop_id, lambda actions, store, by: actions.retry_webhooks(store, shop_id, by),
                 lambda ids: f"{plural(len(ids), 'delivery', 'deliveries')} queued again; they are processed "
                             "within seconds.")


@bp.post("/webhooks/repair")
@login_required
def repair_webhooks(shop_id: str):
    return _step(shop_id, lambda actions, store, by: actions.repair_webhooks(store, shop_id, by),
                 lambda outcome: outcome.detail)


@bp.post("/refunds/<order_id>/retry")
@login_required
def retry_refund(shop_id: str, order_id: str):
    return _step(shop_id, lambda actions, store, by: actions.retry_refund_lookup(store, shop_id, order_id, by),
                 lambda n: f"The refund lookup for order {order_id} is asked again within a minute.")


@bp.post("/reconcile")
@login_required
def reconcile(shop_id: str):
    def run(actions, store, by):
        result = actions.reconcile_now(store, shop_id, by)
        if result.error:
            raise ActionRefused(f"Reading the store back failed again: {result.error}")
        return result

    def message(result):
        hooks = ("its order webhooks are fine" if not result.webhook_problems
                 else f"{plural(len(result.webhook_problems), 'webhook problem')} remain")
        return (f"Store read back: {plural(result.read, 'order')} read, {result.stored} that no webhook had "
                f"brought; {hooks}.")
    return _step(shop_id, run, message)
