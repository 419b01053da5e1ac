"""Test doubles shared by test modules (fixtures live in conftest.py)."""
from __future__ import annotations


class FakeClock:
    """monotonic / sleep / wall time in one: sleeping advances the clock, so retry and
    pacing code runs at full speed while the waits it asked for are recorded."""

    def __init__(self, start: float = 1000.0, wall: float = 1_767_225_600.0):
        self.start = start
        self.t = start
        self.wall = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def wall_time(self) -> float:
        return self.wall + (self.t - self.start)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def woocommerce_orders_factory(http_clock: FakeClock):
    """``build(woocommerce_orders_factory=...)``: the real WooCommerce orders client for
    WooCommerce shops (test keys), sleeping on ``http_clock``; None for other shops."""
    from adapters.woocommerce_orders import WooCommerceOrders

    def orders_client(shop):
        if shop.platform != "woocommerce":
            return None
        return WooCommerceOrders(shop.store_url, "ck_test", "cs_test", sleep=http_clock.sleep,
                                 monotonic=http_clock.monotonic)

    return orders_client


def chunked(body: bytes, size: int = 64) -> bytes:
    """``body`` as HTTP/1.1 chunks of ``size`` bytes, without the final 0-chunk."""
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size))


# Chunked framings of a body that no dechunker may accept (werkzeug's and gunicorn's
# both refuse each), by name: framing(body) -> the bytes on the wire.
MALFORMED_CHUNKED = {
    "bad-chunk-size": lambda body: b"zz\r\n" + body + b"\r\n0\r\n\r\n",
    "negative-chunk-size": lambda body: b"-5\r\n" + body + b"\r\n0\r\n\r\n",
    "chunk-cut-short": lambda body: b"%x\r\n" % (len(body) + 40) + body,
    "no-final-chunk": chunked,
    "chunk-without-terminator": lambda body: b"%x\r\n" % len(body) + body + b"XX0\r\n\r\n",
    "empty-stream": lambda body: b"",
}
