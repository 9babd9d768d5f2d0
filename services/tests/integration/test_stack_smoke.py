"""The local stack carries real traffic: 10,000 messages through Kafka into the Mongo-wire server,
consumed by a group of two that commits only after each batch is stored."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient
from pymongo.errors import BulkWriteError

from gpu_analytics_tools.stack.stack import StackEnv
from gpu_analytics_tools.testing.fixtures import TopicFactory

pytestmark = pytest.mark.integration

MESSAGES = 10_000
PARTITIONS = 6
GROUP = "smoke"


async def _consume(
    stack: StackEnv, topic: str, db: str, stored: list[int], done: asyncio.Event
) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.bootstrap_servers,
        group_id=f"{GROUP}-{topic}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_uri)
    collection = client[db]["messages"]
    await consumer.start()
    try:
        while not done.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            for tp, records in batches.items():
                docs = [
                    {"_id": f"{tp.topic}:{tp.partition}:{r.offset}", **json.loads(r.value)}
                    for r in records
                ]
                try:
                    result = await collection.insert_many(docs, ordered=False)
                    stored[0] += len(result.inserted_ids)
                except BulkWriteError as exc:  # redelivered after a rebalance: already stored
                    stored[0] += exc.details["nInserted"]
                await consumer.commit({tp: records[-1].offset + 1})
            if stored[0] >= MESSAGES:
                done.set()
    finally:
        await consumer.stop()
        await client.close()


async def test_ten_thousand_messages_stored_exactly_once_and_committed(
    stack: StackEnv, new_topic: TopicFactory, mongo_db: str
) -> None:
    topic = await new_topic(partitions=PARTITIONS)
    rng = random.Random(20261127)
    stored = [0]
    done = asyncio.Event()
    consumers = [
        asyncio.create_task(_consume(stack, topic, mongo_db, stored, done)) for _ in range(2)
    ]

    producer = AIOKafkaProducer(
        bootstrap_servers=stack.bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        for seq in range(MESSAGES):
            gpu_uuid = f"GPU-{rng.randrange(64):04d}"
            payload = {"seq": seq, "gpu_uuid": gpu_uuid, "utilization": rng.random()}
            await producer.send(topic, json.dumps(payload).encode(), key=gpu_uuid.encode())
        await producer.flush()
    finally:
        await producer.stop()
    await asyncio.wait_for(done.wait(), timeout=120)
    elapsed = time.perf_counter() - started
    await asyncio.gather(*consumers)

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongodb_uri)
    try:
        collection = client[mongo_db]["messages"]
        assert await collection.count_documents({}) == MESSAGES
        seqs = [doc["seq"] async for doc in collection.find({}, {"seq": 1})]
        assert sorted(seqs) == list(range(MESSAGES))
    finally:
        await client.close()

    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
    await admin.start()
    end_consumer = AIOKafkaConsumer(bootstrap_servers=stack.bootstrap_servers)
    await end_consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{GROUP}-{topic}")
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await end_consumer.end_offsets(partitions)
        assert {tp: committed[tp].offset for tp in partitions} == ends
        assert sum(ends.values()) == MESSAGES
    finally:
        await end_consumer.stop()
        await admin.close()

    sys.stderr.write(
        f"\nsmoke: {MESSAGES} messages produced, stored and committed in "
        f"{elapsed:.2f}s = {MESSAGES / elapsed:,.0f} msg/s\n"
    )
