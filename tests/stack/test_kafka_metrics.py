"""The local broker runs with the JMX exporter agent and the file the cluster's brokers use
(platform/kafka/base/jmx-exporter.yaml): what the rules and the dashboard read is there, and
nothing the file does not select."""

from __future__ import annotations

import httpx
import pytest

from gpu_analytics_tools.observability.prometheus import exposition_samples
from gpu_analytics_tools.stack.kafka import jmx_agent
from gpu_analytics_tools.stack.stack import StackEnv


@pytest.mark.integration
def test_the_broker_publishes_replication_and_request_metrics(stack: StackEnv) -> None:
    if stack.local is None:
        pytest.skip("an outside broker: its metrics are not ours to read")
    assert jmx_agent() is not None, "the JMX exporter agent is missing: run make setup"
    address = stack.local.kafka.metrics_address
    assert address is not None
    text = httpx.get(f"http://{address}/metrics", timeout=10).text
    for name in (
        "kafka_server_replicamanager_underreplicatedpartitions",
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        "kafka_server_replicamanager_isrshrinks_total",
        "kafka_server_brokertopicmetrics_messagesin_total",
    ):
        assert exposition_samples(text, name), name
    produce = exposition_samples(
        text, "kafka_network_requestmetrics_totaltimems", request="Produce", quantile="0.99"
    )
    assert len(produce) == 1
    # Only what jmx-exporter.yaml selects: no default JMX dump of every MBean.
    assert not [ln for ln in text.splitlines() if ln.startswith("kafka_") and "persec_" in ln]
    assert "kafka_coordinator" not in text
