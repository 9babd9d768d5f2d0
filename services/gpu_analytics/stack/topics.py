"""The pipeline's topics as declared for the cluster (platform/kafka/base/topics.conf),
created idempotently on the local broker too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from gpu_analytics.stack.paths import repo_root


def declared_topics(path: Path | None = None) -> dict[str, int]:
    """`name partitions` per line; `#` starts a comment."""
    path = path or repo_root() / "platform" / "kafka" / "base" / "topics.conf"
    topics: dict[str, int] = {}
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            name, partitions = fields
            topics[name] = int(partitions)
    return topics


async def create_topics(bootstrap_servers: str, topics: dict[str, int]) -> list[str]:
    """Create those of `topics` (name -> partitions) that do not exist; return their names."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(n, p, replication_factor=1) for n, p in topics.items() if n not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:  # created concurrently: that is the goal anyway
                pass
        return [t.name for t in missing]
    finally:
        await admin.close()


def ensure_topics(bootstrap_servers: str, topics: dict[str, int] | None = None) -> list[str]:
    """Create the declared topics that do not exist yet; return the names created."""
    return asyncio.run(create_topics(bootstrap_servers, topics or declared_topics()))
