"""atoma-server: the Atoma ops protocol over HTTP (Starlette app, uvicorn server).

`create_app(storage)` serves `POST /ops` and the `GET /ops/notify` SSE stream over any object
with `execute_ops` (the SQL backend in production). Imports only `atoma_actors.protocol`,
starlette and uvicorn; never the atoma_actors runtime or client.
"""

import logging

from ._app import AuthHook, create_app, status_for
from ._hooks import RequestContext, ServerHooks
from ._limits import Limits
from ._notify import NotifyHub
from ._scope import Scope
from ._server import Server

logging.getLogger("atoma_server").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = [
    "AuthHook",
    "Limits",
    "NotifyHub",
    "RequestContext",
    "Scope",
    "Server",
    "ServerHooks",
    "create_app",
    "status_for",
]
