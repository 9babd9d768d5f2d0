"""`gpu-analytics cluster verify` (`make verify`): is the pipeline on a kube context working?

Each check prints one line, PASS or FAIL, with what it saw:
1. kafka, mongodb, processor, producers: their StatefulSets, Deployments and DaemonSet ready;
2. processor answers: GET /readyz 200 on every ready processor pod (Kafka and MongoDB reachable);
3. two reads `interval` seconds apart, through a port-forward to each pod: events stored
   (/api/v1/stats counts increase), producers sending (their acknowledged-send counters
   increase), consumer lag (summed over the processors' partitions) not growing;
4. end-to-end smoke: N GPU samples of a GPU of the run's own posted to the ingest API, all N
   read back from /api/v1/gpus/<uuid>/metrics.

The kube side (kubectl get, port-forward) is behind `Cluster`, so a recorded session can stand
in for a cluster in tests; the HTTP side is the processor's and producers' real endpoints.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gpu_analytics_tools.cluster.kube import Kubectl, KubeError, PortForward
from gpu_analytics_tools.testing import events

PIPELINE = "pipeline"
PROCESSOR_PORT, PRODUCER_PORT = 8080, 9100


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
KINDS = "statefulsets,deployments,daemonsets"


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    saw: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.check:<20} {self.saw}"


class Cluster(Protocol):
    """What verify needs of a cluster: object lists and a URL reaching a pod's port."""

    def context(self) -> str: ...
    def get(self, namespace: str, kinds: str, selector: str | None = None) -> dict[str, Any]: ...
    def forward(self, namespace: str, pod: str, port: int) -> str: ...
    def close(self) -> None: ...


@dataclass
class KubectlCluster:
    """The current (or named) kube context, through kubectl; port-forwards logged in log_dir."""

    kubectl: Kubectl
    log_dir: Path
    forwards: list[PortForward] = field(default_factory=list)

    def context(self) -> str:
        return self.kubectl.current_context()

    def get(self, namespace: str, kinds: str, selector: str | None = None) -> dict[str, Any]:
        args = [kinds] + (["-l", selector] if selector else [])
        return self.kubectl.get_json(*args, namespace=namespace)

    def forward(self, namespace: str, pod: str, port: int) -> str:
        log = self.log_dir / f"port-forward-{pod}-{port}.log"
        forward = PortForward(self.kubectl, f"pod/{pod}", port, log, namespace=namespace)
        self.forwards.append(forward)
        return forward.start()

    def close(self) -> None:
        for forward in self.forwards:
            forward.stop()


# --- judging what was read (pure: tested on recorded output) --------------------------------


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


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of metric `name` in a Prometheus exposition, by their sorted labels."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def total(text: str, name: str, label: str | None = None) -> dict[str, float]:
    """Sum of `name`'s samples by the value of `label` (all under '' without one)."""
    sums: dict[str, float] = {}
    for labels, value in samples(text, name).items():
        key = dict(labels).get(label, "") if label else ""
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
        for value in samples(text, "gpu_analytics_consumer_lag").values()
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


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Options:
    interval: float = 20.0  # seconds between the two reads
    events: int = 100  # the smoke's samples
    smoke_timeout: float = 180.0
    lag_slack: float = 1000.0  # a lag at most this large passes even when it grew


def gpu_samples(gpu_uuid: str, count: int) -> list[dict[str, Any]]:
    """`count` samples of one GPU, a millisecond apart, each with an event id of its own."""
    now = datetime.now(UTC)
    return [
        events.gpu_metric(
            gpu_uuid,
            host="cluster-verify",
            name="NVIDIA H100 80GB HBM3",
            event_id=str(uuid.uuid4()),
            ts=now - timedelta(milliseconds=i),
        )  # fmt: skip
        for i in range(count)
    ]


class Verify:
    def __init__(self, cluster: Cluster, options: Options, say: Callable[[str], None]) -> None:
        self.cluster, self.options, self.say = cluster, options, say
        self.results: list[Result] = []
        self.http = httpx.Client(timeout=10)

    def record(self, results: Iterable[Result]) -> None:
        for result in results:
            self.results.append(result)
            self.say(result.line())

    def fail_rest(self, checks: list[str], why: str) -> None:
        """The first of `checks` fails for `why`; the others say they were not checked."""
        self.record([Result(checks[0], False, why)])
        self.record(Result(c, False, f"not checked ({checks[0]} failed)") for c in checks[1:])

    def run(self) -> bool:
        try:
            self.say(f"context {self.cluster.context()}")
            lists = {
                ns: self.cluster.get(ns, KINDS)
                for ns in dict.fromkeys(w.namespace for w in WORKLOADS)
            }
            self.record(check_workloads(lists))
            self._flow()
        except KubeError as exc:
            self.record([Result("cluster", False, str(exc))])
        finally:
            self.http.close()
            self.cluster.close()
        return bool(self.results) and all(r.ok for r in self.results)

    def _urls(self, name: str, port: int) -> dict[str, str]:
        pods = ready_pods(self.cluster.get(PIPELINE, "pods", f"app.kubernetes.io/name={name}"))
        return {pod: self.cluster.forward(PIPELINE, pod, port) for pod in pods}

    def _flow(self) -> None:
        flow = ["processor answers", "events stored", "producers sending", "consumer lag", "smoke"]
        try:
            processors = self._urls("processor", PROCESSOR_PORT)
            producers = self._urls("producer", PRODUCER_PORT)
        except KubeError as exc:
            self.fail_rest(flow, f"cannot reach the pods: {exc}")
            return
        if not processors:
            self.fail_rest(flow, f"no ready processor pod in {PIPELINE}")
            return
        answers = {pod: self._readyz(url) for pod, url in processors.items()}
        ready = [pod for pod, answer in answers.items() if answer.startswith("200")]
        self.record([
            Result(
                "processor answers",
                len(ready) == len(answers),
                "; ".join(f"{pod}: GET /readyz {answer}" for pod, answer in answers.items()),
            )
        ])  # fmt: skip
        if not ready:
            self.fail_rest(flow[1:], "no processor pod is ready to answer")
            return
        api = processors[ready[0]]
        try:
            first = self._read(api, processors, producers)
            time.sleep(self.options.interval)
            second = self._read(api, processors, producers)
        except (httpx.HTTPError, ValueError) as exc:
            self.fail_rest(flow[1:4], f"reading the pipeline failed: {exc!r}")
        else:
            self.record(check_flow(first, second, self.options.lag_slack))
        self.record([self._smoke(api)])

    def _readyz(self, url: str) -> str:
        try:
            response = self.http.get(f"{url}/readyz")
        except httpx.HTTPError as exc:
            return f"failed: {exc!r}"
        return f"{response.status_code} {response.text.strip()[:200]}"

    def _read(self, api: str, processors: dict[str, str], producers: dict[str, str]) -> Read:
        def metrics(urls: dict[str, str]) -> dict[str, str]:
            texts = {}
            for pod, url in urls.items():
                with_text = self.http.get(f"{url}/metrics")
                with_text.raise_for_status()
                texts[pod] = with_text.text
            return texts

        stats = self.http.get(f"{api}/api/v1/stats")
        stats.raise_for_status()
        return Read(time.monotonic(), stats.json(), metrics(processors), metrics(producers))

    def _smoke(self, api: str) -> Result:
        n, gpu = self.options.events, f"GPU-verify-{uuid.uuid4()}"
        started = time.monotonic()
        try:
            posted = self.http.post(f"{api}/api/v1/gpu-metrics", json=gpu_samples(gpu, n))
            if posted.status_code != 202 or posted.json() != {"accepted": n}:
                return Result(
                    "smoke", False, f"POST {n} samples: {posted.status_code} {posted.text[:200]}"
                )
            deadline, found = started + self.options.smoke_timeout, 0
            while True:
                got = self.http.get(f"{api}/api/v1/gpus/{gpu}/metrics", params={"limit": 2 * n})
                if got.status_code not in (200, 404):  # 404: none of its samples stored yet
                    got.raise_for_status()
                found = len(got.json()) if got.status_code == 200 else 0
                if found >= n or time.monotonic() > deadline:
                    break
                time.sleep(1)
        except (httpx.HTTPError, ValueError) as exc:
            return Result("smoke", False, f"{n} samples of {gpu}: {exc!r}")
        seconds = time.monotonic() - started
        return Result(
            "smoke",
            found == n,
            f"{found}/{n} samples of {gpu} stored, read back in {seconds:.1f} s",
        )


def plan(options: Options) -> list[str]:
    """What a run does, without doing it (--dry-run)."""
    lines = [
        f"kubectl get {KINDS} -n {ns} -o json"
        for ns in dict.fromkeys(w.namespace for w in WORKLOADS)
    ]
    lines += [
        f"  {w.check}: {w.kind.lower()}/{w.name} ready{' (if present)' if w.optional else ''}"
        for w in WORKLOADS
    ]
    for name, port in (("processor", PROCESSOR_PORT), ("producer", PRODUCER_PORT)):
        lines.append(f"kubectl get pods -n {PIPELINE} -l app.kubernetes.io/name={name} -o json")
        lines.append(f"  kubectl port-forward -n {PIPELINE} pod/<each ready pod> <local>:{port}")
    o = options
    lines += [
        "GET /readyz on each processor pod: 200",
        f"read twice, {o.interval:.0f} s apart: GET /api/v1/stats (one processor pod),"
        " GET /metrics (every processor and producer pod)",
        "  events stored: gpu_metrics + token_usage documents increase",
        "  producers sending: gpu_analytics_events_sent_total increases",
        "  consumer lag: gpu_analytics_consumer_lag summed over partitions not growing"
        f" (or at most {o.lag_slack:.0f})",
        f"smoke: POST {o.events} samples of a new GPU to /api/v1/gpu-metrics, then"
        f" GET /api/v1/gpus/<uuid>/metrics until all are stored ({o.smoke_timeout:.0f} s at most)",
    ]
    return lines
