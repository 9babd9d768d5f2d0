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

from gpu_analytics_tools.cluster.kube import Kubectl, KubeError, PortForward
from gpu_analytics_tools.cluster.verdicts import (
    KINDS,
    NAMESPACES,
    PIPELINE,
    WORKLOADS,
    Read,
    Result,
    check_flow,
    check_workloads,
    ready_pods,
)
from gpu_analytics_tools.testing import events

PROCESSOR_PORT, PRODUCER_PORT = 8080, 9100


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
        )
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
            lists = {ns: self.cluster.get(ns, KINDS) for ns in NAMESPACES}
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
    lines = [f"kubectl get {KINDS} -n {ns} -o json" for ns in NAMESPACES]
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
