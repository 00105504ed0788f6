"""Plugins: `{id, provides, requires, setup(ctx)}`, ordered by what they provide and require,
and the `PluginContext` they get (the only door a plugin has into the client).

A plugin is any object (or dict) with those keys; `setup(ctx)` may return a dispose callable,
and a `dispose()` method is honoured too. Disposal runs in reverse setup order. A missing
dependency or a cycle raises `ValidationError` at `create_client`.
Must not import sync or any backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any

from atoma_actors.protocol.errors import ValidationError

__all__ = ["IoRegistry", "PluginContext", "PluginSpec", "order_plugins"]


@dataclass(frozen=True, slots=True)
class PluginSpec:
    id: str
    provides: tuple[str, ...]
    requires: tuple[str, ...]
    setup: Callable[[Any], Any] | None
    dispose: Callable[[], Any] | None
    source: Any


def _get(plugin: Any, key: str, default: Any = None) -> Any:
    if isinstance(plugin, dict):
        return plugin.get(key, default)
    return getattr(plugin, key, default)


def _spec(plugin: Any) -> PluginSpec:
    pid = _get(plugin, "id")
    if not isinstance(pid, str) or not pid:
        raise ValidationError(f"a plugin needs a string id: {plugin!r}")
    setup = _get(plugin, "setup")
    if setup is not None and not callable(setup):
        raise ValidationError(f"plugin {pid!r}: setup must be callable")
    return PluginSpec(
        id=pid,
        provides=tuple(_get(plugin, "provides", ()) or ()),
        requires=tuple(_get(plugin, "requires", ()) or ()),
        setup=setup,
        dispose=_get(plugin, "dispose"),
        source=plugin,
    )


def order_plugins(plugins: Iterable[Any]) -> list[PluginSpec]:
    """Plugins in an order where each comes after those providing what it requires."""
    specs = [_spec(p) for p in plugins]
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ValidationError(f"duplicate plugin ids: {sorted(i for i in ids if ids.count(i) > 1)}")
    provider: dict[str, str] = {}
    for s in specs:
        for cap in (s.id, *s.provides):
            provider.setdefault(cap, s.id)
    graph: dict[str, set[str]] = {}
    for s in specs:
        deps = set()
        for need in s.requires:
            if need not in provider:
                raise ValidationError(
                    f"plugin {s.id!r} requires {need!r}, which no plugin provides"
                )
            if provider[need] != s.id:
                deps.add(provider[need])
        graph[s.id] = deps
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise ValidationError(f"plugin dependency cycle: {' -> '.join(exc.args[1])}") from exc
    by_id = {s.id: s for s in specs}
    # keep the user's order among plugins that do not depend on each other
    position = {pid: i for i, pid in enumerate(ids)}
    ranked: list[PluginSpec] = []
    done: set[str] = set()
    pending = sorted(order, key=position.__getitem__)
    while pending:
        for pid in pending:
            if graph[pid] <= done:
                ranked.append(by_id[pid])
                done.add(pid)
                pending.remove(pid)
                break
    return ranked


@dataclass
class IoRegistry:
    """`ctx.io`: where plugins add ops handlers (higher priority runs first)."""

    handlers: list[tuple[int, Any]] = field(default_factory=list)
    sealed: bool = False

    def use(self, handler: Any, priority: int = 0) -> None:
        if self.sealed:
            raise ValidationError("ctx.io.use is only allowed during plugin setup")
        if not (hasattr(handler, "on_request") or hasattr(handler, "on_response")):
            raise ValidationError("an ops handler needs on_request and/or on_response")
        self.handlers.append((priority, handler))


@dataclass
class PluginContext:
    """What a plugin sees: `io`, `store` and `remote` channels, `writeback`, `events`,
    `services` (a dict plugins share)."""

    io: IoRegistry
    store: Any
    remote: Any
    writeback: Any
    events: Any
    services: dict[str, Any]
    clock: Any


def run_setups(specs: Sequence[PluginSpec], ctx: PluginContext) -> list[Callable[[], Any]]:
    """Run every setup in order; returns the disposers in reverse order."""
    disposers: list[Callable[[], Any]] = []
    for spec in specs:
        result = spec.setup(ctx) if spec.setup else None
        if callable(result):
            disposers.append(result)
        elif spec.dispose is not None:
            disposers.append(spec.dispose)
    return list(reversed(disposers))
