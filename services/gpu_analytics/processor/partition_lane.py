"""One partition's way out of the processor's producer: the records of every request waiting
for the partition leave together, one batch at a time.

HTTP requests arrive concurrently and each carries events for several partitions. Sending each
request's share as a batch of its own made a batch of a few records per partition per request,
and aiokafka sends one batch per partition per produce request (one request in flight per
broker): a hundred-event request cost six batches and, queued behind the others, six turns.
A lane keeps one batch in aiokafka per partition and fills the next one meanwhile from every
request that comes: while a batch travels to the broker and back, whatever arrives for that
partition leaves after it, as one batch (natural batching, no timer). Order within the
partition is the order the records were added.

aiokafka's `send_batch` is only ever called by the lane's own task, one batch at a time, so its
accumulator never sees two batches race for one partition (each waiter's poll there takes the
total time waited off its timeout, aiokafka 0.14: with a few at once, the loser of every race
failed in a quarter of a second).
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError


@dataclass(eq=False)
class _Batch:
    builder: Any  # aiokafka's BatchBuilder (untyped)
    done: asyncio.Future[None]  # acknowledged, or the error: shared by every request in it
    records: int = 0
    full: bool = False


@dataclass(eq=False)
class PartitionLane:
    producer: AIOKafkaProducer
    topic: str
    partition: int
    # Called with each batch's aiokafka future once it ends (the publisher notes fatal errors).
    on_done: Callable[[asyncio.Future[Any]], None]
    _queue: deque[_Batch] = field(default_factory=deque, init=False)  # not yet with aiokafka
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def add(self, records: Iterable[tuple[bytes, bytes]]) -> list[asyncio.Future[None]]:
        """Queue (key, value) records; the futures of the batches they are in, which end when
        the broker has acknowledged them all (or with the error). The records are sent
        whatever becomes of the caller."""
        batch = self._open()
        dones = [batch.done]
        for key, value in records:
            if batch.builder.append(timestamp=None, key=key, value=value) is None:
                batch.full = True  # aiokafka closed it; a fresh batch takes any first record
                batch = self._open()
                dones.append(batch.done)
                batch.builder.append(timestamp=None, key=key, value=value)
            batch.records += 1
        if self._task is None:
            self._task = asyncio.create_task(
                self._send_all(), name=f"send {self.topic}[{self.partition}]"
            )
        return dones

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task sending this lane's batches, while there are any."""
        return self._task

    def _open(self) -> _Batch:
        if self._queue and not self._queue[-1].full:
            return self._queue[-1]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)
        batch = _Batch(self.producer.create_batch(), done)
        self._queue.append(batch)
        return batch

    async def _send_all(self) -> None:
        try:
            while self._queue:
                batch = self._queue.popleft()
                if batch.records:
                    await self._send(batch)
                else:
                    batch.done.set_result(None)
        except asyncio.CancelledError:  # the publisher stops: nothing more leaves
            stopped = KafkaError("the publisher stopped before these records were sent")
            while self._queue:
                _settle(self._queue.popleft().done, error=stopped)
            raise
        finally:
            self._task = None

    async def _send(self, batch: _Batch) -> None:
        batch.builder.close()  # complete: aiokafka must neither add to it nor linger it
        try:
            sent: asyncio.Future[Any] = await self.producer.send_batch(
                batch.builder, self.topic, partition=self.partition
            )
        except asyncio.CancelledError:
            _settle(batch.done, error=KafkaError("the publisher stopped before this batch"))
            raise
        except Exception as exc:  # noqa: BLE001 - the callers get it, the lane goes on
            _settle(batch.done, error=exc)
            return
        sent.add_done_callback(self.on_done)
        sent.add_done_callback(functools.partial(_settle_from, batch.done))
        # Until the broker answers (aiokafka's request timeout bounds it): what arrives
        # meanwhile for this partition fills the next batch.
        await asyncio.wait([sent])


def _settle(done: asyncio.Future[None], *, error: BaseException | None = None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def _settle_from(done: asyncio.Future[None], sent: asyncio.Future[Any]) -> None:
    if sent.cancelled():
        _settle(done, error=KafkaError("aiokafka cancelled the batch"))
    else:
        _settle(done, error=sent.exception())


def _retrieved(future: asyncio.Future[None]) -> None:
    """Mark an error as retrieved: when every request in a batch gave up waiting (timeout),
    nobody reads it, and asyncio would log "exception was never retrieved"."""
    if not future.cancelled():
        future.exception()
