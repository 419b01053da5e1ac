"""Group commit for the webhook inbox: the deliveries a web process receives at
about the same time are stored in one transaction, so they share one fsync.

Every acknowledged webhook must be committed with ``synchronous=FULL`` first, and
that fsync'd commit, serialised by SQLite's write lock, is most of what a
webhook costs. ``GroupCommit`` is one writer thread per process that owns a
connection; request threads hand it their row (``insert_webhook``, the same
call as ``Store.insert_webhook``, so ``Inbox.ingest`` takes either) and wait.
The writer takes whatever has queued up, at most ``max_rows``, inserts it in one
transaction (a failing row is undone alone), commits, and only then wakes each
waiting request with its (inbox id, duplicate?). When the commit fails every
request of that group gets ``NotStored`` (the web answers 503 and the platform
redelivers), never a result.

Acknowledged means committed: a process killed at any moment loses only rows
no one was told were stored. A request that gives up waiting (``NotStored``)
may still see its row committed later; the redelivery is then a duplicate,
stored and processed once.

Nothing runs until the first delivery: the thread starts then, in the process
that serves (gunicorn workers after the fork, also with ``--preload``, since the
master never serves a request). ``stop`` (also run at interpreter exit) stores
what is queued, then closes the connection.

``CommitAlone`` is the group of one, in the calling thread, for servers that run
one request at a time per process (gunicorn sync workers): nothing could join
its group, so a hand-off to a writer thread would be pure cost.
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


class _Waiter:
    __slots__ = ("row", "done", "result", "error")

    def __init__(self, row: dict[str, Any]):
        self.row = row
        # Held from the start; the writer releases it once the answer is in. A bare
        # lock is CPython's cheapest one-shot signal: a threading.Event is a
        # Condition whose wait() and set() run Python code and take a second lock.
        self.done = threading.Lock()
        self.done.acquire()
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
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def insert_webhook(self, **row: Any) -> tuple[int, bool]:
        """Like ``Store.insert_webhook``, returning only after the commit of the
        row's group returned; raises ``NotStored`` when it cannot say that."""
        waiter = _Waiter(row)
        with self._cond:
            if self._stopping:
                raise NotStored("the web process is shutting down")
            if len(self._queue) >= self._queue_size:
                raise NotStored("too many deliveries waiting to be stored")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="inbox-group-commit", daemon=True)
                self._thread.start()
                atexit.register(self.stop)
            self._queue.append(waiter)
            self._cond.notify()
        if not waiter.done.acquire(timeout=self._answer_timeout):
            raise NotStored("not stored in time")
        if waiter.error is not None:
            raise NotStored("the delivery could not be stored") from waiter.error
        if isinstance(waiter.result, Exception):  # this row alone failed; the rest of its group is stored
            log.error("storing a webhook failed; it is answered 503", exc_info=waiter.result)
            raise NotStored("the delivery could not be stored") from waiter.result
        return waiter.result

    def stop(self, timeout: float = 10.0) -> None:
        """Refuse new deliveries, store the queued ones, close the connection."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            atexit.unregister(self.stop)

    def _take(self) -> list[_Waiter]:
        """The next group: whatever is queued (after waiting for a first row, then
        up to ``max_wait`` for more), at most ``max_rows``; empty once stopped and drained."""
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return []
                self._cond.wait()
            if self._max_wait and len(self._queue) < self._max_rows and not self._stopping:
                deadline = time.monotonic() + self._max_wait
                while len(self._queue) < self._max_rows and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
            return [self._queue.popleft() for _ in range(min(self._max_rows, len(self._queue)))]

    def _run(self) -> None:
        store: Store | None = None
        try:
            while group := self._take():
                try:
                    if store is None:
                        store = self._open_store()
                    results = store.insert_webhooks([w.row for w in group])
                except Exception as exc:  # noqa: BLE001 - answer this group 503 and keep serving
                    log.exception("storing a group of %d webhooks failed; each is answered 503", len(group))
                    # A connection whose commit failed may be broken (I/O error, file
                    # replaced): the next group opens a new one.
                    if store is not None:
                        store.close()
                        store = None
                    for waiter in group:
                        waiter.error = exc
                        waiter.done.release()
                    continue
                for waiter, result in zip(group, results):
                    waiter.result = result
                    waiter.done.release()
        finally:
            if store is not None:
                store.close()
