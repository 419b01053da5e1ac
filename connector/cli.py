"""The ``connector`` command: a thin entry point over the services."""
from __future__ import annotations

import json
import sys

import click

from connector.bootstrap import Container, build
from connector.config import ConfigError


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
                click.echo(f"config error: {exc}", err=True)
                sys.exit(2)
        return self._container


pass_ctx = click.make_pass_decorator(_Context)


@click.group()
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
    applied = ctx.container.init_database()
    path = ctx.container.settings.database_path
    click.echo(f"database {path}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))
    click.echo(f"shops: {', '.join(ctx.container.settings.shops)}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@pass_ctx
def serve(ctx: _Context, host: str, port: int) -> None:
    """Development server (production: gunicorn, see the README)."""
    from connector.web import create_app

    ctx.container.init_database()
    create_app(ctx.container).run(host=host, port=port)


@main.command()
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Process at most N deliveries.")
@pass_ctx
def process(ctx: _Context, limit: int | None) -> None:
    """Drain the webhook inbox: route, reserve, record."""
    container = ctx.container
    store = _open_migrated(container)
    try:
        report = container.inbox.process(store, limit)
        remaining = store.count_webhooks("pending")
    finally:
        store.close()
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
    store = _open_migrated(ctx.container)
    try:
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
    finally:
        store.close()
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


@main.command()
@click.option("--shop", help="Only this shop.")
@pass_ctx
def exceptions(ctx: _Context, shop: str | None) -> None:
    """Order lines waiting for a human, and deliveries that could not be processed."""
    store = _open_migrated(ctx.container)
    try:
        rows = store.open_exceptions(shop)
        failed = store.failed_webhooks(shop)
    finally:
        store.close()
    if not rows and not failed:
        click.echo("no exceptions")
        return
    for row in rows:
        click.echo(f"{row['shop_id']} order {row['number']} line {row['line_id']} "
                   f"({row['quantity']} × {row['sku']}): {row['exception']} — {row['explanation']}")
    for hook in failed:
        click.echo(f"{hook['shop_id']} webhook #{hook['id']} {hook['topic']} {hook['status']} "
                   f"after {hook['attempts']} attempt(s): {hook['last_error']}")


@main.command()
@click.option("--orders", "order_count", default=300, show_default=True, type=click.IntRange(1, 100_000),
              help="How many sample order webhooks to send.")
@click.option("--dir", "directory", type=click.Path(file_okay=False),
              help="Keep the demo's config and database here (default: a temporary folder).")
@click.option("--seed", default=7, show_default=True, type=int)
def demo(order_count: int, directory: str | None, seed: int) -> None:
    """Run the whole path on sandbox data: a creator store, a burst of signed
    webhooks through a real HTTP server, processing, and a summary."""
    from connector.demo import run_demo

    run_demo(order_count=order_count, directory=directory, seed=seed, echo=click.echo)


def _open_migrated(container: Container):
    container.init_database()
    return container.open_store()


if __name__ == "__main__":  # pragma: no cover
    main()
