"""Group commit for the webhook inbox: the deliveries a web process receives at
about the same time are stored in one transaction, so they share one fsync.

Every acknowledged webhook must be committed with ``synchronous=FULL`` first, and
that fsync'd commit, serialised by SQLite's write lock, is most of what a
webhook costs. ``GroupCommit`` groups them with no thread of its own (leader and
followers, as LevelDB's write path does): the request that finds no commit under
way leads. It takes its own row and whatever other requests queued, at most
``max_rows``, inserts them in one transaction (a failing row is undone alone)
on the process's one writer connection, commits, and only then wakes each
follower with its (inbox id, duplicate?). Requests arriving meanwhile queue up;
the leader hands over to the first of them, which leads the next group. When
the commit fails every request of that group gets ``NotStored`` (the web
answers 503 and the platform redelivers), never a result.

Why no writer thread: a hand-off to one costs a thread wake-up (and a turn of
the GIL) per group on top of the wake-up of every waiting request; a lone
request then commits in its own thread with no hand-off at all.

Acknowledged means committed: a process killed at any moment loses only rows
no one was told were stored. A follower that gives up waiting
(``answer_timeout_seconds``) withdraws its row when no leader has taken it yet;
if one has, the row may still be committed after the 503, and the redelivery is
then a duplicate, stored and processed once. A leader does not give up: it is
the one committing, bounded by the store's busy timeout.

``CommitAlone`` is the group of one, in the calling thread, for servers that run
one request at a time per process (gunicorn sync workers): nothing could join
its group, so it needs neither the queue nor the shared connection.
"""
from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
from typing import Any, Callable

from connector.store import Store

log = logging.getLogger("connector.group_commit")


class NotStored(Exception):
    """The delivery is not known to be committed: answer 503, never 200."""


class CommitAlone:
    """Commits each delivery in its own transaction, in the calling thread."""

    def __init__(self, store: Store):
        self._store = store

    def insert_webhook(self, **row: Any) -> tuple[int, bool]:
        try:
            return self._store.insert_webhook(**row)
        except Exception as exc:  # noqa: BLE001 - the store failed: retryable, not a 500
            log.exception("storing a webhook failed; it is answered 503")
            raise NotStored("the delivery could not be stored") from exc


# A follower's way through: queued, then either taken into a leader's group or
# made the next leader.
_QUEUED, _TAKEN, _LEADS = 0, 1, 2


class _Waiter:
    __slots__ = ("row", "done", "state", "result", "error")

    def __init__(self, row: dict[str, Any]):
        self.row = row
        # Held from the start; released once the answer is in, or to make this
        # request the leader. A bare lock is CPython's cheapest one-shot signal: a
        # threading.Event is a Condition whose wait() and set() run Python code
        # and take a second lock.
        self.done = threading.Lock()
        self.done.acquire()
        self.state = _QUEUED
        self.result: tuple[int, bool] | Exception | None = None
        self.error: Exception | None = None


class GroupCommit:
    def __init__(self, open_store: Callable[[], Store], *, max_rows: int, max_wait_seconds: float,
                 queue_size: int, answer_timeout_seconds: float):
        self._open_store = open_store
        self._max_rows = max_rows
        self._max_wait = max_wait_seconds
        self._queue_size = queue_size
        self._answer_timeout = answer_timeout_seconds
        self._queue: collections.deque[_Waiter] = collections.deque()
        # Guards the queue, the leading flag and the waiters' states; a leader
        # waiting for more rows (max_wait) waits on it.
        self._cond = threading.Condition(threading.Lock())
        self._leading = False
        self._stopping = False
        self._store: Store | None = None  # the writer connection; only a leader touches it

    def insert_webhook(self, **row: Any) -> tuple[int, bool]:
        """Like ``Store.insert_webhook``, returning only after the commit of the
        row's group returned; raises ``NotStored`` when it cannot say that."""
        waiter = _Waiter(row)
        with self._cond:
            if self._stopping:
                raise NotStored("the web process is shutting down")
            if not self._leading:
                self._leading = True
                waiter.state = _LEADS
            elif len(self._queue) >= self._queue_size:
                raise NotStored("too many deliveries waiting to be stored")
            else:
                self._queue.append(waiter)
                if self._max_wait:
                    self._cond.notify()
        if waiter.state != _LEADS and not self._wait(waiter):
            raise NotStored("not stored in time")
        if waiter.state == _LEADS:
            self._lead(waiter)
        if waiter.error is not None:
            raise NotStored("the delivery could not be stored") from waiter.error
        if isinstance(waiter.result, Exception):  # this row alone failed; the rest of its group is stored
            log.error("storing a webhook failed; it is answered 503", exc_info=waiter.result)
            raise NotStored("the delivery could not be stored") from waiter.result
        return waiter.result

    def _wait(self, waiter: _Waiter) -> bool:
        """Wait as a follower: True once answered or made leader; False when it gave up."""
        if waiter.done.acquire(timeout=self._answer_timeout):
            return True
        with self._cond:
            if waiter.state == _QUEUED:  # no leader took it: withdrawn, never stored
                self._queue.remove(waiter)
                return False
        if waiter.state == _LEADS:  # made leader just now; the release follows at once
            waiter.done.acquire()
            return True
        return waiter.done.acquire(blocking=False)  # taken: answered by now, or in a commit under way

    def _lead(self, own: _Waiter) -> None:
        """Commit ``own`` with the rows queued behind it, answer them, hand over."""
        with self._cond:
            if self._max_wait and len(self._queue) + 1 < self._max_rows and not self._stopping:
                deadline = time.monotonic() + self._max_wait
                while len(self._queue) + 1 < self._max_rows and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
            group = [own]
            for _ in range(min(self._max_rows - 1, len(self._queue))):
                follower = self._queue.popleft()
                follower.state = _TAKEN
                group.append(follower)
        try:
            self._commit(group)
        finally:
            with self._cond:
                successor = self._queue.popleft() if self._queue else None
                if successor is not None:
                    successor.state = _LEADS
                else:
                    self._leading = False
                    self._cond.notify_all()  # stop() may be waiting for the last group
            if successor is not None:
                successor.done.release()

    def _commit(self, group: list[_Waiter]) -> None:
        try:
            if self._store is None:
                self._store = self._open_store()
                atexit.register(self.stop)
            results = self._store.insert_webhooks([w.row for w in group])
        except Exception as exc:  # noqa: BLE001 - answer this group 503 and keep serving
            log.exception("storing a group of %d webhooks failed; each is answered 503", len(group))
            # A connection whose commit failed may be broken (I/O error, file
            # replaced): the next group opens a new one.
            self._close_store()
            for waiter in group:
                waiter.error = exc
            results = None
        for i, waiter in enumerate(group):
            if results is not None:
                waiter.result = results[i]
            if i:  # the leader is group[0], answering itself
                waiter.done.release()

    def stop(self, timeout: float = 10.0) -> None:
        """Refuse new deliveries, let the queued ones be stored, close the connection."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()  # a leader waiting for more rows commits what it has
            self._cond.wait_for(lambda: not self._leading, timeout)
            if not self._leading:
                self._close_store()

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
            atexit.unregister(self.stop)
