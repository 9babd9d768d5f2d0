"""Fixtures for the processor tests: a Pipeline (topics, database, group) per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gpu_analytics.stack.fixtures import StackEnv, TopicFactory
from gpu_analytics.stack.harness import PARTITIONS, Pipeline, gpu_event
from gpu_analytics.stack.topics import create_topics


@pytest.fixture
async def pipeline(
    stack: StackEnv, new_topic: TopicFactory, mongo_db: str, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    gpu_topic = await new_topic("gpu.", partitions=PARTITIONS)
    token_topic = await new_topic("tok.", partitions=PARTITIONS)
    await create_topics(stack.bootstrap_servers, {f"{gpu_topic}.dlq": 1, f"{token_topic}.dlq": 1})
    line = Pipeline(stack, gpu_topic, token_topic, mongo_db, f"g-{uuid.uuid4().hex[:8]}", tmp_path)
    try:
        yield line
    finally:
        for processor in line.processors:
            processor.stop()


@pytest.fixture
def make_gpu_event() -> Callable[..., dict[str, Any]]:
    return gpu_event
