"""The alert decisions on plain data: which items alert, deduplication, the hourly limit
and its summary, backoff, and the messages' text."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from connector.domain.alerts import (
    AlertMessage,
    Candidate,
    DigestItem,
    Tracked,
    alert_message,
    candidates,
    digest_message,
    json_payload,
    plan_alerts,
    retry_delay,
    summary_message,
)

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
QUIET = timedelta(hours=24)
ALL = ("exceptions", "syncs", "forwarding", "approvals", "webhooks", "digest")


@dataclass(frozen=True)
class Item:  # the shape of an attention item, as far as alerts read it
    kind: str
    key: str
    title: str
    detail: str = ""
    group: str | None = None


def plan(current, tracked=None, *, sent=0, limit=10, held=0, now=NOW):
    return plan_alerts(current, tracked or {}, now=now, sent_last_hour=sent, limit=limit, held=held,
                       exception_quiet=QUIET)


def sync(node: str) -> Candidate:
    return Candidate(f"sync_failing:{node}", "syncs", f"{node} sync failing", "")


# ---------------------------------------------------------------- candidates


def test_exceptions_alert_once_per_kind_of_exception_and_other_items_each():
    items = [Item("exception", "exception:1:a", "Order #1 line a", "no stock", "partial_stock"),
             Item("sync_failing", "sync_failing:east", "East sync failing"),
             Item("exception", "exception:2:b", "Order #2 line b", "no stock", "partial_stock"),
             Item("exception", "exception:3:c", "Order #3 line c", "no region", "no_region"),
             Item("over_reserved", "over:x", "Over-reserved")]  # not an alert kind: digest and pages only
    found = candidates(items, ALL, {"partial_stock": "no node has enough of it"})
    assert [c.key for c in found] == ["exception-kind:partial_stock", "sync_failing:east", "exception-kind:no_region"]
    assert found[0].title == "New kind of exception: no node has enough of it"
    assert found[0].detail == "2 order lines have it now. First: Order #1 line a. no stock"
    assert found[2].title == "New kind of exception: no region" and found[2].detail.startswith("1 order line has it")


def test_kinds_switched_off_raise_nothing():
    items = [Item("exception", "exception:1:a", "Order #1", group="no_region"),
             Item("transfer_approval", "transfer:7", "Transfer 7 waits"),
             Item("webhook_disabled", "webhook:3", "Webhook paused")]
    assert [c.key for c in candidates(items, ["approvals"])] == ["transfer:7"]
    assert candidates(items, []) == []


# ---------------------------------------------------------------- dedupe


def test_a_new_item_alerts_and_one_still_there_does_not_alert_again():
    first = plan([sync("east")])
    assert [c.key for c in first.send] == ["sync_failing:east"] and first.seen == ("sync_failing:east",)
    again = plan([sync("east")], {"sync_failing:east": Tracked("sync_failing:east", True, NOW)},
                 now=NOW + timedelta(hours=3))
    assert again.send == () and again.hold == ()


def test_an_item_alerts_again_only_after_it_cleared_and_came_back():
    tracked = {"sync_failing:east": Tracked("sync_failing:east", True, NOW)}
    gone = plan([], tracked, now=NOW + timedelta(minutes=5))
    assert gone.cleared == ("sync_failing:east",) and gone.send == ()
    back = plan([sync("east")], {"sync_failing:east": Tracked("sync_failing:east", False, NOW)},
                now=NOW + timedelta(minutes=10))
    assert [c.key for c in back.send] == ["sync_failing:east"]


def test_a_kind_of_exception_told_recently_is_not_told_again_when_it_comes_back():
    kind = Candidate("exception-kind:no_region", "exceptions", "New kind of exception", "")
    told = {kind.key: Tracked(kind.key, False, NOW)}
    assert plan([kind], told, now=NOW + timedelta(hours=23)).send == ()
    assert plan([kind], told, now=NOW + timedelta(hours=25)).send == (kind,)


# ---------------------------------------------------------------- the hourly limit


def test_beyond_the_limit_alerts_are_held_most_urgent_first_sent():
    current = [sync(f"n{i}") for i in range(5)]
    result = plan(current, limit=3, sent=1)
    assert [c.key for c in result.send] == ["sync_failing:n0", "sync_failing:n1"]
    assert [c.key for c in result.hold] == ["sync_failing:n2", "sync_failing:n3", "sync_failing:n4"]
    assert result.summarise == 0


def test_held_alerts_are_summarised_once_the_hour_has_room_and_the_summary_takes_a_place():
    full = plan([sync("late")], sent=10, limit=10, held=4)
    assert full.summarise == 0 and [c.key for c in full.hold] == ["sync_failing:late"]
    room = plan([sync("next"), sync("after")], sent=8, limit=10, held=5)
    assert room.summarise == 5
    assert [c.key for c in room.send] == ["sync_failing:next"] and [c.key for c in room.hold] == ["sync_failing:after"]


# ---------------------------------------------------------------- backoff and messages


def test_retry_delay_doubles_up_to_an_hour():
    assert [retry_delay(n) for n in (1, 2, 3, 7, 8, 20)] == [
        timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=60),
        timedelta(minutes=60), timedelta(minutes=60)]


def test_messages_read_plainly_and_carry_their_link():
    alert = alert_message("shop", "aurora.myshopify.com", sync("east"), key="k1", link="https://c.example/actions",
                          created_at=NOW)
    assert alert.subject == "[aurora.myshopify.com] east sync failing"
    assert "What to do: https://c.example/actions" in alert.text
    summary = summary_message("shop", "aurora", [f"alert {i}" for i in range(12)], key="k2", link=None,
                              created_at=NOW)
    assert summary.subject == "[aurora] and 12 more alerts"
    assert "- alert 0" in summary.text and "- alert 9" in summary.text and "- and 2 more" in summary.text
    digest = digest_message("shop", "aurora", "2026-11-21", [("Orders received", "12")],
                            [DigestItem("Order #1 waits", "no node ships there")], key="k3",
                            links={"Action centre": "https://c.example/actions"}, created_at=NOW)
    assert "- Orders received: 12" in digest.text and "- Order #1 waits: no node ships there" in digest.text
    assert "- Action centre: https://c.example/actions" in digest.text
    quiet = digest_message("shop", "aurora", "2026-11-21", [], [], key="k4", links={}, created_at=NOW)
    assert "Nothing needs you now." in quiet.text


def test_the_json_body_is_the_same_at_every_attempt():
    message = AlertMessage("shop:k", "shop", "alert", "Subject", "Text\n", NOW, "https://c.example/actions")
    body = json_payload(message)
    assert body == json_payload(message)
    assert json.loads(body) == {"id": "shop:k", "shop": "shop", "type": "alert", "title": "Subject", "text": "Text\n",
                                "url": "https://c.example/actions", "created_at": NOW.isoformat()}
