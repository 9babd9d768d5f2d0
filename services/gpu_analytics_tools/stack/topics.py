"""The pipeline's topics as declared for the cluster (platform/kafka/base/topics.conf),
created idempotently on the local broker too, with their declared configs (retention.ms)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from gpu_analytics_tools.stack.paths import repo_root

# DescribeConfigs' config_source of a per-topic override (KIP-226).
DYNAMIC_TOPIC_CONFIG = 1
UNKNOWN_TOPIC_OR_PARTITION = 3
# How long a topic that was just created may stay unknown to the broker that is asked.
METADATA_WAIT_S = 10.0


@dataclass(frozen=True)
class TopicSpec:
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)


def declared_topic_specs(path: Path | None = None) -> dict[str, TopicSpec]:
    """`name partitions [key=value ...]` per line (topic configs such as retention.ms);
    `#` starts a comment."""
    path = path or repo_root() / "platform" / "kafka" / "base" / "topics.conf"
    topics: dict[str, TopicSpec] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 2 or not all("=" in kv for kv in fields[2:]):
            raise ValueError(f"{path}:{number}: expected `name partitions [key=value ...]`")
        name, partitions, *configs = fields
        topics[name] = TopicSpec(int(partitions), dict(kv.split("=", 1) for kv in configs))
    return topics


def declared_topics(path: Path | None = None) -> dict[str, int]:
    """Name -> partitions of the declared topics."""
    return {name: spec.partitions for name, spec in declared_topic_specs(path).items()}


async def create_topics(bootstrap_servers: str, topics: Mapping[str, int | TopicSpec]) -> list[str]:
    """Create those of `topics` (name -> partitions or spec) that do not exist, with their
    configs, and set the configs of those that exist where they differ; return the names
    created."""
    specs = {n: s if isinstance(s, TopicSpec) else TopicSpec(s) for n, s in topics.items()}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(n, s.partitions, replication_factor=1, topic_configs=dict(s.configs))
            for n, s in specs.items()
            if n not in existing
        ]
        created: list[str] = []
        if missing:
            # aiokafka returns the per-topic errors rather than raising them.
            response = (await admin.create_topics(missing)).to_object()
            for error in response["topic_errors"]:
                if error["error_code"] == 0:
                    created.append(error["topic"])
                elif error["error_code"] != TopicAlreadyExistsError.errno:
                    # (already there: created concurrently, or listed late; configs below)
                    raise RuntimeError(
                        f"creating topic {error['topic']}: error {error['error_code']} "
                        f"{error.get('error_message') or ''}".rstrip()
                    )
        await apply_topic_configs(
            admin, {n: s.configs for n, s in specs.items() if n not in created and s.configs}
        )
        return created
    finally:
        await admin.close()


async def apply_topic_configs(
    admin: AIOKafkaAdminClient, wanted: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """Set these configs on existing topics where they differ; return the topics changed.

    AlterConfigs replaces a topic's whole set of overrides, so the overrides it has are read
    first and kept (kafka-configs.sh --alter --add-config does the same)."""
    current = await topic_overrides(admin, list(wanted))
    changed = {
        topic: {**current[topic], **configs}
        for topic, configs in wanted.items()
        if any(current[topic].get(k) != v for k, v in configs.items())
    }
    if changed:
        resources = [ConfigResource(ConfigResourceType.TOPIC, t, c) for t, c in changed.items()]
        for response in await admin.alter_configs(resources):
            for error_code, message, _type, name in response.resources:
                if error_code:
                    raise RuntimeError(f"altering the configs of topic {name}: {message}")
    return list(changed)


async def topic_overrides(
    admin: AIOKafkaAdminClient, topics: list[str]
) -> dict[str, dict[str, str]]:
    """The per-topic config overrides (not the broker's defaults) of each of `topics`."""
    overrides: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + METADATA_WAIT_S
    while pending := [t for t in dict.fromkeys(topics) if t not in overrides]:
        resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in pending]
        for resource in _resources(await admin.describe_configs(resources)):
            name, error = resource["resource_name"], resource["error_code"]
            if error == UNKNOWN_TOPIC_OR_PARTITION and time.monotonic() < deadline:
                continue  # just created: this broker does not know it yet
            if error:
                raise RuntimeError(
                    f"describing topic {name}: error {error} {resource['error_message']}"
                )
            overrides[name] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if entry.get("config_source", DYNAMIC_TOPIC_CONFIG) == DYNAMIC_TOPIC_CONFIG
                and not entry.get("is_default", False)
                and entry["config_value"] is not None  # a sensitive value is not shown
            }
        if set(overrides) < set(topics):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no configs described for topics {pending}")
            await asyncio.sleep(0.2)
    return overrides


def _resources(responses: list[Any]) -> list[dict[str, Any]]:
    return [r for response in responses for r in response.to_object()["resources"]]


def ensure_topics(
    bootstrap_servers: str, topics: Mapping[str, int | TopicSpec] | None = None
) -> list[str]:
    """Create the declared topics that do not exist yet and apply their configs; return the
    names created."""
    return asyncio.run(create_topics(bootstrap_servers, topics or declared_topic_specs()))


async def topic_partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
    """The partitions of those `topics` that exist (a missing one is not auto-created)."""
    existing = set(await admin.list_topics())
    wanted = [t for t in topics if t in existing]
    if not wanted:
        return []
    return [
        TopicPartition(desc["topic"], part["partition"])
        for desc in await admin.describe_topics(wanted)
        for part in desc["partitions"]
    ]
