"""PRODUCER_RATE on an absolute schedule: event k is due at start + k / rate.

Counting from a fixed start (instead of sleeping 1/rate after each send) means late wake-ups,
GC pauses and slow sends never accumulate into drift: whatever is due is sent in the next
burst. Bursts are capped, and when sending falls further behind than `max_lag_s` (Kafka down
for a while) the missed samples are skipped, counted and logged instead of being fired all at
once afterwards: a GPU sample not taken is not data lost, a flood would be.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateSchedule:
    def __init__(
        self,
        rate: float,
        *,
        burst: int = 1000,
        max_lag_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.unbounded = not math.isfinite(rate)
        self.burst = burst
        self._clock = clock
        self._start = clock()
        self._issued = 0
        self._max_lag = max(burst, int(rate * max_lag_s)) if not self.unbounded else 0
        self.skipped = 0

    @property
    def issued(self) -> int:
        return self._issued

    def due(self) -> int:
        """How many events to send now (at most one burst); skips what is hopelessly late."""
        if self.unbounded:
            return self.burst
        owed = int((self._clock() - self._start) * self.rate) + 1 - self._issued
        if owed > self._max_lag:
            skip = owed - self.burst
            self._issued += skip
            self.skipped += skip
            owed = self.burst
        return max(0, min(owed, self.burst))

    def sent(self, n: int) -> None:
        self._issued += n

    def delay(self) -> float:
        """Seconds until the next event is due (0 when already due)."""
        if self.unbounded:
            return 0.0
        return max(0.0, self._start + self._issued / self.rate - self._clock())
