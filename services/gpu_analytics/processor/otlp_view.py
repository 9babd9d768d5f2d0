"""A reading view of OTLP's ExportTraceServiceRequest: the fields processor/otlp.py reads, with
every attribute list a map from key to AnyValue.

The protobuf specification ("Maps", backwards compatibility) defines `map<K, V> f = N` on the
wire as `repeated Entry f = N` with `K key = 1; V value = 2` in each entry, and a later entry of
the same key replacing an earlier one. OTLP's `KeyValue` is that entry (`string key = 1;
AnyValue value = 2`), so `repeated KeyValue attributes` parses as `map<string, AnyValue>`. Its
third field, `key_strindex`, names a key by its index in a profile's string table (the profiles
signal alone uses it, and then `key` MUST NOT be set): upb keeps a map entry that carries a field
it does not know out of the map, so such a pair, which has no name to read, is not in the view,
nor is one that sets both. The
parser (upb, in C) then fills a hash table: reading an attribute is one lookup, where the list
costs a Python object for every pair on the way, and an LLM span carries many pairs it has no
use for (request parameters, prompts). Fields the view leaves out (span names, events, links)
are skipped on the wire, as a reader of an older schema skips them.

The view is built from opentelemetry-proto's own descriptors at import: same field numbers and
types, so it cannot drift from the package it is read beside. protobuf offers no other way to
read a repeated field as a map, hence this small rewrite of the descriptors.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

PACKAGE = "gpu_analytics.otlp_view"

# The messages and fields the view keeps; everything else is skipped unread.
FIELDS: dict[Any, tuple[str, ...]] = {
    ExportTraceServiceRequest: ("resource_spans",),
    ResourceSpans: ("resource", "scope_spans"),
    Resource: ("attributes",),
    ScopeSpans: ("scope", "spans"),
    InstrumentationScope: ("name",),
    Span: (
        "trace_id",
        "span_id",
        "start_time_unix_nano",
        "end_time_unix_nano",
        "attributes",
        "status",
    ),
    Status: ("code",),
}


def _view_file() -> descriptor_pb2.FileDescriptorProto:
    view = descriptor_pb2.FileDescriptorProto(
        name=f"{PACKAGE.replace('.', '/')}.proto", package=PACKAGE, syntax="proto3"
    )
    renamed = {f".{m.DESCRIPTOR.full_name}": f".{PACKAGE}.{m.DESCRIPTOR.name}" for m in FIELDS}
    key_value = f".{KeyValue.DESCRIPTOR.full_name}"
    key_value_fields = descriptor_pb2.DescriptorProto()
    KeyValue.DESCRIPTOR.CopyToProto(key_value_fields)
    dependencies = {KeyValue.DESCRIPTOR.file.name}  # AnyValue's too
    for message, kept in FIELDS.items():
        original = descriptor_pb2.DescriptorProto()
        message.DESCRIPTOR.CopyToProto(original)
        out = view.message_type.add(name=original.name)
        for field in original.field:
            if field.name not in kept:
                continue
            copy = out.field.add()
            copy.CopyFrom(field)
            if copy.type_name == key_value:
                # The map's entry: KeyValue's key and value fields, as they are.
                entry = out.nested_type.add(
                    name=f"{field.name.title().replace('_', '')}Entry",  # protoc's naming
                    options=descriptor_pb2.MessageOptions(map_entry=True),
                )
                entry.field.extend(f for f in key_value_fields.field if f.name in ("key", "value"))
                copy.type_name = f".{PACKAGE}.{out.name}.{entry.name}"
            elif copy.type_name in renamed:
                copy.type_name = renamed[copy.type_name]
            elif copy.type_name:  # an enum of the original file (Status.code)
                dependencies.add(message.DESCRIPTOR.file.name)
        missing = set(kept) - {f.name for f in out.field}
        if missing:
            raise TypeError(f"{original.name} has no field {sorted(missing)}")
    view.dependency.extend(sorted(dependencies))
    return view


def _request_class() -> Any:
    pool = descriptor_pool.Default()
    pool.AddSerializedFile(_view_file().SerializeToString())
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{PACKAGE}.{ExportTraceServiceRequest.DESCRIPTOR.name}")
    )


# The view's ExportTraceServiceRequest (a generated class: its fields are typed Any here).
TraceRequest: Any = _request_class()
