"""``chunked``: a sequence in consecutive slices of at most ``size`` items (the API
batch limits, SQLite's bound-parameter limit). ``itertools.batched`` arrives in
Python 3.12; the project supports 3.11."""
from __future__ import annotations

from typing import Iterator, Sequence, TypeVar

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[list[T]]:
    if size < 1:
        raise ValueError("size must be at least 1")
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
