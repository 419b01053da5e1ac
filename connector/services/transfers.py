"""A transfer's life after the plan: approve or reject, ship, receive.

proposed -> approved -> in_transit -> received, or rejected (from proposed or
approved). Each step only moves on from the status the caller saw, so two
people approving at once change it once. Every step is in the audit log with
who did it.

Stock moves with the transfer: shipping takes the units off the source node,
receiving puts them on the destination — in transit they are counted nowhere
sellable, so the storefront never promises them from either end. A node whose
stock comes from a 3PL gets its true figure back at its next sync; the
adjustment only bridges the gap until then. A received transfer asks for a
push of that SKU straight away.

Shipping never takes more than the source can spare now (available minus what
orders have reserved there; a recount or sync may have found fewer units than
the plan saw), so moving stock never adds any to the network: short of the
planned units, nothing ships and the error says how many could, and a person
may ship those (``units``), which is then what the transfer carries.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from connector.inventory_store import InventoryStore
from connector.services.stock import StockArrived
from connector.store import Store

# action -> (statuses it may start from, status it leads to)
TRANSITIONS = {
    "approve": (("proposed",), "approved"),
    "reject": (("proposed", "approved"), "rejected"),
    "ship": (("approved",), "in_transit"),
    "receive": (("in_transit",), "received"),
}


class TransferError(Exception):
    """A step that cannot be taken; the message says why, for the person who tried."""


class Transfers:
    def __init__(self, clock: Callable[[], datetime], stock_arrived: StockArrived | None = None):
        self.clock = clock
        self.stock_arrived = stock_arrived  # routes exception lines the received units can ship

    def approve(self, store: Store, transfer_id: int, by: str) -> dict:
        return self._step(store, transfer_id, "approve", by)

    def reject(self, store: Store, transfer_id: int, by: str, note: str | None = None) -> dict:
        return self._step(store, transfer_id, "reject", by, note)

    def ship(self, store: Store, transfer_id: int, by: str, units: int | None = None) -> dict:
        """Ship the planned units, or ``units`` of them; never more than the source can
        spare now (what it holds minus what orders have reserved there), which may be
        less than at planning time after a recount or a sync. Short of that, nothing
        ships and the error says how many could: a person decides to ship those."""
        return self._step(store, transfer_id, "ship", by, units=units)

    def receive(self, store: Store, transfer_id: int, by: str) -> dict:
        return self._step(store, transfer_id, "receive", by)

    def _step(self, store: Store, transfer_id: int, action: str, by: str, note: str | None = None,
              units: int | None = None) -> dict:
        allowed, status = TRANSITIONS[action]
        now = self.clock()
        with store.write():
            transfer = store.transfer(transfer_id)
            if transfer is None:
                raise TransferError(f"no transfer {transfer_id}")
            if transfer["status"] not in allowed:
                raise TransferError(f"transfer {transfer_id} is {transfer['status']}; "
                                    f"only a {' or '.join(allowed)} transfer can be {_past(action)}")
            shop_id, sku, planned = transfer["shop_id"], transfer["sku"], transfer["units"]
            if action == "ship":
                units = _units_to_ship(store, transfer, units)
            else:
                units = planned
            store.set_transfer_status(transfer_id, expected=transfer["status"], status=status, now=now, by=by,
                                      note=note, units=units)
            if action == "ship":
                store.adjust_stock(shop_id, transfer["from_node"], sku, -units, "transfer", now)
                InventoryStore(store).stock_changed(shop_id, rows=[(transfer["from_node"], sku)])
            elif action == "receive":
                store.adjust_stock(shop_id, transfer["to_node"], sku, units, "transfer", now)
                InventoryStore(store).stock_changed(shop_id, rows=[(transfer["to_node"], sku)])
                store.request_push(shop_id, [sku], "transfer received", now, now)
                if self.stock_arrived is not None:
                    self.stock_arrived(store, shop_id, [transfer["to_node"]], [sku],
                                       f"transfer #{transfer_id} received", now)
            store.event(shop_id, f"transfer.{status}", str(transfer_id),
                        {"sku": sku, "from": transfer["from_node"], "to": transfer["to_node"], "units": units,
                         "planned": planned, "by": by, "note": note}, now)
        return store.transfer(transfer_id)


def _units_to_ship(store: Store, transfer: dict, units: int | None) -> int:
    """The units this shipment takes off the source: never more than it can spare, so
    moving stock never adds any to the network."""
    source, sku, planned = transfer["from_node"], transfer["sku"], transfer["units"]
    if units is not None and not 1 <= units <= planned:
        raise TransferError(f"transfer {transfer['id']}: ship at least 1 unit and at most the {planned} "
                            f"that were planned, not {units}")
    wanted = planned if units is None else units
    available = store.stock_level(transfer["shop_id"], source, sku) or 0
    spare = store.sellable(transfer["shop_id"], [sku]).get((source, sku), 0)
    if wanted > spare:
        hint = (f"ship those with --units {spare}, or reject it" if spare else
                "reject it, or ship it after a recount or a sync finds the units")
        raise TransferError(f"transfer {transfer['id']}: {source} can spare {spare} of the {wanted} × {sku} "
                            f"({available} available, {available - spare} reserved for orders); nothing shipped; "
                            f"{hint}")
    return wanted


def _past(action: str) -> str:
    return {"approve": "approved", "reject": "rejected", "ship": "shipped", "receive": "received"}[action]
