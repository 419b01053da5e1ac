"""What every benchmark prints about the machine it ran on, and whether it was quiet,
and the local HTTP server the provider-simulating benchmarks serve from."""
from __future__ import annotations

import os
import platform
import sqlite3
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

from cryptography.fernet import Fernet

# Shops' secrets are stored encrypted. Every benchmark builds its own fresh database, so,
# like `connector demo`, it makes its own key when none is set (its subprocesses inherit it).
os.environ.setdefault("CONNECTOR_ENCRYPTION_KEYS", Fernet.generate_key().decode())


def cpu_idle_percent(seconds: float = 1.0) -> float:
    """Share of all CPUs idle over ``seconds`` (from /proc/stat): is anything else running?"""
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields[:8]), fields[3] + fields[4]
    try:
        total1, idle1 = sample()
        time.sleep(seconds)
        total2, idle2 = sample()
    except OSError:
        return float("nan")
    return 100.0 * (idle2 - idle1) / max(total2 - total1, 1)


def machine() -> str:
    model = mem = "?"
    try:
        model = next(l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                     if l.startswith("model name"))
        kib = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                   if l.startswith("MemTotal"))
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    return (f"nproc {os.cpu_count()}, CPU {model}, RAM {mem}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}")


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (an OS-chosen port) for the ``with`` block.
    ``handler`` may be given after construction, once it needs the port."""

    def __init__(self, name: str, handler=None):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=name, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
