"""`gpu-analytics producer`: wiring, the wait for Kafka, the send loop and a flushing shutdown.

Over 400 lines because ProducerService is one lifecycle whose parts share its state: the
producer it connects and replaces, the drain task that feeds it, the send loop, and the flush on
SIGTERM. Sampling (sources.py), batching (publisher.py), the schedule (schedule.py) and the Kafka
client itself (gpu_analytics.kafka) are modules of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    stop_any,
    wait_exponential,
)
from tenacity.stop import stop_base

from gpu_analytics.config import ProducerSettings
from gpu_analytics.events import GpuMetric, describe_errors, to_json
from gpu_analytics.kafka.fixes import quiet_repeated_aiokafka_logs
from gpu_analytics.kafka.producer import new_producer, retire, start_producer
from gpu_analytics.logs import configure_logging
from gpu_analytics.producer.metrics import (
    MetricsServer,
    ProducerMetrics,
    metrics_app,
    metrics_server,
)
from gpu_analytics.producer.nvml import NvmlUnavailable
from gpu_analytics.producer.otlp_tokens import OtlpTokenSender
from gpu_analytics.producer.publisher import BatchPublisher, ProducerUnusable
from gpu_analytics.producer.schedule import RateSchedule
from gpu_analytics.producer.sources import Source, open_source

log = logging.getLogger("gpu_analytics.producer")

PARTITION_REFRESH_S = 30.0
# After SIGTERM the send loop gets this long to finish its iteration before it is cancelled.
STOP_GRACE_S = 1.0
T = TypeVar("T")


def run_producer(*, source: str | None, once: bool) -> int:
    """The console entry point; returns the exit code."""
    configure_logging("INFO", service="producer")
    overrides: dict[str, Any] = {} if source is None else {"producer_source": source}
    try:
        settings = ProducerSettings(**overrides)
    except ValidationError as exc:
        log.error("invalid configuration", extra={"errors": describe_errors(exc)})
        return 2
    configure_logging(settings.log_level, service="producer")
    if once:
        # stdout carries the event alone; the logs go to stderr for this one-shot mode.
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sys.stderr)
        return print_one_event(settings)
    return run_async(ProducerService(settings).run())


def print_one_event(settings: ProducerSettings) -> int:
    try:
        source = open_source(settings)
    except NvmlUnavailable as exc:
        log.error("PRODUCER_SOURCE=nvml but NVML sees no GPU", extra={"reason": str(exc)})
        return 1
    try:
        event = source.take(1)[0]
    finally:
        source.close()
    sys.stdout.write(to_json(event).decode() + "\n")
    sys.stdout.flush()
    return 0


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where it is installed (uvicorn[standard] brings it), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


class ProducerService:
    def __init__(self, settings: ProducerSettings, *, source: Source | None = None) -> None:
        self.settings = settings
        self.metrics = ProducerMetrics()
        self.metrics.rate_target.set(settings.producer_rate)
        self._source = source
        self._stopping = asyncio.Event()
        self._state = "starting"  # starting -> running -> stopping -> stopped | failed
        self._producer: AIOKafkaProducer | None = None
        self._drain: asyncio.Task[None] | None = None
        self.publisher: BatchPublisher | None = None
        self.undelivered = 0
        self.produced = 0
        self.send_started: float | None = None
        self.send_finished: float | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def stop(self) -> None:
        if not self._stopping.is_set():
            log.info("stopping: no new events, flushing what is buffered")
        self._stopping.set()

    def alive(self) -> bool:
        return self._state in ("starting", "running", "stopping")

    async def run(self, *, max_events: int | None = None, handle_signals: bool = True) -> int:
        """Produce until SIGTERM/SIGINT (or `stop()`, or `max_events` sent), then flush.

        Returns the exit code: 0 when everything sent was acknowledged."""
        loop = asyncio.get_running_loop()
        quiet_repeated_aiokafka_logs()
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)
        server: MetricsServer | None = None
        server_task: asyncio.Task[None] | None = None
        try:
            if self.settings.metrics_port:
                try:
                    server, server_task = await self._start_metrics_server()
                except OSError as exc:
                    log.error(
                        "metrics port unavailable",
                        extra={"port": self.settings.metrics_port, "error": str(exc)},
                    )
                    self._state = "failed"
                    return 1
            code = await self._produce(max_events)
            self._state = "stopped" if code == 0 else "failed"
            return code
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            if server is not None and server_task is not None:
                server.should_exit = True
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(server_task, 5)

    async def _start_metrics_server(self) -> tuple[MetricsServer, asyncio.Task[None]]:
        host, port = self.settings.metrics_host, self.settings.metrics_port
        # Bound here, not by uvicorn: uvicorn answers a taken port with sys.exit().
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        server = metrics_server(metrics_app(self.metrics, self.alive), host=host, port=port)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        log.info("metrics on /metrics and /healthz", extra={"host": host, "port": port})
        return server, task

    async def _produce(self, max_events: int | None) -> int:
        settings, metrics = self.settings, self.metrics
        try:
            source = self._source or open_source(
                settings,
                on_nvml_error=lambda call: metrics.nvml_errors.labels(call).inc(),
                on_pod_resources=(
                    lambda reason: metrics.pod_resources_errors.labels(reason).inc(),
                    lambda up: metrics.pod_resources_up.set(1 if up else 0),
                ),
            )
        except NvmlUnavailable as exc:
            log.error("PRODUCER_SOURCE=nvml but NVML sees no GPU", extra={"reason": str(exc)})
            return 1
        spans = None
        if settings.producer_token_transport == "otlp":
            spans = OtlpTokenSender(
                settings.producer_otlp_endpoint,
                count=lambda result, n: metrics.otlp_spans_exported.labels(result).inc(n),
            )
            log.info("token usage as OTLP spans", extra={"endpoint": spans.endpoint})
        try:
            self._producer = await self._connect()
            if self._producer is None:
                return 0 if self._stopping.is_set() else 1
            publisher = self.publisher = BatchPublisher(
                self._producer,
                self.metrics,
                linger_s=settings.producer_linger_ms / 1000,
                buffer_limit=settings.producer_buffer_events,
            )
            self.metrics.buffered.set_function(lambda: publisher.pending)
            self._start_drain(publisher)
            code = 0
            try:
                await publisher.refresh_partitions(self._topics())
                self._state = "running"
                log.info(
                    "producing",
                    extra={
                        "source": source.kind,
                        "rate": settings.producer_rate,
                        "topics": self._topics(),
                    },
                )
                await self._run_send_loop(source, publisher, max_events, spans)
            except Exception:
                log.exception("send loop failed")
                code = 1
            finally:
                self._state = "stopping"
                if spans is not None:
                    await self._flush_spans(spans)
                self.undelivered = await self._flush(publisher)
                self.send_finished = time.perf_counter()
                await self._close_producer()
                log.info(
                    "producer stopped",
                    extra={
                        "events_sent": publisher.sent,
                        "events_sent_total": sum(publisher.sent.values()),
                        "undelivered": self.undelivered,
                        "send_errors": publisher.failed,
                    },
                )
            if self.undelivered:
                log.error(
                    "events not acknowledged by Kafka at shutdown",
                    extra={"undelivered": self.undelivered},
                )
                return 1
            return code
        finally:
            source.close()
            if spans is not None:
                spans.shutdown()

    async def _flush_spans(self, spans: OtlpTokenSender) -> None:
        timeout = self.settings.producer_flush_timeout_s
        if not await asyncio.to_thread(spans.flush, timeout):
            log.error("token usage spans not exported at shutdown", extra={"waited_s": timeout})

    def _topics(self) -> list[str]:
        return [self.settings.topic_gpu_metrics, self.settings.topic_token_usage]

    # -- Kafka --------------------------------------------------------------------------
    def _new_producer(self) -> AIOKafkaProducer:
        s = self.settings
        return new_producer(
            s.kafka_bootstrap_servers,
            client_id=f"gpu-analytics-producer-{s.producer_host}",
            linger_ms=s.producer_linger_ms,
            max_batch_size=s.producer_batch_bytes,
        )

    async def _connect(self) -> AIOKafkaProducer | None:
        """Start a producer, retrying until Kafka answers; None when stopped or timed out."""

        retrying = AsyncRetrying(
            stop=stop_any(
                stop_after_delay(self.settings.producer_kafka_wait_s), _StopWhen(self._stopping)
            ),
            wait=wait_exponential(multiplier=0.5, max=5),
            retry=retry_if_exception_type((KafkaError, OSError)),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if self._stopping.is_set():
                        return None
                    producer = await start_producer(self._new_producer)
                    log.info(
                        "connected to Kafka",
                        extra={"bootstrap_servers": self.settings.kafka_bootstrap_servers},
                    )
                    return producer
        except (KafkaError, OSError) as exc:
            if not self._stopping.is_set():
                log.error(
                    "Kafka did not answer",
                    extra={
                        "bootstrap_servers": self.settings.kafka_bootstrap_servers,
                        "waited_s": self.settings.producer_kafka_wait_s,
                        "error": repr(exc),
                    },
                )
        return None

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            # stop() flushes too; after our own flush there is nothing left unless Kafka is
            # down, and then waiting longer would not help.
            await retire(producer, timeout=10)

    # -- the drain task -----------------------------------------------------------------
    def _start_drain(self, publisher: BatchPublisher) -> None:
        self._drain = asyncio.create_task(publisher.drain(), name="publisher-drain")

    async def _stop_drain(self) -> None:
        drain, self._drain = self._drain, None
        if drain is None:
            return
        drain.cancel()
        try:
            await drain
        except (asyncio.CancelledError, ProducerUnusable):
            pass
        except Exception:
            log.exception("drain task failed")

    async def _ensure_drain(self, publisher: BatchPublisher) -> bool:
        """Replace the producer when the drain task found it unusable (aiokafka's sender died);
        False when no new one could be connected (stopping, or Kafka gone for too long)."""
        drain = self._drain
        if drain is not None and not drain.done():
            return True
        error = drain.exception() if drain is not None and not drain.cancelled() else None
        if error is not None and not isinstance(error, ProducerUnusable):
            raise error
        log.error("Kafka producer unusable, starting a new one", extra={"error": repr(error)})
        # kafka.producer's way: the new one started first, then the old one retired.
        fresh = await self._connect()
        if fresh is None:
            return False  # the old one is retired at shutdown
        old, self._producer = self._producer, fresh
        if old is not None:
            await retire(old)
        publisher.replace_producer(fresh)
        self._start_drain(publisher)
        return True

    async def _flush(self, publisher: BatchPublisher) -> int:
        try:
            if not await self._ensure_drain(publisher):
                return publisher.pending
            return await publisher.flush(self.settings.producer_flush_timeout_s)
        except Exception:
            log.exception("flush failed")
            return publisher.pending
        finally:
            await self._stop_drain()

    # -- the send loop ------------------------------------------------------------------
    async def _run_send_loop(
        self,
        source: Source,
        publisher: BatchPublisher,
        max_events: int | None,
        spans: OtlpTokenSender | None = None,
    ) -> None:
        """The send loop, cut short on stop if it is blocked (on Kafka's metadata, say).

        The loop only awaits sleeps, metadata and a new producer: cancelling it there leaves
        every appended event in the publisher, which the final flush then sends."""
        sending = asyncio.create_task(self._send_loop(source, publisher, max_events, spans))
        stopped = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({sending, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not sending.done():
                await asyncio.wait({sending}, timeout=STOP_GRACE_S)
            if not sending.done():
                log.warning("send loop blocked at stop; cancelling it to flush")
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sending
            else:
                sending.result()  # re-raise what ended it
        finally:
            stopped.cancel()
            if not sending.done():
                sending.cancel()

    async def _send_loop(
        self,
        source: Source,
        publisher: BatchPublisher,
        max_events: int | None,
        spans: OtlpTokenSender | None = None,
    ) -> None:
        settings = self.settings
        schedule = RateSchedule(settings.producer_rate)
        skipped_seen = 0
        gpu_topic, token_topic = settings.topic_gpu_metrics, settings.topic_token_usage
        add = publisher.add
        next_refresh = time.monotonic() + PARTITION_REFRESH_S
        stopping = self._stopping
        self.send_started = time.perf_counter()
        while not stopping.is_set():
            if not await self._ensure_drain(publisher):
                return
            publisher.requeue_failed()
            publisher.seal_lingering()
            n = schedule.due()
            if max_events is not None:
                n = min(n, max_events - self.produced)
            if schedule.skipped != skipped_seen:
                self.metrics.samples_skipped.inc(schedule.skipped - skipped_seen)
                log.warning(
                    "sending fell behind PRODUCER_RATE; skipped samples",
                    extra={"skipped": schedule.skipped - skipped_seen},
                )
                skipped_seen = schedule.skipped
            if n > 0 and not publisher.has_room:
                # Kafka is behind or down and the buffer is full: hold off. A bounded rate
                # then falls behind its schedule and skips samples (counted, logged).
                await publisher.wait_for_progress(0.1)
                continue
            if n > 0:
                # encode() inlined: this loop is the producer's hot path.
                for event in source.take(n):
                    if isinstance(event, GpuMetric):
                        add(gpu_topic, event.gpu_uuid.encode(), to_json(event))
                    elif spans is not None:
                        spans.add(event)
                    else:
                        key = (event.gpu_uuid or event.model).encode()
                        add(token_topic, key, to_json(event))
                schedule.sent(n)
                self.produced += n
            if max_events is not None and self.produced >= max_events:
                return
            if time.monotonic() >= next_refresh:
                next_refresh = time.monotonic() + PARTITION_REFRESH_S
                await publisher.refresh_partitions(self._topics())
            delay = min(schedule.delay(), publisher.linger_delay())
            if delay <= 0:
                await asyncio.sleep(0)  # let the drain task, aiokafka and /metrics run
            elif delay < 0.05:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), delay)


class _StopWhen(stop_base):
    """tenacity stop strategy: give up retrying once the service is stopping."""

    def __init__(self, event: asyncio.Event) -> None:
        self.event = event

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.event.is_set()
