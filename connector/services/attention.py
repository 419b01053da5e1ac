"""What needs the creator now ("needs you"): every open item of a shop that only a
person can settle, each with the actions that settle it (a page's button and the
same step on the command line), ordered by urgency.

One collector for every place that lists them: the action centre (/actions), the
home page, the alerts, and ``connector exceptions``. It only reads.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from connector import handoff_store
from connector.actions_store import ActionsStore
from connector.config import Settings, ShopSettings
from connector.domain.attention import Action, ActionInput, Attention, ordered, plural, urgency
from connector.domain.model import ExceptionReason
from connector.store import Store, parse_ts

# Why a line went to a person, as the end of a sentence about the line.
REASON_WORDS = {
    ExceptionReason.NO_REGION.value: "its address matches no region",
    ExceptionReason.NO_NODE_SERVES_REGION.value: "no node ships there",
    ExceptionReason.NODES_UNAVAILABLE.value: "every node that ships there is closed, paused or offline",
    ExceptionReason.HANDLING_CONSTRAINT.value: "no node that ships there can handle it",
    ExceptionReason.PARTIAL_STOCK.value: "no node that ships there has enough of it",
    ExceptionReason.NEEDS_HUMAN.value: "it needs a person to decide",
}


def needs_you(store: Store, shop: ShopSettings, settings: Settings, now: datetime) -> list[Attention]:
    """Every open item of ``shop``, most urgent first (``domain.attention.ordered``)."""
    collector = _Collector(store, shop, settings, now)
    return ordered([
        *collector.exceptions(), *collector.refused_moves(), *collector.failed_handoffs(), *collector.forwarding(), *collector.amendments(), *collector.syncs(),
        *collector.transfers(), *collector.over_reserved(), *collector.store_webhooks(),
        *collector.failed_deliveries(), *collector.refund_lookups(), *collector.reconciliation(),
    ])


class _Collector:
    def __init__(self, store: Store, shop: ShopSettings, settings: Settings, now: datetime):
        self.store = store
        self.sql = ActionsStore(store)
        self.shop = shop
        self.settings = settings
        self.now = now
        self.tz = ZoneInfo(shop.timezone)

    def _item(self, kind: str, key: str, title: str, detail: str, since: datetime | None,
              actions: tuple[Action, ...], group: str | None = None) -> Attention:
        return Attention(self.shop.id, kind, key, urgency(kind, since, self.now), title, detail, since, actions,
                         group)

    def _cli(self, command: str) -> str:
        return f"connector {command} --shop {self.shop.id}"

    def _node(self, node_id: str) -> str:
        node = self.shop.network.nodes.get(node_id)
        return node.name if node is not None and node.name else node_id

    def _when(self, value: str | datetime | None) -> str:
        """A moment in the shop's time, as people write it: "Nov 22, 10:00"."""
        moment = parse_ts(value) if isinstance(value, str) else value
        if moment is None:
            return "never"
        return moment.astimezone(self.tz).strftime("%b %d, %H:%M").replace(" 0", " ")

    # ------------------------------------------------------------ orders

    def exceptions(self) -> list[Attention]:
        items = []
        for row in self.sql.exception_lines(self.shop.id):
            region = self.shop.network.regions.get(row["region_id"] or "")
            to = f" to {region.name or region.id}" if region is not None else ""
            what = f"{row['quantity']} × {row['title'] or row['sku']}"
            reason = REASON_WORDS.get(row["exception"], row["exception"])
            order, line = row["order_id"], row["line_id"]
            items.append(self._item(
                "exception", f"exception:{order}:{line}",
                f"Order {row['number']}{to}: {what} could not be routed — {reason}",
                _sentence(_without_code(row["explanation"], row["exception"])), parse_ts(row["decided_at"]),
                (Action("Choose a node", "exceptions.choose", {"order_id": order, "line_id": line}, method="get",
                        cli=self._cli(f"exceptions options {order} {line}")),
                 Action("Re-evaluate now", "exceptions.reevaluate", {"order_id": order},
                        cli=self._cli(f"exceptions reevaluate {order}")),
                 Action("Dismiss", "exceptions.dismiss", {"order_id": order, "line_id": line},
                        cli=self._cli(f"exceptions dismiss {order} {line} --note TEXT"),
                        inputs=(ActionInput("note", "Why dismiss it", required=True),))),
                group=row["exception"]))
        return items

    def refused_moves(self) -> list[Attention]:
        """Orders whose items the store would not move to the node chosen here (Shopify's
        fulfillment orders), with the store's reason."""
        by_order: dict[str, list[dict]] = {}
        for row in handoff_store.refused_moves(self.store, self.shop.id):
            by_order.setdefault(row["order_id"], []).append(row)
        items = []
        for order_id, rows in by_order.items():
            names = ", ".join(self._node(r["node_id"]) for r in rows)
            reasons = " ".join(_sentence(r["reason"]) for r in rows)
            items.append(self._item(
                "move_refused", f"move_refused:{order_id}",
                f"Order {rows[0]['number']}: your store did not move it to {names}",
                f"{reasons} Until it moves, your store's admin shows it at another location than the one chosen "
                "here. Try again once the cause is fixed (a location set, the work at the other location "
                "stopped).", min(parse_ts(r["at"]) for r in rows),
                (Action("Try the move again", "packing.retry_handoff", {"order_id": order_id},
                        cli=f"connector handoff --shop {self.shop.id} --retry {order_id}"),)))
        return items

    def failed_handoffs(self) -> list[Attention]:
        """What the store refused to be told for good (its API said no, e.g. a revoked
        token): where an order ships from, or that a node shipped it with tracking."""
        items = []
        for row in handoff_store.handoffs(self.store, self.shop.id, statuses=["failed"]):
            order = self.store.order(self.shop.id, row["order_id"])
            number = order.number if order is not None else row["order_id"]
            told = (f"that {self._node(row['node_id'])} shipped it" if row["kind"] == handoff_store.SHIPMENT
                    else "where it ships from")
            items.append(self._item(
                "handoff_failed", f"handoff_failed:{row['order_id']}:{row['kind']}:{row['node_id']}",
                f"Order {number}: your store was not told {told}",
                f"{_sentence(re.sub(r'^[A-Za-z]+Error: ', '', row['last_error'] or ''))} The connector stopped "
                "trying after the store said no. "
                "Try again once the cause is fixed (the app's access restored, the order still open).",
                parse_ts(row["updated_at"]),
                (Action("Try again", "packing.retry_handoff", {"order_id": row["order_id"]},
                        cli=f"connector handoff --shop {self.shop.id} --retry {row['order_id']}"),)))
        return items

    # ------------------------------------------------------------ hand-offs to 3PLs

    def forwarding(self) -> list[Attention]:
        items = []
        for job in self.sql.forward_problems(self.shop.id, self.settings.scheduler.forward_max_attempts):
            order = job["number"] or job["order_id"]
            where = f"{job['provider']} ({self._node(job['node_id'])})"
            if job["status"] == "failed":
                kind, label = "forward_failed", "Try again"
                title = f"Order {order} was not handed to {where}"
                detail = (f"It failed after {plural(job['attempts'], 'attempt')}: {job['last_error']}. Once the cause "
                          f"is fixed, try again: {job['provider']} is asked first whether it already has the order, "
                          "so it is never sent twice.")
            else:
                kind, label = "forward_unknown", "Look up now"
                title = f"Nobody knows yet whether {where} has order {order}"
                detail = (f"After {plural(job['attempts'], 'attempt')} {job['provider']} could not be asked: "
                          f"{job['last_error']}. It is asked again at {self._when(job['next_attempt_at'])}; "
                          "the order is sent only if it turns out not to be there.")
            items.append(self._item(
                kind, f"{kind}:{job['id']}", title, detail, parse_ts(job["created_at"]),
                (Action(label, "actions.retry_forward", {"job_id": job["id"]},
                        cli=self._cli(f"forward retry {job['id']}")),)))
        return items

    def amendments(self) -> list[Attention]:
        by_job: dict[int, list[dict]] = {}
        for note in self.store.open_amendments(self.shop.id):
            by_job.setdefault(note["job_id"], []).append(note)
        items = []
        for job_id, notes in by_job.items():
            first = notes[0]
            changes = "; ".join(
                f"{n['sku']}: it has {n['sent']}, the order now wants {n['wanted']}" if n["wanted"] else
                f"{n['sku']}: it has {n['sent']}, the order no longer wants it (cancelled or removed)"
                for n in notes)
            items.append(self._item(
                "amendment", f"amendment:{job_id}",
                f"{first['provider']} still has the old order {first['number'] or first['order_id']}",
                f"{first['provider']} order {first['provider_order_id']} ({self._node(first['node_id'])}) was sent "
                f"before the order changed — {changes}. Change it at {first['provider']}, then mark it done.",
                min(parse_ts(n["noted_at"]) for n in notes),
                (Action("Mark done", "actions.amendment_done", {"job_id": job_id},
                        cli=f"connector forward amended {job_id}",
                        confirm=f"Is {first['provider']}'s order changed to match?"),)))
        return items

    # ------------------------------------------------------------ stock syncs

    def syncs(self) -> list[Attention]:
        """Per 3PL connection or feed: its sync failing, or its stock older than
        ``[sync] stale_after_minutes`` (routing then discounts or leaves it out)."""
        state = self.store.sync_state(self.shop.id)
        max_age = timedelta(minutes=self.settings.sync.stale_after_minutes)
        failing: dict[str, list[str]] = {}
        stale: dict[str, list[str]] = {}
        for node_id, source in sorted(self.shop.sources.items()):
            if not source.provider or node_id not in self.shop.network.nodes:
                continue
            synced = state.get(node_id, {})
            last_ok = parse_ts(synced.get("last_ok_at"))
            if synced.get("last_error"):
                failing.setdefault(source.provider, []).append(node_id)
            elif last_ok is None or self.now - last_ok > max_age:
                stale.setdefault(source.provider, []).append(node_id)
        treat = ("leaves it out" if self.settings.sync.stale_policy == "exclude"
                 else f"counts only {self.settings.sync.stale_discount:.0%} of it")
        items = []
        for provider, nodes in failing.items():
            oks = [parse_ts(state[n].get("last_ok_at")) for n in nodes]
            last_ok = None if None in oks else min(oks)
            errors = " | ".join(dict.fromkeys(state[n]["last_error"] for n in nodes))
            names = ", ".join(map(self._node, nodes))
            items.append(self._item(
                "sync_failing", f"sync_failing:{provider}",
                f"Stock from {provider} is failing to sync ({names})",
                f"The last attempt ({self._when(max(state[n]['last_attempt_at'] for n in nodes))}) failed: {errors}. "
                f"The stock from the last good sync ({self._when(last_ok)}) is kept; once it is older than "
                f"{self.settings.sync.stale_after_minutes} minutes routing {treat}.",
                last_ok, (self._sync_action(provider),)))
        for provider, nodes in stale.items():
            oks = [parse_ts(state.get(n, {}).get("last_ok_at")) for n in nodes]
            last_ok = None if None in oks else min(oks)
            names = ", ".join(map(self._node, nodes))
            age = ("has never been synced" if last_ok is None else f"was last synced {self._when(last_ok)}, more "
                   f"than {self.settings.sync.stale_after_minutes} minutes ago")
            items.append(self._item(
                "sync_stale", f"sync_stale:{provider}", f"Stock at {names} is out of date",
                f"Its stock from {provider} {age}, so routing {treat}. Is the scheduler running? Sync now "
                "fetches it.",
                last_ok, (self._sync_action(provider),)))
        return items

    def _sync_action(self, provider: str) -> Action:
        return Action("Sync now", "actions.sync", {"provider_id": provider}, cli=self._cli(f"sync --provider {provider}"))

    # ------------------------------------------------------------ transfers

    def transfers(self) -> list[Attention]:
        items = []
        for t in self.store.transfers(self.shop.id, ("proposed", "approved", "in_transit")):
            tid, what = t["id"], f"{t['units']} × {t['sku']}"
            source, destination = self._node(t["from_node"]), self._node(t["to_node"])
            reject = Action("Reject", "actions.transfer", {"transfer_id": tid, "step": "reject"},
                            cli=f"connector transfers reject {tid} --note TEXT",
                            inputs=(ActionInput("note", "Why (optional)"),))
            if t["status"] == "proposed":
                items.append(self._item(
                    "transfer_approval", f"transfer_approval:{tid}",
                    f"Move {what} from {source} to {destination}? (transfer #{tid})",
                    f"It waits for your approval: {_sentence(t['approval_reason'])}",
                    parse_ts(t["created_at"]),
                    (Action("Approve", "actions.transfer", {"transfer_id": tid, "step": "approve"},
                            cli=f"connector transfers approve {tid}"), reject)))
            elif t["status"] == "approved":
                items.append(self._item(
                    "transfer_to_ship", f"transfer_to_ship:{tid}",
                    f"Send {what} from {source} to {destination} (transfer #{tid})",
                    f"Approved{' by ' + t['decided_by'].removeprefix('web:') if t['decided_by'] else ''}. Mark it "
                    "shipped when it leaves: its units come off the sending node's stock then (never more than it "
                    "can spare).",
                    parse_ts(t["updated_at"]),
                    (Action("Mark shipped", "actions.transfer", {"transfer_id": tid, "step": "ship"},
                            cli=f"connector transfers ship {tid} --units N",
                            inputs=(ActionInput("units", "Units", "number", str(t["units"]), True, 1),)), reject)))
            else:
                shipped = parse_ts(t["shipped_at"]) or parse_ts(t["updated_at"])
                due = shipped + timedelta(days=t["lead_days"] or 0)
                if self.now < due:  # on its way: nothing to do before it can have arrived
                    continue
                items.append(self._item(
                    "transfer_to_receive", f"transfer_to_receive:{tid}",
                    f"Has {what} reached {destination}? (transfer #{tid})",
                    f"It left {source} {self._when(shipped)} and was due by {self._when(due)}. Mark it received "
                    f"when it is there: the units count at {destination} from then on.",
                    due, (Action("Mark received", "actions.transfer", {"transfer_id": tid, "step": "receive"},
                                 cli=f"connector transfers receive {tid}"),)))
        return items

    # ------------------------------------------------------------ stock

    def over_reserved(self) -> list[Attention]:
        items = []
        for row in self.sql.over_reserved(self.shop.id):
            node_id, sku = row["node_id"], row["sku"]
            source = self.shop.sources.get(node_id)
            name = self._node(node_id)
            movable = row["reserved"] - row["at_3pl"]
            parts = [f"Orders reserved {row['reserved']} × {sku} at {name}, which now holds {row['available']}."]
            actions = []
            if row["at_3pl"]:
                parts.append(f"{row['at_3pl']} of them are for orders {source.provider if source else 'the 3PL'} "
                             "already has: check it can ship them (see `connector drift`).")
            if movable > 0:
                parts.append("Moving the newest orders elsewhere routes them again (to another node, or to you "
                             "when none can take them).")
                actions.append(Action("Move the newest orders elsewhere", "actions.resolve_over_reserved",
                                      {"node_id": node_id}, cli=self._cli(f"stock resolve {node_id}")))
            if source is not None and not source.provider:
                parts.append("If the count is wrong, count again.")
                actions.append(Action("Save count", "actions.count", {"node_id": node_id, "sku": sku},
                                      cli=self._cli(f"stock set {node_id} {sku} QUANTITY"),
                                      inputs=(ActionInput("quantity", f"Units of {sku} at {name}", "number",
                                                          str(row["available"]), True, 0),)))
            items.append(self._item(
                "over_reserved", f"over_reserved:{node_id}:{sku}",
                f"{name} holds {row['available']} of {sku} but {row['reserved']} are reserved",
                " ".join(parts), None, tuple(actions)))
        return items

    # ------------------------------------------------------------ the store's webhooks

    def store_webhooks(self) -> list[Attention]:
        poll = self.store.order_poll(self.shop.id)
        problems = json.loads((poll or {}).get("webhook_problems") or "[]")
        if not problems:
            return []
        since = next(iter(self.store.events(self.shop.id, "webhooks.unhealthy", limit=1)), None)
        detail = " ".join(_sentence(p) for p in problems)
        return [self._item(
            "webhook_disabled", "webhook_disabled",
            f"Your store is not sending {'an order change' if len(problems) == 1 else 'order changes'} by webhook",
            f"{detail} Until then orders arrive only when they are read back from the store, minutes late.",
            parse_ts(since["at"]) if since else None,
            (Action("Repair webhooks", "actions.repair_webhooks", {}, cli=self._cli("webhooks repair")),
             Action("Check again", "actions.reconcile", {}, cli=self._cli("reconcile"))))]

    def failed_deliveries(self) -> list[Attention]:
        failed = self.sql.failed_deliveries(self.shop.id)
        if not failed:
            return []
        shown = "; ".join(
            f"#{h['id']} {h['topic']} (failed after {plural(h['attempts'], 'attempt')}: {h['last_error']})"
            if h["status"] == "failed" else f"#{h['id']} {h['topic']} (could not be read: {h['last_error']})"
            for h in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        retry = any(h["status"] == "failed" for h in failed)
        advice = ("Their order changes are not applied until they are processed: try again once the cause is "
                  "fixed." if retry else "Trying again would not help: the order is read whole again with its "
                  "next change in the store.")
        return [self._item(
            "webhooks_failed", "webhooks_failed",
            f"{plural(len(failed), 'delivery', 'deliveries')} from your store could not be processed",
            f"{shown}{more}. {advice}", min(parse_ts(h["received_at"]) for h in failed),
            (Action("Try again", "actions.retry_webhooks", {}, cli=self._cli("webhooks retry")),) if retry else ())]

    def refund_lookups(self) -> list[Attention]:
        items = []
        for row in self.sql.refund_lookup_problems(self.shop.id):
            order = row["number"] or row["order_id"]
            items.append(self._item(
                "refund_lookup_failed", f"refund_lookup_failed:{row['order_id']}",
                f"A refund on order {order} is not applied",
                f"Which lines refund {row['refund_ids']} covers could not be read from the store after "
                f"{plural(row['attempts'], 'attempt')}: {row['last_error']}. Until it is read, the refunded "
                "items may still ship.", parse_ts(row["requested_at"]),
                (Action("Try again", "actions.retry_refund", {"order_id": row["order_id"]},
                        cli=self._cli(f"refunds retry {row['order_id']}")),)))
        return items

    def reconciliation(self) -> list[Attention]:
        poll = self.store.order_poll(self.shop.id)
        if not poll or not poll["last_error"]:
            return []
        last_ok = parse_ts(poll["last_ok_at"])
        since_text = f"since {self._when(last_ok)}" if last_ok else "yet"
        return [self._item(
            "reconcile_failing", "reconcile_failing",
            f"Orders have not been read back from your store {since_text}",
            f"{plural(poll['failures'], 'run')} in a row failed: {poll['last_error']}. An order whose webhook "
            "was missed meanwhile is not caught until a run succeeds.",
            last_ok or parse_ts(poll["last_attempt_at"]),
            (Action("Check now", "actions.reconcile", {}, cli=self._cli("reconcile")),))]


def _without_code(explanation: str, code: str) -> str:
    """Routing's explanation without the reason code it starts with (the title says the reason)."""
    return explanation[len(code) + 2:] if explanation.startswith(f"{code}: ") else explanation


def _sentence(text: str | None) -> str:
    """``text`` as a sentence: a capital first letter (unless it starts with a name such
    as a node id, "ne-micro holds ..."), a full stop at the end."""
    text = (text or "").strip()
    if not text:
        return ""
    if text.split(" ", 1)[0].isalpha():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
