"""Event models: units and ranges, the legacy mapping, JSON parsing and the committed schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from gpu_analytics import schemas
from gpu_analytics.events import (
    GPU_METRICS,
    TOKEN_USAGE,
    EventKind,
    GpuMetric,
    NotAnObject,
    TokenUsage,
    describe_errors,
    invalid_reason,
)

GPU: dict[str, Any] = {
    "ts": "2026-11-27T09:00:00+01:00",
    "host": "node-1",
    "gpu_index": 0,
    "gpu_uuid": "GPU-1",
    "name": "NVIDIA H100 80GB HBM3",
    "utilization_gpu_pct": 55.5,
    "utilization_mem_pct": None,
    "mem_used_mb": 1024,
    "mem_total_mb": 81559,
    "power_w": 310.2,
    "temperature_c": 61,
    "sm_clock_mhz": 1980,
    "price_per_hour_usd": 3.9,
}
TOKENS: dict[str, Any] = {
    "ts": "2026-11-27T08:00:00Z",
    "host": "node-1",
    "provider": "vllm",
    "model": "llama",
    "operation": "chat",
    "input_tokens": 10,
    "output_tokens": 20,
    "latency_ms": 300.5,
}


def test_v1_gpu_metric_parses_with_timezone_and_nulls() -> None:
    event = GPU_METRICS.from_json(orjson.dumps(GPU))
    assert isinstance(event, GpuMetric)
    assert event.ts == datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert event.utilization_mem_pct is None
    assert event.event_id is None
    assert event.with_id("t:0:5").event_id == "t:0:5"


def test_event_id_in_the_payload_wins_over_the_default() -> None:
    event = GPU_METRICS.from_dict({**GPU, "event_id": "abc"})
    assert event.event_id == "abc"
    assert event.with_id("other").event_id == "abc"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"utilization_gpu_pct": 100.1}, "out_of_range"),
        ({"power_w": -1}, "out_of_range"),
        ({"gpu_index": -1}, "out_of_range"),
        ({"gpu_index": "0"}, "wrong_type"),
        ({"gpu_index": True}, "wrong_type"),
        ({"utilization_gpu_pct": "55"}, "wrong_type"),
        ({"ts": "2026-11-27T08:00:00"}, "wrong_type"),  # no timezone
        ({"gpu_uuid": None}, "wrong_type"),
    ],
)
def test_invalid_gpu_metric_is_rejected_with_its_reason(
    change: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        GPU_METRICS.from_json(orjson.dumps({**GPU, **change}))
    assert invalid_reason(caught.value) == reason


def test_missing_field_is_named() -> None:
    payload = {k: v for k, v in GPU.items() if k != "gpu_uuid"}
    with pytest.raises(ValidationError) as caught:
        GPU_METRICS.from_json(orjson.dumps(payload))
    assert invalid_reason(caught.value) == "missing_field"
    assert caught.value.errors()[0]["loc"] == ("gpu_uuid",)


def test_not_json_and_not_an_object_are_told_apart() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        GPU_METRICS.from_json(b"{nope")
    with pytest.raises(NotAnObject):
        GPU_METRICS.from_json(b"[1]")


def test_legacy_gpu_payload_maps_to_v1() -> None:
    legacy = {
        "gpu_index": 1,
        "name": "Tesla T4",
        "utilization": 0.25,
        "mem_used_mb": 8000,
        "mem_total_mb": 16000,
        "power_w": 40,
        "price_per_hour_usd": 0.53,
        "ts": "2026-11-27T08:00:00",
        "host": "box",
    }
    event = GPU_METRICS.from_json(orjson.dumps(legacy))
    assert isinstance(event, GpuMetric)
    assert event.utilization_gpu_pct == pytest.approx(25.0)
    assert event.utilization_mem_pct == pytest.approx(50.0)
    assert event.gpu_uuid == "legacy-box-1"
    assert event.ts.tzinfo is not None  # naive legacy timestamps are UTC
    assert event.temperature_c is None  # not in the legacy payload: null, not 0


def test_legacy_utilization_over_one_is_out_of_range() -> None:
    legacy = {
        "gpu_index": 1,
        "name": "T4",
        "utilization": 42,
        "mem_used_mb": 1,
        "mem_total_mb": 2,
        "power_w": 1,
        "price_per_hour_usd": 0.5,
        "ts": "2026-11-27T08:00:00",
        "host": "box",
    }
    with pytest.raises(ValidationError) as caught:
        GPU_METRICS.from_dict(legacy)
    assert invalid_reason(caught.value) == "out_of_range"


def test_token_usage_v1_and_legacy() -> None:
    event = TOKEN_USAGE.from_json(orjson.dumps(TOKENS))
    assert isinstance(event, TokenUsage)
    assert (event.status, event.ttft_ms, event.gpu_uuid) == ("ok", None, None)
    legacy = TOKEN_USAGE.from_dict(
        {
            "ts": "2026-11-27T08:00:00",
            "model": "m",
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "latency_ms": 12,
            "gpu_index": 0,
        }
    )
    assert isinstance(legacy, TokenUsage)
    assert (legacy.input_tokens, legacy.output_tokens, legacy.operation) == (3, 4, "chat")
    with pytest.raises(ValidationError):
        TOKEN_USAGE.from_dict({**TOKENS, "status": "maybe"})
    with pytest.raises(ValidationError):
        TOKEN_USAGE.from_dict({**TOKENS, "input_tokens": -1})


LEGACY_TOKENS: dict[str, Any] = {
    "model": "m", "prompt_tokens": 3, "completion_tokens": 4, "latency_ms": 12,
}  # fmt: skip


@pytest.mark.parametrize("stamp", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-01:00"])
@pytest.mark.parametrize(
    "kind, payload, legacy",
    [(GPU_METRICS, GPU, False), (TOKEN_USAGE, TOKENS, False), (TOKEN_USAGE, LEGACY_TOKENS, True)],
)
def test_a_stamp_outside_the_years_1_to_9999_in_utc_is_out_of_range(
    kind: EventKind, payload: dict[str, Any], legacy: bool, stamp: str
) -> None:
    # Valid RFC 3339, but no datetime (nor MongoDB's driver) holds its instant in UTC: a legacy
    # payload raised OverflowError here, a v1 event was accepted and then failed its insert.
    raw = orjson.dumps({**payload, "ts": stamp})
    v1_only = [] if legacy else [kind.fields_from_json, kind.document_from_json]
    for validate in (kind.from_json, *v1_only):
        with pytest.raises(ValidationError) as caught:
            validate(raw)
        assert invalid_reason(caught.value) == "out_of_range"
        assert describe_errors(caught.value) == f"ts: {stamp} is outside the years 1 to 9999 in UTC"
    # the last instant either side still is a timestamp
    edge = "0001-01-01T00:00:00+00:00" if stamp.startswith("0001") else "9999-12-31T23:59:59Z"
    assert kind.from_json(orjson.dumps({**payload, "ts": edge})).ts.year == int(edge[:4])


def test_committed_json_schemas_are_current() -> None:
    assert schemas.main(["--check"]) == 0, "run: .venv/bin/python -m gpu_analytics.schemas"


def test_schema_check_notices_a_stale_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemas, "SCHEMA_DIR", tmp_path)
    assert schemas.main([]) == 0
    (tmp_path / "gpu.metrics.v1.json").write_text("{}\n")
    assert schemas.main(["--check"]) == 1


@pytest.mark.parametrize("kind, payload", [(GPU_METRICS, GPU), (TOKEN_USAGE, TOKENS)])
def test_fields_from_json_equals_the_model_fields(kind: Any, payload: dict[str, Any]) -> None:
    raw = orjson.dumps({**payload, "unknown_field": 1})
    assert kind.fields_from_json(raw) == kind.from_json(raw).__dict__


@pytest.mark.parametrize(
    "change", [{"gpu_index": "0"}, {"utilization_gpu_pct": 101}, {"ts": "2026-11-27T08:00:00"}]
)
def test_fields_from_json_rejects_what_the_model_rejects(change: dict[str, Any]) -> None:
    raw = orjson.dumps({**GPU, **change})
    with pytest.raises(ValidationError) as fast:
        GPU_METRICS.fields_from_json(raw)
    with pytest.raises(ValidationError) as model:
        GpuMetric.model_validate_json(raw)
    assert fast.value.errors(include_url=False) == model.value.errors(include_url=False)
