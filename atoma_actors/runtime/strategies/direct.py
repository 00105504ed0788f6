"""The `direct` strategy actor: every read and write goes straight into the ops chain.

Writes: the entries of one persist request are grouped by action and options into write ops
(one call down the chain); the answer is mapped back onto the entries on the way back and
sent to the StoreActor. Reads: one query op; the answer is written back through the StoreActor;
any failure falls back to the local engine over the store's entities (`source == "local"`).
Must not import client or any backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from atoma_actors.core.planning import wire_entries
from atoma_actors.core.query import QueryResult
from atoma_actors.protocol.errors import AtomaError
from atoma_actors.protocol.results import PageInfo
from atoma_actors.runtime.actor import Actor
from atoma_actors.runtime.messages import PersistBatch, PersistRequest, ReadRequest, ReadWriteback
from atoma_actors.runtime.ops_chain import OpsCall, Submit
from atoma_actors.runtime.reply import Reply

from .base import group_entries, meta_for, query_op, read_result, split_write_results

__all__ = ["DirectStrategy", "send_read"]


class DirectStrategy(Actor):
    def __init__(
        self, submit: Submit, time_ms: Callable[[], int], *, source: str = "remote"
    ) -> None:
        super().__init__()
        self._submit = submit
        self._time_ms = time_ms
        self._source = source

    def on_receive(self, message: Any) -> None:
        if isinstance(message, PersistRequest):
            self._persist(message)
        elif isinstance(message, PersistBatch):
            for request in message.requests:
                self._persist(request)
        elif isinstance(message, ReadRequest):
            self._read(message)

    def _persist(self, req: PersistRequest) -> None:
        try:
            groups = group_entries(req.store, wire_entries(req.entries))
        except AtomaError as exc:  # this request fails alone; the strategy goes on
            req.reply(exc)
            return
        count = len(req.entries)
        reply = req.reply
        call = OpsCall(
            ops=tuple(op for op, _ in groups),
            meta=meta_for(self._time_ms()),
            store=req.store,
            route_key=f"{req.store}/{req.entries[0].id}",
            keys=tuple(f"{req.store}/{entry.id}" for entry in req.entries),
            deadline=req.deadline,
            context=req.context,
        )
        self._submit(
            call, Reply(lambda outcome: reply(split_write_results(count, groups, outcome)))
        )

    def _read(self, req: ReadRequest) -> None:
        send_read(req, self._submit, self._time_ms(), self._source)


def send_read(req: ReadRequest, submit: Submit, time_ms: int, source: str) -> None:
    """One query op down the chain; the answer is written back through the StoreActor, and
    any failure falls back to the local engine over the store's entities."""

    def answered(outcome: Any) -> None:
        data = read_result(outcome)
        if isinstance(data, BaseException):
            try:
                local: QueryResult = req.view.query_local(req.query)
            except Exception as exc:
                req.reply(exc)
                return
            req.reply(local)
            return
        req.store_ref.tell(
            ReadWriteback(
                query=req.query,
                data=data.data,
                page_info=data.page_info or PageInfo(has_next=False),
                reply=req.reply,
                missing_id=req.missing_id if not data.data else None,
                missing_version=req.missing_version,
                source=source,
            )
        )

    call = OpsCall(
        ops=(query_op(req.store, req.query),),
        meta=meta_for(time_ms),
        store=req.store,
        route_key=f"{req.store}/?",
        deadline=req.deadline,
        context=req.context,
    )
    submit(call, Reply(answered))
