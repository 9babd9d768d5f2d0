"""OTLP traces -> `token.usage.v1` events: the spans of LLM calls that carry GenAI usage.

Protobuf bodies parse into a reading view of the `opentelemetry-proto` messages (otlp_view.py:
the fields read here, each attribute list a map from key to value). JSON bodies parse with
protobuf's own JSON parser into the full message, then into the view. OTLP/JSON differs from
protobuf's canonical JSON mapping in one point only (the OTLP specification, "JSON Protobuf
Encoding"): trace and span ids are hex strings, not base64, so `_ids_to_base64` rewrites those
fields before parsing; no parser of either package reads them as OTLP writes them.

Attribute names, both generations (the OpenTelemetry GenAI conventions, and vLLM's spans):

| event field | span attributes, first present wins |
|---|---|
| model | gen_ai.response.model, gen_ai.request.model |
| provider | gen_ai.provider.name, gen_ai.system, else the instrumentation scope's first name part |
| operation | gen_ai.operation.name (default chat) |
| input_tokens | gen_ai.usage.input_tokens, gen_ai.usage.prompt_tokens |
| output_tokens | gen_ai.usage.output_tokens, gen_ai.usage.completion_tokens |
| ttft_ms | gen_ai.latency.time_to_first_token (vLLM), gen_ai.server.time_to_first_token (s) |
| status | error when the span status is ERROR or error.type is set |
| gpu_uuid | gpu.uuid on the span, else on the resource |
| host | resource host.name, k8s.pod.name, service.name |

A span with neither token attribute is not an LLM call: it is counted and dropped. latency_ms
is the span's end minus its start; ts is its end. event_id is `<trace id>-<span id>` (hex), so
an exporter that sends the same spans again stores nothing twice.

Each event is written as JSON and validated from those bytes as the consumer validates
(`TOKEN_USAGE.fields_from_json`: the fast decoder, pydantic for what it declines): the bytes
that passed are what Kafka gets, with no model built and no second serialisation.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from pydantic import ValidationError

from gpu_analytics.events import TOKEN_USAGE, describe_errors
from gpu_analytics.processor.otlp_view import TraceRequest
from gpu_analytics.processor.publisher import Record, record_key

MODEL = ("gen_ai.response.model", "gen_ai.request.model")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
OPERATION = ("gen_ai.operation.name",)
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
TTFT_S = ("gen_ai.latency.time_to_first_token", "gen_ai.server.time_to_first_token")
ERROR_TYPE = "error.type"
GPU_UUID = "gpu.uuid"
HOST = ("host.name", "k8s.pod.name", "service.name")

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class BadRequest(ValueError):
    """The body is not an ExportTraceServiceRequest in the declared encoding."""


def parse_protobuf(body: bytes) -> Any:
    """A protobuf body as the reading view (otlp_view.TraceRequest)."""
    try:
        return TraceRequest.FromString(body)
    except DecodeError as exc:
        raise BadRequest(f"not an ExportTraceServiceRequest (protobuf): {exc}") from exc


def parse_json(data: Any) -> Any:
    """An OTLP/JSON body already read by a JSON parser, as the reading view: parsed into the
    full message (protobuf's JSON parser knows no view), then read from its bytes."""
    if not isinstance(data, dict):
        raise BadRequest("an OTLP/JSON body is an object (ExportTraceServiceRequest)")
    try:
        request = json_format.ParseDict(
            _ids_to_base64(data), ExportTraceServiceRequest(), ignore_unknown_fields=True
        )
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise BadRequest(f"not an ExportTraceServiceRequest (OTLP/JSON): {exc}") from exc
    return TraceRequest.FromString(request.SerializeToString())


def _ids_to_base64(data: Any) -> Any:
    # resourceSpans[].scopeSpans[].spans[] and their links[] hold hex ids (see the module doc).
    if isinstance(data, list):
        return [_ids_to_base64(item) for item in data]
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        if key in _ID_FIELDS and isinstance(value, str):
            try:
                out[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError as exc:
                raise BadRequest(f"{key} {value[:40]!r} is not hex") from exc
        else:
            out[key] = _ids_to_base64(value)
    return out


@dataclass
class Converted:
    records: list[Record] = field(default_factory=list)  # validated token.usage.v1 events
    without_usage: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)  # the first few, for the partial success

    def error_message(self) -> str:
        more = self.rejected - len(self.errors)
        return "; ".join(self.errors) + (f"; and {more} more" if more > 0 else "")


MAX_ERRORS = 5


def token_events(request: Any) -> Converted:
    """The token.usage.v1 events of a request parsed by parse_protobuf or parse_json."""
    if not isinstance(request, TraceRequest):  # a full message: its attributes are no map
        raise TypeError(f"token_events reads the view, not {type(request).__name__}")
    out = Converted()
    for resource_spans in request.resource_spans:
        resource = _Resource.of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name.split(".", 1)[0] or None
            for span in scope_spans.spans:
                try:
                    fields = _event(span, resource, scope)
                    if fields is None:
                        out.without_usage += 1
                        continue
                    value = orjson.dumps(fields)
                    TOKEN_USAGE.fields_from_json(value)  # raises ValidationError
                    out.records.append((record_key(fields), value))
                except (_Rejected, ValidationError) as exc:
                    out.rejected += 1
                    if len(out.errors) < MAX_ERRORS:
                        reason = describe_errors(exc) if isinstance(exc, ValidationError) else exc
                        out.errors.append(f"span {span.span_id.hex()}: {reason}")
    return out


class _Rejected(ValueError):
    pass


_MEMBERS = {str: "string_value", int: "int_value", float: "double_value"}


def _pick(attrs: Any, names: Sequence[str], kind: type) -> Any:
    """The first attribute of `names` present in `attrs` (a view map), as `kind`; None when
    none is. An int given as a whole double is taken, and a double given as an int; a bool is
    no number here, and any other kind rejects the span."""
    for name in names:
        if name in attrs:
            value = attrs[name]
            got = getattr(value, _MEMBERS[kind])  # the kind's own member: set when truthy
            return got if got else _as_kind(value, kind, name)
    return None


def _as_kind(value: AnyValue, kind: type, name: str) -> Any:
    member = value.WhichOneof("value")
    got = getattr(value, member) if member else None
    if type(got) is kind:  # a zero or an empty string of the right member
        return got
    if kind is float and type(got) is int:
        return float(got)
    if kind is int and type(got) is float and got.is_integer():
        return int(got)
    raise _Rejected(f"{name} is {type(got).__name__}, not {kind.__name__}")


@dataclass(frozen=True, slots=True)
class _Resource:
    """What a resource gives each of its spans, read once: its attributes, and the host or
    the reason its spans are rejected."""

    attrs: Any  # the view's map
    host: str = "unknown"
    rejected: _Rejected | None = None

    @classmethod
    def of(cls, attrs: Any) -> _Resource:
        try:
            return cls(attrs, _pick(attrs, HOST, str) or "unknown")
        except _Rejected as exc:
            return cls(attrs, rejected=exc)


_GPU_UUID = (GPU_UUID,)


def _event(span: Any, resource: _Resource, scope: str | None) -> dict[str, Any] | None:
    """The span's token.usage.v1 fields, not yet validated; None for a span without usage."""
    attrs = span.attributes
    input_tokens = _pick(attrs, INPUT_TOKENS, int)
    output_tokens = _pick(attrs, OUTPUT_TOKENS, int)
    if input_tokens is None and output_tokens is None:
        return None
    trace_id, span_id = span.trace_id, span.span_id
    if len(trace_id) != 16 or len(span_id) != 8:
        raise _Rejected("a span needs a 16-byte trace id and an 8-byte span id")
    model = _pick(attrs, MODEL, str)
    if model is None:
        raise _Rejected(f"no model ({' or '.join(MODEL)})")
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if end < start or not end:
        raise _Rejected("the span ends before it starts")
    ttft_s = _pick(attrs, TTFT_S, float)
    if resource.rejected is not None:
        raise resource.rejected
    error = ERROR_TYPE in attrs or span.status.code == Status.STATUS_CODE_ERROR
    return {
        "event_id": f"{trace_id.hex()}-{span_id.hex()}",
        "ts": datetime.fromtimestamp(end / 1e9, UTC),
        "host": resource.host,
        "provider": _pick(attrs, PROVIDER, str) or scope or "unknown",
        "model": model,
        "operation": _pick(attrs, OPERATION, str) or "chat",
        "input_tokens": input_tokens or 0,
        "output_tokens": output_tokens or 0,
        "latency_ms": (end - start) / 1e6,
        "ttft_ms": None if ttft_s is None else ttft_s * 1000,
        "gpu_uuid": _pick(attrs, _GPU_UUID, str) or _pick(resource.attrs, _GPU_UUID, str),
        "status": "error" if error else "ok",
    }
