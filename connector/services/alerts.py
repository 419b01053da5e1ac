"""Telling a creator what needs them: immediate alerts and a daily digest, by email and/or
a JSON POST (``ports.Notifier``), through a durable outbox.

``look`` reads what needs each shop (the attention collector the action centre lists),
decides what alerts (``domain.alerts.plan_alerts``: deduplicated, rate-limited) and, in
the same transaction, remembers the decision and queues one message per channel.
``send_due`` sends the queued messages outside any transaction and marks each sent, or
failed with its error (a sentence without credentials) and a later attempt with backoff;
a message is never sent twice in one run, and its key goes with every attempt so a
receiver can drop a repeat. ``digest`` writes yesterday in figures and what needs the
creator, once per shop and day. ``test`` sends a test message now and says how each
channel took it.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from connector.alerts_store import AlertStore
from connector.services.attention import REASON_WORDS
from connector.services.metrics import headline, metrics
from connector.config import Settings, ShopSettings
from connector.domain.alerts import (
    AlertMessage,
    Candidate,
    DeliveryFailed,
    Destination,
    DigestItem,
    alert_message,
    candidates,
    digest_message,
    plan_alerts,
    retry_delay,
    summary_message,
)
from connector.ports import Notifier, ShopDirectory
from connector.store import Store, parse_ts

log = logging.getLogger("connector.alerts")

RATE_WINDOW = timedelta(hours=1)
# A kind of exception that was told within this long is not told again when it comes back.
EXCEPTION_QUIET = timedelta(hours=24)
STALE_CLAIM = timedelta(minutes=10)  # a message claimed longer ago than this was being sent by a process that died
CHANNEL_WORDS = {"email": "Email", "post": "JSON POST"}
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9:._-]")


class AlertError(Exception):
    """A request about alerts that cannot be done as asked (a sentence for the creator)."""


@dataclass
class LookReport:
    alerted: int = 0
    held: int = 0
    summaries: int = 0
    shops: int = 0


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TestOutcome:
    channel: str
    ok: bool
    sentence: str


class Alerts:
    def __init__(self, settings: Settings, shops: ShopDirectory, notifiers: Mapping[str, Notifier],
                 collect: Callable[[Store, ShopSettings, datetime], Sequence], clock: Callable[[], datetime]):
        """``collect(store, shop, now)``: what needs the shop now, most urgent first (attention
        items); ``notifiers``: the channels this deployment can send through, by name."""
        self.settings = settings
        self.shops = shops
        self.notifiers = dict(notifiers)
        self.collect = collect
        self.clock = clock

    # ------------------------------------------------------------ where messages go

    def destinations(self, shop: ShopSettings) -> list[Destination]:
        """The shop's channels this deployment can send through (email needs [email] host)."""
        config, out = shop.alerts, []
        if config.emails and "email" in self.notifiers:
            out.append(Destination("email", addresses=tuple(config.emails)))
        if config.post_url and "post" in self.notifiers:
            out.append(Destination("post", url=config.post_url, signing_secret=config.signing_secret))
        return out

    def email_available(self) -> bool:
        return "email" in self.notifiers

    # ------------------------------------------------------------ immediate alerts

    def run(self, store: Store) -> dict:
        """The scheduler's job: look at every shop, then send what is due."""
        looked = self.look(store)
        sent = self.send_due(store)
        return {"alerted": looked.alerted, "held": looked.held, "summaries": looked.summaries,
                "sent": sent.sent, "retrying": sent.retrying, "failed": sent.failed}

    def look(self, store: Store, shop_id: str | None = None) -> LookReport:
        report = LookReport()
        for each in ([shop_id] if shop_id else self.shops.ids()):
            shop = self.shops.get(each)
            if shop is None:
                continue
            channels = [d.channel for d in self.destinations(shop)]
            if not channels:
                continue  # nowhere to tell: nothing is tracked, so adding a channel tells what is open then
            now = self.clock()
            current = candidates(self.collect(store, shop, now), shop.alerts.kinds, REASON_WORDS)
            report.shops += 1
            self._decide(store, shop, current, channels, now, report)
        return report

    def _decide(self, store: Store, shop: ShopSettings, current: list[Candidate], channels: list[str],
                now: datetime, report: LookReport) -> None:
        link = self._link("/actions")
        label = shop_label(shop)
        with store.write():
            alerts = AlertStore(store)
            held = alerts.held(shop.id)
            plan = plan_alerts(current, alerts.tracked(shop.id), now=now,
                               sent_last_hour=alerts.sent_since(shop.id, now - RATE_WINDOW),
                               limit=shop.alerts.rate_limit_per_hour, held=len(held), exception_quiet=EXCEPTION_QUIET)
            if plan.summarise:
                key = message_key(shop.id, "summary", now)
                alerts.enqueue(summary_message(shop.id, label, [h["title"] for h in held], key=key, link=link,
                                               created_at=now), channels, now)
                alerts.summarised([h["id"] for h in held], now)
                alerts.log(shop.id, [Candidate(key, "summary", f"and {len(held)} more", "")], now, held=False)
                report.summaries += 1
            for candidate in plan.send:
                alerts.enqueue(alert_message(shop.id, label, candidate, key=message_key(shop.id, candidate.key, now),
                                             link=link, created_at=now), channels, now)
            alerts.log(shop.id, plan.send, now, held=False)
            alerts.log(shop.id, plan.hold, now, held=True)
            alerts.seen(shop.id, current, now)
            alerts.cleared(shop.id, plan.cleared, now)
        report.alerted += len(plan.send)
        report.held += len(plan.hold)

    # ------------------------------------------------------------ sending

    def send_due(self, store: Store, shop_id: str | None = None, limit: int = 200) -> SendReport:
        """Send every queued message that is due, each once; failures wait (backoff) for a later run."""
        report = SendReport()
        now = self.clock()
        with store.write():
            rows = AlertStore(store).claim_due(now, limit, now - STALE_CLAIM, shop_id)
        max_attempts = self.settings.scheduler.alerts_max_attempts
        for row in rows:
            shop = self.shops.get(row["shop_id"])
            destination = next((d for d in self.destinations(shop) if d.channel == row["channel"]), None) \
                if shop is not None else None
            if destination is None:
                with store.write():
                    AlertStore(store).dropped(row["id"], f"not sent: the shop no longer sends alerts by "
                                                         f"{CHANNEL_WORDS.get(row['channel'], row['channel'])}")
                report.dropped += 1
                continue
            message = AlertMessage(row["message_key"], row["shop_id"], row["kind"], row["subject"], row["text"],
                                   parse_ts(row["created_at"]), row["link"])
            error = self._deliver(message, destination)
            attempts = row["attempts"] + 1
            with store.write():
                if error is None:
                    AlertStore(store).sent(row["id"], self.clock())
                    report.sent += 1
                    continue
                retry_at = self.clock() + retry_delay(attempts) if attempts < max_attempts else None
                AlertStore(store).failed(row["id"], error, retry_at)
            log.warning("alert %s by %s failed (attempt %d of %d%s): %s", row["message_key"], row["channel"],
                        attempts, max_attempts, "" if retry_at else ", given up", error)
            report.errors.append(f"{row['shop_id']} {row['channel']}: {error}")
            if retry_at is None:
                report.failed += 1
            else:
                report.retrying += 1
        return report

    def _deliver(self, message: AlertMessage, destination: Destination) -> str | None:
        """None when delivered, else why not (a sentence without credentials)."""
        try:
            self.notifiers[destination.channel].deliver(message, destination)
        except DeliveryFailed as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug in a channel: recorded by type only (a message might carry a secret)
            log.error("alert %s by %s: unexpected %s", message.key, destination.channel, type(exc).__name__)
            return f"the message could not be sent (unexpected {type(exc).__name__}; logged for the operator)"
        return None

    # ------------------------------------------------------------ the daily digest

    def digest(self, store: Store, shop_id: str, *, preview: bool = False) -> AlertMessage:
        """Yesterday (in the shop's time zone) in figures and what needs the creator now;
        unless ``preview``, queued once for the day on every channel and sent."""
        shop = self._shop(shop_id)
        now = self.clock()
        zone = ZoneInfo(shop.timezone)
        day = now.astimezone(zone).date() - timedelta(days=1)
        start = datetime.combine(day, time(0), zone)
        figures = self.figures(store, shop, day, now)
        items = [DigestItem(item.title, item.detail or "") for item in self.collect(store, shop, now)]
        links = {label: url for label, path in (("Home", "/"), ("Action centre", "/actions"), ("Metrics", "/metrics"))
                 if (url := self._link(path))}
        message = digest_message(shop.id, shop_label(shop), day.isoformat(), figures, items,
                                 key=message_key(shop.id, "digest", start), links=links, created_at=now)
        if preview:
            return message
        channels = [d.channel for d in self.destinations(shop)]
        if not channels:
            raise AlertError(self._no_channel(shop))
        with store.write():
            AlertStore(store).enqueue(message, channels, now)  # the day's digest is queued once
        self.send_due(store, shop.id)
        return message

    def scheduled_digest(self, store: Store, shop_id: str) -> str:
        """The per-shop job at the shop's digest time: sent when the digest is on and a channel is set."""
        shop = self.shops.get(shop_id)
        if shop is None or "digest" not in shop.alerts.kinds or not self.destinations(shop):
            return "off"
        self.digest(store, shop_id)
        return "queued"

    def figures(self, store: Store, shop: ShopSettings, day: date, now: datetime) -> list[tuple[str, str]]:
        """(label, value with what it means) for the orders placed on ``day`` (the shop's
        calendar), from the shipment metrics' counters, and the last 7 days' on-time rate."""
        total = metrics(store, shop, since=day, until=day, now=now).total
        week = headline(store, shop, now)
        on_time = (f"{_percent(total.on_time_rate)} of those orders' parcels left before their place's cutoff"
                   if total.on_time_rate is not None else "no parcel of those orders has left yet")
        return [
            ("Orders routed", f"{total.orders_routed}: orders placed that day and sent to a place that ships them"),
            ("Parcels shipped", f"{total.shipped} of them have left so far"),
            ("On time", on_time),
            ("On time over the last 7 days", f"{_percent(week.on_time_rate_7d)} of parcels"
             if week.on_time_rate_7d is not None else "no parcel has left in the last 7 days"),
            ("Exceptions", f"{_percent(total.exception_rate)} of the day's orders had a line no place could take"
             if total.exception_rate is not None else "none"),
            ("Open exceptions now", f"{week.open_exceptions} order line{'s wait' if week.open_exceptions != 1 else ' waits'} "
                                    "for you in the action centre"),
        ]

    # ------------------------------------------------------------ the test button

    def test(self, store: Store, shop_id: str, by: str) -> list[TestOutcome]:
        """A test message sent now on each channel the shop has set; audited with the outcomes."""
        shop = self._shop(shop_id)
        now = self.clock()
        config = shop.alerts
        wanted = (["email"] if config.emails else []) + (["post"] if config.post_url else [])
        if not wanted:
            raise AlertError("Set an email address or an address for JSON messages first, then save.")
        message = AlertMessage(message_key(shop.id, "test", now), shop.id, "test",
                               f"[{shop_label(shop)}] Test message",
                               "This is a test message from your fulfillment connector. Alerts and the daily "
                               "summary will arrive like this.\n", now, self._link("/settings/alerts"))
        outcomes = []
        available = {d.channel: d for d in self.destinations(shop)}
        for channel in wanted:
            words = CHANNEL_WORDS[channel]
            if channel not in available:
                outcomes.append(TestOutcome(channel, False, f"{words}: not sent, this service has no mail server set "
                                                            "up (ask its operator to set [email] host)"))
                continue
            error = self._deliver(message, available[channel])
            outcomes.append(TestOutcome(channel, error is None, f"{words}: sent." if error is None
                                        else f"{words}: not sent, {error}."))
        with store.write():
            store.event(shop.id, "alerts.test", shop.id,
                        {"by": by, "outcomes": [{"channel": o.channel, "ok": o.ok, "said": o.sentence}
                                                for o in outcomes]}, self.clock())
        return outcomes

    # ------------------------------------------------------------ what was sent

    def recent(self, store: Store, shop_id: str, limit: int = 10) -> list[dict]:
        """The shop's last messages, newest first, with how each went."""
        return AlertStore(store).recent(shop_id, limit)

    def outbox(self, store: Store, shop_id: str | None = None) -> list[dict]:
        return AlertStore(store).outbox(shop_id)

    # ------------------------------------------------------------ helpers

    def _shop(self, shop_id: str) -> ShopSettings:
        shop = self.shops.get(shop_id)
        if shop is None:
            raise AlertError(f"unknown shop {shop_id!r}")
        return shop

    def _no_channel(self, shop: ShopSettings) -> str:
        if shop.alerts.emails and not self.email_available():
            return "not sent: this service has no mail server set up ([email] host) and no JSON address is set"
        return "not sent: set an email address or an address for JSON messages first"

    def _link(self, path: str) -> str | None:
        base = self.settings.web.public_url
        return f"{base}{path}" if base else None


def _percent(rate: float) -> str:
    return f"{rate:.0%}"


def shop_label(shop: ShopSettings) -> str:
    """How messages name the shop: its store."""
    return shop.shop_domain or (shop.store_url or "").split("://")[-1] or shop.id


def message_key(shop_id: str, what: str, at: datetime) -> str:
    """A message's key: stable for the message, different for each occurrence, and safe in a header."""
    return _UNSAFE_KEY.sub("_", f"{shop_id}:{what}:{at.strftime('%Y%m%dT%H%M%S')}")
