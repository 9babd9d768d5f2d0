"""HTTP ingest and queries, end to end: HTTP -> Kafka -> consumer -> MongoDB -> HTTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from gpu_analytics.events import GpuMetric
from gpu_analytics_tools.testing.harness import Pipeline, read_records

pytestmark = pytest.mark.integration

LEGACY_GPU = {
    "gpu_index": 2,
    "name": "Tesla T4",
    "utilization": 0.42,
    "mem_used_mb": 4000,
    "mem_total_mb": 16000,
    "power_w": 55.5,
    "price_per_hour_usd": 0.53,
    "ts": "2026-11-27T08:00:00",
    "host": "old-box",
}


async def test_ingest_single_and_array_are_accepted_stored_and_queryable(
    pipeline: Pipeline, make_gpu_event: Callable[..., dict[str, Any]]
) -> None:
    processor = await pipeline.start_processor()
    async with httpx.AsyncClient(base_url=processor.url) as client:
        one = await client.post("/api/v1/gpu-metrics", json=make_gpu_event(0))
        assert one.status_code == 202
        assert one.json() == {"accepted": 1}
        batch = [make_gpu_event(i) for i in range(1, 100)]
        many = await client.post("/api/v1/gpu-metrics", json=batch)
        assert many.status_code == 202
        assert many.json() == {"accepted": 99}
        docs = await pipeline.wait_stored(100)
        assert sorted(d["host"] for d in docs) == sorted(f"seq-{i}" for i in range(100))

        gpus = await client.get("/api/v1/gpus")
        assert gpus.status_code == 200
        assert [g["gpu_uuid"] for g in gpus.json()] == [f"GPU-{i:08d}" for i in range(8)]
        since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
        samples = await client.get("/api/v1/gpus/GPU-00000003/metrics", params={"since": since})
        assert samples.status_code == 200
        assert len(samples.json()) == len([i for i in range(100) if i % 8 == 3])
        missing = await client.get("/api/v1/gpus/GPU-nope/metrics")
        assert missing.status_code == 404

        stats = (await client.get("/api/v1/stats")).json()
        assert stats["collections"]["gpu_metrics"] == 100
        assert stats["dlq_total"] == 0


async def test_token_cost_is_gpu_time_not_summed_latencies(pipeline: Pipeline) -> None:
    """100 calls of 10 s at once on one $3.60/h GPU (vLLM batches them) cost 10 s of that GPU,
    not 1,000 s; a GPU serving no call stays unattributed; nothing exceeds the fleet."""
    processor = await pipeline.start_processor()
    now = datetime.now(UTC)

    def gpu(uuid: str, seconds_ago: float, price: float) -> dict[str, Any]:
        return {
            "ts": (now - timedelta(seconds=seconds_ago)).isoformat(),
            "host": "h",
            "gpu_index": 0,
            "gpu_uuid": uuid,
            "name": "NVIDIA H100 80GB HBM3",
            "price_per_hour_usd": price,
        }

    # samples 1 s apart over the last 10 s: each stands for 1 s
    samples = [gpu("GPU-x", 9.5 - i, 3.6) for i in range(10)]
    samples += [gpu("GPU-idle", 9.5 - i, 7.2) for i in range(10)]
    calls = [
        {
            "ts": (now - timedelta(seconds=10)).isoformat(),
            "host": "h",
            "provider": "vllm",
            "model": "llama-3.1-8b",
            "input_tokens": 100,
            "output_tokens": 900,
            "latency_ms": 10_000.0 + i,
            "gpu_uuid": "GPU-x",
        }
        for i in range(100)
    ]
    async with httpx.AsyncClient(base_url=processor.url) as client:
        assert (await client.post("/api/v1/gpu-metrics", json=samples)).status_code == 202
        assert (await client.post("/api/v1/token-usage", json=calls)).status_code == 202
        await pipeline.wait_stored(100, "token_usage")
        await pipeline.wait_stored(20, "gpu_metrics")
        summary = await client.get("/api/v1/tokens/summary", params={"minutes": 10})
    assert summary.status_code == 200
    body = summary.json()
    (model,) = body["models"]
    assert model["model"] == "llama-3.1-8b"
    assert model["events"] == 100
    assert model["input_tokens"] + model["output_tokens"] == 100_000
    assert model["tokens_per_s"] == pytest.approx(100_000 / 600)
    assert 10_093 <= model["p95_latency_ms"] <= 10_097
    assert model["gpu_seconds"] == pytest.approx(10)  # not 100 x 10 s
    assert model["cost_usd"] == pytest.approx(0.01)
    assert model["cost_per_1k_tokens_usd"] == pytest.approx(0.01 / 100)
    assert model["cost_basis"] == "gpu_time_by_token_share"
    fleet = body["fleet"]
    assert fleet["gpus"] == 2
    assert fleet["gpu_seconds"] == pytest.approx(20)
    assert fleet["cost_usd"] == pytest.approx(0.01 + 0.02)
    assert fleet["attributed_cost_usd"] == pytest.approx(0.01)
    assert fleet["gpu_seconds"] / 600 <= fleet["gpus"]


async def test_gpu_usage_by_workload_with_idle_and_unallocated_gpus(pipeline: Pipeline) -> None:
    """Three GPUs for 10 s at $3.60/h: one a vLLM pod keeps busy, one a notebook pod holds
    idle (waste), one no pod holds (unallocated, per node)."""
    processor = await pipeline.start_processor()
    now = datetime.now(UTC)
    holders = {
        "GPU-busy": ("inference", "vllm-0", 80.0, "node-a"),
        "GPU-idle": ("research", "notebook-0", 1.0, "node-a"),
        "GPU-free": (None, None, 0.0, "node-b"),
    }
    samples = [
        {
            "ts": (now - timedelta(seconds=9.5 - i)).isoformat(),
            "host": host,
            "gpu_index": 0,
            "gpu_uuid": uuid,
            "name": "NVIDIA L4",
            "utilization_gpu_pct": util,
            "price_per_hour_usd": 3.6,
            "namespace": namespace,
            "pod": pod,
            "container": pod and "main",
        }
        for uuid, (namespace, pod, util, host) in holders.items()
        for i in range(10)
    ]
    call = {
        "ts": now.isoformat(),
        "host": "vllm-0",
        "provider": "vllm",
        "model": "qwen",
        "input_tokens": 10,
        "output_tokens": 10,
        "latency_ms": 900.0,
        "gpu_uuid": "GPU-busy",
    }
    async with httpx.AsyncClient(base_url=processor.url) as client:
        assert (await client.post("/api/v1/gpu-metrics", json=samples)).status_code == 202
        assert (await client.post("/api/v1/token-usage", json=call)).status_code == 202
        await pipeline.wait_stored(30, "gpu_metrics")
        await pipeline.wait_stored(1, "token_usage")
        usage = (await client.get("/api/v1/gpus/usage", params={"minutes": 5})).json()
        tokens = (await client.get("/api/v1/tokens/summary", params={"minutes": 5})).json()
    hour = 10 / 3600
    assert usage["idle_threshold_pct"] == 5
    assert usage["total"]["gpus"] == 3
    assert usage["total"]["gpu_hours"] == pytest.approx(3 * hour)
    assert usage["total"]["cost_usd"] == pytest.approx(0.03)
    pods = {w["pod"]: w for w in usage["workloads"]}
    assert pods.keys() == {"vllm-0", "notebook-0"}
    assert pods["vllm-0"]["models"] == ["qwen"]
    assert pods["vllm-0"]["mean_utilization_pct"] == pytest.approx(80)
    assert pods["vllm-0"]["idle_gpu_hours"] == 0
    assert pods["notebook-0"]["namespace"] == "research"
    assert pods["notebook-0"]["idle_gpu_hours"] == pytest.approx(hour)
    assert pods["notebook-0"]["idle_cost_usd"] == pytest.approx(0.01)
    assert {n["namespace"] for n in usage["namespaces"]} == {"inference", "research"}
    (free,) = usage["unallocated"]
    assert (free["host"], free["gpus"], free["idle_gpu_hours"]) == ("node-b", 1, 0)
    assert free["cost_usd"] == pytest.approx(0.01)
    (model,) = usage["models"]
    assert model["cost_usd"] == pytest.approx(0.01)
    assert model["cost_basis"] == "pod_gpu_time_by_token_share"
    assert tokens["models"][0]["cost_basis"] == "pod_gpu_time_by_token_share"
    assert tokens["fleet"]["attributed_cost_usd"] == pytest.approx(0.01)


async def test_legacy_payloads_are_accepted_and_mapped(pipeline: Pipeline) -> None:
    processor = await pipeline.start_processor()
    legacy_tokens = {
        "ts": "2026-11-27T08:00:01",
        "model": "gpt-small",
        "prompt_tokens": 12,
        "completion_tokens": 34,
        "latency_ms": 250,
        "gpu_index": 2,
    }
    async with httpx.AsyncClient(base_url=processor.url) as client:
        assert (await client.post("/api/v1/gpu-metrics", json=LEGACY_GPU)).status_code == 202
        assert (await client.post("/api/v1/token-usage", json=legacy_tokens)).status_code == 202
    (gpu,) = await pipeline.wait_stored(1, "gpu_metrics")
    (tokens,) = await pipeline.wait_stored(1, "token_usage")
    assert gpu["gpu_uuid"] == "legacy-old-box-2"
    assert gpu["utilization_gpu_pct"] == pytest.approx(42.0)
    assert gpu["utilization_mem_pct"] == pytest.approx(25.0)
    assert gpu["ts"] == datetime(2026, 11, 27, 8, 0)
    assert (tokens["input_tokens"], tokens["output_tokens"]) == (12, 34)


async def test_what_kafka_gets_is_the_validated_bytes_or_the_model_serialised(
    pipeline: Pipeline, make_gpu_event: Callable[..., dict[str, Any]]
) -> None:
    """A batch of valid v1 events with ids is published as its elements' own bytes, keyed by
    GPU, with no second serialisation; an event without id goes the full way and gets one."""
    processor = await pipeline.start_processor()
    with_ids = [make_gpu_event(i) for i in range(3)]
    elements = [orjson.dumps(e, option=orjson.OPT_INDENT_2) for e in with_ids]
    body = b"[ " + b" ,\n".join(elements) + b" ]"
    without_id = {**make_gpu_event(3), "event_id": None}
    async with httpx.AsyncClient(base_url=processor.url) as client:
        headers = {"content-type": "application/json"}
        response = await client.post("/api/v1/gpu-metrics", content=body, headers=headers)
        assert response.json() == {"accepted": 3}
        response = await client.post("/api/v1/gpu-metrics", json=[without_id])
        assert response.json() == {"accepted": 1}
    records = await read_records(pipeline.stack.bootstrap_servers, pipeline.gpu_topic, 4)
    by_host = {orjson.loads(r.value)["host"]: r for r in records}
    for event, element in zip(with_ids, elements, strict=True):
        assert by_host[event["host"]].value == element
        assert by_host[event["host"]].key == event["gpu_uuid"].encode()
    served = by_host[without_id["host"]]
    assert served.value == GpuMetric.model_validate_json(served.value).model_dump_json().encode()
    assert orjson.loads(served.value)["event_id"]
    assert len(await pipeline.wait_stored(4)) == 4


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"{not json", ["body"]),
        (b'"a string"', ["body"]),
        (b"[]", ["body"]),
        (b'[{"gpu_index": "0"}]', ["body", 0, "gpu_index"]),
        (b'{"utilization_gpu_pct": 101}', ["body", "utilization_gpu_pct"]),
        (b'{"ts": "2026-11-27T08:00:00"}', ["body", "ts"]),
        # RFC 3339, but its instant in UTC is in year 0 (a legacy payload was a 500 then)
        (b'{"ts": "0001-01-01T00:30:00+01:00"}', ["body", "ts"]),
        (orjson.dumps({**LEGACY_GPU, "ts": "0001-01-01T00:30:00+01:00"}), ["body", "ts"]),
    ],
)
async def test_bad_input_gets_422_with_the_field_and_publishes_nothing(
    pipeline: Pipeline, body: bytes, where: list[Any]
) -> None:
    processor = await pipeline.start_processor()
    async with httpx.AsyncClient(base_url=processor.url) as client:
        response = await client.post(
            "/api/v1/gpu-metrics", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422
        assert where in [err["loc"] for err in response.json()["detail"]]
        assert await processor.metric("gpu_analytics_ingest_events_total") == 0


async def test_one_bad_item_rejects_the_whole_batch(
    pipeline: Pipeline, make_gpu_event: Callable[..., dict[str, Any]]
) -> None:
    processor = await pipeline.start_processor()
    batch = [make_gpu_event(0), make_gpu_event(1, gpu_index=-1), make_gpu_event(2)]
    async with httpx.AsyncClient(base_url=processor.url) as client:
        response = await client.post("/api/v1/gpu-metrics", json=batch)
    assert response.status_code == 422
    assert [err["loc"] for err in response.json()["detail"]] == [["body", 1, "gpu_index"]]


async def test_body_over_the_limit_gets_413(pipeline: Pipeline) -> None:
    processor = await pipeline.start_processor()
    async with httpx.AsyncClient(base_url=processor.url) as client:
        declared = await client.post("/api/v1/token-usage", content=b"[" + b" " * 1_100_000 + b"]")

        async def chunks() -> Any:  # no Content-Length: the limit applies while reading
            for _ in range(20):
                yield b" " * 100_000

        streamed = await client.post("/api/v1/token-usage", content=chunks())
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "limit" in declared.json()["detail"]


async def test_query_with_since_after_until_gets_422(pipeline: Pipeline) -> None:
    processor = await pipeline.start_processor()
    async with httpx.AsyncClient(base_url=processor.url) as client:
        response = await client.get(
            "/api/v1/gpus/GPU-x/metrics",
            params={"since": "2026-11-27T10:00:00Z", "until": "2026-11-27T09:00:00Z"},
        )
        naive = await client.get(
            "/api/v1/gpus/GPU-x/metrics", params={"since": "2026-11-27T10:00:00"}
        )
    assert response.status_code == 422
    assert naive.status_code == 422
