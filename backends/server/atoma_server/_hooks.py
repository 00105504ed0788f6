"""Middleware hooks of the ops server and the per-request context they receive.

Hooks run on the server's event loop, in the order given to `create_app(hooks=[...])`; they
must be quick (do slow work elsewhere). Raising an `AtomaError` from `on_request` rejects the
request, from `on_op` fails that op alone. Imports only `atoma_actors.protocol` and starlette.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from atoma_actors.protocol.ops import Meta, Operation
from atoma_actors.protocol.results import OpsResponseError, OpsResponseOk

from ._scope import OPEN, Scope

__all__ = ["RequestContext", "ServerHooks"]


@dataclass(slots=True)
class RequestContext:
    """One request as the hooks see it. `state` is free for hooks to share data;
    `response_headers` are added to the response."""

    request: Request
    scope: Scope = OPEN
    meta: Meta | None = None
    ops: list[Operation] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    status: int | None = None
    state: dict[str, Any] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)


class ServerHooks:
    """Subclass and override what you need; every method does nothing by default."""

    def on_request(self, ctx: RequestContext) -> None:
        """After auth, before the body is read. Raise an `AtomaError` to reject the request."""

    def on_op(self, ctx: RequestContext, op: Operation) -> Operation | None:
        """Before an op runs; return a replacement op, or None to keep it. Raise an
        `AtomaError` to fail this op alone."""
        return None

    def on_response(
        self, ctx: RequestContext, response: OpsResponseOk | OpsResponseError, status: int
    ) -> None:
        """Before the response is sent (observe only; add headers via ctx.response_headers)."""

    def on_error(self, ctx: RequestContext, error: BaseException) -> None:
        """A request failed as a whole: a typed error, or an unexpected exception (a 500)."""
