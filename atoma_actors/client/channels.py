"""What plugins reach the backend through: `ctx.store` / `ctx.remote` channels (raw ops down
the same ops chain, so every handler sees them) and `ctx.writeback.commit`.

Must not import sync or any backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from atoma_actors.core.query import normalize_query
from atoma_actors.protocol.errors import AtomaError, ValidationError, error_from_standard
from atoma_actors.protocol.ops import ChangesPullOp, ChangesPullSpec, WriteEntry
from atoma_actors.protocol.results import (
    ChangeBatch,
    NotifyMessage,
    OperationResultOk,
    QueryResultData,
    WriteResultData,
)
from atoma_actors.runtime.messages import RemoteChanges
from atoma_actors.runtime.ops_chain import OpsCall
from atoma_actors.runtime.reply import future_reply
from atoma_actors.runtime.strategies.base import group_entries, meta_for, new_op_id, query_op

from .futures import CallFuture, wait

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Channel", "Writeback"]


class _Changes:
    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def pull(
        self,
        cursor: str | None = None,
        *,
        limit: int | None = None,
        resources: Sequence[str] | None = None,
    ) -> ChangeBatch:
        op = ChangesPullOp(
            op_id=new_op_id(),
            pull=ChangesPullSpec(
                cursor=cursor, limit=limit, resources=list(resources) if resources else None
            ),
        )
        data = self._channel._one(op)
        if not isinstance(data, ChangeBatch):
            raise ValidationError("changes.pull answered with other data")
        return data


class Channel:
    """Raw protocol ops on one endpoint (`store` or `remote`), blocking."""

    def __init__(self, client: Client, endpoint: str) -> None:
        self._client = client
        self._endpoint = endpoint
        self.changes = _Changes(self)

    def query(self, resource: str, query: Mapping[str, Any] | None = None) -> QueryResultData:
        data = self._one(query_op(resource, normalize_query(query)))
        if not isinstance(data, QueryResultData):
            raise ValidationError("query answered with other data")
        return data

    def write(self, resource: str, entries: Sequence[WriteEntry]) -> WriteResultData:
        groups = group_entries(resource, entries)
        if len(groups) != 1:
            raise ValidationError("one write call takes entries of one action and options")
        data = self._one(groups[0][0])
        if not isinstance(data, WriteResultData):
            raise ValidationError("write answered with other data")
        return data

    def subscribe_notify(self, callback: Callable[[NotifyMessage], None]) -> Callable[[], None]:
        notify = self._client.backend.notify
        if notify is None:
            raise ValidationError(f"backend {self._client.backend.key!r} offers no notify")
        return notify.subscribe(callback)

    def _one(self, op: Any) -> Any:
        client = self._client
        client._check_open()
        future: Future[Any] = CallFuture()
        call = OpsCall(
            ops=(op,),
            meta=meta_for(client.clock.time_ms()),
            endpoint=self._endpoint,
            route_key=self._endpoint,
            deadline=client._deadline(None),
        )
        client._chains[self._endpoint](call, future_reply(future))
        outcome = wait(future, client._wait_timeout(None))
        result = outcome[0][0]
        if not isinstance(result, OperationResultOk):
            raise error_from_standard(result.error)
        return result.data


class Writeback:
    """`ctx.writeback.commit(store, {"upserts": [...], "deletes": [{"id", "version"}]})`:
    apply changes that came from elsewhere (sync) into a store's confirmed state."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def commit(
        self, store: str, writeback: Mapping[str, Any], timeout: float | None = None
    ) -> None:
        client = self._client
        client.store(store)
        upserts = list(writeback.get("upserts", ()))
        deletes = [(d["id"], d["version"]) for d in writeback.get("deletes", ())]
        future: Future[Any] = CallFuture()
        client._store_actors[store].tell(RemoteChanges(upserts, deletes, future_reply(future)))
        result = wait(future, client._wait_timeout(timeout))
        if isinstance(result, AtomaError):
            raise result
