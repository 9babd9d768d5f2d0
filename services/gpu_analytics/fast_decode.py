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
from datetime import datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo
from pydantic.types import Strict

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
        # As text, converted by _timestamp: msgspec's own datetime rounds digits past the
        # microsecond where pydantic truncates them.
        return Annotated[str, msgspec.Meta(min_length=20, max_length=32)]
    if origin is Literal or annotation in _SCALARS or annotation is type(None):
        pass
    else:
        raise TypeError(f"fast_decode cannot map the type {annotation!r}")
    return Annotated[annotation, msgspec.Meta(**meta)] if meta else annotation


def struct_for(model: type[BaseModel]) -> type[msgspec.Struct]:
    """A msgspec Struct with the model's fields, in its order, types, constraints and
    defaults; unknown fields are ignored, as the models' extra="ignore" does."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for name, info in model.model_fields.items():
        if info.default_factory is not None or info.alias is not None:
            raise TypeError(f"fast_decode cannot map {model.__name__}.{name}")
        kind = _msgspec_type(info.annotation, list(info.metadata))
        fields.append((name, kind) if info.is_required() else (name, kind, info.default))
    return msgspec.defstruct(f"{model.__name__}Fast", fields, kw_only=True)


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


class FastDecoder:
    """`decoder(raw)` -> the model's field values as a dict; raises ValueError (msgspec's
    DecodeError is one) for anything it declines, which pydantic then judges."""

    def __init__(self, model: type[BaseModel]) -> None:
        self._decode = msgspec.json.Decoder(struct_for(model)).decode
        self._asdict = msgspec.structs.asdict
        stamps = [n for n, info in model.model_fields.items() if info.annotation is AwareDatetime]
        if stamps != ["ts"]:  # one known field: no loop on the hot path
            raise TypeError(f"fast_decode expects one timestamp, ts; {model.__name__}: {stamps}")

    def __call__(self, raw: bytes) -> dict[str, Any]:
        fields = self._asdict(self._decode(raw))
        fields["ts"] = _timestamp(fields["ts"])
        return fields
