"""The span -> token.usage.v1 mapping of processor/otlp.py, case by case, on messages built
with opentelemetry-proto's classes and read as the receiver reads a protobuf body. The
end-to-end path through the SDK's exporters, Kafka and MongoDB is in test_otlp.py."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from gpu_analytics.processor.otlp import Converted, parse_protobuf, token_events

NS = 1_000_000_000
START = 1_780_000_000 * NS  # 2026-05-28T20:26:40Z
TRACE = bytes(range(1, 17))
SPAN = bytes(range(1, 9))


def value(v: Any) -> AnyValue:
    if v is None:
        return AnyValue()
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    return AnyValue(string_value=v)


def attrs(pairs: dict[str, Any] | list[tuple[str, Any]]) -> list[KeyValue]:
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return [KeyValue(key=k, value=value(v)) for k, v in items]


def convert(
    span_attrs: dict[str, Any] | list[tuple[str, Any]],
    resource: dict[str, Any] | None = None,
    scope: str = "openlit.otel",
    **span: Any,
) -> Converted:
    fields: dict[str, Any] = {
        "trace_id": TRACE, "span_id": SPAN, "name": "chat",
        "start_time_unix_nano": START, "end_time_unix_nano": START + 2 * NS,
    } | span  # fmt: skip
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=attrs(resource or {"host.name": "node-1"})),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name=scope),
                        spans=[Span(attributes=attrs(span_attrs), **fields)],
                    )
                ],
            )
        ]
    )
    return received(request)


def received(request: ExportTraceServiceRequest) -> Converted:
    """What the receiver makes of the request's protobuf body."""
    return token_events(parse_protobuf(request.SerializeToString()))


def event(converted: Converted) -> dict[str, Any]:
    assert converted.rejected == 0, converted.errors
    [(key, raw)] = converted.records
    fields: dict[str, Any] = orjson.loads(raw)
    assert key == (fields["gpu_uuid"] or fields["model"]).encode()  # by GPU, else by model
    return fields


def rejected(converted: Converted) -> str:
    assert converted.records == [] and converted.rejected == 1
    [message] = converted.errors
    return message


USAGE = {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20}
TODAY = {"gen_ai.request.model": "gpt-4o", **USAGE}


def test_a_span_of_todays_conventions_becomes_this_event() -> None:
    got = event(
        convert(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.server.time_to_first_token": 0.25,
                "gpu.uuid": "GPU-1",
                "http.url": "https://example.invalid/v1/chat",  # not read
                **USAGE,
            }
        )
    )
    assert got == {
        "event_id": f"{TRACE.hex()}-{SPAN.hex()}",
        "ts": "2026-05-28T20:26:42+00:00",
        "host": "node-1",
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",  # the response's model before the request's
        "operation": "chat",
        "input_tokens": 100,
        "output_tokens": 20,
        "latency_ms": 2000.0,
        "ttft_ms": 250.0,
        "gpu_uuid": "GPU-1",
        "status": "ok",
    }


def test_vllms_names_and_the_fallbacks() -> None:
    got = event(
        convert(
            {
                "gen_ai.system": "vllm",
                "gen_ai.request.model": "llama",
                "gen_ai.usage.prompt_tokens": 7,
                "gen_ai.usage.completion_tokens": 3,
                "gen_ai.latency.time_to_first_token": 1,  # an int of seconds is a float
            },
            resource={"k8s.pod.name": "vllm-0", "service.name": "vllm", "gpu.uuid": "GPU-r"},
        )
    )
    assert (got["provider"], got["host"], got["gpu_uuid"]) == ("vllm", "vllm-0", "GPU-r")
    assert (got["input_tokens"], got["output_tokens"], got["ttft_ms"]) == (7, 3, 1000.0)
    assert got["operation"] == "chat"  # the default


@pytest.mark.parametrize(
    ("span_attrs", "resource", "scope", "provider", "host", "tokens"),
    [
        ({"gen_ai.usage.input_tokens": 5}, {}, "openlit.otel", "openlit", "unknown", (5, 0)),
        ({"gen_ai.usage.output_tokens": 5}, {"service.name": "s"}, "", "unknown", "s", (0, 5)),
        # the newer name wins over the older one where both are set
        (
            {"gen_ai.usage.prompt_tokens": 1, "gen_ai.usage.input_tokens": 2},
            {"host.name": "h", "k8s.pod.name": "p"}, "x", "x", "h", (2, 0),
        ),
    ],
)  # fmt: skip
def test_what_is_absent_falls_back(
    span_attrs: dict[str, Any],
    resource: dict[str, Any],
    scope: str,
    provider: str,
    host: str,
    tokens: tuple[int, int],
) -> None:
    got = event(convert({"gen_ai.request.model": "m", **span_attrs}, resource or {"x": 1}, scope))
    assert (got["provider"], got["host"]) == (provider, host)
    assert (got["input_tokens"], got["output_tokens"]) == tokens
    assert got["gpu_uuid"] is None and got["ttft_ms"] is None


def test_the_spans_gpu_comes_before_the_resources_which_is_then_not_read() -> None:
    got = event(convert(TODAY | {"gpu.uuid": "GPU-s"}, resource={"gpu.uuid": 3}))
    assert got["gpu_uuid"] == "GPU-s"
    assert "gpu.uuid is int" in rejected(convert(TODAY, resource={"gpu.uuid": 3}))


def test_a_whole_double_is_an_int_and_the_last_duplicate_key_wins() -> None:
    got = event(
        convert([("gen_ai.request.model", "m"), ("gen_ai.usage.input_tokens", 12.0),
                 ("gen_ai.usage.output_tokens", 1), ("gen_ai.usage.output_tokens", 4)])
    )  # fmt: skip
    assert (got["input_tokens"], got["output_tokens"]) == (12, 4)
    assert type(got["input_tokens"]) is int


@pytest.mark.parametrize(
    ("status", "extra", "expected"),
    [
        (Status.STATUS_CODE_ERROR, {}, "error"),
        (Status.STATUS_CODE_OK, {"error.type": "timeout"}, "error"),
        (Status.STATUS_CODE_UNSET, {"error.type": None}, "error"),  # set, though empty
        (Status.STATUS_CODE_OK, {}, "ok"),
    ],
)
def test_error_status_or_error_type_is_an_error(
    status: int, extra: dict[str, Any], expected: str
) -> None:
    got = event(convert(TODAY | extra, status=Status(code=status)))  # type: ignore[arg-type]
    assert got["status"] == expected


@pytest.mark.parametrize(
    ("span_attrs", "resource", "span", "message"),
    [
        (USAGE, None, {}, "no model (gen_ai.response.model or gen_ai.request.model)"),
        (TODAY | {"gen_ai.usage.input_tokens": 2.5}, None, {},
         "gen_ai.usage.input_tokens is float, not int"),
        (TODAY | {"gen_ai.usage.input_tokens": True}, None, {},
         "gen_ai.usage.input_tokens is bool, not int"),
        (TODAY | {"gen_ai.usage.output_tokens": "7"}, None, {},
         "gen_ai.usage.output_tokens is str, not int"),
        (TODAY | {"gen_ai.response.model": 4}, None, {}, "gen_ai.response.model is int, not str"),
        (TODAY | {"gen_ai.response.model": None}, None, {},
         "gen_ai.response.model is NoneType, not str"),
        (TODAY | {"gen_ai.server.time_to_first_token": "fast"}, None, {},
         "gen_ai.server.time_to_first_token is str, not float"),
        (TODAY | {"gpu.uuid": b"\x01"}, None, {}, "gpu.uuid is bytes, not str"),
        (TODAY, {"host.name": 7}, {}, "host.name is int, not str"),
        (TODAY, None, {"span_id": b"\x01"}, "a 16-byte trace id and an 8-byte span id"),
        (TODAY, None, {"end_time_unix_nano": START - 1}, "the span ends before it starts"),
        (TODAY, None, {"end_time_unix_nano": 0, "start_time_unix_nano": 0},
         "the span ends before it starts"),
        # built, then refused by the event model as the consumer would refuse it
        (TODAY | {"gen_ai.usage.input_tokens": -1}, None, {},
         "input_tokens: Input should be greater than or equal to 0"),
        (TODAY | {"gen_ai.request.model": ""}, None, {}, "model: String should have at least 1"),
    ],
)  # fmt: skip
def test_a_span_that_cannot_be_an_event_is_rejected_with_the_reason(
    span_attrs: dict[str, Any], resource: dict[str, Any] | None, span: dict[str, Any], message: str
) -> None:
    reason = rejected(convert(span_attrs, resource, **span))
    assert reason.startswith(f"span {SPAN.hex() if 'span_id' not in span else '01'}: ")
    assert message in reason, reason


def test_spans_without_usage_are_counted_not_rejected() -> None:
    converted = convert({"gen_ai.request.model": "m", "http.method": "GET"})
    assert (converted.records, converted.rejected, converted.without_usage) == ([], 0, 1)


def test_many_spans_keep_their_order_and_the_first_errors_are_kept() -> None:
    spans = [
        Span(trace_id=TRACE, span_id=i.to_bytes(8, "big"), start_time_unix_nano=START,
             end_time_unix_nano=START + NS,
             attributes=attrs(TODAY | ({"gen_ai.usage.input_tokens": -i} if i % 2 else {})))
        for i in range(1, 21)
    ]  # fmt: skip
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )
    converted = received(request)
    assert [orjson.loads(v)["event_id"][-2:] for _, v in converted.records] == [
        f"{i:02x}" for i in range(2, 21, 2)
    ]
    assert converted.rejected == 10 and len(converted.errors) == 5
    assert converted.error_message().endswith("; and 5 more")
