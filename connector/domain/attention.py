"""What needs the creator: one item per thing only a person can settle, with the
actions that settle it, ordered by how urgent it is.

Pure: the collector (``connector.services.attention``) reads the store and builds the
items; here are their shapes, how urgent each kind is, how waiting makes an item more
urgent, the order they are shown in, and the sections of the action centre.

Urgency 0 is the most urgent: a customer's order is stuck. Each kind has a base
urgency; an item that has waited longer than a day is one step more urgent (never
below 0), so nothing sinks to the bottom of the list for good.
"""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Iterable, Mapping

# Base urgency per kind (0 = most urgent).
URGENT, SOON, TODAY, WHEN_YOU_CAN = 0, 1, 2, 3
BASE_URGENCY: Mapping[str, int] = MappingProxyType({
    # A customer's order goes nowhere until someone decides.
    "exception": URGENT,
    "move_refused": URGENT,
    "forward_failed": URGENT,
    # Orders keep moving, but something is wrong that will cost orders or stock soon.
    "forward_unknown": SOON,
    "handoff_failed": SOON,
    "amendment": SOON,
    "over_reserved": SOON,
    "webhook_disabled": SOON,
    "reconcile_failing": SOON,
    # Stock figures and background work: wrong or late, not yet losing orders.
    "sync_failing": TODAY,
    "sync_stale": TODAY,
    "webhooks_failed": TODAY,
    "refund_lookup_failed": TODAY,
    # Stock moves a person planned or approves.
    "transfer_approval": WHEN_YOU_CAN,
    "transfer_to_ship": WHEN_YOU_CAN,
    "transfer_to_receive": WHEN_YOU_CAN,
})
KINDS = tuple(BASE_URGENCY)
# Waiting longer than this makes an item one step more urgent.
WAITED_TOO_LONG = timedelta(hours=24)

# The action centre's sections, in page order: (title, kinds).
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Orders to decide", ("exception",)),
    ("Telling your store", ("move_refused", "handoff_failed")),
    ("Hand-offs to 3PLs", ("forward_failed", "forward_unknown", "amendment")),
    ("Stock syncs", ("sync_failing", "sync_stale")),
    ("Transfers", ("transfer_approval", "transfer_to_ship", "transfer_to_receive")),
    ("Stock", ("over_reserved",)),
    ("Store webhooks", ("webhook_disabled", "webhooks_failed", "refund_lookup_failed", "reconcile_failing")),
)


@dataclass(frozen=True)
class ActionInput:
    """A value the person types in with the action (units to ship, a count, a note)."""

    name: str  # the form field
    label: str
    kind: str = "text"  # "text" or "number"
    value: str = ""  # pre-filled
    required: bool = False
    minimum: int | None = None  # for numbers


@dataclass(frozen=True)
class Action:
    """One button beside an item: a POST (or a GET link, ``method="get"``) to a Flask
    endpoint with ``args`` as its URL values, and the same step on the command line."""

    label: str
    endpoint: str
    args: Mapping[str, str]
    _: KW_ONLY
    method: str = "post"
    cli: str
    confirm: str | None = None  # asked before a step that cannot be undone
    inputs: tuple[ActionInput, ...] = ()

    def __post_init__(self):
        if self.method not in ("post", "get"):
            raise ValueError(f"action method must be post or get, not {self.method!r}")
        object.__setattr__(self, "args", MappingProxyType({k: str(v) for k, v in self.args.items()}))


@dataclass(frozen=True)
class Attention:
    """Something that needs the creator. ``key`` is stable for as long as the item is
    the same thing (alerts use it to tell a new item from one already told);
    ``group`` sorts items of a kind further (an exception's ExceptionReason value)."""

    shop_id: str
    kind: str
    key: str
    urgency: int
    title: str
    detail: str
    since: datetime | None  # when it started waiting, if known
    actions: tuple[Action, ...] = ()
    group: str | None = None
    section: str = field(init=False)

    def __post_init__(self):
        if self.kind not in BASE_URGENCY:
            raise ValueError(f"unknown attention kind {self.kind!r}")
        object.__setattr__(self, "section", section_of(self.kind))


def section_of(kind: str) -> str:
    return next(title for title, kinds in SECTIONS if kind in kinds)


def urgency(kind: str, since: datetime | None, now: datetime) -> int:
    """The kind's base urgency, one step more urgent once it has waited too long."""
    base = BASE_URGENCY[kind]
    if since is not None and now - since > WAITED_TOO_LONG:
        return max(base - 1, 0)
    return base


def ordered(items: Iterable[Attention]) -> list[Attention]:
    """Most urgent first; within an urgency, the longest waiting first (items whose
    start is unknown after those), then by kind in page order, then by key."""
    kind_rank = {kind: rank for rank, (_, kinds) in enumerate(SECTIONS) for kind in kinds}

    def sort_key(item: Attention):
        since = item.since.timestamp() if item.since is not None else float("inf")
        return item.urgency, since, kind_rank[item.kind], item.key

    return sorted(items, key=sort_key)


def by_section(items: Iterable[Attention]) -> list[tuple[str, list[Attention]]]:
    """The items under their section titles, sections in page order, only those with items;
    within a section the items keep their order (``ordered``)."""
    grouped: dict[str, list[Attention]] = {title: [] for title, _ in SECTIONS}
    for item in items:
        grouped[item.section].append(item)
    return [(title, group) for title, group in grouped.items() if group]


def waited(since: datetime | None, now: datetime) -> str | None:
    """How long an item has waited, in words: "5 min", "3 h", "2 days"; None when unknown."""
    if since is None:
        return None
    seconds = max((now - since).total_seconds(), 0)
    if seconds < 60:
        return "under a minute"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 48 * 3600:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"


def plural(count: int, one: str, many: str | None = None) -> str:
    """ "1 order", "3 orders"."""
    return f"{count} {one if count == 1 else (many or one + 's')}"
