"""The whole pipeline: the real producer -> Kafka -> the real processor -> MongoDB."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gpu_analytics_tools.stack.stack import StackEnv
from gpu_analytics_tools.testing.fixtures import TopicFactory
from gpu_analytics_tools.testing.harness import PARTITIONS, Pipeline, Processor
from gpu_analytics_tools.testing.producer import end_offsets

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("gpu-analytics"))


async def test_every_produced_event_is_stored_exactly_once(
    stack: StackEnv, new_topic: TopicFactory, mongo_db: str, tmp_path: Path
) -> None:
    gpu_topic = await new_topic("gpu.", partitions=PARTITIONS)
    token_topic = await new_topic("tok.", partitions=PARTITIONS)
    line = Pipeline(
        stack, gpu_topic, token_topic, mongo_db, f"e2e-{uuid.uuid4().hex[:8]}", tmp_path
    )
    processor = await line.start_processor()
    try:
        await _produce_and_check(line, processor, tmp_path)
    finally:
        processor.stop()


async def _produce_and_check(line: Pipeline, processor: Processor, tmp_path: Path) -> None:
    stack, gpu_topic, token_topic = line.stack, line.gpu_topic, line.token_topic
    env = {
        **line.env(),
        "PRODUCER_SOURCE": "synthetic",
        "PRODUCER_RATE": "300",
        "PRODUCER_SEED": "7",
        "METRICS_PORT": "0",
    }
    with (tmp_path / "producer.log").open("wb") as log:
        producer = subprocess.Popen(
            [CLI, "producer"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        await asyncio.sleep(8)
    finally:
        producer.send_signal(signal.SIGTERM)
        assert producer.wait(timeout=60) == 0, (tmp_path / "producer.log").read_text()[-2000:]

    sent = {t: await end_offsets(stack.bootstrap_servers, [t]) for t in (gpu_topic, token_topic)}
    assert sent[gpu_topic] > 0 and sent[token_topic] > 0
    gpu_docs = await line.wait_stored(sent[gpu_topic], "gpu_metrics")
    token_docs = await line.wait_stored(sent[token_topic], "token_usage")
    assert len(gpu_docs) == sent[gpu_topic]
    assert len(token_docs) == sent[token_topic]
    # ids are the producer's UUIDs: nothing fell back to an offset id, nothing was merged
    assert all(uuid.UUID(doc["_id"]) for doc in gpu_docs + token_docs)
    assert await processor.metric("gpu_analytics_events_duplicate_total") == 0
    assert await processor.metric("gpu_analytics_events_invalid_total") == 0
