"""The pod, namespace and container holding each GPU, from the kubelet's PodResources API.

The NVIDIA device plugin advertises each GPU as a device of `nvidia.com/gpu` whose id is the
GPU's UUID (with time-slicing `<uuid>::<n>`, one id per replica), and each MIG slice as a device
of `nvidia.com/mig-<profile>` whose id is the slice's `MIG-...` UUID. The kubelet's List answer
names the devices every container holds; a slice maps to its parent GPU through
`parent_of` (NVML knows it). A GPU held by containers of more than one pod (shared by MIG
slices or time-slicing) is left unattributed: its time cannot be given to one of them.

The socket is read-only (hostPath /var/lib/kubelet/pod-resources). Absent, unreadable or
answering errors: GPUs go out unattributed, `gpu_analytics_pod_resources_up` is 0 and
`gpu_analytics_pod_resources_errors_total{reason}` says why; the producer goes on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc

from gpu_analytics.producer.podresources import api_pb2

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
LIST = "/v1.PodResourcesLister/List"
GPU_RESOURCES = ("nvidia.com/gpu", "nvidia.com/mig-")  # the second a prefix


_RPC_REASONS = {
    grpc.StatusCode.PERMISSION_DENIED: "permission_denied",
    grpc.StatusCode.UNAVAILABLE: "unavailable",
}


class _Unusable(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Holder:
    namespace: str
    pod: str
    container: str


def holder_fields(holder: Holder | None) -> dict[str, str | None]:
    """The namespace, pod and container fields of a gpu.metrics.v1 event (null: no pod)."""
    if holder is None:
        return {"namespace": None, "pod": None, "container": None}
    return {"namespace": holder.namespace, "pod": holder.pod, "container": holder.container}


def holders_of(
    answer: api_pb2.ListPodResourcesResponse, parent_of: Mapping[str, str] | None = None
) -> dict[str, Holder]:
    """GPU UUID -> the container holding it, from a List answer."""
    parent_of = parent_of or {}
    seen: dict[str, set[Holder]] = {}
    for pod in answer.pod_resources:
        for container in pod.containers:
            for devices in container.devices:
                if not devices.resource_name.startswith(GPU_RESOURCES):
                    continue
                for device in devices.device_ids:
                    uuid = device.split("::", 1)[0]  # time-slicing replica suffix
                    uuid = parent_of.get(uuid, uuid)
                    holder = Holder(pod.namespace, pod.name, container.name)
                    seen.setdefault(uuid, set()).add(holder)
    out = {}
    for uuid, holders in seen.items():
        if len({(h.namespace, h.pod) for h in holders}) == 1:
            out[uuid] = min(holders, key=lambda h: h.container)
    return out


class PodResources:
    """Asks the kubelet at most every `refresh_s`; between asks, the last answer holds."""

    def __init__(
        self,
        socket_path: str = DEFAULT_SOCKET,
        *,
        refresh_s: float = 10.0,
        timeout_s: float = 2.0,
        on_error: Callable[[str], None] = lambda _reason: None,
        on_state: Callable[[bool], None] = lambda _up: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.socket_path = socket_path
        self._refresh_s = refresh_s
        self._timeout_s = timeout_s
        self._on_error = on_error
        self._on_state = on_state
        self._clock = clock
        self._asked = -float("inf")
        self._holders: dict[str, Holder] = {}
        self._last_reason: str | None = None
        self._channel: grpc.Channel | None = None
        self._call: grpc.UnaryUnaryMultiCallable | None = None

    def holders(self, parent_of: Mapping[str, str] | None = None) -> dict[str, Holder]:
        now = self._clock()
        if now - self._asked >= self._refresh_s:
            self._asked = now
            self._refresh(parent_of)
        return self._holders

    def _refresh(self, parent_of: Mapping[str, str] | None) -> None:
        try:
            answer = self._list()
        except _Unusable as exc:
            self._holders = {}
            self._on_error(exc.reason)
            self._on_state(False)
            if exc.reason != self._last_reason:  # once per change, not every refresh
                log.warning(
                    "GPUs go out without their pod: the kubelet's PodResources API is not usable",
                    extra={"socket": self.socket_path, "reason": exc.reason, "detail": str(exc)},
                )
            self._last_reason = exc.reason
            return
        self._holders = holders_of(answer, parent_of)
        if self._last_reason is not None:
            log.info("pod attribution restored", extra={"socket": self.socket_path})
        self._last_reason = None
        self._on_state(True)

    def _list(self) -> api_pb2.ListPodResourcesResponse:
        """The kubelet's List answer; raises _Unusable with the reason it cannot be had."""
        if not os.path.exists(self.socket_path):
            raise _Unusable("socket_missing", self.socket_path)
        if not os.access(self.socket_path, os.R_OK | os.W_OK):
            raise _Unusable("permission_denied", f"no read and write access to {self.socket_path}")
        if self._call is None:
            self._channel = grpc.insecure_channel(f"unix://{self.socket_path}")
            self._call = self._channel.unary_unary(
                LIST,
                request_serializer=api_pb2.ListPodResourcesRequest.SerializeToString,
                response_deserializer=api_pb2.ListPodResourcesResponse.FromString,
            )
        try:
            answer: api_pb2.ListPodResourcesResponse = self._call(
                api_pb2.ListPodResourcesRequest(), timeout=self._timeout_s
            )
        except grpc.RpcError as exc:
            # A new channel next time: a restarted kubelet makes a new socket, and a channel
            # in reconnect backoff would fail the next ask at once.
            self.close()
            code = exc.code() if isinstance(exc, grpc.Call) else None
            detail = str(exc.details()) if isinstance(exc, grpc.Call) else repr(exc)
            raise _Unusable(_RPC_REASONS.get(code, "rpc_error"), detail) from exc
        return answer

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = self._call = None
