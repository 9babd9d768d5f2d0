"""processor/otlp_view.py: the reading view parses what opentelemetry-proto's classes write,
every field it keeps equal to the full message's, attribute lists as maps."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from gpu_analytics.processor.otlp import BadRequest, parse_protobuf, token_events
from gpu_analytics.processor.otlp_view import FIELDS, TraceRequest


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


SPAN_ATTRS = [
    kv("gen_ai.usage.input_tokens", AnyValue(int_value=7)),
    kv("gen_ai.prompt", AnyValue(string_value="x" * 3000)),
    kv("gen_ai.response.model", AnyValue(string_value="first")),
    kv("tags", AnyValue(array_value=ArrayValue(values=[AnyValue(bool_value=True)]))),
    kv("gen_ai.response.model", AnyValue(string_value="second")),  # the later one wins
    kv("no.value", AnyValue()),
    # A key by the profiles signal's string table (then key MUST NOT be set): a pair no
    # trace reader can name, and one the view leaves out, with the one that breaks that rule.
    KeyValue(value=AnyValue(int_value=1), key_strindex=5),
    KeyValue(key="both", value=AnyValue(int_value=2), key_strindex=6),
]


def full_request() -> ExportTraceServiceRequest:
    """Every kind of field the view skips, beside the ones it keeps."""
    span = Span(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        parent_span_id=bytes(range(8, 16)),
        trace_state="k=v",
        name="chat model-x",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=1_000,
        end_time_unix_nano=2_000,
        attributes=SPAN_ATTRS,
        dropped_attributes_count=3,
        events=[Span.Event(name="gen_ai.content.prompt", attributes=SPAN_ATTRS[:2])],
        links=[Span.Link(trace_id=bytes(16), span_id=bytes(8), attributes=SPAN_ATTRS[:1])],
        status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
        flags=0x100,
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(
                    attributes=[kv("host.name", AnyValue(string_value="node-1"))],
                    dropped_attributes_count=1,
                ),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name="openlit.otel", version="1.2"),
                        spans=[span, Span(name="empty")],
                        schema_url="https://opentelemetry.io/schemas/1.27.0",
                    )
                ],
                schema_url="https://opentelemetry.io/schemas/1.27.0",
            )
        ]
    )


def test_the_view_reads_what_the_full_message_holds() -> None:
    full = full_request()
    view = parse_protobuf(full.SerializeToString())
    assert isinstance(view, TraceRequest)
    [resource_spans] = view.resource_spans
    assert dict(resource_spans.resource.attributes) == {
        "host.name": AnyValue(string_value="node-1")
    }
    [scope_spans] = resource_spans.scope_spans
    assert scope_spans.scope.name == "openlit.otel"
    span, empty = scope_spans.spans
    original = full.resource_spans[0].scope_spans[0].spans[0]
    for name in FIELDS[Span]:
        if name not in ("attributes", "status"):
            assert getattr(span, name) == getattr(original, name), name
    assert span.status.code == Status.STATUS_CODE_ERROR
    last_wins = {pair.key: pair.value for pair in original.attributes if not pair.key_strindex}
    assert dict(span.attributes) == last_wins
    assert span.attributes["gen_ai.response.model"].string_value == "second"
    assert not span.attributes["no.value"].WhichOneof("value")
    assert (empty.trace_id, len(empty.attributes)) == (b"", 0)
    assert not hasattr(span, "name") and not hasattr(span, "events")  # skipped on the wire


@pytest.mark.parametrize("message", list(FIELDS), ids=lambda m: m.DESCRIPTOR.name)
def test_every_kept_field_has_the_originals_number_and_type(message: Any) -> None:
    view = TraceRequest.DESCRIPTOR.file.message_types_by_name[message.DESCRIPTOR.name]
    for name in FIELDS[message]:
        ours, theirs = view.fields_by_name[name], message.DESCRIPTOR.fields_by_name[name]
        assert (ours.number, ours.type) == (theirs.number, theirs.type), name
        if theirs.message_type is KeyValue.DESCRIPTOR:  # a map of the same wire shape
            entry = ours.message_type
            assert entry.GetOptions().map_entry
            assert (
                entry.fields_by_name["key"].number
                == KeyValue.DESCRIPTOR.fields_by_name["key"].number
            )
            assert entry.fields_by_name["value"].message_type is AnyValue.DESCRIPTOR


def test_a_truncated_body_is_still_refused() -> None:
    body = full_request().SerializeToString()
    with pytest.raises(BadRequest, match="ExportTraceServiceRequest"):
        parse_protobuf(body[: len(body) // 2])


def test_token_events_refuses_the_full_message() -> None:
    with pytest.raises(TypeError, match="view"):
        token_events(full_request())
