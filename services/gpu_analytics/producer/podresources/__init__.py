"""Which pod holds which GPU: the kubelet's PodResources API (v1 List, gRPC on a unix socket)."""

from __future__ import annotations

from gpu_analytics.producer.podresources.client import Holder, PodResources, holder_fields

__all__ = ["Holder", "PodResources", "holder_fields"]
