"""What an HPA demo run records, read back: kubectl's `get hpa,deployment -o json` polls
(polls.jsonl), Locust's stats history, and the run's own record (run.json)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpu_analytics_tools.cluster.kube import KubeError

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
