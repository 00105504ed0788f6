"""atoma-backend-sql: resources in SQLite (durable, the default) or PostgreSQL via SQLAlchemy Core.

`SqlBackend(url)` is an ops client (`execute_ops`) with notify (`subscribe`) and
`.backend`, the `atoma_actors.protocol.backend.Backend` a client is created with.
Must not import atoma_actors.runtime or atoma_actors.client.
"""

from ._backend import SqlBackend
from ._limits import Limits

__all__ = ["Limits", "SqlBackend"]
