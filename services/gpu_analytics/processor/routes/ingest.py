"""HTTP ingest: validate one event or a JSON array, publish to Kafka, answer 202.

Two ways to the same verdict. The fast one splits an array body into its elements' bytes
(msgspec, no objects built) and validates each with the consumer's decoder (events.py:
msgspec derived from the model, pydantic for what it declines); when every element is a valid
v1 event with an id, those bytes are what Kafka gets, with no second serialisation. Anything
else (a legacy payload, an invalid one, an event without id) takes the full path: decoded
once, validated item by item with precise errors, each event serialised by its model."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import orjson
from aiokafka.errors import KafkaError
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ValidationError

from gpu_analytics.events import GPU_METRICS, TOKEN_USAGE, EventKind
from gpu_analytics.processor import metrics
from gpu_analytics.processor.deps import RuntimeDep
from gpu_analytics.processor.publisher import Record, record_key, to_record

router = APIRouter(prefix="/api/v1", tags=["ingest"])

# Seconds a client is told to wait after a 503 (Kafka unreachable); readiness is re-checked
# every 2 s, each check bounded to 2 s, so by then the answer reflects the broker's state again.
RETRY_AFTER_S = "5"


class Accepted(BaseModel):
    accepted: int


# The body is read by hand (size limit before parsing, per-item errors), so describe it here.
_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]
                }
            }
        },
    }
}


@router.post("/gpu-metrics", status_code=status.HTTP_202_ACCEPTED, openapi_extra=_BODY_DOC)
async def ingest_gpu_metrics(request: Request, runtime: RuntimeDep) -> Accepted:
    """Accept `gpu.metrics.v1` events (or legacy payloads); 422 lists every field error."""
    records = await _validated(request, runtime.settings.ingest_max_bytes, GPU_METRICS)
    return await publish(runtime, runtime.settings.topic_gpu_metrics, records)


@router.post("/token-usage", status_code=status.HTTP_202_ACCEPTED, openapi_extra=_BODY_DOC)
async def ingest_token_usage(request: Request, runtime: RuntimeDep) -> Accepted:
    """Accept `token.usage.v1` events (or legacy payloads); 422 lists every field error."""
    records = await _validated(request, runtime.settings.ingest_max_bytes, TOKEN_USAGE)
    return await publish(runtime, runtime.settings.topic_token_usage, records)


async def publish(runtime: RuntimeDep, topic: str, records: list[Record]) -> Accepted:
    """Publish within INGEST_PUBLISH_TIMEOUT_S or answer 503 + Retry-After: a Kafka outage
    makes the client retry later, it never hangs the request or turns into a 500. A refused
    batch may still reach Kafka in part; clients that send `event_id` retry idempotently."""
    if not runtime.publisher.started:
        raise _unavailable("the processor is not connected to Kafka yet")
    if not runtime.ready["kafka"]:
        # Known to be down (readiness says so): answer at once instead of waiting it out.
        raise _unavailable("Kafka is not reachable now")
    timeout = runtime.settings.ingest_publish_timeout_s
    try:
        await runtime.publisher.publish(topic, records, timeout=timeout)
    except TimeoutError as exc:
        raise _unavailable(f"Kafka did not acknowledge the events within {timeout:g}s") from exc
    except (KafkaError, OSError) as exc:
        raise _unavailable(f"Kafka: {str(exc) or type(exc).__name__}") from exc
    metrics.INGEST_EVENTS.labels(topic).inc(len(records))
    return Accepted(accepted=len(records))


_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])


def _fast_records(body: bytes, kind: EventKind) -> list[Record] | None:
    """The body's events as records, their own bytes as the values, when every one is a valid
    v1 event with an id; None sends the body down the full path."""
    try:
        elements = _ELEMENTS.decode(body) if body.lstrip()[:1] == b"[" else [body]
        records = []
        for element in elements:
            fields = kind.fields_from_json(element)
            if not fields["event_id"]:
                return None
            records.append((record_key(fields), bytes(element)))
    except ValueError:  # msgspec's and pydantic's errors are ValueErrors
        return None
    return records or None


async def _validated(request: Request, limit: int, kind: EventKind) -> list[Record]:
    body = await read_limited(request, limit)
    fast = _fast_records(body, kind)
    if fast is not None:
        return fast
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _unprocessable([{"type": "json_invalid", "loc": ["body"], "msg": str(exc)}]) from exc
    items = data if isinstance(data, list) else [data]
    if not items:
        raise _unprocessable(
            [{"type": "too_short", "loc": ["body"], "msg": "an empty array holds no event"}]
        )
    events, errors = [], []
    for index, item in enumerate(items):
        loc: list[str | int] = ["body", index] if isinstance(data, list) else ["body"]
        if not isinstance(item, dict):
            errors.append(
                {
                    "type": "model_type",
                    "loc": loc,
                    "msg": f"expected a JSON object, got {type(item).__name__}",
                }
            )
            continue
        try:
            event = kind.from_dict(item)
            events.append(event if event.event_id else event.with_id(str(uuid.uuid4())))
        except ValidationError as exc:
            errors.extend(
                {"type": e["type"], "loc": [*loc, *e["loc"]], "msg": e["msg"]}
                for e in exc.errors(include_url=False)
            )
    if errors:  # all or nothing: a client retries the whole request after fixing it
        raise _unprocessable(errors)
    return [to_record(event) for event in events]


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"request body over the {limit}-byte limit; send smaller batches",
    )


def _unavailable(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"{detail}; not accepted, retry later (with the same event_id: idempotent)",
        headers={"Retry-After": RETRY_AFTER_S},
    )


def _unprocessable(errors: list[dict[str, Any]]) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, errors)
