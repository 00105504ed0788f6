"""Input checks of the SQL backend: resource names, ids, value sizes, and the `Limits` they use.

Everything here raises the typed errors of `atoma_actors.protocol.errors` (never a bare
exception), before any SQL runs, so a refused op writes nothing.
Must not import atoma_actors.runtime or atoma_actors.client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from atoma_actors.protocol.errors import LimitsError, ValidationError

from ._schema import dumps

__all__ = ["Limits", "check_id", "check_resource", "encode_value"]

# Resource names travel as bound values (never as identifiers), but a strict shape still
# keeps logs, change feeds and URLs of the ops server unambiguous.
_RESOURCE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one op may carry. A value is one entity encoded as JSON."""

    max_value_bytes: int = 1 << 20
    max_entries: int = 100_000
    max_id_length: int = 512
    max_pull_limit: int = 1000
    default_pull_limit: int = 100
    max_candidates: int = 200_000


def check_resource(resource: Any) -> str:
    if not isinstance(resource, str) or not _RESOURCE_RE.match(resource):
        raise ValidationError(
            f"invalid resource name {resource!r}: 1-64 characters, a letter first, "
            "then letters, digits, '_', '.' or '-'",
            code="INVALID_RESOURCE",
            details={"resource": str(resource)[:100]},
        )
    return resource


def check_id(id_: str, limits: Limits) -> str:
    if len(id_) > limits.max_id_length or "\x00" in id_:
        raise ValidationError(
            f"invalid id {id_[:40]!r}…: at most {limits.max_id_length} characters, no NUL",
            code="INVALID_ID",
        )
    return id_


MAX_DEPTH = 64


def _scan(value: Any, depth: int) -> None:
    """What `json.dumps` lets through silently: non-string keys (it would rename them) and
    nesting too deep to read back safely. Top-level keys are strings already (wire models)."""
    if depth > MAX_DEPTH:
        raise ValidationError(f"value nested deeper than {MAX_DEPTH} levels", code="INVALID_VALUE")
    if isinstance(value, dict):
        if depth:
            for k in value:
                if not isinstance(k, str):
                    raise ValidationError(
                        f"object keys must be strings, not {k!r}"[:120], code="INVALID_VALUE"
                    )
        children = value.values()
    else:
        children = value
    for v in children:
        if isinstance(v, dict | list):
            _scan(v, depth + 1)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def encode_value(value: dict[str, Any], limits: Limits, *, refuse_nul: bool) -> str:
    """The JSON text of `value`, or the validation/limits error that keeps it out."""
    _scan(value, 0)
    try:
        text = dumps(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(
            f"value is not plain JSON (dict, list, str, finite number, bool, null): {exc}",
            code="INVALID_VALUE",
        ) from exc
    # A character is at most 4 bytes: encode only when the length alone cannot decide.
    if len(text) * 4 > limits.max_value_bytes and len(text.encode()) > limits.max_value_bytes:
        raise LimitsError(
            f"value of {len(text.encode())} bytes exceeds the limit of "
            f"{limits.max_value_bytes} bytes",
            code="PAYLOAD_TOO_LARGE",
            details={"maxValueBytes": limits.max_value_bytes},
        )
    # PostgreSQL's jsonb cannot hold U+0000 (JSON escapes it, so the text tells cheaply).
    if refuse_nul and "\\u0000" in text and _has_nul(value):
        raise ValidationError("strings may not contain U+0000 in PostgreSQL", code="INVALID_VALUE")
    return text
