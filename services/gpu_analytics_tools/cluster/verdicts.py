"""What `cluster verify` concludes from what it read, as PASS/FAIL results: the workloads'
readiness from kubectl's objects, the flow from two reads of /api/v1/stats and each pod's
/metrics. Pure functions, tested on recorded output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpu_analytics_tools.observability.prometheus import exposition_samples

PIPELINE = "pipeline"


@dataclass(frozen=True)
class Workload:
    check: str  # the line's name
    namespace: str
    kind: str  # StatefulSet, Deployment, DaemonSet
    name: str
    optional: bool = False  # the NVML DaemonSet: absent from a tree without GPU nodes


WORKLOADS = (
    Workload("kafka", "kafka", "StatefulSet", "kafka"),
    Workload("mongodb", "mongodb", "StatefulSet", "mongodb"),
    Workload("processor", PIPELINE, "Deployment", "processor"),
    Workload("producers", PIPELINE, "Deployment", "producer"),
    Workload("producers", PIPELINE, "DaemonSet", "producer-nvml", optional=True),
)
NAMESPACES = tuple(dict.fromkeys(w.namespace for w in WORKLOADS))  # in order, once each
KINDS = "statefulsets,deployments,daemonsets"


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    saw: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.check:<20} {self.saw}"


def _count(obj: dict[str, Any], path: str) -> int:
    section, _, key = path.partition(".")
    return int((obj.get(section) or {}).get(key) or 0)


def workload_state(item: dict[str, Any]) -> tuple[bool, str]:
    """Ready or not, and what was seen: '3/3 ready' (a rollout still going says so)."""
    kind = item.get("kind")
    if kind == "DaemonSet":
        want, ready = (
            _count(item, "status.desiredNumberScheduled"),
            _count(item, "status.numberReady"),
        )
        return ready == want, f"{ready}/{want} ready"
    want = int((item.get("spec") or {}).get("replicas", 1))
    ready = _count(item, "status.readyReplicas")
    updated = _count(item, "status.updatedReplicas")
    ok = want >= 1 and ready >= want and updated >= want
    saw = f"{ready}/{want} ready"
    if updated < want:
        saw += f", {updated}/{want} updated (rollout in progress)"
    return ok, saw


def check_workloads(lists: dict[str, dict[str, Any]]) -> list[Result]:
    """One line per check name from the objects of each namespace (`kubectl get KINDS`)."""
    found: dict[str, list[str]] = {}
    ok: dict[str, bool] = {}
    for w in WORKLOADS:
        items = (lists.get(w.namespace) or {}).get("items") or []
        item = next(
            (i for i in items if i.get("kind") == w.kind and i["metadata"]["name"] == w.name), None
        )
        where = f"{w.kind.lower()}/{w.name}"
        if item is None:
            if not w.optional:
                found.setdefault(w.check, []).append(f"{where} not found in {w.namespace}")
                ok[w.check] = False
            continue
        ready, saw = workload_state(item)
        found.setdefault(w.check, []).append(f"{where} {saw}")
        ok[w.check] = ok.get(w.check, True) and ready
    return [Result(check, ok[check], "; ".join(saw)) for check, saw in found.items()]


def ready_pods(pods: dict[str, Any]) -> list[str]:
    """Names of the pods whose Ready condition is True and which are not being deleted."""
    return sorted(
        p["metadata"]["name"]
        for p in pods.get("items") or []
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or []
        )
    )


def total(text: str, name: str, label: str | None = None) -> dict[str, float]:
    """Sum of `name`'s samples by the value of `label` (all under '' without one)."""
    sums: dict[str, float] = {}
    for labels, value in exposition_samples(text, name):
        key = labels.get(label, "") if label else ""
        sums[key] = sums.get(key, 0.0) + value
    return sums


@dataclass
class Read:
    """One read of the pipeline: /api/v1/stats and each pod's /metrics text."""

    time: float
    stats: dict[str, Any]
    processors: dict[str, str]  # pod -> /metrics
    producers: dict[str, str]


def _growth(
    before: dict[str, str], after: dict[str, str], name: str, label: str
) -> dict[str, float]:
    """Per label value, how much counter `name` grew over the pods present in both reads (a pod
    that restarted in between counts from zero)."""
    grown: dict[str, float] = {}
    for pod in before.keys() & after.keys():
        old, new = total(before[pod], name, label), total(after[pod], name, label)
        for key, value in new.items():
            step = value - old.get(key, 0.0)
            grown[key] = grown.get(key, 0.0) + (step if step >= 0 else value)
    return grown


def _listing(counts: dict[str, float]) -> str:
    return ", ".join(f"{k} +{v:.0f}" for k, v in sorted(counts.items())) or "no series"


def consumer_lag(read: Read) -> float | None:
    """The processors' lag summed over their partitions; None when none reports one."""
    lags = [
        value
        for text in read.processors.values()
        for _, value in exposition_samples(text, "gpu_analytics_consumer_lag")
    ]
    return sum(lags) if lags else None


def check_flow(first: Read, second: Read, lag_slack: float) -> list[Result]:
    seconds = second.time - first.time
    results = []
    before, after = first.stats.get("collections") or {}, second.stats.get("collections") or {}
    stored = {k: after.get(k, 0) - before.get(k, 0) for k in ("gpu_metrics", "token_usage")}
    results.append(
        Result(
            "events stored",
            sum(stored.values()) > 0,
            f"{_listing(stored)} documents in {seconds:.0f} s "
            f"(dead-lettered: {second.stats.get('dlq_total', 0)})",
        )
    )
    sent = _growth(first.producers, second.producers, "gpu_analytics_events_sent_total", "topic")
    errors = sum(
        _growth(first.producers, second.producers, "gpu_analytics_send_errors_total", "").values()
    )
    pods = len(first.producers.keys() & second.producers.keys())
    results.append(
        Result(
            "producers sending",
            sum(sent.values()) > 0,
            f"{_listing(sent)} acknowledged in {seconds:.0f} s by {pods} pod(s); "
            f"{errors:.0f} send errors",
        )
    )
    lags = [consumer_lag(first), consumer_lag(second)]
    if lags[0] is None or lags[1] is None:
        results.append(Result("consumer lag", False, "no partition's lag reported by a processor"))
    else:
        grew = lags[1] > lags[0] and lags[1] > lag_slack
        results.append(
            Result(
                "consumer lag",
                not grew,
                f"{lags[0]:.0f} -> {lags[1]:.0f} records over {seconds:.0f} s"
                + (f" (growing, above {lag_slack:.0f})" if grew else ""),
            )
        )
    return results
