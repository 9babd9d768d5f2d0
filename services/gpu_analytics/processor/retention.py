"""Retention of stored events: a TTL index on `ts` of each event collection (RETENTION_DAYS).

MongoDB's TTL monitor (every 60 s) deletes the documents whose `ts` is older than the index's
`expireAfterSeconds`. A TTL index is a single-field index, and MongoDB refuses a second index
with the same key and other options, so this index *is* the collections' `ts` index (the one
`GET /api/v1/gpus/{uuid}/metrics` and the summaries range over): created with the expiry when
it is missing, changed in place with `collMod` when RETENTION_DAYS changes (an index that has
no expiry yet, such as the plain `ts_-1` of earlier releases, is converted the same way).

`collMod` needs the `collMod` privilege, which MongoDB's `readWrite` role lacks (SERVER-20772).
Without it the index is dropped and created again with the new expiry (`readWrite` may do both):
the same result, at the price of an index build and a moment without the index.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import pymongo
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

log = logging.getLogger(__name__)

COLLECTIONS = ("gpu_metrics", "token_usage")
TTL_KEY = [("ts", pymongo.DESCENDING)]
TTL_INDEX_NAME = "ts_-1"  # pymongo's name for TTL_KEY, so an existing plain index is reused
SECONDS_PER_DAY = 86_400

UNAUTHORIZED = 13
INDEX_NOT_FOUND = 27
INDEX_OPTIONS_CONFLICT = 85
INDEX_KEY_SPECS_CONFLICT = 86
# Another processor changed the index between our read and our write: read it again.
_RACES = {INDEX_NOT_FOUND, INDEX_OPTIONS_CONFLICT, INDEX_KEY_SPECS_CONFLICT}
_ATTEMPTS = 3

Doc = dict[str, Any]


class TtlChange(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


async def ensure_ttl(
    db: AsyncDatabase[Doc], days: int, collections: Iterable[str] = COLLECTIONS
) -> dict[str, TtlChange]:
    """Make the `ts` index of each collection a TTL index of `days` days (idempotent).

    Returns what was done per collection: created, updated (expiry changed or added) or
    unchanged."""
    if days < 1:
        raise ValueError(f"retention must be at least one day, got {days}")
    seconds = days * SECONDS_PER_DAY
    done: dict[str, TtlChange] = {}
    for name in collections:
        done[name] = await _ensure(db[name], seconds)
        if done[name] is not TtlChange.UNCHANGED:
            log.info(
                f"retention index {done[name]}",
                extra={"collection": name, "retention_days": days, "expire_after_s": seconds},
            )
    return done


async def ttl_index(collection: AsyncCollection[Doc]) -> Doc | None:
    """The collection's single-field index on `ts` descending, as list_indexes shows it."""
    async for index in await collection.list_indexes():
        key = [(field, _direction(order)) for field, order in index["key"].items()]
        if key == TTL_KEY:
            return dict(index)
    return None


async def _ensure(collection: AsyncCollection[Doc], seconds: int) -> TtlChange:
    for attempt in range(1, _ATTEMPTS + 1):
        current = await ttl_index(collection)
        try:
            if current is None:
                await _create(collection, seconds)
                return TtlChange.CREATED
            if _expiry(current) == seconds:
                return TtlChange.UNCHANGED
            await _set_expiry(collection, current["name"], seconds)
            return TtlChange.UPDATED
        except OperationFailure as exc:
            if exc.code not in _RACES or attempt == _ATTEMPTS:
                raise
            log.info(
                "retention index changed concurrently; reading it again",
                extra={"collection": collection.name, "error": str(exc)},
            )
    raise AssertionError("unreachable")  # pragma: no cover


async def _create(collection: AsyncCollection[Doc], seconds: int) -> None:
    await collection.create_index(TTL_KEY, name=TTL_INDEX_NAME, expireAfterSeconds=seconds)


async def _set_expiry(collection: AsyncCollection[Doc], index_name: str, seconds: int) -> None:
    command = {
        "collMod": collection.name,
        "index": {"name": index_name, "expireAfterSeconds": seconds},
    }
    try:
        await collection.database.command(command)
    except OperationFailure as exc:
        if exc.code != UNAUTHORIZED:
            raise
        log.warning(
            "no collMod privilege: rebuilding the retention index instead",
            extra={"collection": collection.name, "index": index_name},
        )
        await collection.drop_index(index_name)
        await _create(collection, seconds)


def _expiry(index: Doc) -> float | None:
    value = index.get("expireAfterSeconds")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _direction(order: object) -> object:
    # A key built by another client may say -1.0 or -1 (Int64): the same order.
    if isinstance(order, int | float) and not isinstance(order, bool):
        return int(order)
    return order
