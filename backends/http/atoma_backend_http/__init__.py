"""atoma-backend-http: an atoma-actors backend that talks to an Atoma ops server over HTTP.

`HttpBackend(url).backend` goes into `create_client(backend=...)`. Imports only
`atoma_actors.protocol`, httpx and httpx-sse; never the atoma_actors runtime or client.
"""

import logging

from ._backend import HttpBackend
from ._retry import Backoff

logging.getLogger("atoma_backend_http").addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = ["Backoff", "HttpBackend"]
