"""The FastAPI application of the processor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from gpu_analytics.config import ProcessorSettings
from gpu_analytics.processor import metrics
from gpu_analytics.processor.routes import dead_letters, health, ingest, otlp, queries
from gpu_analytics.processor.runtime import Runtime

# The API's routers, in the order they are included.
ROUTERS = tuple(m.router for m in (health, ingest, otlp, queries, dead_letters))


def create_app(settings: ProcessorSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="gpu-analytics processor", version="0.1.0", lifespan=lifespan)
    for router in ROUTERS:
        app.include_router(router)
    Instrumentator(excluded_handlers=["/metrics", "/healthz", "/readyz"]).instrument(
        app, latency_lowr_buckets=metrics.HTTP_LATENCY_BUCKETS
    ).expose(app, include_in_schema=False)
    return app
