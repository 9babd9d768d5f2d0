"""PRODUCER_RATE on an absolute schedule, driven by a fake clock (no sleeping in these tests)."""

from __future__ import annotations

import math
import random

from gpu_analytics.producer.schedule import RateSchedule
from gpu_analytics_tools.testing.producer import SEED


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_late_wake_ups_do_not_drift() -> None:
    clock, rng = FakeClock(), random.Random(SEED)
    schedule = RateSchedule(500, clock=clock)
    sent = 0
    while clock.now < 1030:
        n = schedule.due()
        schedule.sent(n)
        sent += n
        # Sleep what the schedule asks for, and wake up late by up to 5 ms like a busy loop.
        clock.now += max(schedule.delay(), 0.0001) + rng.uniform(0, 0.005)

    elapsed = clock.now - 1000
    assert abs(sent - 500 * elapsed) <= 3  # the catch-up bursts make up every late wake-up
    assert schedule.skipped == 0


def test_first_event_is_due_at_once_and_the_next_one_a_period_later() -> None:
    clock = FakeClock()
    schedule = RateSchedule(10, clock=clock)

    assert schedule.due() == 1
    schedule.sent(1)
    assert schedule.due() == 0
    assert math.isclose(schedule.delay(), 0.1)
    clock.now += 0.35
    assert schedule.due() == 3


def test_bursts_are_capped() -> None:
    clock = FakeClock()
    schedule = RateSchedule(100_000, burst=1000, max_lag_s=2, clock=clock)
    clock.now += 0.5

    assert schedule.due() == 1000
    schedule.sent(1000)
    assert schedule.delay() == 0  # more is due: the loop goes on without sleeping


def test_far_behind_skips_and_counts_instead_of_flooding() -> None:
    clock = FakeClock()
    schedule = RateSchedule(100, burst=50, max_lag_s=2, clock=clock)
    schedule.sent(schedule.due())
    clock.now += 60  # e.g. Kafka took nothing for a minute

    due = schedule.due()

    assert due == 50
    assert schedule.skipped == 6001 - 1 - 50
    schedule.sent(due)
    assert schedule.due() == 0  # back on schedule from here


def test_unbounded_rate_never_waits() -> None:
    schedule = RateSchedule(math.inf, burst=256, clock=FakeClock())

    assert schedule.due() == 256
    schedule.sent(256)
    assert schedule.delay() == 0
