"""What a creator is told, and when: pure decisions on plain data (time is passed in).

An item that needs the creator (``services.attention.needs_you``) becomes a ``Candidate``
keyed by what makes it the same item: the attention item's own key, or for exceptions the
kind of exception (its reason group), so a hundred lines short of stock make one alert, not
a hundred. ``plan_alerts`` then decides, from what was seen before:

- deduplication: an item alerts once while it stays; again only after it cleared (was
  gone at a later look) and came back. A kind of exception alerts again only when it was
  not alerted within ``exception_quiet`` (a kind that comes and goes all day is one alert);
- the rate limit: at most ``limit`` alerts a shop in any hour; the rest are held and told
  later in one "and N more" summary, which takes the first free place;
- the order: most urgent first (the order ``needs_you`` gives).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

# Attention kinds -> the alert kind a creator switches on or off (the others only show in
# the digest and on the pages: they are not urgent enough to interrupt someone).
ALERT_KIND_OF = {
    "exception": "exceptions",
    "sync_failing": "syncs",
    "sync_stale": "syncs",
    "forward_failed": "forwarding",
    "forward_unknown": "forwarding",
    "transfer_approval": "approvals",
    "webhook_disabled": "webhooks",
    "webhooks_failed": "webhooks",
}
KIND_WORDS = {
    "exceptions": "A new kind of exception (orders that could not be routed)",
    "syncs": "A 3PL's stock sync failing or out of date",
    "forwarding": "An order that could not be handed to a 3PL",
    "approvals": "Transfers waiting for your approval",
    "webhooks": "The store's order webhooks disabled or failing",
    "digest": "A daily summary at the time below",
}
EXCEPTION_KIND_PREFIX = "exception-kind:"
RETRY_CAP = timedelta(minutes=60)


class DeliveryFailed(Exception):
    """A message a channel did not deliver, said in one sentence for the creator (never a
    credential: not the POST address, not a secret, not the mail password)."""


@dataclass(frozen=True)
class Candidate:
    """An item that may alert now. ``key``: the same for the same item at every look."""

    key: str
    kind: str  # an alert kind (ALERT_KIND_OF's values)
    title: str
    detail: str


@dataclass(frozen=True)
class Tracked:
    """What was known of an item at the last look."""

    key: str
    present: bool  # it was there at the last look (so it already alerted, or was held)
    alerted_at: datetime | None  # the last time it alerted or was held by the rate limit


@dataclass(frozen=True)
class Plan:
    send: tuple[Candidate, ...]  # alert now, in this order
    hold: tuple[Candidate, ...]  # due, but over the hour's limit: told in a later summary
    seen: tuple[str, ...]  # keys there now
    cleared: tuple[str, ...]  # keys there at the last look and gone now
    summarise: int  # how many held alerts to tell now in one "and N more" message (0: none)


def candidates(items: Iterable[Any], kinds_on: Iterable[str],
               reason_words: Mapping[str, str] | None = None) -> list[Candidate]:
    """The alerts ``items`` (attention items, most urgent first: ``kind``, ``key``, ``title``,
    ``detail``, ``group``) can raise with the shop's ``kinds_on``; exceptions as one per kind,
    named by ``reason_words`` (exception reason -> words ending "an order line could not be
    routed because ...")."""
    kinds_on = set(kinds_on)
    out: list[Candidate] = []
    exceptions: dict[str, list[Any]] = {}
    for item in items:
        kind = ALERT_KIND_OF.get(item.kind)
        if kind is None or kind not in kinds_on:
            continue
        if kind == "exceptions":
            group = exceptions.setdefault(item.group or "other", [])
            if not group:  # the kind's place in the order is its most urgent line's
                out.append(Candidate(EXCEPTION_KIND_PREFIX + (item.group or "other"), kind, "", ""))
            group.append(item)
        else:
            out.append(Candidate(item.key, kind, item.title, item.detail or ""))
    described = []
    for candidate in out:
        if candidate.key.startswith(EXCEPTION_KIND_PREFIX):
            group = candidate.key[len(EXCEPTION_KIND_PREFIX):]
            members = exceptions[group]
            first = members[0]
            reason = (reason_words or {}).get(group, group.replace("_", " "))
            lines = f"{len(members)} order lines have" if len(members) > 1 else "1 order line has"
            candidate = Candidate(candidate.key, candidate.kind, f"New kind of exception: {reason}",
                                  f"{lines} it now. First: {first.title}. {first.detail or ''}".strip())
        described.append(candidate)
    return described


def plan_alerts(current: Sequence[Candidate], tracked: Mapping[str, Tracked], *, now: datetime,
                sent_last_hour: int, limit: int, held: int, exception_quiet: timedelta) -> Plan:
    """Which of ``current`` alert now (see the module's docstring). ``sent_last_hour``: alerts
    and summaries already sent in the hour before ``now``; ``held``: alerts held earlier and
    not told yet."""
    capacity = max(limit - sent_last_hour, 0)
    summarise = 0
    if held and capacity:
        summarise, capacity = held, capacity - 1
    due: list[Candidate] = []
    for candidate in current:
        before = tracked.get(candidate.key)
        if before is not None and before.present:
            continue  # still there: it alerted when it came
        if (candidate.kind == "exceptions" and before is not None and before.alerted_at is not None
                and now - before.alerted_at < exception_quiet):
            continue  # this kind of exception was told recently
        due.append(candidate)
    keys = {candidate.key for candidate in current}
    return Plan(send=tuple(due[:capacity]), hold=tuple(due[capacity:]), seen=tuple(sorted(keys)),
                cleared=tuple(sorted(k for k, t in tracked.items() if t.present and k not in keys)),
                summarise=summarise)


def retry_delay(attempts: int) -> timedelta:
    """How long a message that failed ``attempts`` times waits: 1, 2, 4 ... minutes, at most an hour."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), RETRY_CAP)


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class AlertMessage:
    """One message to a shop's channels. ``key`` is stable for the message (its retries too):
    the email's Message-ID and the POST's Idempotency-Key, so a receiver can drop a repeat."""

    key: str
    shop_id: str
    kind: str  # "alert" | "summary" | "digest" | "test"
    subject: str
    text: str
    created_at: datetime
    link: str | None = None  # the page where it is acted on (absolute, when the service knows its address)


@dataclass(frozen=True)
class Destination:
    """Where a channel delivers: email addresses, or a URL and the secret its POSTs are signed with."""

    channel: str  # "email" | "post"
    addresses: tuple[str, ...] = ()
    url: str = ""
    signing_secret: str = ""

    def __repr__(self) -> str:  # the URL and the secret are credentials
        return f"Destination({self.channel!r}, addresses={self.addresses!r})"


def alert_message(shop_id: str, shop_label: str, candidate: Candidate, *, key: str, link: str | None,
                  created_at: datetime) -> AlertMessage:
    lines = [candidate.title, "", candidate.detail] if candidate.detail else [candidate.title]
    lines += ["", f"What to do: {link}" if link else "What to do: open the app's action centre."]
    return AlertMessage(key, shop_id, "alert", f"[{shop_label}] {candidate.title}", "\n".join(lines) + "\n",
                        created_at, link)


def summary_message(shop_id: str, shop_label: str, titles: Sequence[str], *, key: str, link: str | None,
                    created_at: datetime) -> AlertMessage:
    """The "and N more" message: what the hourly limit held back, most urgent first."""
    count = len(titles)
    shown = list(titles[:10])
    lines = [f"{count} more alert{'s' if count != 1 else ''} came while the limit of alerts an hour was reached:",
             ""] + [f"- {title}" for title in shown]
    if count > len(shown):
        lines.append(f"- and {count - len(shown)} more")
    lines += ["", f"See them all: {link}" if link else "See them all in the app's action centre."]
    return AlertMessage(key, shop_id, "summary", f"[{shop_label}] and {count} more alert{'s' if count != 1 else ''}",
                        "\n".join(lines) + "\n", created_at, link)


@dataclass(frozen=True)
class DigestItem:
    title: str
    detail: str


def digest_message(shop_id: str, shop_label: str, day: str, figures: Sequence[tuple[str, str]], items: Sequence[DigestItem], *,
                   key: str, links: Mapping[str, str], created_at: datetime) -> AlertMessage:
    """Yesterday in figures (label, value with what it means) and what needs the creator now."""
    lines = [f"Yesterday ({day}) in figures:", ""]
    lines += [f"- {label}: {value}" for label, value in figures]
    lines += [""]
    if items:
        lines += [f"Needs you now ({len(items)}):", ""]
        for item in items[:15]:
            lines.append(f"- {item.title}" + (f": {item.detail}" if item.detail else ""))
        if len(items) > 15:
            lines.append(f"- and {len(items) - 15} more")
    else:
        lines.append("Nothing needs you now.")
    if links:
        lines += ["", "Open:"] + [f"- {label}: {url}" for label, url in links.items()]
    return AlertMessage(key, shop_id, "digest", f"[{shop_label}] Your day: {day}", "\n".join(lines) + "\n", created_at,
                        next(iter(links.values()), None))


def json_payload(message: AlertMessage) -> bytes:
    """The body a POST carries: the same bytes at every retry (no send time in it), so its
    signature and Idempotency-Key stay those of the message."""
    return json.dumps({"id": message.key, "shop": message.shop_id, "type": message.kind, "title": message.subject,
                       "text": message.text, "url": message.link, "created_at": message.created_at.isoformat()},
                      separators=(",", ":"), ensure_ascii=False).encode()
