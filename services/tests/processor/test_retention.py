"""Retention: the TTL index on `ts` of both collections (RETENTION_DAYS) and the retention of
every topic of platform/kafka/base/topics.conf, applied by both topic creators.

Everything here runs on the local MongoDB-wire server (SecantusDB) and, in the GitHub job
integration-real-services, on real mongo:8 and apache/kafka. SecantusDB does what these tests
ask of MongoDB: TTL indexes, `collMod` with `index: {name, expireAfterSeconds}` (the old and new
expiry are echoed as mongod does) and expiry itself, by a sweeper that runs every 60 s as
mongod's TTL monitor does. What neither test server has is authentication, so the path taken
when the app user lacks the `collMod` privilege (the cluster's least-privilege `readWrite`
user) is driven by answering `collMod` with mongod's Unauthorized error; the drop and create
that follow run for real.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from gpu_analytics.processor import retention
from gpu_analytics.processor.retention import TtlChange, ensure_ttl
from gpu_analytics.processor.storage import COLLECTIONS, init_storage
from gpu_analytics_tools.stack import kafka as local_kafka
from gpu_analytics_tools.stack.paths import repo_root
from gpu_analytics_tools.stack.stack import StackEnv
from gpu_analytics_tools.stack.topics import (
    TopicSpec,
    create_topics,
    declared_topic_specs,
    topic_overrides,
)

pytestmark = pytest.mark.integration

DAY = 86_400
Doc = dict[str, Any]


@pytest.fixture
async def db(stack: StackEnv, mongo_db: str) -> AsyncIterator[AsyncDatabase[Doc]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(stack.mongodb_uri, tz_aware=True)
    try:
        yield client[mongo_db]
    finally:
        await client.close()


async def ts_indexes(db: AsyncDatabase[Doc], collection: str) -> dict[str, Doc]:
    """The single-field indexes on `ts` of `collection`, by name (there must be one)."""
    info = await db[collection].index_information()
    return {name: index for name, index in info.items() if [k for k, _ in index["key"]] == ["ts"]}


async def assert_ttl(db: AsyncDatabase[Doc], days: int) -> None:
    for collection in COLLECTIONS:
        indexes = await ts_indexes(db, collection)
        assert list(indexes) == [retention.TTL_INDEX_NAME], indexes
        (index,) = indexes.values()
        assert index["key"] == [("ts", -1)]
        assert index["expireAfterSeconds"] == days * DAY
        # list_indexes says the same as index_information.
        listed = await retention.ttl_index(db[collection])
        assert listed is not None and listed["expireAfterSeconds"] == days * DAY


# -- MongoDB -----------------------------------------------------------------------------


async def test_created_on_first_start_with_30_days_then_unchanged(
    stack: StackEnv, mongo_db: str, db: AsyncDatabase[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RETENTION_DAYS", raising=False)
    client: AsyncMongoClient[Doc] = AsyncMongoClient(stack.mongodb_uri, tz_aware=True)
    try:
        await init_storage(client, mongo_db)  # what the processor does at start
    finally:
        await client.close()
    await assert_ttl(db, 30)
    # The other indexes are still there, the Beanie ones included.
    assert "gpu_uuid_1_ts_-1" in await db["gpu_metrics"].index_information()
    assert "ts_-1_model_1" in await db["token_usage"].index_information()

    assert await ensure_ttl(db, 30) == dict.fromkeys(COLLECTIONS, TtlChange.UNCHANGED)
    await assert_ttl(db, 30)


async def test_first_call_creates(db: AsyncDatabase[Doc]) -> None:
    assert await ensure_ttl(db, 30) == dict.fromkeys(COLLECTIONS, TtlChange.CREATED)
    await assert_ttl(db, 30)


async def test_changed_in_place_when_days_change(
    stack: StackEnv, mongo_db: str, db: AsyncDatabase[Doc]
) -> None:
    await ensure_ttl(db, 30)
    await db["gpu_metrics"].insert_one({"_id": "e1", "ts": datetime.now(UTC)})
    assert await ensure_ttl(db, 7) == dict.fromkeys(COLLECTIONS, TtlChange.UPDATED)
    await assert_ttl(db, 7)
    assert await ensure_ttl(db, 7) == dict.fromkeys(COLLECTIONS, TtlChange.UNCHANGED)
    # A processor started with RETENTION_DAYS=90 later: changed again, still one index, and
    # Beanie's own index creation does not bring back a second one on ts.
    client: AsyncMongoClient[Doc] = AsyncMongoClient(stack.mongodb_uri, tz_aware=True)
    try:
        await init_storage(client, mongo_db, retention_days=90)
    finally:
        await client.close()
    await assert_ttl(db, 90)
    assert await db["gpu_metrics"].count_documents({}) == 1


async def test_plain_ts_index_of_earlier_releases_becomes_the_ttl_index(
    db: AsyncDatabase[Doc],
) -> None:
    """Before retention, Beanie created a plain `ts_-1` on gpu_metrics: a second index on the
    same key with an expiry would be refused, so that one gets the expiry (collMod)."""
    await db["gpu_metrics"].create_index([("ts", -1)])
    assert "expireAfterSeconds" not in (await ts_indexes(db, "gpu_metrics"))["ts_-1"]
    assert await ensure_ttl(db, 30) == {
        "gpu_metrics": TtlChange.UPDATED,
        "token_usage": TtlChange.CREATED,
    }
    await assert_ttl(db, 30)


async def test_without_collmod_privilege_the_index_is_rebuilt(
    db: AsyncDatabase[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    """MongoDB's readWrite role may create and drop indexes but not run collMod."""
    await ensure_ttl(db, 30)
    command = AsyncDatabase.command
    refused: list[str] = []

    async def no_collmod(self: AsyncDatabase[Doc], cmd: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(cmd, dict) and "collMod" in cmd:
            refused.append(cmd["collMod"])
            raise OperationFailure(
                f"not authorized on {self.name} to execute command {{ collMod: ... }}",
                code=retention.UNAUTHORIZED,
            )
        return await command(self, cmd, *args, **kwargs)

    monkeypatch.setattr(AsyncDatabase, "command", no_collmod)
    assert await ensure_ttl(db, 14) == dict.fromkeys(COLLECTIONS, TtlChange.UPDATED)
    assert refused == list(COLLECTIONS)
    await assert_ttl(db, 14)


async def test_other_collmod_errors_propagate(
    db: AsyncDatabase[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    await ensure_ttl(db, 30)

    async def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationFailure("boom", code=72)  # InvalidOptions

    monkeypatch.setattr(AsyncDatabase, "command", failing)
    with pytest.raises(OperationFailure):
        await ensure_ttl(db, 7)
    monkeypatch.undo()
    await assert_ttl(db, 30)  # nothing dropped


async def test_less_than_a_day_is_refused(db: AsyncDatabase[Doc]) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        await ensure_ttl(db, 0)


async def test_expired_events_are_deleted(db: AsyncDatabase[Doc]) -> None:
    """The server's TTL monitor deletes what is older than RETENTION_DAYS. It runs every 60 s
    (mongod's ttlMonitorSleepSecs default, and SecantusDB's sweeper), so this waits up to
    two rounds."""
    now = datetime.now(UTC)
    for collection in COLLECTIONS:
        await db[collection].insert_many(
            [
                {"_id": "old", "ts": now - timedelta(days=31)},
                {"_id": "kept", "ts": now - timedelta(days=29)},
                {"_id": "new", "ts": now},
            ]
        )
    await ensure_ttl(db, 30)
    deadline = time.monotonic() + 150
    left: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        left = {c: sorted(await db[c].distinct("_id")) for c in COLLECTIONS}
        if all(ids == ["kept", "new"] for ids in left.values()):
            break
        await asyncio.sleep(2)
    assert left == dict.fromkeys(COLLECTIONS, ["kept", "new"])


# -- Kafka -------------------------------------------------------------------------------


def test_every_declared_topic_has_a_retention() -> None:
    specs = declared_topic_specs()
    assert {"gpu.metrics.v1", "token.usage.v1", "gpu.metrics.v1.dlq", "token.usage.v1.dlq"} <= set(
        specs
    )
    for name, spec in specs.items():
        assert int(spec.configs["retention.ms"]) >= DAY * 1000, name
        # Kafka deletes closed segments only: a segment must roll well within the retention.
        assert int(spec.configs["segment.ms"]) < int(spec.configs["retention.ms"]), name


def test_topics_conf_format(tmp_path: Path) -> None:
    conf = tmp_path / "topics.conf"
    conf.write_text("# comment\na 3 retention.ms=10 x.y=z  # trailing\n\nb 1\n")
    assert declared_topic_specs(conf) == {
        "a": TopicSpec(3, {"retention.ms": "10", "x.y": "z"}),
        "b": TopicSpec(1, {}),
    }
    conf.write_text("a 3 retention.ms\n")
    with pytest.raises(ValueError, match="topics.conf:1"):
        declared_topic_specs(conf)


@pytest.fixture
async def admin(stack: StackEnv) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def declared_here(admin: AIOKafkaAdminClient) -> AsyncIterator[dict[str, TopicSpec]]:
    """topics.conf's topics under names of this test's own (the broker may be shared);
    deleted afterwards."""
    suffix = uuid.uuid4().hex[:8]
    specs = {f"t.ret.{suffix}.{n}": s for n, s in declared_topic_specs().items()}
    yield specs
    existing = set(await admin.list_topics())
    if gone := [t for t in specs if t in existing]:
        await admin.delete_topics(gone)


def wanted(specs: dict[str, TopicSpec]) -> dict[str, dict[str, str]]:
    return {name: dict(spec.configs) for name, spec in specs.items()}


async def settled_overrides(
    admin: AIOKafkaAdminClient, expected: dict[str, dict[str, str]], timeout: float = 15
) -> dict[str, dict[str, str]]:
    """The topics' overrides once they are `expected` (or the last seen after `timeout`): a
    broker applies a config change a moment after the controller acknowledged it."""
    deadline = time.monotonic() + timeout
    while True:
        seen = await topic_overrides(admin, list(expected))
        if seen == expected or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.2)


async def test_created_topics_get_the_declared_retention(
    stack: StackEnv, admin: AIOKafkaAdminClient, declared_here: dict[str, TopicSpec]
) -> None:
    assert sorted(await create_topics(stack.bootstrap_servers, declared_here)) == sorted(
        declared_here
    )
    assert await settled_overrides(admin, wanted(declared_here)) == wanted(declared_here)
    # Idempotent: nothing created, nothing changed.
    assert await create_topics(stack.bootstrap_servers, declared_here) == []
    assert await topic_overrides(admin, list(declared_here)) == wanted(declared_here)


async def test_existing_topics_get_the_declared_retention(
    stack: StackEnv, admin: AIOKafkaAdminClient, declared_here: dict[str, TopicSpec]
) -> None:
    """Topics created before retention was declared (or with another value) get it; their
    other overrides stay."""
    first, *_ = declared_here
    await admin.create_topics(
        [
            NewTopic(
                first,
                6,
                1,
                topic_configs={"retention.ms": "3600000", "max.message.bytes": "2000000"},
            )
        ]
    )
    assert await create_topics(stack.bootstrap_servers, declared_here) == list(declared_here)[1:]
    expected = wanted(declared_here)
    expected[first]["max.message.bytes"] = "2000000"
    assert await settled_overrides(admin, expected) == expected


def _kafka_tools(bin_dir: Path) -> Path | None:
    """kafka-*.sh shims over the Maven jars `make setup` installs (the image has the scripts)."""
    try:
        java, classpath = local_kafka.java_binary(), local_kafka.classpath()
    except local_kafka.KafkaSetupError:
        return None
    bin_dir.mkdir()
    for script, tool in (
        ("kafka-topics.sh", "TopicCommand"),
        ("kafka-configs.sh", "ConfigCommand"),
        ("kafka-broker-api-versions.sh", "BrokerApiVersionsCommand"),
    ):
        path = bin_dir / script
        path.write_text(
            f'#!/bin/bash\nexec "{java}" -cp "{classpath}" org.apache.kafka.tools.{tool} "$@"\n'
        )
        path.chmod(0o755)
    return bin_dir


async def test_cluster_topic_job_script_applies_retention(
    stack: StackEnv,
    admin: AIOKafkaAdminClient,
    declared_here: dict[str, TopicSpec],
    tmp_path: Path,
) -> None:
    """platform/kafka/base/create-topics.sh (the PostSync Job) on this broker: it creates the
    missing topics with their configs and sets them on existing ones (kafka-configs.sh)."""
    bin_dir = _kafka_tools(tmp_path / "bin")
    if bin_dir is None or shutil.which("bash") is None:
        pytest.skip("Kafka tools jars or java not installed here (make setup)")
    existing, new = list(declared_here)[0], list(declared_here)[-1]
    await admin.create_topics([NewTopic(existing, 1, 1)])
    conf = tmp_path / "topics.conf"
    conf.write_text(
        "# as platform/kafka/base/topics.conf, two of its topics\n"
        + "".join(
            f"{n} {declared_here[n].partitions} "
            + " ".join(f"{k}={v}" for k, v in declared_here[n].configs.items())
            + "  # a comment\n"
            for n in (existing, new)
        )
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "KAFKA_REPLICATION_FACTOR": "1",
        "KAFKA_MIN_INSYNC_REPLICAS": "1",
        "KAFKA_BIN_DIR": str(bin_dir),
        "TOPICS_CONF": str(conf),
    }
    script = repo_root() / "platform" / "kafka" / "base" / "create-topics.sh"
    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    # The script also sets min.insync.replicas on the topics it creates.
    expected = {n: dict(declared_here[n].configs) for n in (existing, new)}
    expected[new]["min.insync.replicas"] = "1"
    assert await settled_overrides(admin, expected) == expected
    partitions = {
        d["topic"]: len(d["partitions"]) for d in await admin.describe_topics([existing, new])
    }
    assert partitions == {n: declared_here[n].partitions for n in (existing, new)}
