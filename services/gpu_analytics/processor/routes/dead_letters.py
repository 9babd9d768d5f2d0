"""The dead-letter view: what was refused, why, and where it came from, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from gpu_analytics.processor import dead_letters
from gpu_analytics.processor.deps import DbDep

router = APIRouter(prefix="/api/v1", tags=["dead letters"])


class DeadLetterView(BaseModel):
    source: str  # <topic>:<partition>:<offset> of the refused record
    topic: str
    dlq_topic: str
    partition: int
    offset: int
    reason: str
    error: str
    dead_lettered_at: datetime
    size: int  # bytes of the record's value
    preview: str  # its first 200 characters (UTF-8, invalid bytes replaced)
    replayed_at: datetime | None


def _view(doc: dict[str, Any]) -> DeadLetterView:
    return DeadLetterView.model_validate({**doc, "source": doc["_id"]})


@router.get("/dead-letters")
async def list_dead_letters(
    db: DbDep,
    topic: Annotated[
        str | None, Query(description="source topic or its .dlq topic; default: both")
    ] = None,
    since: Annotated[AwareDatetime | None, Query(description="dead-lettered at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterView]:
    """Dead letters with reason, error, source position and a payload preview, newest first."""
    docs = await dead_letters.newest(db, topic=topic, since=since, limit=limit)
    return [_view(doc) for doc in docs]
