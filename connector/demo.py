"""``connector demo``: the main job end to end on the embedded default.

It builds the sandbox network in a fresh SQLite database, seeds stock, starts
the real web app on 127.0.0.1 (with its background inbox worker), sends a
burst of signed webhooks through HTTP, drains the inbox, and prints what went
where and what needs a human.
"""
from __future__ import annotations

import errno
import logging
import os
import secrets
import signal
import socket
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import requests
from werkzeug.serving import make_server

from connector import sandbox, toml_writer
from connector.auth_store import AuthStore
from connector.bootstrap import build, utc_now
from connector.config import ENCRYPTION_KEYS_ENV, settings_from_dict
from connector.secrets import new_key
from connector.web import create_app


CONFIG_FILE = "connector.toml"
KEYS_FILE = "connector.keys"
DEFAULT_PORT = 8000
LINK_VALIDITY = timedelta(minutes=15)


class PortTaken(Exception):
    """The port asked for with --port is in use (said before the demo runs)."""


def listen(port: int | None) -> socket.socket:
    """The socket ``--serve`` will serve on, bound before the demo runs so a taken port
    is known at once. No port given: 8000, or a free one when 8000 is taken."""
    for candidate in ([port] if port is not None else [DEFAULT_PORT, 0]):
        sock = socket.socket()
        if os.name == "posix":  # rebind at once after a previous run (elsewhere it would share the port)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", candidate))
            sock.listen(128)
            return sock
        except OSError as exc:
            sock.close()
            why = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
    raise PortTaken(f"port {port} on 127.0.0.1 {why}: stop what uses it or choose another with --port")


def run_demo(order_count: int, directory: str | None, seed: int, echo: Callable[[str], None],
             listener: socket.socket | None = None) -> dict:
    """With ``listener`` (from ``listen``) the web server stays up on it after the run,
    with a one-time login link per shop, until Ctrl-C or SIGTERM."""
    workdir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="connector-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "connector.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    now = utc_now()
    shopify_secret, woo_secret = secrets.token_hex(16), secrets.token_hex(16)
    feed = workdir / "garage-counts.csv"
    feed.write_text(sandbox.garage_csv())
    config = sandbox.demo_config(now, str(db_path), shopify_secret, woo_secret, garage_feed=str(feed))
    shops_toml = toml_writer.dumps({"shops": config.pop("shops")})
    # A key of its own for its own fresh database; with --dir it is left next to the config.
    key = new_key()
    config["encryption"] = {"keys_file": KEYS_FILE}
    if directory or listener is not None:  # what a newcomer goes on with: see the README
        (workdir / CONFIG_FILE).write_text(toml_writer.dumps({**config, "database": {"path": db_path.name}}))
        keys_file = workdir / KEYS_FILE
        keys_file.touch(mode=0o600)
        keys_file.chmod(0o600)  # it unlocks the shops' secrets
        keys_file.write_text(f"{ENCRYPTION_KEYS_ENV}={key}\n")
    del config["encryption"]
    settings = replace(settings_from_dict(config, source="sandbox"), encryption_keys=(key,))
    container = build(settings)
    container.init_database()
    store = container.open_store()
    try:
        # The shops go in as any deployment's do: through the validated import.
        container.shop_config.import_toml(store, shops_toml, "connector demo", replace=False)
        sandbox.seed_stock(store, now, shops=container.shops)
    finally:
        store.close()
    echo(f"sandbox: {len(container.shops.ids())} shops, database {db_path}")
    for shop in map(container.shops.require, container.shops.ids()):
        echo(f"  {shop.id} ({shop.platform}): {len(shop.network.regions)} regions, {len(shop.network.nodes)} nodes")
    store = container.open_store()
    try:
        for outcome in container.sync.sync(store):
            rows = ", ".join(f"{node} {count} rows" for node, count in outcome.rows.items())
            echo(f"  synced {outcome.shop_id}/{outcome.provider} from {feed.name}: "
                 + (rows if outcome.ok else f"FAILED {outcome.error}"))
    finally:
        store.close()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns the summary
    app = create_app(container, start_worker=True)
    if listener is None:
        server = make_server("127.0.0.1", 0, app, threaded=True)
    else:
        server = make_server("127.0.0.1", listener.getsockname()[1], app, threaded=True, fd=listener.fileno())
        listener.close()  # the server holds its own copy
    thread = threading.Thread(target=server.serve_forever, name="demo-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.port}"
    serving = False
    try:
        hooks = list(sandbox.demo_burst(order_count, now, shopify_secret, woo_secret, seed))
        ping = requests.post(f"{base}/webhooks/woocommerce", data=b"webhook_id=3", timeout=5,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        started = time.perf_counter()
        answers = _send_all(base, hooks)
        elapsed = time.perf_counter() - started
        _wait_for_worker(container)
        plans = _plan(container)
        widget = requests.get(f"{base}/api/availability", timeout=5,
                              params={"shop": sandbox.SHOPIFY_SHOP, "sku": "CANDLE-FIG", "region": "nyc-metro"},
                              headers={"X-Api-Key": sandbox.DEMO_API_KEY})
        serving = listener is not None
    finally:
        if not serving:
            _stop(server, app)

    statuses = Counter(code for code, _ in answers)
    duplicates = sum(1 for code, body in answers if code == 200 and body.get("duplicate"))
    echo("")
    echo(f"sent {len(hooks)} webhooks over HTTP in {elapsed:.2f}s ({len(hooks) / elapsed:.0f}/s); "
         f"WooCommerce ping answered {ping.status_code}")
    echo("  answers: " + ", ".join(f"{code} x{n}" for code, n in sorted(statuses.items()))
         + f" ({duplicates} redeliveries recognised as duplicates, {statuses.get(401, 0)} forged rejected)")
    result = _summary(container, echo)
    _plan_summary(plans, widget, echo)
    result["plans"] = {shop_id: {"allocated": allocation.units_allocated, "transfers": len(rebalance.transfers)}
                       for shop_id, (allocation, rebalance, _) in plans.items()}
    if serving:
        try:
            _serve(container, base, workdir / CONFIG_FILE, echo)
        finally:
            _stop(server, app)
        echo("stopped serving")
    return result


def _stop(server, app) -> None:
    server.shutdown()
    server.server_close()
    app.extensions["inbox_worker"].stop()


def _serve(container, base: str, config_file: Path, echo) -> None:
    """A user per sample shop and a one-time link to its pages; then wait for Ctrl-C/SIGTERM."""
    store = container.open_store()
    try:
        links = []
        for shop in map(container.shops.require, container.shops.ids()):
            email = f"demo@{shop.id}.example"
            if AuthStore(store).user_by_email(email) is None:
                # Nobody types this password: the link signs in, and `users link` makes another.
                container.users.add(store, email, secrets.token_urlsafe(24), shop.id)
            token = container.users.issue_link(store, email, container.settings.web_secret_key, LINK_VALIDITY)
            links.append((shop, email, f"{base}/login/link/{token}"))
    finally:
        store.close()
    # Caught from before the links are shown: whoever reads them may stop the server at once.
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        echo("")
        echo(f"serving the app on {base}; sign in with a one-time link "
             f"(valid for {LINK_VALIDITY.seconds // 60} minutes):")
        for shop, _, url in links:
            echo(f"  {shop.id} ({shop.platform}): {url}")
        echo(f"  a new link: connector --config {config_file} users link {links[0][1]} --base-url {base}")
        echo("Ctrl-C stops the server.")
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _plan(container) -> dict:
    """Forecast from the orders just processed, allocate stock to regions, and plan
    transfers (dry run) for every shop — what the nightly job does after its sync."""
    store = container.open_store()
    try:
        plans = {}
        for shop_id in container.shops.ids():
            container.planning.forecast(store, shop_id)
            allocation = container.planning.allocate(store, shop_id)
            plans[shop_id] = (allocation, container.planning.rebalance(store, shop_id, dry_run=True),
                              container.planning.reorder(store, shop_id))
        return plans
    finally:
        store.close()


def _plan_summary(plans: dict, widget, echo) -> None:
    for shop_id, (allocation, rebalance, reorder) in plans.items():
        echo("")
        echo(f"{shop_id}: {allocation.units_allocated} units allocated to regions across {allocation.skus} SKUs; "
             f"{allocation.priced_nodes} node × SKU priced for routing (dual prices)")
        for a in sorted(allocation.allocations, key=lambda a: a.sku)[:4]:
            echo(f"  {a.sku:<14} " + ", ".join(f"{r} {n}" for r, n in sorted(a.by_region.items())))
        echo(f"  rebalance (dry run): {len(rebalance.transfers)} transfers, {rebalance.needing_approval} need approval")
        for p in rebalance.transfers[:4]:
            t = p.transfer
            echo(f"    {t.sku:<14} {t.from_node} -> {t.to_node}: {t.units} units; {p.approval.reason}")
        echo(f"  reorder: {len(reorder)} node × SKU at or below their reorder point")
    echo("")
    echo(f"storefront widget GET /api/availability ({widget.status_code}): {widget.text.strip()}")


def _send_all(base: str, hooks) -> list[tuple[int, dict]]:
    local = threading.local()

    def send(hook):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        response = session.post(base + hook.path, data=hook.body, headers=hook.headers, timeout=10)
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(send, hooks))


def _wait_for_worker(container, timeout: float = 60.0) -> None:
    """The web process's worker drains in the background; finish what is left."""
    store = container.open_store()
    try:
        deadline = time.monotonic() + timeout
        while store.count_webhooks("pending") and time.monotonic() < deadline:
            container.inbox.process(store)
    finally:
        store.close()


def _summary(container, echo) -> dict:
    store = container.open_store()
    result: dict = {"shops": {}}
    try:
        echo(f"inbox: {store.count_webhooks('processed')} processed, {store.count_webhooks('ignored')} ignored, "
             f"{store.count_webhooks('rejected')} rejected, {store.count_webhooks('failed')} failed, "
             f"{store.count_webhooks('pending')} pending")
        for shop_id in container.shops.ids():
            rows = store.routed_summary(shop_id)
            exceptions = store.open_exceptions(shop_id)
            statuses = store.order_status_counts(shop_id)
            echo("")
            echo(f"{shop_id}: orders by status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
            echo(f"  {'region':<14} {'node':<12} orders")
            for region, node, count in rows:
                echo(f"  {region:<14} {node:<12} {count}")
            reasons = Counter(e["exception"] for e in exceptions)
            echo(f"  exceptions: {len(exceptions)} lines" + (" — " + ", ".join(f"{r} {n}" for r, n in reasons.most_common()) if exceptions else ""))
            for e in exceptions[:5]:
                echo(f"    order {e['number']} {e['quantity']} × {e['sku']}: {e['explanation']}")
            result["shops"][shop_id] = {"statuses": dict(statuses), "routed": rows, "exceptions": dict(reasons)}
        drift = store.reservation_totals_drift()
        echo("")
        echo("reservation totals consistent: " + ("yes" if not drift else f"NO ({len(drift)} rows)"))
        result["drift"] = drift
    finally:
        store.close()
    return result
