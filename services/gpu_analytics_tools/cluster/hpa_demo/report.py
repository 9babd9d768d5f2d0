"""What a run showed: the summary (time to the first scale-up, peak replicas, time back to the
minimum), as JSON and text, and the plot of replicas against load; `render` rebuilds them from
a run's record."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpu_analytics_tools.cluster.hpa_demo.record import (
    HISTORY_FILE,
    Poll,
    RunRecord,
    read_locust_history,
    read_polls,
)
from gpu_analytics_tools.cluster.hpa_demo.timeline import TimelineRow, merge, write_timeline


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


def plural(count: int | None, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary_text(summary: Summary, namespace: str = "") -> str:
    s = summary
    name = f"{namespace}/{s.hpa}" if namespace else s.hpa
    target = f"CPU target {s.cpu_target_pct}%" if s.cpu_target_pct is not None else "no CPU target"
    head = (
        f"HPA {name} ({s.min_replicas}..{s.max_replicas} replicas, {target}): "
        f"{plural(s.polls, 'poll')} over {duration(s.duration_s)}, "
        f"load for {duration(s.load_end_s)}"
    )
    if s.failed_polls:
        head += f", {plural(s.failed_polls, 'failed poll')}"
    lines = [head]
    if s.first_scale_up_s is None and s.peak_cpu_pct is None:
        problem = f" ({s.problem})" if s.problem else ""
        lines.append(
            f"never scaled up: the HPA reported no CPU utilization{problem}; "
            "is metrics-server running?"
        )
    elif s.first_scale_up_s is None:
        lines.append(
            f"never scaled up: stayed at {plural(s.start_replicas, 'replica')}, CPU peaked at "
            f"{s.peak_cpu_pct}% against a {s.cpu_target_pct}% target"
        )
    else:
        if s.back_to_min_s is None:
            back = f"not within the run (above {plural(s.min_replicas, 'replica')} at the end)"
        else:
            back = f"{duration(s.back_to_min_s)} ({plural(s.min_replicas, 'replica')}"
            if s.load_end_s is not None and s.back_to_min_s >= s.load_end_s:
                back += f", {duration(s.back_to_min_s - s.load_end_s)} after the load ended"
            elif s.load_end_s is not None:
                back += ", before the load ended"
            back += ")"
        lines += [
            f"first scale-up   {duration(s.first_scale_up_s)} after the load started "
            f"(from {plural(s.start_replicas, 'replica')})",
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
