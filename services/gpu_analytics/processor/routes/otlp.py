"""OTLP/HTTP trace receiver: `POST /v1/traces`, as the OTLP specification (1.x) defines it.

- Bodies: `application/x-protobuf` or `application/json` (an ExportTraceServiceRequest), plain
  or `Content-Encoding: gzip`; anything else is 415. INGEST_MAX_BYTES bounds the body before
  and after decompression (a gzip bomb gets 413, never the memory).
- Answers in the request's encoding: 200 with an ExportTraceServiceResponse, its
  `partial_success` naming the spans rejected (a GenAI span without a model, negative tokens);
  400 for a body that does not decode; 4xx/5xx bodies are a google.rpc.Status. Kafka away: 503
  with Retry-After, which exporters retry.
- Spans with GenAI usage become `token.usage.v1` events (processor/otlp.py) published like
  HTTP ingest; spans without it are counted and dropped.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from gpu_analytics.processor import metrics, otlp
from gpu_analytics.processor.deps import RuntimeDep
from gpu_analytics.processor.routes.ingest import publish, read_limited

router = APIRouter(tags=["otlp"])

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "An OTLP ExportTraceServiceRequest, protobuf or JSON, optionally gzipped.",
        "content": {PROTOBUF: {}, JSON: {"schema": {"type": "object"}}},
    }
}


@router.post("/v1/traces", openapi_extra=_BODY_DOC, response_class=Response)
async def export_traces(request: Request, runtime: RuntimeDep) -> Response:
    """OTLP/HTTP traces: LLM call spans (GenAI usage) become token.usage.v1 events."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    as_json = media == JSON
    if media not in (PROTOBUF, JSON):
        return _status(
            as_json, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {media or 'none'} is not {PROTOBUF} or {JSON}",
        )  # fmt: skip
    limit = runtime.settings.ingest_max_bytes
    try:
        body = await read_limited(request, limit)
        body = _decoded(body, request.headers.get("content-encoding", ""), limit)
        parsed = otlp.parse_json(orjson.loads(body)) if as_json else otlp.parse_protobuf(body)
    except HTTPException as exc:
        return _status(as_json, exc.status_code, str(exc.detail))
    except (otlp.BadRequest, orjson.JSONDecodeError) as exc:
        return _status(as_json, status.HTTP_400_BAD_REQUEST, str(exc))
    converted = otlp.token_events(parsed)
    if converted.records:
        try:
            await publish(runtime, runtime.settings.topic_token_usage, converted.records)
        except HTTPException as exc:
            return _status(as_json, exc.status_code, str(exc.detail), exc.headers)
    metrics.OTLP_SPANS.labels("accepted").inc(len(converted.records))
    metrics.OTLP_SPANS.labels("rejected").inc(converted.rejected)
    metrics.OTLP_SPANS.labels("no_genai_usage").inc(converted.without_usage)
    answer = ExportTraceServiceResponse()
    if converted.rejected:
        answer.partial_success.CopyFrom(
            ExportTracePartialSuccess(
                rejected_spans=converted.rejected, error_message=converted.error_message()
            )
        )
    return _message(as_json, status.HTTP_200_OK, answer)


def _decoded(body: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"Content-Encoding {encoding} is not gzip"
        )
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        out = inflate.decompress(body, limit + 1)  # at most one byte past the limit
    except zlib.error as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"not valid gzip: {exc}") from exc
    if len(out) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"decompressed body over the {limit}-byte limit; send smaller batches",
        )
    if not inflate.eof:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "truncated gzip body")
    return out


def _status(
    as_json: bool, code: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return _message(as_json, code, Status(code=_GRPC_CODE.get(code, 2), message=message), headers)


# google.rpc.Code for the HTTP answers given here (the mapping of google/rpc/code.proto).
_GRPC_CODE = {400: 3, 413: 8, 415: 3, 503: 14}


def _message(
    as_json: bool, code: int, message: Message, headers: Mapping[str, str] | None = None
) -> Response:
    if as_json:
        return Response(json_format.MessageToJson(message), code, headers, JSON)
    return Response(message.SerializeToString(), code, headers, PROTOBUF)
