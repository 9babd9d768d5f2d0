"""Fixtures for the processor tests: a Pipeline (topics, database, group) per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gpu_analytics.stack.fixtures import StackEnv, TopicFactory
from gpu_analytics.stack.harness import PARTITIONS, Pipeline, gpu_event, new_topic_named


@pytest.fixture
async def pipeline(
    stack: StackEnv, new_topic: TopicFactory, mongo_db: str, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    gpu_topic = await new_topic("gpu.", partitions=PARTITIONS)
    token_topic = await new_topic("tok.", partitions=PARTITIONS)
    for topic in (gpu_topic, token_topic):
        await new_topic_named(stack, f"{topic}.dlq")
    line = Pipeline(stack, gpu_topic, token_topic, mongo_db, f"g-{uuid.uuid4().hex[:8]}", tmp_path)
    try:
        yield line
    finally:
        for processor in line.processors:
            processor.stop()


@pytest.fixture
def make_gpu_event() -> Callable[..., dict[str, Any]]:
    return gpu_event
