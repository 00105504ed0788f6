"""Opaque cursor tokens: base64url of JSON `{"v": 1, "sort": [...], "values": [...]}`.

Encoded as upstream Atoma does (URL-safe alphabet, no padding); decoding also accepts the
standard alphabet and padding. A token made under other sort rules, or anything that is not
such a token, is a `ValidationError`. Must not import anything from atoma_actors outside
`core` and `protocol`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from atoma_actors.protocol.errors import ValidationError

__all__ = ["decode_cursor", "encode_cursor"]


def _wire_sort(sort: Sequence[Any]) -> list[dict[str, str]]:
    out = []
    for rule in sort:
        if isinstance(rule, tuple | list):
            field, direction = rule
        else:
            field, direction = rule["field"], rule["dir"]
        out.append({"field": field, "dir": direction})
    return out


def encode_cursor(sort: Sequence[Any], values: list[Any]) -> str:
    """The token for an item with these sort `values` under `sort` (`[{field, dir}]`)."""
    payload = {"v": 1, "sort": _wire_sort(sort), "values": list(values)}
    try:
        raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"cannot make a cursor: sort values are not JSON ({exc})", code="INVALID_CURSOR"
        ) from exc
    return base64.urlsafe_b64encode(raw.encode("utf-8")).rstrip(b"=").decode("ascii")


def _bad(message: str) -> ValidationError:
    return ValidationError(f"invalid cursor: {message}", code="INVALID_CURSOR")


def decode_cursor(token: str, sort: Sequence[Any]) -> list[Any]:
    """The sort values carried by `token`; it must have been made under `sort`."""
    if not isinstance(token, str) or not token:
        raise _bad("expected a non-empty string token")
    text = token.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _bad("not a cursor token") from exc
    if not isinstance(payload, dict) or payload.get("v") != 1:
        raise _bad("unknown token version")
    values, token_sort = payload.get("values"), payload.get("sort")
    if not isinstance(values, list) or not isinstance(token_sort, list):
        raise _bad("malformed token")
    if token_sort != _wire_sort(sort):
        raise _bad("the cursor was made with other sort rules than this query's")
    if len(values) != len(token_sort):
        raise _bad("malformed token (values do not match the sort rules)")
    return values
