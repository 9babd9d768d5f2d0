"""Token usage as OpenTelemetry spans (PRODUCER_TOKEN_TRANSPORT=otlp): what an instrumented
inference client would send, through the OpenTelemetry SDK and its OTLP/HTTP exporter to
PRODUCER_OTLP_ENDPOINT (the processor's /v1/traces), instead of JSON to Kafka.

One span per call, with the GenAI attributes of the OpenTelemetry conventions: it starts
`latency_ms` before the event's time and ends at it, carries the GPU in `gpu.uuid`, status
ERROR with `error.type` for a failed call. The host is the span's resource (`host.name`), so
each host gets a tracer provider of its own (a synthetic fleet has a few). The SDK batches and
exports in the background and retries what the processor answers with 429/5xx; each export's
outcome is counted in `gpu_analytics_otlp_spans_exported_total{result}`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode, Tracer

from gpu_analytics.events import TokenUsage

NS_PER_MS = 1_000_000


class _Counted(SpanExporter):
    """The OTLP exporter, with each batch's outcome counted."""

    def __init__(self, inner: SpanExporter, count: Callable[[str, int], None]) -> None:
        self._inner = inner
        self._count = count

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        self._count("success" if result == SpanExportResult.SUCCESS else "failure", len(spans))
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class OtlpTokenSender:
    def __init__(
        self,
        endpoint: str,
        *,
        service_name: str = "gpu-analytics-producer",
        count: Callable[[str, int], None] = lambda _result, _n: None,
    ) -> None:
        self.endpoint = endpoint
        self._service = service_name
        self._count = count
        self._providers: dict[str, TracerProvider] = {}
        self._tracers: dict[str, Tracer] = {}

    def _tracer(self, host: str) -> Tracer:
        tracer = self._tracers.get(host)
        if tracer is None:
            provider = TracerProvider(
                resource=Resource.create({"service.name": self._service, "host.name": host})
            )
            exporter = _Counted(OTLPSpanExporter(endpoint=self.endpoint), self._count)
            provider.add_span_processor(BatchSpanProcessor(exporter))
            self._providers[host] = provider
            tracer = self._tracers[host] = provider.get_tracer("gpu_analytics.producer")
        return tracer

    def add(self, event: TokenUsage) -> None:
        end = int(event.ts.timestamp() * 1e9)
        attributes: dict[str, str | int | float] = {
            "gen_ai.operation.name": event.operation,
            "gen_ai.provider.name": event.provider,
            "gen_ai.request.model": event.model,
            "gen_ai.response.model": event.model,
            "gen_ai.usage.input_tokens": event.input_tokens,
            "gen_ai.usage.output_tokens": event.output_tokens,
        }
        if event.ttft_ms is not None:
            attributes["gen_ai.server.time_to_first_token"] = event.ttft_ms / 1000
        if event.gpu_uuid is not None:
            attributes["gpu.uuid"] = event.gpu_uuid
        if event.status == "error":
            attributes["error.type"] = "timeout"
        span = self._tracer(event.host).start_span(
            f"{event.operation} {event.model}",
            start_time=end - int(event.latency_ms * NS_PER_MS),
            attributes=attributes,
        )
        if event.status == "error":
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)

    def flush(self, timeout_s: float) -> bool:
        """Export what is queued; False when it did not finish within `timeout_s`."""
        return all(p.force_flush(int(timeout_s * 1000)) for p in self._providers.values())

    def shutdown(self) -> None:
        for provider in self._providers.values():
            provider.shutdown()
        self._providers.clear()
        self._tracers.clear()
