"""One consumer run for the processor CPU benchmark, in a process of its own.

    python consume_worker.py ours|reference BOOTSTRAP MONGODB_URI TOPIC EVENTS

`ours` runs the processor's EventConsumer (validation, dead-lettering, metrics, idempotent bulk
insert, commit); `reference` is the bare loop: aiokafka getmany -> orjson decode -> pymongo
insert_many -> commit. Both read the same pre-produced topic from the start with a fresh group
into a fresh database, and print {"cpu_s", "wall_s", "stored"} as one JSON line: CPU time of
this process from consumer start to the last insert.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from gpu_analytics.config import ProcessorSettings
from gpu_analytics.processor import metrics
from gpu_analytics.processor.consumer import EventConsumer
from gpu_analytics.processor.publisher import EventPublisher


async def ours(bootstrap: str, mongo_uri: str, topic: str, events: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    settings = ProcessorSettings(
        kafka_bootstrap_servers=bootstrap,
        mongodb_uri=mongo_uri,
        mongodb_db=f"bench_{run}",
        topic_gpu_metrics=topic,
        topic_token_usage=f"{topic}.unused",
        consumer_group=f"o-{run}",
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    publisher = EventPublisher(bootstrap)
    await publisher.start()
    stored = metrics.EVENTS_STORED.labels(topic)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    task = asyncio.create_task(
        EventConsumer(settings, client[settings.mongodb_db], publisher).run()
    )
    while stored._value.get() < events:  # noqa: SLF001 - reading our own counter in-process
        await asyncio.sleep(0.05)  # the poll itself costs CPU: keep it rare
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await publisher.stop()
    await client.drop_database(settings.mongodb_db)
    await client.close()
    return {"cpu_s": cpu, "wall_s": wall, "stored": stored._value.get()}  # noqa: SLF001


async def reference(bootstrap: str, mongo_uri: str, topic: str, events: int) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    collection = client[f"ref_{run}"]["gpu_metrics"]
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"r-{run}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await consumer.start()
    stored = 0
    while stored < events:
        for tp, records in (await consumer.getmany(timeout_ms=500, max_records=1000)).items():
            docs = []
            for record in records:
                doc = orjson.loads(record.value)
                doc["_id"] = doc.pop("event_id")
                docs.append(doc)
            stored += len((await collection.insert_many(docs, ordered=False)).inserted_ids)
            await consumer.commit({tp: records[-1].offset + 1})
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await consumer.stop()
    await client.drop_database(f"ref_{run}")
    await client.close()
    return {"cpu_s": cpu, "wall_s": wall, "stored": stored}


def main() -> None:
    mode, bootstrap, mongo_uri, topic, events = sys.argv[1:6]
    run = ours if mode == "ours" else reference
    result = asyncio.run(run(bootstrap, mongo_uri, topic, int(events)))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
