"""The scheduler process (`connector scheduler`): APScheduler 3.x in one
dedicated process, as its maintainer advises; gunicorn serves only the web app.

Jobs are declared here in code, with ids. UTC internally; every job coalesces
missed runs, never runs twice at once, and has an explicit misfire grace time.
Each run is recorded in ``job_runs`` (`connector jobs` lists them); a failing
job is recorded and logged, and the scheduler carries on.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from typing import Callable

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connector.services.forwarding import drift_report
from connector.store import lock_timeout

log = logging.getLogger("connector.scheduler")


class PartlyFailed(Exception):
    """A job that ran to its end with some of its work failed (a sync of one provider):
    recorded as a failed run whose detail is the whole result."""


def build_scheduler(container, scheduler_cls: type[BaseScheduler] = BlockingScheduler) -> BaseScheduler:
    settings = container.settings
    scheduler = scheduler_cls(
        timezone=timezone.utc,
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": settings.scheduler.misfire_grace_seconds},
    )

    def add(job_id: str, trigger, work: Callable) -> None:
        scheduler.add_job(run_job, trigger, args=[container, job_id, work], id=job_id, name=job_id,
                          replace_existing=True)

    add("process-inbox", IntervalTrigger(seconds=settings.scheduler.inbox_every_seconds),
        lambda store: container.inbox.process(store))
    add("forward-orders", IntervalTrigger(seconds=settings.scheduler.forward_every_seconds),
        lambda store: container.forwarding.forward_due(store))
    add("poll-shipments", IntervalTrigger(minutes=settings.scheduler.shipments_every_minutes),
        lambda store: container.forwarding.poll_shipments(store))
    add("sync-incremental", IntervalTrigger(minutes=settings.sync.incremental_every_minutes),
        lambda store: incremental(container, store))
    add("push-due", IntervalTrigger(seconds=settings.scheduler.push_every_seconds),
        lambda store: container.availability.push_due(store))
    add("look-up-refunds", IntervalTrigger(seconds=settings.scheduler.refunds_every_seconds),
        lambda store: container.refunds.look_up_due(store))
    add("reconcile-orders", IntervalTrigger(seconds=settings.scheduler.reconcile_every_seconds),
        lambda store: container.reconcile.reconcile(store))
    add("privacy-retention", IntervalTrigger(hours=settings.scheduler.retention_every_hours),
        lambda store: container.retention.minimise(store))
    add("store-handoff", IntervalTrigger(seconds=settings.scheduler.handoff_every_seconds),
        lambda store: container.handoff.process_due(store))
    add("reevaluate-exceptions", IntervalTrigger(seconds=settings.scheduler.exceptions_every_seconds),
        lambda store: container.exceptions.recheck(store))
    add("alerts", IntervalTrigger(seconds=settings.scheduler.alerts_every_seconds),
        lambda store: container.alerts.run(store))
    # Per-shop daily jobs, at a local time in the shop's time zone: shop id -> (zone, "HH:MM")
    # each was scheduled with, per job kind.
    daily_jobs: dict[str, dict[str, tuple[str, str]]] = {"sync-nightly": {}, "alerts-digest": {}}

    def follow_daily(kind: str, shops: dict, local_time: Callable, work: Callable) -> None:
        """Jobs of shops added, removed, or moved to another zone or time since the last look
        are added, removed, rescheduled."""
        scheduled = daily_jobs[kind]
        for shop_id in set(scheduled) - set(shops):
            scheduler.remove_job(f"{kind}:{shop_id}")
            del scheduled[shop_id]
        for shop_id, shop in shops.items():
            when = (shop.timezone, local_time(shop)) if shop is not None else None
            if when is not None and scheduled.get(shop_id) != when:
                hour, minute = (int(part) for part in when[1].split(":"))
                add(f"{kind}:{shop_id}", CronTrigger(hour=hour, minute=minute, timezone=shop.timezone),
                    lambda store, shop_id=shop_id: work(store, shop_id))
                scheduled[shop_id] = when

    def follow_shops() -> None:
        """One nightly sync job and one alerts digest job per active shop, in its time zone."""
        shops = {shop_id: container.shops.get(shop_id) for shop_id in container.shops.ids()}
        follow_daily("sync-nightly", shops, lambda shop: settings.sync.nightly_at,
                     lambda store, shop_id: nightly(container, store, shop_id))
        follow_daily("alerts-digest", shops, lambda shop: shop.alerts.digest_at,
                     lambda store, shop_id: container.alerts.scheduled_digest(store, shop_id))

    follow_shops()
    # Not a recorded job (it would add a run every few seconds): a cheap look at the versions.
    scheduler.add_job(follow_shops, IntervalTrigger(seconds=settings.scheduler.inbox_every_seconds),
                      id="follow-shops", name="follow-shops", replace_existing=True)
    return scheduler


def nightly(container, store, shop_id: str) -> dict:
    """Full sync of every node of the shop and a drift snapshot in the audit log, then
    forecast -> allocation -> rebalance plan -> push (the push re-allocates with the
    fresh forecast and stock). A failed sync leaves the old stock, which is still the
    best the plan can use, so planning goes on; the run is then recorded as failed."""
    outcomes = container.sync.sync(store, shop_id)
    drift = [row for row in drift_report(store, shop_id) if row["drift"] < 0]
    with store.write():
        store.event(shop_id, "drift.snapshot", shop_id, {"negative_drift": drift}, container.clock())
    forecasts = container.planning.forecast(store, shop_id)
    plan = container.planning.rebalance(store, shop_id, dry_run=False)
    pushed = container.availability.push(store, shop_id)
    result = {"synced": [o.provider for o in outcomes if o.ok], "failed": [o.provider for o in outcomes if not o.ok],
              "negative_drift_rows": len(drift), "forecasts": len(forecasts), "transfers": len(plan.transfers),
              "awaiting_approval": plan.needing_approval, "push": _push_summary(pushed)}
    return _failed_syncs_fail(result, outcomes)


def incremental(container, store) -> dict:
    """Sync every provider, then re-allocate and push each shop that got new stock."""
    outcomes = container.sync.sync(store)
    result = {"synced": [f"{o.shop_id}/{o.provider}" for o in outcomes if o.ok],
              "failed": [f"{o.shop_id}/{o.provider}" for o in outcomes if not o.ok], "push": {}}
    for shop_id in sorted({o.shop_id for o in outcomes if o.ok}):
        result["push"][shop_id] = _push_summary(container.availability.push(store, shop_id))
    return _failed_syncs_fail(result, outcomes)


def _failed_syncs_fail(result: dict, outcomes) -> dict:
    """``result``, or PartlyFailed carrying it (and each failed sync's error) when a sync failed."""
    errors = [f"{o.shop_id}/{o.provider}: {o.error}" for o in outcomes if not o.ok]
    if errors:
        raise PartlyFailed(f"{result}; sync errors: {'; '.join(errors)}")
    return result


def _push_summary(report) -> str:
    if report.skipped:
        return f"skipped: {report.skipped}"
    return f"{len(report.changes)} changed, {len(report.failures)} failed"


def run_job(container, job_id: str, work: Callable) -> str:
    """Run one job with its own connection and record the run; never raises. A write
    lock held past the busy timeout fails the run with one log line, not a traceback;
    when even the run's start cannot be recorded, the work waits for the next run."""
    timeout = container.settings.busy_timeout_ms
    store = container.open_store()
    try:
        try:
            run_id = store.start_job_run(job_id, container.clock())
        except sqlite3.OperationalError as exc:
            if (busy := lock_timeout(exc, timeout)) is None:
                raise
            log.warning("job %s not run: %s", job_id, busy)
            return "failed"
        try:
            result = work(store)
        except PartlyFailed as exc:
            log.warning("job %s partly failed: %s", job_id, exc)
            store.finish_job_run(run_id, "failed", str(exc), container.clock())
            return "failed"
        except Exception as exc:  # noqa: BLE001 - recorded; the scheduler must keep going
            if (busy := lock_timeout(exc, timeout)) is not None:
                log.warning("job %s failed: %s", job_id, busy)
            else:
                log.exception("job %s failed", job_id)
            _finish(store, job_id, run_id, "failed", busy or f"{type(exc).__name__}: {exc}", container)
            return "failed"
        _finish(store, job_id, run_id, "ok", _describe(result), container)
        return "ok"
    finally:
        store.close()


def _finish(store, job_id: str, run_id: int, outcome: str, detail: str, container) -> None:
    try:
        store.finish_job_run(run_id, outcome, detail, container.clock())
    except sqlite3.OperationalError as exc:
        if (busy := lock_timeout(exc, container.settings.busy_timeout_ms)) is None:
            raise
        log.warning("job %s ended %s, but its run could not be recorded: %s", job_id, outcome, busy)


def next_runs(scheduler: BaseScheduler, now: datetime) -> list[tuple[str, str, datetime | None]]:
    """(job id, trigger, next fire time) without starting the scheduler."""
    return [(job.id, str(job.trigger), job.trigger.get_next_fire_time(None, now)) for job in scheduler.get_jobs()]


def _describe(result) -> str:
    if is_dataclass(result):
        return str(asdict(result))
    if isinstance(result, list) and result and is_dataclass(result[0]):
        return str([asdict(r) for r in result])
    return str(result)
