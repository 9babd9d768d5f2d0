"""Formatting the local broker's storage with the real Kafka tools, for any cluster id."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

from gpu_analytics_tools.stack.kafka import KafkaBroker, new_cluster_id
from gpu_analytics_tools.stack.process import free_port


def test_cluster_id_starting_with_a_dash_formats(tmp_path: Path) -> None:
    # base64url of a first byte 0xF8..0xFB starts with "-": one id in 64 does.
    raw = bytes([0xF8]) + os.urandom(15)
    cluster_id = base64.urlsafe_b64encode(uuid.UUID(bytes=raw).bytes).decode().rstrip("=")
    assert cluster_id.startswith("-")
    (tmp_path / "cluster-id").write_text(cluster_id)
    broker = KafkaBroker(
        home=tmp_path, host="127.0.0.1", port=free_port(), controller_port=free_port()
    )
    broker.prepare()
    meta = (tmp_path / "data" / "meta.properties").read_text()
    assert f"cluster.id={cluster_id}" in meta


def test_new_cluster_ids_are_22_url_safe_characters() -> None:
    for _ in range(200):
        cid = new_cluster_id()
        assert len(cid) == 22 and set(cid) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
