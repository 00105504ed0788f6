"""A deliberately simple reference evaluator, written from DESIGN §4 and nothing else.

Slow on purpose: recursive matching, `cmp_to_key` sorting, plain slicing. The property tests
check the real engine against it; it must not share code with `atoma_actors.core`.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from typing import Any

MISSING = object()


def lookup(entity: dict, field: str) -> Any:
    if field in entity:
        return entity[field]
    cur: Any = entity
    for part in field.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return MISSING
    return cur


def kind(v: Any) -> str:
    if v is None or v is MISSING:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "other"


def strict_eq(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return False
    if kind(a) != kind(b) or kind(a) == "other":
        return False
    return a == b


def tokens(text: Any) -> list[str]:
    if not isinstance(text, str):
        return []
    return [t for t in re.findall(r"[^\W_]+", text.lower()) if 3 <= len(t) <= 32]


def levenshtein(a: str, b: str) -> int:
    rows = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        rows[i][0] = i
    for j in range(len(b) + 1):
        rows[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            rows[i][j] = min(
                rows[i - 1][j] + 1,
                rows[i][j - 1] + 1,
                rows[i - 1][j - 1] + (a[i - 1] != b[j - 1]),
            )
    return rows[len(a)][len(b)]


def matches(entity: dict, f: dict | None) -> bool:
    if f is None:
        return True
    op = f["op"]
    if op == "and":
        return all(matches(entity, a) for a in f["args"])
    if op == "or":
        return any(matches(entity, a) for a in f["args"])
    if op == "not":
        return not matches(entity, f["arg"])
    v = lookup(entity, f["field"])
    if op == "eq":
        return strict_eq(v, f["value"])
    if op == "in":
        return any(strict_eq(v, x) for x in f["values"])
    if op in ("gt", "gte", "lt", "lte"):
        w = f["value"]
        if kind(v) != kind(w) or kind(v) not in ("number", "string"):
            return False
        return {"gt": v > w, "gte": v >= w, "lt": v < w, "lte": v <= w}[op]
    if op in ("startsWith", "endsWith", "contains"):
        if not isinstance(v, str):
            return False
        hay, needle = v.lower(), f["value"].lower()
        if op == "startsWith":
            return hay.startswith(needle)
        if op == "endsWith":
            return hay.endswith(needle)
        return needle in hay
    if op == "isNull":
        return v is None
    if op == "exists":
        return v is not MISSING and v is not None
    if op == "text":
        doc, want = tokens(v), tokens(f["query"])
        if not doc or not want:
            return False
        if f.get("mode", "match") == "match":
            return all(q in doc for q in want)
        d = f.get("distance", 1)
        return all(any(levenshtein(q, t) <= d for t in doc) for q in want)
    raise AssertionError(op)


RANK = {"number": 0, "string": 1, "bool": 2, "other": 3}


def full_sort(sort: list[dict] | None) -> list[tuple[str, str]]:
    rules = [(r["field"], r["dir"]) for r in (sort or [])]
    if all(f != "id" for f, _ in rules):
        rules.append(("id", "asc"))
    return rules


def compare_values(a: Any, b: Any, direction: str) -> int:
    na, nb = kind(a) == "null", kind(b) == "null"
    if na and nb:
        return 0
    if na:
        return 1
    if nb:
        return -1
    ka, kb = kind(a), kind(b)
    if ka != kb:
        c = (RANK[ka] > RANK[kb]) - (RANK[ka] < RANK[kb])
    elif ka == "other":
        c = 0
    else:
        c = (a > b) - (a < b)
    return -c if direction == "desc" else c


def compare_entities(x: dict, y: dict, rules: list[tuple[str, str]]) -> int:
    for field, direction in rules:
        c = compare_values(lookup(x, field), lookup(y, field), direction)
        if c:
            return c
    return 0


def sort_values(entity: dict, rules: list[tuple[str, str]]) -> list[Any]:
    out = []
    for field, _ in rules:
        v = lookup(entity, field)
        out.append(None if v is MISSING else v)
    return out


def _clamp(x: Any) -> int | None:
    if x is None or not math.isfinite(x):
        return None
    return max(0, math.floor(x))


def reference_evaluate(entities: list[dict], query: dict | None) -> dict[str, Any]:
    """-> {"data": [...], "has_next": bool, "total": int | None, "cursor_values": list | None}."""
    query = query or {}
    rules = full_sort(query.get("sort"))
    hits = [e for e in entities if matches(e, query.get("filter"))]
    hits.sort(key=functools.cmp_to_key(lambda x, y: compare_entities(x, y, rules)))
    page = query.get("page")
    if page is None:
        return {"data": hits, "has_next": False, "total": None, "cursor_values": None}
    total = len(hits) if page.get("includeTotal") else None
    mode = page.get("mode") or ("cursor" if "after" in page or "before" in page else "offset")
    if mode == "offset":
        offset = _clamp(page.get("offset")) or 0
        limit = _clamp(page.get("limit"))
        if limit is None:
            return {"data": hits[offset:], "has_next": False, "total": total, "cursor_values": None}
        return {
            "data": hits[offset : offset + limit],
            "has_next": offset + limit < len(hits),
            "total": total,
            "cursor_values": None,
        }
    limit = _clamp(page.get("limit"))
    limit = 50 if limit is None else limit
    token = page.get("after") or page.get("before")
    if token is None:
        data = hits[:limit]
        rest = hits
    else:
        text = token + "=" * (-len(token) % 4)
        values = json.loads(base64.urlsafe_b64decode(text))["values"]

        def vs_cursor(e: dict) -> int:
            for (field, direction), cv in zip(rules, values, strict=True):
                c = compare_values(lookup(e, field), cv, direction)
                if c:
                    return c
            return 0

        if page.get("after"):
            rest = [e for e in hits if vs_cursor(e) > 0]
            data = rest[:limit]
        else:
            rest = [e for e in hits if vs_cursor(e) < 0]
            data = rest[max(0, len(rest) - limit) :] if limit else []
    edge = None
    if data:
        edge = data[0] if page.get("before") else data[-1]
    return {
        "data": data,
        "has_next": len(rest) > len(data),
        "total": total,
        "cursor_values": None if edge is None else sort_values(edge, rules),
    }
