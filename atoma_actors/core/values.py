"""Entity values: checking user input is JSON-shaped, and copying values out of the store.

Returned dicts are copies so that mutating one never changes the store; `copy_json` copies only
dicts and lists (the only mutable JSON shapes), much faster than `copy.deepcopy`. A flat
stored entity is a plain dict on purpose: CPython's collector never tracks a dict of scalars,
so a store of flat entities costs a full collection nothing (a dict subclass would stay
tracked); one with nested values is a `SealedEntity`, which copies faster.
Must not import runtime, client or any backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from atoma_actors.protocol.errors import ValidationError

__all__ = [
    "MAX_DEPTH",
    "SealedEntity",
    "check_entity",
    "check_id",
    "copy_json",
    "fields_of",
    "seal",
]

MAX_DEPTH = 64
MAX_ID_LENGTH = 512
_SCALARS = (str, int, float, bool, type(None))
_CONTAINERS = (dict, list, tuple)
_CONTAINER_TYPES = frozenset(_CONTAINERS)
_META_KEYS = ("id", "version")


class SealedEntity(dict):  # type: ignore[type-arg]
    """A stored entity that holds containers, knowing which keys hold them (`nested`), so
    `copy_json` copies it with one `dict()` plus a deep copy of just those values.

    Only entities with nested values are sealed (`seal`): those the collector tracks anyway.
    A flat entity stays a plain dict, which the collector does not track at all."""

    __slots__ = ("nested",)
    nested: tuple[str, ...]


def seal(entity: dict[str, Any]) -> dict[str, Any]:
    """`entity` (a dict the caller owns and will not change again) as the store keeps it:
    itself when flat, else a `SealedEntity` copy."""
    if _CONTAINER_TYPES.isdisjoint(map(type, entity.values())):
        return entity
    sealed = SealedEntity(entity)
    sealed.nested = tuple(k for k, v in entity.items() if type(v) in _CONTAINERS)
    return sealed


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON-like value: dicts and lists (and tuples) are copied, leaves shared.

    Several times faster than `copy.deepcopy`; sharing leaves is safe for the immutable
    scalars JSON allows. Subclasses of dict and list come back as plain dicts and lists.
    """
    kind = type(value)
    if kind is dict:
        if _CONTAINER_TYPES.isdisjoint(map(type, value.values())):
            return dict(value)  # flat (most entities): one C-level copy
        return {k: copy_json(v) if type(v) in _CONTAINERS else v for k, v in value.items()}
    if kind is SealedEntity:
        out = dict(value)
        for key in value.nested:
            out[key] = copy_json(out[key])
        return out
    if kind is list:
        return [copy_json(v) if type(v) in _CONTAINERS else v for v in value]
    if kind is tuple:
        return tuple(copy_json(v) for v in value)
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def fields_of(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """`value` without its `id` and `version` keys, as a new dict: the one place that strips
    them (an entity's own fields, as a patch or a stored value carries them)."""
    if not value:
        return {}
    if "id" not in value and "version" not in value:
        return dict(value)
    return {k: v for k, v in value.items() if k not in _META_KEYS}


def check_id(id_: Any) -> str:
    if not isinstance(id_, str) or not id_:
        raise ValidationError(f"an id must be a non-empty string, not {id_!r}")
    if len(id_) > MAX_ID_LENGTH:
        raise ValidationError(f"an id may have at most {MAX_ID_LENGTH} characters")
    if not id_.isascii():
        try:
            id_.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"an id must be valid Unicode text (no lone surrogates), not {id_!r}"
            ) from None
    return id_


def _check(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValidationError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"{path}: keys must be strings, not {k!r}")
            _check(v, f"{path}.{k}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]", depth + 1)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{path}: {value} is not a JSON number")
    elif not isinstance(value, _SCALARS):
        raise ValidationError(f"{path}: {type(value).__name__} is not a JSON value")


def check_entity(value: Any, what: str = "value") -> dict[str, Any]:
    """`value` if it is a dict of JSON values; `ValidationError` naming the bad field otherwise."""
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a dict, not {type(value).__name__}")
    _check(value, what, 0)
    if (
        "version" in value
        and value["version"] is not None
        and not (isinstance(value["version"], int) and not isinstance(value["version"], bool))
    ):
        raise ValidationError(f"{what}.version must be an integer")
    return value
