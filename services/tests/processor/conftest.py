"""Fixtures for the processor tests: a Pipeline (topics, database, group) per test, on the
session's stack (`pipeline`) or, for tests that stop and start servers, on a stack of the
module's own (`line`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gpu_analytics_tools.stack.stack import StackEnv, private_stack
from gpu_analytics_tools.stack.topics import create_topics
from gpu_analytics_tools.testing.fixtures import TopicFactory
from gpu_analytics_tools.testing.harness import PARTITIONS, Pipeline, gpu_event


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


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    """A stack of the module's own, for tests that stop and start its servers."""
    with private_stack(tmp_path_factory.mktemp("own-stack")) as env:
        yield env


@pytest.fixture
async def line(own_stack: StackEnv, tmp_path: Path) -> AsyncIterator[Pipeline]:
    """A Pipeline on the module's own stack."""
    suffix = uuid.uuid4().hex[:8]
    pipeline = Pipeline(
        own_stack, f"gpu.{suffix}", f"tok.{suffix}", f"db_{suffix}", f"g-{suffix}", tmp_path
    )
    topics = (pipeline.gpu_topic, pipeline.token_topic)
    await create_topics(
        own_stack.bootstrap_servers,
        {**dict.fromkeys(topics, PARTITIONS), **{f"{t}.dlq": 1 for t in topics}},
    )
    try:
        yield pipeline
    finally:
        for processor in pipeline.processors:
            processor.stop()
