"""A Kafka outage delays delivery, and loses nothing: it runs on a stack of its own, since it
stops the broker (the session's stack is shared by every other test)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gpu_analytics.config import ProducerSettings
from gpu_analytics.producer.service import ProducerService
from gpu_analytics_tools.stack.stack import LocalStack, private_stack
from gpu_analytics_tools.testing.producer import SEED, read_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATE = 200.0
OUTAGE_S = 8


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with private_stack(tmp_path_factory.mktemp("producer-outage")) as env:
        assert env.local is not None
        yield env.local


async def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_broker_down_delays_delivery_and_every_event_arrives(
    own_stack: LocalStack,
) -> None:
    bootstrap = own_stack.env()["KAFKA_BOOTSTRAP_SERVERS"]
    gpu_topic, token_topic = "outage.gpu", "outage.tok"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, 3, 1) for t in (gpu_topic, token_topic)])
    finally:
        await admin.close()
    settings = ProducerSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_gpu_metrics=gpu_topic,
        topic_token_usage=token_topic,
        producer_rate=RATE,
        producer_source="synthetic",
        producer_seed=SEED,
        metrics_port=0,
    )
    service = ProducerService(settings)
    running = asyncio.create_task(service.run(handle_signals=False))

    def sent() -> int:
        return sum(service.publisher.sent.values()) if service.publisher else 0

    await _wait_for(lambda: sent() > 400, 30, "events before the outage")
    await asyncio.to_thread(own_stack.stop_service, "kafka")
    down_at, produced_at = sent(), service.produced
    await asyncio.sleep(OUTAGE_S)

    assert not running.done(), "the producer died with the broker"
    assert service.alive()
    assert sent() - down_at < RATE  # what was in flight at most; then nothing acknowledged
    # Sampling goes on at the rate: the samples wait in the buffer, there is no gap.
    assert service.produced - produced_at >= RATE * (OUTAGE_S - 1)
    assert service.publisher is not None and service.publisher.pending >= RATE * (OUTAGE_S - 1)
    await asyncio.to_thread(own_stack.start_service, "kafka")
    await _wait_for(
        lambda: sent() > down_at + RATE * OUTAGE_S, 90, "delivery to resume after the outage"
    )
    service.stop()
    assert await asyncio.wait_for(running, 60) == 0

    ids: set[str] = set()
    for topic in (gpu_topic, token_topic):
        records = await read_all(bootstrap, topic, service.publisher.sent[topic], timeout_s=60)
        ids.update(orjson.loads(r.value)["event_id"] for r in records)
    assert len(ids) == sent()  # every event acknowledged is there
    assert service.undelivered == 0
    # Every event generated was delivered, and no sample was skipped.
    assert sent() == service.produced
    assert (
        service.metrics.registry.get_sample_value("gpu_analytics_producer_samples_skipped_total")
        == 0
    )
