"""Builders for raw wire requests (camelCase dicts) and a poster that speaks JSON or msgpack,
so the server tests exercise the exact bytes a TypeScript client would send."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from atoma_actors.protocol.codecs import JSON, MSGPACK, decode, encode

_keys = itertools.count()


def meta(**extra: Any) -> dict[str, Any]:
    return {"v": 1, **extra}


def item_meta(key: str | None = None) -> dict[str, Any]:
    return {"idempotencyKey": key or f"k{next(_keys)}", "clientTimeMs": 1}


def create(
    op_id: str, resource: str, id_: str, value: dict[str, Any], key: str | None = None
) -> dict[str, Any]:
    entry = {"action": "create", "item": {"id": id_, "value": value, "meta": item_meta(key)}}
    return {"opId": op_id, "kind": "write", "write": {"resource": resource, "entries": [entry]}}


def write(op_id: str, resource: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"opId": op_id, "kind": "write", "write": {"resource": resource, "entries": entries}}


def update_entry(id_: str, base: int, value: dict[str, Any], key: str | None = None) -> dict:
    return {
        "action": "update",
        "item": {"id": id_, "baseVersion": base, "value": value, "meta": item_meta(key)},
    }


def create_entry(id_: str, value: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    return {"action": "create", "item": {"id": id_, "value": value, "meta": item_meta(key)}}


def query(op_id: str, resource: str, q: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"opId": op_id, "kind": "query", "query": {"resource": resource, "query": q or {}}}


def pull(op_id: str, cursor: str | None = None, **extra: Any) -> dict[str, Any]:
    spec = {"cursor": cursor, **extra} if cursor is not None else dict(extra)
    return {"opId": op_id, "kind": "changes.pull", "pull": spec}


def request(*ops: dict[str, Any], **meta_extra: Any) -> dict[str, Any]:
    return {"meta": meta(**meta_extra), "ops": list(ops)}


def post(
    client: httpx.Client,
    url: str,
    body: Any,
    fmt: str = "json",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """POST `body` (a value to encode, or raw bytes) to `{url}/ops`; returns the status and
    the decoded response body in the format the server chose."""
    kind = MSGPACK if fmt == "msgpack" else JSON
    content = body if isinstance(body, bytes) else encode(body, kind)
    sent = {"content-type": kind, **(headers or {})}
    response = client.post(url + "/ops", content=content, headers=sent)
    return response.status_code, decode(response.content, response.headers.get("content-type"))


class SseReader:
    """Reads one SSE stream on a thread into a queue, so a test waits with a timeout instead
    of blocking forever on a stream that only sends heartbeats."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        import queue
        import threading

        self.events: queue.Queue[Any] = queue.Queue()
        self._client = httpx.Client(timeout=10, headers=headers or {})
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        from httpx_sse import connect_sse

        try:
            with connect_sse(self._client, "GET", url + "/ops/notify") as source:
                for event in source.iter_sse():
                    self.events.put(event)
        except Exception as exc:  # closed by the test, or the server went away
            self.events.put(exc)

    def next(self, name: str, timeout: float = 5.0) -> Any:
        """The next event called `name` (others are skipped); raises queue.Empty on timeout."""
        while True:
            event = self.events.get(timeout=timeout)
            if isinstance(event, Exception):
                raise event
            if event.event == name:
                return event

    def close(self) -> None:
        self._client.close()
        self._thread.join(5)

    def __enter__(self) -> SseReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
