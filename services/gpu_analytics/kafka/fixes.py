"""Three adjustments to aiokafka's behaviour, each for a measured problem, applied to the
producer of both services by `gpu_analytics.kafka.producer.new_producer` (nothing here changes
aiokafka until it is called). cramjam, which compresses here, is a dependency of its own in
services/pyproject.toml (aiokafka's lz4 extra pulls it in too, but this module imports it).

- `use_fast_lz4`: aiokafka compresses lz4 with LZ4-HC at level 9, ~10x slower per batch than
  LZ4's fast mode. Kafka's Java client maps the default level (compression.lz4.level=9) to the
  fast compressor (org.apache.kafka.common.compress.Lz4BlockOutputStream), so brokers and
  consumers already read exactly this: the same frame format (KIP-57), made faster.
- `limit_metadata_refresh`: with the broker down, aiokafka's sender asks for metadata again as
  soon as the previous attempt failed, with no pause: a busy loop that burns a whole core for as
  long as the outage lasts (measured here: 7.9 s of CPU in 8 s; cf. aio-libs/aiokafka#267).
  Refreshes are spaced by a backoff that doubles while they fail (0.1 s up to 1 s), like the Java
  client's retry.backoff.ms / reconnect.backoff.max.ms.
- `RepeatFilter`: the same aiokafka warning once per interval, not thousands of times a second
  into the logs (and Loki) during an outage; the next one says how many were held back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import cramjam
from aiokafka import codec as aiokafka_codec
from aiokafka.record import default_records as py_records


def _lz4_fast(payload: Any) -> bytes:
    compressor = cramjam.lz4.Compressor(level=1, content_checksum=False, block_linked=False)
    compressor.compress(payload)
    return bytes(compressor.finish())


def use_fast_lz4() -> None:
    for module in (aiokafka_codec, py_records, _crecords_module()):
        if module is not None and getattr(module, "lz4_encode", None) is not _lz4_fast:
            module.lz4_encode = _lz4_fast


def _crecords_module() -> Any:
    try:
        from aiokafka.record._crecords import default_records
    except ImportError:  # pure-Python aiokafka (AIOKAFKA_NO_EXTENSIONS): no C module to patch
        return None
    return default_records


class _MetadataRefreshLimiter:
    """Stands in for `client.force_metadata_update` on one producer's client."""

    def __init__(self, client: Any, *, initial_s: float, max_s: float) -> None:
        self._refresh = client.force_metadata_update
        self._initial = self._backoff = initial_s
        self._max = max_s
        self._next_allowed = 0.0
        self.skipped = 0

    def __call__(self) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()  # aiokafka's sender calls it from its loop
        now = loop.time()
        if now < self._next_allowed:
            # Too soon: a future that resolves "not updated" once the backoff has passed.
            self.skipped += 1
            waiter: asyncio.Future[Any] = loop.create_future()
            loop.call_at(self._next_allowed, _resolve, waiter)
            return waiter
        self._next_allowed = now + self._backoff
        refreshed: asyncio.Future[Any] = self._refresh()
        refreshed.add_done_callback(self._adapt)
        return refreshed

    def _adapt(self, future: asyncio.Future[Any]) -> None:
        ok = not future.cancelled() and future.exception() is None and bool(future.result())
        self._backoff = self._initial if ok else min(self._max, self._backoff * 2)


def _resolve(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(False)


def limit_metadata_refresh(
    producer: Any, *, initial_s: float = 0.1, max_s: float = 1.0
) -> _MetadataRefreshLimiter:
    limiter = _MetadataRefreshLimiter(producer.client, initial_s=initial_s, max_s=max_s)
    producer.client.force_metadata_update = limiter
    return limiter


class RepeatFilter(logging.Filter):
    """Let a given message (logger + template) through once per `interval_s`."""

    def __init__(self, interval_s: float = 30.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._last: dict[tuple[str, object], float] = {}
        self._held: dict[tuple[str, object], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        if now - self._last.get(key, -self.interval_s) < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.repeated_since_last = held
        return True


_REPEAT_FILTER = RepeatFilter()


def quiet_repeated_aiokafka_logs() -> None:
    """Attach the filter to every aiokafka logger (filters do not apply to child loggers)."""
    for name in list(logging.root.manager.loggerDict):
        if name == "aiokafka" or name.startswith("aiokafka."):
            logger = logging.getLogger(name)
            if _REPEAT_FILTER not in logger.filters:
                logger.addFilter(_REPEAT_FILTER)
