"""The store facade: `client.store(name)` — the blocking API and its non-blocking twin.

Every blocking method waits on the future its `store.nowait` twin returns. The facade checks
input on the caller's thread (a bad call raises at once and changes nothing), then sends one
message to the StoreActor (writes) or to the read's strategy. `peek` and cache hits read the
store's entities directly: no actor hop. With no backend (the embedded default) every read
evaluates the store's entities on the caller's thread.
Must not import sync or any backend.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Literal

import pykka

from atoma_actors.core.query import Query, QueryResult, normalize_query
from atoma_actors.core.values import check_entity, check_id, copy_json
from atoma_actors.protocol.errors import AtomaError, ClientClosed, ValidationError
from atoma_actors.runtime.messages import ApplyWrite, EntrySpec, ReadRequest, WriteOutcome
from atoma_actors.runtime.view import StoreView

from .futures import CallFuture, done, failed, wait

if TYPE_CHECKING:
    from .client import Client

__all__ = ["NowaitStore", "Settled", "Store"]

Entity = dict[str, Any]
Settled = dict[str, Any]
"""All-settled item: `{index, ok, value}` or `{index, ok: False, error, current?}`."""

Patch = Mapping[str, Any] | Callable[[Entity], Entity]


def _single(outcome: WriteOutcome) -> Entity | None:
    item = outcome.items[0]
    if isinstance(item, AtomaError):
        raise item
    return item


def _first(result: QueryResult) -> Entity | None:
    return result.data[0] if result.data else None


def _data(result: QueryResult) -> list[Entity]:
    return result.data


def _same(result: QueryResult) -> QueryResult:
    return result


def _settled(outcome: WriteOutcome) -> list[Settled]:
    out: list[Settled] = []
    for index, item in enumerate(outcome.items):
        if isinstance(item, AtomaError):
            entry: Settled = {"index": index, "ok": False, "error": item}
            current = getattr(item, "current", None)
            if current is not None:
                entry["current"] = current.model_dump(exclude_none=True)
            out.append(entry)
        else:
            out.append({"index": index, "ok": True, "value": item})
    return out


def _as_dict(value: Any) -> Any:
    """A dict to check (the caller's own, read only), or `value` itself to be refused."""
    if type(value) is dict or not isinstance(value, Mapping):
        return value
    return dict(value)


def _opts(
    strategy: str | None, timeout: float | None, context: Mapping[str, Any] | None
) -> dict[str, Any]:
    return {"strategy": strategy, "timeout": timeout, "context": dict(context or {})}


class NowaitStore:
    """The non-blocking twin: every method returns a `concurrent.futures.Future`."""

    def __init__(self, client: Client, name: str, view: StoreView, actor: Any) -> None:
        self._client = client
        self.name = name
        self._view = view
        self._actor = actor

    # -- writes --------------------------------------------------------------------------
    def create(self, value: Mapping[str, Any], **opts: Any) -> Future[Entity]:
        return self._write([self._create_spec(value)], _single, **opts)

    def create_many(
        self, values: Iterable[Mapping[str, Any]], **opts: Any
    ) -> Future[list[Settled]]:
        return self._write([self._create_spec(v) for v in values], _settled, **opts)

    def update(self, id: str, patch: Patch, **opts: Any) -> Future[Entity]:
        spec = self._update_spec(id, patch)
        return self._write([spec], _single, **opts)

    def update_many(self, items: Iterable[Any], **opts: Any) -> Future[list[Settled]]:
        specs = []
        for item in items:
            if isinstance(item, tuple) and len(item) == 2:
                specs.append(self._update_spec(item[0], item[1]))
            elif isinstance(item, Mapping) and "id" in item:
                specs.append(
                    self._update_spec(item["id"], {k: v for k, v in item.items() if k != "id"})
                )
            else:
                raise ValidationError("update_many takes (id, patch) pairs or dicts with an id")
        return self._write(specs, _settled, **opts)

    def upsert(
        self,
        value: Mapping[str, Any],
        *,
        conflict: Literal["cas", "lww"] = "cas",
        apply: Literal["merge", "replace"] = "merge",
        **opts: Any,
    ) -> Future[Entity]:
        spec = self._upsert_spec(value, conflict, apply)
        return self._write([spec], _single, **opts)

    def upsert_many(
        self,
        values: Iterable[Mapping[str, Any]],
        *,
        conflict: Literal["cas", "lww"] = "cas",
        apply: Literal["merge", "replace"] = "merge",
        **opts: Any,
    ) -> Future[list[Settled]]:
        specs = [self._upsert_spec(v, conflict, apply) for v in values]
        return self._write(specs, _settled, **opts)

    def delete(self, id: str, **opts: Any) -> Future[None]:
        spec = EntrySpec("delete", check_id(id))
        return self._write([spec], _single, **opts)

    def delete_many(self, ids: Iterable[str], **opts: Any) -> Future[list[Settled]]:
        specs = [EntrySpec("delete", check_id(i)) for i in ids]
        return self._write(specs, _settled, **opts)

    # -- reads ---------------------------------------------------------------------------
    def get(self, id: str, *, force: bool = False, **opts: Any) -> Future[Entity | None]:
        check_id(id)
        self._client._check_open()
        if not force or self._client._local:  # the embedded default: the store is the data
            hit = self._view.peek(id)
            if hit is not None or self._client._local:
                return done(hit)
        query = normalize_query({"filter": {"op": "eq", "field": "id", "value": id}})
        seen = self._view.get(id)
        return self._read(
            query, _first, missing_id=id, missing_version=seen["version"] if seen else -1, **opts
        )

    def get_many(
        self, ids: Iterable[str], *, force: bool = False, **opts: Any
    ) -> Future[list[Entity | None]]:
        wanted = [check_id(i) for i in ids]
        self._client._check_open()
        local = self._client._local
        if force and not local:
            hits = {}
        else:
            hits = {i: v for i in wanted if (v := self._view.peek(i)) is not None}
        missing = sorted({i for i in wanted if i not in hits})
        if not missing or local:
            return done([hits.get(i) for i in wanted])
        query = normalize_query({"filter": {"op": "in", "field": "id", "values": missing}})

        def merge(result: QueryResult) -> list[Entity | None]:
            found = {e["id"]: e for e in result.data}
            return [hits.get(i) or found.get(i) for i in wanted]

        return self._read(query, merge, **opts)

    def list(self, **opts: Any) -> Future[list[Entity]]:
        return self._read(normalize_query(None), _data, **opts)

    def query(
        self, query: Mapping[str, Any] | Query | None = None, **opts: Any
    ) -> Future[QueryResult]:
        return self._read(normalize_query(query), _same, **opts)

    def query_one(
        self, query: Mapping[str, Any] | Query | None = None, **opts: Any
    ) -> Future[Entity | None]:
        q = dict(query or {}) if not isinstance(query, Query) else query.to_wire()
        q["page"] = {"mode": "offset", "limit": 1}
        return self._read(normalize_query(q), _first, **opts)

    # -- plumbing ------------------------------------------------------------------------
    def _create_spec(self, value: Mapping[str, Any]) -> EntrySpec:
        checked = check_entity(_as_dict(value))
        id_ = checked.get("id")
        id_ = uuid.uuid4().hex if id_ is None else check_id(id_)
        return EntrySpec("create", id_, copy_json(checked))

    def _update_spec(self, id_: str, patch: Patch) -> EntrySpec:
        check_id(id_)
        if callable(patch):
            return EntrySpec("update", id_, fn=patch)
        return EntrySpec("update", id_, copy_json(check_entity(_as_dict(patch), "patch")))

    def _upsert_spec(
        self,
        value: Mapping[str, Any],
        conflict: Literal["cas", "lww"],
        apply: Literal["merge", "replace"],
    ) -> EntrySpec:
        if conflict not in ("cas", "lww") or apply not in ("merge", "replace"):
            raise ValidationError("upsert: conflict is 'cas'|'lww', apply is 'merge'|'replace'")
        checked = check_entity(_as_dict(value))
        return EntrySpec(
            "upsert",
            check_id(checked.get("id")),
            copy_json(checked),
            conflict=conflict,
            apply=apply,
        )

    def _write(
        self,
        specs: Sequence[EntrySpec],
        shape: Callable[[WriteOutcome], Any],
        *,
        strategy: str | None = None,
        timeout: float | None = None,
        context: Mapping[str, Any] | None = None,
        optimistic: bool = True,
    ) -> Future[Any]:
        client = self._client
        client._check_open()
        client._check_strategy(strategy)
        if not specs:
            return done(shape(WriteOutcome(())))
        future: Future[Any] = CallFuture()
        gated = client._admit(self.name, strategy, len(specs), timeout)
        reply = client._reply(future, "write", self.name, len(specs), shape, gated=gated)
        try:
            self._actor.tell(
                ApplyWrite(
                    specs=tuple(specs),
                    reply=reply,
                    strategy=strategy,
                    optimistic=optimistic,
                    context=dict(context or {}),
                    deadline=client._deadline(timeout),
                )
            )
        except pykka.ActorDeadError:  # closing under our feet: answered, places given back
            reply(ClientClosed("client closed"))
        return future

    def _read(
        self,
        query: Query,
        shape: Callable[[QueryResult], Any],
        *,
        strategy: str | None = None,
        timeout: float | None = None,
        context: Mapping[str, Any] | None = None,
        missing_id: str | None = None,
        missing_version: int | None = None,
        force: bool = False,
    ) -> Future[Any]:
        client = self._client
        try:
            client._check_open()
            client._check_strategy(strategy)
        except AtomaError as exc:
            return failed(exc)
        future: Future[Any] = CallFuture()
        reply = client._reply(future, "read", self.name, 1, shape)
        if client._local:  # the embedded default: the store is the data
            try:
                result = self._view.query_local(query)
            except Exception as exc:
                reply(exc)
            else:
                reply(result)
            return future
        request = ReadRequest(
            store=self.name,
            query=query,
            reply=reply,
            view=self._view,
            store_ref=self._actor,
            strategy=strategy,
            context=dict(context or {}),
            deadline=client._deadline(timeout),
            missing_id=missing_id,
            missing_version=missing_version,
        )
        try:
            client._routes.route(request)
        except pykka.ActorDeadError:  # closing under our feet
            reply(ClientClosed("client closed"))
        return future


class Store:
    """A collection of entities (dicts with a string `id` and an integer `version`)."""

    def __init__(self, client: Client, name: str, view: StoreView, actor: Any) -> None:
        self.name = name
        self._client = client
        self._view = view
        self.nowait = NowaitStore(client, name, view, actor)

    def _wait(self, future: Future[Any], timeout: float | None) -> Any:
        return wait(future, self._client._wait_timeout(timeout))

    # writes
    def create(
        self, value: Mapping[str, Any], *, timeout: float | None = None, **opts: Any
    ) -> Entity:
        return self._wait(self.nowait.create(value, timeout=timeout, **opts), timeout)

    def create_many(
        self, values: Iterable[Mapping[str, Any]], *, timeout: float | None = None, **opts: Any
    ) -> list[Settled]:
        return self._wait(self.nowait.create_many(values, timeout=timeout, **opts), timeout)

    def update(self, id: str, patch: Patch, *, timeout: float | None = None, **opts: Any) -> Entity:
        return self._wait(self.nowait.update(id, patch, timeout=timeout, **opts), timeout)

    def update_many(
        self, items: Iterable[Any], *, timeout: float | None = None, **opts: Any
    ) -> list[Settled]:
        return self._wait(self.nowait.update_many(items, timeout=timeout, **opts), timeout)

    def upsert(
        self,
        value: Mapping[str, Any],
        *,
        conflict: Literal["cas", "lww"] = "cas",
        apply: Literal["merge", "replace"] = "merge",
        timeout: float | None = None,
        **opts: Any,
    ) -> Entity:
        return self._wait(
            self.nowait.upsert(value, conflict=conflict, apply=apply, timeout=timeout, **opts),
            timeout,
        )

    def upsert_many(
        self,
        values: Iterable[Mapping[str, Any]],
        *,
        conflict: Literal["cas", "lww"] = "cas",
        apply: Literal["merge", "replace"] = "merge",
        timeout: float | None = None,
        **opts: Any,
    ) -> list[Settled]:
        return self._wait(
            self.nowait.upsert_many(
                values, conflict=conflict, apply=apply, timeout=timeout, **opts
            ),
            timeout,
        )

    def delete(self, id: str, *, timeout: float | None = None, **opts: Any) -> None:
        self._wait(self.nowait.delete(id, timeout=timeout, **opts), timeout)

    def delete_many(
        self, ids: Iterable[str], *, timeout: float | None = None, **opts: Any
    ) -> list[Settled]:
        return self._wait(self.nowait.delete_many(ids, timeout=timeout, **opts), timeout)

    # reads
    def peek(self, id: str) -> Entity | None:
        """The entity as this client sees it now (optimistic changes included); never I/O."""
        return self._view.peek(id)

    def get(
        self, id: str, *, force: bool = False, timeout: float | None = None, **opts: Any
    ) -> Entity | None:
        if not force:  # a cache hit needs no future: read the entity on this thread
            if self._client._closed:
                raise ClientClosed("this client is closed")
            value = self._view.entities.get(id)  # StoreView.peek, inlined: the hottest path
            if value is not None:
                if self._view.touched is not None:
                    self._view.touched.append(id)
                return copy_json(value)
        return self._wait(self.nowait.get(id, force=force, timeout=timeout, **opts), timeout)

    def get_many(
        self, ids: Iterable[str], *, force: bool = False, timeout: float | None = None, **opts: Any
    ) -> list[Entity | None]:
        return self._wait(self.nowait.get_many(ids, force=force, timeout=timeout, **opts), timeout)

    def list(self, *, timeout: float | None = None, **opts: Any) -> list[Entity]:
        return self._wait(self.nowait.list(timeout=timeout, **opts), timeout)

    def query(
        self,
        query: Mapping[str, Any] | Query | None = None,
        *,
        timeout: float | None = None,
        **opts: Any,
    ) -> QueryResult:
        return self._wait(self.nowait.query(query, timeout=timeout, **opts), timeout)

    def query_one(
        self,
        query: Mapping[str, Any] | Query | None = None,
        *,
        timeout: float | None = None,
        **opts: Any,
    ) -> Entity | None:
        return self._wait(self.nowait.query_one(query, timeout=timeout, **opts), timeout)

    def query_local(self, query: Mapping[str, Any] | Query | None = None) -> QueryResult:
        """Evaluate against this client's own view (optimistic changes included); never I/O."""
        return self._view.query_local(normalize_query(query))

    def flush(self) -> None:
        """Send whatever a batching strategy holds for this store, and wait for it."""
        self._client.flush()

    def __len__(self) -> int:
        return len(self._view)

    def __repr__(self) -> str:
        return f"<Store {self.name!r} entities={len(self)}>"
