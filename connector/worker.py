"""Drains the webhook inbox in a background thread of the web process, so a
webhook is answered as soon as it is stored and processed right after."""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("connector.worker")


class InboxWorker:
    def __init__(self, container, poll_seconds: float = 2.0, batch_window_seconds: float | None = None):
        self._container = container
        self._poll = poll_seconds
        if batch_window_seconds is None:
            batch_window_seconds = container.settings.web.inbox_batch_window_ms / 1000
        self._batch_window = batch_window_seconds
        self._batch_size = container.settings.web.inbox_batch_size
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inbox-worker", daemon=True)
            self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        store = self._container.open_store()
        try:
            while not self._stop.is_set():
                if self._wake.wait(self._poll) and self._batch_window:
                    self._stop.wait(self._batch_window)  # let the rest of a burst arrive first
                self._wake.clear()
                try:
                    self._container.inbox.process(store, batch_size=self._batch_size)
                except Exception:  # noqa: BLE001 - keep draining; the rows stay pending
                    log.exception("inbox drain failed; will retry")
        finally:
            store.close()
