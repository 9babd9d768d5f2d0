"""The consumer's fast decoder never disagrees with the event models: on a corpus of edge cases
(every field set to every awkward value, malformed JSON, missing and duplicate fields), what
msgspec accepts pydantic accepts with equal values of the same types, and what it declines
pydantic still judges (fields_from_json then returns pydantic's result or raises its error)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from gpu_analytics.events import GPU_METRICS, TOKEN_USAGE, EventKind
from gpu_analytics.fast_decode import fast_decoder, fields_type

GPU: dict[str, Any] = {
    "ts": "2026-11-27T09:00:00+01:00",
    "host": "node-1",
    "gpu_index": 0,
    "gpu_uuid": "GPU-1",
    "name": "NVIDIA H100 80GB HBM3",
    "utilization_gpu_pct": 55.5,
    "mem_used_mb": 1024,
    "mem_total_mb": 81559.0,
    "power_w": 310.2,
    "temperature_c": 61,
    "sm_clock_mhz": 1980,
    "price_per_hour_usd": 3.9,
    "pod": "vllm-0",
    "event_id": "e-1",
}
TOKENS: dict[str, Any] = {
    "ts": "2026-11-27T08:00:00Z",
    "host": "node-1",
    "provider": "vllm",
    "model": "llama-3.1-8b",
    "input_tokens": 100,
    "output_tokens": 20,
    "latency_ms": 500,
    "ttft_ms": 40.5,
    "status": "error",
}

AWKWARD: list[Any] = [
    None, True, False, 0, -1, 1, 1.0, 1.5, -0.0, -1e-9, 99.999, 100, 100.0, 100.5, 150, 150.01,
    -40, -40.5, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(10**30), 1e308,
    "", " ", "x", "1", "1.5", "true", "null", "ok", "error", "maybe", "OK", "chat",
    "a" * 128, "a" * 129, "a" * 256, "a" * 257, "é" * 256, "é" * 257, "😀" * 256, "😀" * 257,
    "\x00", "line\nbreak", [], [1], {}, {"a": 1},
    "2026-11-27T08:00:00Z", "2026-11-27T08:00:00+00:00", "2026-11-27T08:00:00-05:30",
    "2026-11-27T08:00:00", "2026-11-27 08:00:00Z", "2026-11-27t08:00:00z",
    "2026-11-27T08:00:00.123456Z", "2026-11-27T08:00:00.123456789Z", "2026-11-27T08:00:00.1Z",
    "2026-11-27T08:00Z", "2026-11-27", "2026-11-27T24:00:00Z", "2026-02-30T08:00:00Z",
    "2026-11-27T08:00:60Z", "2026-11-27T08:00:00+24:00", "2026-11-27T08:00:00+23:59",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "+2026-11-27T08:00:00Z",
    "2026-W48-5T08:00:00Z", "20261127T080000Z", "2026-11-27T08:00:00,5Z", "2026-11-27T08Z",
    "2026-11-27T08:00:00.5+0100", "2026-11-27T08:00:00+01", "2026-11-27T08:00:00+01:00:30",
    "2026-11-27T08:00:00.1234567Z", "2026-11-27T08:00:00.123+01:00", "2026-11-27T08:00:00.Z",
    "2026-11-27T08:00:00.+01:00", "２０２６-11-27T08:00:00Z", "2026-11-27T08:00:00 Z",
    "2026-11-27T08:00:00-00:00", "2026-11-27T08:00:00.000000+14:00", "2026-1-27T08:00:00.00Z",
    "2026-11-27T08:00:00.12345Z", "2026-11-27T08:00:0.123456Z", "2026-11-27X08:00:00Z",
    # 27 characters ending in Z: the form the fast decoder checks in one comparison
    "2026-11-27X08:00:00.123456Z", "2026-11-27T08:00:00,123456Z", "2026-11-27 08:00:00.123456Z",
    "2026-11-27T08:00:00.1234567", "2026-11-27T08:00:00.12345 Z", "2026-11-27T08:00:60.123456Z",
    "2026-13-27T08:00:00.123456Z", "+026-11-27T08:00:00.123456Z", "2026-11-27T08:00:00.-12345Z",
    "２０２６-11-27T08:00:00.123456Z", "2026-11-27T24:00:00.000000Z",
    # 32 characters ending in +00:00: the other form checked by comparison (isoformat()'s)
    "2026-11-27T08:00:00.123456+00:00", "2026-11-27X08:00:00.123456+00:00",
    "2026-11-27T08:00:00,123456+00:00", "2026-11-27 08:00:00.123456+00:00",
    "2026-11-27T08:00:00.12345 +00:00", "2026-11-27T08:00:60.123456+00:00",
    "2026-13-27T08:00:00.123456+00:00", "2026-11-27T24:00:00.000000+00:00",
    "２０２６-11-27T08:00:00.123456+00:00", "2026-11-27T08:00:00.1234567+0000",
    "2026-11-27T08:00:00.123456-00:00", "2026-11-27T08:00:00.123456+00:30",
    "0001-01-01T00:00:00.000000+00:00", "9999-12-31T23:59:59.999999+00:00",
    # RFC 3339 stamps whose UTC instant is outside the years 1 to 9999: out of range
    "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59.999999-01:00",
    1764230400, 1764230400.5, "1764230400",
]  # fmt: skip

# Raw JSON members pydantic and msgspec might read differently, each appended to a valid payload
# (so each key is there twice: the payload's value, then this one).
RAW_MEMBERS: list[bytes] = [
    b'"host": "\\ud800"',  # a lone surrogate
    b'"host": "\\udc00x"',
    b'"host": "\\ud83d\\ude00"',  # a surrogate pair: one emoji
    b'"host": ""',
    b'"gpu_index": NaN',
    b'"power_w": Infinity',
    b'"latency_ms": -Infinity',
    b'"power_w": 1e400',
    b'"latency_ms": 1e400',
    b'"power_w": -0',
    b'"gpu_index": 01',
    b'"gpu_index": 1e2',
    b'"input_tokens": -0',
    b'"ts": "2026-11-27T08:00:00\\u005a"',
]


def _encode(payload: Any) -> bytes:
    # json, not orjson: it writes the integers beyond 64 bits the corpus needs
    return json.dumps(payload, ensure_ascii=False).encode()


def _corpus(valid: dict[str, Any], kind: EventKind) -> list[bytes]:
    fields = list(kind.model.model_fields)
    raws = [_encode(valid), _encode({**valid, "unknown": [1, {"x": None}]})]
    raws += [_encode({k: v for k, v in valid.items() if k != drop}) for drop in fields]
    raws += [_encode({**valid, name: value}) for name in fields for value in AWKWARD]
    raws += [_encode(valid)[:-1] + b", " + member + b"}" for member in RAW_MEMBERS]
    raws += [b"", b"null", b"[]", b"{}", _encode(valid) + b"x", b"\xef\xbb\xbf" + _encode(valid)]
    raws += [_encode(valid).replace(b'"', b"'"), _encode(valid)[:-1]]
    return raws


def _pydantic(kind: EventKind, raw: bytes) -> dict[str, Any] | None:
    try:
        return kind.model.model_validate_json(raw).__dict__
    except ValidationError:
        return None


def _fast(decoder: Callable[[bytes], dict[str, Any]], raw: bytes) -> dict[str, Any] | None:
    try:
        return decoder(raw)
    except ValueError:  # msgspec's DecodeError is one
        return None


@pytest.mark.parametrize("kind, valid", [(GPU_METRICS, GPU), (TOKEN_USAGE, TOKENS)])
def test_the_fast_decoder_accepts_only_what_the_model_accepts_with_equal_values(
    kind: EventKind, valid: dict[str, Any]
) -> None:
    decoder = fast_decoder(kind.model)
    corpus = _corpus(valid, kind)
    both, declined = 0, 0
    for raw in corpus:
        fast, model = _fast(decoder, raw), _pydantic(kind, raw)
        if fast is None:
            declined += model is not None
            continue
        assert model is not None, f"fast decoder accepted what the model rejects: {raw!r}"
        assert fast == model, raw
        assert set(fast) == set(model), "every field, defaults filled in"
        for name, value in fast.items():
            assert type(value) is type(model[name]), (raw, name, value, model[name])
            if hasattr(value, "utcoffset"):
                assert value.utcoffset() == model[name].utcoffset(), raw
        both += 1
    # It must be the fast path, not a decoder that declines everything: the valid payloads
    # and most in-range variants go through it.
    assert both > len(corpus) // 4, (both, len(corpus))
    assert declined < both, (declined, both)


@pytest.mark.parametrize("kind, valid", [(GPU_METRICS, GPU), (TOKEN_USAGE, TOKENS)])
def test_fields_from_json_gives_the_model_verdict_on_every_case(
    kind: EventKind, valid: dict[str, Any]
) -> None:
    for raw in _corpus(valid, kind):
        model = _pydantic(kind, raw)
        if model is None:
            with pytest.raises(ValueError):  # pydantic's ValidationError is one
                kind.fields_from_json(raw)
        else:
            assert kind.fields_from_json(raw) == model, raw


@pytest.mark.parametrize("kind, valid", [(GPU_METRICS, GPU), (TOKEN_USAGE, TOKENS)])
def test_the_consumers_documents_hold_the_same_instant_as_naive_utc(
    kind: EventKind, valid: dict[str, Any]
) -> None:
    # document_from_json: fields_from_json with `ts` naive UTC, on the fast path (producers'
    # form and the others) and on pydantic's alike.
    naive = 0
    for raw in _corpus(valid, kind):
        model = _pydantic(kind, raw)
        if model is None:
            with pytest.raises(ValueError):
                kind.document_from_json(raw)
            continue
        stamp = model["ts"]
        document = kind.document_from_json(raw)
        assert document == {**model, "ts": stamp.astimezone(UTC).replace(tzinfo=None)}, raw
        assert document["ts"].tzinfo is None
        naive += stamp.utcoffset() != timedelta(0)
    assert naive, "the corpus has offsets other than UTC"


def test_a_constraint_it_cannot_map_is_an_error_not_a_check_dropped() -> None:
    class Odd(BaseModel):
        count: Annotated[int, Field(multiple_of=2)]

    class Pattern(BaseModel):
        name: Annotated[str, Field(pattern="^[a-z]+$")]

    for model in (Odd, Pattern):
        with pytest.raises(TypeError, match="cannot map"):
            fields_type(model)
