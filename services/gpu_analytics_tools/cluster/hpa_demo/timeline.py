"""The timeline of a run: one row per poll, the HPA and the Deployment beside the load Locust
applied then (timeline.csv)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from gpu_analytics_tools.cluster.hpa_demo.record import DemoError, LoadSample, Poll

TIMELINE_COLUMNS = (
    "elapsed_s",
    "time",
    "users",
    "rps",
    "failures_per_s",
    "p95_ms",
    "cpu_pct",
    "cpu_target_pct",
    "desired_replicas",
    "current_replicas",
    "ready_replicas",
)


# --- timeline and summary ----------------------------------------------------------------


@dataclass(frozen=True)
class TimelineRow:
    elapsed_s: float  # since Locust started
    time: str  # UTC, ISO 8601
    users: int | None
    rps: float | None
    failures_per_s: float | None
    p95_ms: float | None
    cpu_pct: int | None  # the HPA's `cpu: 143%/70%`: average utilization of the requests
    cpu_target_pct: int | None
    desired_replicas: int | None
    current_replicas: int | None
    ready_replicas: int | None


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge(
    polls: Sequence[Poll],
    samples: Sequence[LoadSample],
    start: float,
    load_end: float | None = None,
    max_age: float = 15.0,
) -> list[TimelineRow]:
    """One row per poll, with the last Locust sample at or before it (none older than
    `max_age` s). Polls after `load_end` (Locust gone) read 0 users and 0 requests/s."""
    rows: list[TimelineRow] = []
    index = 0
    latest: LoadSample | None = None
    for poll in sorted(polls, key=lambda p: p.time):
        while index < len(samples) and samples[index].time <= poll.time:
            latest = samples[index]
            index += 1
        sample = latest if latest is not None and poll.time - latest.time <= max_age else None
        users: int | None = None if sample is None else sample.users
        rps: float | None = None if sample is None else sample.rps
        fails: float | None = None if sample is None else sample.failures_per_s
        p95 = None if sample is None else sample.p95_ms
        if load_end is not None and poll.time >= load_end:
            users, rps, fails, p95 = 0, 0.0, 0.0, None
        elif sample is None and (not samples or poll.time < samples[0].time):
            users, rps, fails = 0, 0.0, 0.0  # before Locust's first row
        hpa, deploy = poll.hpa, poll.deployment
        rows.append(
            TimelineRow(
                elapsed_s=round(poll.time - start, 1),
                time=_utc(poll.time),
                users=users,
                rps=rps,
                failures_per_s=fails,
                p95_ms=p95,
                cpu_pct=hpa.cpu_pct if hpa else None,
                cpu_target_pct=hpa.cpu_target_pct if hpa else None,
                desired_replicas=hpa.desired_replicas if hpa else None,
                current_replicas=hpa.current_replicas if hpa else None,
                ready_replicas=deploy.ready_replicas if deploy else None,
            )
        )
    return rows


def write_timeline(rows: Sequence[TimelineRow], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(TIMELINE_COLUMNS)
        for row in rows:
            values = asdict(row)
            writer.writerow(["" if values[c] is None else values[c] for c in TIMELINE_COLUMNS])


def read_timeline(path: Path) -> list[TimelineRow]:
    """timeline.csv back to rows (what a plot of an earlier run reads)."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != TIMELINE_COLUMNS:
            raise DemoError(f"{path}: columns {reader.fieldnames}, expected {TIMELINE_COLUMNS}")
        rows = []
        for record in reader:

            def num(name: str, record: dict[str, str] = record) -> float | None:
                return None if record[name] == "" else float(record[name])

            def whole(name: str, record: dict[str, str] = record) -> int | None:
                return None if record[name] == "" else int(record[name])

            rows.append(
                TimelineRow(
                    elapsed_s=float(record["elapsed_s"]),
                    time=record["time"],
                    users=whole("users"),
                    rps=num("rps"),
                    failures_per_s=num("failures_per_s"),
                    p95_ms=num("p95_ms"),
                    cpu_pct=whole("cpu_pct"),
                    cpu_target_pct=whole("cpu_target_pct"),
                    desired_replicas=whole("desired_replicas"),
                    current_replicas=whole("current_replicas"),
                    ready_replicas=whole("ready_replicas"),
                )
            )
    return rows
