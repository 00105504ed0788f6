"""`changes.pull`: read the change log after a cursor, in commit order.

The cursor is the decimal `seq` of the last change seen ("0" or none: from the start).
Must not import atoma_actors.runtime or atoma_actors.client.
"""

from __future__ import annotations

import sqlalchemy as sa

from atoma_actors.protocol.errors import ValidationError
from atoma_actors.protocol.ops import ChangesPullSpec
from atoma_actors.protocol.results import Change, ChangeBatch

from ._limits import Limits, check_resource
from ._schema import Tables

__all__ = ["parse_cursor", "run_pull"]


def parse_cursor(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 19:
        raise ValidationError(f"invalid changes cursor {cursor[:40]!r}", code="INVALID_CURSOR")
    return int(cursor)


def run_pull(conn: sa.Connection, t: Tables, spec: ChangesPullSpec, limits: Limits) -> ChangeBatch:
    after = parse_cursor(spec.cursor)
    limit = min(spec.limit or limits.default_pull_limit, limits.max_pull_limit)
    resources = [check_resource(r) for r in spec.resources] if spec.resources is not None else None
    c = t.changes
    stmt = sa.select(c.c.seq, c.c.resource, c.c.id, c.c.kind, c.c.version, c.c.changed_at_ms)
    stmt = stmt.where(c.c.seq > after)
    if resources is not None:
        stmt = stmt.where(c.c.resource.in_(resources))
    stmt = stmt.order_by(c.c.seq).limit(limit)
    head = conn.execute(sa.select(sa.func.coalesce(sa.func.max(c.c.seq), 0))).scalar_one()
    if after > head:
        # A cursor from the future belongs to another database (or one since replaced).
        raise ValidationError(f"changes cursor {after} is ahead of this log", code="INVALID_CURSOR")
    changes = []
    last = after
    for seq, resource, id_, kind, version, changed_at_ms in conn.execute(stmt):
        last = seq
        changes.append(
            Change(
                resource=resource, id=id_, kind=kind, version=version, changed_at_ms=changed_at_ms
            )
        )
    if len(changes) < limit:
        # Nothing more to read now: skip to the head, past superseded and filtered-out entries.
        last = head
    return ChangeBatch(next_cursor=str(last), changes=changes)
