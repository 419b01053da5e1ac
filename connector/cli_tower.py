"""The ``connector`` commands of the control tower: what needs a person (``exceptions``
and the action centre's steps), the hand-off to the stores and the packing room, the
inventory, the home page's summary, shipment metrics and alerts. Registered on the one
``connector`` group of ``connector.cli`` (which imports this module last)."""
from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from connector import handoff_store
from connector.bootstrap import Container
from connector.cli import (_by, _check_shop_node, _Context, _echo_rerouted, _migrated_store, _one_order, _one_shop,
                           _shops, forward, main, pass_ctx, refunds, stock)
from connector.inventory_store import Filters as InventoryFilters
from connector.services.attention import needs_you
from connector.services.handoff import ShipError, pick_list_csv
from connector.services.home import home_view
from connector.services.inventory import inventory_page

if TYPE_CHECKING:
    from connector.store import Store


@main.group(invoke_without_command=True)
@click.option("--shop", help="Only this shop.")
@click.pass_context
def exceptions(click_ctx: click.Context, shop: str | None) -> None:
    """Everything that needs a person, most urgent first (what the action centre, /actions,
    shows): order lines to decide, hand-offs to 3PLs, syncs, transfers, over-reserved
    stock, the store's webhooks; each line ends with the commands that settle it.
    `exceptions options ORDER LINE` shows what each node would mean for a line;
    `route`, `reevaluate` and `dismiss` act on it (audited)."""
    if click_ctx.invoked_subcommand is not None:
        return
    _echo_needs_you(click_ctx.find_object(_Context).container, shop)


def _echo_needs_you(container: Container, shop: str | None) -> None:
    """One line per item that needs a person (``services.attention.needs_you``), most
    urgent first, each ending with the commands that settle it."""
    _check_shop_node(container, shop, None)
    with _migrated_store(container) as store:
        items = [item for shop_id in _shops(container, shop)
                 for item in needs_you(store, container.shops.require(shop_id), container.settings, container.clock())]
    if not items:
        click.echo("no exceptions")
        return
    for item in items:
        commands = " | ".join(action.cli for action in item.actions)
        click.echo(f"{item.shop_id} {item.title}. {item.detail}" + (f" [{commands}]" if commands else ""))


def _exception_order(store: Store, order_ref: str, shop: str | None) -> tuple[str, str]:
    """(shop id, order id) of ORDER_REF."""
    order = _one_order(store, order_ref, shop)
    return order["shop_id"], order["id"]


@contextlib.contextmanager
def _action(container: Container) -> Iterator[Store]:
    """A migrated store for one of the action centre's steps (exception actions included); a
    refusal ends the command with its sentence (exit 1; 2 for a thing the shop does not have)."""
    from connector.services.actions import ActionRefused, NotFound
    from connector.services.exceptions import ExceptionActionError

    with _migrated_store(container) as store:
        try:
            yield store
        except NotFound as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        except (ActionRefused, ExceptionActionError) as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)


_exception_shop = click.option("--shop", help="Shop id, when several shops have this order number.")


@exceptions.command("options")
@click.argument("order_ref")
@click.argument("line_id")
@_exception_shop
@pass_ctx
def exceptions_options(ctx: _Context, order_ref: str, line_id: str, shop: str | None) -> None:
    """Each node for an exception line: can it ship it now, transit days against the
    region's promise, cost per order, sellable units now and after, and if not, why."""
    container = ctx.container
    with _action(container) as store:
        shop_id, order_id = _exception_order(store, order_ref, shop)
        found = container.exceptions.line(store, shop_id, order_id, line_id)
        options = container.exceptions.options(store, shop_id, order_id, line_id)
    click.echo(f"order {found.order.number} line {line_id} ({found.line['quantity']} × {found.line['sku']}) to "
               f"{found.order.region_id or 'no region'}: {found.decision['explanation']}")
    if found.decision["dismissed_at"]:
        click.echo(f"  dismissed by {found.decision['dismissed_by']}: {found.decision['dismissed_note']}")
    for option in options:
        verdict = "can ship it" if option.can_take else "cannot: " + "; ".join(option.refusals)
        click.echo(f"  {option.node_id:<14} {verdict}")
        click.echo(f"  {'':<14} {option.cost_text()}; routing sees it as {option.routed_as}")
        for warning in option.warnings if option.can_take else ():
            click.echo(f"  {'':<14} note: {warning}")
    if any(o.can_take for o in options):
        click.echo(f"ship it with `connector exceptions route {order_ref} {line_id} NODE --note TEXT`")


@exceptions.command("route")
@click.argument("order_ref")
@click.argument("line_id")
@click.argument("node_id")
@click.option("--note", help="Why this node (kept with the decision and in the audit log).")
@_exception_shop
@_by
@pass_ctx
def exceptions_route(ctx: _Context, order_ref: str, line_id: str, node_id: str, note: str | None,
                     shop: str | None, by: str) -> None:
    """Ship an exception line from NODE_ID, chosen by hand (refused when it cannot ship it)."""
    container = ctx.container
    with _action(container) as store:
        shop_id, order_id = _exception_order(store, order_ref, shop)
        option = container.exceptions.route_to(store, shop_id, order_id, line_id, node_id, by, note)
    click.echo(f"order {order_ref} line {line_id} now ships from {node_id}: {option.cost_text()}")
    for warning in option.warnings:
        click.echo(f"  note: {warning}")


@exceptions.command("reevaluate")
@click.argument("order_ref")
@_exception_shop
@_by
@pass_ctx
def exceptions_reevaluate(ctx: _Context, order_ref: str, shop: str | None, by: str) -> None:
    """Route the order's exception lines again through normal routing now."""
    container = ctx.container
    with _action(container) as store:
        shop_id, order_id = _exception_order(store, order_ref, shop)
        outcomes = container.exceptions.reevaluate(store, shop_id, order_id, by)
    for outcome in outcomes:
        click.echo(outcome.sentence())


@exceptions.command("dismiss")
@click.argument("order_ref")
@click.argument("line_id")
@click.option("--note", required=True, help="How the line is handled outside the connector (required).")
@_exception_shop
@_by
@pass_ctx
def exceptions_dismiss(ctx: _Context, order_ref: str, line_id: str, note: str, shop: str | None, by: str) -> None:
    """Take an exception line off the list: you handle it outside the connector. It comes
    back only when the line changes."""
    container = ctx.container
    with _action(container) as store:
        shop_id, order_id = _exception_order(store, order_ref, shop)
        container.exceptions.dismiss(store, shop_id, order_id, line_id, note, by)
    click.echo(f"order {order_ref} line {line_id} dismissed: {note.strip()}")


@main.command()
@click.option("--shop", help="Only this shop.")
@click.option("--retry", "retry_order", metavar="ORDER",
              help="First queue this order again (after the store's reason for refusing went away).")
@pass_ctx
def handoff(ctx: _Context, shop: str | None, retry_order: str | None) -> None:
    """Tell the stores what was decided and shipped now (the scheduler does this every
    handoff_every_seconds): Shopify fulfillment orders moved to the chosen node's location,
    WooCommerce meta and notes, fulfillments and notes for what the packing room shipped.
    Exit code 1 when a hand-off failed for good."""
    container = ctx.container
    _check_shop_node(container, shop, None)
    with _migrated_store(container) as store:
        if retry_order:
            try:
                container.handoff.retry(store, _one_shop(container, shop), retry_order, "cli")
            except ShipError as exc:
                click.echo(str(exc), err=True)
                sys.exit(1)
        report = container.handoff.process_due(store, shop)
        refused = [(shop_id, r) for shop_id in _shops(container, shop)
                   for r in handoff_store.refused_moves(store, shop_id)]
        failed = handoff_store.handoffs(store, shop, statuses=["failed"])
    click.echo(f"written {report.done}, retrying {report.retrying}, failed {report.failed}, "
               f"skipped {report.skipped} (no API access to the store)")
    for error in report.errors:
        click.echo(f"  {error}", err=True)
    for shop_id, r in refused:
        click.echo(f"  {shop_id} order {r['number']} -> {r['node_id']}: not moved: {r['reason']}", err=True)
    for row in failed:
        what = "decision" if row["kind"] == handoff_store.DECISION else f"shipment from {row['node_id']}"
        click.echo(f"  {row['shop_id']} order {row['order_id']}: the store was not told of its {what}: "
                   f"{row['last_error']}", err=True)
    if report.failed:
        sys.exit(1)


@main.command()
@click.option("--node", "node_id", required=True, help="A node you pack at (counts typed in or a CSV feed).")
@click.option("--day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The shop's local date the orders were routed to the node.")
@click.option("--csv", "as_csv", is_flag=True, help="The pick list as CSV.")
@click.option("--shop", help="Shop id (needed when there are several).")
@pass_ctx
def packing(ctx: _Context, node_id: str, day, as_csv: bool, shop: str | None) -> None:
    """The pick list of NODE for DAY: each SKU with its quantity and orders, then each
    order's packing slip (ship-to and lines)."""
    container = ctx.container
    shop_id = _one_shop(container, shop)
    _check_shop_node(container, shop_id, node_id)
    with _migrated_store(container) as store:
        try:
            packed = container.handoff.pick_list(store, container.shops.require(shop_id), node_id, day.date())
        except ShipError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
    if as_csv:
        click.echo(pick_list_csv(packed), nl=False)
        return
    click.echo(f"{packed.node_name} ({node_id}), orders routed on {packed.day.isoformat()}: "
               f"{len(packed.slips)} orders, {sum(p.quantity for p in packed.picks)} units")
    for pick in packed.picks:
        click.echo(f"  {pick.quantity:>4} x {pick.sku:<20} {pick.title}  (orders {', '.join(pick.orders)})")
    for slip in packed.slips:
        click.echo(f"order {slip.number}: " + (", ".join([slip.name, *slip.address_lines, slip.city, slip.postcode,
                                                           slip.country]) if slip.name else "address not stored"))
        for sku, title, quantity in slip.lines:
            click.echo(f"  {quantity} x {sku} {title}")
    for other, count in packed.other_days:
        click.echo(f"also waiting at {node_id}: {count} order(s) routed on {other.isoformat()}")


@main.command()
@click.argument("order_ref")
@click.option("--node", "node_id", required=True, help="The node that shipped it.")
@click.option("--carrier", required=True)
@click.option("--tracking", "tracking_number", required=True)
@click.option("--url", "tracking_url", default=None, help="The carrier's tracking page for it.")
@click.option("--shop", help="Shop id (needed when there are several).")
@pass_ctx
def ship(ctx: _Context, order_ref: str, node_id: str, carrier: str, tracking_number: str,
         tracking_url: str | None, shop: str | None) -> None:
    """Mark ORDER_REF shipped from NODE with its carrier and tracking: recorded, the node's
    stock released, and written back to the store by the next hand-off."""
    container = ctx.container
    shop_id = _one_shop(container, shop)
    _check_shop_node(container, shop_id, node_id)
    with _migrated_store(container) as store:
        try:
            shipped = container.handoff.mark_shipped(store, shop_id, order_ref, node_id, carrier, tracking_number,
                                                     tracking_url, "cli")
        except ShipError as exc:
            option = {"carrier": "--carrier", "tracking_number": "--tracking", "tracking_url": "--url"}.get(exc.field)
            click.echo(f"{option}: {exc}" if option else str(exc), err=True)
            sys.exit(1)
    click.echo(f"order {shipped['number']}: {sum(q for _, _, q in shipped['lines'])} unit(s) shipped from {node_id} "
               f"with {carrier.strip()}, tracking {tracking_number.strip()}; the store is told at the next hand-off")


@main.command()
@click.option("--shop", help="The shop (needed when several are configured).")
@click.option("--node", "node_id", default="", help="Only this node.")
@click.option("--sku", "sku_text", default="", help="Only SKUs containing this text (any case).")
@click.option("--category", default="", help="Only SKUs of this category (from the SKU rules).")
@click.option("--at-risk", is_flag=True, help="Only rows out of stock or running out before a refill.")
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1), help="Page of 50 rows.")
@pass_ctx
def inventory(ctx: _Context, shop: str | None, node_id: str, sku_text: str, category: str, at_risk: bool,
              page: int) -> None:
    """Stock by node and SKU with days of cover and risk, as the inventory page shows it:
    the stock-out risks first, then one page of rows."""
    container = ctx.container
    shop_id = _one_shop(container, shop)
    _check_shop_node(container, shop_id, node_id or None)
    settings = container.shops.require(shop_id)
    with _migrated_store(container) as store:
        view = inventory_page(store, settings, InventoryFilters(sku_text, node_id, category, at_risk), page,
                              container.clock())
    if view.problems:
        click.echo(f"error: {' '.join(view.problems.values())}", err=True)
        sys.exit(2)
    click.echo(f"{shop_id}: {view.risk_skus} SKUs at stock-out risk ({view.risk_rows} node × SKU rows)")
    for title, rows in (("most urgent", view.risks), (f"rows, page {view.page} of {view.pages} ({view.total})",
                                                      view.rows)):
        click.echo(f"  {title}:")
        if rows:
            click.echo(f"  {'sku':<18} {'node':<14} {'on hand':>7} {'reserved':>8} {'sellable':>8} {'safety':>6} "
                       f"{'reorder':>7} {'cover d':>7}  risk")
        for r in rows:
            cover = "-" if r.cover_days is None else f"{r.cover_days:.1f}"
            click.echo(f"  {r.sku:<18} {r.node_id:<14} {r.on_hand:>7} {r.reserved:>8} {r.sellable:>8} "
                       f"{r.safety_stock:>6} {r.reorder_point:>7} {cover:>7}  {r.risk.label}")


@main.command()
@click.option("--shop", help="The shop (needed when several are configured).")
@pass_ctx
def home(ctx: _Context, shop: str | None) -> None:
    """The home page as text: whether all is well, what needs you (each with the command
    that settles it), today's figures and the setup status."""
    container = ctx.container
    shop_id = _one_shop(container, shop)
    _check_shop_node(container, shop_id, None)
    with _migrated_store(container) as store:
        view = home_view(store, container.shops.require(shop_id), settings=container.settings,
                         shopify_app=container.shopify_app, now=container.clock())
    click.echo(f"{shop_id}: {view.verdict.headline}")
    if view.setup_problems or view.needs_you:
        click.echo("needs you:")
    for check in view.setup_problems:
        click.echo(f"  - {check.title}: {check.summary}" + (f" ({check.fix.label} on the pages)" if check.fix else ""))
        for line in check.details:
            click.echo(f"      {line}")
    for item in view.needs_you_shown:
        click.echo(f"  - {item.title}")
        for action in item.actions:
            click.echo(f"      {action.label}: {action.cli}")
    if len(view.needs_you) > len(view.needs_you_shown):
        click.echo(f"  and {len(view.needs_you) - len(view.needs_you_shown)} more: connector exceptions --shop {shop_id}")
    click.echo("today:")
    for figure in view.figures:
        click.echo(f"  {figure.label}: {figure.value} ({figure.meaning})")
    click.echo("setup:")
    for check in view.setup.checks:
        click.echo(f"  [{check.state.value}] {check.title}: {check.summary}")


# ---------------------------------------------------------------- the action centre's steps


@forward.command("retry")
@click.argument("job_id", type=int)
@click.option("--shop", help="The job's shop (default: whichever it belongs to).")
@_by
@pass_ctx
def forward_retry(ctx: _Context, job_id: int, shop: str | None, by: str) -> None:
    """Hand JOB_ID to its 3PL again at the next run (a failed one, or one whose outcome is
    unknown); the 3PL is asked first whether it already has the order."""
    container = ctx.container
    with _action(container) as store:
        if shop is None:
            job = store.forward_job(job_id)
            shop = job["shop_id"] if job else _one_shop(container, None)
        job = container.actions.retry_forward(store, shop, job_id, by)
    click.echo(f"forward job {job_id} ({job['provider']}, order {job['order_id']}): due again now; "
               "`connector forward` sends it (the scheduler does every minute)")


@stock.command("resolve")
@click.argument("node_id")
@click.option("--shop", help="Shop id (needed when there are several).")
@_by
@pass_ctx
def stock_resolve(ctx: _Context, node_id: str, shop: str | None, by: str) -> None:
    """Move the newest orders reserved beyond what NODE holds to other nodes (or to the
    exceptions, saying why); orders its 3PL already has stay (audited)."""
    container = ctx.container
    shop_id = _one_shop(container, shop)
    with _action(container) as store:
        rerouted = container.actions.resolve_over_reserved(store, shop_id, node_id, by)
    click.echo(f"{shop_id}/{node_id}: {len(rerouted)} order line(s) routed again")
    _echo_rerouted(rerouted)


@main.group()
def webhooks() -> None:
    """The store's deliveries to this service: try failed ones again, repair the webhooks."""


@webhooks.command("retry")
@click.option("--shop", help="Shop id (needed when there are several).")
@click.option("--id", "inbox_id", type=int, help="Only this delivery (see `connector exceptions`).")
@_by
@pass_ctx
def webhooks_retry(ctx: _Context, shop: str | None, inbox_id: int | None, by: str) -> None:
    """Put the shop's failed deliveries back in the inbox for one more try each (audited)."""
    container = ctx.container
    shop_id = _one_shop(container, shop)
    with _action(container) as store:
        ids = container.actions.retry_webhooks(store, shop_id, by, inbox_id)
    click.echo(f"{shop_id}: {len(ids)} deliver{'y' if len(ids) == 1 else 'ies'} queued again "
               f"({', '.join(f'#{i}' for i in ids)}); `connector process` processes them")


@webhooks.command("repair")
@click.option("--shop", help="Shop id (needed when there are several).")
@_by
@pass_ctx
def webhooks_repair(ctx: _Context, shop: str | None, by: str) -> None:
    """Make the store send every order change here again: WooCommerce webhooks re-activated
    or created (signed with the shop's secret); Shopify subscriptions made again (audited)."""
    container = ctx.container
    shop_id = _one_shop(container, shop)
    with _action(container) as store:
        outcome = container.actions.repair_webhooks(store, shop_id, by)
    click.echo(f"{shop_id}: {outcome.detail}")


@refunds.command("retry")
@click.argument("order_id")
@click.option("--shop", help="Shop id (needed when there are several).")
@_by
@pass_ctx
def refunds_retry(ctx: _Context, order_id: str, shop: str | None, by: str) -> None:
    """Ask the store again which lines ORDER_ID's failed refunds cover (at the next run)."""
    container = ctx.container
    shop_id = _one_shop(container, shop)
    with _action(container) as store:
        count = container.actions.retry_refund_lookup(store, shop_id, order_id, by)
    click.echo(f"{shop_id} order {order_id}: {count} refund lookup(s) due again; `connector refunds` runs them")


@main.group()
def alerts() -> None:
    """Alerts and the daily digest (email and/or a JSON POST, set per shop on the settings pages)."""


@alerts.command("send")
@click.option("--shop", help="Only this shop.")
@pass_ctx
def alerts_send(ctx: _Context, shop: str | None) -> None:
    """Look for what needs each shop, queue the alerts that are due and send the queue now
    (the scheduler does this every [scheduler] alerts_every_seconds). Exit 1 when a message failed."""
    container = ctx.container
    _check_shop_node(container, shop, None)
    with _migrated_store(container) as store:
        looked = container.alerts.look(store, shop)
        sent = container.alerts.send_due(store, shop)
    click.echo(f"alerts: {looked.alerted} new, {looked.held} held by the hourly limit, {looked.summaries} "
               f"summaries; messages sent {sent.sent}, retrying later {sent.retrying}, given up {sent.failed}"
               + (f", dropped {sent.dropped}" if sent.dropped else ""))
    for error in sent.errors:
        click.echo(f"  {error}", err=True)
    if sent.errors:
        sys.exit(1)


@alerts.command("digest")
@click.option("--shop", help="The shop (needed when there are several).")
@click.option("--preview", is_flag=True, help="Print the digest; send nothing.")
@pass_ctx
def alerts_digest(ctx: _Context, shop: str | None, preview: bool) -> None:
    """Yesterday's figures and what needs the shop now: printed, and (without --preview) sent
    once for the day on the shop's channels."""
    from connector.services.alerts import AlertError

    container = ctx.container
    shop_id = _one_shop(container, shop)
    _check_shop_node(container, shop_id, None)
    with _migrated_store(container) as store:
        try:
            message = container.alerts.digest(store, shop_id, preview=preview)
        except AlertError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        outbox = [] if preview else [row for row in container.alerts.outbox(store, shop_id)
                                     if row["message_key"] == message.key]
    click.echo(f"Subject: {message.subject}\n\n{message.text}", nl=False)
    for row in outbox:
        click.echo(f"{row['channel']}: {row['status']}" + (f" ({row['last_error']})" if row["last_error"] else ""),
                   err=True)
    if any(row["status"] != "sent" for row in outbox):
        sys.exit(1)


@alerts.command("test")
@click.option("--shop", help="The shop (needed when there are several).")
@_by
@pass_ctx
def alerts_test(ctx: _Context, shop: str | None, by: str) -> None:
    """Send a test message now on each of the shop's channels; say how each went (audited)."""
    from connector.services.alerts import AlertError

    container = ctx.container
    shop_id = _one_shop(container, shop)
    _check_shop_node(container, shop_id, None)
    with _migrated_store(container) as store:
        try:
            outcomes = container.alerts.test(store, shop_id, f"cli:{by}")
        except AlertError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
    for outcome in outcomes:
        click.echo(outcome.sentence, err=not outcome.ok)
    if not all(outcome.ok for outcome in outcomes):
        sys.exit(1)


@main.command("metrics")
@click.option("--shop", help="Only this shop.")
@click.option("--node", "node_id", help="Only this node's parcels.")
@click.option("--since", help="First day (YYYY-MM-DD, the shop's calendar); default: 30 days ago.")
@click.option("--until", help="Last day (YYYY-MM-DD); default: today.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def metrics_command(ctx: _Context, shop: str | None, node_id: str | None, since: str | None, until: str | None,
                    as_json: bool) -> None:
    """On-time ship rate, on time in full, split shipments, exceptions, cost per order,
    delivery days by region and stock-outs, for the orders placed in a period."""
    from connector.services.metrics import MetricsError, metrics, today

    container = ctx.container
    _check_shop_node(container, shop, node_id)
    first, last = _day_option("--since", since), _day_option("--until", until)
    reports = []
    with _migrated_store(container) as store:
        for shop_id in _shops(container, shop):
            if node_id and node_id not in container.shops.require(shop_id).network.nodes:
                continue
            shop_today = today(store, shop_id, container.clock())
            end = last or shop_today
            try:
                reports.append(metrics(store, shop_id, since=first or end - timedelta(days=29), until=end,
                                       node_id=node_id, now=container.clock()))
            except MetricsError as exc:
                click.echo(f"metrics: {exc}", err=True)
                sys.exit(2)
    if as_json:
        click.echo(json.dumps([_report_json(r) for r in reports], indent=2))
        return
    for report in reports:
        _echo_metrics(report)


def _day_option(name: str, value: str | None):
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        click.echo(f"{name}: expected a date as YYYY-MM-DD, got {value!r}", err=True)
        sys.exit(2)


_FIGURES = ("on_time_rate", "otif_rate", "split_rate", "exception_rate", "cost_per_order", "first_attempt_rate",
            "damage_rate", "loss_rate", "return_rate", "avg_delivery_days")


def _report_json(report) -> dict:
    from dataclasses import asdict

    def figures(f) -> dict:
        return {**asdict(f), "not_shipped": f.not_shipped}

    return {"shop_id": report.shop_id, "since": report.since.isoformat(), "until": report.until.isoformat(),
            "node_id": report.node_id, "total": figures(report.total),
            "nodes": {n: figures(f) for n, f in report.nodes.items()},
            "regions": {r or "unknown": figures(f) for r, f in report.regions.items()},
            "days": {d: figures(f) for d, f in report.days.items()},
            "stockouts": [asdict(s) for s in report.stockouts]}


def _echo_metrics(report) -> None:
    from connector.domain.metrics import shown

    total = report.total
    scope = f" node {report.node_id}" if report.node_id else ""
    click.echo(f"{report.shop_id}{scope}: orders placed {report.since} .. {report.until}")
    click.echo(f"  orders routed {total.orders_routed}; parcels shipped {total.shipped}, "
               f"not shipped yet {total.not_shipped}, delivered {total.delivered}")
    for name in _FIGURES:
        click.echo(f"  {name.replace('_', ' ')}: {shown(name, getattr(total, name))}")
    for node, f in report.nodes.items():
        click.echo(f"  node {node}: routed {f.parts_routed}, shipped {f.shipped}, on time "
                   f"{shown('on_time_rate', f.on_time_rate)}, in full {shown('otif_rate', f.otif_rate)}, "
                   f"split {shown('split_rate', f.split_rate)}, problems {shown('exception_rate', f.exception_rate)}, "
                   f"cost/parcel {shown('cost_per_order', f.cost_per_order)}")
    for region, f in report.regions.items():
        click.echo(f"  region {region or 'unknown'}: delivery {shown('avg_delivery_days', f.avg_delivery_days)} "
                   f"({f.delivered} delivered)")
    for s in report.stockouts:
        click.echo(f"  stock-out {s.sku}: {s.lines} line(s), {s.units} unit(s) no location had")

