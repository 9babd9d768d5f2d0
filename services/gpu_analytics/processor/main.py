"""`gpu-analytics processor`: one uvicorn worker per pod; scale with replicas."""

from __future__ import annotations

import uvicorn

from gpu_analytics.config import ProcessorSettings
from gpu_analytics.logs import configure_logging
from gpu_analytics.processor.app import create_app


def serve() -> int:
    settings = ProcessorSettings()
    configure_logging(settings.log_level, service="processor")
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # keep the JSON logging configured above
        # Off rather than filtered by level (logs.py silences it): uvicorn builds each access
        # line's arguments before the logger drops it, a few percent of ingest's CPU.
        access_log=False,
        # In-flight requests get 10 s on SIGTERM, then the consumer its shutdown_timeout_s:
        # the Deployment's terminationGracePeriodSeconds covers both and the preStop pause.
        timeout_graceful_shutdown=10,
    )
    return 0
