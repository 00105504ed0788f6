"""`create_app(storage, ...)`: the Starlette app serving `POST /ops` and `GET /ops/notify`.

Statuses: 400 undecodable body, 422 well-formed body of the wrong shape or over a request
limit, 413 body too large, 401/403 auth, 404 unknown path, 405 wrong method, 200 for anything
that reached the storage (per-op and per-item errors travel inside the envelope), 500 only
for a bug. Imports only `atoma_actors.protocol`, starlette and this package.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from atoma_actors.protocol.backend import OpsClient
from atoma_actors.protocol.codecs import JSON, decode, encode, media_type, validate_as
from atoma_actors.protocol.errors import (
    AtomaError,
    AuthError,
    InternalError,
    LimitsError,
    NotFoundError,
    ValidationError,
)
from atoma_actors.protocol.ops import ChangesPullOp, Meta, Operation, OpsRequest, WriteOp
from atoma_actors.protocol.results import (
    ChangeBatch,
    NotifyMessage,
    OperationResult,
    OperationResultError,
    OperationResultOk,
    OpsResponseError,
    OpsResponseOk,
    OpsResultsData,
    ResponseMeta,
)

from ._hooks import RequestContext, ServerHooks
from ._limits import Limits, check_op, check_request, check_text
from ._notify import NotifyHub
from ._scope import OPEN, Scope

__all__ = ["AuthHook", "create_app", "status_for"]

log = logging.getLogger("atoma_server")

AuthHook = Callable[[Request], "Scope | Awaitable[Scope | None] | None"]
"""Called with each request before its body is read. Return a `Scope` (or None for an open
one) to let it in; raise `AuthError` to reject it (401, or 403 with code `FORBIDDEN`)."""

_AUTO: Any = object()
_DRAIN_CAP = 16 * 1024 * 1024  # read at most this much of an oversized body before the 413
_PULL_REFILLS = 32  # pulls re-run when a tenant filter emptied a page


def status_for(error: AtomaError) -> int:
    """The HTTP status of a request-level error."""
    if isinstance(error, ValidationError):
        return 400 if error.code == "INVALID_BODY" else 422
    if isinstance(error, AuthError):
        return 403 if error.code == "FORBIDDEN" else 401
    if isinstance(error, LimitsError):
        return 413 if error.code == "PAYLOAD_TOO_LARGE" else 422
    if isinstance(error, NotFoundError):
        return 404
    if error.kind == "conflict":
        return 409
    if error.kind == "adapter":
        return 503 if error.retryable else 502
    return 500


def _now_ms() -> int:
    return int(time.time() * 1000)


def _reply(
    body: OpsResponseOk | OpsResponseError,
    status: int,
    accept: str,
    headers: dict[str, str] | None = None,
) -> Response:
    kind = media_type(accept)
    return Response(encode(body, kind), status_code=status, media_type=kind, headers=headers)


def _response_type(request: Request) -> str:
    """Accept when it names JSON or msgpack, else the request's own Content-Type."""
    accept = request.headers.get("accept", "")
    if "msgpack" in accept or "json" in accept:
        return media_type(accept)
    return media_type(request.headers.get("content-type"))


def _op_error(op_id: str, error: AtomaError) -> OperationResultError:
    return OperationResultError(op_id=op_id, error=error.error)


async def _read_body(request: Request, limit: int | None) -> bytes:
    """The body, counted while it streams in (Content-Length may lie or be absent)."""
    declared = request.headers.get("content-length")
    if (
        limit is not None
        and declared is not None
        and declared.isdigit()
        and int(declared) > _DRAIN_CAP
    ):
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    over = False
    async for chunk in request.stream():
        size += len(chunk)
        if limit is not None and size > limit:
            # Keep reading (and dropping) so the client gets the 413 instead of a broken pipe.
            over = True
            chunks.clear()
            if size > _DRAIN_CAP:
                break
        elif not over:
            chunks.append(chunk)
    if over:
        raise _too_large(size, limit or 0)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> LimitsError:
    return LimitsError(
        f"request body of {size} bytes exceeds the limit of {limit}",
        code="PAYLOAD_TOO_LARGE",
        details={"limit": "maxBodyBytes", "max": limit, "actual": size},
    )


class _OpsServer:
    """The state behind one app: storage, limits, hooks and the notify hub."""

    def __init__(
        self,
        storage: OpsClient,
        *,
        notify: Any,
        limits: Limits,
        auth: AuthHook | None,
        hooks: Sequence[ServerHooks],
        resources: Collection[str] | None,
        op_timeout: float | None,
        heartbeat: float,
        retry_ms: int,
    ) -> None:
        self.storage = storage
        self.limits = limits
        self.auth = auth
        self.hooks = list(hooks)
        self.resources = frozenset(resources) if resources is not None else None
        self.op_timeout = op_timeout
        self.heartbeat = heartbeat
        self.retry_ms = retry_ms
        if notify is _AUTO:
            notify = storage if callable(getattr(storage, "subscribe", None)) else None
        self.hub = NotifyHub(notify)

    # -- auth and hooks -----------------------------------------------------------------

    async def _authorize(self, request: Request) -> Scope:
        if self.auth is None:
            return OPEN
        result = self.auth(request)
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            return OPEN
        if not isinstance(result, Scope):
            raise InternalError("the auth hook returned neither a Scope nor None")
        return result

    def _call_hooks_quietly(self, name: str, *args: Any) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, name)(*args)
            except Exception:
                log.exception("server hook %s.%s failed", type(hook).__name__, name)

    # -- POST /ops ----------------------------------------------------------------------

    async def ops(self, request: Request) -> Response:
        ctx = RequestContext(request=request)
        accept = _response_type(request)
        response: OpsResponseOk | OpsResponseError
        try:
            response = await self._handle(ctx)
            status = 200
        except AtomaError as exc:
            response, status = OpsResponseError(error=exc.error), status_for(exc)
            self._call_hooks_quietly("on_error", ctx, exc)
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception as exc:
            log.exception("POST /ops failed")
            error = InternalError("internal server error")
            response, status = OpsResponseError(error=error.error), 500
            self._call_hooks_quietly("on_error", ctx, exc)
        response = response.model_copy(update={"meta": ResponseMeta(server_time_ms=_now_ms())})
        ctx.status = status
        self._call_hooks_quietly("on_response", ctx, response, status)
        return _reply(response, status, accept, ctx.response_headers)

    async def _handle(self, ctx: RequestContext) -> OpsResponseOk:
        request = ctx.request
        ctx.scope = await self._authorize(request)
        for hook in self.hooks:
            hook.on_request(ctx)
        body = await _read_body(request, self.limits.max_body_bytes)
        content_type = request.headers.get("content-type")
        raw = decode(body, content_type)
        if media_type(content_type) == JSON:
            check_text(body, raw)  # msgpack decodes strings as strict UTF-8 already
        parsed = validate_as(OpsRequest, raw)
        ctx.meta, ctx.ops = parsed.meta, list(parsed.ops)
        check_request(ctx.ops, ctx.meta, self.limits)

        results: list[OperationResult | None] = [None] * len(ctx.ops)
        runnable: list[tuple[int, Operation]] = []
        for index, original in enumerate(ctx.ops):
            op = original
            try:
                for hook in self.hooks:
                    op = hook.on_op(ctx, op) or op
                ctx.scope.check(op, self.resources)
                op = check_op(op, self.limits)
                runnable.append((index, ctx.scope.to_storage(op)))
            except AtomaError as exc:
                results[index] = _op_error(op.op_id, exc)

        if runnable:
            done = await self._execute([op for _, op in runnable], ctx)
            for (index, _), result in zip(runnable, done, strict=True):
                results[index] = ctx.scope.from_storage(result)
            self._notify_local([op for _, op in runnable], done, ctx.meta)
        final = [r for r in results if r is not None]
        return OpsResponseOk(data=OpsResultsData(results=final))

    async def _execute(self, ops: list[Operation], ctx: RequestContext) -> list[OperationResult]:
        meta = ctx.meta
        if meta is None:  # _handle sets it before any op runs; only a hook could clear it
            raise InternalError("request meta is missing")
        deadline = time.monotonic() + self.op_timeout if self.op_timeout is not None else None
        context = {"principal": ctx.scope.principal, **ctx.scope.context}
        results, _status = await run_in_threadpool(
            self.storage.execute_ops, ops, meta, deadline=deadline, context=context
        )
        results = list(results)
        if len(results) != len(ops):
            raise InternalError(f"storage answered {len(results)} results for {len(ops)} ops")
        if ctx.scope.needs_pull_filter:
            for i, op in enumerate(ops):
                if isinstance(op, ChangesPullOp):
                    results[i] = await self._refill_pull(
                        op,
                        results[i],
                        scope=ctx.scope,
                        meta=meta,
                        deadline=deadline,
                        context=context,
                    )
        return results

    async def _refill_pull(
        self,
        op: ChangesPullOp,
        result: OperationResult,
        *,
        scope: Scope,
        meta: Meta,
        deadline: float | None,
        context: dict[str, Any],
    ) -> OperationResult:
        """Pull again while the tenant filter empties whole pages, so a scoped reader never
        mistakes a page of other tenants' changes for the end of the log."""
        for _ in range(_PULL_REFILLS):
            if not isinstance(result, OperationResultOk) or not isinstance(
                result.data, ChangeBatch
            ):
                return result
            batch = result.data
            if not batch.changes or scope.filter_changes(batch).changes:
                return result
            nxt = op.model_copy(
                update={"pull": op.pull.model_copy(update={"cursor": batch.next_cursor})}
            )
            found, _ = await run_in_threadpool(
                self.storage.execute_ops, [nxt], meta, deadline=deadline, context=context
            )
            result = next(iter(found))
        return result

    def _notify_local(
        self, ops: list[Operation], results: list[OperationResult], meta: Meta | None
    ) -> None:
        """Without a notify source, tell the streams about writes made through this server."""
        if self.hub.has_source:
            return
        changed = sorted(
            {
                op.write.resource
                for op, res in zip(ops, results, strict=True)
                if isinstance(op, WriteOp) and isinstance(res, OperationResultOk)
            }
        )
        if changed:
            self.hub.publish(
                NotifyMessage(resources=changed, trace_id=meta.trace_id if meta else None)
            )

    # -- GET /ops/notify ----------------------------------------------------------------

    async def notify(self, request: Request) -> Response:
        ctx = RequestContext(request=request)
        try:
            ctx.scope = await self._authorize(request)
            for hook in self.hooks:
                hook.on_request(ctx)
        except AtomaError as exc:
            self._call_hooks_quietly("on_error", ctx, exc)
            body = OpsResponseError(error=exc.error, meta=ResponseMeta(server_time_ms=_now_ms()))
            return _reply(body, status_for(exc), JSON)
        raw = request.query_params.get("resources")
        wanted = [r for r in raw.split(",") if r] if raw else None
        return StreamingResponse(
            self.hub.stream(ctx.scope, wanted, heartbeat=self.heartbeat, retry_ms=self.retry_ms),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


def _http_error(status: int, message: str, code: str) -> Callable[..., Awaitable[Response]]:
    async def handler(request: Request, exc: HTTPException) -> Response:
        kind = "validation" if status == 405 else "not_found"
        error = (ValidationError if kind == "validation" else NotFoundError)(message, code=code)
        body = OpsResponseError(error=error.error, meta=ResponseMeta(server_time_ms=_now_ms()))
        return _reply(body, status, _response_type(request), dict(exc.headers or {}))

    return handler


def create_app(
    storage: OpsClient,
    *,
    notify: Any = _AUTO,
    limits: Limits | None = None,
    auth: AuthHook | None = None,
    hooks: Sequence[ServerHooks] = (),
    resources: Collection[str] | None = None,
    op_timeout: float | None = 30.0,
    heartbeat: float = 15.0,
    retry_ms: int = 1000,
) -> Starlette:
    """The ops server over `storage` (anything with `execute_ops`).

    `notify` is a source with `subscribe(callback) -> unsubscribe` (default: the storage,
    when it has `subscribe`; without one the server announces the writes it made itself).
    `resources`, when given, is the set of resources that exist: others are `not_found`.
    `app.state.atoma_hub.shutdown()` ends the notify streams (the bundled `Server` does it
    when it stops).
    """
    server = _OpsServer(
        storage,
        notify=notify,
        limits=limits or Limits(),
        auth=auth,
        hooks=hooks,
        resources=resources,
        op_timeout=op_timeout,
        heartbeat=heartbeat,
        retry_ms=retry_ms,
    )
    app = Starlette(
        routes=[
            Route("/ops", server.ops, methods=["POST"]),
            Route("/ops/notify", server.notify, methods=["GET"]),
        ],
        exception_handlers={
            404: _http_error(404, "no such path", "UNKNOWN_PATH"),
            405: _http_error(405, "method not allowed", "METHOD_NOT_ALLOWED"),
        },
    )
    app.state.atoma_hub = server.hub
    app.state.atoma_server = server
    return app
