"""Bodies on the wire: JSON (the default, what upstream sends) and msgpack, by content type.

`decode_as(Model, body, content_type)` is the one door through which outside bytes become
models: anything malformed or wrong-shaped raises `ValidationError` naming the field.
Must not import anything from atoma_actors outside `protocol`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, TypeVar

import msgpack
import pydantic

from .errors import ValidationError

__all__ = [
    "JSON",
    "MSGPACK",
    "decode",
    "decode_as",
    "encode",
    "media_type",
    "validate_as",
]

JSON = "application/json"
MSGPACK = "application/msgpack"
_MSGPACK_ALIASES = {MSGPACK, "application/x-msgpack", "application/vnd.msgpack"}

T = TypeVar("T")


def media_type(content_type: str | None) -> str:
    """`JSON` or `MSGPACK` for a Content-Type/Accept header (missing or unknown → JSON)."""
    if not content_type:
        return JSON
    for part in content_type.split(","):
        base = part.split(";", 1)[0].strip().lower()
        if base in _MSGPACK_ALIASES:
            return MSGPACK
        if base == JSON or base.endswith("+json"):
            return JSON
    return JSON


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, pydantic.BaseModel):
        return obj.model_dump(by_alias=True, exclude_none=True, mode="json")
    return obj


def encode(obj: Any, content_type: str | None = JSON) -> bytes:
    """Bytes of a model or plain value; models are dumped camelCase without unset fields."""
    plain = _to_plain(obj)
    if media_type(content_type) == MSGPACK:
        return msgpack.packb(plain, use_bin_type=True)
    return json.dumps(plain, separators=(",", ":"), ensure_ascii=False).encode()


def decode(body: bytes, content_type: str | None = JSON) -> Any:
    """Plain Python value of a body; undecodable bytes raise `ValidationError`."""
    try:
        if media_type(content_type) == MSGPACK:
            return msgpack.unpackb(body, raw=False, strict_map_key=True)
        return json.loads(body)
    except (
        ValueError,
        TypeError,
        msgpack.ExtraData,
        msgpack.FormatError,
        msgpack.StackError,
        RecursionError,
    ) as exc:
        kind = "msgpack" if media_type(content_type) == MSGPACK else "JSON"
        raise ValidationError(f"malformed {kind} body: {exc}", code="INVALID_BODY") from exc


@lru_cache(maxsize=64)
def _adapter(tp: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(tp)


def _describe(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - 5
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def validate_as(tp: Any, value: Any) -> Any:
    """`value` validated as `tp` (a model or any annotated type); raises `ValidationError`."""
    try:
        return _adapter(tp).validate_python(value)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            f"invalid {getattr(tp, '__name__', 'value')}: {_describe(exc)}",
            details={
                "errors": exc.errors(include_url=False, include_context=False, include_input=False)[
                    :20
                ]
            },
        ) from exc
    except RecursionError as exc:
        raise ValidationError("value nested too deeply") from exc


def decode_as(tp: Any, body: bytes, content_type: str | None = JSON) -> Any:
    """Decode `body` and validate it as `tp`: the single entry for outside bytes."""
    return validate_as(tp, decode(body, content_type))
