"""The shapes of "needs you" items and the rules that order them (pure)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connector.domain.attention import (BASE_URGENCY, KINDS, SECTIONS, Action, Attention, by_section, ordered,
                                        section_of, urgency, waited)

NOW = datetime(2026, 11, 22, 15, tzinfo=timezone.utc)


def item(kind, key="k", since=None, urgency_=None):
    return Attention("shop", kind, key, BASE_URGENCY[kind] if urgency_ is None else urgency_, "title", "detail",
                     since)


def test_every_kind_has_exactly_one_section():
    listed = [kind for _, kinds in SECTIONS for kind in kinds]
    assert sorted(listed) == sorted(KINDS) and len(listed) == len(set(listed))
    assert section_of("exception") == "Orders to decide" and section_of("sync_stale") == "Stock syncs"


def test_a_customer_order_stuck_is_more_urgent_than_stock_work_or_transfers():
    assert BASE_URGENCY["exception"] == BASE_URGENCY["forward_failed"] == 0
    assert BASE_URGENCY["exception"] < BASE_URGENCY["amendment"] < BASE_URGENCY["sync_failing"] \
        < BASE_URGENCY["transfer_approval"]


@pytest.mark.parametrize("waited_for, expected", [
    (None, 3), (timedelta(hours=1), 3), (timedelta(hours=24), 3), (timedelta(hours=25), 2),
])
def test_waiting_more_than_a_day_makes_an_item_one_step_more_urgent(waited_for, expected):
    since = None if waited_for is None else NOW - waited_for
    assert urgency("transfer_approval", since, NOW) == expected


def test_urgency_never_goes_below_zero():
    assert urgency("exception", NOW - timedelta(days=30), NOW) == 0


def test_ordered_by_urgency_then_longest_waiting_then_page_order_then_key():
    old, new = NOW - timedelta(hours=5), NOW - timedelta(hours=1)
    items = [
        item("transfer_approval", "t", old),
        item("sync_failing", "s-unknown", None),
        item("sync_failing", "s-new", new),
        item("exception", "e-new", new),
        item("forward_failed", "f-new", new),
        item("sync_stale", "stale-b", old),
        item("sync_stale", "stale-a", old),
        item("exception", "e-old", old),
    ]
    assert [i.key for i in ordered(items)] == [
        "e-old", "e-new", "f-new",  # urgency 0: the longest waiting first; same wait: page order
        "stale-a", "stale-b", "s-new", "s-unknown",  # urgency 2: unknown start last, key breaks ties
        "t",
    ]


def test_ordering_compares_moments_not_their_time_zones():
    a = item("exception", "a", datetime(2026, 11, 22, 10, tzinfo=timezone(timedelta(hours=-5))))  # 15:00 UTC
    b = item("exception", "b", datetime(2026, 11, 22, 14, 30, tzinfo=timezone.utc))
    assert [i.key for i in ordered([a, b])] == ["b", "a"]


def test_by_section_keeps_page_order_and_drops_empty_sections():
    items = ordered([item("transfer_to_receive", "t"), item("exception", "e"), item("over_reserved", "o")])
    assert [(title, [i.key for i in group]) for title, group in by_section(items)] == [
        ("Orders to decide", ["e"]), ("Transfers", ["t"]), ("Stock", ["o"])]


def test_an_item_knows_its_section_and_refuses_an_unknown_kind():
    assert item("amendment").section == "Hand-offs to 3PLs"
    with pytest.raises(ValueError, match="unknown attention kind"):
        Attention("shop", "nope", "k", 0, "t", "d", None)


def test_an_action_keeps_its_url_values_as_strings_and_cannot_be_changed():
    action = Action("Try again", "actions.retry_forward", {"job_id": 7}, cli="connector forward retry 7")
    assert dict(action.args) == {"job_id": "7"} and action.method == "post" and action.confirm is None
    with pytest.raises(TypeError):
        action.args["job_id"] = "8"
    with pytest.raises(ValueError, match="post or get"):
        Action("x", "e", {}, method="delete", cli="c")


@pytest.mark.parametrize("ago, words", [
    (timedelta(seconds=30), "under a minute"), (timedelta(minutes=5), "5 min"), (timedelta(hours=3), "3 h"),
    (timedelta(hours=47), "47 h"), (timedelta(days=3, hours=2), "3 days"),
])
def test_waited_in_words(ago, words):
    assert waited(NOW - ago, NOW) == words
    assert waited(None, NOW) is None
