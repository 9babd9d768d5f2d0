"""A fast JSON decoder for an event model, derived from the model itself.

The pydantic models in events.py decide what an event is. Validating a typical gpu.metrics.v1
record with pydantic costs about twice what decoding it with orjson does, and the consumer does
it for every record. msgspec decodes and checks the same types and constraints in one pass in
about half the time, so the hot path tries it first and hands whatever it declines to pydantic,
whose verdict (and error) stands. The fast decoder may only ever be stricter: what it accepts
pydantic accepts too, with equal values of the same types (services/tests/test_fast_decode.py
holds the two to that on a corpus of edge cases).

The msgspec types are built from the model's fields, so there is one set of rules: a field
type or constraint this module cannot map is an error at import, never a check dropped. No
library converts pydantic models to msgspec types, hence this small mapping.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from datetime import UTC, datetime
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    TypedDict,
    Union,
    get_args,
    get_origin,
)

import msgspec
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import AfterValidator, AwareDatetime, BaseModel
from pydantic.fields import FieldInfo
from pydantic.types import Strict
from pydantic_core import PydanticCustomError

# annotated-types constraint (as pydantic keeps them in FieldInfo.metadata) -> msgspec.Meta key
_CONSTRAINTS: dict[type, str] = {
    Ge: "ge",
    Gt: "gt",
    Le: "le",
    Lt: "lt",
    MinLen: "min_length",
    MaxLen: "max_length",
}
_SCALARS = (str, int, float, bool)


def _constraints(metadata: list[Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, Strict):
            # pydantic's lax mode (ts) accepts more than msgspec's strict one: msgspec declines
            # the rest (a Unix time, say) and pydantic decides, so nothing is lost.
            continue
        if isinstance(item, AfterValidator) and item.func is in_utc_range:
            continue  # fast_decoder checks it on `ts` itself
        key = _CONSTRAINTS.get(type(item))
        if key is None:
            raise TypeError(f"fast_decode cannot map the constraint {item!r}")
        meta[key] = getattr(item, key)
    return meta


def _msgspec_type(annotation: Any, metadata: list[Any]) -> Any:
    """The msgspec type for a pydantic field annotation and its constraints."""
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extras = get_args(annotation)
        nested = [m for e in extras for m in (e.metadata if isinstance(e, FieldInfo) else [e])]
        return _msgspec_type(inner, [*metadata, *nested])
    meta = _constraints(metadata)
    if origin in (Union, types.UnionType):
        if meta:
            raise TypeError(f"fast_decode cannot constrain the union {annotation!r}")
        return Union[tuple(_msgspec_type(arg, []) for arg in get_args(annotation))]  # noqa: UP007
    if annotation is AwareDatetime:
        if meta:
            raise TypeError(f"fast_decode cannot constrain a timestamp: {meta}")
        # As text, converted by _timestamp: msgspec's own datetime rounds digits past the
        # microsecond where pydantic truncates them.
        return Annotated[str, msgspec.Meta(min_length=20, max_length=32)]
    if not (origin is Literal or annotation in _SCALARS or annotation is type(None)):
        raise TypeError(f"fast_decode cannot map the type {annotation!r}")
    return Annotated[annotation, msgspec.Meta(**meta)] if meta else annotation


def fields_type(model: type[BaseModel]) -> tuple[Any, dict[str, Any]]:
    """A TypedDict of the model's fields (their types and constraints; the optional ones
    NotRequired) and the defaults of the optional ones. msgspec decodes a TypedDict straight
    into a dict, ignoring unknown keys as the models' extra="ignore" does."""
    annotations: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.default_factory is not None or info.alias is not None:
            raise TypeError(f"fast_decode cannot map {model.__name__}.{name}")
        kind = _msgspec_type(info.annotation, list(info.metadata))
        if info.is_required():
            annotations[name] = Required[kind]
        else:
            annotations[name] = NotRequired[kind]
            defaults[name] = info.default
    return TypedDict(f"{model.__name__}Fields", annotations), defaults  # type: ignore[operator]


def _timestamp(text: str) -> datetime:
    """RFC 3339 as our producers write it, "2026-11-27T08:00:00[.ffffff](Z|+HH:MM)": the subset
    on which datetime.fromisoformat and pydantic agree. Anything else (another separator, more
    than six fractional digits, no offset, ISO week dates...) raises ValueError: pydantic judges
    it. The offset is kept (a datetime.timezone, which compares and subtracts in C)."""
    zone = 1 if text[-1] == "Z" else 6
    fraction = len(text) - 19 - zone
    if not (
        text[4] == text[7] == "-"
        and text[10] == "T"
        and text[13] == text[16] == ":"
        and (fraction == 0 or (2 <= fraction <= 7 and text[19] == "."))
        and (zone == 1 or (text[-6] in "+-" and text[-3] == ":"))
    ):
        raise ValueError(f"not a timestamp the fast decoder reads: {text!r}")
    return _fromisoformat(text)  # ValueError for a day or hour that does not exist


_fromisoformat = datetime.fromisoformat


def fast_decoder(
    model: type[BaseModel],
    otherwise: Callable[[bytes], dict[str, Any]] | None = None,
    *,
    naive_utc: bool = False,
) -> Callable[[bytes], dict[str, Any]]:
    """`decode(raw)` -> the model's field values as a dict (every field, the defaults filled
    in, in the order the JSON gave them); raises ValueError (msgspec's DecodeError is one) for
    anything it declines. With `otherwise`, a record it declines goes to `otherwise(raw)`
    instead (pydantic, whose verdict stands) from within the same call. With `naive_utc`, `ts`
    comes out as a naive datetime of the same instant in UTC, whichever way it was decoded
    (to_naive_utc says why).

    One closure, no helper calls on the common path: it runs once per record, where each level
    of Python call shows. A timestamp in UTC with microseconds, as our producers write it
    ("2026-11-27T08:00:00.123456Z") or Python's isoformat() does ("...+00:00"), is checked by
    comparing its separators and zone; any other form goes through _timestamp's full checks."""
    typed, defaults = fields_type(model)
    decode = msgspec.json.Decoder(typed).decode
    count = len(model.model_fields)
    missing = tuple(defaults.items())
    stamps = [n for n, info in model.model_fields.items() if info.annotation is AwareDatetime]
    if stamps != ["ts"]:  # one known field: no loop on the hot path
        raise TypeError(f"fast_decode expects one timestamp, ts; {model.__name__}: {stamps}")
    fromisoformat, timestamp = _fromisoformat, _timestamp

    def fast(raw: bytes) -> dict[str, Any]:
        try:
            fields: dict[str, Any] = decode(raw)
            if len(fields) != count:  # an optional field left out (our producers send all)
                for name, default in missing:
                    if name not in fields:
                        fields[name] = default
            text = fields["ts"]
            # _timestamp's rules for the two UTC forms with microseconds: "-", "-", "T", ":",
            # ":", "." at offsets 4, 7, 10, 13, 16, 19, then "Z" (27 characters, as our
            # producers write it) or "+00:00" (32, as Python's isoformat() does). Read without
            # its zone, either is the naive UTC datetime.
            size = len(text)
            if text[4:20:3] == "--T::." and (
                (size == 27 and text[26] == "Z") or (size == 32 and text[26:] == "+00:00")
            ):
                fields["ts"] = fromisoformat(text[:26] if naive_utc else text)
                return fields
            stamp = timestamp(text)
            if stamp.year == 1 or stamp.year == 9999:  # the only years an offset can leave
                to_naive_utc(stamp)  # ValueError outside the models' in_utc_range
        except ValueError:
            if otherwise is None:
                raise
            fields = otherwise(raw)
            stamp = fields["ts"]
        fields["ts"] = to_naive_utc(stamp) if naive_utc else stamp
        return fields

    return fast


def in_utc_range(stamp: datetime) -> datetime:
    """The models' rule for every timestamp (an AfterValidator): an aware stamp's instant must
    be in the years 1 to 9999 in UTC. 0001-01-01T00:30:00+01:00 is valid RFC 3339, but neither
    Python nor pymongo can hold it in UTC: pymongo raised OverflowError in the middle of a bulk
    insert. A naive stamp (legacy payloads) is read as UTC, so always holds."""
    if stamp.tzinfo is not None:
        to_naive_utc(stamp)
    return stamp


def to_naive_utc(stamp: datetime) -> datetime:
    """The naive UTC datetime of an aware one's instant; a ValueError (in_utc_range's error)
    when that instant is not in the years 1 to 9999 in UTC.

    Why the consumer wants naive stamps: pymongo stores a datetime as UTC milliseconds either
    way, but encodes an aware one by calling its utcoffset() and building a shifted copy, per
    document; a naive one (read back through a tz_aware client as the same aware UTC instant)
    is written as it is."""
    try:
        return stamp.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise PydanticCustomError(
            "timestamp_out_of_range",
            "{stamp} is outside the years 1 to 9999 in UTC",
            {"stamp": stamp.isoformat()},
        ) from None
