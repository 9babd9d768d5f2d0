"""Event ids: random UUID4 strings, never seeded.

A seeded fleet replays the same samples, but its events must still get fresh ids: the processor
stores each id once, so a replayed id would silently replace nothing and lose the new sample.
"""

from __future__ import annotations

import os

_BLOCK = 16 * 1024  # one getrandom() call per 1024 ids


class EventIds:
    """`next(ids)` -> a new UUID4 string; cheaper than `str(uuid.uuid4())` at high rates."""

    def __init__(self) -> None:
        self._hex = ""
        self._pos = 0

    def __iter__(self) -> EventIds:
        return self

    def __next__(self) -> str:
        pos = self._pos
        if pos >= len(self._hex):
            self._hex = os.urandom(_BLOCK).hex()
            pos = 0
        self._pos = pos + 32
        h = self._hex
        # Version 4 and the RFC 4122 variant (10xx) in their fixed positions.
        return (
            f"{h[pos : pos + 8]}-{h[pos + 8 : pos + 12]}-4{h[pos + 13 : pos + 16]}-"
            f"{_VARIANT[h[pos + 16]]}{h[pos + 17 : pos + 20]}-{h[pos + 20 : pos + 32]}"
        )


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
