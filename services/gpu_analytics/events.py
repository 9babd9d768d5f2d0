"""Event models (v1) for both topics, the legacy payloads they replace, and their parsing.

`gpu.metrics.v1` and `token.usage.v1` are the wire contract (DESIGN §5): the HTTP ingest and the
consumer validate through `GPU_METRICS` / `TOKEN_USAGE` (and producers build these models), so
one set of rules decides what is valid. JSON Schemas in services/schemas/ are generated from
these models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, Literal, Self

import orjson
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import SchemaValidator

from gpu_analytics.fast_decode import fast_decoder, in_utc_range

Percent = Annotated[float, Field(ge=0, le=100)]
NonNegative = Annotated[float, Field(ge=0)]
# MongoDB stores integers in at most 64 bits: a larger count would pass validation and then
# fail every insert of its batch.
INT64_MAX = 2**63 - 1
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
# A stamp whose instant in UTC is outside the years 1 to 9999 is out of range: no store holds it.
Timestamp = Annotated[AwareDatetime, AfterValidator(in_utc_range)]
LegacyTimestamp = Annotated[datetime, AfterValidator(in_utc_range)]
EventId = Annotated[str, Field(min_length=1, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=256)]


# Strict: "50" is not a number and true is not a count; only timestamps are parsed from strings.
_STRICT = ConfigDict(extra="ignore", frozen=True, strict=True)


class _Event(BaseModel):
    model_config = _STRICT

    event_id: EventId | None = Field(
        default=None, description="Unique id (UUID); assigned on ingest when absent."
    )
    ts: Timestamp = Field(
        strict=False, description="When it happened, ISO-8601 with a timezone (stored as UTC)."
    )
    host: Name = Field(description="Host that produced the event.")

    def with_id(self, event_id: str) -> Self:
        return self if self.event_id else self.model_copy(update={"event_id": event_id})


class GpuMetric(_Event):
    """One sample of one GPU (`gpu.metrics.v1`). Numeric fields are null when unsupported."""

    gpu_index: Count
    gpu_uuid: Name
    name: Name = Field(description="GPU model, e.g. NVIDIA H100 80GB HBM3.")
    utilization_gpu_pct: Percent | None = None
    utilization_mem_pct: Percent | None = None
    mem_used_mb: NonNegative | None = None
    mem_total_mb: NonNegative | None = None
    power_w: NonNegative | None = None
    temperature_c: Annotated[float, Field(ge=-40, le=150)] | None = None
    sm_clock_mhz: NonNegative | None = None
    price_per_hour_usd: NonNegative | None = None
    # The Kubernetes workload holding the GPU (the kubelet's PodResources API), null when no
    # container holds it or the producer cannot tell.
    namespace: Name | None = Field(default=None, description="Namespace of the pod holding it.")
    pod: Name | None = Field(default=None, description="Pod holding the GPU.")
    container: Name | None = Field(default=None, description="Container holding the GPU.")


class TokenUsage(_Event):
    """One LLM call (`token.usage.v1`); names follow the OpenTelemetry GenAI conventions."""

    provider: Name = Field(description="gen_ai.provider.name, e.g. vllm, openai.")
    model: Name = Field(description="gen_ai.request.model.")
    operation: Name = Field(default="chat", description="gen_ai.operation.name.")
    input_tokens: Count
    output_tokens: Count
    latency_ms: NonNegative
    ttft_ms: NonNegative | None = Field(default=None, description="Time to first token.")
    gpu_uuid: Name | None = None
    status: Literal["ok", "error"] = "ok"


class LegacyGpuMetric(BaseModel):
    """The original coursework producer's GPU payload (utilization as a 0..1 fraction)."""

    model_config = _STRICT

    ts: LegacyTimestamp = Field(strict=False)
    host: Name
    gpu_index: Count
    name: Name
    utilization: Annotated[float, Field(ge=0, le=1)]
    mem_used_mb: NonNegative
    mem_total_mb: NonNegative
    power_w: NonNegative
    price_per_hour_usd: NonNegative

    def to_v1(self) -> GpuMetric:
        mem_pct = 100 * self.mem_used_mb / self.mem_total_mb if self.mem_total_mb else None
        return GpuMetric(
            ts=assume_utc(self.ts),
            host=self.host,
            gpu_index=self.gpu_index,
            # Legacy payloads carry no UUID: host + index is what identified a GPU there.
            gpu_uuid=f"legacy-{self.host}-{self.gpu_index}",
            name=self.name,
            utilization_gpu_pct=100 * self.utilization,
            utilization_mem_pct=min(mem_pct, 100.0) if mem_pct is not None else None,
            mem_used_mb=self.mem_used_mb,
            mem_total_mb=self.mem_total_mb,
            power_w=self.power_w,
            price_per_hour_usd=self.price_per_hour_usd,
        )


class LegacyTokenUsage(BaseModel):
    """The original coursework producer's token payload (OpenAI-style token names)."""

    model_config = _STRICT

    ts: LegacyTimestamp = Field(strict=False)
    model: Name
    prompt_tokens: Count
    completion_tokens: Count
    latency_ms: NonNegative
    gpu_index: Count | None = None

    def to_v1(self) -> TokenUsage:
        return TokenUsage(
            ts=assume_utc(self.ts),
            host="legacy",
            provider="legacy",
            model=self.model,
            input_tokens=self.prompt_tokens,
            output_tokens=self.completion_tokens,
            latency_ms=self.latency_ms,
        )


def assume_utc(ts: datetime) -> datetime:
    """`ts` as an aware UTC datetime, a naive one read as UTC: the legacy producer wrote naive
    UTC stamps (datetime.utcnow()), and the consumer's documents hold them so."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def to_json(event: GpuMetric | TokenUsage) -> bytes:
    """The event's JSON as its model's own serializer writes it, in one pass: byte for byte
    what model_dump(mode="json") then orjson gives, at a third of the cost."""
    return event.__pydantic_serializer__.to_json(event)


class NotAnObject(ValueError):
    """Valid JSON, but not a JSON object."""


@dataclass(frozen=True)
class EventKind:
    """One topic's event type: its v1 model and the legacy payload it also accepts."""

    model: type[GpuMetric] | type[TokenUsage]
    legacy: type[LegacyGpuMetric] | type[LegacyTokenUsage]
    legacy_key: str  # present in a legacy payload ...
    v1_key: str  # ... which lacks this v1 field

    def from_dict(self, data: dict[str, Any]) -> GpuMetric | TokenUsage:
        """Validate a decoded payload (v1 or legacy); raises pydantic.ValidationError."""
        if self.legacy_key in data and self.v1_key not in data:
            event = self.legacy.model_validate(data).to_v1()
            event_id = data.get("event_id")
            return event.with_id(event_id) if isinstance(event_id, str) else event
        return self.model.model_validate(data)

    @cached_property
    def _fields_validator(self) -> SchemaValidator:
        # The model's own core schema minus its outermost "build an instance" step: the same
        # fields, constraints and config, returning the field values as a dict.
        schema = self.model.__pydantic_core_schema__
        return SchemaValidator(schema["schema"], schema.get("config"))

    @cached_property
    def _pydantic_fields(self) -> Callable[[bytes], dict[str, Any]]:
        validate_json = self._fields_validator.validate_json

        def pydantic_fields(raw: bytes) -> dict[str, Any]:
            fields, _extra, _set = validate_json(raw)
            return fields  # type: ignore[no-any-return]

        return pydantic_fields

    @cached_property
    def fields_from_json(self) -> Callable[[bytes], dict[str, Any]]:
        """`fields_from_json(raw)`: validate v1 JSON exactly as `model_validate_json` does,
        but return the field values as a new dict instead of a model instance. The msgspec
        decoder derived from the model (fast_decode) tries first, at about half pydantic's
        cost; what it declines pydantic judges. Raises ValidationError. Built once per kind,
        a closure: it runs for every record."""
        return fast_decoder(self.model, otherwise=self._pydantic_fields)

    @cached_property
    def document_from_json(self) -> Callable[[bytes], dict[str, Any]]:
        """fields_from_json as the consumer stores it: `ts` a naive datetime of the same
        instant in UTC (fast_decode.to_naive_utc says why)."""
        return fast_decoder(self.model, otherwise=self._pydantic_fields, naive_utc=True)

    def from_json(self, raw: bytes) -> GpuMetric | TokenUsage:
        """Validate raw JSON: v1 straight from bytes (the hot path), else decode and try the
        legacy shape. Raises orjson.JSONDecodeError, NotAnObject or ValidationError."""
        try:
            return self.model.model_validate_json(raw)
        except ValidationError:
            data = orjson.loads(raw)
            if not isinstance(data, dict):
                raise NotAnObject(f"expected a JSON object, got {type(data).__name__}") from None
            return self.from_dict(data)


GPU_METRICS = EventKind(GpuMetric, LegacyGpuMetric, legacy_key="utilization", v1_key="gpu_uuid")
TOKEN_USAGE = EventKind(
    TokenUsage, LegacyTokenUsage, legacy_key="prompt_tokens", v1_key="input_tokens"
)


# Low-cardinality reasons: the `reason` label of events_invalid_total and the DLQ header.
_REASONS = {
    "missing": "missing_field",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "string_too_short": "out_of_range",
    "string_too_long": "out_of_range",
    "timestamp_out_of_range": "out_of_range",
}


def invalid_reason(exc: ValidationError) -> str:
    """Name the first problem: missing_field, out_of_range, or wrong_type."""
    first = exc.errors(include_url=False)[0]
    return _REASONS.get(first["type"], "wrong_type")


def describe_errors(exc: ValidationError) -> str:
    """A one-line human summary for the DLQ `error` header and logs."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_url=False)
    )[:1000]
