"""The ``connector`` command: a thin entry point over the services."""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from connector.bootstrap import Container, build
from connector.config import WEB_SECRET_KEY_ENV, ConfigError
from connector import handoff_store
from connector.inventory_store import Filters as InventoryFilters
from connector.services.attention import needs_you
from connector.services.forwarding import drift_report
from connector.services.handoff import ShipError, pick_list_csv
from connector.services.home import home_view
from connector.services.inventory import inventory_page
from connector.services.node_status import node_statuses
from connector.services.stock import set_manual_count
from connector.services.users import UserError
from connector.store import lock_timeout

if TYPE_CHECKING:
    from connector.store import Store


class _Context:
    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self._container: Container | None = None

    @property
    def container(self) -> Container:
        if self._container is None:
            try:
                self._container = build(config_path=self.config_path)
            except ConfigError as exc:
                for line in str(exc).splitlines():  # every problem, one line each
                    click.echo(f"config error: {line}", err=True)
                sys.exit(2)
        return self._container


pass_ctx = click.make_pass_decorator(_Context)


class _Main(click.Group):
    def invoke(self, ctx: click.Context):
        """A write lock held past the busy timeout ends any command with one line."""
        try:
            return super().invoke(ctx)
        except sqlite3.OperationalError as exc:
            container = ctx.find_object(_Context)._container
            busy = lock_timeout(exc, container.settings.busy_timeout_ms) if container else None
            if busy is None:
                raise
            click.echo(busy, err=True)
            ctx.exit(1)


@click.group(cls=_Main)
@click.option("--config", "config_path", envvar="CONNECTOR_CONFIG", type=click.Path(dir_okay=False),
              help="Path to the TOML configuration (or set CONNECTOR_CONFIG).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """The micro-fulfillment connector."""
    ctx.obj = _Context(config_path)


@main.command()
@pass_ctx
def init(ctx: _Context) -> None:
    """Create or migrate the database and load shops, regions and nodes from the config."""
    container = ctx.container
    applied, imported = _init(container)
    path = container.settings.database_path
    click.echo(f"database {path}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))
    for result in imported:
        if result.outcome == "created":
            click.echo(f"shop {result.shop_id}: imported from {container.settings.source} (version 1)")
        elif result.outcome == "kept":
            click.echo(f"shop {result.shop_id}: the database's version {result.version} differs from "
                       f"{container.settings.source} and is kept; to replace it with the file: "
                       f"connector shops import {container.settings.source} --replace")
    click.echo(f"shops: {', '.join(container.shops.ids())}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@pass_ctx
def serve(ctx: _Context, host: str, port: int) -> None:
    """Development server (production: gunicorn, see the README)."""
    from connector.web import create_app

    _init(ctx.container)
    try:
        app = create_app(ctx.container)
    except ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)
    app.run(host=host, port=port)


@main.command()
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Process at most N deliveries.")
@pass_ctx
def process(ctx: _Context, limit: int | None) -> None:
    """Drain the webhook inbox: route, reserve, record."""
    container = ctx.container
    with _migrated_store(container) as store:
        report = container.inbox.process(store, limit)
        remaining = store.count_webhooks("pending")
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items())) or "none"
    click.echo(f"processed {report.processed} (outcomes: {outcomes}); retrying {report.retrying}; "
               f"failed {report.failed}; still pending {remaining}")
    if report.failed:
        sys.exit(1)


@main.group()
def orders() -> None:
    """Look at orders."""


@orders.command("show")
@click.argument("order_ref")
@click.option("--shop", help="Shop id, when several shops have this order number.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def orders_show(ctx: _Context, order_ref: str, shop: str | None, as_json: bool) -> None:
    """Lines, node, rule and explanation for ORDER_REF (an order id or number)."""
    with _migrated_store(ctx.container) as store:
        found = store.find_orders(order_ref, shop)
        if not found:
            click.echo(f"no order {order_ref!r}" + (f" in shop {shop}" if shop else ""), err=True)
            sys.exit(1)
        if len(found) > 1:
            click.echo(f"{order_ref!r} matches orders in several shops ({', '.join(o['shop_id'] for o in found)}); "
                       "pass --shop", err=True)
            sys.exit(2)
        order = found[0]
        lines = store.order_lines(order["shop_id"], order["id"])
        decisions = {d["line_id"]: d for d in store.current_decisions(order["shop_id"], order["id"])}
    if as_json:
        click.echo(json.dumps({"order": order, "lines": lines, "decisions": list(decisions.values())}, indent=2))
        return
    click.echo(f"order {order['number']} (id {order['id']}, shop {order['shop_id']}): {order['status']}; "
               f"state {order['state']}; region {order['region_id'] or '-'}")
    for line in lines:
        decision = decisions.get(line["line_id"])
        head = f"  line {line['line_id']}: {line['quantity']} × {line['sku'] or '(no sku)'}"
        if line["skip_reason"]:
            click.echo(f"{head}: not routed, {line['skip_reason']}")
        elif decision is None:
            click.echo(f"{head}: no current decision")
        elif decision["node_id"]:
            click.echo(f"{head} -> {decision['node_id']} [rule {decision['rule']}, mode {decision['mode']}]")
            click.echo(f"      {decision['explanation']}")
        else:
            click.echo(f"{head} -> EXCEPTION {decision['exception']}")
            click.echo(f"      {decision['explanation']}")


_by = click.option("--by", default=lambda: os.environ.get("USER", "cli"), show_default="$USER",
                   help="Who takes this step (kept in the audit log).")


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
    """(shop id, order id) of ORDER_REF (an order id or number), or one line and exit 1."""
    found = store.find_orders(order_ref, shop)
    if not found:
        click.echo(f"no order {order_ref!r}" + (f" in shop {shop}" if shop else ""), err=True)
        sys.exit(1)
    if len(found) > 1:
        click.echo(f"{order_ref!r} matches orders in several shops ({', '.join(o['shop_id'] for o in found)}); "
                   "pass --shop", err=True)
        sys.exit(1)
    return found[0]["shop_id"], found[0]["id"]


@contextlib.contextmanager
def _exception_action(container: Container) -> Iterator[Store]:
    """The store for an exception action; its refusal is one line and exit code 1."""
    from connector.services.exceptions import ExceptionActionError

    with _migrated_store(container) as store:
        try:
            yield store
        except ExceptionActionError as exc:
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
    with _exception_action(container) as store:
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
    with _exception_action(container) as store:
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
    with _exception_action(container) as store:
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
    with _exception_action(container) as store:
        shop_id, order_id = _exception_order(store, order_ref, shop)
        container.exceptions.dismiss(store, shop_id, order_id, line_id, note, by)
    click.echo(f"order {order_ref} line {line_id} dismissed: {note.strip()}")


@main.group(invoke_without_command=True)
@click.pass_context
def refunds(click_ctx: click.Context) -> None:
    """Read which lines new WooCommerce refunds cover and stop shipping them now
    (the scheduler does this every minute). `refunds retry ORDER` asks again for a failed one."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(_Context)
    with _migrated_store(ctx.container) as store:
        report = ctx.container.refunds.look_up_due(store)
    click.echo(f"orders read {report.orders}, refunds applied {report.applied}, retrying {report.retrying}, "
               f"failed {report.failed}")
    for error in report.errors:
        click.echo(f"  {error}", err=True)


@main.command()
@click.option("--shop", help="Only this shop.")
@pass_ctx
def reconcile(ctx: _Context, shop: str | None) -> None:
    """Read back the WooCommerce orders changed since the last run, store any change no
    webhook brought, and process the inbox (the scheduler does this every
    reconcile_every_seconds). Exit code 1 when a shop's orders could not be read."""
    container = ctx.container
    _check_shop_node(container, shop, None)
    with _migrated_store(container) as store:
        report = container.reconcile.reconcile(store, shop)
        processed = container.inbox.process(store) if report.stored else None
    if not report.shops and not report.skipped:
        click.echo("nothing to reconcile: no WooCommerce shop" + (f" {shop!r}" if shop else ""))
    for result in report.shops:
        upto = result.watermark.isoformat() if result.watermark else "nothing yet"
        if result.error:
            click.echo(f"{result.shop_id}: FAILED after {result.read} orders read — {result.error} "
                       f"(read up to {upto}; the next run reads again from there)", err=True)
        else:
            click.echo(f"{result.shop_id}: {result.read} orders read, {result.stored} not delivered by webhook "
                       f"and now stored; read up to {upto}")
        for problem in result.webhook_problems:
            click.echo(f"{result.shop_id}: {problem}", err=True)
    for shop_id in report.skipped:
        click.echo(f"{shop_id}: skipped, no WooCommerce REST API key ([shops.{shop_id}.storefront] "
                   "consumer_key and consumer_secret)")
    if processed is not None:
        click.echo(f"inbox: processed {processed.processed}, failed {processed.failed}, "
                   f"retrying {processed.retrying}")
    if report.failed:
        sys.exit(1)


@main.command()
@click.option("--dry-run", is_flag=True, help="Count what would be cut; change nothing.")
@pass_ctx
def retention(ctx: _Context, dry_run: bool) -> None:
    """Cut personal data older than [privacy] keep_personal_data_days: order deliveries,
    orders' postcodes and customer ids, data-request exports (the scheduler does this
    every retention_every_hours). Orders still due at a 3PL keep theirs."""
    with _migrated_store(ctx.container) as store:
        report = ctx.container.retention.minimise(store, dry_run=dry_run)
    verb = "would cut" if dry_run else "cut"
    click.echo(f"personal data from before {report.cutoff.isoformat(timespec='seconds')} "
               f"({ctx.container.settings.privacy.keep_personal_data_days} days):")
    for shop_id, counts in report.shops.items():
        click.echo(f"  {shop_id}: {verb} {counts['bodies']} order deliveries, {counts['orders']} orders' "
                   f"addresses and customer ids, {counts['exports']} data-request exports")


@main.command()
@click.option("--orders", "order_count", default=300, show_default=True, type=click.IntRange(1, 100_000),
              help="How many sample order webhooks to send.")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Keep the demo's config and database here (default: a temporary folder).")
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--serve", is_flag=True, help="Then keep the web server up and print a login link per shop.")
@click.option("--port", type=click.IntRange(1, 65535), help="With --serve: this port (default 8000, or a free one).")
def demo(order_count: int, directory: str | None, seed: int, serve: bool, port: int | None) -> None:
    """Run the whole path on sandbox data: a creator store, a burst of signed
    webhooks through a real HTTP server, processing, and a summary."""
    from connector.demo import DEFAULT_PORT, PortTaken, listen, run_demo

    listener = None
    if serve:
        try:
            listener = listen(port)
        except PortTaken as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        if port is None and listener.getsockname()[1] != DEFAULT_PORT:
            click.echo(f"port {DEFAULT_PORT} is in use; serving on port {listener.getsockname()[1]} instead")
    try:
        run_demo(order_count=order_count, directory=directory, seed=seed, echo=click.echo, listener=listener)
    except KeyboardInterrupt:  # Ctrl-C before the summary
        click.echo("demo stopped", err=True)
        sys.exit(130)


@main.command()
@click.option("--shop", help="Only this shop.")
@click.option("--node", "node_id", help="Only the provider feeding this node (and only this node).")
@click.option("--provider", help="Only this 3PL connection or feed (every node it feeds).")
@pass_ctx
def sync(ctx: _Context, shop: str | None, node_id: str | None, provider: str | None) -> None:
    """Fetch stock from the 3PLs and feeds now and replace it node by node."""
    container = ctx.container
    _check_shop_node(container, shop, node_id)
    plan = [step for step in container.sync.plan(shop, node_id) if provider is None or step[1] == provider]
    if not plan:
        click.echo("nothing to sync: no node takes its stock from a provider"
                   + "".join(f" ({name})" for name in (node_id, provider) if name))
        return
    outcomes = []
    with _migrated_store(container) as store, \
            click.progressbar(plan, label="syncing", item_show_func=lambda p: p and f"{p[0]}/{p[1]}") as bar:
        for shop_id, provider, nodes in bar:
            outcomes.append(container.sync.sync_provider(store, shop_id, provider, nodes))
    for o in outcomes:
        if o.ok:
            rows = ", ".join(f"{n} {c} rows" for n, c in o.rows.items())
            extra = f"; unmapped locations {', '.join(o.unmapped_locations)}" if o.unmapped_locations else ""
            handed = f"; {o.handed_over} reservations handed over to the 3PL" if o.handed_over else ""
            click.echo(f"{o.shop_id}/{o.provider}: ok — {rows}{extra}{handed}")
            _echo_rerouted(o.rerouted)
            for routed in o.exceptions_routed:
                click.echo(f"  {routed.sentence()} (an exception before this sync)")
        else:
            click.echo(f"{o.shop_id}/{o.provider}: FAILED for {', '.join(o.nodes)} — {o.error} "
                       "(previous stock kept)", err=True)
    if any(not o.ok for o in outcomes):
        sys.exit(1)


@main.group()
def stock() -> None:
    """Stock counts."""


@stock.command("set")
@click.argument("node_id")
@click.argument("sku")
@click.argument("quantity", type=click.IntRange(min=0))
@click.option("--shop", help="Shop id (needed when there are several).")
@click.option("--force", is_flag=True, help="Also for a node whose stock comes from a provider.")
@pass_ctx
def stock_set(ctx: _Context, node_id: str, sku: str, quantity: int, shop: str | None, force: bool) -> None:
    """Record a hand count: NODE holds QUANTITY of SKU (audited)."""
    container = ctx.container
    shop_id = _one_shop(container, shop)
    _check_shop_node(container, shop_id, node_id)
    source = container.shops.require(shop_id).sources[node_id]
    if source.provider and not force:
        click.echo(f"node {node_id} takes its stock from provider {source.provider!r}; the next sync would "
                   "overwrite a hand count (use --force to set it anyway)", err=True)
        sys.exit(2)
    with _migrated_store(container) as store:
        previous, rerouted = set_manual_count(store, shop_id, node_id, sku, quantity, container.clock(),
                                              routing=container.inbox.routing,
                                              stock_arrived=container.exceptions.stock_arrived)
    click.echo(f"{shop_id}/{node_id} {sku}: {previous if previous is not None else 'none'} -> {quantity}")
    _echo_rerouted(rerouted)


def _echo_rerouted(rerouted) -> None:
    """Reserved lines a lower count no longer covered: where each went."""
    for r in rerouted:
        where = f"now ships from {r.to_node}" if r.to_node else "no node can take it (see `connector exceptions`)"
        click.echo(f"  order {r.order_number} line {r.line_id} ({r.quantity} × {r.sku}) was reserved at "
                   f"{r.from_node}: {where}")


@main.group(invoke_without_command=True)
@click.option("--shop", help="Only this shop.")
@click.pass_context
def nodes(click_ctx: click.Context, shop: str | None) -> None:
    """Each node's configured status, how fresh its stock is, and how routing treats it now.
    `nodes status SHOP NODE STATUS --reason TEXT` sets a node's status (audited)."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(_Context)
    container = ctx.container
    _check_shop_node(container, shop, None)
    with _migrated_store(container) as store:
        for shop_id in container.shops.ids():
            if shop and shop_id != shop:
                continue
            settings = container.shops.require(shop_id)
            click.echo(f"{shop_id} (mode {settings.network.routing.mode.value})")
            # Routing's own verdict (status, window, staleness, cutoff, capacity), with any note in it.
            for view in node_statuses(store, settings, container.inbox.routing, container.clock()):
                routed_as, error = view.routed_as, view.sync_error
                forward = ", forwards orders" if view.forwards_orders else ""
                failing = (f"; last attempt {view.last_attempt} FAILED: {error}"
                           if error and error[:120] not in routed_as else "")
                click.echo(f"  {view.node.id:<14} {routed_as}; stock: {view.fed_by}{forward}; "
                           f"last sync {view.last_sync_ok or 'never'}{failing}")
                for row in view.over_reserved:
                    click.echo(f"    over-reserved {row['sku']}: holds {row['available']}, {row['reserved']} reserved "
                               f"({row['at_3pl']} for orders already at the 3PL)")


@main.command()
@click.option("--shop", help="Only this shop.")
@pass_ctx
def drift(ctx: _Context, shop: str | None) -> None:
    """Our reservations against the 3PLs' committed quantities, per node and SKU."""
    container = ctx.container
    _check_shop_node(container, shop, None)
    with _migrated_store(container) as store:
        for shop_id in container.shops.ids():
            if shop and shop_id != shop:
                continue
            rows = [r for r in drift_report(store, shop_id) if r["reserved"] or r["provider_committed"]]
            click.echo(f"{shop_id}: {len(rows)} node × SKU rows with reservations or 3PL commitments")
            if rows:
                click.echo(f"  {'node':<14} {'sku':<16} {'reserved':>8} {'forwarded':>9} {'3pl committed':>13} {'drift':>6}"
                           f" {'over-reserved':>13}")
            for r in rows:
                click.echo(f"  {r['node_id']:<14} {r['sku']:<16} {r['reserved']:>8} {r['forwarded']:>9} "
                           f"{r['provider_committed']:>13} {r['drift']:>6} {r['over_reserved']:>13}")


@main.group(invoke_without_command=True)
@click.pass_context
def forward(click_ctx: click.Context) -> None:
    """Hand due routed orders to their 3PLs now (the scheduler does this every minute).
    `forward amended JOB` records that a 3PL's order was changed to match ours;
    `forward retry JOB` hands a failed one (or one whose outcome is unknown) over again."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(_Context)
    with _migrated_store(ctx.container) as store:
        report = ctx.container.forwarding.forward_due(store)
    click.echo(f"sent {report.sent}, retrying {report.retrying}, failed {report.failed}, "
               f"cancelled {report.cancelled}")
    for error in report.errors:
        click.echo(f"  {error}", err=True)


@forward.command("amended")
@click.argument("job_id", type=int)
@_by
@pass_ctx
def forward_amended(ctx: _Context, job_id: int, by: str) -> None:
    """The 3PL's order JOB_ID (see `connector exceptions`) now matches the changed order."""
    with _migrated_store(ctx.container) as store:
        closed = ctx.container.forwarding.amended(store, job_id, by)
    if not closed:
        click.echo(f"forward job {job_id} has no change waiting for its 3PL", err=True)
        sys.exit(1)
    click.echo(f"forward job {job_id}: {closed} line change(s) marked as made at the 3PL")


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
@click.option("--limit", default=30, show_default=True, type=click.IntRange(min=1))
@pass_ctx
def jobs(ctx: _Context, limit: int) -> None:
    """Scheduled jobs with their next run, and the latest recorded runs."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from connector.scheduler import build_scheduler, next_runs

    container = ctx.container
    now = container.clock()
    for job_id, trigger, next_at in next_runs(build_scheduler(container, BackgroundScheduler), now):
        click.echo(f"{job_id:<32} {trigger:<48} next {next_at.isoformat() if next_at else '-'}")
    with _migrated_store(container) as store:
        runs = store.job_runs(limit)
    click.echo("")
    click.echo("recent runs:" if runs else "no runs recorded yet (start `connector scheduler`)")
    for run in runs:
        click.echo(f"  #{run['id']} {run['job_id']:<30} {run['started_at']} {run['outcome']:<8} "
                   f"{(run['detail'] or '')[:100]}")


@main.command()
@pass_ctx
def scheduler(ctx: _Context) -> None:
    """Run the scheduler process: syncs, inbox, forwarding, shipments (Ctrl-C stops it)."""
    import logging

    from connector.scheduler import build_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _init(ctx.container)
    sched = build_scheduler(ctx.container)
    click.echo(f"scheduler: {len(sched.get_jobs())} jobs; Ctrl-C to stop")
    try:
        sched.start()
    except (KeyboardInterrupt, SystemExit):
        pass


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


@main.command()
@click.option("--shop", help="Only this shop.")
@pass_ctx
def reorder(ctx: _Context, shop: str | None) -> None:
    """Per node, the SKUs at or below their reorder point, most urgent first."""
    container = ctx.container
    _check_shop_node(container, shop, None)
    with _migrated_store(container) as store:
        for shop_id in _shops(container, shop):
            rows = container.planning.reorder(store, shop_id)
            click.echo(f"{shop_id}: {len(rows)} node × SKU rows at or below their reorder point")
            if rows:
                click.echo(f"  {'node':<14} {'sku':<16} {'position':>8} {'cover d':>7} {'reorder at':>10} "
                           f"{'target':>7} {'suggest':>7}  from")
            for r in rows:
                cover = "-" if r.days_of_cover == float("inf") else f"{r.days_of_cover:.1f}"
                click.echo(f"  {r.node:<14} {r.sku:<16} {r.position:>8} {cover:>7} {r.reorder_point:>10} "
                           f"{r.target_level:>7} {r.suggest_units:>7}  {r.source}")


@main.command()
@click.option("--shop", help="Only this shop.")
@click.option("--forecast/--no-forecast", "refresh_forecast", default=False,
              help="Recompute the demand forecast first (the nightly job does).")
@pass_ctx
def allocate(ctx: _Context, shop: str | None, refresh_forecast: bool) -> None:
    """Decide what each region may sell from each node, and the dual prices routing uses."""
    container = ctx.container
    _check_shop_node(container, shop, None)
    with _migrated_store(container) as store:
        for shop_id in _shops(container, shop):
            if refresh_forecast:
                container.planning.forecast(store, shop_id)
            r = container.planning.allocate(store, shop_id)
            click.echo(f"{shop_id}: {r.skus} SKUs, {r.units_allocated} units allocated to regions, "
                       f"{r.unmet_forecast_units} forecast units unmet, {r.priced_nodes} node × SKU with an "
                       "opportunity cost")


@main.command()
@click.option("--shop", help="Only this shop.")
@click.option("--dry-run", is_flag=True, help="Print the plan; store nothing.")
@pass_ctx
def rebalance(ctx: _Context, shop: str | None, dry_run: bool) -> None:
    """Plan transfers that top nodes up to their targets (approval rules applied)."""
    container = ctx.container
    _check_shop_node(container, shop, None)
    with _migrated_store(container) as store:
        for shop_id in _shops(container, shop):
            report = container.planning.rebalance(store, shop_id, dry_run=dry_run)
            verb = "would propose" if dry_run else "proposed"
            click.echo(f"{shop_id}: {verb} {len(report.transfers)} transfers, {report.needing_approval} need approval")
            for p in report.transfers:
                ident = f"#{p.transfer_id}" if p.transfer_id is not None else "-"
                t = p.transfer
                click.echo(f"  {ident:<6} {t.sku:<16} {t.from_node} -> {t.to_node}: {t.units} units "
                           f"at {t.unit_cost:.2f}/unit, {t.lead_days}d; {p.status}: {p.approval.reason}")


@main.command()
@click.option("--shop", help="Only this shop.")
@click.option("--sku", "skus", multiple=True, help="Only these SKUs (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show the changes it would send; send and save nothing.")
@pass_ctx
def push(ctx: _Context, shop: str | None, skus: tuple[str, ...], dry_run: bool) -> None:
    """Re-allocate and set the storefront's available quantities (only values that changed)."""
    container = ctx.container
    _check_shop_node(container, shop, None)
    failed = False
    with _migrated_store(container) as store:
        for shop_id in _shops(container, shop):
            report = container.availability.push(store, shop_id, skus or None, dry_run=dry_run)
            if report.skipped:
                click.echo(f"{shop_id}: nothing pushed: {report.skipped}")
                continue
            verb = "would change" if dry_run else "changed"
            calls = ", ".join(f"{k} {v}" for k, v in sorted(report.calls.items())) or "none"
            click.echo(f"{shop_id} ({report.platform}): {report.skus} SKUs, {verb} {len(report.changes)}, "
                       f"unchanged {report.unchanged}, failed {len(report.failures)}; API calls: {calls}")
            for sku, location, before, after in report.changes:
                click.echo(f"  {sku:<16} {location:<14} {'?' if before is None else before} -> {after}")
            for where, why in sorted(report.failures.items()):
                click.echo(f"  failed {where}: {why}", err=True)
            if report.not_in_store:
                click.echo(f"  not in the store: {', '.join(report.not_in_store[:20])}"
                           + (" …" if len(report.not_in_store) > 20 else ""))
            failed = failed or bool(report.failures)
    if failed:
        sys.exit(1)


@main.group()
def transfers() -> None:
    """Stock transfers between nodes: list, approve, reject, ship, receive."""


@transfers.command("list")
@click.option("--shop", help="Only this shop.")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["proposed", "approved", "in_transit", "received", "rejected"]))
@pass_ctx
def transfers_list(ctx: _Context, shop: str | None, statuses: tuple[str, ...]) -> None:
    container = ctx.container
    _check_shop_node(container, shop, None)
    with _migrated_store(container) as store:
        rows = store.transfers(shop, statuses or None)
    click.echo(f"{len(rows)} transfers")
    for t in rows:
        click.echo(f"  #{t['id']:<5} {t['shop_id']}: {t['sku']:<16} {t['from_node']} -> {t['to_node']} "
                   f"{t['units']} units; {t['status']}"
                   + (f" by {t['decided_by']}" if t["decided_by"] else "") + f" — {t['approval_reason']}")


def _transfer_step(action: str):
    @pass_ctx
    def run(ctx: _Context, transfer_id: int, by: str, **extra) -> None:
        from connector.services.transfers import TransferError

        with _migrated_store(ctx.container) as store:
            try:
                row = getattr(ctx.container.transfers, action)(store, transfer_id, by, **extra)
            except TransferError as exc:
                click.echo(str(exc), err=True)
                sys.exit(1)
        click.echo(f"transfer #{row['id']} {row['sku']} {row['from_node']} -> {row['to_node']} "
                   f"({row['units']} units): {row['status']}")
    return run


transfers.command("approve", help="Approve a proposed transfer.")(
    click.argument("transfer_id", type=int)(_by(_transfer_step("approve"))))
transfers.command("reject", help="Reject a proposed or approved transfer.")(
    click.argument("transfer_id", type=int)(_by(click.option("--note", help="Why.")(_transfer_step("reject")))))
transfers.command("ship", help="Mark an approved transfer as shipped (leaves the source's stock); refused "
                   "when the source cannot spare the units now.")(
    click.argument("transfer_id", type=int)(_by(click.option(
        "--units", type=click.IntRange(min=1),
        help="Ship this many instead of the planned units (at most what the source can spare).")(
            _transfer_step("ship")))))
transfers.command("receive", help="Mark a transfer as received (counts at the destination from now).")(
    click.argument("transfer_id", type=int)(_by(_transfer_step("receive"))))


@main.group()
def users() -> None:
    """People who sign in to the web pages."""


@users.command("add")
@click.argument("email")
@click.option("--shop", required=True, help="The shop whose pages this user sees.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@pass_ctx
def users_add(ctx: _Context, email: str, shop: str, password_stdin: bool) -> None:
    """Add a user who signs in with EMAIL and a password (asked for, twice)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _migrated_store(ctx.container) as store:
        try:
            user = ctx.container.users.add(store, email, password, shop)
        except UserError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
    click.echo(f"user {user.email} added for shop {user.shop_id}")


@users.command("link")
@click.argument("email")
@click.option("--base-url", default="http://127.0.0.1:8000", show_default=True,
              help="Where the web app is reached (https://... in production).")
@click.option("--valid-minutes", default=15, show_default=True, type=click.IntRange(1, 24 * 60))
@pass_ctx
def users_link(ctx: _Context, email: str, base_url: str, valid_minutes: int) -> None:
    """Print a one-time login link for EMAIL (the web app must share this config's secret key)."""
    secret_key = ctx.container.settings.web_secret_key
    if not secret_key:
        click.echo(f"no web secret key: set [web] secret_key or {WEB_SECRET_KEY_ENV}", err=True)
        sys.exit(2)
    with _migrated_store(ctx.container) as store:
        try:
            token = ctx.container.users.issue_link(store, email, secret_key, timedelta(minutes=valid_minutes))
        except UserError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
    click.echo(f"{base_url.rstrip('/')}/login/link/{token}")
    click.echo(f"(valid for {valid_minutes} minutes, once)", err=True)


def _shops(container: Container, shop: str | None) -> list[str]:
    return [shop] if shop else _shop_ids(container)


def _shop_ids(container: Container) -> list[str]:
    """The active shops in the database (after ``_init``)."""
    _init(container)
    return container.shops.ids()


def _init(container: Container):
    """Migrate and import the file's shops the database lacks, once per command."""
    if not hasattr(container, "_cli_init"):
        container._cli_init = container.init_with_shops()
        return container._cli_init
    return container._cli_init[0], []


def _one_shop(container: Container, shop: str | None) -> str:
    if shop:
        return shop
    ids = _shop_ids(container)
    if len(ids) == 1:
        return ids[0]
    click.echo(f"several shops are configured ({', '.join(ids)}); pass --shop", err=True)
    sys.exit(2)


def _check_shop_node(container: Container, shop: str | None, node_id: str | None) -> None:
    ids = _shop_ids(container)
    if shop and shop not in ids:
        click.echo(f"unknown shop {shop!r} (configured: {', '.join(ids)})", err=True)
        sys.exit(2)
    if node_id and not any(node_id in container.shops.require(sid).network.nodes for sid in ids
                           if not shop or sid == shop):
        click.echo(f"unknown node {node_id!r}", err=True)
        sys.exit(2)


@contextlib.contextmanager
def _migrated_store(container: Container) -> Iterator[Store]:
    """The store, its schema migrated first; closed when the command is done with it."""
    _init(container)
    store = container.open_store()
    try:
        yield store
    finally:
        store.close()


# ---------------------------------------------------------------- the action centre's steps


@contextlib.contextmanager
def _action(container: Container) -> Iterator[Store]:
    """A migrated store for one of the action centre's steps; a refusal ends the command
    with its sentence (exit 1; 2 for a thing the shop does not have)."""
    from connector.services.actions import ActionRefused, NotFound

    with _migrated_store(container) as store:
        try:
            yield store
        except NotFound as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        except ActionRefused as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)


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


# ---------------------------------------------------------------- shop configuration


@contextlib.contextmanager
def _config_change(container: Container) -> Iterator[Store]:
    """A migrated store for a configuration change; its refusals end the command with
    one line per problem and exit 2 (nothing saved)."""
    from connector.config import InvalidShop
    from connector.services.shop_config import ImportRefused, ShopExists, StaleVersion

    with _migrated_store(container) as store:
        try:
            yield store
        except InvalidShop as exc:
            for problem in exc.problems:
                click.echo(f"shops.{exc.shop_id}.{problem}", err=True)
            sys.exit(2)
        except ImportRefused as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            sys.exit(2)
        except (StaleVersion, ShopExists) as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        except KeyError as exc:
            click.echo(str(exc.args[0]) if exc.args else "unknown shop", err=True)
            sys.exit(2)


@main.group()
def shops() -> None:
    """Shops' configuration, kept in the database: list, import from TOML, export as TOML."""


@shops.command("list")
@pass_ctx
def shops_list(ctx: _Context) -> None:
    """Every shop in the database: version, active, platform, store, current mode, last change."""
    with _migrated_store(ctx.container) as store:
        rows = ctx.container.shop_config.list(store)
    for row in rows:
        click.echo(f"{row['shop_id']:<20} v{row['version']:<4} {'active' if row['active'] else 'inactive':<8} "
                   f"{row['platform']:<11} {row['store']}  mode {row['mode']}; changed {row['updated_at']} "
                   f"by {row['updated_by']}")
    if not rows:
        click.echo("no shops (import some: connector shops import FILE)")


@shops.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--replace", is_flag=True, help="Overwrite shops the database already has (where the file differs).")
@_by
@pass_ctx
def shops_import(ctx: _Context, file: str, replace: bool, by: str) -> None:
    """Import the [shops.<id>] tables of FILE (a config file or an export). Everything is
    validated first: one problem anywhere and nothing is saved."""
    try:
        text = open(file, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"{file}: cannot read: {getattr(exc, 'strerror', None) or exc}", err=True)
        sys.exit(2)
    with _config_change(ctx.container) as store:
        results = ctx.container.shop_config.import_toml(store, text, f"import by {by}", replace=replace)
    for result in results:
        note = {"created": "created", "replaced": "replaced", "unchanged": "unchanged",
                "kept": "differs, kept as it is in the database (--replace to overwrite)"}[result.outcome]
        click.echo(f"shop {result.shop_id}: {note} (version {result.version})")


@shops.command("export")
@click.argument("shop_id")
@pass_ctx
def shops_export(ctx: _Context, shop_id: str) -> None:
    """SHOP's configuration as TOML on stdout. Secrets are never exported: each one that is
    set reads "(unchanged)", which an import keeps as stored."""
    with _config_change(ctx.container) as store:
        text = ctx.container.shop_config.export_toml(store, shop_id)
    click.echo(text, nl=False)


@shops.command("history")
@click.argument("shop_id")
@pass_ctx
def shops_history(ctx: _Context, shop_id: str) -> None:
    """Who changed SHOP's configuration, when, and what (secrets only as "(changed)")."""
    with _migrated_store(ctx.container) as store:
        rows = ctx.container.shop_config.history(store, shop_id)
    if not rows:
        click.echo(f"no configuration history for shop {shop_id!r}", err=True)
        sys.exit(2)
    for row in rows:
        click.echo(f"v{row['version']} {row['at']} {row['actor']}: {json.dumps(row['diff'], sort_keys=True)}")


@main.group()
def mode() -> None:
    """The routing mode (normal, peak, disruption) a shop routes under."""


@mode.command("set")
@click.argument("shop_id")
@click.argument("mode_name", metavar="MODE", type=click.Choice(["normal", "peak", "disruption"]))
@click.option("--restrict", "restrictions", multiple=True, metavar="REGIONS:NODES",
              help="Only these nodes serve these regions in MODE, e.g. 'nyc-metro,us-northeast:central,ne-micro' "
                   "('*' for every region); repeat for more. Replaces MODE's restrictions.")
@click.option("--no-restrict", is_flag=True, help="Clear MODE's restrictions.")
@_by
@pass_ctx
def mode_set(ctx: _Context, shop_id: str, mode_name: str, restrictions: tuple[str, ...], no_restrict: bool,
             by: str) -> None:
    """Switch SHOP to MODE (taken up by every running process within 2 s; audited)."""
    restrict = None
    if no_restrict and restrictions:
        click.echo("--restrict and --no-restrict exclude each other", err=True)
        sys.exit(2)
    if no_restrict:
        restrict = []
    elif restrictions:
        restrict = []
        for text in restrictions:
            regions, sep, nodes_ = text.partition(":")
            split = lambda part: [item.strip() for item in part.split(",") if item.strip()]  # noqa: E731
            if not sep or not split(regions) or not split(nodes_):
                click.echo(f"--restrict {text!r}: expected REGIONS:NODES, e.g. 'nyc-metro:central,ne-micro'", err=True)
                sys.exit(2)
            restrict.append({"regions": split(regions), "nodes": split(nodes_)})
    with _config_change(ctx.container) as store:
        version = ctx.container.shop_config.set_mode(store, shop_id, mode_name, restrict, by)
    click.echo(f"shop {shop_id}: mode {mode_name} (version {version})")


@nodes.command("status")
@click.argument("shop_id")
@click.argument("node_id")
@click.argument("status", type=click.Choice(["active", "degraded", "offline", "paused"]))
@click.option("--reason", required=True, help="Why (kept with the change in the history).")
@_by
@pass_ctx
def nodes_status(ctx: _Context, shop_id: str, node_id: str, status: str, reason: str, by: str) -> None:
    """Set NODE of SHOP to STATUS (taken up by every running process within 2 s; audited)."""
    with _config_change(ctx.container) as store:
        version = ctx.container.shop_config.set_node_status(store, shop_id, node_id, status, reason, by)
    click.echo(f"shop {shop_id}: node {node_id} {status} (version {version})")


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


@main.group()
def secrets() -> None:
    """The encryption of the secrets stored in the database."""


@secrets.command("rotate")
@pass_ctx
def secrets_rotate(ctx: _Context) -> None:
    """Re-encrypt every stored secret with the first key of CONNECTOR_ENCRYPTION_KEYS (then
    the older keys can be removed)."""
    from connector.secrets import SecretUnreadable

    with _migrated_store(ctx.container) as store:
        try:
            count = ctx.container.shop_config.rotate_secrets(store)
            with store.write():
                tokens = ctx.container.shopify_tokens.rotate(store)
        except SecretUnreadable as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
    click.echo(f"re-encrypted the secrets of {count} shop(s) and {tokens} Shopify token set(s) with the first key")


@secrets.command("new-key")
def secrets_new_key() -> None:
    """Print a new encryption key (put it first in CONNECTOR_ENCRYPTION_KEYS to rotate)."""
    from connector.secrets import new_key

    click.echo(new_key())


# ---------------------------------------------------------------- shipment metrics


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


if __name__ == "__main__":  # pragma: no cover
    main()
