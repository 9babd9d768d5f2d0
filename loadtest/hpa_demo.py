"""The load shape of the HPA demo: ramp up, hold, spike, then back down, about 12 minutes.

`locust -f loadtest` picks it up; the processor's HPA (CPU, 1..6 replicas) scales out during
the hold and spike and, after its scale-down stabilisation window, back in.
"""

from __future__ import annotations

from locust import LoadTestShape
from users import DashboardUser, IngestUser

# (seconds since start at which the stage ends, users, spawn rate per second)
STAGES: list[tuple[int, int, float]] = [
    (60, 10, 2),  # warm up: one replica copes
    (180, 60, 5),  # ramp: CPU passes the HPA target
    (420, 60, 5),  # hold: replicas settle
    (480, 120, 20),  # spike
    (600, 20, 10),  # back down: scale-down waits for the stabilisation window
    (720, 0, 10),  # drain
]


class HpaDemo(LoadTestShape):
    use_common_options = True

    def tick(self) -> tuple[int, float, list[type]] | None:
        elapsed = self.get_run_time()  # type: ignore[no-untyped-call]
        for end, users, rate in STAGES:
            if elapsed < end:
                return users, rate, [IngestUser, DashboardUser]
        return None
