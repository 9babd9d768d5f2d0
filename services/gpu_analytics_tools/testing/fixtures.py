"""pytest fixtures over the local stack, imported by the test suites' conftest files.

`stack` is one real Kafka broker + MongoDB-wire server for the whole session, on free ports in a
temporary folder (so it never collides with a `make dev` stack). Set TEST_KAFKA_BOOTSTRAP_SERVERS
and TEST_MONGODB_URI to run the same tests against servers started elsewhere (CI service
containers with the real `apache/kafka` and `mongo` images). Every test gets its own topics and
database, so tests stay independent.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from gpu_analytics_tools.stack.stack import StackEnv, private_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEnv]:
    kafka, mongo = (
        os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"),
        os.environ.get("TEST_MONGODB_URI"),
    )
    if kafka and mongo:
        yield StackEnv(bootstrap_servers=kafka, mongodb_uri=mongo, local=None)
        return
    with private_stack(Path(tmp_path_factory.mktemp("stack"))) as env:
        yield env


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
async def new_topic(stack: StackEnv, request: pytest.FixtureRequest) -> AsyncIterator[TopicFactory]:
    """Create topics named after the test with a random suffix; `await new_topic(partitions=6)`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
    await admin.start()
    created: list[str] = []

    async def create(suffix: str = "", *, partitions: int = 1) -> str:
        name = f"t.{request.node.name[:40]}.{suffix}{uuid.uuid4().hex[:8]}".replace("[", "-")
        name = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        created.append(name)
        return name

    try:
        yield create
    finally:
        if created:
            await admin.delete_topics(created)
        await admin.close()


@pytest.fixture
async def mongo_db(stack: StackEnv) -> AsyncIterator[str]:
    """A fresh database name for this test, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.mongodb_uri)
    try:
        await client.drop_database(name)
    finally:
        await client.close()
