"""Every endpoint of ours and every dependency it declares runs on the event loop.

FastAPI runs a plain `def` endpoint or dependency in a worker thread: a hand-off to the thread
pool and back on every request. One such dependency on the ingest routes cost the processor a
measurable share of its CPU per request, so this holds the whole tree to `async def`. The
instrumentator's `/metrics` is not ours: a scrape every few seconds, not the request path."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from gpu_analytics.processor.app import ROUTERS


def _calls(dependant: Dependant) -> Iterator[object]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def test_every_endpoint_and_dependency_of_ours_is_a_coroutine_function() -> None:
    routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert len(routes) >= 10  # the whole API, not an empty walk
    blocking = sorted(
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in routes
        for call in _calls(route.dependant)
        if not inspect.iscoroutinefunction(call)
    )
    assert blocking == []
