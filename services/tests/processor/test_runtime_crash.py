"""A background task of the processor that crashes is logged when it crashes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gpu_analytics.processor import runtime


async def test_a_crashed_task_is_logged_at_once(caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> None:
        raise RuntimeError("consumer gave up")

    task = asyncio.create_task(boom(), name="pipeline")
    task.add_done_callback(runtime._log_crash)
    with caplog.at_level(logging.ERROR, logger=runtime.log.name):
        with pytest.raises(RuntimeError):
            await task
        await asyncio.sleep(0)  # done callbacks run on the next loop pass
    assert [r.getMessage() for r in caplog.records] == ["pipeline task crashed"]
    assert caplog.records[0].exc_info is not None


async def test_a_cancelled_task_is_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    task = asyncio.create_task(asyncio.sleep(10), name="readiness")
    task.add_done_callback(runtime._log_crash)
    task.cancel()
    with caplog.at_level(logging.ERROR, logger=runtime.log.name):
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
    assert caplog.records == []
