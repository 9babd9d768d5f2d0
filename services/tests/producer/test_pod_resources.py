"""Pod attribution from the kubelet's PodResources API, against a real gRPC server on a unix
socket that answers v1 List as a kubelet would. There is no kubelet here: the server stands in
for it at the socket, and NVML is faked as in test_nvml (no GPU on these machines)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from gpu_analytics.events import GpuMetric
from gpu_analytics.producer.metrics import ProducerMetrics
from gpu_analytics.producer.nvml import NvmlSource
from gpu_analytics.producer.podresources import Holder, PodResources
from gpu_analytics.producer.podresources import api_pb2 as pb
from gpu_analytics_tools.testing.producer import FakeGpu, FakeNvml

REPO = Path(__file__).resolve().parents[3]
GPU = "nvidia.com/gpu"


def pod(namespace: str, name: str, *containers: tuple[str, str, list[str]]) -> pb.PodResources:
    return pb.PodResources(
        name=name,
        namespace=namespace,
        containers=[
            pb.ContainerResources(
                name=container,
                devices=[pb.ContainerDevices(resource_name=resource, device_ids=ids)],
            )
            for container, resource, ids in containers
        ],
    )


ANSWER = pb.ListPodResourcesResponse(
    pod_resources=[
        pod("inference", "vllm-0", ("vllm", GPU, ["GPU-a"])),
        pod("research", "notebook-0", ("jupyter", "nvidia.com/mig-1g.10gb", ["MIG-b1"])),
        # time-slicing: two pods on replicas of one GPU; it cannot go to either
        pod("team-x", "job-1", ("main", GPU, ["GPU-c::0"])),
        pod("team-y", "job-2", ("main", GPU, ["GPU-c::1"])),
        pod("infra", "sriov", ("net", "intel.com/sriov", ["0000:3b:00.1"])),
    ]
)


class Kubelet:
    """A gRPC server at `socket` answering /v1.PodResourcesLister/List."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self.answer = ANSWER
        self.status: grpc.StatusCode | None = None
        self.calls = 0
        self._server: grpc.Server | None = None

    def _list(self, _request: pb.ListPodResourcesRequest, context: Any) -> Any:
        self.calls += 1
        if self.status is not None:
            context.abort(self.status, "refused")
        return self.answer

    def start(self) -> Kubelet:
        handler = grpc.method_handlers_generic_handler(
            "v1.PodResourcesLister",
            {
                "List": grpc.unary_unary_rpc_method_handler(
                    self._list,
                    request_deserializer=pb.ListPodResourcesRequest.FromString,
                    response_serializer=pb.ListPodResourcesResponse.SerializeToString,
                )
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers((handler,))
        self._server.add_insecure_port(f"unix://{self.socket}")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[Kubelet]:
    server = Kubelet(tmp_path / "kubelet.sock").start()
    yield server
    server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def client(socket: Path, metrics: ProducerMetrics, clock: Callable[[], float]) -> PodResources:
    return PodResources(
        str(socket),
        refresh_s=10,
        on_error=lambda reason: metrics.pod_resources_errors.labels(reason).inc(),
        on_state=lambda up: metrics.pod_resources_up.set(1 if up else 0),
        clock=clock,
    )


def sample(metrics: ProducerMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def test_each_gpu_is_given_the_container_holding_it(kubelet: Kubelet) -> None:
    pods = PodResources(str(kubelet.socket))
    holders = pods.holders(parent_of={"MIG-b1": "GPU-b"})
    pods.close()
    assert holders == {
        "GPU-a": Holder("inference", "vllm-0", "vllm"),
        "GPU-b": Holder("research", "notebook-0", "jupyter"),  # a MIG slice: its parent GPU
    }  # GPU-c is shared by two pods; the SR-IOV device is no GPU


def test_nvml_samples_name_their_pod(kubelet: Kubelet, monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [FakeGpu(uuid="GPU-a"), FakeGpu(uuid="GPU-b", mig=["MIG-b0", "MIG-b1"]), FakeGpu()]
    FakeNvml(gpus).install(monkeypatch)
    metrics = ProducerMetrics()
    source = NvmlSource(host="node-1", pod_resources=client(kubelet.socket, metrics, Clock()))
    a, b, free = source.take(3)
    source.close()
    assert isinstance(a, GpuMetric) and isinstance(b, GpuMetric) and isinstance(free, GpuMetric)
    assert (a.namespace, a.pod, a.container) == ("inference", "vllm-0", "vllm")
    assert (b.namespace, b.pod, b.container) == ("research", "notebook-0", "jupyter")
    assert (free.namespace, free.pod, free.container) == (None, None, None)
    assert kubelet.calls == 1  # asked once per refresh_s, not per sample
    assert sample(metrics, "gpu_analytics_pod_resources_up") == 1


def test_no_socket_sends_samples_unattributed_and_says_why(tmp_path: Path) -> None:
    metrics = ProducerMetrics()
    clock = Clock()
    pods = client(tmp_path / "absent.sock", metrics, clock)
    assert pods.holders() == {}
    clock.now += 10
    assert pods.holders() == {}
    reason = {"reason": "socket_missing"}
    assert sample(metrics, "gpu_analytics_pod_resources_errors_total", **reason) == 2
    assert sample(metrics, "gpu_analytics_pod_resources_up") == 0


def test_a_refusing_or_vanished_kubelet_is_an_outage_not_a_crash(kubelet: Kubelet) -> None:
    metrics = ProducerMetrics()
    clock = Clock()
    pods = client(kubelet.socket, metrics, clock)
    assert "GPU-a" in pods.holders()
    kubelet.status = grpc.StatusCode.PERMISSION_DENIED
    clock.now += 10
    assert pods.holders() == {}
    denied = {"reason": "permission_denied"}
    assert sample(metrics, "gpu_analytics_pod_resources_errors_total", **denied) == 1
    kubelet.stop()
    kubelet.socket.touch()  # a stale socket file nobody listens on
    clock.now += 10
    assert pods.holders() == {}
    assert sample(metrics, "gpu_analytics_pod_resources_up") == 0
    kubelet.socket.unlink()
    kubelet.status = None
    kubelet.start()
    clock.now += 10
    assert "GPU-a" in pods.holders()  # back once the kubelet answers again
    assert sample(metrics, "gpu_analytics_pod_resources_up") == 1
    pods.close()


def test_the_committed_messages_are_what_protoc_generates(tmp_path: Path) -> None:
    proto = "gpu_analytics/producer/podresources/api.proto"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(REPO / "services"),
         f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", str(REPO / "services" / proto)],
        check=True,
    )  # fmt: skip
    for suffix in (".py", ".pyi"):
        name = f"gpu_analytics/producer/podresources/api_pb2{suffix}"
        generated = (tmp_path / name).read_text()
        assert (REPO / "services" / name).read_text() == generated, f"{name}: run make protos"
