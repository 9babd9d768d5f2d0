"""Liveness and readiness (the pod's probes)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gpu_analytics.processor.deps import RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(runtime: RuntimeDep) -> JSONResponse:
    """200 while the process and its consumer pipeline run; 503 once the pipeline has died."""
    alive = runtime.alive()
    return JSONResponse({"status": "ok" if alive else "dead"}, status_code=200 if alive else 503)


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """200 when Kafka and MongoDB both answer; 503 (with which one is away) otherwise."""
    ready = all(runtime.ready.values())
    return JSONResponse({"ready": ready, **runtime.ready}, status_code=200 if ready else 503)
