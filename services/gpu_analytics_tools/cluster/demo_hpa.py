"""`gpu-analytics cluster demo-hpa` (make demo-hpa): the Locust HPA demo against a cluster,
recorded.

It port-forwards the processor's Service, runs `loadtest/` (users.py and the `HpaDemo` shape)
headless with `--csv`, polls `kubectl get hpa,deployment -o json` every `interval` seconds
during the load and after it (until the HPA is back at its minimum, or `settle` seconds), and
writes to the output folder:

| file | what |
|---|---|
| `run.json` | what ran: context, namespace, HPA, start and end of the load, exit codes |
| `polls.jsonl` | each poll as kubectl printed it: `{"time": epoch s, "output": <List>}` |
| `locust_stats_history.csv` | Locust's own history (one `Aggregated` row a second is read) |
| `timeline.csv` | one row per poll: users, RPS, p95, CPU against target, replicas |
| `summary.json`, `summary.txt` | time to first scale-up, peak replicas, time back to minimum |
| `replicas.png` | replicas against load |

The parsing, merging and summary are pure functions over those files, tested without a cluster
on output in the tools' exact formats (tests/loadtest/testdata/demo-hpa/: kubectl's recorded
from the cluster simulation's API server and HPA controller, Locust's from a real run, and a
whole run generated in those formats); `render` rebuilds the report from the raw record.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from gpu_analytics_tools.cluster.kube import Kubectl, KubeError, PortForward, find_kubectl
from gpu_analytics_tools.stack.paths import repo_root
from gpu_analytics_tools.stack.process import log_tail, spawn, stop_child

LOCUST_PREFIX = "locust"  # --csv prefix: locust_stats_history.csv and friends
HISTORY_FILE = f"{LOCUST_PREFIX}_stats_history.csv"
# What the timeline reads from Locust's stats history (locust/stats.py, StatsCSVFileWriter).
HISTORY_COLUMNS = (
    "Timestamp",
    "User Count",
    "Name",
    "Requests/s",
    "Failures/s",
    "95%",
    "Total Request Count",
    "Total Failure Count",
)
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


class DemoError(KubeError):
    """What stops the demo, in words a person can act on (kubectl's failures are KubeError)."""


# --- kubectl output ---------------------------------------------------------------------


@dataclass(frozen=True)
class HpaState:
    """One autoscaling/v2 HorizontalPodAutoscaler as `kubectl get hpa -o json` prints it."""

    name: str
    target: str  # spec.scaleTargetRef.name
    min_replicas: int
    max_replicas: int
    cpu_target_pct: int | None  # spec.metrics[Resource cpu].target.averageUtilization
    cpu_pct: int | None  # status.currentMetrics[Resource cpu].current.averageUtilization
    current_replicas: int | None
    desired_replicas: int | None  # None while the HPA cannot compute one (ScalingActive False)
    problem: str  # the first condition that is False, "" when none


@dataclass(frozen=True)
class DeploymentState:
    name: str
    replicas: int | None  # spec.replicas
    ready_replicas: int  # status.readyReplicas (absent: 0)


@dataclass(frozen=True)
class Objects:
    hpas: dict[str, HpaState]
    deployments: dict[str, DeploymentState]


def _required(obj: dict[str, Any], path: str, what: str) -> Any:
    value: Any = obj
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise DemoError(f"{what}: no {path}")
        value = value[key]
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DemoError(f"{what}: expected an integer, got {value!r}")
    return value


def _maybe_int(value: Any, what: str) -> int | None:
    return None if value is None else _int(value, what)


def _cpu_resource(metrics: Any) -> dict[str, Any]:
    for metric in metrics or []:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            return dict(resource)
    return {}


def parse_hpa(item: dict[str, Any]) -> HpaState:
    name = str(_required(item, "metadata.name", "HorizontalPodAutoscaler"))
    what = f"HorizontalPodAutoscaler {name}"
    if not str(item.get("apiVersion", "")).startswith("autoscaling/v2"):
        raise DemoError(f"{what}: apiVersion {item.get('apiVersion')!r}, not autoscaling/v2")
    spec = _required(item, "spec", what)
    status = item.get("status") or {}
    target = (_cpu_resource(spec.get("metrics")).get("target") or {}).get("averageUtilization")
    current = (_cpu_resource(status.get("currentMetrics")).get("current") or {}).get(
        "averageUtilization"
    )
    conditions = status.get("conditions") or []
    failing = [
        c for c in conditions if c.get("status") == "False" and c.get("type") != "ScalingLimited"
    ]
    problem = ""
    if failing:
        first = failing[0]
        problem = (
            f"{first.get('type')} False: {first.get('reason', '')}: {first.get('message', '')}"
        )
    cannot_compute = any(c.get("type") == "ScalingActive" for c in failing)
    desired = None if cannot_compute else status.get("desiredReplicas")
    return HpaState(
        name=name,
        target=str(_required(spec, "scaleTargetRef.name", what)),
        min_replicas=_int(spec.get("minReplicas", 1), f"{what}: spec.minReplicas"),
        max_replicas=_int(_required(spec, "maxReplicas", what), f"{what}: spec.maxReplicas"),
        cpu_target_pct=_maybe_int(target, f"{what}: cpu target averageUtilization"),
        cpu_pct=_maybe_int(current, f"{what}: cpu current averageUtilization"),
        current_replicas=_maybe_int(status.get("currentReplicas"), f"{what}: currentReplicas"),
        desired_replicas=_maybe_int(desired, f"{what}: desiredReplicas"),
        problem=problem.strip(),
    )


def parse_deployment(item: dict[str, Any]) -> DeploymentState:
    name = str(_required(item, "metadata.name", "Deployment"))
    what = f"Deployment {name}"
    status = item.get("status") or {}
    replicas = (item.get("spec") or {}).get("replicas")
    return DeploymentState(
        name=name,
        replicas=_maybe_int(replicas, f"{what}: spec.replicas"),
        ready_replicas=_int(status.get("readyReplicas", 0), f"{what}: status.readyReplicas"),
    )


def parse_objects(output: str | dict[str, Any]) -> Objects:
    """`kubectl get hpa -o json`, `get deploy -o json`, `get hpa,deployment -o json` (a List)
    or a single object, to the HPAs and Deployments in it; other kinds are skipped."""
    if isinstance(output, str):
        try:
            loaded = json.loads(output)
        except json.JSONDecodeError as exc:
            raise DemoError(f"kubectl output is not JSON ({exc}): {output[:200]!r}") from exc
    else:
        loaded = output
    if not isinstance(loaded, dict) or "kind" not in loaded:
        raise DemoError(f"kubectl output is not a Kubernetes object or List: {str(loaded)[:200]}")
    items = loaded.get("items") if loaded["kind"].endswith("List") else [loaded]
    if not isinstance(items, list):
        raise DemoError("kubectl output: a List without items")
    hpas: dict[str, HpaState] = {}
    deployments: dict[str, DeploymentState] = {}
    for item in items:
        kind = item.get("kind") if isinstance(item, dict) else None
        if kind == "HorizontalPodAutoscaler":
            hpa = parse_hpa(item)
            hpas[hpa.name] = hpa
        elif kind == "Deployment":
            deploy = parse_deployment(item)
            deployments[deploy.name] = deploy
    return Objects(hpas, deployments)


@dataclass(frozen=True)
class Poll:
    time: float  # epoch seconds
    hpa: HpaState | None
    deployment: DeploymentState | None
    error: str = ""


def poll_from(time_s: float, objects: Objects, hpa_name: str) -> Poll:
    hpa = objects.hpas.get(hpa_name)
    if hpa is None:
        return Poll(time_s, None, None, f"no HorizontalPodAutoscaler {hpa_name}")
    return Poll(time_s, hpa, objects.deployments.get(hpa.target))


def read_polls(path: Path, hpa_name: str) -> list[Poll]:
    """polls.jsonl, as the runner writes it, to the polls of one HPA (and its Deployment)."""
    polls: list[Poll] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            time_s = float(record["time"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DemoError(f"{path}:{number}: not a poll record ({exc})") from exc
        if "output" not in record:
            polls.append(Poll(time_s, None, None, str(record.get("error", "no output"))))
            continue
        try:
            polls.append(poll_from(time_s, parse_objects(record["output"]), hpa_name))
        except DemoError as exc:
            raise DemoError(f"{path}:{number}: {exc}") from exc
    return polls


# --- Locust's stats history --------------------------------------------------------------


@dataclass(frozen=True)
class LoadSample:
    """One `Aggregated` row of `<prefix>_stats_history.csv`."""

    time: float  # epoch seconds (Locust writes whole seconds)
    users: int
    rps: float
    failures_per_s: float
    p95_ms: float | None  # N/A before the first response
    requests: int  # since the start
    failures: int


def _number(value: str, where: str, column: str) -> float | None:
    if value in {"N/A", ""}:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise DemoError(f"{where}: column {column!r} is not a number: {value!r}") from exc


def parse_locust_history(text: str, source: str = HISTORY_FILE) -> list[LoadSample]:
    """Locust's `--csv` stats history to its Aggregated rows, in time order (a timestamp
    written twice keeps its last row). A row cut short at the end (Locust still writing) is
    left out; a header without the columns read is an error."""
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise DemoError(f"{source}: empty, not a Locust stats history")
    missing = [c for c in HISTORY_COLUMNS if c not in header]
    if missing:
        raise DemoError(
            f"{source}: not a Locust stats history (--csv): no column "
            + ", ".join(repr(c) for c in missing)
            + f" in header {','.join(header)[:300]!r}"
        )
    col = {name: header.index(name) for name in HISTORY_COLUMNS}
    by_time: dict[float, LoadSample] = {}
    for number, row in enumerate(reader, 2):
        where = f"{source}:{number}"
        if not row:
            continue
        if len(row) != len(header):
            raise DemoError(f"{where}: {len(row)} fields, the header has {len(header)}")
        if row[col["Name"]] != "Aggregated":
            continue
        values = {name: _number(row[i], where, name) for name, i in col.items() if name != "Name"}
        if values["Timestamp"] is None:
            raise DemoError(f"{where}: no Timestamp")
        sample = LoadSample(
            time=values["Timestamp"],
            users=int(values["User Count"] or 0),
            rps=values["Requests/s"] or 0.0,
            failures_per_s=values["Failures/s"] or 0.0,
            p95_ms=values["95%"],
            requests=int(values["Total Request Count"] or 0),
            failures=int(values["Total Failure Count"] or 0),
        )
        by_time[sample.time] = sample
    return [by_time[t] for t in sorted(by_time)]


def read_locust_history(path: Path) -> list[LoadSample]:
    if not path.exists():
        return []
    return parse_locust_history(path.read_text(), str(path))


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


@dataclass(frozen=True)
class Summary:
    hpa: str
    min_replicas: int | None
    max_replicas: int | None
    cpu_target_pct: int | None
    start_replicas: int | None  # the HPA's replicas at the first poll
    first_scale_up_s: float | None  # first poll with more replicas than at the start
    peak_replicas: int | None
    peak_at_s: float | None
    back_to_min_s: float | None  # first poll after the peak at minReplicas
    load_end_s: float | None
    duration_s: float
    polls: int
    failed_polls: int
    peak_users: int | None
    peak_rps: float | None
    peak_p95_ms: float | None
    peak_cpu_pct: int | None
    problem: str = ""  # the first failing HPA condition seen, "" when none

    @property
    def scaled(self) -> bool:
        return self.first_scale_up_s is not None


def _peak(values: Iterator[Any]) -> Any:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def summarize(
    hpa_name: str,
    rows: Sequence[TimelineRow],
    polls: Sequence[Poll] = (),
    load_end_s: float | None = None,
) -> Summary:
    """The numbers a person reads off the demo. Replicas are the HPA's currentReplicas (the
    Deployment's desired size, which it sets); `polls` give minReplicas and conditions."""
    states = [p.hpa for p in polls if p.hpa is not None]
    first = states[0] if states else None
    replicas = [(r.elapsed_s, r.current_replicas) for r in rows if r.current_replicas is not None]
    start = replicas[0][1] if replicas else None
    first_up = next((t for t, n in replicas if start is not None and n > start), None)
    peak = _peak(n for _, n in replicas)
    peak_at = next((t for t, n in replicas if n == peak), None) if first_up is not None else None
    minimum = first.min_replicas if first else None
    back = None
    if peak_at is not None and minimum is not None:
        back = next((t for t, n in replicas if t > peak_at and n <= minimum), None)
    return Summary(
        hpa=hpa_name,
        min_replicas=minimum,
        max_replicas=first.max_replicas if first else None,
        cpu_target_pct=first.cpu_target_pct if first else None,
        start_replicas=start,
        first_scale_up_s=first_up,
        peak_replicas=peak,
        peak_at_s=peak_at,
        back_to_min_s=back,
        load_end_s=load_end_s,
        duration_s=rows[-1].elapsed_s if rows else 0.0,
        polls=len(rows),
        failed_polls=sum(1 for p in polls if p.hpa is None),
        peak_users=_peak(r.users for r in rows),
        peak_rps=_peak(r.rps for r in rows),
        peak_p95_ms=_peak(r.p95_ms for r in rows),
        peak_cpu_pct=_peak(r.cpu_pct for r in rows),
        problem=next((s.problem for s in states if s.problem), ""),
    )


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def _n(count: int | None, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary_text(summary: Summary, namespace: str = "") -> str:
    s = summary
    name = f"{namespace}/{s.hpa}" if namespace else s.hpa
    target = f"CPU target {s.cpu_target_pct}%" if s.cpu_target_pct is not None else "no CPU target"
    head = (
        f"HPA {name} ({s.min_replicas}..{s.max_replicas} replicas, {target}): "
        f"{_n(s.polls, 'poll')} over {duration(s.duration_s)}, load for {duration(s.load_end_s)}"
    )
    if s.failed_polls:
        head += f", {_n(s.failed_polls, 'failed poll')}"
    lines = [head]
    if s.first_scale_up_s is None and s.peak_cpu_pct is None:
        problem = f" ({s.problem})" if s.problem else ""
        lines.append(
            f"never scaled up: the HPA reported no CPU utilization{problem}; "
            "is metrics-server running?"
        )
    elif s.first_scale_up_s is None:
        lines.append(
            f"never scaled up: stayed at {_n(s.start_replicas, 'replica')}, CPU peaked at "
            f"{s.peak_cpu_pct}% against a {s.cpu_target_pct}% target"
        )
    else:
        if s.back_to_min_s is None:
            back = f"not within the run (above {_n(s.min_replicas, 'replica')} at the end)"
        else:
            back = f"{duration(s.back_to_min_s)} ({_n(s.min_replicas, 'replica')}"
            if s.load_end_s is not None and s.back_to_min_s >= s.load_end_s:
                back += f", {duration(s.back_to_min_s - s.load_end_s)} after the load ended"
            elif s.load_end_s is not None:
                back += ", before the load ended"
            back += ")"
        lines += [
            f"first scale-up   {duration(s.first_scale_up_s)} after the load started "
            f"(from {_n(s.start_replicas, 'replica')})",
            f"peak replicas    {s.peak_replicas} at {duration(s.peak_at_s)}",
            f"back to minimum  {back}",
        ]
    rps = f"{s.peak_rps:.1f}" if s.peak_rps is not None else "-"
    p95 = f"{s.peak_p95_ms:.0f} ms" if s.peak_p95_ms is not None else "-"
    cpu = f"{s.peak_cpu_pct}%" if s.peak_cpu_pct is not None else "-"
    lines.append(
        f"load             peak {s.peak_users} users, {rps} req/s, p95 up to {p95}, CPU up to {cpu}"
    )
    return "\n".join(lines)


# --- plot ---------------------------------------------------------------------------------


def plot(rows: Sequence[TimelineRow], summary: Summary, path: Path) -> None:
    """replicas.png: load (users, requests/s) above; replicas (desired, current, ready) and the
    HPA's CPU reading against its target below; minutes since the load started across."""
    from matplotlib.figure import Figure  # here: `gpu-analytics` starts without matplotlib

    def series(values: Sequence[float | None]) -> list[float]:
        return [math.nan if v is None else float(v) for v in values]

    minutes = [r.elapsed_s / 60 for r in rows]
    fig = Figure(figsize=(11, 7), layout="constrained")
    load_ax, replicas_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.4])
    load_ax.set_title(f"HPA {summary.hpa}: replicas against load")
    load_ax.plot(minutes, series([r.users for r in rows]), color="tab:blue", label="users")
    load_ax.set_ylabel("users")
    rps_ax = load_ax.twinx()
    rps_ax.plot(minutes, series([r.rps for r in rows]), color="tab:orange", label="requests/s")
    rps_ax.set_ylabel("requests/s")
    load_ax.legend(handles=load_ax.get_lines() + rps_ax.get_lines(), loc="upper right")

    for values, color, label in (
        ([r.desired_replicas for r in rows], "tab:red", "desired (HPA)"),
        ([r.current_replicas for r in rows], "tab:green", "current (HPA)"),
        ([r.ready_replicas for r in rows], "tab:olive", "ready (Deployment)"),
    ):
        replicas_ax.step(
            minutes, series(values), where="post", color=color, label=label,
            linestyle="--" if label.startswith("desired") else "-",
            linewidth=2 if label.startswith("current") else 1.2,
        )  # fmt: skip
    if summary.max_replicas:
        replicas_ax.set_ylim(0, summary.max_replicas + 1)
    replicas_ax.set_ylabel("replicas")
    replicas_ax.set_xlabel("minutes since the load started")
    cpu_ax = replicas_ax.twinx()
    cpu_ax.plot(
        minutes, series([r.cpu_pct for r in rows]), color="tab:purple", alpha=0.6, label="CPU %"
    )
    if summary.cpu_target_pct is not None:
        cpu_ax.axhline(
            summary.cpu_target_pct, color="tab:purple", linestyle=":", alpha=0.6,
            label=f"CPU target {summary.cpu_target_pct}%",
        )  # fmt: skip
    cpu_ax.set_ylabel("CPU % of requests")
    cpu_ax.set_ylim(bottom=0)
    marks = (
        (summary.first_scale_up_s, "first scale-up"),
        (summary.load_end_s, "load ended"),
        (summary.back_to_min_s, "back to minimum"),
    )
    for at, label in marks:
        if at is not None:
            for ax in (load_ax, replicas_ax):
                ax.axvline(at / 60, color="grey", linestyle=":", linewidth=1)
            replicas_ax.annotate(
                label, (at / 60, 0.15), rotation=90, fontsize=8, color="grey",
                xytext=(3, 0), textcoords="offset points",
            )  # fmt: skip
    replicas_ax.legend(handles=replicas_ax.get_lines()[:3] + cpu_ax.get_lines(), loc="upper right")
    fig.savefig(path, dpi=100)


# --- the files of a run -------------------------------------------------------------------


@dataclass
class RunRecord:
    """run.json: what ran, so that `render` can rebuild the report from the folder."""

    namespace: str
    hpa: str
    context: str
    started: float  # epoch s, when Locust started
    load_end: float | None = None  # when Locust exited
    locust_exit: int | None = None
    port_forward_restarts: int = 0
    interrupted: bool = False

    def write(self, out: Path) -> None:
        (out / "run.json").write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, out: Path) -> RunRecord:
        try:
            return cls(**json.loads((out / "run.json").read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise DemoError(f"{out / 'run.json'}: not a demo-hpa run record ({exc})") from exc


def render(out: Path) -> tuple[Summary, list[TimelineRow]]:
    """timeline.csv, summary.json, summary.txt and replicas.png from run.json, polls.jsonl
    and Locust's history in `out`."""
    record = RunRecord.read(out)
    polls = read_polls(out / "polls.jsonl", record.hpa) if (out / "polls.jsonl").exists() else []
    samples = read_locust_history(out / HISTORY_FILE)
    rows = merge(polls, samples, record.started, record.load_end)
    load_end_s = None if record.load_end is None else round(record.load_end - record.started, 1)
    summary = summarize(record.hpa, rows, polls, load_end_s)
    write_timeline(rows, out / "timeline.csv")
    payload = {**asdict(summary), "scaled": summary.scaled, "namespace": record.namespace}
    (out / "summary.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / "summary.txt").write_text(summary_text(summary, record.namespace) + "\n")
    if rows:
        plot(rows, summary, out / "replicas.png")
    return summary, rows


# --- the runner ---------------------------------------------------------------------------


def find_locust() -> str:
    beside = Path(sys.executable).with_name("locust")
    if beside.is_file():
        return str(beside)
    if found := shutil.which("locust"):
        return found
    raise DemoError("locust not found: run make setup (it is in .venv)")


@dataclass
class DemoOptions:
    out: Path
    namespace: str = "pipeline"
    hpa: str = "processor"
    service: str = "svc/processor"
    remote_port: int = 8080
    interval: float = 10.0
    settle: float = 900.0  # seconds after the load to wait for the HPA's minimum
    context: str | None = None
    locustfile: str = ""  # default: loadtest/ of the checkout


def default_out() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return repo_root() / ".cache" / "demo-hpa" / stamp


class _Stop:
    """Ctrl-C (SIGINT) or SIGTERM sets `requested`; the handlers before are restored after."""

    def __init__(self) -> None:
        self.requested = False
        self._before: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._before[sig] = signal.signal(sig, self._set)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._before.items():
            signal.signal(sig, handler)

    def _set(self, _sig: int, _frame: FrameType | None) -> None:
        self.requested = True


def _progress_line(elapsed: float, poll: Poll, sample: LoadSample | None) -> str:
    load = "load -"
    if sample is not None:
        p95 = f"{sample.p95_ms:.0f} ms" if sample.p95_ms is not None else "-"
        load = f"{sample.users} users, {sample.rps:.1f} req/s, p95 {p95}"
    if poll.hpa is None:
        return f"{duration(elapsed):>6} {load} | {poll.error}"
    h = poll.hpa
    cpu = f"{h.cpu_pct}%" if h.cpu_pct is not None else "<unknown>"
    ready = poll.deployment.ready_replicas if poll.deployment else "?"
    desired = h.desired_replicas if h.desired_replicas is not None else "?"
    return (
        f"{duration(elapsed):>6} {load} | cpu {cpu}/{h.cpu_target_pct}% | replicas "
        f"{h.current_replicas} (desired {desired}, ready {ready})"
    )


class Demo:
    """The run: preflight, port-forward, Locust, polls; children stopped however it ends."""

    def __init__(self, options: DemoOptions, say: Callable[[str], None]) -> None:
        self.options = options
        self.say = say
        self.kubectl = Kubectl(find_kubectl(), options.namespace, options.context)
        self.locust_bin = find_locust()
        self.forward = PortForward(
            self.kubectl, options.service, options.remote_port, options.out / "port-forward.log"
        )
        self.locust: subprocess.Popen[bytes] | None = None

    def preflight(self) -> tuple[str, HpaState]:
        context = self.kubectl.current_context()
        ns = self.options.namespace
        try:
            objects = parse_objects(self._get())
        except KubeError as exc:
            raise DemoError(f"cannot read namespace {ns} of context {context}: {exc}") from exc
        hpa = objects.hpas.get(self.options.hpa)
        if hpa is None:
            found = ", ".join(sorted(objects.hpas)) or "none"
            raise DemoError(
                f"no HorizontalPodAutoscaler {self.options.hpa} in namespace {ns} of context "
                f"{context} (found: {found}); is the pipeline installed (make cluster-up)?"
            )
        if hpa.target not in objects.deployments:
            raise DemoError(f"HPA {hpa.name} scales Deployment {hpa.target}, not in {ns}")
        return context, hpa

    def _get(self) -> str:
        return self.kubectl.run(
            "get", "hpa,deployment", "-o", "json", f"--request-timeout={self.kubectl.timeout:.0f}s"
        )

    def check_processor(self) -> None:
        url = f"{self.forward.url}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DemoError(
                f"the processor is not ready (GET /readyz through the port-forward: {exc.code})"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DemoError(
                f"the processor does not answer through the port-forward: {exc}"
            ) from exc

    def start_locust(self) -> None:
        out = self.options.out
        locustfile = self.options.locustfile or str(repo_root() / "loadtest")
        cmd = [
            self.locust_bin, "-f", locustfile, "--headless",
            "--host", self.forward.url,
            "--csv", str(out / LOCUST_PREFIX), "--csv-full-history",
            "--html", str(out / "locust.html"), "--only-summary",
        ]  # fmt: skip
        self.locust = spawn(cmd, out / "locust.log", cwd=repo_root(), die_with_parent=True)

    def stop_children(self) -> None:
        if self.locust is not None and self.locust.poll() is None:
            # SIGINT: with a shape, headless Locust only handles Ctrl-C (SIGTERM kills it
            # before its report); it then writes its last rows and the HTML report.
            self.locust.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.locust.wait(30)
            stop_child(self.locust, 10)
        self.forward.stop()

    def poll(self, polls_file: Path) -> Poll:
        now = time.time()
        try:
            output = json.loads(self._get())
            record: dict[str, Any] = {"time": round(now, 3), "output": output}
            poll = poll_from(now, parse_objects(output), self.options.hpa)
        except (KubeError, json.JSONDecodeError) as exc:
            record = {"time": round(now, 3), "error": str(exc)}
            poll = Poll(now, None, None, str(exc))
        with polls_file.open("a") as handle:
            handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        return poll

    def run(self) -> RunRecord:
        o = self.options
        context, hpa = self.preflight()
        o.out.mkdir(parents=True, exist_ok=True)
        self.say(
            f"context {context}, namespace {o.namespace}: HPA {hpa.name} -> Deployment "
            f"{hpa.target} ({hpa.min_replicas}..{hpa.max_replicas} replicas, CPU target "
            f"{hpa.cpu_target_pct}%, now {hpa.current_replicas}); output {o.out}"
        )
        if hpa.cpu_pct is None:
            self.say(
                f"warning: HPA {hpa.name} reports no CPU utilization"
                f"{' (' + hpa.problem + ')' if hpa.problem else ''}; is metrics-server running?"
            )
        record = RunRecord(o.namespace, o.hpa, context, started=time.time())
        with _Stop() as stop:
            try:
                self.forward.start()
                self.say(f"port-forward {o.service} on {self.forward.url}")
                self.check_processor()
                self.start_locust()
                record.started = time.time()
                record.write(o.out)
                shape = "the HpaDemo shape" if not o.locustfile else o.locustfile
                self.say(f"Locust started ({shape}); Ctrl-C stops and still writes the report")
                self._loop(record, stop)
            finally:
                self.stop_children()
                if self.locust is not None:
                    if record.load_end is None:
                        record.load_end = time.time()
                        record.locust_exit = self.locust.returncode
                    record.write(o.out)
        return record

    def _loop(self, record: RunRecord, stop: _Stop) -> None:
        o = self.options
        polls_file = o.out / "polls.jsonl"
        history = o.out / HISTORY_FILE
        begin = time.monotonic()
        settle_until: float | None = None
        tick = 0
        while not stop.requested:
            poll = self.poll(polls_file)
            try:
                samples = read_locust_history(history)
            except DemoError:
                samples = []
            sample = samples[-1] if samples and record.load_end is None else None
            self.say(_progress_line(poll.time - record.started, poll, sample))
            assert self.locust is not None and self.forward.proc is not None
            if record.load_end is None and self.locust.poll() is not None:
                record.load_end, record.locust_exit = time.time(), self.locust.returncode
                record.write(o.out)
                if not samples:
                    raise DemoError(
                        f"Locust exited ({self.locust.returncode}) without load: "
                        f"{log_tail(o.out / 'locust.log', 5)}"
                    )
                self.say(
                    f"Locust finished ({self.locust.returncode}); waiting up to "
                    f"{duration(o.settle)} for {o.hpa} to return to its minimum"
                )
                settle_until = time.monotonic() + o.settle
            if record.load_end is None and not self.forward.alive():
                record.port_forward_restarts += 1
                self.say(f"port-forward exited ({self.forward.proc.returncode}); restarting")
                try:
                    self.forward.start()
                except KubeError as exc:
                    self.say(f"{exc} (retrying at the next poll)")
            if settle_until is not None:
                h = poll.hpa
                if h is not None and h.current_replicas is not None:
                    if h.current_replicas <= h.min_replicas:
                        self.say(f"{o.hpa} is back at {_n(h.current_replicas, 'replica')}")
                        return
                if time.monotonic() >= settle_until:
                    self.say(f"{o.hpa} still above its minimum after {duration(o.settle)}")
                    return
            tick += 1
            while not stop.requested and time.monotonic() < begin + tick * o.interval:
                time.sleep(min(0.2, o.interval))
        record.interrupted = True
        self.say("interrupted: stopping Locust and the port-forward")


def run_demo(options: DemoOptions, say: Callable[[str], None]) -> int:
    """The whole demo; 0 when it ran, 1 naming what failed, 130 when interrupted (the report
    of what ran is still written)."""
    try:
        demo = Demo(options, say)
        record = demo.run()
    except KubeError as exc:  # DemoError too
        say(f"error: {exc}")
        if (options.out / "run.json").exists():
            with contextlib.suppress(DemoError, OSError):
                render(options.out)
        return 1
    summary, _ = render(options.out)
    sys.stdout.write(summary_text(summary, options.namespace) + "\n")
    sys.stdout.flush()
    say(f"timeline.csv, summary.txt, summary.json and replicas.png in {options.out}")
    if record.interrupted:
        return 130
    if summary.peak_cpu_pct is None:
        say("error: the HPA never reported CPU utilization; is metrics-server running?")
        return 1
    return 0
