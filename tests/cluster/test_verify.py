"""`gpu-analytics cluster verify` (make verify).

- The readiness checks on kubectl output recorded from the simulation (testdata/verify/: the
  StatefulSets, Deployments, DaemonSets and pods of the installed tree, trimmed to the fields
  read), as recorded and with the faults a cluster shows (a broker not ready, a rollout under
  way, a missing StatefulSet).
- The flow checks and the smoke against the real pipeline on the local stack: a processor and a
  producer as processes, Kafka and the MongoDB-wire server. The kube side is the recorded
  output, and a port-forward (which needs a kubelet, absent here) is replaced by the process's
  own URL: `LocalPods` below is that stand-in, the only one.
- On the simulation (from "a cluster exists" on): the readiness checks pass on the installed
  tree; the flow checks fail naming the port-forward, since kwok's nodes run no containers
  and serve no port-forward. What only a real cluster shows (flow and smoke through a real
  port-forward) runs in .github/workflows/e2e.yml.
- --dry-run prints the plan and runs no kubectl.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gpu_analytics_tools.cluster import verdicts, verify
from gpu_analytics_tools.stack.pipeline import cli, start_service
from gpu_analytics_tools.stack.process import free_port, port_open, stop_child
from gpu_analytics_tools.stack.stack import StackEnv
from gpu_analytics_tools.testing.cluster_sim import Installed, report
from gpu_analytics_tools.testing.fixtures import TopicFactory
from gpu_analytics_tools.testing.harness import Pipeline

DATA = Path(__file__).parent / "testdata" / "verify"
CLI = cli()
FLOW = ["processor answers", "events stored", "producers sending", "consumer lag", "smoke"]
READY = ["kafka", "mongodb", "processor", "producers"]


def recorded() -> dict[str, dict[str, Any]]:
    """kubectl get output of the installed tree, by namespace (and pods by selector)."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(DATA.glob("*.json"))}


def item(lists: dict[str, dict[str, Any]], namespace: str, kind: str, name: str) -> dict[str, Any]:
    items = lists[namespace]["items"]
    return next(i for i in items if i["kind"] == kind and i["metadata"]["name"] == name)


# --- readiness, on recorded output ------------------------------------------------------------


def by_check(results: list[verdicts.Result]) -> dict[str, verdicts.Result]:
    return {r.check: r for r in results}


def test_the_installed_tree_reads_ready() -> None:
    results = by_check(verdicts.check_workloads(recorded()))
    assert list(results) == READY
    assert all(r.ok for r in results.values()), [r.line() for r in results.values()]
    assert results["kafka"].saw == "statefulset/kafka 1/1 ready"
    # the simulation's kwok node carries the GPU label: the NVML DaemonSet runs one pod
    assert results["producers"].saw == (
        "deployment/producer 1/1 ready; daemonset/producer-nvml 1/1 ready"
    )


def test_a_broker_not_ready_a_rollout_and_a_missing_database_fail() -> None:
    lists = copy.deepcopy(recorded())
    item(lists, "kafka", "StatefulSet", "kafka")["status"]["readyReplicas"] = 0
    processor = item(lists, "pipeline", "Deployment", "processor")
    processor["status"]["updatedReplicas"] = 0
    lists["mongodb"]["items"] = []
    nvml = item(lists, "pipeline", "DaemonSet", "producer-nvml")
    nvml["status"].update(desiredNumberScheduled=2, numberReady=1)
    results = by_check(verdicts.check_workloads(lists))
    assert [c for c, r in results.items() if not r.ok] == READY
    assert results["kafka"].saw == "statefulset/kafka 0/1 ready"
    assert results["mongodb"].saw == "statefulset/mongodb not found in mongodb"
    assert "0/1 updated (rollout in progress)" in results["processor"].saw
    assert "daemonset/producer-nvml 1/2 ready" in results["producers"].saw


def test_only_ready_pods_that_are_not_terminating_are_read() -> None:
    pods = copy.deepcopy(recorded()["pods-processor"])
    assert len(verdicts.ready_pods(pods)) == 1
    name = pods["items"][0]["metadata"]["name"]
    pods["items"].append(
        copy.deepcopy(pods["items"][0]) | {"metadata": {"name": "gone", "deletionTimestamp": "x"}}
    )
    not_ready = copy.deepcopy(pods["items"][0])
    not_ready["metadata"]["name"] = "starting"
    not_ready["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    pods["items"].append(not_ready)
    assert verdicts.ready_pods(pods) == [name]


# --- flow judgement on recorded /metrics text ---------------------------------------------------


def exposition(sent: float, lag: float | None) -> tuple[str, str]:
    producer = (
        "# TYPE gpu_analytics_events_sent counter\n"
        f'gpu_analytics_events_sent_total{{topic="gpu.metrics.v1"}} {sent}\n'
    )
    processor = "# TYPE gpu_analytics_consumer_lag gauge\n" + (
        f'gpu_analytics_consumer_lag{{partition="0",topic="gpu.metrics.v1"}} {lag}\n'
        if lag is not None
        else ""
    )
    return producer, processor


def read(at: float, stored: int, sent: float, lag: float | None) -> verdicts.Read:
    producer, processor = exposition(sent, lag)
    stats = {"collections": {"gpu_metrics": stored, "token_usage": 0}, "dlq_total": 0}
    return verdicts.Read(at, stats, {"processor-a": processor}, {"producer-a": producer})


def test_a_growing_lag_above_the_slack_fails_and_one_below_passes() -> None:
    results = by_check(verdicts.check_flow(read(0, 10, 5, 2000), read(20, 20, 9, 2500), 1000))
    assert results["consumer lag"].ok is False
    assert results["consumer lag"].saw == "2000 -> 2500 records over 20 s (growing, above 1000)"
    assert results["events stored"].ok and results["producers sending"].ok
    results = by_check(verdicts.check_flow(read(0, 10, 5, 20), read(20, 20, 9, 300), 1000))
    assert results["consumer lag"].ok


def test_nothing_stored_nothing_sent_and_no_lag_fail() -> None:
    results = by_check(verdicts.check_flow(read(0, 10, 5, None), read(20, 10, 5, None), 1000))
    assert [c for c, r in results.items() if r.ok] == []
    assert results["consumer lag"].saw == "no partition's lag reported by a processor"


def test_a_producer_that_restarted_between_the_reads_counts_from_zero() -> None:
    results = by_check(verdicts.check_flow(read(0, 10, 500, 0), read(20, 20, 7, 0), 1000))
    assert results["producers sending"].ok
    assert results["producers sending"].saw.startswith("gpu.metrics.v1 +7 acknowledged")


# --- the whole run against the real pipeline ----------------------------------------------------


@dataclass
class LocalPods:
    """The recorded cluster, its pods answering at local processes' URLs: the stand-in for a
    port-forward (kubectl reaches a pod's port through its kubelet, which cannot run here)."""

    urls: dict[str, str]  # "processor" / "producer" -> URL
    lists: dict[str, dict[str, Any]] = field(default_factory=recorded)
    forwarded: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # No GPU here, so no NVML producer runs: its pod is left out of the recorded list.
        pods = self.lists["pods-producer"]["items"]
        pods[:] = [
            p for p in pods if p["metadata"]["labels"]["app.kubernetes.io/component"] != "nvml"
        ]

    def context(self) -> str:
        return "recorded"

    def get(self, namespace: str, kinds: str, selector: str | None = None) -> dict[str, Any]:
        if kinds == "pods":
            assert selector is not None
            return self.lists[f"pods-{selector.rpartition('=')[2]}"]
        assert kinds == verdicts.KINDS
        return self.lists[namespace]

    def forward(self, namespace: str, pod: str, port: int) -> str:
        self.forwarded.append(f"{namespace}/{pod}:{port}")
        return self.urls["processor" if port == verify.PROCESSOR_PORT else "producer"]

    def close(self) -> None:
        pass


PRODUCER = {"PRODUCER_SOURCE": "synthetic", "PRODUCER_RATE": "50", "PRODUCER_SEED": "3"}


@pytest.fixture
def run_producer(tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> str:
        port = free_port()
        env = {**env, "METRICS_PORT": str(port)}
        started.append(start_service("producer", env, tmp_path / "producer.log"))
        return f"http://127.0.0.1:{port}"

    yield start
    for proc in started:
        stop_child(proc, 60)


async def pipeline(
    stack: StackEnv, new_topic: TopicFactory, mongo_db: str, tmp_path: Path
) -> Pipeline:
    return Pipeline(
        stack, await new_topic("gpu."), await new_topic("tok."), mongo_db,
        f"verify-{uuid.uuid4().hex[:8]}", tmp_path,
    )  # fmt: skip


async def wait_metrics(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    for _ in range(300):
        if port_open(host, int(port)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no producer metrics at {url}")


def run_verify(cluster: LocalPods) -> tuple[bool, list[str]]:
    lines: list[str] = []
    options = verify.Options(interval=3, events=50, smoke_timeout=60)
    passed = verify.Verify(cluster, options, lines.append).run()
    report("\n".join(lines))
    return passed, lines


@pytest.mark.integration
async def test_every_check_passes_on_a_working_pipeline(
    stack: StackEnv, new_topic: TopicFactory, mongo_db: str, tmp_path: Path, run_producer: Any,
) -> None:  # fmt: skip
    line = await pipeline(stack, new_topic, mongo_db, tmp_path)
    processor = await line.start_processor()
    try:
        producer = run_producer({**line.env(), **PRODUCER})
        await wait_metrics(producer)
        await line.wait_stored(1, timeout=60)
        cluster = LocalPods({"processor": processor.url, "producer": producer})
        passed, lines = await asyncio.to_thread(run_verify, cluster)
    finally:
        processor.stop()
    assert passed, "\n".join(lines)
    assert [text.split()[1] for text in lines[1:]][:4] == READY
    assert [text[:4] for text in lines[1:]] == ["PASS"] * 9
    assert any(text.startswith("PASS  smoke") and "50/50 samples" in text for text in lines)
    assert cluster.forwarded == [
        f"pipeline/{verdicts.ready_pods(cluster.lists['pods-processor'])[0]}:8080",
        f"pipeline/{verdicts.ready_pods(cluster.lists['pods-producer'])[0]}:9100",
    ]


@pytest.mark.integration
async def test_a_processor_reading_other_topics_fails_the_flow(
    stack: StackEnv, new_topic: TopicFactory, mongo_db: str, tmp_path: Path, run_producer: Any,
) -> None:  # fmt: skip
    """Planted: the producer writes topics no processor reads. The producers send, nothing is
    stored, no lag is reported; the smoke (through the processor's own topics) still passes."""
    line = await pipeline(stack, new_topic, mongo_db, tmp_path)
    processor = await line.start_processor()
    try:
        elsewhere = {
            **line.env(), **PRODUCER,
            "TOPIC_GPU_METRICS": await new_topic("other.gpu."),
            "TOPIC_TOKEN_USAGE": await new_topic("other.tok."),
        }  # fmt: skip
        producer = run_producer(elsewhere)
        await wait_metrics(producer)
        cluster = LocalPods({"processor": processor.url, "producer": producer})
        passed, lines = await asyncio.to_thread(run_verify, cluster)
    finally:
        processor.stop()
    assert not passed
    failed = [text.split("  ")[1].strip() for text in lines if text.startswith("FAIL")]
    assert failed == ["events stored", "consumer lag"], "\n".join(lines)


# --- the command ------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_runs_no_kubectl(tmp_path: Path) -> None:
    marker = tmp_path / "kubectl-ran"
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    kubectl.chmod(0o755)
    proc = subprocess.run(
        [CLI, "cluster", "verify", "--dry-run", "--interval", "7"],
        env={**os.environ, "KUBECTL": str(kubectl)}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "kubectl get statefulsets,deployments,daemonsets -n kafka -o json" in proc.stdout
    assert "read twice, 7 s apart" in proc.stdout
    assert not marker.exists()


def test_no_context_is_one_failing_line_and_exit_1(tmp_path: Path) -> None:
    proc = subprocess.run(
        [CLI, "cluster", "verify"], env={**os.environ, "KUBECONFIG": str(tmp_path / "none")},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stdout.startswith("FAIL  cluster ") and "no kube context" in proc.stdout


def test_on_the_simulation_readiness_passes_and_the_flow_needs_a_kubelet(
    installed: Installed,
) -> None:
    proc = installed.sim.run(
        CLI, "cluster", "verify", "--interval", "1", "--smoke-timeout", "5", check=False,
        timeout=300,
    )  # fmt: skip
    report(proc.stdout + proc.stderr)
    assert proc.returncode == 1
    lines = {text.split("  ")[1].strip(): text for text in proc.stdout.splitlines()[1:]}
    assert [c for c in READY if lines[c].startswith("PASS")] == READY
    assert [c for c in FLOW if lines.get(c, "").startswith("FAIL")] == FLOW
    assert "kubectl port-forward pod/processor-" in lines["processor answers"]
    assert "not checked (processor answers failed)" in lines["smoke"]
