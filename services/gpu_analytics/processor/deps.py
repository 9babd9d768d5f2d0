"""FastAPI dependencies, declared once as Annotated aliases.

Each is `async def`, though none awaits: FastAPI runs a plain `def` dependency in a worker
thread, a hand-off to a thread pool and back on every request for a single attribute read."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pymongo.asynchronous.database import AsyncDatabase

from gpu_analytics.config import ProcessorSettings
from gpu_analytics.processor.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_db(
    runtime: Annotated[Runtime, Depends(get_runtime)],
) -> AsyncDatabase[dict[str, Any]]:
    return runtime.db


async def get_settings(runtime: Annotated[Runtime, Depends(get_runtime)]) -> ProcessorSettings:
    return runtime.settings


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
DbDep = Annotated[AsyncDatabase[dict[str, Any]], Depends(get_db)]
SettingsDep = Annotated[ProcessorSettings, Depends(get_settings)]
