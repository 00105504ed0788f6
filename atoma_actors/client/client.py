"""`create_client` and the `Client`: wiring of every actor, and their orderly shutdown.

    StoreActor(s) ──(StrategyTable)──▶ DirectStrategy / QueueStrategy
                                            │  OpsCall
                                            ▼
                          ops handler actors (plugins, by priority)
                                            ▼
                          BackendGroup(store) ──▶ BackendActor pool ──▶ ops_client
                               ▲ failures
                          Supervisor (restart, backoff, circuit) ──▶ EventBus

Without a backend the terminal is an in-memory `core.storage.MemoryStorage` (the embedded
default), so behaviour is the same with and without one.
Must not import sync or any backend.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any

import pykka

from atoma_actors.core.indexes import IndexSet
from atoma_actors.core.storage import MemoryStorage
from atoma_actors.protocol.backend import Backend, Capabilities, Endpoint
from atoma_actors.protocol.errors import ClientClosed, ValidationError
from atoma_actors.runtime.backend_actor import BackendGroup
from atoma_actors.runtime.clock import Clock, RealClock, Scheduler
from atoma_actors.runtime.events import EventBus
from atoma_actors.runtime.ops_chain import OpsCall, build_chain
from atoma_actors.runtime.reply import Reply, future_reply, settle
from atoma_actors.runtime.router import StrategyTable
from atoma_actors.runtime.store_actor import StoreActor
from atoma_actors.runtime.strategies.direct import DirectStrategy
from atoma_actors.runtime.strategies.queue import FlushAll, QueueGate, QueueOptions, QueueStrategy
from atoma_actors.runtime.supervisor import Recovered, Supervisor, SupervisorPolicy
from atoma_actors.runtime.view import StoreView

from .channels import Channel, Writeback
from .futures import CallFuture, wait
from .local import LocalOps
from .plugins import IoRegistry, PluginContext, order_plugins, run_setups
from .store import Store

__all__ = ["Client", "create_client"]

log = logging.getLogger("atoma_actors")

STRATEGIES = ("direct", "queue")


def create_client(
    backend: Backend | None = None,
    *,
    schema: Mapping[str, Any] | None = None,
    plugins: Iterable[Any] = (),
    strategy: str = "direct",
    clock: Clock | None = None,
    timeout: float = 30.0,
    pool_size: int = 1,
    supervisor: SupervisorPolicy | None = None,
    queue: Mapping[str, Any] | None = None,
    cache: Mapping[str, Any] | None = None,
    owns_backend: bool = False,
) -> Client:
    """A client over `backend` (default: local-only, in memory).

    `schema` maps store names to `{"indexes": [...], "model": PydanticModel}`; `strategy` is
    the default strategy (`direct` or `queue`); `timeout` is the default per-call deadline;
    `pool_size` backend actors serve each endpoint; `queue` configures the queue strategy;
    `cache={"max_entities": N}` bounds what each store keeps of a backend's entities
    (least recently used confirmed ones are evicted, never one with a write in flight);
    `owns_backend=True` makes `close()` dispose the backend too.
    """
    return Client(
        backend,
        schema=schema,
        plugins=plugins,
        strategy=strategy,
        clock=clock,
        timeout=timeout,
        pool_size=pool_size,
        supervisor=supervisor,
        queue=queue,
        cache=cache,
        owns_backend=owns_backend,
    )


class Client:
    def __init__(
        self,
        backend: Backend | None,
        *,
        schema: Mapping[str, Any] | None,
        plugins: Iterable[Any],
        strategy: str,
        clock: Clock | None,
        timeout: float,
        pool_size: int,
        supervisor: SupervisorPolicy | None,
        queue: Mapping[str, Any] | None,
        cache: Mapping[str, Any] | None = None,
        owns_backend: bool = False,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValidationError(f"unknown strategy {strategy!r}; known: {list(STRATEGIES)}")
        self._schema = dict(schema or {})
        for name, spec in self._schema.items():
            if not isinstance(spec, Mapping):
                raise ValidationError(f"schema for {name!r} must be a dict")
        self._max_entities = _cache_bound(cache, local=backend is None)
        plugin_specs = order_plugins(plugins)
        self.clock: Clock = clock or RealClock()
        self._timeout = timeout
        self._closed = False
        self._close_lock = threading.Lock()
        # Calls in flight: one token each, added and removed without a lock (set.add and
        # set.discard are atomic); `settle()` waits on the condition, notified when empty.
        self._inflight: set[int] = set()
        self._call_ids = itertools.count()
        self._inflight_cond = threading.Condition(threading.Lock())
        self._stores: dict[str, Store] = {}
        self._store_actors: dict[str, pykka.ActorRef[Any]] = {}
        self._stores_lock = threading.Lock()
        self._actors: list[pykka.ActorRef[Any]] = []

        local_ops: LocalOps | None = None
        if backend is None:
            local_ops = LocalOps(lambda name: self.store(name)._view)
            backend = Backend(
                key="local",
                store=Endpoint(local_ops),
                capabilities=Capabilities(store_persistence="ephemeral"),
            )
        self.backend = backend
        self._owns_backend = owns_backend
        self._remote_backed = local_ops is None
        self._local = False  # set once plugins are known (below)
        self._durable = backend.capabilities.store_persistence == "durable"

        self._scheduler = Scheduler(self.clock)
        self.events = EventBus(self.clock.time_ms)
        self._actors.append(self.events.actor_ref)  # type: ignore[arg-type]

        supervisor_box: list[pykka.ActorRef[Any]] = []

        def report(failure: Any) -> None:
            if supervisor_box:
                supervisor_box[0].tell(failure)

        def recovered(name: str) -> None:
            if supervisor_box:
                supervisor_box[0].tell(Recovered(name))

        self._groups: dict[str, BackendGroup] = {}
        endpoints = {"store": backend.store, "remote": backend.remote}
        for name, endpoint in endpoints.items():
            if endpoint is None:
                continue
            self._groups[name] = BackendGroup(
                f"{backend.key}.{name}",
                endpoint.ops_client,
                size=pool_size,
                clock=self.clock,
                scheduler=self._scheduler,
                report=report,
                report_recovered=recovered,
            )
        groups_by_name = {g.name: g for g in self._groups.values()}
        self._supervisor = Supervisor.start(
            groups_by_name,
            supervisor or SupervisorPolicy(),
            self.clock,
            self._scheduler,
            self.events.emit,
        )
        supervisor_box.append(self._supervisor)
        self._actors.append(self._supervisor)

        # plugins: setup may add ops handlers; channels work once the chain exists
        self._io = IoRegistry()
        self.services: dict[str, Any] = {}
        self._chains: dict[str, Callable[[OpsCall, Reply[Any]], None]] = {}
        ctx = PluginContext(
            io=self._io,
            store=Channel(self, "store"),
            remote=Channel(self, "remote") if "remote" in self._groups else None,
            writeback=Writeback(self),
            events=self.events,
            services=self.services,
            clock=self.clock,
        )
        self._disposers = run_setups(plugin_specs, ctx)
        self._io.sealed = True
        if local_ops is not None:
            # Ops handlers must see every op: then the stores write through a storage.
            self._local = not self._io.handlers
            if not self._local:
                local_ops.storage = MemoryStorage()

        for name, group in self._groups.items():
            submit, refs = build_chain(self._io.handlers, group.submit)
            self._chains[name] = submit
            self._actors.extend(refs)

        source = "remote" if self._remote_backed else "local"
        strategies: dict[str, pykka.ActorRef[Any]] = {
            "direct": DirectStrategy.start(
                self._chains["store"], self.clock.time_ms, source=source
            ),
        }
        self._queue_options = QueueOptions.from_mapping(queue or {})
        self._queue_gate = QueueGate(self._queue_options)
        strategies["queue"] = QueueStrategy.start(
            self._chains["store"],
            self.clock,
            self._scheduler,
            self._queue_options,
            gate=self._queue_gate,
            source=source,
        )
        self._strategies = strategies
        self._routes = StrategyTable(strategies, strategy)
        self._actors.extend(strategies.values())

    # -- stores --------------------------------------------------------------------------
    def store(self, name: str, *, strategy: str | None = None) -> Store:
        """The store called `name` (created on first use)."""
        self._check_open()
        if not isinstance(name, str) or not name or len(name) > 128:
            raise ValidationError(f"a store name must be a non-empty string, not {name!r}")
        self._check_strategy(strategy)
        with self._stores_lock:
            store = self._stores.get(name)
            created = store is None
            if created:
                spec = self._schema.get(name, {})
                indexes = spec.get("indexes")
                view = StoreView(
                    name,
                    IndexSet(list(indexes)) if indexes else None,
                    max_entities=self._max_entities,
                )
                actor = StoreActor.start(
                    name,
                    view,
                    persist=self._routes.route_many,
                    emit=self.events.emit,
                    time_ms=self.clock.time_ms,
                    model=spec.get("model"),
                    fetch=self._routes.route if self._remote_backed else None,
                    local=self._local,
                    max_entities=self._max_entities,
                )
                self._store_actors[name] = actor
                store = Store(self, name, view, actor)
                self._stores[name] = store
        assert store is not None
        if strategy is not None:
            self._routes.set_store(name, strategy)
        if created:
            self.events.emit("store_created", store=name)
            if self._durable:
                store.list()  # hydrate the in-memory view from the durable store
        return store

    # -- lifecycle -----------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Send everything a batching strategy holds, then wait until nothing is in flight."""
        self._check_open()
        self._flush_queue(timeout)
        self.settle(timeout)

    def settle(self, timeout: float | None = None) -> None:
        """Wait until no read or write of this client is in flight."""
        limit = self._wait_timeout(timeout)
        with self._inflight_cond:
            if not self._inflight_cond.wait_for(lambda: not self._inflight, timeout=limit):
                raise TimeoutError(
                    f"{len(self._inflight)} operations still in flight after {limit}s"
                )

    def close(self) -> None:
        """Flush queues, wait for writes in flight (bounded), stop every actor. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            try:
                self._flush_queue(self._timeout)
                self.settle(self._timeout)
            except Exception as exc:
                log.warning("close: could not drain everything: %r", exc)
            self._closed = True
        for ref in self._strategies.values():
            ref.stop(block=True, timeout=5)
        for group in self._groups.values():
            group.stop()
        for ref in self._actors:
            if ref in self._strategies.values() or ref is self.events.actor_ref:
                continue
            try:
                ref.stop(block=True, timeout=5)
            except pykka.Timeout:
                log.warning("actor %s did not stop in time", ref)
        for ref in self._store_actors.values():
            ref.stop(block=True, timeout=5)
        for dispose in self._disposers:
            try:
                dispose()
            except Exception:
                log.exception("plugin dispose failed")
        self._scheduler.stop()
        self.events.stop()
        if self._owns_backend and self.backend.dispose is not None:
            self.backend.dispose()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers for the facade ----------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("this client is closed")

    def _check_strategy(self, strategy: str | None) -> None:
        if strategy is not None and strategy not in self._strategies:
            raise ValidationError(
                f"unknown strategy {strategy!r}; known: {sorted(self._strategies)}"
            )

    def _deadline(self, timeout: float | None) -> float:
        return self.clock.now() + (self._timeout if timeout is None else timeout)

    def _wait_timeout(self, timeout: float | None) -> float:
        # The op deadline runs on the client's clock; this real-time bound is the backstop
        # for a clock that does not move (freezegun), so a blocking call never hangs forever.
        return (self._timeout if timeout is None else timeout) + 5.0

    def _reply(
        self,
        future: Future[Any],
        kind: str,
        store: str,
        count: int,
        shape: Callable[[Any], Any],
        *,
        gated: bool = False,
    ) -> Reply[Any]:
        """The one reply of a facade call: counts it in flight, reports its events, and
        settles `future` with `shape(outcome)` (an exception from either settles it too).
        `gated`: the call holds `count` places at the queue gate, given back on the answer."""
        self.events.emit(
            "write_start" if kind == "write" else "read_start", store=store, count=count
        )
        return _CallReply(self, future, kind, store, count, shape=shape, gated=gated)

    def _report(self, kind: str, store: str, outcome: Any) -> None:
        events = self.events
        if kind == "read":
            if events.wants("read_finish"):
                failed = isinstance(outcome, BaseException)
                events.emit(
                    "read_finish",
                    store=store,
                    source=None if failed else getattr(outcome, "source", None),
                    error=repr(outcome) if failed else None,
                )
        elif isinstance(outcome, BaseException):
            events.emit("write_failed", store=store, error=outcome)
        elif events.wants("write_failed") or events.wants("write_committed"):
            errors = [i for i in outcome.items if isinstance(i, Exception)]
            if errors:
                events.emit("write_failed", store=store, errors=errors)
            if len(errors) < len(outcome.items):
                events.emit("write_committed", store=store, count=len(outcome.items) - len(errors))

    def _admit(self, store: str, strategy: str | None, count: int, timeout: float | None) -> bool:
        """Backpressure: queue-bound writes pass its gate on the caller's thread. True if
        the write now holds `count` places (its reply gives them back)."""
        resolved = self._routes.resolve(store, strategy)
        if resolved != "queue" or self._local:
            return False
        self._queue_gate.acquire(count, self._wait_timeout(timeout))
        return True

    def _flush_queue(self, timeout: float | None) -> None:
        future: Future[Any] = CallFuture()
        self._strategies["queue"].tell(FlushAll(future_reply(future)))
        wait(future, self._wait_timeout(timeout))


def _cache_bound(cache: Mapping[str, Any] | None, *, local: bool) -> int | None:
    """`max_entities` of the `cache` option, checked (None: unbounded)."""
    if not cache:
        return None
    if not isinstance(cache, Mapping) or set(cache) - {"max_entities"}:
        raise ValidationError('cache takes {"max_entities": N}')
    bound = cache.get("max_entities")
    if bound is None:
        return None
    if type(bound) is not int or bound < 1:
        raise ValidationError(f"cache max_entities must be an integer >= 1, not {bound!r}")
    if local:
        raise ValidationError(
            "the embedded default holds the data itself: a cache bound would drop it "
            "(give a backend to bound what the client keeps of it)"
        )
    return bound


class _CallReply(Reply[Any]):
    """The reply of one facade call (see `Client._reply`); a slotted object, not a closure."""

    __slots__ = ("_client", "_count", "_future", "_gated", "_kind", "_shape", "_store", "_token")

    def __init__(
        self,
        client: Client,
        future: Future[Any],
        kind: str,
        store: str,
        count: int,
        *,
        shape: Callable[[Any], Any],
        gated: bool,
    ) -> None:
        super().__init__()
        self._client = client
        self._future = future
        self._kind = kind
        self._store = store
        self._count = count
        self._shape = shape
        self._gated = gated
        self._token = token = next(client._call_ids)
        client._inflight.add(token)

    def deliver(self, outcome: Any) -> None:
        client = self._client
        try:
            client._report(self._kind, self._store, outcome)
            if not isinstance(outcome, BaseException):
                try:
                    outcome = self._shape(outcome)
                except Exception as exc:
                    outcome = exc
            settle(self._future, outcome)
        finally:
            if self._gated:
                client._queue_gate.release(self._count)
            inflight = client._inflight
            inflight.discard(self._token)
            if not inflight:
                with client._inflight_cond:
                    client._inflight_cond.notify_all()
