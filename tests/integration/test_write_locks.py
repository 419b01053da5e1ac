"""Every path that writes takes SQLite's write lock before it reads: migrations run
under one write lock, every transaction begins IMMEDIATE, and a lock held past the
busy timeout is one clear line on the CLI and a recorded failed run in the
scheduler, never a traceback.

A deferred transaction (plain ``BEGIN``) that reads and then writes cannot wait
for the lock: when another connection holds it, or committed since the read,
SQLite refuses the upgrade at once with "database is locked", whatever the busy
timeout. ``WriteLockTracer`` watches every statement of every connection the
code opens, so a path added later that forgets stays caught."""
from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from connector import sandbox
from connector.bootstrap import build
from connector.config import settings_from_dict
from connector.handoff_store import queue_decision_change
from connector.scheduler import build_scheduler, run_job
from connector.store import Store, migrations
from tests.conftest import SHOPIFY_SECRET, SHOPIFY_SHOP, WOO_SECRET, to_toml

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
ALL_MIGRATIONS = [m.name for m in migrations._migrations]

# ---------------------------------------------------------------- the tracer

_WRITES = {"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER"}


class WriteLockTracer:
    """Follows each traced connection's transactions from its statements: a deferred
    BEGIN, or a write inside a transaction not begun IMMEDIATE (or EXCLUSIVE), is a
    violation. A write outside any transaction is one autocommit statement, for which
    SQLite takes the write lock before the statement reads anything."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.writes = 0

    def attach(self, conn: sqlite3.Connection) -> None:
        state = {"begun": None}

        def trace(sql: str) -> None:
            words = sql.lstrip().split()
            if not words or words[0].startswith("--"):  # statements run by triggers
                return
            first = words[0].upper()
            if first == "BEGIN":
                kind = words[1].upper().rstrip(";") if len(words) > 1 else "DEFERRED"
                state["begun"] = kind if kind in ("IMMEDIATE", "EXCLUSIVE") else "DEFERRED"
                if state["begun"] == "DEFERRED":
                    self.violations.append(f"deferred transaction: {sql.strip()[:80]}")
            elif first in ("COMMIT", "END") or (first.rstrip(";") == "ROLLBACK" and len(words) == 1):
                state["begun"] = None
            elif first in _WRITES:
                self.writes += 1
                if state["begun"] == "DEFERRED":
                    self.violations.append(f"write in a deferred transaction: {sql.strip()[:80]}")

        conn.set_trace_callback(trace)


@pytest.fixture
def tracer(monkeypatch) -> WriteLockTracer:
    """Every connection ``Store.open`` makes from now on is traced."""
    tracer = WriteLockTracer()
    open_store = Store.open.__func__

    def traced_open(cls, *args, **kwargs):
        store = open_store(cls, *args, **kwargs)
        tracer.attach(store.conn)
        return store

    monkeypatch.setattr(Store, "open", classmethod(traced_open))
    return tracer


def test_the_tracer_catches_a_deferred_read_then_write(tmp_path, tracer):
    store = Store.open(tmp_path / "t.db")
    store.migrate()
    store.conn.execute("BEGIN")
    store.stock_level("s", "n", "A")
    store.set_stock("s", "n", "A", on_hand=1, committed=0, available=1, source="manual", now=NOW)
    store.conn.execute("COMMIT")
    store.close()
    assert tracer.violations and tracer.writes


# ---------------------------------------------------------------- every command and job


@pytest.fixture
def config_dict(clock, db_path) -> dict:
    """The sandbox shops, the garage's counts synced from a CSV feed (so `sync` has work)."""
    feed = Path(__file__).resolve().parents[1] / "fixtures" / "csv" / "no_location.csv"
    return sandbox.demo_config(clock(), str(db_path), SHOPIFY_SECRET, WOO_SECRET, garage_feed=str(feed))


def _order(order_id: int, sku: str = "ZINE-04") -> tuple[bytes, dict]:
    import random

    payload = sandbox.shopify_order(random.Random(order_id), order_id, 1000 + order_id, NOW, lines=1)
    payload["line_items"][0].update(sku=sku, quantity=1, current_quantity=1)
    payload["shipping_address"].update(country_code="US", province_code="NY", zip="10012")
    hook = sandbox.shopify_webhook(SHOPIFY_SECRET, payload)
    return hook.body, hook.headers


@pytest.fixture
def busy_shop(container, store):
    """Orders waiting in the inbox, a push due, and a transfer at each status a step starts from."""
    for i in range(3):
        body, headers = _order(9_000 + i)
        assert container.inbox.ingest(store, "shopify", body, headers).status == 200
    with store.write():
        store.request_push(SHOPIFY_SHOP, ["ZINE-04"], "orders", NOW, NOW)
        queue_decision_change(store, SHOPIFY_SHOP, "9000", NOW)  # a hand-off to the store is due
        ids = {status: store.add_transfer(SHOPIFY_SHOP, sku="ZINE-04", from_node="central", to_node="ne-micro",
                                          units=1, unit_cost=1.0, lead_days=1, status=status, emergency=False,
                                          approval_reason="test", now=NOW)
               for status in ("proposed", "approved", "in_transit")}
    return ids


CLI_COMMANDS = {
    "init": ["init"],
    "process": ["process"],
    "stock set": ["stock", "set", "central", "ZINE-04", "7", "--shop", SHOPIFY_SHOP],
    "sync": ["sync"],
    "forward": ["forward"],
    "handoff": ["handoff"],
    "refunds": ["refunds"],
    "reconcile": ["reconcile"],
    "retention": ["retention"],
    "allocate": ["allocate", "--forecast"],
    "rebalance": ["rebalance"],
    "push": ["push"],
    "reorder": ["reorder"],
    "nodes": ["nodes"],
    "drift": ["drift"],
    "exceptions": ["exceptions"],
    "jobs": ["jobs"],
    "transfers approve": ["transfers", "approve", "{proposed}"],
    "transfers reject": ["transfers", "reject", "{proposed}"],
    "transfers ship": ["transfers", "ship", "{approved}"],
    "transfers receive": ["transfers", "receive", "{in_transit}"],
}


@pytest.mark.parametrize("name", CLI_COMMANDS)
def test_every_command_writes_only_under_the_write_lock(name, cli, busy_shop, tracer):
    args = [a.format(**busy_shop) for a in CLI_COMMANDS[name]]
    result = cli(*args)
    assert result.exit_code in (0, 1), result.output  # 1: e.g. reconcile without a WooCommerce key
    assert tracer.writes, "nothing was traced"
    assert tracer.violations == []


def _scheduled_jobs(container) -> dict:
    scheduler = build_scheduler(container, BackgroundScheduler)
    return {job.id: job.args for job in scheduler.get_jobs()}


@pytest.mark.parametrize("job_id", ["process-inbox", "forward-orders", "poll-shipments", "sync-incremental",
                                    "push-due", "look-up-refunds", "reconcile-orders", "privacy-retention",
                                    "store-handoff", f"sync-nightly:{SHOPIFY_SHOP}"])
def test_every_scheduled_job_writes_only_under_the_write_lock(job_id, container, busy_shop, tracer):
    jobs = _scheduled_jobs(container)
    assert set(jobs) >= {job_id}
    assert run_job(*jobs[job_id]) == "ok"
    assert tracer.writes and tracer.violations == []


# ---------------------------------------------------------------- processes starting together

_WORKER = textwrap.dedent(
    """
    import pathlib, sys, time
    from datetime import datetime, timezone
    ready, go, mode, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    from connector import cli, sandbox
    from connector.bootstrap import build
    from connector.config import load_settings
    from connector.scheduler import run_job
    pathlib.Path(ready).touch()
    deadline = time.monotonic() + 60
    while not pathlib.Path(go).exists() and time.monotonic() < deadline:  # start together
        time.sleep(0.001)
    if mode == "cli":
        sys.argv = ["connector", *args]
        cli.main()
    elif mode == "init":
        container = build(load_settings(args[0]))
        print(",".join(container.init_database()))
    elif mode == "push-due":
        container = build(load_settings(args[0]))
        store = container.open_store()
        for _ in range(int(args[1])):
            now = datetime.now(timezone.utc)
            with store.write():
                store.request_push(sandbox.SHOPIFY_SHOP, ["ZINE-04"], "orders", now, now)
            print(run_job(container, "push-due", lambda s: container.availability.push_due(s)))
    """
)


def _start_together(tmp_path: Path, runs: list[list[str]]) -> list[tuple[int, str, str]]:
    """Start one process per argument list, let them go at the same moment, and return
    (exit code, stdout, stderr) of each."""
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    go = tmp_path / "go"
    go.unlink(missing_ok=True)
    ready = [tmp_path / f"ready-{i}-{time.monotonic_ns()}" for i in range(len(runs))]
    workers = [subprocess.Popen([sys.executable, str(script), str(r), str(go), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for r, args in zip(ready, runs)]
    deadline = time.monotonic() + 60
    while not all(r.exists() for r in ready) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outputs = [w.communicate(timeout=120) for w in workers]
    return [(w.returncode, out, err) for w, (out, err) in zip(workers, outputs)]


@pytest.fixture
def config_path(tmp_path) -> Path:
    path = tmp_path / "connector.toml"
    path.write_text(to_toml(sandbox.demo_config(NOW, str(tmp_path / "c.db"), SHOPIFY_SECRET, WOO_SECRET)))
    return path


@pytest.mark.parametrize("already_applied", [0, 3], ids=["fresh", "partly-migrated"])
def test_processes_starting_together_migrate_once_and_all_succeed(tmp_path, config_path, already_applied):
    if already_applied:
        store = Store.open(tmp_path / "c.db")
        migrations.apply(store.db, stop_before=ALL_MIGRATIONS[already_applied])
        store.close()

    results = _start_together(tmp_path, [["init", str(config_path)]] * 5)

    for code, _, err in results:
        assert code == 0, err
    applied = [name for _, out, _ in results for name in out.strip().split(",") if name]
    assert sorted(applied) == sorted(ALL_MIGRATIONS[already_applied:])  # each applied by exactly one
    store = Store.open(tmp_path / "c.db")
    try:
        assert store.applied_migrations() == ALL_MIGRATIONS
        assert store.shop_ids() == sorted([sandbox.SHOPIFY_SHOP, sandbox.WOO_SHOP])
    finally:
        store.close()


class _LoadWriter:
    """Another connection writing all the time: it holds the write lock in 10 ms
    transactions with 3 ms gaps, as a busy drainer does."""

    def __init__(self, path: Path):
        self.store = Store.open(path)
        self.stop = threading.Event()
        self.transactions = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.store.write():
                self.store.event(None, "test.load", None, None, NOW)
                time.sleep(0.010)
            self.transactions += 1
            time.sleep(0.003)

    def __enter__(self) -> "_LoadWriter":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.store.close()


def _initialised(config_path: Path):
    container = build(settings_from_dict(sandbox.demo_config(NOW, str(config_path.parent / "c.db"), SHOPIFY_SECRET,
                                                             WOO_SECRET)))
    container.init_database()
    return container


def test_stock_set_from_many_processes_under_write_load_all_succeed(tmp_path, config_path):
    container = _initialised(config_path)
    runs = [["cli", "--config", str(config_path), "stock", "set", "central", "ZINE-04", str(n), "--shop",
             SHOPIFY_SHOP] for n in range(6)]
    with _LoadWriter(tmp_path / "c.db") as load:
        results = _start_together(tmp_path, runs)
    assert load.transactions > 10
    for code, out, err in results:
        assert code == 0, err
        assert "ZINE-04" in out
    store = container.open_store()
    try:
        counts = store.events(SHOPIFY_SHOP, "stock.manual_count")
        assert len(counts) == 6
        assert store.stock_level(SHOPIFY_SHOP, "central", "ZINE-04") in range(6)
    finally:
        store.close()


def test_the_push_due_job_in_several_processes_under_write_load_always_runs(tmp_path, config_path):
    container = _initialised(config_path)
    with _LoadWriter(tmp_path / "c.db") as load:
        results = _start_together(tmp_path, [["push-due", str(config_path), "5"]] * 4)
    assert load.transactions > 10
    for code, out, err in results:
        assert code == 0, err
        assert out.split() == ["ok"] * 5, err
    store = container.open_store()
    try:
        runs = store.job_runs(100)
        assert [r["outcome"] for r in runs] == ["ok"] * 20
    finally:
        store.close()


# ---------------------------------------------------------------- a lock held past the timeout


@pytest.fixture
def short_timeout_config(tmp_path, config_dict, container) -> Path:
    config_dict["database"]["busy_timeout_ms"] = 200
    path = tmp_path / "short.toml"
    path.write_text(to_toml(config_dict), encoding="utf-8")
    return path


@pytest.fixture
def lock_holder(db_path):
    """Another connection holding the write lock until the test ends."""
    holder = Store.open(db_path)
    holder.conn.execute("BEGIN IMMEDIATE")
    yield holder
    holder.conn.execute("ROLLBACK")
    holder.close()


@pytest.mark.parametrize("name", ["init", "process", "stock set", "rebalance", "transfers approve", "retention"])
def test_a_lock_held_past_the_timeout_is_one_clear_line_on_the_cli(name, runner, short_timeout_config, busy_shop,
                                                                   lock_holder):
    from connector.cli import main

    args = [a.format(**busy_shop) for a in CLI_COMMANDS[name]]
    result = runner.invoke(main, ["--config", str(short_timeout_config), *args])

    assert isinstance(result.exception, SystemExit) and result.exit_code == 1, result.exception
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "database busy" in result.stderr and "200 ms" in result.stderr


def test_a_job_whose_work_times_out_on_the_lock_is_recorded_as_failed_without_a_traceback(
        tmp_path, config_dict, db_path, container, busy_shop, caplog):
    config_dict["database"]["busy_timeout_ms"] = 300
    short = build(settings_from_dict(config_dict))
    holder = Store.open(db_path)

    def work(store):
        holder.conn.execute("BEGIN IMMEDIATE")  # someone takes the lock as the job starts...
        threading.Timer(0.45, lambda: holder.conn.execute("COMMIT")).start()  # ...and keeps it past the timeout
        return short.availability.push_due(store)

    with caplog.at_level(logging.INFO, logger="connector"):
        assert run_job(short, "push-due", work) == "failed"
    holder.close()
    store = container.open_store()
    try:
        [run] = store.job_runs(1)
    finally:
        store.close()
    assert run["outcome"] == "failed" and "database busy" in run["detail"]
    assert [r for r in caplog.records if r.exc_info] == []
    assert any("database busy" in r.getMessage() for r in caplog.records)


def test_a_job_that_cannot_even_record_its_start_logs_one_line_and_does_not_raise(
        config_dict, container, lock_holder, caplog):
    config_dict["database"]["busy_timeout_ms"] = 100
    short = build(settings_from_dict(config_dict))
    ran = []
    with caplog.at_level(logging.INFO, logger="connector"):
        assert run_job(short, "push-due", ran.append) == "failed"
    assert ran == []  # no work without its run on record
    assert [r for r in caplog.records if r.exc_info] == []
    assert [r.getMessage() for r in caplog.records if "database busy" in r.getMessage()]


# ---------------------------------------------------------------- a plan read and stored under one lock


def test_two_rebalances_at_once_never_propose_the_same_transfer_twice(container, store, clock, monkeypatch):
    """Each run reads the open transfers, plans and stores under one write lock: the
    second plans with the first's proposals counted. Without the lock both would read
    before either stored (the barrier lets them), and every transfer would be doubled."""
    import connector.services.planning as planning
    from tests.integration.test_planning_services import process_orders

    process_orders(container, store, clock, 150)
    container.planning.forecast(store, SHOPIFY_SHOP)
    alone = container.planning.rebalance(store, SHOPIFY_SHOP, dry_run=True).transfers
    assert alone, "the sandbox network plans no transfer: nothing to test"
    both_planning = threading.Barrier(2, timeout=0.5)
    plan = planning.plan_transfers

    def plan_together(*args, **kwargs):
        try:
            both_planning.wait()
        except threading.BrokenBarrierError:  # the other run is waiting for the lock
            pass
        return plan(*args, **kwargs)

    monkeypatch.setattr(planning, "plan_transfers", plan_together)

    def rebalance():
        store = container.open_store()
        try:
            container.planning.rebalance(store, SHOPIFY_SHOP, dry_run=False)
        finally:
            store.close()

    runs = [threading.Thread(target=rebalance) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    stored = [(t["sku"], t["from_node"], t["to_node"], t["units"]) for t in store.transfers(SHOPIFY_SHOP)]
    assert sorted(stored) == sorted((p.transfer.sku, p.transfer.from_node, p.transfer.to_node, p.transfer.units)
                                    for p in alone)
