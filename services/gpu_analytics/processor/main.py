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
        timeout_graceful_shutdown=20,
    )
    return 0
