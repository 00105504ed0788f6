"""Helpers of the SQL backend tests: op builders and a runner that returns plain wire dicts."""

from __future__ import annotations

import itertools
from typing import Any

from atoma_backend_sql import SqlBackend

from atoma_actors.protocol import Meta, OpsRequest

_keys = itertools.count()


def key() -> str:
    return f"k{next(_keys)}"


def meta(k: str | None = None) -> dict[str, Any]:
    return {"idempotencyKey": k or key(), "clientTimeMs": 0}


def create(id_: str | None, value: dict[str, Any], k: str | None = None, **opts: Any) -> dict:
    item: dict[str, Any] = {"value": value, "meta": meta(k)}
    if id_ is not None:
        item["id"] = id_
    return {"action": "create", "item": item, **({"options": opts} if opts else {})}


def update(id_: str, base: int, value: dict[str, Any], k: str | None = None) -> dict:
    return {
        "action": "update",
        "item": {"id": id_, "baseVersion": base, "value": value, "meta": meta(k)},
    }


def upsert(
    id_: str,
    value: dict[str, Any],
    expected: int | None = None,
    *,
    conflict: str = "cas",
    apply: str = "merge",
    k: str | None = None,
) -> dict:
    item: dict[str, Any] = {"id": id_, "value": value, "meta": meta(k)}
    if expected is not None:
        item["expectedVersion"] = expected
    return {
        "action": "upsert",
        "item": item,
        "options": {"upsert": {"conflict": conflict, "apply": apply}},
    }


def delete(id_: str, base: int, k: str | None = None) -> dict:
    return {"action": "delete", "item": {"id": id_, "baseVersion": base, "meta": meta(k)}}


def write_op(resource: str, *entries: dict, op_id: str = "w") -> dict:
    return {
        "opId": op_id,
        "kind": "write",
        "write": {"resource": resource, "entries": list(entries)},
    }


def query_op(resource: str, query: dict | None = None, op_id: str = "q") -> dict:
    return {"opId": op_id, "kind": "query", "query": {"resource": resource, "query": query or {}}}


def pull_op(
    cursor: str | None = None,
    limit: int | None = None,
    resources: list[str] | None = None,
    op_id: str = "p",
) -> dict:
    pull: dict[str, Any] = {}
    if cursor is not None:
        pull["cursor"] = cursor
    if limit is not None:
        pull["limit"] = limit
    if resources is not None:
        pull["resources"] = resources
    return {"opId": op_id, "kind": "changes.pull", "pull": pull}


def run(client: Any, *ops: dict) -> list[dict[str, Any]]:
    """Run ops (validated as a wire request) and return each op result as its wire dict."""
    req = OpsRequest.model_validate({"meta": {"v": 1}, "ops": list(ops)})
    results, status = client.execute_ops(req.ops, req.meta)
    assert status == 200
    return [r.to_wire() for r in results]


def run1(client: Any, op: dict) -> dict[str, Any]:
    return run(client, op)[0]


def items(client: Any, resource: str, *entries: dict) -> list[dict[str, Any]]:
    """The item results of one write op (which must succeed as an op)."""
    res = run1(client, write_op(resource, *entries))
    assert res["ok"], res
    return res["data"]["results"]


def rows(backend: SqlBackend, resource: str) -> list[dict[str, Any]]:
    res = run1(backend, query_op(resource))
    assert res["ok"], res
    return res["data"]["data"]


def raw_count(backend: SqlBackend) -> tuple[int, int, int]:
    """Rows, change-log entries and idempotency records actually stored."""
    import sqlalchemy as sa

    t = backend._tables
    with backend.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(tab)).scalar_one()
            for tab in (t.rows, t.changes, t.idempotency)
        )


__all__ = ["Meta"]
