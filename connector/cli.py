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
from connector.services.forwarding import drift_report
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
        order = _one_order(store, order_ref, shop)
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


def _one_order(store: Store, order_ref: str, shop: str | None) -> dict:
    """The stored order ORDER_REF (an order id or number) names, or one line and exit 1
    (none) or 2 (several shops have it: --shop picks one)."""
    found = store.find_orders(order_ref, shop)
    if not found:
        click.echo(f"no order {order_ref!r}" + (f" in shop {shop}" if shop else ""), err=True)
        sys.exit(1)
    if len(found) > 1:
        click.echo(f"{order_ref!r} matches orders in several shops ({', '.join(o['shop_id'] for o in found)}); "
                   "pass --shop", err=True)
        sys.exit(2)
    return found[0]


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
    """SHOP when it is configured, else the only shop; one line and exit 2 otherwise."""
    if shop:
        _check_shop_node(container, shop, None)
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


# The control tower's commands, in their own module, on this group (imported last: they use it).
from connector import cli_tower  # noqa: E402,F401


if __name__ == "__main__":  # pragma: no cover
    # Run as a script (python -m connector.cli), this file is __main__, and cli_tower put its
    # commands on the group of the module it imports, connector.cli: run that group.
    from connector.cli import main as registered

    registered()
